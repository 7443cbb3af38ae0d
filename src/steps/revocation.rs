//! Steps of token introspection (RFC 7662; SMART App Launch 2.0, "Token Introspection")
//! and revocation (RFC 7009), at the endpoints the SMART configuration advertises. Both are
//! optional: without an advertised endpoint the checks are skipped, saying so.

use cucumber::gherkin::Step;
use cucumber::{then, when};
use serde_json::Value;

use super::world::OnrampWorld;
use crate::infra::secret::Secret;
use crate::payer::introspection;
use crate::payer::oauth::TokenAnswer;
use crate::run::StepFailure;
use crate::run::context::RunContext;
use crate::run::verdict;

const CONTEXT: &str = "Access control";

/// The endpoint the SMART configuration advertises as `name`, if any.
async fn advertised(ctx: &RunContext, name: &str) -> Result<String, StepFailure> {
    ctx.smart_configuration()
        .await?
        .json
        .as_ref()
        .and_then(|smart| smart.get(name))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            StepFailure::blocked(format!(
                "the SMART configuration advertises no {name} (optional in SMART App Launch 2.0)"
            ))
        })
}

/// The scenario's fresh access token and the answer that gave it: its latest refresh, else
/// its proper code exchange.
fn exchanged(world: &OnrampWorld) -> Result<(&TokenAnswer, Secret), StepFailure> {
    let answer = world
        .refreshes
        .last()
        .map(|r| &r.answer)
        .or_else(|| {
            world
                .attempts
                .iter()
                .find(|(attempt, _)| *attempt == super::world::Attempt::Proper)
                .map(|(_, answer)| answer)
        })
        .ok_or_else(|| StepFailure::usage("no access token was obtained in this scenario"))?;
    let access = answer
        .tokens
        .as_ref()
        .map(|t| t.access.clone())
        .ok_or_else(|| StepFailure::blocked("the token endpoint gave no access token"))?;
    Ok((answer, access))
}

/// Introspect `token`: the answer as JSON, or why there is none.
async fn introspect(ctx: &RunContext, token: &Secret) -> Result<Value, StepFailure> {
    let endpoint = advertised(ctx, "introspection_endpoint").await?;
    let response = ctx
        .oauth
        .post_form(
            &format!("{CONTEXT}: introspect the access token"),
            &endpoint,
            &[
                ("token", token.expose()),
                ("token_type_hint", "access_token"),
            ],
        )
        .await
        .map_err(|e| super::world::http_failure(&e))?;
    if response.status != 200 {
        return Err(StepFailure::conformance(format!(
            "the introspection endpoint answered {} (RFC 7662 §2.2: 200 with a JSON object)",
            response.status
        )));
    }
    match serde_json::from_slice::<Value>(&response.body) {
        Ok(json @ Value::Object(_)) => Ok(json),
        _ => Err(StepFailure::conformance(
            "the introspection answer is not a JSON object (RFC 7662 §2.2)",
        )),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[then("introspection says the access token is active, with its scopes")]
async fn active(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let (answer, access) = exchanged(world)?;
        let live = introspect(&ctx, &access).await?;
        // RFC 6749 §5.1: a response without `scope` granted what was asked (for a refresh,
        // the grant's).
        let granted = answer
            .fields
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| ctx.session.existing().map(|g| g.granted_scope()))
            .unwrap_or_else(|| ctx.target.scope());
        introspection::live(
            &live,
            &introspection::Issued {
                client_id: ctx.oauth.client_id(),
                scope: &granted,
                patient: answer.fields.get("patient").and_then(Value::as_str),
            },
            now(),
        )
    }
    .await;
    world.judge(step, result);
}

#[when("the app revokes the access token")]
async fn revokes(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let (_, access) = exchanged(world)?;
            let endpoint = match advertised(&ctx, "revocation_endpoint").await {
                Ok(endpoint) => endpoint,
                // Nothing to revoke with: the checks after this say so.
                Err(_) => return Ok(()),
            };
            let response = ctx
                .oauth
                .post_form(
                    &format!("{CONTEXT}: revoke the access token"),
                    &endpoint,
                    &[
                        ("token", access.expose()),
                        ("token_type_hint", "access_token"),
                    ],
                )
                .await
                .map_err(|e| super::world::http_failure(&e))?;
            world.revocation = Some(response.status);
            Ok(())
        }
        .await,
    );
}

/// That the access token was revoked: the revocation endpoint was advertised and said 200.
async fn revoked(world: &OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    advertised(&ctx, "revocation_endpoint").await?;
    match world.revocation {
        Some(200) => Ok(()),
        Some(status) => Err(StepFailure::blocked(format!(
            "the revocation endpoint answered {status}, not 200 (RFC 7009 §2.2)"
        ))),
        None => Err(StepFailure::blocked("the access token was not revoked")),
    }
}

#[then("introspection says the revoked access token is inactive")]
async fn inactive(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        if let Some(status) = world.revocation.filter(|s| *s != 200) {
            return Err(StepFailure::conformance(format!(
                "the revocation endpoint answered {status}; RFC 7009 §2.2 answers 200 once the token is revoked"
            )));
        }
        revoked(world).await?;
        let (_, access) = exchanged(world)?;
        let dead = introspect(&ctx, &access).await?;
        introspection::revoked(&dead)
    }
    .await;
    world.judge(step, result);
}

#[then("the revoked access token reads nothing")]
async fn reads_nothing(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        revoked(world).await?;
        let (answer, access) = exchanged(world)?;
        let path = answer
            .fields
            .get("patient")
            .and_then(Value::as_str)
            .map_or_else(|| "Patient".to_owned(), |id| crate::payer::fhir::resource_path("Patient", id));
        let response = crate::payer::fhir::read(
            &ctx.http,
            &ctx.endpoints.fhir_base,
            &path,
            Some(&access),
            &format!("{CONTEXT}: read with the revoked access token"),
        )
        .await
        .map_err(|e| super::world::http_failure(&e))?;
        match response.status {
            401 | 403 => Ok(()),
            status => Err(StepFailure::conformance(format!(
                "GET {path} with the revoked access token answered {status}; a revoked token is invalid (RFC 7009 §2), so the FHIR server refuses it with 401 invalid_token (RFC 6750 §3.1)"
            ))),
        }
    }
    .await;
    world.judge(step, result);
}
