//! Steps of the public APIs ([`crate::payer::public`]): the Provider Directory
//! (`provider-directory.feature`) and the drug formulary (`formulary.feature`). Each type is
//! read whole, without the member's sign-in, and judged by the checks of the required types
//! (steps/resources.rs); reads by id, searches and `_include`s by those of the CARIN
//! searches (steps/carin.rs); `_revinclude`, chains and the directory's public character
//! here.

use std::collections::{BTreeSet, HashSet};

use cucumber::gherkin::Step;
use cucumber::{then, when};
use serde_json::Value;

use super::carin::searched;
use super::world::{OnrampWorld, Searched};
use crate::infra::words::listed;
use crate::payer::public::{Book, PATIENT_TYPES};
use crate::payer::search::{self, ParamType, Parameter, key};
use crate::run::StepFailure;
use crate::run::context::RunContext;
use crate::run::verdict;

/// The most resources read by id to find one with a value to search with.
const CANDIDATES: usize = 10;
/// The most resources an `_include` or `_revinclude` is tried on (`_id=a,b,…`).
const FOCUS: usize = 5;
/// The most referenced resources a chained search's matches are checked against.
const CHAIN_READS: usize = 50;

/// The citation of the directory's public character.
const PUBLIC: &str = "CMS-9115-F, 42 CFR 422.120(a): a publicly accessible Provider Directory API";

/// The scenario's public API (by its title) and the run's context, once `kind` is one of
/// the API's types and the target has it.
fn enter(
    world: &mut OnrampWorld,
    name: &str,
    kind: &str,
) -> Result<(Book, std::sync::Arc<RunContext>), StepFailure> {
    let book = book_named(name)?;
    served(book, kind)?;
    let ctx = world.ctx()?;
    ctx.books.get(book)?;
    world.book = Some(book);
    Ok((book, ctx))
}

/// What a search of `book`'s `kind` by `parameter` = `value` (taken from `source`,
/// `Type/id`) returned, for the `Then` steps after it.
async fn search_by(
    ctx: &RunContext,
    book: Book,
    kind: &str,
    (code, parameter): (&str, Parameter),
    (source, value): (String, String),
) -> Result<Searched, StepFailure> {
    let context = format!("{}: {kind}?{code}={value}", book.title());
    let (pages, complete) = ctx
        .book_query(book, kind, &[(code, value.as_str())], &context)
        .await?;
    Ok(Searched {
        kind: kind.to_owned(),
        cited: match code.split_once('.') {
            Some(_) => format!("{} CapabilityStatement (chain {code})", book.ig()),
            None => format!("{} CapabilityStatement", book.ig()),
        },
        parameter: Some(parameter),
        value,
        more: Vec::new(),
        source: source.split_once('/').map(|(_, id)| id.to_owned()),
        entries: search::entries(&pages),
        complete,
        including: "_include",
    })
}

fn book_named(name: &str) -> Result<Book, StepFailure> {
    Book::ALL
        .into_iter()
        .find(|b| b.title() == name)
        .ok_or_else(|| StepFailure::usage(format!("\"{name}\" is no public API onramp knows")))
}

/// That `kind` is one of `book`'s types.
fn served(book: Book, kind: &str) -> Result<(), StepFailure> {
    if book.types().iter().any(|t| t == kind) {
        return Ok(());
    }
    Err(StepFailure::usage(format!(
        "{kind} is not a type of the {} ({}: {})",
        book.title(),
        book.ig(),
        book.types().join(", ")
    )))
}

#[when(
    regex = r"^the app reads every (\S+) of the (Provider Directory|Drug Formulary) and follows every page$"
)]
async fn reads_all(world: &mut OnrampWorld, kind: String, name: String) {
    verdict(
        async {
            let (book, ctx) = enter(world, &name, &kind)?;
            let result = ctx.book_search(book, &kind).await;
            world.kind = Some(kind);
            match &result.failure {
                None => Ok(()),
                Some(failure) => Err(StepFailure::from(failure)),
            }
        }
        .await,
    );
}

/// Whether a resource references one of a reference parameter's target types.
fn refers_to(resource: &crate::payer::fhir::ResourceSummary, parameter: &Parameter) -> bool {
    parameter.kind == ParamType::Reference
        && resource.references.iter().any(|reference| {
            crate::payer::access::reference_target(reference)
                .is_some_and(|(kind, _)| parameter.target.contains(&kind))
        })
}

