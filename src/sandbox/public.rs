//! The demo health plan's public FHIR APIs ([`Book`]): the Provider Directory under
//! `/directory/r4` and the drug formulary under `/formulary/r4`. Both answer without a
//! token (a token is ignored), as CMS-9115-F asks of a Provider Directory API. Each serves
//! reads by id and searches: every parameter the IG's SearchParameters define (tokens,
//! references, dates, strings, extensions by URL), chains one level deep
//! (`location.address-city=Boston`), `_include`, `_revinclude`, `_count` and paging by
//! `_offset`. The CapabilityStatement is the IG's own, as an instance.
//!
//! The books grow the first time one is asked for ([`Listing::grow`]), at the
//! `directory_size` the sandbox was given.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::State;
use super::data::books::{Book, Breaks, Entry, Listing};
use super::faults::Fault;
use super::fhir::{fhir_bytes, fhir_json, outcome};
use crate::payer::search::{ParamType, Parameter};

/// `_count` when a search sends none, and the most a page holds.
const DEFAULT_COUNT: usize = 20;
const MOST_COUNT: usize = 100;

/// The routes of `book`, to nest at [`Book::path`].
pub(crate) fn routes(book: Book) -> Router<Arc<State>> {
    Router::new()
        .route(
            "/metadata",
            get(move |state: Shared<Arc<State>>| metadata(book, state)),
        )
        .route(
            "/{kind}",
            get(
                move |state: Shared<Arc<State>>,
                      kind: Path<String>,
                      query: RawQuery,
                      headers: HeaderMap| search(book, state, kind, query, headers),
            ),
        )
        .route(
            "/{kind}/{id}",
            get(
                move |state: Shared<Arc<State>>,
                      path: Path<(String, String)>,
                      headers: HeaderMap| { read(book, state, path, headers) },
            ),
        )
}

/// The book, grown on first use.
pub(crate) async fn listing(state: &Arc<State>, book: Book) -> Arc<Listing> {
    let cell = match book {
        Book::Directory => &state.directory,
        Book::Formulary => &state.formulary,
    };
    let grown = cell.get_or_init(|| async {
        let size = state.config.directory_size;
        let breaks = breaks(state);
        let plan = super::data::generate::PLAN;
        tokio::task::spawn_blocking(move || Arc::new(Listing::grow(book, size, plan, &breaks)))
            .await
            .unwrap_or_else(|_| Arc::new(Listing::grow(book, 0, plan, &Breaks::default())))
    });
    Arc::clone(grown.await)
}

/// The faults that change resources, as the books grow with them.
fn breaks(state: &State) -> Breaks {
    let mut breaks = Breaks::default();
    for fault in state.faults.list() {
        match fault {
            Fault::ProfileViolation(kind) => breaks.profile.push(kind.clone()),
            Fault::DanglingReference(kind) => breaks.dangling.push(kind.clone()),
            Fault::InvalidResource(kind) => breaks.invalid.push(kind.clone()),
            _ => {}
        }
    }
    breaks
}

/// A 401 when `directory-requires-token` is in force and the request has no token.
fn requires_token(state: &State, headers: &HeaderMap) -> Option<Response> {
    if !state.faults.has(&Fault::DirectoryRequiresToken)
        || headers.contains_key(header::AUTHORIZATION)
    {
        return None;
    }
    let mut response = outcome(
        StatusCode::UNAUTHORIZED,
        "login",
        "this directory answers only requests with a bearer token",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"onramp sandbox\""),
    );
    Some(response)
}

