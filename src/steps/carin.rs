//! Steps of the CARIN searches (CARIN Blue Button 2.0.0 CapabilityStatement: the SHALL
//! reads, search parameters and `_include`s): each tried with values from the member's own
//! data and judged with FHIR R4 search semantics ([`crate::payer::search`]).

use cucumber::gherkin::Step;
use cucumber::{then, when};
use serde_json::Value;

use super::world::{OnrampWorld, Searched};
use crate::infra::words::listed;
use crate::payer::search::{self, key};
use crate::run::StepFailure;
use crate::run::context::RunContext;
use crate::run::verdict;

const CONTEXT: &str = "CARIN searches";
/// What asks for these searches.
const CITED: &str = "CARIN BB 2.0.0 CapabilityStatement";

/// A resource of the member's `kind`, read by id: the first the run's search returned.
async fn read_first(
    ctx: &RunContext,
    kind: &str,
) -> Result<(String, crate::payer::http::Response), StepFailure> {
    // Without a token this scenario fails, as every scenario that needs one does.
    let token = ctx.access_token().await?;
    let search = ctx.search(kind).await;
    if let Some(failure) = &search.failure {
        return Err(StepFailure::blocked(format!(
            "the search for the member's {kind} failed: {}",
            failure.message
        )));
    }
    let id = search
        .resources
        .iter()
        .find_map(|r| r.id.clone())
        .ok_or_else(|| StepFailure::blocked(format!("the member has no {kind} with an id")))?;
    let response = crate::payer::fhir::read(
        &ctx.http,
        &ctx.endpoints.fhir_base,
        &crate::payer::fhir::resource_path(kind, &id),
        Some(&token),
        &format!("{CONTEXT}: read {kind}/{id}"),
    )
    .await
    .map_err(|e| super::world::http_failure(&e))?;
    Ok((id, response))
}

#[when(expr = "the app reads one of the member's {word} resources by its id")]
#[when(expr = "the app reads a {word} of the member's by its id")]
async fn reads_by_id(world: &mut OnrampWorld, kind: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let (id, response) = read_first(&ctx, &kind).await?;
            world.kind = Some(format!("{kind}/{id}"));
            world.response = Some(response);
            Ok(())
        }
        .await,
    );
}

#[then("the read answers 200 with that resource")]
async fn read_answers(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let wanted = world
            .kind
            .clone()
            .ok_or_else(|| StepFailure::usage("no read happened in this scenario"))?;
        let response = world
            .response
            .as_ref()
            .ok_or_else(|| StepFailure::usage("no read happened in this scenario"))?;
        if response.status != 200 {
            let reason = crate::payer::http::operation_outcome_text(&response.body)
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            return Err(StepFailure::conformance(format!(
                "GET {wanted} answered {}{reason}; a search returned it, and {} requires read of every profile it names (FHIR R4 RESTful API §3.1.0.1: 200 with the resource)",
                response.status,
                world
                    .book
                    .map_or_else(|| "CARIN BB 2.0.0".to_owned(), |b| b.ig())
            )));
        }
        match serde_json::from_slice::<Value>(&response.body) {
            Ok(resource) if key(&resource) == wanted => Ok(()),
            Ok(resource) => Err(StepFailure::conformance(format!(
                "GET {wanted} answered {} instead",
                key(&resource)
            ))),
            Err(e) => Err(StepFailure::conformance(format!(
                "GET {wanted} answered a body that is not JSON ({e})"
            ))),
        }
    })();
    world.judge(step, result);
}