/// Up to `n` of `all`, spread evenly over it from the first: a sample of a large directory
/// that is not all copies of its first few resources.
fn spread<T: Copy>(all: &[T], n: usize) -> Vec<T> {
    if all.len() <= n {
        return all.to_vec();
    }
    (0..n).map(|i| all[i * all.len() / n]).collect()
}

/// The ids of up to [`FOCUS`] of `book`'s `kind` an `_include` (`how`) of `source:code`
/// is tried on: for `_include`, those that reference something through `code`; for
/// `_revinclude`, those the fewest `source` resources reference (so that what comes back
/// stays small in a directory of 50,000 roles), else any.
async fn focus(
    ctx: &RunContext,
    book: Book,
    kind: &str,
    how: &str,
    (source, parameter): (&str, &Parameter),
) -> Result<Vec<String>, StepFailure> {
    let own = ctx.book_search(book, kind).await;
    let ids = |list: Vec<&crate::payer::fhir::ResourceSummary>| -> Vec<String> {
        spread(&list, FOCUS)
            .into_iter()
            .filter_map(|r| r.id.clone())
            .collect()
    };
    let chosen = if how == "_include" {
        ids(own
            .resources
            .iter()
            .filter(|r| refers_to(r, parameter))
            .collect())
    } else {
        let mut count: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for resource in &ctx.book_search(book, source).await.resources {
            for reference in &resource.references {
                if let Some((target, id)) = crate::payer::access::reference_target(reference)
                    && target == kind
                {
                    *count.entry(id).or_default() += 1;
                }
            }
        }
        let mut fewest: Vec<(usize, String)> = count.into_iter().map(|(id, n)| (n, id)).collect();
        fewest.sort();
        fewest.into_iter().take(FOCUS).map(|(_, id)| id).collect()
    };
    if !chosen.is_empty() {
        return Ok(chosen);
    }
    Ok(ids(own.resources.iter().collect()))
}

/// Up to [`CANDIDATES`] of `book`'s `kind`, read by id (a search keeps no resource whole):
/// for a reference parameter, first those that reference one of its target types.
async fn candidates(
    ctx: &RunContext,
    book: Book,
    kind: &str,
    parameter: &Parameter,
) -> Result<Vec<std::sync::Arc<Value>>, StepFailure> {
    let found = ctx.book_search(book, kind).await;
    if let Some(failure) = &found.failure {
        return Err(StepFailure::blocked(format!(
            "reading every {kind} of the {} failed: {}",
            book.title(),
            failure.message
        )));
    }
    let (first, rest): (Vec<_>, Vec<_>) = found
        .resources
        .iter()
        .partition(|r| refers_to(r, parameter));
    let mut out = Vec::new();
    for id in spread(&first, CANDIDATES)
        .into_iter()
        .chain(spread(&rest, CANDIDATES))
        .filter_map(|r| r.id.as_ref())
        .take(CANDIDATES)
    {
        if let Some(resource) = ctx.book_resource(book, kind, id).await? {
            out.push(resource);
        }
    }
    if out.is_empty() {
        return Err(StepFailure::blocked(format!(
            "the {} has no {kind} that reads by id to take values from",
            book.title()
        )));
    }
    Ok(out)
}

#[when(regex = r"^the app reads a (\S+) of the (Provider Directory|Drug Formulary) by its id$")]
async fn reads_by_id(world: &mut OnrampWorld, kind: String, name: String) {
    verdict(
        async {
            let (book, ctx) = enter(world, &name, &kind)?;
            let found = ctx.book_search(book, &kind).await;
            if let Some(failure) = &found.failure {
                return Err(StepFailure::blocked(format!(
                    "reading every {kind} failed: {}",
                    failure.message
                )));
            }
            let id = found
                .resources
                .iter()
                .find_map(|r| r.id.clone())
                .ok_or_else(|| {
                    StepFailure::blocked(format!("the {} has no {kind}", book.title()))
                })?;
            let response = ctx
                .book_read(
                    book,
                    &kind,
                    &id,
                    &format!("{}: read {kind}/{id}", book.title()),
                )
                .await?;
            world.kind = Some(format!("{kind}/{id}"));
            world.response = Some(response);
            Ok(())
        }
        .await,
    );
}

