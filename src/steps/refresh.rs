//! Steps of the refresh (RFC 6749 §6; SMART App Launch 2.0, "Refresh access token"): the
//! run's grant is refreshed as it was and with a narrower scope, and what comes back is
//! judged; a refresh token the server never issued, and one the server rotated out, are
//! tried too.

use cucumber::gherkin::Step;
use cucumber::{given, then, when};

use super::world::{OnrampWorld, Refreshed, reads_patient};
use crate::infra::secret::Secret;
use crate::payer::oauth::TokenAnswer;
use crate::run::StepFailure;
use crate::run::verdict;

const CONTEXT: &str = "Refresh";

fn environment(answer: &TokenAnswer) -> Result<(), StepFailure> {
    match answer.transport.as_ref() {
        Some(error) => Err(StepFailure::from_http(error)),
        None => Ok(()),
    }
}

#[given("the member's grant holds a refresh token")]
async fn holds_refresh_token(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let grant = ctx.grant().await?;
            if grant.has_refresh_token().await {
                return Ok(());
            }
            if !ctx.target.scopes.iter().any(|s| s == "offline_access") {
                return Err(StepFailure::blocked(
                    "the target does not ask for offline_access ([oauth] scopes)",
                ));
            }
            let granted = grant.granted_scope();
            if granted.split_whitespace().any(|s| s == "offline_access") {
                return Err(StepFailure::conformance(
                    "the server granted offline_access but the token response has no refresh_token (SMART App Launch 2.0, \"Scopes for requesting a refresh token\")",
                ));
            }
            Err(StepFailure::blocked(format!(
                "the server did not grant offline_access (granted: {granted}), so there is no refresh token"
            )))
        }
        .await,
    );
}

/// Refresh the run's grant, asking for `scope` if given.
async fn refresh(world: &mut OnrampWorld, scope: Option<String>) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let grant = ctx.grant().await?;
    let (used, answer) = grant
        .refresh_now(&ctx.oauth, scope.as_deref())
        .await
        .ok_or_else(|| StepFailure::blocked("the grant holds no refresh token"))?;
    environment(&answer)?;
    world.refreshes.push(Refreshed {
        asked: scope,
        used,
        answer,
    });
    Ok(())
}

#[when("the app refreshes the access token")]
async fn refreshes(world: &mut OnrampWorld) {
    verdict(refresh(world, None).await);
}

#[when(expr = "the app refreshes the access token with a scope that leaves out {word}")]
async fn refreshes_narrower(world: &mut OnrampWorld, kind: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let granted = ctx.grant().await?.granted_scope();
            let narrower =
                crate::payer::scope::excluding(&granted, &kind, &ctx.target.required_resources)
                    .ok_or_else(|| {
                        StepFailure::blocked(format!(
                            "the granted scope ({granted}) has no resource scope left once {kind} is left out"
                        ))
                    })?;
            refresh(world, Some(narrower)).await
        }
        .await,
    );
}

#[when("the app refreshes with the refresh token it used before")]
async fn refreshes_with_old(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let last = world
                .refreshes
                .last()
                .cloned()
                .ok_or_else(|| StepFailure::usage("no refresh happened in this scenario"))?;
            let answer = ctx.oauth.refresh(&last.used).await;
            environment(&answer)?;
            world.refreshes.push(Refreshed {
                asked: None,
                used: last.used,
                answer,
            });
            Ok(())
        }
        .await,
    );
}

#[when("the app refreshes with a refresh token the server never issued")]
async fn refreshes_with_unknown(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            use base64::Engine as _;
            let made_up = Secret::new(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
            );
            let answer = ctx.oauth.refresh(&made_up).await;
            environment(&answer)?;
            world.refreshes.push(Refreshed {
                asked: None,
                used: made_up,
                answer,
            });
            Ok(())
        }
        .await,
    );
}

/// The scenario's refresh that asked for `narrower` scopes or not.
fn refreshed(world: &OnrampWorld, narrower: bool) -> Result<&Refreshed, StepFailure> {
    world
        .refreshes
        .iter()
        .find(|r| r.asked.is_some() == narrower)
        .ok_or_else(|| StepFailure::usage("no such refresh happened in this scenario"))
}

/// A refresh's new access token, or why there is none.
fn new_token(refreshed: &Refreshed) -> Result<Secret, StepFailure> {
    refreshed
        .answer
        .tokens
        .as_ref()
        .map(|t| t.access.clone())
        .ok_or_else(|| {
            StepFailure::conformance(format!(
                "the refresh gave no access token ({}; RFC 6749 §6 answers a valid refresh token as §5.1 does a code)",
                refreshed
                    .answer
                    .problem
                    .clone()
                    .unwrap_or_else(|| "no answer".into())
            ))
        })
}

