//! Steps of the code exchange and the token response, judged member by member (RFC 6749
//! §5.1; SMART App Launch 2.0, "Obtain access token").

use cucumber::gherkin::Step;
use cucumber::{given, then, when};
use serde_json::Value;

use super::world::OnrampWorld;
use crate::payer::oauth::TokenAnswer;
use crate::run::StepFailure;
use crate::run::session::Grant;
use crate::run::verdict;

const CONTEXT: &str = "Token";

#[given("the member has authorized the app")]
async fn authorized(world: &mut OnrampWorld) {
    verdict(
        async {
            // The @sign-in scenario's code, or a sign-in of this scenario's own.
            let ctx = world.ctx()?;
            world.authorized = Some(ctx.fresh_authorization(CONTEXT).await?);
            Ok(())
        }
        .await,
    );
}

#[when("the app exchanges the authorization code at the token endpoint")]
async fn exchanges(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let authorized = world
                .authorized
                .clone()
                .ok_or_else(|| StepFailure::usage("the member has not authorized the app"))?;
            let answer = ctx.exchange(&authorized, true).await?;
            // The run's reads use the first grant any scenario obtained.
            ctx.session
                .establish(Grant::new(answer.clone(), ctx.target.scope()));
            world.exchanges = vec![answer];
            Ok(())
        }
        .await,
    );
}

fn answer(world: &OnrampWorld) -> Result<&TokenAnswer, StepFailure> {
    world
        .exchanges
        .first()
        .ok_or_else(|| StepFailure::usage("no code exchange happened in this scenario"))
}

/// The exchange's answer, when it is a token response (the checks of its members need one).
fn granted(world: &OnrampWorld) -> Result<&TokenAnswer, StepFailure> {
    let answer = answer(world)?;
    match answer.tokens {
        Some(_) => Ok(answer),
        None => Err(StepFailure::blocked(
            "the code exchange gave no token response",
        )),
    }
}

#[then("the token endpoint answers with a token response")]
async fn token_response(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let answer = answer(world)?;
        if let Some(error) = &answer.transport {
            // No answer is no verdict on the payer: onramp could not test.
            return Err(StepFailure::from_http(error));
        }
        match (answer.status, &answer.tokens) {
            (Some(200), Some(_)) => Ok(()),
            (status, _) => Err(StepFailure::conformance(format!(
                "the token endpoint answered {} instead of a token response (RFC 6749 §5.1: 200 with an access_token): {}",
                status.map_or_else(|| "nothing".into(), |s| s.to_string()),
                answer
                    .problem
                    .clone()
                    .unwrap_or_else(|| "no access_token".into())
            ))),
        }
    })();
    world.judge(step, result);
}

#[then("the token type is Bearer")]
async fn bearer(world: &mut OnrampWorld, step: &Step) {
    let result = (|| match granted(world)?.fields.get("token_type") {
        // RFC 6749 §5.1: the type is case-insensitive.
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => Ok(()),
        Some(other) => Err(StepFailure::conformance(format!(
            "token_type is {other}, not Bearer (SMART App Launch 2.0: token_type Bearer)"
        ))),
        None => Err(StepFailure::conformance(
            "the token response has no token_type (RFC 6749 §5.1 requires it)",
        )),
    })();
    world.judge(step, result);
}

#[then("expires_in is a number of seconds")]
async fn expires_in(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let ctx = world.ctx()?;
        match granted(world)?.fields.get("expires_in") {
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(()),
            Some(Value::Number(n)) => Err(StepFailure::conformance(format!(
                "expires_in is {n}, not a whole number of seconds (RFC 6749 §5.1)"
            ))),
            Some(other) => Err(StepFailure::conformance(format!(
                "expires_in is {other}, a {}, not a JSON number of seconds (RFC 6749 §5.1)",
                kind(other)
            ))),
            // RECOMMENDED, not required (RFC 6749 §5.1; SMART App Launch 2.0).
            None => {
                ctx.recorder.note(
                    CONTEXT,
                    "the token response has no expires_in (it is recommended, not required); the app cannot tell when to refresh",
                );
                Ok(())
            }
        }
    })();
    world.judge(step, result);
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

#[then("the token response names the granted scope")]
async fn scope(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let ctx = world.ctx()?;
        let missing = crate::payer::scope::granted_of(
            granted(world)?.fields.get("scope"),
            &ctx.target.scopes,
        )?;
        // A server may grant less than was asked (RFC 6749 §3.3): say so, do not fail.
        if !missing.is_empty() {
            ctx.recorder.note(
                CONTEXT,
                &format!(
                    "the granted scope lacks {} of the requested \"{}\"",
                    missing.join(", "),
                    ctx.target.scope()
                ),
            );
        }
        Ok(())
    })();
    world.judge(step, result);
}

#[then("the token response names the member's Patient when launch/patient was granted")]
async fn names_patient(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let answer = granted(world)?;
        let scope = answer
            .fields
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !scope.split_whitespace().any(|s| s == "launch/patient") {
            return Err(StepFailure::blocked(
                "launch/patient was not granted, so no patient context is due",
            ));
        }
        match answer.fields.get("patient") {
            Some(Value::String(id)) if !id.trim().is_empty() => Ok(()),
            Some(other) => Err(StepFailure::conformance(format!(
                "patient is {other}, not a Patient id (SMART App Launch 2.0, launch context)"
            ))),
            None => Err(StepFailure::conformance(
                "launch/patient was granted but the token response has no patient (SMART App Launch 2.0: the launch context arrives with the access token)",
            )),
        }
    })();
    world.judge(step, result);
}

#[then("the token response also says Pragma: no-cache")]
async fn pragma(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let answer = granted(world)?;
        let pragma = answer
            .header("pragma")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if pragma.split(',').any(|d| d.trim() == "no-cache") {
            Ok(())
        } else {
            Err(StepFailure::warning(
                "the token response has no Pragma: no-cache (RFC 6749 §5.1 asks for it next to Cache-Control: no-store; RFC 9111 has since deprecated Pragma, so only old caches need it)",
            ))
        }
    })();
    world.judge(step, result);
}

#[then("the token response may not be cached")]
async fn no_store(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let answer = granted(world)?;
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
    })();
    world.judge(step, result);
}

#[then("the access token reads the member's Patient resource")]
async fn reads_patient(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let answer = granted(world)?;
        let token = answer
            .tokens
            .as_ref()
            .map(|t| t.access.clone())
            .ok_or_else(|| StepFailure::conformance("the exchange gave no access token"))?;
        let patient = answer.fields.get("patient").and_then(Value::as_str);
        super::world::reads_patient(
            &ctx,
            &token,
            patient,
            "Token: read with the access token",
            "new access token",
        )
        .await
    }
    .await;
    world.judge(step, result);
}
