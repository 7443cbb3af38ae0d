//! Steps of the app under test (`app.feature`, `@app`): the member opens the app, starts
//! connecting it (the sign-in language's steps, in the app), signs in to the health plan
//! (the `@sign-in` recipe, replayed wherever the app sends them), and the app must come back
//! and show the member's own data. Failures are the app's (kind `app`); a target without
//! `[app]` skips these scenarios, saying why.

use cucumber::gherkin::Step;
use cucumber::{given, then, when};

use super::world::OnrampWorld;
use crate::run::StepFailure;
use crate::run::app::AppVisit;
use crate::run::context::RunContext;
use crate::run::verdict;

fn visit(world: &mut OnrampWorld) -> Result<&mut AppVisit, StepFailure> {
    world.app.as_mut().ok_or_else(|| {
        StepFailure::usage("the app is not open: begin with `the member opens the app`")
    })
}

/// The app, back from the sign-in, for the checks of what it shows: a scenario that did not
/// ask `the browser is back in the app` waits for it here.
async fn back<'w>(
    world: &'w mut OnrampWorld,
    ctx: &RunContext,
) -> Result<&'w mut AppVisit, StepFailure> {
    let app = visit(world)?;
    match app.back {
        Some(true) => Ok(app),
        Some(false) => Err(StepFailure::blocked(
            "the browser did not come back to the app (see \"the browser is back in the app\")",
        )),
        None => {
            app.come_back(ctx).await?;
            Ok(app)
        }
    }
}

#[given("the member opens the app")]
async fn opens(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            world.app = Some(AppVisit::open(&ctx).await?);
            Ok(())
        }
        .await,
    );
}

#[when("the member signs in to the health plan")]
async fn signs_in(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            visit(world)?.sign_in(&ctx).await
        }
        .await,
    );
}

#[then("the browser is back in the app")]
async fn back_in_app(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        visit(world)?.come_back(&ctx).await
    }
    .await;
    world.judge(step, result);
}

#[then("the app shows the member's name")]
async fn shows_name(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let expected = ctx.app_expected().await;
        let name = expected.name.as_ref().ok_or_else(|| {
            StepFailure::blocked(
                "onramp does not know the member's name: the Patient could not be read and the target's [member] has no first_name and last_name",
            )
        })?;
        let app = back(world, &ctx).await?;
        app.wait_to_show(&ctx, "the member's name", |text| {
            name.shown_in(text).then_some(())
        })
        .await
        .map_err(|shown| {
            StepFailure::app(format!(
                "{} does not show the member's name, {name} (from {}), within {}; it shows: {shown}",
                app.name,
                expected.name_source,
                crate::infra::words::seconds(app.timeout)
            ))
        })
    }
    .await;
    world.judge(step, result);
}

#[then(expr = "the app shows {string}")]
async fn shows_text(world: &mut OnrampWorld, step: &Step, wanted: String) {
    let result = async {
        let ctx = world.ctx()?;
        let wanted = ctx.expand(&wanted)?;
        let app = back(world, &ctx).await?;
        app.wait_to_show(&ctx, &format!("\"{wanted}\""), |text| {
            crate::app::shows(text, &wanted).then_some(())
        })
        .await
        .map_err(|shown| {
            StepFailure::app(format!(
                "{} does not show \"{wanted}\" within {}; it shows: {shown}",
                app.name,
                crate::infra::words::seconds(app.timeout)
            ))
        })
    }
    .await;
    world.judge(step, result);
}

/// Wait until the app shows one of `marks`, what onramp read of the member's `what`: the
/// app's failure (saying `none`: what was looked for) when it never does, or the mark it
/// showed, noted with `from`.
async fn shows_one_of(
    world: &mut OnrampWorld,
    ctx: &RunContext,
    what: &str,
    marks: &[String],
    none: &str,
    from: &str,
) -> Result<(), StepFailure> {
    let app = back(world, ctx).await?;
    let found = app
        .wait_to_show(ctx, &format!("one of the member's {what}"), |text| {
            crate::app::first_shown(text, marks).map(str::to_owned)
        })
        .await
        .map_err(|shown| {
            StepFailure::app(format!(
                "{} shows none of the member's {what} ({none}) within {}; it shows: {shown}",
                app.name,
                crate::infra::words::seconds(app.timeout)
            ))
        })?;
    ctx.recorder.note(
        crate::run::app::CONTEXT,
        &format!("the app shows \"{found}\", {from}"),
    );
    Ok(())
}

#[then(expr = "the app shows one of the member's {word} resources")]
async fn shows_resource(world: &mut OnrampWorld, step: &Step, kind: String) {
    let result = async {
        let ctx = world.ctx()?;
        if !crate::validate::Registry::global().is_resource_type(&kind) {
            return Err(StepFailure::usage(format!(
                "\"{kind}\" is not an R4 resource type"
            )));
        }
        let marks = ctx.app_marks(&kind).await.map_err(|problem| {
            StepFailure::blocked(format!("no {kind} of the member's to look for: {problem}"))
        })?;
        let none = format!(
            "none of the {} words and dates of their codes onramp read from the payer",
            marks.len()
        );
        let from = format!("of the member's {kind} as the payer holds it");
        shows_one_of(
            world,
            &ctx,
            &format!("{kind} resources"),
            &marks,
            &none,
            &from,
        )
        .await
    }
    .await;
    world.judge(step, result);
}

#[then("the app shows one of the member's claims")]
async fn shows_claim(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let expected = ctx.app_expected().await;
        if let Some(problem) = &expected.claims_problem {
            return Err(StepFailure::blocked(format!(
                "no claim of the member's to look for: {problem}"
            )));
        }
        let marks = &expected.claim_marks;
        let none = format!(
            "no identifier, amount, provider or date of the {} values onramp read from the payer",
            marks.len()
        );
        shows_one_of(
            world,
            &ctx,
            "claims",
            marks,
            &none,
            "from one of the member's claims",
        )
        .await
    }
    .await;
    world.judge(step, result);
}
