//! Steps of reading every required resource type and judging what came back.

use cucumber::{given, then, when};

use super::{OnrampWorld, listed};
use crate::access::{self, Verdict};
use crate::run::StepFailure;

#[given("the app holds the member's access token")]
async fn token(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    world.ctx()?.access_token().await.map(|_| ())
}

#[when(expr = "the app searches for {word} and follows every page")]
async fn searches(world: &mut OnrampWorld, kind: String) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    if !crate::validate::Registry::global().is_resource_type(&kind) {
        return Err(StepFailure::usage(format!(
            "\"{kind}\" is not an R4 resource type"
        )));
    }
    let result = ctx.search(&kind).await;
    world.kind = Some(kind);
    match result.failure {
        None => Ok(()),
        Some(failure) if failure.environment => Err(StepFailure::environment(failure.message)),
        Some(failure) => Err(StepFailure::conformance(failure.message)),
    }
}

fn kind(world: &OnrampWorld) -> Result<String, StepFailure> {
    world
        .kind
        .clone()
        .ok_or_else(|| StepFailure::usage("no search ran in this scenario"))
}

/// A verdict as a step result; notes go to the evidence.
fn judge(world: &OnrampWorld, what: &str, verdict: Verdict) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    for note in &verdict.notes {
        ctx.recorder.note(what, note);
    }
    if verdict.problems.is_empty() {
        Ok(())
    } else {
        Err(StepFailure::conformance(listed(what, &verdict.problems)))
    }
}

#[then("every page is a searchset Bundle")]
async fn searchset(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let kind = kind(world)?;
    let result = world.ctx()?.search(&kind).await;
    judge(
        world,
        &format!("{kind}: not every page is a proper searchset"),
        access::searchset(&result),
    )
}

#[then("the Bundle total matches the entries received")]
async fn total(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let kind = kind(world)?;
    let result = world.ctx()?.search(&kind).await;
    judge(
        world,
        &format!("{kind}: the total does not add up"),
        access::total(&result),
    )
}

#[then("no resource appears twice")]
async fn duplicates(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let kind = kind(world)?;
    let result = world.ctx()?.search(&kind).await;
    judge(
        world,
        &format!("{kind}: resources repeat across pages"),
        access::duplicates(&result),
    )
}

#[then(expr = "every {word} resource is valid FHIR R4")]
async fn valid(world: &mut OnrampWorld, kind: String) -> Result<(), StepFailure> {
    let result = world.ctx()?.search(&kind).await;
    if result.findings.is_empty() {
        return Ok(());
    }
    let problems: Vec<String> = result
        .findings
        .iter()
        .map(|f| {
            format!(
                "{}  {}  {} (page {}{})",
                f.finding.resource.as_deref().unwrap_or("-"),
                if f.finding.path.is_empty() {
                    "-"
                } else {
                    &f.finding.path
                },
                f.finding.message,
                f.page,
                f.finding
                    .entry
                    .map(|e| format!(", entry {e}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let head = format!(
        "{} of {} {kind} resources break the FHIR R4 schema ({} finding{}):",
        result.invalid,
        result.resources.len(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Err(StepFailure::conformance(listed(&head, &problems)))
}

#[then(expr = "every {word} resource belongs to the member")]
async fn belongs(world: &mut OnrampWorld, kind: String) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let all = ctx.searches().await;
    let result = ctx.search(&kind).await;
    let patient = ctx.patient_id().await;
    judge(
        world,
        &format!("{kind}: resources outside the member's compartment"),
        access::membership(&result, patient.as_deref(), &all),
    )
}

#[then("every reference between the returned resources resolves")]
async fn references(world: &mut OnrampWorld) -> Result<(), StepFailure> {
    let kind = kind(world)?;
    let ctx = world.ctx()?;
    let all = ctx.searches().await;
    let result = ctx.search(&kind).await;
    judge(
        world,
        &format!("{kind}: references that do not resolve"),
        access::references(&result, &all),
    )
}