async fn metadata(book: Book, Shared(state): Shared<Arc<State>>) -> Response {
    let listing = listing(&state, book).await;
    let Some((ig, _)) = crate::validate::catalog::Catalog::global().ig(book.package()) else {
        return outcome(StatusCode::INTERNAL_SERVER_ERROR, "exception", "no IG");
    };
    let resources: Vec<Value> = listing
        .kinds()
        .map(|kind| {
            let params: Vec<Value> = ig
                .searches
                .get(kind)
                .into_iter()
                .flatten()
                .flatten()
                .map(|code| json!({ "name": code, "type": param_type(kind, code) }))
                .collect();
            json!({
                "type": kind,
                "supportedProfile": ig.supported.get(kind).map(|p| p.to_vec()).unwrap_or_default(),
                "interaction": [{ "code": "read" }, { "code": "search-type" }],
                "searchInclude": ig.includes.get(kind).cloned().unwrap_or_default(),
                "searchRevInclude": ig.revincludes.get(kind).cloned().unwrap_or_default(),
                "searchParam": params,
            })
        })
        .collect();
    fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-01-01",
            "kind": "instance",
            "implementation": {
                "description": format!("Demo Health Plan {}", book.title()),
                "url": format!("{}{}", state.origin, super::data::books::path(book)),
            },
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "implementationGuide": [format!("{}|{}", ig.name, ig.version)],
            "rest": [{ "mode": "server", "resource": resources }],
        }),
    )
}

fn param_type(kind: &str, code: &str) -> &'static str {
    match Parameter::of(kind, code).map(|p| p.kind) {
        Some(ParamType::Reference) => "reference",
        Some(ParamType::Date) => "date",
        Some(ParamType::String) => "string",
        _ => "token",
    }
}

async fn read(
    book: Book,
    Shared(state): Shared<Arc<State>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = requires_token(&state, &headers) {
        return refused;
    }
    let listing = listing(&state, book).await;
    match listing.get(&format!("{kind}/{id}")) {
        Some(entry) => fhir_bytes(StatusCode::OK, entry.json.to_vec()),
        None => outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{kind}/{id} is not in the {}", book.title()),
        ),
    }
}

async fn search(
    book: Book,
    Shared(state): Shared<Arc<State>>,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = requires_token(&state, &headers) {
        return refused;
    }
    let listing = listing(&state, book).await;
    // The patient data a Provider Directory must not serve (`directory-serves-patients`
    // serves it).
    if book == Book::Directory && crate::payer::public::PATIENT_TYPES.contains(&kind.as_str()) {
        if state.faults.has(&Fault::DirectoryServesPatients) {
            return fhir_json(StatusCode::OK, &leaked_patient_data(&state, &kind));
        }
        return outcome(
            StatusCode::NOT_FOUND,
            "not-supported",
            &format!(
                "the {} serves no {kind}: it holds no patient data",
                book.title()
            ),
        );
    }
    if listing.all(&kind).is_empty() {
        return outcome(
            StatusCode::NOT_FOUND,
            "not-supported",
            &format!("the {} serves no {kind}", book.title()),
        );
    }
    let asked = match Asked::parse(&kind, query.as_deref().unwrap_or_default(), &state) {
        Ok(asked) => asked,
        Err(why) => return outcome(StatusCode::BAD_REQUEST, "invalid", &why),
    };
    let base = format!("{}{}", state.origin, super::data::books::path(book));
    let faults: Vec<Fault> = state.faults.list().to_vec();
    let answer = tokio::task::spawn_blocking(move || {
        asked.answer(
            &listing,
            &kind,
            &base,
            query.as_deref().unwrap_or_default(),
            &faults,
        )
    })
    .await;
    match answer {
        Ok(bytes) => fhir_bytes(StatusCode::OK, bytes),
        Err(_) => outcome(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "the search failed",
        ),
    }
}

/// What `directory-serves-patients` leaks: a Patient, Coverage or claim of the plan's.
fn leaked_patient_data(state: &State, kind: &str) -> Value {
    let resource = state
        .store
        .member(0)
        .and_then(|member| match kind {
            "Patient" => state.store.read(0, kind, &member.patient_id),
            _ => None,
        })
        .unwrap_or_else(|| json!({ "resourceType": kind, "id": "leaked" }));
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{ "resource": resource, "search": { "mode": "match" } }],
    })
}

/// A search's parameters, understood.
struct Asked {
    count: usize,
    offset: usize,
    filters: Vec<(Parameter, String)>,
    /// `reference.chained=value`: the reference parameter, the chained one, the value.
    chains: Vec<(Parameter, String, String)>,
    includes: Vec<String>,
    revincludes: Vec<String>,
}

