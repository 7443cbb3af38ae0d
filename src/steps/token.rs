//! Steps of the code exchange and the token response.

use std::collections::BTreeSet;

use cucumber::{given, then, when};
use serde_json::Value;

use super::OnrampWorld;
use crate::oauth::TokenAnswer;
use crate::run::StepFailure;

#[given("the member has authorized the app")]
async fn authorized(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    // The run's session signs the member in unless the authorization scenario already did.
    world.ctx()?.session().await.map(|_| ())
}

#[when("the app exchanges the authorization code at the token endpoint")]
async fn exchanges(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let session = world.ctx()?.session().await?;
    world.exchanges = vec![session.answer.clone()];
    Ok(())
}

fn answer(world: &OnrampWorld) -> Result<&TokenAnswer, StepFailure> {
    world
        .exchanges
        .first()
        .ok_or_else(|| StepFailure::usage("no code exchange happened in this scenario"))
}

#[then("the token endpoint answers with a token response")]
async fn token_response(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let answer = answer(world)?;
    if let Some(error) = &answer.transport {
        return Err(StepFailure::conformance(format!(
            "the token endpoint did not answer: {error}"
        )));
    }
    match (answer.status, &answer.tokens) {
        (Some(200), Some(_)) => Ok(()),
        (status, _) => Err(StepFailure::conformance(format!(
            "the token endpoint answered {} instead of a token response: {}",
            status.map_or_else(|| "nothing".into(), |s| s.to_string()),
            answer
                .problem
                .clone()
                .unwrap_or_else(|| "no access_token".into())
        ))),
    }
}

#[then("the token type is Bearer")]
async fn bearer(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    match answer(world)?.fields.get("token_type") {
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => Ok(()),
        Some(other) => Err(StepFailure::conformance(format!(
            "token_type is {other}, not Bearer"
        ))),
        None => Err(StepFailure::conformance(
            "the token response has no token_type (RFC 6749 §5.1 requires it)",
        )),
    }
}

#[then("expires_in is a number of seconds")]
async fn expires_in(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    match answer(world)?.fields.get("expires_in") {
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(()),
        Some(Value::Number(n)) => Err(StepFailure::conformance(format!(
            "expires_in is {n}, not a whole number of seconds"
        ))),
        Some(other) => Err(StepFailure::conformance(format!(
            "expires_in is {other}, a {}, not a JSON number",
            kind(other)
        ))),
        None => Err(StepFailure::conformance(
            "the token response has no expires_in, so the app cannot tell when to refresh",
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Number(_) => "number",
    }
}

#[then("the granted scope covers the scope the app asked for")]
async fn scope(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let requested: BTreeSet<String> = ctx.target.scopes.iter().cloned().collect();
    match answer(world)?.fields.get("scope") {
        // RFC 6749 §5.1: when omitted, the granted scope is the requested one.
        None => {
            ctx.recorder.note("Token", "the token response has no scope; by RFC 6749 that means the requested scope was granted");
            Ok(())
        }
        Some(Value::String(granted)) => {
            let granted: BTreeSet<String> = granted.split_whitespace().map(str::to_owned).collect();
            let missing: Vec<&String> = requested.difference(&granted).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(StepFailure::conformance(format!(
                    "the granted scope lacks {} (asked for \"{}\")",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    ctx.target.scope()
                )))
            }
        }
        Some(other) => Err(StepFailure::conformance(format!(
            "scope is {other}, not a space-separated string"
        ))),
    }
}

#[then("the token response may not be cached")]
async fn no_store(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let answer = answer(world)?;
    let cache_control = answer
        .header("cache-control")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if cache_control.split(',').any(|d| d.trim() == "no-store") {
        Ok(())
    } else {
        Err(StepFailure::conformance(format!(
            "the token response says Cache-Control: {}; RFC 6749 §5.1 requires no-store",
            if cache_control.is_empty() {
                "(nothing)".into()
            } else {
                cache_control
            }
        )))
    }
}

#[then("the access token reads the member's Patient resource")]
async fn reads_patient(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let token = ctx.access_token().await?;
    let patient = world
        .exchanges
        .first()
        .and_then(|a| a.fields.get("patient"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let path = patient
        .as_ref()
        .map_or_else(|| "Patient".to_owned(), |id| format!("Patient/{id}"));
    let response = crate::fhir::read(
        &ctx.http,
        &ctx.endpoints.fhir_base,
        &path,
        Some(&token),
        "Token: read with the access token",
    )
    .await
    .map_err(|e| {
        if e.is_environment() {
            StepFailure::environment(e.to_string())
        } else {
            StepFailure::conformance(e.to_string())
        }
    })?;
    if response.status == 200 {
        return Ok(());
    }
    let reason = crate::fhir::operation_outcome_text(&response.body)
        .map(|t| format!(": {t}"))
        .unwrap_or_default();
    Err(StepFailure::conformance(format!(
        "GET {path} with the new access token answered {}{reason}",
        response.status
    )))
}
