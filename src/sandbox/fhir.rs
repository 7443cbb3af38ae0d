//! The read-only FHIR R4 API under `/r4`: SMART discovery, the CapabilityStatement,
//! searchset Bundles with opaque paging cursors, reads by id, and the Patient compartment
//! the bearer token grants. Errors are OperationOutcomes; the fault middleware wraps the
//! searches and reads.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::authorize::SCOPES_SUPPORTED;
use super::data::Doc;
use super::faults::{Document, Fault, Interception};
use super::grants::Authorization;
use super::{PkceMode, State};
use crate::payer::search::Parameter;

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
/// `_count` when a search sends none (the most a page holds is the persona's).
pub const DEFAULT_COUNT: usize = 10;

/// The routes under the persona's FHIR base (the caller nests them there).
pub(crate) fn routes(state: Arc<State>) -> Router<Arc<State>> {
    let data = Router::new()
        .route("/{kind}", get(search).fallback(read_only))
        .route("/{kind}/{id}", get(read).fallback(read_only))
        .route_layer(middleware::from_fn_with_state(state, faults));
    Router::new()
        .route("/metadata", get(metadata))
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .merge(data)
}

/// An OperationOutcome answer.
pub(super) fn outcome(status: StatusCode, code: &str, diagnostics: &str) -> Response {
    let severity = if status.is_server_error() {
        "fatal"
    } else {
        "error"
    };
    let body = json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code, "diagnostics": diagnostics }]
    });
    fhir_json(status, &body)
}

pub(super) fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    fhir_bytes(status, bytes)
}

pub(super) fn fhir_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// Why a FHIR request was refused; each becomes an OperationOutcome.
enum FhirError {
    Unauthorized {
        diagnostics: &'static str,
        invalid_token: bool,
    },
    /// The token's scopes do not cover the request (RFC 6750 §3.1 `insufficient_scope`).
    Forbidden(String),
    NotFound(String),
    Invalid(String),
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized {
                diagnostics,
                invalid_token,
            } => unauthorized(diagnostics, invalid_token),
            Self::Forbidden(diagnostics) => {
                let mut response = outcome(StatusCode::FORBIDDEN, "forbidden", &diagnostics);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"onramp sandbox\", error=\"insufficient_scope\"",
                    ),
                );
                response
            }
            Self::NotFound(diagnostics) => {
                outcome(StatusCode::NOT_FOUND, "not-found", &diagnostics)
            }
            Self::Invalid(diagnostics) => outcome(StatusCode::BAD_REQUEST, "invalid", &diagnostics),
        }
    }
}

async fn read_only() -> Response {
    outcome(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        "this Patient Access API is read-only: use GET",
    )
}

fn unauthorized(diagnostics: &str, invalid_token: bool) -> Response {
    let mut response = outcome(StatusCode::UNAUTHORIZED, "login", diagnostics);
    let challenge = if invalid_token {
        "Bearer realm=\"onramp sandbox\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"onramp sandbox\""
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// The member a request's bearer token stands for.
fn authorize(state: &State, headers: &HeaderMap) -> Result<Authorization, FhirError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        if state.faults.has(&Fault::AnonymousRead) {
            return Ok(Authorization {
                client_id: String::new(),
                member: 0,
                scope: "patient/*.read".into(),
                grant: 0,
            });
        }
        return Err(FhirError::Unauthorized {
            diagnostics: "no access token: send Authorization: Bearer <access_token>",
            invalid_token: false,
        });
    };
    let token = value
        .to_str()
        .ok()
        // The scheme is case-insensitive (RFC 7235 §2.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or(FhirError::Unauthorized {
            diagnostics: "the Authorization header is not a Bearer token",
            invalid_token: true,
        })?;
    let revoked_but_cached = || {
        state
            .faults
            .has(&Fault::RevokedStillReads)
            .then(|| state.grants.revoked(token))
            .flatten()
    };
    state
        .grants
        .access(token)
        .or_else(revoked_but_cached)
        .ok_or(FhirError::Unauthorized {
            diagnostics: "the access token is unknown, expired or revoked",
            invalid_token: true,
        })
}

/// Refuse what the token's scopes do not cover (SMART App Launch 2.0, "Scopes").
fn in_scope(
    state: &State,
    access: &Authorization,
    kind: &str,
    interaction: crate::payer::scope::Interaction,
) -> Result<(), FhirError> {
    if state.faults.has(&Fault::IgnoreScopes)
        || crate::payer::scope::permits(&access.scope, kind, interaction)
    {
        return Ok(());
    }
    Err(FhirError::Forbidden(format!(
        "the access token's scopes ({}) do not allow {} of {kind}",
        access.scope,
        match interaction {
            crate::payer::scope::Interaction::Read => "a read",
            crate::payer::scope::Interaction::Search => "a search",
        }
    )))
}

