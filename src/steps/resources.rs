//! Steps of reading every required resource type and judging what came back. Each check
//! records its verdict for the summary when it runs.

use cucumber::gherkin::Step;
use cucumber::{given, then, when};

use super::world::OnrampWorld;
use crate::infra::words::listed;
use crate::payer::access::{self, Verdict};
use crate::payer::fhir::SearchResult;
use crate::run::StepFailure;
use crate::run::verdict;
use crate::validate::Tier;

#[given("the app holds the member's access token")]
async fn token(world: &mut OnrampWorld) {
    verdict(async { world.ctx()?.access_token().await.map(|_| ()) }.await);
}

#[when(expr = "the app searches for {word} and follows every page")]
async fn searches(world: &mut OnrampWorld, kind: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            if !crate::validate::Registry::global().is_resource_type(&kind) {
                return Err(StepFailure::usage(format!(
                    "\"{kind}\" is not an R4 resource type"
                )));
            }
            let result = ctx.search(&kind).await;
            world.kind = Some(kind);
            match &result.failure {
                None => Ok(()),
                Some(failure) => Err(StepFailure::from(failure)),
            }
        }
        .await,
    );
}

fn kind(world: &OnrampWorld) -> Result<String, StepFailure> {
    world
        .kind
        .clone()
        .ok_or_else(|| StepFailure::usage("no search ran in this scenario"))
}

/// Record `verdict` of `check` on the scenario's type; its notes go to the evidence, its
/// problems fail the step.
fn judge(
    world: &OnrampWorld,
    check: &str,
    head: &str,
    verdict: Verdict,
) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let kind = match world.book {
        Some(book) => format!("{} {}", book.title(), kind(world)?),
        None => kind(world)?,
    };
    ctx.checks.record(&ctx.recorder, &kind, check, &verdict);
    for note in &verdict.notes {
        ctx.recorder.note(head, note);
    }
    if verdict.problems.is_empty() {
        Ok(())
    } else {
        Err(StepFailure::conformance(listed(head, &verdict.problems)))
    }
}

/// Judge the scenario's search with `rule`, recording it as `check`.
async fn check_search(
    world: &OnrampWorld,
    check: &str,
    head: &str,
    rule: fn(&SearchResult) -> Verdict,
) -> Result<(), StepFailure> {
    let kind = kind(world)?;
    let result = world.read_all(&kind).await?;
    judge(world, check, &format!("{kind}: {head}"), rule(&result))
}

#[then("every page is a searchset Bundle")]
async fn searchset(world: &mut OnrampWorld, step: &Step) {
    let result = check_search(
        world,
        "searchset",
        "not every page is a proper searchset",
        access::searchset,
    )
    .await;
    world.judge(step, result);
}

#[then("the Bundle total matches the entries received")]
async fn total(world: &mut OnrampWorld, step: &Step) {
    let result = check_search(world, "total", "the total does not add up", access::total).await;
    world.judge(step, result);
}

#[then("no resource appears twice")]
async fn duplicates(world: &mut OnrampWorld, step: &Step) {
    let result = check_search(
        world,
        "duplicates",
        "resources repeat across pages",
        access::duplicates,
    )
    .await;
    world.judge(step, result);
}

#[then(expr = "every {word} resource is valid FHIR R4")]
async fn valid(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = tier_findings(world, &kind, None).await;
    world.judge(step, result);
}

#[then(expr = "every {word} resource passes the R4 JSON Schema")]
async fn schema_valid(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = tier_findings(world, &kind, Some(Tier::Schema)).await;
    world.judge(step, result);
}

#[then(expr = "every {word} resource conforms to the R4 StructureDefinitions")]
async fn structure_valid(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = tier_findings(world, &kind, Some(Tier::Structure)).await;
    world.judge(step, result);
}

#[then(expr = "every {word} resource conforms to its CARIN Blue Button profiles")]
async fn profile_valid(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = tier_findings(world, &kind, Some(Tier::Profile)).await;
    world.judge(step, result);
}

#[then(expr = "the {word} resources carry every must-support element of their profiles")]
async fn must_support(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = async {
        use crate::config::MustSupportLevel;
        use crate::payer::fhir::MustSupportVerdict;
        let ctx = world.ctx()?;
        let verdict = match ctx.target.validation.must_support {
            MustSupportLevel::Warn => Some(MustSupportVerdict::Warn),
            MustSupportLevel::Fail => Some(MustSupportVerdict::Fail),
            MustSupportLevel::Off => None,
        };
        world
            .read_all(&kind)
            .await?
            .must_support_verdict(&kind, verdict, ctx.validator.tier())
    }
    .await;
    world.judge(step, result);
}

/// The findings of one tier (all of them for `None`) on the `kind` resources read.
pub(super) async fn tier_findings(
    world: &OnrampWorld,
    kind: &str,
    tier: Option<Tier>,
) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    world
        .read_all(kind)
        .await?
        .tier_verdict(kind, tier, ctx.validator.tier())
}

#[then(expr = "every {word} resource belongs to the member")]
async fn belongs(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let all = ctx.searches().await;
        let result = ctx.search(&kind).await;
        let patient = ctx.patient_id().await;
        let patients = all.get("Patient").map(|p| p.resources.len());
        judge(
            world,
            "membership",
            &format!("{kind}: resources outside the member's compartment"),
            access::membership(&result, patient.as_deref(), patients, &all),
        )
    }
    .await;
    world.judge(step, result);
}

#[then("every reference between the returned resources resolves")]
async fn references(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let kind = kind(world)?;
        let ctx = world.ctx()?;
        let all = match world.book {
            Some(book) => ctx.book_searches(book).await,
            None => ctx.searches().await,
        };
        let result = world.read_all(&kind).await?;
        judge(
            world,
            "references",
            &format!("{kind}: references that do not resolve"),
            access::references(&result, &all),
        )
    }
    .await;
    world.judge(step, result);
}
