//! Steps of the clinical data (US Core, [`crate::payer::clinical`]): each clinical type read
//! with a search US Core's CapabilityStatement makes SHALL, and each SHALL search tried with
//! values from the member's own data. The checks on what was read are the required types'
//! (steps/resources.rs); those on what a search found are the CARIN searches' (steps/carin.rs).

use cucumber::gherkin::Step;
use cucumber::{then, when};
use serde_json::Value;

use super::world::{OnrampWorld, Searched};
use crate::payer::clinical;
use crate::payer::search::{self, Parameter};
use crate::run::StepFailure;
use crate::run::context::RunContext;
use crate::run::verdict;
use crate::validate::Tier;

/// The most of the member's resources read by id to find one with a value for every
/// parameter of a search.
const CANDIDATES: usize = 10;

#[when(
    expr = "the app searches for the member's {word} as US Core requires and follows every page"
)]
async fn reads(world: &mut OnrampWorld, kind: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            if !ctx.target.clinical_resources.contains(&kind) {
                return Err(StepFailure::usage(format!(
                    "{kind} is not one of the target's clinical types ([resources] clinical: {})",
                    ctx.target.clinical_resources.join(", ")
                )));
            }
            served(&ctx, &kind).await?;
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

/// A clinical type the target did not list is read where the payer's CapabilityStatement
/// lists it: US Core asks a server for Patient and at least one more of its profiles, not
/// every one (US Core CapabilityStatement, "Behavior").
async fn served(ctx: &RunContext, kind: &str) -> Result<(), StepFailure> {
    if ctx.target.clinical_listed {
        return Ok(());
    }
    let version = clinical::version();
    match ctx.server_capability().await {
        Some(capability) if capability.resources.contains_key(kind) => Ok(()),
        Some(_) => Err(StepFailure::blocked(format!(
            "the payer's CapabilityStatement lists no {kind}; US Core {version} asks a server for Patient and at least one other of its profiles, not every one. List {kind} under [resources] clinical to require it"
        ))),
        None => Err(StepFailure::blocked(format!(
            "which clinical types the payer serves is unknown (its CapabilityStatement could not be read); list them under [resources] clinical to read them anyway (US Core {version})"
        ))),
    }
}

#[then(expr = "every {word} resource conforms to its US Core profiles")]
async fn profile_valid(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result = super::resources::tier_findings(world, &kind, Some(Tier::Profile)).await;
    world.judge(step, result);
}

#[when(regex = r"^the app searches (\S+) by (\S+) with values from the member's data$")]
async fn searches_by(world: &mut OnrampWorld, kind: String, search: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let parameters = search
                .split('+')
                .map(|code| {
                    Parameter::of(&kind, code).ok_or_else(|| {
                        StepFailure::usage(format!(
                            "{kind} has no search parameter {code} onramp can judge (US Core {}, FHIR R4)",
                            clinical::version()
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            served(&ctx, &kind).await?;
            let (id, values) = source(&ctx, &kind, &parameters).await?;
            let pairs: Vec<(&str, &str)> = parameters
                .iter()
                .zip(&values)
                .map(|(p, v)| (p.code.as_str(), v.as_str()))
                .collect();
            let pages = ctx
                .search_query(&kind, &pairs, &format!("US Core searches: {kind}?{search}"))
                .await?;
            let mut given = parameters.into_iter().zip(values);
            let (parameter, value) = given.next().ok_or_else(|| {
                StepFailure::usage(format!("\"{search}\" names no search parameter"))
            })?;
            world.searched = Some(Searched {
                kind,
                parameter: Some(parameter),
                value,
                more: given.collect(),
                cited: format!("US Core {} CapabilityStatement", clinical::version()),
                source: Some(id),
                entries: search::entries(&pages),
                complete: true,
                including: "_include",
            });
            Ok(())
        }
        .await,
    );
}

/// One of the member's `kind` with a value for every parameter (read by id: a search keeps
/// no resource whole), and those values.
async fn source(
    ctx: &RunContext,
    kind: &str,
    parameters: &[Parameter],
) -> Result<(String, Vec<String>), StepFailure> {
    let token = ctx.access_token().await?;
    let found = ctx.search(kind).await;
    if let Some(failure) = &found.failure {
        return Err(StepFailure::blocked(format!(
            "the search for the member's {kind} failed: {}",
            failure.message
        )));
    }
    let ids: Vec<&String> = found
        .resources
        .iter()
        .filter_map(|r| r.id.as_ref())
        .collect();
    if ids.is_empty() {
        return Err(StepFailure::blocked(format!(
            "the member has no {kind} to take values from"
        )));
    }
    for id in ids.iter().take(CANDIDATES) {
        let response = crate::payer::fhir::read(
            &ctx.http,
            &ctx.endpoints.fhir_base,
            &crate::payer::fhir::resource_path(kind, id),
            Some(&token),
            &format!("US Core searches: read {kind}/{id}"),
        )
        .await
        .map_err(|e| super::world::http_failure(&e))?;
        let Some(resource) = (response.status == 200)
            .then(|| serde_json::from_slice::<Value>(&response.body).ok())
            .flatten()
        else {
            continue;
        };
        let values: Option<Vec<String>> = parameters
            .iter()
            .map(|p| p.value_from(&resource, None))
            .collect();
        if let Some(values) = values {
            return Ok(((*id).clone(), values));
        }
    }
    let codes: Vec<&str> = parameters.iter().map(|p| p.code.as_str()).collect();
    Err(StepFailure::blocked(format!(
        "none of the member's first {} {kind} resources has a value for each of {} to search with",
        ids.len().min(CANDIDATES),
        codes.join(", ")
    )))
}
