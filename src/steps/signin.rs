//! Steps of the member's sign-in: the sign-in language (one step, registered with the
//! pattern [`step_pattern`], that hands the text to [`crate::payer::recipe::Action::parse`]) and the
//! checks of the redirect that ends it.

use cucumber::gherkin::Step;
use cucumber::{step, then};
use futures_util::future::LocalBoxFuture;

use super::world::OnrampWorld;
use crate::payer::recipe::Action;
use crate::run::verdict;
use crate::run::{SignIn, StepFailure};

const CONTEXT: &str = "Authorization";

/// What the sign-in language's steps start with (see [`crate::payer::recipe`]).
pub fn step_pattern() -> regex::Regex {
    regex::Regex::new(crate::payer::recipe::STEP_PATTERN)
        .unwrap_or_else(|e| unreachable!("a literal pattern: {e}"))
}

/// The step of the sign-in language, for cucumber's Given and When.
pub fn sign_in_step(world: &mut OnrampWorld, context: step::Context) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let result = act(world, &context.step).await;
        // A step in the app is the app's; the member's sign-ins with onramp's client stand.
        if let (Err(failure), Some(ctx), None) = (&result, &world.ctx, &world.app) {
            ctx.sign_in_failures.record(0, failure);
        }
        verdict(result)
    })
}

async fn act(world: &mut OnrampWorld, step: &Step) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let table = step.table.as_ref().map(|t| t.rows.as_slice());
    let action = Action::parse(&step.value, table)
        .map_err(|e| StepFailure::usage(e.to_string()))?
        .ok_or_else(|| StepFailure::usage("not a step of the sign-in language"))?;
    // In an @app scenario the language acts on the app's pages.
    if let Some(app) = world.app.as_mut() {
        return app.perform(&ctx, &action).await;
    }
    match action {
        Action::Start => {
            world.authorization = Some(ctx.oauth.start());
        }
        Action::Open => {
            let start = world.authorization.take().ok_or_else(|| {
                StepFailure::usage(
                    "no authorization request was started: begin with `the app starts an authorization request`",
                )
            })?;
            let url = start.url.clone();
            world.sign_in = Some(SignIn::open(&ctx, start, &url, CONTEXT, true).await?);
        }
        other => {
            let sign_in = world.sign_in.as_mut().ok_or_else(|| {
                StepFailure::usage("the browser is not open: open the authorization URL first")
            })?;
            sign_in.perform(&ctx, &other).await?;
        }
    }
    Ok(())
}

#[then("the browser is sent back to the app's redirect URI")]
async fn sent_back(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let sign_in = world.sign_in.take().ok_or_else(|| {
            StepFailure::usage("the browser is not open: open the authorization URL first")
        })?;
        let finished = sign_in.finish(&ctx).await;
        if let Err(failure) = &finished {
            ctx.sign_in_failures.record(0, failure);
        }
        world.authorized = Some(finished?);
        Ok(())
    }
    .await;
    world.judge(step, result);
}

#[then("the redirect carries an authorization code")]
async fn carries_code(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let authorized = world
            .authorized
            .clone()
            .ok_or_else(|| StepFailure::blocked("the browser did not come back to the app"))?;
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
                "the redirect to {} carries no code parameter (RFC 6749 §4.1.2)",
                ctx.recorder.redact(authorized.landed.as_str())
            )));
        }
        // The next scenario that needs a code takes this one: the member signs in once.
        ctx.session.offer(authorized);
        Ok(())
    }
    .await;
    world.judge(step, result);
}

#[then("the redirect carries the state the app sent")]
async fn carries_state(world: &mut OnrampWorld, step: &Step) {
    let result = async {
            let authorized = world
                .authorized
                .as_ref()
                .ok_or_else(|| StepFailure::blocked("the browser did not come back to the app"))?;
            match &authorized.redirect.state {
                Some(state) if *state == authorized.start.state => Ok(()),
                Some(_) => Err(StepFailure::conformance(
                    "the state on the redirect differs from the one the app sent (RFC 6749 §4.1.2: it must be returned exactly; CSRF protection fails)",
                )),
                None => Err(StepFailure::conformance(
                    "the redirect carries no state, though the app sent one (RFC 6749 §4.1.2)",
                )),
            }
        }
        .await;
    world.judge(step, result);
}
