//! Steps of the code exchange's negatives: what the token endpoint must refuse of a code
//! (RFC 6749 §4.1.3 and §5.2; RFC 7636 §4.6). One sign-in serves a chain of attempts on the
//! same code: each wrong one is judged on its own, and a last proper exchange shows that the
//! code was live all along, so that every refusal was for the reason tested.

use base64::Engine as _;
use cucumber::gherkin::Step;
use cucumber::{given, then, when};

use super::world::{Attempt, OnrampWorld};
use crate::infra::secret::Secret;
use crate::payer::oauth::TokenAnswer;
use crate::run::StepFailure;
use crate::run::verdict;

const CONTEXT: &str = "Access control";

/// A fresh random value for a credential the server never issued (43 URL-safe characters:
/// also a well-formed PKCE verifier, RFC 7636 §4.1).
fn random() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[given("the member authorizes the app once more")]
async fn authorizes_again(world: &mut OnrampWorld) {
    verdict(sign_in_again(world, None).await);
}

#[given("the member authorizes the app once more with PKCE")]
async fn authorizes_with_pkce(world: &mut OnrampWorld) {
    verdict(sign_in_again(world, Some(true)).await);
}

/// A sign-in of the scenario's own: spending its code must not touch the run's grant.
async fn sign_in_again(world: &mut OnrampWorld, pkce: Option<bool>) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let start = match pkce {
        Some(pkce) => ctx.oauth.start_with(pkce),
        None => ctx.oauth.start(),
    };
    let authorized = ctx
        .sign_in(&format!("{CONTEXT}: another sign-in"), start, false)
        .await?;
    authorized.code()?;
    world.authorized = Some(authorized);
    Ok(())
}

/// Make `attempt` at exchanging the scenario's code, and keep the answer for the checks.
async fn exchange(world: &mut OnrampWorld, attempt: Attempt) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let authorized = world
        .authorized
        .clone()
        .ok_or_else(|| StepFailure::usage("no code to exchange: the member has not authorized"))?;
    let code = authorized
        .redirect
        .code
        .clone()
        .ok_or_else(|| StepFailure::blocked("the sign-in gave no code"))?;
    let verifier = authorized.start.verifier.clone();
    let challenge = authorized
        .start
        .url
        .query_pairs()
        .find(|(name, _)| name == "code_challenge")
        .map(|(_, value)| Secret::new(value.into_owned()));
    let answer = ctx
        .oauth
        .attempt(attempt, &code, verifier.as_ref(), challenge.as_ref())
        .await?;
    if let Some(error) = answer.transport.as_ref() {
        return Err(StepFailure::from_http(error));
    }
    world.attempts.push((attempt, answer));
    Ok(())
}

#[when("the app exchanges that code with a wrong client secret")]
async fn with_wrong_secret(world: &mut OnrampWorld) {
    verdict(exchange(world, Attempt::WrongSecret).await);
}

#[when("the app exchanges that code as a client the server never registered")]
async fn as_unknown_client(world: &mut OnrampWorld) {
    verdict(exchange(world, Attempt::UnknownClient).await);
}

#[when("the app exchanges that code without its code_verifier")]
async fn without_verifier(world: &mut OnrampWorld) {
    verdict(exchange(world, Attempt::NoVerifier).await);
}

#[when("the app exchanges that code with another code_verifier")]
async fn with_other_verifier(world: &mut OnrampWorld) {
    verdict(exchange(world, Attempt::OtherVerifier).await);
}

#[when("the app exchanges that code with the code_challenge as its code_verifier")]
async fn with_challenge(world: &mut OnrampWorld) {
    verdict(exchange(world, Attempt::ChallengeAsVerifier).await);
}

#[when("the app exchanges that code as it should")]
async fn properly(world: &mut OnrampWorld) {
    verdict(exchange(world, Attempt::Proper).await);
}

#[when("the app exchanges that code again")]
async fn again(world: &mut OnrampWorld) {
    verdict(exchange(world, Attempt::Again).await);
}

#[when("the app exchanges a code the server never issued")]
async fn unknown_code(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let answer = ctx.oauth.exchange(&Secret::new(random()), None).await;
            if let Some(error) = answer.transport.as_ref() {
                return Err(StepFailure::from_http(error));
            }
            world.attempts.push((Attempt::Unissued, answer));
            Ok(())
        }
        .await,
    );
}

/// The answer to `attempt`, unless an earlier wrong attempt already spent the code (then
/// this one proves nothing).
fn answer_to(world: &OnrampWorld, attempt: Attempt) -> Result<&TokenAnswer, StepFailure> {
    let at = world
        .attempts
        .iter()
        .rposition(|(a, _)| *a == attempt)
        .ok_or_else(|| StepFailure::usage(format!("{} did not happen", attempt.describe())))?;
    if let Some((spender, _)) = world.attempts[..at]
        .iter()
        .find(|(a, answer)| a.is_wrong() && answer.tokens.is_some())
    {
        return Err(StepFailure::blocked(format!(
            "{} got tokens and spent the code, so this attempt proves nothing",
            spender.describe()
        )));
    }
    Ok(&world.attempts[at].1)
}