#[when(
    regex = r"^the app searches the (Provider Directory|Drug Formulary)'s (\S+) by (\S+) with a value from its data$"
)]
async fn searches_by(world: &mut OnrampWorld, name: String, kind: String, code: String) {
    verdict(
        async {
            let (book, ctx) = enter(world, &name, &kind)?;
            let parameter = Parameter::of(&kind, &code).ok_or_else(|| {
                StepFailure::usage(format!(
                    "{kind} has no search parameter {code} onramp can judge ({}, FHIR R4)",
                    book.ig()
                ))
            })?;
            let (source, value) = candidates(&ctx, book, &kind, &parameter)
                .await?
                .iter()
                .find_map(|r| Some((key(r), parameter.value_from(r, None)?)))
                .ok_or_else(|| {
                    StepFailure::blocked(format!(
                        "none of the first {CANDIDATES} {kind} of the {} has a value for {code} to search with",
                        book.title()
                    ))
                })?;
            world.searched =
                Some(search_by(&ctx, book, &kind, (&code, parameter), (source, value)).await?);
            Ok(())
        }
        .await,
    );
}

#[when(
    regex = r"^the app searches the (Provider Directory|Drug Formulary)'s (\S+) with (_include|_revinclude)=(\S+)$"
)]
async fn searches_with(
    world: &mut OnrampWorld,
    name: String,
    kind: String,
    how: String,
    spec: String,
) {
    verdict(
        async {
            let (book, ctx) = enter(world, &name, &kind)?;
            let (source, code) = spec
                .split_once(':')
                .ok_or_else(|| StepFailure::usage(format!("{how}={spec} is not Type:parameter")))?;
            let parameter = Parameter::of(source, code)
                .filter(|p| p.kind == ParamType::Reference)
                .ok_or_else(|| {
                    StepFailure::usage(format!(
                        "{code} is no reference parameter of {source} that onramp knows"
                    ))
                })?;
            let ids = focus(&ctx, book, &kind, &how, (source, &parameter))
                .await?
                .join(",");
            let context = format!("{}: {kind}?_id={ids}&{how}={spec}", book.title());
            let (pages, complete) = ctx
                .book_query(
                    book,
                    &kind,
                    &[("_id", ids.as_str()), (how.as_str(), spec.as_str())],
                    &context,
                )
                .await?;
            let id = Parameter::of(&kind, "_id")
                .ok_or_else(|| StepFailure::environment("no _id parameter"))?;
            world.searched = Some(Searched {
                kind: kind.clone(),
                parameter: None,
                value: spec.clone(),
                more: vec![(id, ids)],
                cited: format!("{} CapabilityStatement", book.ig()),
                source: None,
                entries: search::entries(&pages),
                complete,
                including: if how == "_revinclude" {
                    "_revinclude"
                } else {
                    "_include"
                },
            });
            Ok(())
        }
        .await,
    );
}

