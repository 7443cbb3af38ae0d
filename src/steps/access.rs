//! Steps of the server negatives: what the payer must refuse.

use cucumber::{given, then, when};
use url::Url;

use super::OnrampWorld;
use crate::http::Request;
use crate::run::StepFailure;

const CONTEXT: &str = "Access control";

fn http_failure(error: &crate::http::HttpError) -> StepFailure {
    if error.is_environment() {
        StepFailure::environment(error.to_string())
    } else {
        StepFailure::conformance(error.to_string())
    }
}

#[when(expr = "the app reads {word} without an access token")]
async fn read_anonymously(world: &mut OnrampWorld, kind: String) -> Result<(), StepFailure> {
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
    world.status = Some(response.status);
    Ok(())
}

#[then("the FHIR server answers 401 Unauthorized")]
async fn unauthorized(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    match world.status {
        Some(401) => Ok(()),
        Some(status) if (200..300).contains(&status) => Err(StepFailure::conformance(format!(
            "the FHIR server answered {status} to a read without an access token: member data is readable by anyone"
        ))),
        Some(status) => Err(StepFailure::conformance(format!(
            "the FHIR server answered {status}, not 401, to a read without an access token"
        ))),
        None => Err(StepFailure::usage("no read happened in this scenario")),
    }
}

#[given("the member authorizes the app once more")]
async fn authorizes_again(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    // A sign-in of its own: spending this code must not touch the run's session.
    let ctx = world.ctx()?;
    let authorized = ctx.sign_in(&format!("{CONTEXT}: second sign-in")).await?;
    if authorized.redirect.code.is_none() {
        return Err(StepFailure::conformance(
            "the second sign-in came back without a code",
        ));
    }
    world.authorized = Some(authorized);
    Ok(())
}

async fn exchange(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let authorized = world
        .authorized
        .clone()
        .ok_or_else(|| StepFailure::usage("no code to exchange"))?;
    let code = authorized
        .redirect
        .code
        .clone()
        .ok_or_else(|| StepFailure::usage("no code to exchange"))?;
    let answer = ctx
        .oauth
        .exchange(&code, authorized.start.verifier.as_ref())
        .await;
    if let Some(error) = &answer.transport {
        return Err(http_failure(error));
    }
    world.exchanges.push(answer);
    Ok(())
}

#[when("the app exchanges that code")]
async fn exchanges_once(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    exchange(world).await?;
    match world.exchanges.last() {
        Some(answer) if answer.tokens.is_some() => Ok(()),
        Some(answer) => Err(StepFailure::conformance(format!(
            "the first exchange of a fresh code failed: {}",
            answer.problem.clone().unwrap_or_default()
        ))),
        None => Err(StepFailure::usage("no exchange happened")),
    }
}

#[when("the app exchanges the same code again")]
async fn exchanges_again(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    exchange(world).await
}

#[then("the second exchange is refused with invalid_grant")]
async fn refused(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let second = world
        .exchanges
        .get(1)
        .ok_or_else(|| StepFailure::usage("the code was not exchanged twice"))?;
    if second.tokens.is_some() {
        return Err(StepFailure::conformance(
            "the token endpoint accepted the same code twice: codes must work once",
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
}

#[when(expr = "the app asks for authorization with the redirect URI {string}")]
async fn asks_with_redirect(world: &mut OnrampWorld, redirect: String) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let start = ctx.oauth.start();
    let mut url: Url = start.url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "redirect_uri" {
                redirect.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let response = ctx
        .http
        .send(
            &format!("{CONTEXT}: authorize with an unregistered redirect URI"),
            &Request::get(url.as_str()),
        )
        .await
        .map_err(|e| http_failure(&e))?;
    world.authorization = Some(crate::oauth::AuthorizationStart {
        redirect_uri: Url::parse(&redirect).map_err(|e| StepFailure::usage(e.to_string()))?,
        ..start
    });
    world.redirect_probe = Some(response);
    Ok(())
}

#[then("the authorization server does not send the browser there")]
async fn not_redirected(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let response = world
        .redirect_probe
        .as_ref()
        .ok_or_else(|| StepFailure::usage("no authorization was asked for"))?;
    let target = world
        .authorization
        .as_ref()
        .map(|a| a.redirect_uri.to_string())
        .unwrap_or_default();
    let location = response.header("location").unwrap_or_default();
    let stem = target.trim_end_matches('/');
    if (300..400).contains(&response.status) && !stem.is_empty() && location.starts_with(stem) {
        return Err(StepFailure::conformance(format!(
            "the authorization server redirected ({}) to the unregistered URI {location}: an open redirect that leaks codes",
            response.status
        )));
    }
    Ok(())
}