/// What the server answered, for messages.
fn said(answer: &TokenAnswer) -> String {
    let status = answer
        .status
        .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
    match answer.fields.get("error").and_then(|e| e.as_str()) {
        Some(error) => format!("{status} with error \"{error}\""),
        None => format!("{status} without an error code"),
    }
}

/// `attempt` was refused with one of `errors` (RFC 6749 §5.2: status 400, except 401 for
/// `invalid_client`).
fn refused(
    world: &OnrampWorld,
    attempt: Attempt,
    errors: &[&str],
    rule: &str,
) -> Result<(), StepFailure> {
    let answer = answer_to(world, attempt)?;
    if answer.tokens.is_some() {
        return Err(StepFailure::conformance(format!(
            "the token endpoint issued tokens for {}: {rule}",
            attempt.describe()
        )));
    }
    let error = answer.fields.get("error").and_then(|e| e.as_str());
    let status_ok = match (error, answer.status) {
        // §5.2: 401 MAY answer invalid_client, and MUST when the client used HTTP Basic.
        (Some("invalid_client"), Some(401)) => true,
        (Some("invalid_client"), Some(400)) => {
            world.ctx()?.oauth.auth() != crate::config::ClientAuth::Basic
        }
        (_, Some(400)) => true,
        _ => false,
    };
    match error {
        Some(error) if errors.contains(&error) && status_ok => Ok(()),
        _ => Err(StepFailure::conformance(format!(
            "{} was refused with {}; {rule}",
            attempt.describe(),
            said(answer)
        ))),
    }
}

#[then("the wrong client secret is refused with invalid_client")]
async fn wrong_secret_refused(world: &mut OnrampWorld, step: &Step) {
    let result = refused(
        world,
        Attempt::WrongSecret,
        &["invalid_client"],
        "RFC 6749 §5.2 says invalid_client, with 401 when the client authenticated with HTTP Basic",
    );
    world.judge(step, result);
}

#[then("the unknown client is refused with invalid_client")]
async fn unknown_client_refused(world: &mut OnrampWorld, step: &Step) {
    let result = refused(
        world,
        Attempt::UnknownClient,
        &["invalid_client"],
        "RFC 6749 §5.2 says invalid_client for an unknown client, with 401 when it authenticated with HTTP Basic",
    );
    world.judge(step, result);
}

#[then("the missing code_verifier is refused")]
async fn missing_verifier_refused(world: &mut OnrampWorld, step: &Step) {
    // RFC 7636 §4.6 names invalid_grant for a failed verification; a missing parameter may
    // also be invalid_request (RFC 6749 §5.2). Either refusal is conformant.
    let result = refused(
        world,
        Attempt::NoVerifier,
        &["invalid_grant", "invalid_request"],
        "a code issued for a PKCE request needs its code_verifier (RFC 7636 §4.5, §4.6; SMART App Launch 2.0 requires PKCE); RFC 6749 §5.2 says 400 invalid_grant or invalid_request",
    );
    world.judge(step, result);
}

#[then("the wrong code_verifier is refused with invalid_grant")]
async fn wrong_verifier_refused(world: &mut OnrampWorld, step: &Step) {
    let result = refused(
        world,
        Attempt::OtherVerifier,
        &["invalid_grant"],
        "RFC 7636 §4.6: a code_verifier whose S256 is not the code_challenge gets 400 invalid_grant",
    );
    world.judge(step, result);
}

#[then("the code_challenge as code_verifier is refused with invalid_grant")]
async fn challenge_refused(world: &mut OnrampWorld, step: &Step) {
    let result = refused(
        world,
        Attempt::ChallengeAsVerifier,
        &["invalid_grant"],
        "the request used S256, so the challenge itself is no verifier (RFC 7636 §4.6; SMART App Launch 2.0 forbids the plain method)",
    );
    world.judge(step, result);
}

#[then("the unknown code is refused with invalid_grant")]
async fn unknown_code_refused(world: &mut OnrampWorld, step: &Step) {
    let result = refused(
        world,
        Attempt::Unissued,
        &["invalid_grant"],
        "RFC 6749 §5.2: a code the server never issued gets 400 invalid_grant",
    );
    world.judge(step, result);
}

#[then("the code still works after the refused attempts")]
async fn still_works(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let answer = answer_to(world, Attempt::Proper)?;
        if answer.tokens.is_some() {
            return Ok(());
        }
        // RFC 6749 does not ask a code to survive refused attempts, so this is no failure;
        // but the refusals above may then have been for a spent code.
        Err(StepFailure::warning(format!(
            "the proper exchange after the refused attempts got {}: the server spent the code on a refused attempt. That is allowed, but then the refusals above may have been for a spent code rather than for the reason each tested",
            said(answer)
        )))
    })();
    world.judge(step, result);
}

#[then("the used code is refused with invalid_grant")]
async fn reuse_refused(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        if answer_to(world, Attempt::Proper)?.tokens.is_none() {
            return Err(StepFailure::blocked(
                "the code never gave tokens, so using it again proves nothing",
            ));
        }
        refused(
            world,
            Attempt::Again,
            &["invalid_grant"],
            "a code works once (RFC 6749 §4.1.2); a used one gets 400 invalid_grant (§5.2)",
        )
    })();
    world.judge(step, result);
}