#[then("the resources that reference the matches are included")]
async fn revincluded(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let searched = searched(world)?;
        let book = world.book.ok_or_else(|| StepFailure::usage("no public API was searched"))?;
        let ctx = world.ctx()?;
        let (source, code) = searched.value.split_once(':').unwrap_or_default();
        let parameter = Parameter::of(source, code)
            .ok_or_else(|| StepFailure::usage(format!("{code} is no parameter of {source}")))?;
        let matched: BTreeSet<String> =
            search::matches(&searched.kind, &searched.entries).map(key).collect();
        let included: BTreeSet<String> = searched
            .entries
            .iter()
            .filter(|(mode, r)| {
                mode.as_deref() == Some("include")
                    || r.get("resourceType").and_then(Value::as_str) != Some(searched.kind.as_str())
            })
            .map(|(_, r)| key(r))
            .collect();
        // What references a match, among every `source` of the book (read whole).
        let all = ctx.book_search(book, source).await;
        if let Some(failure) = &all.failure {
            return Err(StepFailure::blocked(format!(
                "reading every {source} failed: {}",
                failure.message
            )));
        }
        // Those that reference a match at all, read whole to see through which parameter
        // (at most CHAIN_READS of them).
        let candidates: Vec<String> = all
            .resources
            .iter()
            .filter(|r| {
                r.references
                    .iter()
                    .any(|reference| matched.iter().any(|m| search::reference_matches(m, reference)))
            })
            .filter_map(|r| r.id.as_ref().map(|id| format!("{source}/{id}")))
            .filter(|k| !included.contains(k))
            .collect();
        let mut problems: Vec<String> = searched
            .entries
            .iter()
            .filter(|(_, r)| r.get("resourceType").and_then(Value::as_str) == Some(source))
            .filter(|(_, r)| !parameter.referenced(r).iter().any(|t| matched.contains(t)))
            .map(|(_, r)| format!("{} was included, but references no match through {code}", key(r)))
            .collect();
        if searched.complete {
            for candidate in candidates.iter().take(CHAIN_READS) {
                let id = candidate.split_once('/').map_or("", |(_, id)| id);
                let Some(resource) = ctx.book_resource(book, source, id).await? else {
                    continue;
                };
                if parameter.referenced(&resource).iter().any(|t| matched.contains(t)) {
                    problems.push(format!(
                        "{candidate} references a match through {code} but was not included"
                    ));
                }
            }
        }
        if matched.is_empty() {
            ctx.recorder.note(
                book.title(),
                &format!("{}: nothing matched", super::carin::asked(searched)),
            );
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(StepFailure::conformance(listed(
            &format!(
                "{} did not bring what references its matches (FHIR R4 Search §3.1.1.5.2 _revinclude; {}: SHALL support _revinclude={}):",
                super::carin::asked(searched),
                searched.cited,
                searched.value
            ),
            &problems,
        )))
    }
    .await;
    world.judge(step, result);
}