/// The resource types this server serves: the data's, as far as the persona serves them.
pub(crate) fn served_types(state: &State) -> Vec<String> {
    let mut types = state.store.resource_types();
    if let Some(served) = state.config.persona.served_types() {
        types.retain(|kind| served.contains(&kind.as_str()));
    }
    types
}

fn known_kind(state: &State, kind: &str) -> Result<(), FhirError> {
    let served = served_types(state);
    if served.iter().any(|s| s == kind) {
        return Ok(());
    }
    let why = if crate::validate::Registry::global().is_resource_type(kind) {
        format!(
            "{kind} is not served here; this server serves {}",
            served.join(", ")
        )
    } else {
        format!("{kind} is not an R4 resource type")
    };
    Err(FhirError::NotFound(why))
}

/// Break a resource the way `invalid-resource` promises: `meta.lastUpdated` not an instant.
fn break_resource(resource: &mut Value) {
    if let Some(object) = resource.as_object_mut() {
        let meta = object.entry("meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("lastUpdated".into(), json!("not-an-instant"));
        }
    }
}

/// Break a resource the way `structure-violation` promises: `meta.lastUpdated` is a day
/// that does not exist, which the R4 schema's pattern lets through.
fn break_structure(resource: &mut Value) {
    if let Some(object) = resource.as_object_mut() {
        let meta = object.entry("meta").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("lastUpdated".into(), json!("2026-02-30T09:30:00Z"));
        }
    }
}

/// Break a resource the way `profile-violation` promises: its `meta.profile` loses the
/// version every CARIN 2.0.0 profile requires there (`…|2.0.0`).
fn break_profile(resource: &mut Value) {
    if let Some(profiles) = resource
        .pointer_mut("/meta/profile")
        .and_then(Value::as_array_mut)
    {
        for profile in profiles {
            if let Some(text) = profile.as_str()
                && let Some((url, _)) = text.split_once('|')
            {
                *profile = Value::String(url.to_owned());
            }
        }
    }
}

/// Break a profile that asks no versioned declaration (US Core): leave out an element the
/// resource's profile (declared, or US Core's first for its type) requires and R4 does not.
/// A resource declaring a versioned profile (CARIN's) is left as it is.
pub(crate) fn leave_out_required(resource: &mut Value) {
    use crate::validate::catalog::Catalog;
    let declared: Vec<String> = resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if declared.iter().any(|url| url.contains('|')) {
        return;
    }
    let kind = resource["resourceType"].as_str().unwrap_or_default();
    let profile = declared
        .iter()
        .chain(crate::payer::clinical::profiles(kind).iter())
        .find_map(|url| Catalog::global().find(url));
    let (Some(profile), Some(object)) = (profile, resource.as_object_mut()) else {
        return;
    };
    for name in profile.required_beyond_r4() {
        let present: Vec<String> = object
            .keys()
            .filter(|key| {
                let key = key.trim_start_matches('_');
                key == name
                    || key
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            })
            .cloned()
            .collect();
        if !present.is_empty() {
            for key in present {
                object.remove(&key);
            }
            return;
        }
    }
}

/// Leave the element at `path` (and its `_` companion) out of `resource` when it declares
/// the profile named `profile`, as `must-support-missing` promises.
fn leave_out(resource: &mut Value, profile: &str, path: &str) {
    let declares = resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .is_some_and(|all| {
            all.iter().filter_map(Value::as_str).any(|url| {
                let url = url.split('|').next().unwrap_or(url);
                url.rsplit('/').next() == Some(profile)
            })
        });
    if declares {
        let parts: Vec<&str> = path.split('.').collect();
        remove_at(resource, &parts);
    }
}

fn remove_at(value: &mut Value, parts: &[&str]) {
    match (value, parts) {
        (Value::Array(items), _) => items.iter_mut().for_each(|item| remove_at(item, parts)),
        (Value::Object(object), [last]) => {
            object.remove(*last);
            object.remove(&format!("_{last}"));
        }
        (Value::Object(object), [first, rest @ ..]) => {
            if let Some(inner) = object.get_mut(*first) {
                remove_at(inner, rest);
            }
        }
        _ => {}
    }
}

/// Point the first Organization reference in `resource` (or its first reference of any
/// kind) at `to`, which does not exist: what `dangling-reference` (`Organization/gone`) and
/// `dangling-contained` (`#gone`) do.
pub(crate) fn dangle(resource: &mut Value, to: &str) {
    let paths = reference_pointers(resource, String::new());
    let chosen = paths
        .iter()
        .find(|(_, target)| target.starts_with("Organization/"))
        .or_else(|| paths.first())
        .map(|(pointer, _)| pointer.clone());
    if let Some(pointer) = chosen
        && let Some(slot) = resource.pointer_mut(&pointer)
    {
        *slot = json!(to);
    }
}

