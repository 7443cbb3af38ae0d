//! Steps of the member's sign-in in the browser.

use cucumber::gherkin::Step;
use cucumber::{given, then, when};

use super::OnrampWorld;
use crate::run::StepFailure;
use crate::run::context::{browser_failure, page_failure};

const CONTEXT: &str = "Authorization";

#[given("the app starts an authorization request")]
async fn starts(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    world.authorization = Some(ctx.oauth.start());
    Ok(())
}

#[when("the member opens the authorization URL in the browser")]
async fn opens(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let start = world
        .authorization
        .clone()
        .ok_or_else(|| StepFailure::usage("no authorization request was started"))?;
    let slot = ctx.browser().await?;
    let browser = slot.browser()?;
    browser
        .goto(start.url.as_str())
        .await
        .map_err(browser_failure)?;
    ctx.screenshot(browser, CONTEXT, "authorization page").await;
    world.browser = Some(slot);
    Ok(())
}

#[when(expr = "the member clicks {string}")]
async fn clicks(world: &mut OnrampWorld, text: String) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let slot = world.browser.as_ref().ok_or_else(|| {
        StepFailure::usage("the browser is not open: open the authorization URL first")
    })?;
    let browser = slot.browser()?;
    browser.click(&text).await.map_err(page_failure)?;
    ctx.screenshot(browser, CONTEXT, &format!("after clicking {text}"))
        .await;
    Ok(())
}

#[when("the member fills in the identity form:")]
async fn fills(world: &mut OnrampWorld, step: &Step) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let table = step.table.as_ref().ok_or_else(|| {
        StepFailure::usage("the identity form step needs a table of labels and values")
    })?;
    let slot = world.browser.as_ref().ok_or_else(|| {
        StepFailure::usage("the browser is not open: open the authorization URL first")
    })?;
    let browser = slot.browser()?;
    for row in &table.rows {
        let [label, value] = row.as_slice() else {
            return Err(StepFailure::usage(format!(
                "each row of the identity table is | label | value |, not {row:?}"
            )));
        };
        let value = ctx.expand(value)?;
        browser.fill(label, &value).await.map_err(page_failure)?;
    }
    ctx.screenshot(browser, CONTEXT, "identity form filled in")
        .await;
    Ok(())
}

#[then("the browser is sent back to the app's redirect URI")]
async fn sent_back(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let start = world
        .authorization
        .clone()
        .ok_or_else(|| StepFailure::usage("no authorization request was started"))?;
    let slot = world
        .browser
        .take()
        .ok_or_else(|| StepFailure::usage("the browser is not open"))?;
    let authorized = ctx.catch_redirect(slot.browser()?, &start, CONTEXT).await;
    drop(slot);
    world.authorized = Some(authorized?);
    Ok(())
}

#[then("the redirect carries an authorization code")]
async fn carries_code(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let authorized = world
        .authorized
        .clone()
        .ok_or_else(|| StepFailure::usage("the browser has not come back yet"))?;
    if let Some(error) = &authorized.redirect.error {
        return Err(StepFailure::conformance(format!(
            "the authorization server answered error={error}{}",
            authorized
                .redirect
                .error_description
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )));
    }
    if authorized.redirect.code.is_none() {
        return Err(StepFailure::conformance(format!(
            "the redirect to {} carries no code parameter",
            ctx.recorder.redact(authorized.landed.as_str())
        )));
    }
    // The session of the run exchanges this code, so the member signs in once.
    ctx.offer(authorized);
    Ok(())
}

#[then("the redirect carries the state the app sent")]
async fn carries_state(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let authorized = world
        .authorized
        .as_ref()
        .ok_or_else(|| StepFailure::usage("the browser has not come back yet"))?;
    match &authorized.redirect.state {
        Some(state) if *state == authorized.start.state => Ok(()),
        Some(_) => Err(StepFailure::conformance(
            "the state on the redirect differs from the one the app sent (CSRF protection fails)",
        )),
        None => Err(StepFailure::conformance(
            "the redirect carries no state, though the app sent one",
        )),
    }
}

#[then("the authorization request used PKCE if the target asks for it")]
async fn pkce(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let authorized = world
        .authorized
        .as_ref()
        .ok_or_else(|| StepFailure::usage("the browser has not come back yet"))?;
    let sent: Vec<(String, String)> = authorized.start.url.query_pairs().into_owned().collect();
    let has = |name: &str, value: Option<&str>| {
        sent.iter()
            .any(|(k, v)| k == name && value.is_none_or(|x| x == v))
    };
    if ctx.target.pkce {
        if !(has("code_challenge", None) && has("code_challenge_method", Some("S256"))) {
            return Err(StepFailure::environment(
                "the target asks for PKCE but the authorization request carried no S256 code_challenge",
            ));
        }
        ctx.recorder.note(CONTEXT, "PKCE: the authorization request carried an S256 code_challenge and the server issued a code");
    } else {
        ctx.recorder
            .note(CONTEXT, "PKCE: not used; the target does not ask for it");
    }
    Ok(())
}