impl Asked {
    fn parse(kind: &str, query: &str, state: &State) -> Result<Self, String> {
        let mut asked = Asked {
            count: DEFAULT_COUNT,
            offset: 0,
            filters: Vec::new(),
            chains: Vec::new(),
            includes: Vec::new(),
            revincludes: Vec::new(),
        };
        for (code, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (code, value) = (code.into_owned(), value.into_owned());
            match code.as_str() {
                "_count" => {
                    asked.count = value
                        .parse::<usize>()
                        .map_err(|_| format!("_count={value} is no count"))?
                        .clamp(1, MOST_COUNT);
                }
                "_offset" => {
                    asked.offset = value
                        .parse()
                        .map_err(|_| format!("_offset={value} is no offset"))?;
                }
                "_include" => asked.includes.push(value),
                "_revinclude" => asked.revincludes.push(value),
                "_format" => {}
                chain if chain.contains('.') => {
                    if state.faults.has(&Fault::ChainIgnored(chain.to_owned())) {
                        continue;
                    }
                    let (reference, chained) = chain.split_once('.').unwrap_or_default();
                    let parameter = Parameter::of(kind, reference)
                        .filter(|p| p.kind == ParamType::Reference)
                        .ok_or_else(|| {
                            format!("{reference} is no reference parameter of {kind}")
                        })?;
                    asked.chains.push((parameter, chained.to_owned(), value));
                }
                _ => {
                    let parameter = Parameter::of(kind, &code)
                        .ok_or_else(|| format!("{kind} has no search parameter {code}"))?;
                    asked.filters.push((parameter, value));
                }
            }
        }
        if state.faults.has(&Fault::IncludeMissing(kind.to_owned())) {
            asked.includes.clear();
        }
        if state.faults.has(&Fault::RevincludeMissing(kind.to_owned())) {
            asked.revincludes.clear();
        }
        Ok(asked)
    }