#[when(
    regex = r"^the app searches the (Provider Directory|Drug Formulary)'s (\S+) by the chain (\S+) with a value from its data$"
)]
async fn searches_chain(world: &mut OnrampWorld, name: String, kind: String, chain: String) {
    verdict(
        async {
            let (book, ctx) = enter(world, &name, &kind)?;
            let (reference, chained) = chain
                .split_once('.')
                .ok_or_else(|| StepFailure::usage(format!("{chain} is no chain (reference.parameter)")))?;
            let parameter = Parameter::of(&kind, reference)
                .filter(|p| p.kind == ParamType::Reference)
                .ok_or_else(|| StepFailure::usage(format!("{reference} is no reference parameter of {kind}")))?;
            let mut found = None;
            for resource in candidates(&ctx, book, &kind, &parameter).await? {
                for target in parameter.referenced(&resource) {
                    let Some((target_kind, id)) = target.split_once('/') else { continue };
                    let Some(chained) = Parameter::of(target_kind, chained) else { continue };
                    let Some(read) = ctx.book_resource(book, target_kind, id).await? else {
                        continue;
                    };
                    if let Some(value) = chained.value_from(&read, None) {
                        found = Some((key(&resource), value));
                        break;
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            let (source, value) = found.ok_or_else(|| {
                StepFailure::blocked(format!(
                    "none of the first {CANDIDATES} {kind} of the {} references a resource with a value for {chain}",
                    book.title()
                ))
            })?;
            world.searched =
                Some(search_by(&ctx, book, &kind, (&chain, parameter), (source, value)).await?);
            world.kind = Some(chain);
            Ok(())
        }
        .await,
    );
}

#[then("every match satisfies the chained search")]
async fn chain_satisfied(world: &mut OnrampWorld, step: &Step) {
    let result = async {
        let searched = searched(world)?;
        let book = world.book.ok_or_else(|| StepFailure::usage("no public API was searched"))?;
        let chain = world.kind.clone().unwrap_or_default();
        let (_, chained) = chain.split_once('.').unwrap_or_default();
        let parameter = searched
            .parameter
            .as_ref()
            .ok_or_else(|| StepFailure::usage("this search had no parameter"))?;
        let ctx = world.ctx()?;
        let mut asked: HashSet<String> = HashSet::new();
        let mut wrong = Vec::new();
        let mut unchecked = 0;
        for resource in searched.matches() {
            let mut satisfied = false;
            for target in parameter.referenced(resource) {
                let Some((target_kind, id)) = target.split_once('/') else { continue };
                let Some(chained) = Parameter::of(target_kind, chained) else { continue };
                if !asked.contains(&target) && asked.len() == CHAIN_READS {
                    unchecked += 1;
                    satisfied = true;
                    break;
                }
                asked.insert(target.clone());
                if let Some(read) = ctx.book_resource(book, target_kind, id).await?
                    && chained.matches(&read, &searched.value) == Some(true)
                {
                    satisfied = true;
                    break;
                }
            }
            if !satisfied {
                wrong.push(key(resource));
            }
        }
        if unchecked > 0 {
            ctx.recorder.note(
                book.title(),
                &format!("{}: {unchecked} matches not checked (onramp reads at most {CHAIN_READS} referenced resources)", super::carin::asked(searched)),
            );
        }
        if wrong.is_empty() {
            return Ok(());
        }
        Err(StepFailure::conformance(listed(
            &format!(
                "{}?{chain}={} returned {} matches whose {} satisfies no {chained} = {} (FHIR R4 Search §3.1.1.4.9 chained parameters; {}):",
                searched.kind,
                searched.value,
                wrong.len(),
                parameter.code,
                searched.value,
                searched.cited
            ),
            &wrong,
        )))
    }
    .await;
    world.judge(step, result);
}

#[when("the app asks the Provider Directory for its data and for patient data without a token")]
async fn asks_anonymously(world: &mut OnrampWorld) {
    verdict(
        async {
            let ctx = world.ctx()?;
            let api = ctx.books.get(Book::Directory)?;
            world.book = Some(Book::Directory);
            let first = Book::Directory
                .types()
                .into_iter()
                .next()
                .ok_or_else(|| StepFailure::environment("Plan-Net is not loaded"))?;
            for kind in std::iter::once(first.as_str()).chain(PATIENT_TYPES.iter().copied()) {
                let context = format!("Provider Directory: {kind} without a token");
                let response = crate::payer::fhir::read(&ctx.http, &api.base, kind, None, &context)
                    .await
                    .map_err(|e| StepFailure::from_http(&e))?;
                world.public.push((kind.to_owned(), response));
            }
            Ok(())
        }
        .await,
    );
}

#[then("the Provider Directory answers without a token")]
async fn answers_anonymously(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let (kind, response) = world
            .public
            .first()
            .ok_or_else(|| StepFailure::usage("nothing was asked without a token"))?;
        // A 5xx or 429 never gets here: the read made it an error, and the `When` step "could
        // not test".
        match response.status {
            200 => Ok(()),
            status => Err(StepFailure::conformance(format!(
                "GET {kind} without a token answered {status}{}; {PUBLIC} answers without a sign-in or a token",
                crate::payer::http::operation_outcome_text(&response.body)
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            ))),
        }
    })();
    world.judge(step, result);
}

#[then("the Provider Directory serves no patient data without a token")]
async fn no_patient_data(world: &mut OnrampWorld, step: &Step) {
    let result = (|| {
        let mut served = Vec::new();
        for (kind, response) in world.public.iter().skip(1) {
            if response.status != 200 {
                continue;
            }
            let Ok(bundle) = serde_json::from_slice::<Value>(&response.body) else {
                continue;
            };
            let entries = search::entries(std::slice::from_ref(&bundle));
            let found: Vec<String> = search::matches(kind, &entries).map(key).collect();
            if !found.is_empty() {
                served.push(format!(
                    "GET {kind} without a token returned {}",
                    found.join(", ")
                ));
            }
        }
        if served.is_empty() {
            return Ok(());
        }
        Err(StepFailure::conformance(listed(
            "the Provider Directory serves patient data to anyone (45 CFR 164.502 and CMS-9115-F: a member's data is released only to an app the member authorized; the directory is public):",
            &served,
        )))
    })();
    world.judge(step, result);
}

#[then(regex = r"^every (\S+) resource conforms to its (?:Plan-Net|US Drug Formulary) profiles$")]
async fn profile_valid(world: &mut OnrampWorld, kind: String, step: &Step) {
    let result =
        super::resources::tier_findings(world, &kind, Some(crate::validate::Tier::Profile)).await;
    world.judge(step, result);
}
