//! Steps of OpenID Connect: the id_token of the run's grant, judged by [`crate::payer::id_token`].

use std::sync::Arc;

use cucumber::gherkin::Step;
use cucumber::{given, then};
use serde_json::Value;

use super::world::{OnrampWorld, http_failure};
use crate::infra::words::listed;
use crate::payer::id_token::{self, IdToken};
use crate::run::StepFailure;
use crate::run::session::Grant;
use crate::run::verdict;

const CONTEXT: &str = "OpenID Connect";

#[given("the app holds the member's token response")]
async fn token_response(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            world.grant = Some(ctx.grant().await?);
            Ok(())
        }
        .await,
    );
}

fn grant(world: &OnrampWorld) -> Result<&Arc<Grant>, StepFailure> {
    world
        .grant
        .as_ref()
        .ok_or_else(|| StepFailure::usage("no token response is held in this scenario"))
}

/// Whether the target asked for `scope`; the check is skipped when it did not.
fn asked_for(world: &OnrampWorld, scope: &str) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    if ctx.target.scopes.iter().any(|s| s == scope) {
        Ok(())
    } else {
        Err(StepFailure::blocked(format!(
            "the target does not ask for {scope} ([oauth] scopes)"
        )))
    }
}

/// The id_token text, or why the check cannot look at one.
fn token_text(world: &OnrampWorld) -> Result<String, StepFailure> {
    asked_for(world, "openid")?;
    let grant = grant(world)?;
    match &grant.answer.id_token {
        Some(token) => Ok(token.expose().to_owned()),
        None => Err(StepFailure::blocked(
            "the token response carries no id_token",
        )),
    }
}

fn read(world: &OnrampWorld) -> Result<IdToken, StepFailure> {
    IdToken::read(&token_text(world)?)
}

#[then("the token response carries an id_token")]
async fn carries(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        asked_for(world, "openid")?;
        let grant = grant(world)?;
        if grant.answer.tokens.is_none() {
            return Err(StepFailure::blocked(
                "the code exchange gave no token response",
            ));
        }
        let granted = grant
            .answer
            .fields
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !granted.split_whitespace().any(|s| s == "openid") {
            return Err(StepFailure::blocked(format!(
                "openid was not granted (the granted scope is \"{granted}\")"
            )));
        }
        match &grant.answer.id_token {
            Some(_) => Ok(()),
            None => Err(StepFailure::conformance(
                "openid was granted but the token response has no id_token (OpenID Connect Core 1.0 §3.1.3.3)",
            )),
        }
    })();
    world.judge(step, result);
}

#[then("the id_token is signed with RS256 by a key of the server's JSON Web Key Set")]
async fn signed(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let text = token_text(world)?;
        let ctx = world.ctx()?;
        let jwks = ctx.jwks().await?;
        let keys = jwks
            .json
            .as_ref()
            .filter(|_| jwks.status == Some(200))
            .ok_or_else(|| {
                StepFailure::conformance(format!(
                    "the JSON Web Key Set ({}) cannot be read: {}",
                    jwks.url,
                    jwks.problem
                        .clone()
                        .unwrap_or_else(|| format!("it answered {}", jwks.status.unwrap_or(0)))
                ))
            })?;
        id_token::verify_signature(&text, keys)
    }
    .await;
    world.judge(step, result);
}

#[then("the id_token was issued by the server to the app")]
async fn issued_for(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let token = read(world)?;
        let ctx = world.ctx()?;
        let issuer = ctx
            .smart_object()
            .await
            .and_then(|c| c.get("issuer")?.as_str().map(str::to_owned))
            .ok_or_else(|| StepFailure::blocked("the SMART configuration names no issuer"))?;
        id_token::issued_for(&token, &issuer, ctx.oauth.client_id()).map_err(|problems| {
            StepFailure::conformance(listed(
                "the id_token was not issued by this server to this app (OpenID Connect Core 1.0 §3.1.3.7):",
                &problems,
            ))
        })
    }
    .await;
    world.judge(step, result);
}

#[then("the id_token is current")]
async fn current(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let token = read(world)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        id_token::current(&token, now, 300).map_err(|problems| {
            StepFailure::conformance(listed(
                "the id_token's times are wrong (OpenID Connect Core 1.0 §2):",
                &problems,
            ))
        })
    })();
    world.judge(step, result);
}

#[then("the id_token names its subject")]
async fn subject(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let token = read(world)?;
        id_token::subject(&token)
    })();
    world.judge(step, result);
}

#[then("the id_token's fhirUser is a resource the access token reads")]
async fn fhir_user(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        asked_for(world, "fhirUser")?;
        let token = read(world)?;
        let ctx = world.ctx()?;
        let path = id_token::fhir_user(&token, ctx.endpoints.fhir_base.as_str())?;
        let access = grant(world)?
            .access_token(&ctx.oauth, &ctx.recorder)
            .await?;
        let response = crate::payer::fhir::read(
            &ctx.http,
            &ctx.endpoints.fhir_base,
            &path,
            Some(&access),
            &format!("{CONTEXT}: read the fhirUser"),
        )
        .await
        .map_err(|e| http_failure(&e))?;
        if response.status == 200 {
            Ok(())
        } else {
            Err(StepFailure::conformance(format!(
                "GET {path} (the id_token's fhirUser) with the access token answered {}",
                response.status
            )))
        }
    }
    .await;
    world.judge(step, result);
}
