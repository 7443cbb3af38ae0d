//! Steps of isolation between members (`@isolation`): every member the target lists signs
//! in, each one's token reads their own compartment, and each one's token asks for the
//! other members' resources; an answer with another member's data fails. What counts as
//! their data is [`crate::payer::isolation`]'s.

use std::collections::BTreeMap;

use cucumber::gherkin::Step;
use cucumber::{given, then, when};

use super::world::{Asked, OnrampWorld};
use crate::infra::words::listed;
use crate::payer::isolation::{self, Owner, Way};
use crate::run::StepFailure;
use crate::run::context::RunContext;
use crate::run::verdict;
use crate::summary::FailureKind;

/// How many of a member's resources of a type the others ask for, by id.
const SAMPLE: usize = 3;

/// The members' count, or why isolation cannot be checked.
fn members(ctx: &RunContext) -> Result<usize, StepFailure> {
    match ctx.target.members.len() {
        0 | 1 => Err(StepFailure::blocked(format!(
            "the target {} lists one member; list two or more test members of the plan under [[members]] to check that no member's token reads another's data",
            ctx.target.source.display()
        ))),
        n => Ok(n),
    }
}

#[given("every member the target lists has signed in")]
async fn signed_in(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            for index in 0..members(&ctx)? {
                ctx.member_grant(index)
                    .await
                    .map_err(|failure| StepFailure {
                        message: format!(
                            "{} could not sign in: {}",
                            ctx.member_label(index),
                            failure.message
                        ),
                        ..failure
                    })?;
            }
            Ok(())
        }
        .await,
    );
}

/// The required types a member's token can search (a type the CapabilityStatement offers
/// no search for is left out, saying so).
async fn searchable(ctx: &RunContext) -> Vec<String> {
    let capability = ctx.server_capability().await;
    let mut kinds = Vec::new();
    for kind in &ctx.target.required_resources {
        match &capability {
            Some(c) if c.resources.contains_key(kind) && !c.searches(kind) => ctx.recorder.note(
                "Isolation",
                &format!(
                    "{kind} is not searched for each member: the CapabilityStatement offers no search of it"
                ),
            ),
            _ => kinds.push(kind.clone()),
        }
    }
    kinds
}

#[when("each member's token searches every required type")]
async fn search_all(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let mut failed = Vec::new();
            for index in 0..members(&ctx)? {
                for kind in searchable(&ctx).await {
                    let result = ctx.member_search(index, &kind).await;
                    match &result.failure {
                        Some(f) if f.kind != FailureKind::Conformance => {
                            return Err(StepFailure::from(f));
                        }
                        Some(f) => failed.push(format!(
                            "{}'s {kind}: {}",
                            ctx.member_label(index),
                            f.message
                        )),
                        None => {}
                    }
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(StepFailure::conformance(listed(
                    "not every member's search could be read:",
                    &failed,
                )))
            }
        }
        .await,
    );
}

/// Each member's Patient id, or the problems of the members whose cannot be established.
async fn patients(ctx: &RunContext, count: usize) -> (Vec<Option<String>>, Vec<String>) {
    let mut ids = Vec::new();
    let mut problems = Vec::new();
    for index in 0..count {
        let id = ctx.member_patient(index).await;
        if id.is_none() {
            let returned = ctx.member_search(index, "Patient").await.resources.len();
            problems.push(format!(
                "whose data {}'s token reads cannot be established: the token response names no patient (SMART App Launch 2.0: `patient` comes with patient-level scopes) and their Patient search returned {returned} Patients, not one",
                ctx.member_label(index)
            ));
        }
        ids.push(id);
    }
    (ids, problems)
}

#[then("each member is a different patient")]
async fn different(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let count = members(&ctx)?;
        let (ids, mut problems) = patients(&ctx, count).await;
        for (index, earlier, id) in isolation::same_patient(&ids) {
            problems.push(format!(
                "{} signed in as Patient/{id}, which is {}'s: the sign-in or the token endpoint gave one member another member's identity",
                ctx.member_label(index),
                ctx.member_label(earlier)
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StepFailure::conformance(listed(
                "the members are not told apart:",
                &problems,
            )))
        }
    }
    .await;
    world.judge(step, result);
}

#[then("every resource each member's token returns belongs to that member")]
async fn own(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let count = members(&ctx)?;
        let kinds = searchable(&ctx).await;
        let mut problems = Vec::new();
        for index in 0..count {
            let mut all = BTreeMap::new();
            for kind in &kinds {
                all.insert(kind.clone(), ctx.member_search(index, kind).await);
            }
            let patient = ctx.member_patient(index).await;
            let patients = all.get("Patient").map(|r| r.resources.len());
            for result in all.values().filter(|r| r.failure.is_none()) {
                let verdict =
                    crate::payer::access::membership(result, patient.as_deref(), patients, &all);
                problems.extend(
                    verdict
                        .problems
                        .iter()
                        .map(|p| format!("{}: {p}", ctx.member_label(index))),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StepFailure::conformance(listed(
                "a member's token is served data that is not theirs:",
                &problems,
            )))
        }
    }
    .await;
    world.judge(step, result);
}

