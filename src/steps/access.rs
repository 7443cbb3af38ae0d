//! Steps of the server negatives: what the payer must refuse.

use cucumber::gherkin::Step;
use cucumber::{given, then, when};
use url::Url;

use super::{OnrampWorld, check, http_failure, verdict};
use crate::run::StepFailure;

const CONTEXT: &str = "Access control";

#[when(expr = "the app reads {word} without an access token")]
async fn read_anonymously(world: &mut OnrampWorld, kind: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let response = crate::fhir::read(
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

fn response(world: &OnrampWorld) -> Result<&crate::http::Response, StepFailure> {
    world
        .response
        .as_ref()
        .ok_or_else(|| StepFailure::usage("no read happened in this scenario"))
}

#[then("the FHIR server refuses it with 401, 403 or 404")]
async fn refused_anonymously(world: &mut OnrampWorld, step: &Step) {
    let result = (|| match response(world)?.status {
        // CARIN BB 2.0.0 CapabilityStatement, security: 401, 403 or 404.
        401 | 403 | 404 => Ok(()),
        status if (200..300).contains(&status) => Err(StepFailure::conformance(format!(
            "the FHIR server answered {status} to a read without an access token: member data is readable by anyone"
        ))),
        status => Err(StepFailure::conformance(format!(
            "the FHIR server answered {status} to a read without an access token; CARIN BB 2.0.0 (CapabilityStatement, security) says 401, 403 or 404"
        ))),
    })();
    check(world, step, result);
}

#[then("the refusal is a 401 with a WWW-Authenticate challenge")]
async fn challenged(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let response = response(world)?;
        if !matches!(response.status, 401 | 403 | 404) {
            return Err(StepFailure::blocked("the read was not refused"));
        }
        match (response.status, response.header("www-authenticate")) {
            (401, Some(challenge)) if challenge.trim_start().len() >= 6 => Ok(()),
            (401, _) => Err(StepFailure::warning(
                "the 401 has no WWW-Authenticate header; RFC 6750 §3 and RFC 7235 §3.1 ask for a Bearer challenge, so that an app knows to authenticate",
            )),
            (status, _) => Err(StepFailure::warning(format!(
                "the refusal is {status}; CARIN allows it, but the recommended answer is 401 with WWW-Authenticate: Bearer (RFC 6750 §3)"
            ))),
        }
    })();
    check(world, step, result);
}

#[given("the member authorizes the app once more")]
async fn authorizes_again(world: &mut OnrampWorld) {
    verdict(
        async {
            // A sign-in of its own: spending this code must not touch the run's grant.
            let ctx = world.ctx()?;
            let start = ctx.oauth.start();
            world.authorized = Some(
                ctx.sign_in(&format!("{CONTEXT}: second sign-in"), start, false)
                    .await?,
            );
            Ok(())
        }
        .await,
    );
}

#[given("the member authorizes the app once more with PKCE")]
async fn authorizes_with_pkce(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let start = ctx.oauth.start_with(true);
            world.authorized = Some(
                ctx.sign_in(&format!("{CONTEXT}: sign-in with PKCE"), start, false)
                    .await?,
            );
            Ok(())
        }
        .await,
    );
}

async fn exchange(world: &mut OnrampWorld, with_verifier: bool) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let authorized = world
        .authorized
        .clone()
        .ok_or_else(|| StepFailure::usage("no code to exchange: the member has not authorized"))?;
    let answer = ctx.exchange(&authorized, with_verifier).await?;
    if let Some(error) = &answer.transport {
        return Err(http_failure(error));
    }
    world.exchanges.push(answer);
    Ok(())
}

#[when("the app exchanges that code")]
async fn exchanges_once(world: &mut OnrampWorld) {
    verdict(
        async {
            exchange(world, true).await?;
            match world.exchanges.last() {
                Some(answer) if answer.tokens.is_some() => Ok(()),
                Some(answer) => Err(StepFailure::conformance(format!(
                    "the first exchange of a fresh code failed: {}",
                    answer.problem.clone().unwrap_or_default()
                ))),
                None => Err(StepFailure::usage("no exchange happened")),
            }
        }
        .await,
    );
}

#[when("the app exchanges the same code again")]
async fn exchanges_again(world: &mut OnrampWorld) {
    verdict(exchange(world, true).await);
}

#[when("the app exchanges that code without the code_verifier")]
async fn exchanges_without_verifier(world: &mut OnrampWorld) {
    verdict(exchange(world, false).await);
}

#[then("the second exchange is refused with invalid_grant")]
async fn refused_reuse(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let second = world
            .exchanges
            .get(1)
            .ok_or_else(|| StepFailure::usage("the code was not exchanged twice"))?;
        if second.tokens.is_some() {
            return Err(StepFailure::conformance(
                "the token endpoint accepted the same code twice: codes must work once (RFC 6749 §4.1.2)",
            ));
        }
        let error = second
            .fields
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or_default();
        if second.status == Some(400) && error == "invalid_grant" {
            Ok(())
        } else {
            Err(StepFailure::conformance(format!(
                "a reused code got {} with error \"{error}\"; RFC 6749 §5.2 says 400 invalid_grant",
                second
                    .status
                    .map_or_else(|| "no answer".into(), |s| s.to_string())
            )))
        }
    })();
    check(world, step, result);
}

#[then("the exchange is refused")]
async fn refused(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let answer = world
            .exchanges
            .last()
            .ok_or_else(|| StepFailure::usage("no exchange happened in this scenario"))?;
        if answer.tokens.is_some() {
            return Err(StepFailure::conformance(
                "the token endpoint issued tokens for a code whose PKCE code_verifier was not sent (RFC 7636 §4.6: the server verifies it; SMART App Launch 2.0 requires PKCE)",
            ));
        }
        let error = answer.fields.get("error").and_then(|e| e.as_str());
        match (answer.status, error) {
            // RFC 7636 §4.6 names invalid_grant for a mismatch; a missing parameter may
            // also be invalid_request (RFC 6749 §5.2). Either refusal is conformant.
            (Some(400), Some("invalid_grant" | "invalid_request")) => Ok(()),
            (status, error) => Err(StepFailure::conformance(format!(
                "the refusal was {} with error {:?}; RFC 6749 §5.2 says 400 with invalid_grant (or invalid_request)",
                status.map_or_else(|| "no answer".into(), |s| s.to_string()),
                error.unwrap_or("(none)")
            ))),
        }
    })();
    check(world, step, result);
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
    check(world, step, result);
}