/// JSON pointers of every `reference` string in `value`, in document order, with its value.
fn reference_pointers(value: &Value, at: String) -> Vec<(String, String)> {
    match value {
        Value::Object(members) => members
            .iter()
            .flat_map(|(name, member)| {
                let here = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
                match (name.as_str(), member.as_str()) {
                    ("reference", Some(text)) => vec![(here, text.to_owned())],
                    _ => reference_pointers(member, here),
                }
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| reference_pointers(item, format!("{at}/{i}")))
            .collect(),
        _ => Vec::new(),
    }
}

/// A serialized body cut in half: what `malformed-json` sends.
fn malformed(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(bytes.len() / 2);
    bytes.extend_from_slice(b"<<not json");
    bytes
}

fn now_instant() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "2026-01-01T00:00:00Z".into())
}

/// `_cursor`: the offset of the next page, bound to its member, type, query and page size by
/// a MAC.
fn cursor(state: &State, member: usize, query: &str, count: usize, offset: usize) -> String {
    let mac = Sha256::digest(format!(
        "{}|{member}|{query}|{count}|{offset}",
        state.cursor_key
    ));
    let mut raw = offset.to_be_bytes().to_vec();
    raw.extend_from_slice(&mac[..12]);
    URL_SAFE_NO_PAD.encode(raw)
}

fn offset_of(state: &State, member: usize, query: &str, count: usize, text: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
    let offset = usize::from_be_bytes(raw.get(..8)?.try_into().ok()?);
    (cursor(state, member, query, count, offset) == text).then_some(offset)
}

/// A search's query: the parameters that narrow it (each a filter; several are all
/// required), what to `_include`, and the page size and position.
struct Query {
    filters: Vec<(Parameter, String)>,
    /// A `search-misses` fault: nothing matches.
    misses: bool,
    includes: Vec<String>,
    count: usize,
    cursor: Option<String>,
    /// The narrowing part as a query string, for links and cursors.
    canonical: String,
}

impl Query {
    /// Read the query of a search of `kind` (parameters may repeat; unknown ones are
    /// ignored, as FHIR lets a server do, and left out of the self link).
    fn parse(state: &State, kind: &str, raw: &str) -> Result<Query, FhirError> {
        let mut query = Query {
            filters: Vec::new(),
            misses: false,
            includes: Vec::new(),
            count: DEFAULT_COUNT,
            cursor: None,
            canonical: String::new(),
        };
        let mut kept: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            let (name, value) = (name.into_owned(), value.into_owned());
            match name.as_str() {
                "_count" => {
                    query.count = value
                        .parse::<usize>()
                        .map_err(|_| FhirError::Invalid("_count must be a whole number".into()))?
                        .min(state.config.persona.max_count());
                }
                "_cursor" => query.cursor = Some(value),
                "_include" => {
                    let (base, _) = value.split_once(':').ok_or_else(|| {
                        FhirError::Invalid(format!("_include={value} is not Type:parameter"))
                    })?;
                    if base != kind {
                        return Err(FhirError::Invalid(format!(
                            "_include={value} does not start with {kind}"
                        )));
                    }
                    kept.push((name, value.clone()));
                    query.includes.push(value);
                }
                _ => {
                    let Some(parameter) = Parameter::of(kind, &name) else {
                        continue;
                    };
                    // A value of the wrong type (a date that is none) is the client's error.
                    if parameter.matches(&json!({}), &value).is_none() {
                        return Err(FhirError::Invalid(format!(
                            "{name}={value} is not a value of this {:?} parameter",
                            parameter.kind
                        )));
                    }
                    kept.push((name.clone(), value.clone()));
                    let fault = |ignored: bool| {
                        let (kind, code) = (kind.to_owned(), name.clone());
                        state.faults.has(&if ignored {
                            Fault::SearchIgnores { kind, code }
                        } else {
                            Fault::SearchMisses { kind, code }
                        })
                    };
                    query.misses |= fault(false);
                    if !fault(true) {
                        query.filters.push((parameter, value));
                    }
                }
            }
        }
        kept.sort();
        query.canonical = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&kept)
            .finish();
        Ok(query)
    }

    fn matches(&self, resource: &Value) -> bool {
        !self.misses
            && self
                .filters
                .iter()
                .all(|(parameter, value)| parameter.matches(resource, value) == Some(true))
    }
}