async fn refreshed_token_reads(
    world: &OnrampWorld,
    narrower: bool,
    what: &str,
) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let token = new_token(refreshed(world, narrower)?)?;
    let patient = ctx.patient_id().await;
    reads_patient(
        &ctx,
        &token,
        patient.as_deref(),
        &format!("{CONTEXT}: read with the {what}"),
        what,
    )
    .await
}

#[then("the refresh gives an access token that reads the member's Patient")]
async fn refresh_reads(world: &mut OnrampWorld, step: &Step) {
    let result = refreshed_token_reads(world, false, "refreshed access token").await;
    world.judge(step, result);
}

#[then("the narrower token reads the member's Patient")]
async fn narrower_reads(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let refreshed = refreshed(world, true)?;
        if refreshed.answer.tokens.is_none() {
            return Err(StepFailure::conformance(format!(
                "the server refused a refresh for fewer scopes than it granted ({}); RFC 6749 §6 lets the app ask for any subset of them",
                refreshed.answer.problem.clone().unwrap_or_default()
            )));
        }
        refreshed_token_reads(world, true, "narrower access token").await
    }
    .await;
    world.judge(step, result);
}

/// That a refresh's scope holds nothing outside `limit`; `whose` names the limit.
fn scope_within(
    refreshed: &Refreshed,
    granted: &str,
    limit: &str,
    whose: &str,
) -> Result<(), StepFailure> {
    if refreshed.answer.tokens.is_none() {
        return Err(StepFailure::blocked("the refresh gave no token"));
    }
    let scope = refreshed.scope(granted);
    let outside = crate::payer::scope::outside(&scope, limit);
    if outside.is_empty() {
        Ok(())
    } else {
        Err(StepFailure::conformance(format!(
            "the refreshed token's scope holds {} beyond {whose} ({limit}); RFC 6749 §6: a refresh may not widen the grant, and a scope asked for is the most it may hold",
            outside.join(" ")
        )))
    }
}

#[then("the refreshed token holds no scope the member did not grant")]
async fn refreshed_within_grant(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let granted = ctx.grant().await?.granted_scope();
        scope_within(
            refreshed(world, false)?,
            &granted,
            &granted,
            "what the member granted",
        )
    }
    .await;
    world.judge(step, result);
}

#[then("the narrower token holds no scope the app did not ask for")]
async fn narrower_within_asked(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let granted = ctx.grant().await?.granted_scope();
        let refreshed = refreshed(world, true)?;
        let asked = refreshed.asked.clone().unwrap_or_default();
        scope_within(refreshed, &granted, &asked, "what the app asked for")
    }
    .await;
    world.judge(step, result);
}

#[then("the unknown refresh token is refused with invalid_grant")]
async fn unknown_refused(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let answer = &world
            .refreshes
            .last()
            .ok_or_else(|| StepFailure::usage("no refresh happened in this scenario"))?
            .answer;
        if answer.tokens.is_some() {
            return Err(StepFailure::conformance(
                "the token endpoint gave tokens for a refresh token it never issued (RFC 6749 §5.2: invalid_grant)",
            ));
        }
        match (
            answer.status,
            answer.fields.get("error").and_then(|e| e.as_str()),
        ) {
            (Some(400), Some("invalid_grant")) => Ok(()),
            (status, error) => Err(StepFailure::conformance(format!(
                "a refresh token the server never issued got {} with error {:?}; RFC 6749 §5.2 says 400 invalid_grant",
                status.map_or_else(|| "no answer".into(), |s| s.to_string()),
                error.unwrap_or("(none)")
            ))),
        }
    })();
    world.judge(step, result);
}

#[then("the rotated-out refresh token is refused")]
async fn rotated_out_refused(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let [.., before, again] = world.refreshes.as_slice() else {
            return Err(StepFailure::usage(
                "the scenario must refresh, then refresh with the token it used before",
            ));
        };
        let rotated = before
            .answer
            .tokens
            .as_ref()
            .and_then(|t| t.refresh.as_ref())
            .is_some_and(|new| new.expose() != again.used.expose());
        if !rotated {
            return Err(StepFailure::blocked(
                "the server did not hand out a new refresh token, so the old one stays the grant's (RFC 6749 §6 allows that)",
            ));
        }
        if again.answer.tokens.is_none() {
            return Ok(());
        }
        Err(StepFailure::warning(
            "the refresh token the server had replaced still gave tokens; RFC 6749 §6 lets the server revoke it, and the OAuth 2.0 Security BCP (RFC 9700 §4.14.2) asks it to, so that a stolen refresh token is caught",
        ))
    })();
    world.judge(step, result);
}