    /// The searchset page the search asks for, serialized.
    fn answer(
        &self,
        listing: &Listing,
        kind: &str,
        base: &str,
        query: &str,
        faults: &[Fault],
    ) -> Vec<u8> {
        let all = listing.all(kind);
        let found = listing.matches(&self.key(kind), || self.search(listing, kind));
        let matches: Vec<&Entry> = found.iter().filter_map(|at| all.get(*at)).collect();
        let page: Vec<&Entry> = matches
            .iter()
            .skip(self.offset)
            .take(self.count)
            .copied()
            .collect();
        let included = self.included(listing, kind, &page);
        let include_mode = if faults.contains(&Fault::IncludeAsMatch(kind.to_owned())) {
            "match"
        } else {
            "include"
        };
        let mut links =
            vec![json!({ "relation": "self", "url": page_url(base, kind, query, self.offset) })];
        if self.offset + self.count < matches.len() {
            links.push(json!({ "relation": "next", "url": page_url(base, kind, query, self.offset + self.count) }));
        }
        let bundle_type = if faults.contains(&Fault::NotSearchset(kind.to_owned())) {
            "collection"
        } else {
            "searchset"
        };
        let mut bytes = serde_json::to_vec(&json!({
            "resourceType": "Bundle",
            "type": bundle_type,
            "total": matches.len(),
            "link": links,
        }))
        .unwrap_or_default();
        bytes.pop();
        bytes.extend_from_slice(br#","entry":["#);
        let entries = page
            .iter()
            .map(|e| (format!("{kind}/{}", e.id), *e, "match"))
            .chain(
                included
                    .iter()
                    .map(|(key, e)| (key.clone(), *e, include_mode)),
            );
        for (n, (key, entry, mode)) in entries.enumerate() {
            if n > 0 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(br#"{"fullUrl":"#);
            let _ = serde_json::to_writer(&mut bytes, &format!("{base}/{key}"));
            bytes.extend_from_slice(br#","resource":"#);
            bytes.extend_from_slice(&entry.json);
            bytes.extend_from_slice(br#","search":{"mode":""#);
            bytes.extend_from_slice(mode.as_bytes());
            bytes.extend_from_slice(br#""}}"#);
        }
        bytes.extend_from_slice(b"]}");
        bytes
    }
}

impl Asked {
    /// What identifies the search's matches: the type and its filters and chains.
    fn key(&self, kind: &str) -> String {
        let mut key = kind.to_owned();
        for (parameter, value) in &self.filters {
            key.push_str(&format!("&{}={value}", parameter.code));
        }
        for (parameter, chained, value) in &self.chains {
            key.push_str(&format!("&{}.{chained}={value}", parameter.code));
        }
        key
    }

    /// The positions of `kind`'s resources the filters and chains match.
    fn search(&self, listing: &Listing, kind: &str) -> Vec<usize> {
        let all = listing.all(kind);
        if self.filters.is_empty() && self.chains.is_empty() {
            return (0..all.len()).collect();
        }
        let chained: Vec<(&Parameter, HashSet<String>)> = self
            .chains
            .iter()
            .map(|(parameter, chained, value)| {
                (parameter, chain_targets(listing, parameter, chained, value))
            })
            .collect();
        use rayon::prelude::*;
        all.par_iter()
            .enumerate()
            .filter(|(_, entry)| {
                let Ok(resource) = serde_json::from_slice::<Value>(&entry.json) else {
                    return false;
                };
                self.filters
                    .iter()
                    .all(|(p, value)| p.matches(&resource, value) == Some(true))
                    && chained.iter().all(|(p, targets)| {
                        p.referenced(&resource).iter().any(|t| targets.contains(t))
                    })
            })
            .map(|(at, _)| at)
            .collect()
    }

    /// What `_include` and `_revinclude` bring to `page`: each resource with its `Type/id`,
    /// once, none of them a match.
    fn included<'l>(
        &self,
        listing: &'l Listing,
        kind: &str,
        page: &[&'l Entry],
    ) -> Vec<(String, &'l Entry)> {
        let page_keys: BTreeSet<String> = page.iter().map(|e| format!("{kind}/{}", e.id)).collect();
        let mut included: Vec<(String, &Entry)> = Vec::new();
        let mut seen: HashSet<String> = page_keys.iter().cloned().collect();
        for spec in &self.includes {
            let Some((of, code)) = spec.split_once(':') else {
                continue;
            };
            if of != kind {
                continue;
            }
            let parameters = if code == "*" {
                Parameter::references_of(kind)
            } else {
                Parameter::of(kind, code).into_iter().collect()
            };
            for entry in page {
                let Ok(resource) = serde_json::from_slice::<Value>(&entry.json) else {
                    continue;
                };
                for target in parameters.iter().flat_map(|p| p.referenced(&resource)) {
                    if let Some(found) = listing.get(&target)
                        && seen.insert(target.clone())
                    {
                        included.push((target, found));
                    }
                }
            }
        }
        for spec in &self.revincludes {
            let Some((source, code)) = spec.split_once(':') else {
                continue;
            };
            let Some(parameter) = Parameter::of(source, code) else {
                continue;
            };
            let referrers = listing.referrers(source, &parameter);
            let sources = listing.all(source);
            for target in &page_keys {
                for at in referrers.get(target).into_iter().flatten() {
                    let Some(entry) = sources.get(*at) else {
                        continue;
                    };
                    let key = format!("{source}/{}", entry.id);
                    if seen.insert(key.clone()) {
                        included.push((key, entry));
                    }
                }
            }
        }
        included
    }
}

/// `Type/id` of every resource a chain's reference may point at that satisfies the chained
/// parameter (`location.address-city=Boston`: each Location in Boston).
fn chain_targets(
    listing: &Listing,
    parameter: &Parameter,
    chained: &str,
    value: &str,
) -> HashSet<String> {
    let mut out = HashSet::new();
    for target in &parameter.target {
        let Some(chained) = Parameter::of(target, chained) else {
            continue;
        };
        for entry in listing.all(target) {
            if let Ok(resource) = serde_json::from_slice::<Value>(&entry.json)
                && chained.matches(&resource, value) == Some(true)
            {
                out.insert(format!("{target}/{}", entry.id));
            }
        }
    }
    out
}

/// The URL of the page at `offset` of the same search.
fn page_url(base: &str, kind: &str, query: &str, offset: usize) -> String {
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(code, _)| code != "_offset")
        .map(|(c, v)| (c.into_owned(), v.into_owned()))
        .collect();
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    serializer.extend_pairs(kept);
    if offset > 0 {
        serializer.append_pair("_offset", &offset.to_string());
    }
    let query = serializer.finish();
    if query.is_empty() {
        format!("{base}/{kind}")
    } else {
        format!("{base}/{kind}?{query}")
    }
}