/// The resources `query` matches among the member's `kind`: the page it asks for, and how
/// many match in all.
fn matching(
    state: &State,
    member: usize,
    kind: &str,
    query: &Query,
    offset: usize,
) -> (Vec<Doc>, usize) {
    if query.filters.is_empty() && !query.misses {
        let total = state.store.count(member, kind);
        let page = if query.count == 0 {
            Vec::new()
        } else {
            state.store.serve(member, kind, offset, query.count)
        };
        return (page, total);
    }
    // Filtered: read them all, a chunk at a time, and page over what matches.
    const CHUNK: usize = 500;
    let mut matched = Vec::new();
    let mut at = 0;
    loop {
        let chunk = state.store.page(member, kind, at, CHUNK);
        let read = chunk.len();
        matched.extend(chunk.into_iter().filter(|r| query.matches(r)));
        if read < CHUNK {
            break;
        }
        at += CHUNK;
    }
    let total = matched.len();
    let page = matched
        .into_iter()
        .skip(offset)
        .take(query.count)
        .map(Doc::Value)
        .collect();
    (page, total)
}

/// The resources the page's matches reference through `query`'s `_include`s (each once,
/// none already a match), as the member may see them.
fn included(
    state: &State,
    member: usize,
    kind: &str,
    query: &Query,
    matches: &mut [Doc],
) -> Vec<Value> {
    let mut parameters: Vec<Parameter> = Vec::new();
    for spec in &query.includes {
        match spec.split_once(':').map(|(_, p)| p) {
            Some("*") => parameters.extend(Parameter::references_of(kind)),
            Some(code) => parameters.extend(
                Parameter::of(kind, code)
                    .filter(|p| p.kind == crate::payer::search::ParamType::Reference),
            ),
            None => {}
        }
    }
    let key = |resource: &Value| {
        format!(
            "{}/{}",
            resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            resource
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
        )
    };
    if parameters.is_empty() {
        return Vec::new();
    }
    let matches: Vec<&Value> = matches.iter_mut().map(|doc| &*doc.value_mut()).collect();
    let mut seen: std::collections::BTreeSet<String> = matches.iter().map(|r| key(r)).collect();
    let mut out = Vec::new();
    for resource in matches {
        for parameter in &parameters {
            for target in parameter.referenced(resource) {
                if !seen.insert(target.clone()) {
                    continue;
                }
                let Some((target_kind, id)) = target.split_once('/') else {
                    continue;
                };
                if let Some(found) = state.store.read(member, target_kind, id) {
                    out.push(found);
                }
            }
        }
    }
    out
}

/// The other member whose `kind` resources a `cross-member-leak` fault lets `query` read:
/// the one whose Patient a reference parameter names, or who has the resource `_id` names.
fn leaked_member(state: &State, member: usize, kind: &str, query: &Query) -> Option<usize> {
    use super::faults::Leak;
    let others = || (0..state.store.member_count()).filter(move |m| *m != member);
    for (parameter, value) in &query.filters {
        if parameter.code == "_id" && state.faults.leaks(kind, Leak::Id) {
            if let Some(found) = others().find(|m| state.store.read(*m, kind, value).is_some()) {
                return Some(found);
            }
        } else if parameter.kind == crate::payer::search::ParamType::Reference
            && state.faults.leaks(kind, Leak::Patient)
        {
            let id = value.rsplit('/').next().unwrap_or(value);
            if let Some(found) = others().find(|m| {
                state
                    .store
                    .member(*m)
                    .is_some_and(|other| other.patient_id == id)
            }) {
                return Some(found);
            }
        }
    }
    None
}