/// Ask, with every member's token, for the other members' `kind` resources `way`.
async fn ask(ctx: &RunContext, kind: &str, way: Way) -> Result<Asked, StepFailure> {
    let count = members(ctx)?;
    let (ids, problems) = patients(ctx, count).await;
    if !problems.is_empty() {
        return Err(StepFailure::blocked(listed(
            "whose data is whose is not known:",
            &problems,
        )));
    }
    if !isolation::same_patient(&ids).is_empty() {
        return Err(StepFailure::blocked(
            "two members signed in as the same patient (see \"each member is a different patient\")",
        ));
    }
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    let parameters = isolation::patient_parameters(kind);
    let mut asked = Asked {
        kind: kind.to_owned(),
        way,
        probes: Vec::new(),
        nothing: None,
    };
    if way == Way::PatientSearch && parameters.is_empty() {
        asked.nothing = Some(format!(
            "{kind} has no search parameter naming a Patient (it is found by _id)"
        ));
        return Ok(asked);
    }
    for (owner_index, patient) in ids.iter().enumerate() {
        let owned = ctx.member_owned(owner_index, kind, patient).await;
        if owned.is_empty() {
            continue;
        }
        let owner = Owner {
            kind,
            patient,
            ids: &owned,
        };
        let paths = isolation::probe_paths(owner, way, &parameters, SAMPLE);
        for reader in (0..count).filter(|r| *r != owner_index) {
            for path in &paths {
                asked
                    .probes
                    .push(ctx.probe(reader, owner, owner_index, way, path).await?);
            }
        }
    }
    if asked.probes.is_empty() {
        asked.nothing = Some(format!(
            "no member's token was served {kind} resources of their own (a type outside the Patient compartment, such as Organization, is shared), so there is nothing of theirs to ask for"
        ));
    }
    Ok(asked)
}

async fn asking(world: &mut OnrampWorld, kind: String, way: Way) {
    let result: Result<(), StepFailure> = async {
        let ctx = world.ctx()?;
        let asked = ask(&ctx, &kind, way).await?;
        world.asked.push(asked);
        Ok(())
    }
    .await;
    // Nothing to ask is for the check to say (skipped, with the reason).
    if let Err(failure) = &result
        && failure.kind == FailureKind::Blocked
    {
        world.asked.push(Asked {
            kind,
            way,
            probes: Vec::new(),
            nothing: Some(failure.message.clone()),
        });
        return;
    }
    verdict(result);
}

#[when(expr = "each member's token reads the other members' {word} by id")]
async fn read_by_id(world: &mut OnrampWorld, kind: String) {
    asking(world, kind, Way::Read).await;
}

#[when(expr = "each member's token searches {word} by the other members' _id")]
async fn search_by_id(world: &mut OnrampWorld, kind: String) {
    asking(world, kind, Way::IdSearch).await;
}

#[when(expr = "each member's token searches {word} by the other members' Patient")]
async fn search_by_patient(world: &mut OnrampWorld, kind: String) {
    asking(world, kind, Way::PatientSearch).await;
}

/// Fail when any answer of the scenario's `way` held another member's `kind` data.
fn asked_of_others(world: &OnrampWorld, kind: &str, way: Way) -> Result<(), StepFailure> {
    let ctx = world.ctx()?;
    let asked = world
        .asked
        .iter()
        .rev()
        .find(|a| a.kind == kind && a.way == way)
        .ok_or_else(|| {
            StepFailure::usage(format!(
                "no step of this scenario asked for another member's {kind} ({})",
                way.describe()
            ))
        })?;
    if let Some(why) = &asked.nothing {
        return Err(StepFailure::blocked(why.clone()));
    }
    let context = format!("Isolation: {kind}, {}", way.describe());
    for odd in asked
        .probes
        .iter()
        .filter(|p| p.status.is_none_or(|s| s >= 500))
    {
        ctx.recorder.note(
            &context,
            &format!(
                "{}'s token: GET {} got {} (not a leak, but no refusal either)",
                ctx.member_label(odd.reader),
                odd.url,
                odd.verdict
            ),
        );
    }
    isolation::no_leaks(kind, &asked.probes, |member| ctx.member_label(member))?;
    ctx.recorder.note(
        &context,
        &format!(
            "{} requests with one member's token for another member's {kind}: none was served their data",
            asked.probes.len()
        ),
    );
    Ok(())
}

#[then(expr = "no member's token reads another member's {word} by id")]
async fn not_read(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = asked_of_others(world, &kind, Way::Read);
    world.judge(step, result);
}

#[then(expr = "no member's token finds another member's {word} by _id")]
async fn not_found_by_id(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = asked_of_others(world, &kind, Way::IdSearch);
    world.judge(step, result);
}

#[then(expr = "no member's token finds another member's {word} by their Patient")]
async fn not_found_by_patient(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = asked_of_others(world, &kind, Way::PatientSearch);
    world.judge(step, result);
}