#[when(
    regex = r"^the app searches (\S+) by (\S+?)(?: (eq|ne|gt|lt|ge|le|sa|eb))? with a value from the member's data$"
)]
async fn searches_by(world: &mut OnrampWorld, kind: String, code: String, prefix: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let (parameter, prefix) = search::searchable(&kind, &code, &prefix)?;
            let (id, response) = read_first(&ctx, &kind).await?;
            let resource: Value = (response.status == 200)
                .then(|| serde_json::from_slice(&response.body).ok())
                .flatten()
                .ok_or_else(|| {
                    StepFailure::blocked(format!(
                        "{kind}/{id} could not be read to take a value from (see the read by id)"
                    ))
                })?;
            let value = parameter.value_from(&resource, prefix).ok_or_else(|| {
                StepFailure::blocked(format!(
                    "{kind}/{id} has no value for {code} to search with"
                ))
            })?;
            let pages = ctx
                .search_query(
                    &kind,
                    &[(code.as_str(), value.as_str())],
                    &format!("{CONTEXT}: {kind}?{code}={value}"),
                )
                .await?;
            world.searched = Some(Searched {
                kind,
                parameter: Some(parameter),
                value,
                more: Vec::new(),
                cited: CITED.to_owned(),
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

pub(super) fn searched(world: &OnrampWorld) -> Result<&Searched, StepFailure> {
    world
        .searched
        .as_ref()
        .ok_or_else(|| StepFailure::usage("no search happened in this scenario"))
}

/// `Type?code=value[&code=value]`, for messages.
pub(crate) fn asked(searched: &Searched) -> String {
    match &searched.parameter {
        Some(parameter) => {
            let mut text = format!("{}?{}={}", searched.kind, parameter.code, searched.value);
            for (more, value) in &searched.more {
                text.push_str(&format!("&{}={value}", more.code));
            }
            text
        }
        None => {
            let mut text = format!("{}?", searched.kind);
            for (more, value) in &searched.more {
                text.push_str(&format!("{}={value}&", more.code));
            }
            text.push_str(&format!("{}={}", searched.including, searched.value));
            text
        }
    }
}

#[then(regex = r"^the search finds the resource the values? came from$")]
async fn finds_source(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let searched = searched(world)?;
        let source = searched.source.clone().unwrap_or_default();
        let found = searched
            .matches()
            .any(|r| r.get("id").and_then(Value::as_str) == Some(source.as_str()));
        if found {
            return Ok(());
        }
        if !searched.complete {
            return Err(StepFailure::blocked(format!(
                "{} has more pages than onramp reads of a search ({}); {}/{source} may be on one it did not read",
                asked(searched),
                crate::run::searches::QUERY_PAGE_CAP,
                searched.kind
            )));
        }
        Err(StepFailure::conformance(format!(
            "{} found {} matches, but not {}/{source}, whose own {} (FHIR R4 Search; {}: SHALL support {})",
            asked(searched),
            searched.matches().count(),
            searched.kind,
            if searched.more.is_empty() {
                "value it is"
            } else {
                "values they are"
            },
            searched.cited,
            searched
                .parameter
                .iter()
                .chain(searched.more.iter().map(|(p, _)| p))
                .map(|p| p.code.as_str())
                .collect::<Vec<_>>()
                .join("+")
        )))
    })();
    world.judge(step, result);
}

#[then("every match satisfies the search")]
async fn matches_satisfy(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let searched = searched(world)?;
        let parameter = searched
            .parameter
            .as_ref()
            .ok_or_else(|| StepFailure::usage("this search had no parameter"))?;
        let mut wrong = search::unsatisfied(
            &searched.kind,
            &searched.entries,
            parameter,
            &searched.value,
        );
        for (more, value) in &searched.more {
            for key in search::unsatisfied(&searched.kind, &searched.entries, more, value) {
                if !wrong.contains(&key) {
                    wrong.push(key);
                }
            }
        }
        if wrong.is_empty() {
            return Ok(());
        }
        Err(StepFailure::conformance(listed(
            &format!(
                "{} returned {} matches that do not satisfy it (FHIR R4 Search: a match satisfies every parameter):",
                asked(searched),
                wrong.len()
            ),
            &wrong,
        )))
    })();
    world.judge(step, result);
}

#[when(expr = "the app searches with _include={word}")]
async fn searches_with_include(world: &mut OnrampWorld, include: String) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let (kind, _) = search::includable(&include)?;
            let pages = ctx
                .search_query(
                    kind,
                    &[("_include", include.as_str())],
                    &format!("{CONTEXT}: {kind}?_include={include}"),
                )
                .await?;
            world.searched = Some(Searched {
                kind: kind.to_owned(),
                parameter: None,
                value: include.clone(),
                more: Vec::new(),
                cited: CITED.to_owned(),
                source: None,
                entries: search::entries(&pages),
                complete: true,
                including: "_include",
            });
            Ok(())
        }
        .await,
    );
}

#[then("every included resource is marked as included")]
async fn marked_included(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let searched = searched(world)?;
        let unmarked = search::unmarked(&searched.kind, &searched.entries);
        if unmarked.is_empty() {
            return Ok(());
        }
        Err(StepFailure::conformance(listed(
            &format!(
                "{} returned resources of other types not marked as included (FHIR R4 Search §3.1.1.5.1: search.mode = include, so that an app does not take them for matches):",
                asked(searched)
            ),
            &unmarked,
        )))
    })();
    world.judge(step, result);
}

#[then("the included resources are those the matches reference")]
async fn included_are_referenced(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let ctx = world.ctx()?;
        let searched = searched(world)?;
        let code = searched.value.split_once(':').map_or("", |(_, c)| c);
        // A server cannot include a type it does not serve.
        let capability = match world.book {
            Some(_) => None,
            None => ctx.server_capability().await,
        };
        let book_types = world.book.map(crate::payer::public::Book::types);
        let served = |target: &str| match &book_types {
            Some(types) => types.iter().any(|t| t == target),
            None => capability
                .as_ref()
                .is_none_or(|c| c.resources.contains_key(target)),
        };
        let inclusion = search::inclusion(&searched.kind, code, &searched.entries, served);
        if !inclusion.unserved.is_empty() {
            ctx.recorder.note(
                CONTEXT,
                &format!(
                    "{}: the matches reference {}, which the CapabilityStatement does not serve; those are not expected",
                    asked(searched),
                    inclusion.unserved.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if inclusion.nothing {
            ctx.recorder.note(
                CONTEXT,
                &format!("{}: the member's matches reference nothing through {code}", asked(searched)),
            );
        }
        let problems = inclusion.problems(code);
        if problems.is_empty() {
            return Ok(());
        }
        Err(StepFailure::conformance(listed(
            &format!(
                "{} did not include what the matches reference (FHIR R4 Search §3.1.1.5.1; {}: SHALL support _include={}):",
                asked(searched),
                searched.cited,
                searched.value
            ),
            &problems,
        )))
    }
    .await;
    world.judge(step, result);
}