/// `GET /r4/{kind}`: a searchset Bundle of the member's resources that match the query,
/// with what its `_include`s reference.
async fn search(
    Shared(state): Shared<Arc<State>>,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let made = std::time::Instant::now();
    let access = authorize(&state, &headers)?;
    known_kind(&state, &kind)?;
    in_scope(
        &state,
        &access,
        &kind,
        crate::payer::scope::Interaction::Search,
    )?;
    let query = Query::parse(&state, &kind, raw.as_deref().unwrap_or_default())?;
    let member = leaked_member(&state, access.member, &kind, &query).unwrap_or(access.member);
    let count = query.count;
    let offset = match &query.cursor {
        None => 0,
        Some(text) => offset_of(&state, member, &query.canonical, count, text).ok_or_else(|| {
            FhirError::Invalid(
                "_cursor is not one this server issued for this search; follow the Bundle's next link as given"
                    .into(),
            )
        })?,
    };
    let (mut resources, mut total) = matching(&state, member, &kind, &query, offset);
    // The leak counts in the total, as it would on a server whose query matched it.
    if state.faults.has(&Fault::ForeignPatient(kind.clone()))
        && let Some(foreign) = state.store.foreign(member, &kind)
    {
        total += 1;
        if offset == 0 {
            resources.push(Doc::Value(foreign));
        }
    }
    let page = Page {
        state: &state,
        member,
        kind: &kind,
        query: &query,
        offset,
        total,
    };
    page.break_matches(&mut resources);
    // An included resource the token may not read is left out, as a read of it would be refused.
    let includes = page.includes(&access, &mut resources);
    let base = state.fhir_base();
    let links = page.links(&base);
    let collection = state.faults.has(&Fault::NotSearchset(kind.clone()));
    let include_mode = if state.faults.has(&Fault::IncludeAsMatch(kind.clone())) {
        "match"
    } else {
        "include"
    };
    let entries: Vec<(Doc, &str)> = resources
        .into_iter()
        .map(|r| (r, "match"))
        .chain(includes.into_iter().map(|r| (Doc::Value(r), include_mode)))
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": hex_id(),
        "meta": { "lastUpdated": now_instant() },
        "type": if collection { "collection" } else { "searchset" },
        "total": total,
        "link": links,
    });
    if collection && let Some(object) = bundle.as_object_mut() {
        object.remove("total");
    }
    let bytes = with_entries(&bundle, &entries, &base, &kind, collection);
    if state.faults.has(&Fault::MalformedJson(kind.clone())) {
        return Ok(fhir_bytes(StatusCode::OK, malformed(bytes)));
    }
    if state.faults.has(&Fault::DeepJson(kind.clone())) {
        return Ok(fhir_bytes(StatusCode::OK, deep_json()));
    }
    // How long the page took to make, for benchmarks that tell the sandbox's time apart
    // from the client's (W3C Server Timing).
    let mut response = fhir_bytes(StatusCode::OK, bytes);
    if let Ok(timing) = HeaderValue::from_str(&format!(
        "generate;dur={:.1}",
        made.elapsed().as_secs_f64() * 1000.0
    )) {
        response.headers_mut().insert("server-timing", timing);
    }
    Ok(response)
}

/// What breaks a resource the way a fault says.
type Breaker = fn(&mut Value);

/// One page of a search being answered: whose, of what, from where, and of how many.
struct Page<'a> {
    state: &'a State,
    member: usize,
    kind: &'a str,
    query: &'a Query,
    offset: usize,
    total: usize,
}

impl Page<'_> {
    /// The faults that break this page's matches (invalid, out of structure or profile,
    /// a dangling reference, a duplicate).
    fn break_matches(&self, resources: &mut [Doc]) {
        let kind = || self.kind.to_owned();
        let breakers: [(Fault, Breaker); 3] = [
            (Fault::InvalidResource(kind()), break_resource),
            (Fault::StructureViolation(kind()), break_structure),
            (Fault::ProfileViolation(kind()), break_profile),
        ];
        for (fault, break_one) in breakers {
            if self.state.faults.has(&fault) {
                resources
                    .iter_mut()
                    .for_each(|doc| break_one(doc.value_mut()));
            }
        }
        for (profile, path) in self.state.faults.missing_must_support() {
            resources
                .iter_mut()
                .for_each(|doc| leave_out(doc.value_mut(), profile, path));
        }
        if self.offset == 0
            && let Some(first) = resources.first_mut()
        {
            // Only the first: the others still show the element, so that nothing but the
            // profile's rule is broken (not its must-support); and only where the search
            // asks nothing of the element, so that the match still satisfies the search.
            let filtered = self
                .query
                .filters
                .iter()
                .any(|(p, _)| p.kind != crate::payer::search::ParamType::Reference);
            if !filtered
                && self
                    .state
                    .faults
                    .has(&Fault::ProfileViolation(self.kind.to_owned()))
            {
                leave_out_required(first.value_mut());
            }
            if self
                .state
                .faults
                .has(&Fault::DanglingReference(self.kind.to_owned()))
            {
                dangle(first.value_mut(), "Organization/gone");
            }
            if self
                .state
                .faults
                .has(&Fault::DanglingContained(self.kind.to_owned()))
            {
                dangle(first.value_mut(), "#gone");
            }
        }
        if self
            .state
            .faults
            .has(&Fault::Duplicate(self.kind.to_owned()))
        {
            // The first resource again, in place of another, so that the count still adds up.
            if self.offset > 0 && !resources.is_empty() {
                resources[0] = matching(
                    self.state,
                    self.member,
                    self.kind,
                    &Query {
                        count: 1,
                        ..query_without_page(self.query)
                    },
                    0,
                )
                .0
                .pop()
                .unwrap_or_else(|| resources[0].clone());
            } else if self.offset == 0 && self.total <= self.query.count && resources.len() >= 2 {
                let last = resources.len() - 1;
                resources[last] = resources[0].clone();
            }
        }
    }

    /// The resources `_include`d with this page that `access` may read (an included resource
    /// the token may not read is left out, as a read of it would be refused).
    fn includes(&self, access: &Authorization, resources: &mut [Doc]) -> Vec<Value> {
        let mut includes = if self
            .state
            .faults
            .has(&Fault::IncludeMissing(self.kind.to_owned()))
        {
            Vec::new()
        } else {
            included(self.state, self.member, self.kind, self.query, resources)
        };
        if !self.state.faults.has(&Fault::IgnoreScopes) {
            includes.retain(|r| {
                r.get("resourceType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| {
                        crate::payer::scope::permits(
                            &access.scope,
                            t,
                            crate::payer::scope::Interaction::Read,
                        )
                    })
            });
        }
        includes
    }

    /// The page's `self` link, and its `next` unless it is the last.
    fn links(&self, base: &str) -> Vec<Value> {
        let page_url = |offset: usize| {
            let mut url = format!("{base}/{}?", self.kind);
            if !self.query.canonical.is_empty() {
                url.push_str(&self.query.canonical);
                url.push('&');
            }
            url.push_str(&format!("_count={}", self.query.count));
            if offset > 0 {
                url.push_str("&_cursor=");
                url.push_str(&cursor(
                    self.state,
                    self.member,
                    &self.query.canonical,
                    self.query.count,
                    offset,
                ));
            }
            url
        };
        let mut links = vec![json!({ "relation": "self", "url": page_url(self.offset) })];
        let next = self.offset + self.query.count;
        if self.query.count > 0
            && next < self.total
            && !self
                .state
                .faults
                .has(&Fault::DropNextLink(self.kind.to_owned()))
        {
            let mut url = page_url(next);
            if self
                .state
                .faults
                .has(&Fault::ForeignNextLink(self.kind.to_owned()))
            {
                url = other_origin(&url);
            }
            links.push(json!({ "relation": "next", "url": url }));
        }
        links
    }
}

