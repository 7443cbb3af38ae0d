//! Steps of the server negatives: what the payer must refuse.

use cucumber::gherkin::Step;
use cucumber::{given, then, when};
use url::Url;

use super::world::{OnrampWorld, http_failure};
use crate::payer::access;
use crate::run::StepFailure;
use crate::run::verdict;

const CONTEXT: &str = "Access control";

#[when(expr = "the app reads {word} without an access token")]
async fn read_anonymously(world: &mut OnrampWorld, kind: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let response = crate::payer::fhir::read(
                &ctx.http,
                &ctx.endpoints.fhir_base,
                &kind,
                None,
                &format!("{CONTEXT}: read {kind} without a token"),
            )
            .await
            .map_err(|e| http_failure(&e))?;
            world.response = Some(response);
            Ok(())
        }
        .await,
    );
}

fn response(world: &OnrampWorld) -> Result<&crate::payer::http::Response, StepFailure> {
    world
        .response
        .as_ref()
        .ok_or_else(|| StepFailure::usage("no read happened in this scenario"))
}

#[then("the FHIR server refuses it with 401, 403 or 404")]
async fn refused_anonymously(world: &mut OnrampWorld, step: &Step) {
    let result = response(world).and_then(|r| access::refused_anonymously(r.status));
    world.judge(step, result);
}

#[then("the refusal is a 401 with a WWW-Authenticate challenge")]
async fn challenged(world: &mut OnrampWorld, step: &Step) {
    let result =
        response(world).and_then(|r| access::challenged(r.status, r.header("www-authenticate")));
    world.judge(step, result);
}

#[given(expr = "the app holds a token whose scopes leave out {word}")]
async fn narrowed_token(world: &mut OnrampWorld, kind: String) {
    verdict(
        async {
            // The run's grant, narrowed by a refresh: no sign-in of its own.
            let ctx = world.ctx()?;
            let grant = ctx.grant().await?;
            let granted = grant.granted_scope();
            let narrower = crate::payer::scope::excluding(&granted, &kind, &ctx.target.required_resources)
                .ok_or_else(|| {
                    StepFailure::blocked(format!(
                        "the granted scope ({granted}) has no resource scope left once {kind} is left out"
                    ))
                })?;
            let (_, answer) = grant
                .refresh_now(&ctx.oauth, Some(&narrower))
                .await
                .ok_or_else(|| {
                    StepFailure::blocked(
                        "the grant holds no refresh token (offline_access) to narrow its scopes with",
                    )
                })?;
            let tokens = answer.tokens.as_ref().ok_or_else(|| {
                StepFailure::blocked(format!(
                    "the server refused to narrow the grant to \"{narrower}\" ({}); the refresh checks judge that",
                    answer.problem.clone().unwrap_or_default()
                ))
            })?;
            let scope = answer
                .fields
                .get("scope")
                .and_then(|s| s.as_str())
                .unwrap_or(&narrower);
            if crate::payer::scope::permits(scope, &kind, crate::payer::scope::Interaction::Search) {
                return Err(StepFailure::blocked(format!(
                    "the server granted {kind} anyway (scope \"{scope}\"); the refresh checks judge that"
                )));
            }
            world.narrowed = Some((tokens.access.clone(), scope.to_owned()));
            Ok(())
        }
        .await,
    );
}

#[when(expr = "the app searches {word} with that token")]
async fn searches_with_narrowed(world: &mut OnrampWorld, kind: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let (token, _) = world
                .narrowed
                .clone()
                .ok_or_else(|| StepFailure::usage("the app holds no narrowed token"))?;
            let response = crate::payer::fhir::read(
                &ctx.http,
                &ctx.endpoints.fhir_base,
                &kind,
                Some(&token),
                &format!("{CONTEXT}: search {kind} with a token whose scopes leave it out"),
            )
            .await
            .map_err(|e| http_failure(&e))?;
            world.response = Some(response);
            world.kind = Some(kind);
            Ok(())
        }
        .await,
    );
}

#[then("the FHIR server refuses it with 401 or 403")]
async fn refused_out_of_scope(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let response = response(world)?;
        let kind = world.kind.clone().unwrap_or_default();
        let scope = world
            .narrowed
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        match response.status {
            401 | 403 => Ok(()),
            status @ 200..=299 => {
                let entries = serde_json::from_slice::<serde_json::Value>(&response.body)
                    .ok()
                    .and_then(|b| b.get("entry").and_then(|e| e.as_array()).map(Vec::len))
                    .unwrap_or(0);
                if entries == 0 {
                    Err(StepFailure::warning(format!(
                        "a search of {kind} with a token whose scopes ({scope}) leave it out answered {status} with nothing in it; the data stays hidden, but RFC 6750 §3.1 asks for 403 insufficient_scope so that the app knows why"
                    )))
                } else {
                    Err(StepFailure::conformance(format!(
                        "a search of {kind} with a token whose scopes ({scope}) leave it out answered {status} with {entries} entries: the server does not enforce the token's scopes (SMART App Launch 2.0, Scopes; RFC 6750 §3.1: 403 insufficient_scope)"
                    )))
                }
            }
            status => Err(StepFailure::conformance(format!(
                "a search of {kind} with a token whose scopes ({scope}) leave it out answered {status}; RFC 6750 §3.1 says 403 insufficient_scope (or 401)"
            ))),
        }
    })();
    world.judge(step, result);
}

#[when(expr = "the app asks for authorization with the redirect URI {string}")]
async fn asks_with_redirect(world: &mut OnrampWorld, redirect: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let redirect = Url::parse(&redirect)
                .map_err(|e| StepFailure::usage(format!("\"{redirect}\" is not a URL: {e}")))?;
            world.probe = Some(
                ctx.probe_redirect(
                    &format!("{CONTEXT}: authorize with an unregistered redirect URI"),
                    &redirect,
                )
                .await?,
            );
            Ok(())
        }
        .await,
    );
}

#[then("the authorization server does not send the browser there")]
async fn not_redirected(world: &mut OnrampWorld, step: &Step) {
    let result = async {
            let ctx = world.ctx()?;
            let probe = world
                .probe
                .as_ref()
                .ok_or_else(|| StepFailure::usage("no authorization was asked for"))?;
            match &probe.reached {
                Some(at) => Err(StepFailure::conformance(format!(
                    "the authorization server sent the browser to the unregistered redirect URI ({at}) after {}: an open redirect that leaks codes (RFC 6749 §3.1.2.4)",
                    probe.stopped
                ))),
                None => {
                    ctx.recorder.note(
                        CONTEXT,
                        &format!("the sign-in towards an unregistered redirect URI stopped at {}", probe.stopped),
                    );
                    Ok(())
                }
            }
        }
        .await;
    world.judge(step, result);
}