/// `bundle` (an object) serialized with `entries` as its last member, each entry written on
/// its own core: the JSON text `serde_json` would write for the whole.
///
/// An entry is its `fullUrl`, its resource, and (in a searchset) its `search.mode`. A
/// collection Bundle (the `not-searchset` fault) is a consistent one: without the searchset's
/// `search` and `total`, which R4 allows only in searchsets (bdl-1, bdl-2).
fn with_entries(
    bundle: &Value,
    entries: &[(Doc, &str)],
    base: &str,
    searched: &str,
    collection: bool,
) -> Vec<u8> {
    use rayon::prelude::*;
    let mut bytes = serde_json::to_vec(bundle).unwrap_or_default();
    if bytes.pop() != Some(b'}') {
        return serde_json::to_vec(bundle).unwrap_or_default();
    }
    let serialized: Vec<Vec<u8>> = entries
        .par_iter()
        .map(|(doc, mode)| {
            let (kind, id) = doc.kind_and_id();
            let kind = if kind.is_empty() { searched } else { kind };
            let mut entry = Vec::with_capacity(4096);
            entry.extend_from_slice(br#"{"fullUrl":"#);
            // A string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut entry, &format!("{base}/{kind}/{id}"));
            entry.extend_from_slice(br#","resource":"#);
            doc.write(&mut entry);
            if !collection {
                entry.extend_from_slice(br#","search":{"mode":"#);
                let _ = serde_json::to_writer(&mut entry, mode);
                entry.push(b'}');
            }
            entry.push(b'}');
            entry
        })
        .collect();
    bytes.reserve(serialized.iter().map(|e| e.len() + 1).sum::<usize>() + 12);
    if bytes.len() > 1 {
        bytes.push(b',');
    }
    bytes.extend_from_slice(br#""entry":["#);
    for (index, entry) in serialized.iter().enumerate() {
        if index > 0 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(entry);
    }
    bytes.extend_from_slice(b"]}");
    bytes
}

/// The same query, from the first page.
fn query_without_page(query: &Query) -> Query {
    Query {
        filters: query.filters.clone(),
        misses: query.misses,
        includes: Vec::new(),
        count: query.count,
        cursor: None,
        canonical: query.canonical.clone(),
    }
}

fn hex_id() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `GET /r4/{kind}/{id}`
async fn read(
    Shared(state): Shared<Arc<State>>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let access = authorize(&state, &headers)?;
    known_kind(&state, &kind)?;
    in_scope(
        &state,
        &access,
        &kind,
        crate::payer::scope::Interaction::Read,
    )?;
    if state.faults.has(&Fault::NoRead(kind.clone())) {
        return Err(FhirError::NotFound(format!("{kind}/{id} is not known")));
    }
    // Another member's resource is as absent as one that does not exist (unless a fault
    // lets it leak).
    let leak = || {
        state
            .faults
            .leaks(&kind, super::faults::Leak::Read)
            .then(|| (0..state.store.member_count()).find_map(|m| state.store.read(m, &kind, &id)))
            .flatten()
    };
    let mut resource = state
        .store
        .read(access.member, &kind, &id)
        .or_else(leak)
        .ok_or_else(|| FhirError::NotFound(format!("{kind}/{id} is not known")))?;
    if state.faults.has(&Fault::InvalidResource(kind.clone())) {
        break_resource(&mut resource);
    }
    if state.faults.has(&Fault::StructureViolation(kind.clone())) {
        break_structure(&mut resource);
    }
    if state.faults.has(&Fault::ProfileViolation(kind.clone())) {
        break_profile(&mut resource);
    }
    for (profile, path) in state.faults.missing_must_support() {
        leave_out(&mut resource, profile, path);
    }
    let bytes = serde_json::to_vec(&resource).unwrap_or_default();
    if state.faults.has(&Fault::MalformedJson(kind.clone())) {
        return Ok(fhir_bytes(StatusCode::OK, malformed(bytes)));
    }
    if state.faults.has(&Fault::DeepJson(kind.clone())) {
        return Ok(fhir_bytes(StatusCode::OK, deep_json()));
    }
    Ok(fhir_bytes(StatusCode::OK, bytes))
}

/// The fault middleware around searches and reads.
async fn faults(Shared(state): Shared<Arc<State>>, request: Request, next: Next) -> Response {
    if let Some(delay) = state.faults.latency() {
        tokio::time::sleep(delay).await;
    }
    match state.faults.intercept() {
        Some(Interception::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return outcome(
                status,
                "transient",
                &format!("injected fault: status {code}"),
            );
        }
        Some(Interception::RateLimited(seconds)) => {
            let mut response = outcome(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "injected fault: rate limit exceeded",
            );
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        None => {}
    }
    let anonymous = !request.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        if let Some(code) = state.faults.anonymous_status().filter(|_| anonymous) {
            *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
            response.headers_mut().remove(header::WWW_AUTHENTICATE);
        }
        if state.faults.has(&Fault::NoChallenge) {
            response.headers_mut().remove(header::WWW_AUTHENTICATE);
        }
    }
    match state.faults.slow_body() {
        Some(delay) => trickle(response, delay).await,
        None => response,
    }
}

/// Re-send a response's body in 1 KiB chunks, `delay` apart.
async fn trickle(response: Response, delay: Duration) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return outcome(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "the response could not be buffered",
        );
    };
    let chunks: Vec<axum::body::Bytes> = bytes
        .chunks(1024)
        .map(axum::body::Bytes::copy_from_slice)
        .collect();
    let stream = futures_util::stream::iter(chunks.into_iter().enumerate()).then(
        move |(n, chunk)| async move {
            if n > 0 {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, std::convert::Infallible>(chunk)
        },
    );
    let mut response = Response::from_parts(parts, Body::from_stream(stream));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

use futures_util::StreamExt as _;

/// `GET /r4/metadata`: an R4 CapabilityStatement with the SMART `oauth-uris` extension.
async fn metadata(Shared(state): Shared<Arc<State>>) -> Response {
    let clinical = crate::payer::clinical::types();
    let resources: Vec<Value> = served_types(&state)
        .iter()
        .map(|kind| {
            let mut parameters = vec![json!({
                "name": "_count", "type": "number",
                "documentation": format!("page size, default {DEFAULT_COUNT}, at most {}", state.config.persona.max_count())
            })];
            parameters.extend(Parameter::all_of(kind).into_iter().map(|p| {
                json!({ "name": p.code, "type": format!("{:?}", p.kind).to_lowercase() })
            }));
            let mut includes: Vec<String> = Parameter::references_of(kind)
                .into_iter()
                .map(|p| format!("{kind}:{}", p.code))
                .collect();
            if includes.len() > 1 {
                includes.push(format!("{kind}:*"));
            }
            let dropped: Vec<&str> = state
                .faults
                .metadata_drops()
                .filter(|(k, _)| k == kind)
                .map(|(_, code)| code)
                .collect();
            let interactions: Vec<Value> = ["read", "search-type"]
                .into_iter()
                .filter(|code| !dropped.contains(code))
                .map(|code| json!({ "code": code }))
                .collect();
            parameters.retain(|p| !dropped.iter().any(|d| p["name"] == *d));
            let mut resource = json!({
                "type": kind,
                "interaction": interactions,
                "searchParam": parameters,
                "searchInclude": includes
            });
            // The clinical types' US Core profiles (the claims types' are CARIN's, which
            // the statement instantiates).
            if clinical.contains(kind) {
                resource["supportedProfile"] = json!(crate::payer::clinical::profiles(kind));
            }
            resource
        })
        .collect();
    let mut body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-15",
        "publisher": "onramp",
        "kind": "instance",
        "instantiates": [
            "http://hl7.org/fhir/us/carin-bb/CapabilityStatement/c4bb",
            "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server"
        ],
        "software": { "name": "onramp sandbox", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": format!("{} (onramp sandbox)", state.config.persona.brand()), "url": state.fhir_base() },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        { "url": "authorize", "valueUri": state.authorize_url() },
                        { "url": "token", "valueUri": state.token_url() }
                    ]
                }],
                "service": [{
                    "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR" }]
                }]
            },
            "resource": resources
        }]
    });
    state.faults.change_fields(Document::Metadata, &mut body);
    if state.faults.has(&Fault::MetadataOauthMismatch) {
        body["rest"][0]["security"]["extension"][0]["extension"][1]["valueUri"] =
            json!(format!("{}/elsewhere/token", state.origin));
    }
    fhir_json(StatusCode::OK, &body)
}

/// `GET /r4/.well-known/smart-configuration` (SMART App Launch 2.0).
async fn smart_configuration(Shared(state): Shared<Arc<State>>) -> Response {
    let mut body = json!({
        "issuer": state.origin,
        "authorization_endpoint": state.authorize_url(),
        "token_endpoint": state.token_url(),
        "revocation_endpoint": state.revocation_url(),
        "introspection_endpoint": state.introspection_url(),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "scopes_supported": SCOPES_SUPPORTED,
        "jwks_uri": state.jwks_url(),
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "sso-openid-connect",
            "context-standalone-patient",
            "permission-patient",
            "permission-user",
            "permission-offline"
        ]
    });
    if state.config.pkce != PkceMode::Off {
        body["code_challenge_methods_supported"] = json!(["S256"]);
    }
    state.faults.change_fields(Document::Smart, &mut body);
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `url` with its host swapped between `127.0.0.1` and `localhost`: the same sandbox by
/// another origin (`foreign-next-link`).
fn other_origin(url: &str) -> String {
    if url.contains("//127.0.0.1") {
        url.replacen("//127.0.0.1", "//localhost", 1)
    } else {
        url.replacen("//localhost", "//127.0.0.1", 1)
    }
}

/// A Bundle whose one entry nests 50,000 arrays (`deep-json`): valid JSON that a recursive
/// reader cannot get through.
fn deep_json() -> Vec<u8> {
    const LEVELS: usize = 50_000;
    let mut body = br#"{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Basic","id":"deep","extension":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', LEVELS));
    body.extend(std::iter::repeat_n(b']', LEVELS));
    body.extend_from_slice(b"}}]}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_spliced_in_as_serde_json_would_write_them() {
        let bundle = json!({ "resourceType": "Bundle", "total": 2 });
        let entries = vec![
            (
                Doc::Value(json!({ "resourceType": "Patient", "id": "a" })),
                "match",
            ),
            (
                Doc::Text {
                    kind: "Coverage",
                    id: "b\"".into(),
                    json: br#"{"resourceType":"Coverage","id":"b\""}"#.to_vec(),
                },
                "include",
            ),
        ];
        let mut whole = bundle.clone();
        whole["entry"] = json!([
            { "fullUrl": "http://x/r4/Patient/a", "resource": { "resourceType": "Patient", "id": "a" }, "search": { "mode": "match" } },
            { "fullUrl": "http://x/r4/Coverage/b\"", "resource": { "resourceType": "Coverage", "id": "b\"" }, "search": { "mode": "include" } },
        ]);
        let spliced: Value = serde_json::from_slice(&with_entries(
            &bundle,
            &entries,
            "http://x/r4",
            "Patient",
            false,
        ))
        .expect("JSON");
        assert_eq!(spliced, whole);
        let collection: Value = serde_json::from_slice(&with_entries(
            &bundle,
            &entries[..1],
            "http://x/r4",
            "Patient",
            true,
        ))
        .expect("JSON");
        assert_eq!(
            collection["entry"],
            json!([{ "fullUrl": "http://x/r4/Patient/a", "resource": { "resourceType": "Patient", "id": "a" } }])
        );
        let empty: Value =
            serde_json::from_slice(&with_entries(&json!({}), &[], "http://x", "Patient", false))
                .expect("JSON");
        assert_eq!(empty, json!({ "entry": [] }));
    }
}
