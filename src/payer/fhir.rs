//! Reading the target's FHIR API as the app would: a search for one resource type, every
//! page followed (with a loop guard and a page cap), each page checked on arrival — status,
//! content type, JSON, the R4 schema — and reduced to what later checks need (ids, owners,
//! references), so that memory does not grow with the bytes read. Non-2xx answers are
//! reported with their OperationOutcome text.
//!
//! It validates through [`crate::validate`] but holds no validation logic of its own.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use url::Url;

use crate::infra::fault::FailureKind;
use crate::infra::secret::Secret;
use crate::infra::words::listed;
use crate::payer::failure::StepFailure;
use crate::payer::http::{Http, HttpError, Request, Response};
use crate::validate::{Finding, Tier, Validator};

/// What one page of a search was.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PageInfo {
    pub number: usize,
    pub url: String,
    pub status: u16,
    pub duration_ms: u64,
    pub resource_type: Option<String>,
    pub bundle_type: Option<String>,
    pub total: Option<u64>,
    /// Entries the server marked as matches (or left unmarked).
    pub matches: usize,
    pub entries: usize,
    /// Microseconds spent parsing the page, and validating and reducing its entries (on
    /// another thread, while the next page was fetched).
    pub parse_us: u64,
    pub check_us: u64,
}

/// What later checks need of a returned resource. Kept for every resource a search
/// returns (100,000 claims for some members), so it is small: the type and the references,
/// which repeat from resource to resource, are shared strings ([`Interner`]).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResourceSummary {
    pub kind: Arc<str>,
    pub id: Option<String>,
    pub page: usize,
    pub entry: usize,
    /// `patient`, `subject` and `beneficiary` references.
    pub owners: Vec<Arc<str>>,
    /// Every `reference` in the resource, in order.
    pub references: Vec<Arc<str>>,
    /// The ids of its contained resources, which `#id` references point at.
    pub contained: Vec<String>,
}

impl ResourceSummary {
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("{}/{id}", self.kind),
            None => format!("{} (no id)", self.kind),
        }
    }
}

/// A schema finding in a search result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PageFinding {
    pub page: usize,
    pub url: String,
    #[serde(flatten)]
    pub finding: Finding,
}

/// Why a search stopped before its last page.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchFailure {
    /// Whose fault it is: the target's (conformance), the environment's (no answer, the
    /// payer unavailable), the features' (usage), or none (blocked: a premise failed).
    pub kind: FailureKind,
    pub message: String,
}

impl SearchFailure {
    /// The target answered, and its answer breaks a rule.
    pub fn conformance(message: String) -> Self {
        Self {
            kind: FailureKind::Conformance,
            message,
        }
    }
}

/// Everything a search for one type returned.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SearchResult {
    pub kind: String,
    pub pages: Vec<PageInfo>,
    pub resources: Vec<ResourceSummary>,
    pub findings: Vec<PageFinding>,
    /// Resources with at least one schema finding.
    pub invalid: u64,
    /// Problems with the pages themselves (content type, a next link that loops, the cap,
    /// a next link the token may not follow).
    pub page_problems: Vec<String>,
    /// What paging left unread for onramp's own reasons (the target's page cap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub page_notes: Vec<String>,
    /// Pages were linked that were not read (the cap, a loop, a link to another origin).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unfinished: bool,
    pub failure: Option<SearchFailure>,
    /// Constraints that applied but could not be evaluated, and how often.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub undecided: Vec<(Box<str>, u64)>,
    /// Declared profiles onramp could not check, and how many resources declared each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_profiles: Vec<(Box<str>, u64)>,
    /// Resources checked against at least one profile.
    pub profiled: u64,
    /// Must-support coverage per profile over the resources read.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub must_support: crate::validate::must_support::Tally,
    /// The resources were read one by one, by the references to them, not searched.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_by_reference: bool,
    /// Findings counted past the cap of a page, not listed.
    #[serde(default, skip_serializing_if = "crate::infra::json::is_zero")]
    pub findings_not_listed: u64,
}

/// How a search pages.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page_size: Option<u32>,
    pub page_cap: usize,
}

/// Pages parsed and checked at once, each on a blocking thread: three keep both cores of a
/// small CI machine busy while the next page is fetched (and, for the embedded sandbox,
/// made); more only hold more pages in memory.
const CHECKS_IN_FLIGHT: usize = 3;

/// What validating one page gave: its checks and its resources, reduced.
struct Checked {
    info: PageInfo,
    invalid: u64,
    findings: Vec<PageFinding>,
    resources: Vec<ResourceSummary>,
    undecided: Vec<(Box<str>, u64)>,
    unknown_profiles: Vec<(Box<str>, u64)>,
    profiled: u64,
    must_support: crate::validate::must_support::Tally,
    /// Findings counted past the cap of a document, not listed.
    not_listed: u64,
}

/// Add counts per key into `into`, keeping it sorted.
fn merge_counts(into: &mut Vec<(Box<str>, u64)>, from: Vec<(Box<str>, u64)>) {
    for (key, count) in from {
        match into.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => into[at].1 += count,
            Err(at) => into.insert(at, (key, count)),
        }
    }
}

/// Parse a page, validate it and reduce its entries (the CPU-heavy part of reading a page);
/// `Err` saying why it is not JSON.
fn parse_and_check(
    validator: &Validator,
    body: &[u8],
    mut info: PageInfo,
) -> Result<Checked, String> {
    let started = std::time::Instant::now();
    let parsed = crate::validate::parse_document(body)
        .map_err(|finding| format!("(GET {}) is not JSON: {}", info.url, finding.message))?;
    info.parse_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Ok(check_page(validator, &parsed, info))
}

/// Validate a parsed page and reduce its entries.
fn check_page(
    validator: &Validator,
    document: &crate::validate::Parsed,
    mut info: PageInfo,
) -> Checked {
    let started = std::time::Instant::now();
    let checked = validator.check_parsed(document);
    let document = &document.document;
    let number = info.number;
    let findings = checked
        .findings
        .into_iter()
        .map(|finding| PageFinding {
            page: number,
            url: info.url.clone(),
            finding,
        })
        .collect();
    let mut resources = Vec::new();
    let mut strings = Interner::default();
    if let Some(entries) = document.get("entry").and_then(|e| e.as_array()) {
        info.entries = entries.len();
        for (index, entry) in entries.iter().enumerate() {
            let mode = entry
                .get("search")
                .and_then(|s| s.get("mode"))
                .and_then(|m| m.as_str());
            if mode != Some("include") && mode != Some("outcome") {
                info.matches += 1;
            }
            if let Some(resource) = entry.get("resource") {
                resources.push(summarize(resource, number, index, &mut strings));
            }
        }
    }
    info.check_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    Checked {
        info,
        invalid: checked.invalid,
        findings,
        resources,
        undecided: checked.undecided,
        unknown_profiles: checked.unknown_profiles,
        profiled: checked.profiled,
        must_support: checked.must_support,
        not_listed: checked.left_off,
    }
}

/// A page as it arrived, and (when its status says it holds one) its top-level members
/// `resourceType`, `type`, `total` and `link`: where the next page is, known before the
/// page is parsed whole, so that fetching the next and checking this one overlap.
struct Fetched {
    response: Response,
    head: Option<sonic_rs::Value>,
}

/// The members of a page read before it is parsed whole.
const HEAD: [&str; 4] = ["resourceType", "type", "total", "link"];

/// Follow a search for `kind` to its end, calling `progress(pages, resources, findings)`
/// per page, in page order. Reading and checking overlap: a page's `link` is read before
/// the page is parsed whole ([`HEAD`]), so while pages N-2 to N are parsed and validated
/// (each on a blocking thread), page N+1 is already on its way.
pub async fn search(
    http: &Http,
    fhir_base: &Url,
    kind: &str,
    token: &Secret,
    paging: Paging,
    validator: &Arc<Validator>,
    progress: impl FnMut(usize, usize, usize),
) -> SearchResult {
    search_with(
        http,
        fhir_base,
        kind,
        &[],
        Some(token),
        paging,
        validator,
        progress,
    )
    .await
}

/// [`search`] with `query`'s parameters (`patient`, `category`) on the first page.
#[allow(clippy::too_many_arguments)]
pub async fn search_with(
    http: &Http,
    fhir_base: &Url,
    kind: &str,
    query: &[(String, String)],
    token: Option<&Secret>,
    paging: Paging,
    validator: &Arc<Validator>,
    mut progress: impl FnMut(usize, usize, usize),
) -> SearchResult {
    let mut result = SearchResult {
        kind: kind.to_owned(),
        ..SearchResult::default()
    };
    let mut pairs: Vec<(String, String)> = query.to_vec();
    if let Some(size) = paging.page_size {
        pairs.push(("_count".to_owned(), size.to_string()));
    }
    let mut url = format!("{}/{kind}", fhir_base.as_str().trim_end_matches('/'));
    if !pairs.is_empty() {
        url.push('?');
        url.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish(),
        );
    }
    let fetch = |url: String, number: usize| fetch_page(http, token, kind, url, number);
    let mut seen: HashSet<String> = HashSet::from([url.clone()]);
    let mut fetched = fetch(url.clone(), 1).await;
    // Pages being checked, oldest first, with their numbers.
    let mut checking: VecDeque<(usize, tokio::task::JoinHandle<Result<Checked, String>>)> =
        VecDeque::new();
    let mut number = 0;
    loop {
        number += 1;
        let Fetched { response, head } = match fetched {
            Ok(fetched) => fetched,
            Err(error) => {
                result.failure = Some(failure_of(&error, kind, number));
                break;
            }
        };
        if !(200..300).contains(&response.status) {
            result.failure = Some(refused(kind, number, &url, &response));
            break;
        }
        if let Some(problem) = content_type_problem(kind, number, &response) {
            result.page_problems.push(problem);
        }
        let Some(head) = head else { break };
        let info = PageInfo {
            number,
            url: url.clone(),
            status: response.status,
            duration_ms: u64::try_from(response.duration.as_millis()).unwrap_or(u64::MAX),
            resource_type: string_at(&head, "resourceType"),
            bundle_type: string_at(&head, "type"),
            total: head.get("total").and_then(|t| t.as_u64()),
            matches: 0,
            entries: 0,
            parse_us: 0,
            check_us: 0,
        };
        // Where to go next, decided before this page is parsed and checked, so that the
        // next page is on its way while this one is.
        let next = next_page(
            &mut result,
            (kind, number, &url),
            fhir_base,
            &head,
            &paging,
            &mut seen,
        );
        let validator = Arc::clone(validator);
        let body = response.body;
        checking.push_back((
            number,
            tokio::task::spawn_blocking(move || parse_and_check(&validator, &body, info)),
        ));
        let Some(next) = next else { break };
        // The next page is fetched while this one is checked; the oldest check is awaited
        // only once enough are running to keep every core busy.
        let oldest = if checking.len() >= CHECKS_IN_FLIGHT {
            checking.pop_front()
        } else {
            None
        };
        let following = match oldest {
            Some((oldest, check)) => {
                let (checked, following) = tokio::join!(check, fetch(next.clone(), number + 1));
                if !absorb(&mut result, kind, oldest, checked, &mut progress) {
                    return result;
                }
                following
            }
            None => fetch(next.clone(), number + 1).await,
        };
        url = next;
        fetched = following;
    }
    for (number, check) in checking {
        if !absorb(&mut result, kind, number, check.await, &mut progress) {
            break;
        }
    }
    result
}

/// Page `number` of a search of `kind` at `url`, with its [`HEAD`] members read (not when
/// it is not a 2xx). A page that is not a JSON object has none, so no next page: its check
/// parses it whole and says why.
async fn fetch_page(
    http: &Http,
    token: Option<&Secret>,
    kind: &str,
    url: String,
    number: usize,
) -> Result<Fetched, HttpError> {
    let mut request = Request::get(&url).header("Accept", "application/fhir+json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {}", token.expose()));
    }
    let response = http
        .send_with_retries(&format!("Search {kind}, page {number}"), &request)
        .await?;
    let head = (200..300)
        .contains(&response.status)
        .then(|| crate::validate::head(&response.body, &HEAD).unwrap_or_default());
    Ok(Fetched { response, head })
}

/// A page the server did not give (a status outside 2xx), in the payer's words when it
/// said why.
fn refused(kind: &str, number: usize, url: &str, response: &Response) -> SearchFailure {
    let reason = crate::payer::http::operation_outcome_text(&response.body)
        .map(|t| format!(": {t}"))
        .unwrap_or_default();
    let retried = if response.attempts > 1 {
        format!(" after {} attempts", response.attempts)
    } else {
        String::new()
    };
    SearchFailure::conformance(format!(
        "{kind} page {number} (GET {url}) answered {}{retried}{reason}",
        response.status
    ))
}

/// A page whose Content-Type is not FHIR JSON.
fn content_type_problem(kind: &str, number: usize, response: &Response) -> Option<String> {
    let content_type = response.header("content-type").unwrap_or("(none)");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    (media != "application/fhir+json" && media != "application/json").then(|| {
        format!("{kind} page {number} has Content-Type {content_type}, not application/fhir+json")
    })
}

/// Where to go after page `number` at `url`: its next link, unless the page cap is reached,
/// the link points back to a page already read, or leaves the server (each said in the
/// result's page problems, the search left unfinished).
fn next_page(
    result: &mut SearchResult,
    (kind, number, url): (&str, usize, &str),
    fhir_base: &Url,
    document: &sonic_rs::Value,
    paging: &Paging,
    seen: &mut HashSet<String>,
) -> Option<String> {
    match next_link(document) {
        None => None,
        Some(_) if number >= paging.page_cap => {
            // onramp's own limit, not the payer's fault: what was read is judged, and the
            // note says the rest was not.
            result.page_notes.push(format!(
                "{kind}: stopped after {} pages, the target's page_cap, with more pages still linked: the rest was not read (raise [resources] page_cap to read them all)",
                paging.page_cap
            ));
            result.unfinished = true;
            None
        }
        Some(next) => match follow(fhir_base, url, &next) {
            Ok(next) if !seen.insert(next.clone()) => {
                result.page_problems.push(format!(
                    "the next link of page {number} points back to a page already read ({next})"
                ));
                result.unfinished = true;
                None
            }
            Ok(next) => Some(next),
            Err(refused) => {
                result
                    .page_problems
                    .push(format!("{kind} page {number}: {refused}"));
                result.unfinished = true;
                None
            }
        },
    }
}

/// Record a checked page in `result`, in page order. False when the check failed inside
/// onramp (the search stops there; pages already recorded stay).
fn absorb(
    result: &mut SearchResult,
    kind: &str,
    number: usize,
    checked: Result<Result<Checked, String>, tokio::task::JoinError>,
    progress: &mut impl FnMut(usize, usize, usize),
) -> bool {
    let mut checked = match checked {
        Ok(Ok(checked)) => checked,
        Ok(Err(message)) => {
            result.failure = Some(SearchFailure::conformance(format!(
                "{kind} page {number} {message}"
            )));
            return false;
        }
        Err(_) => {
            result.failure = Some(SearchFailure {
                kind: FailureKind::Environment,
                message: format!("{kind} page {number}: checking the page failed inside onramp"),
            });
            return false;
        }
    };
    result.invalid += checked.invalid;
    result.profiled += checked.profiled;
    result.findings_not_listed += checked.not_listed;
    merge_counts(
        &mut result.undecided,
        std::mem::take(&mut checked.undecided),
    );
    merge_counts(
        &mut result.unknown_profiles,
        std::mem::take(&mut checked.unknown_profiles),
    );
    crate::validate::must_support::merge(&mut result.must_support, &checked.must_support);
    result.findings.append(&mut checked.findings);
    result.resources.append(&mut checked.resources);
    result.pages.push(checked.info);
    progress(
        result.pages.len(),
        result.resources.len(),
        result.findings.len(),
    );
    true
}

/// Where a `next` link leads, resolved against the page it is on, if the access token may go
/// there: only to the FHIR base's origin (scheme, host and port), so never to another host
/// and never from https down to http. A bearer token works for whoever holds it; a client
/// sends it only to the server it was issued for (RFC 6750 §5.1, "token redirect", and §5.2;
/// RFC 9700 §2.3), so a next link elsewhere leaves the search unreadable for any app.
pub fn follow(fhir_base: &Url, page: &str, next: &str) -> Result<String, NotFollowed> {
    let resolved = Url::parse(page)
        .and_then(|page| page.join(next))
        .map_err(|problem| NotFollowed::NoUrl {
            next: next.to_owned(),
            problem,
        })?;
    if resolved.scheme() != fhir_base.scheme()
        || resolved.host_str() != fhir_base.host_str()
        || resolved.port_or_known_default() != fhir_base.port_or_known_default()
    {
        return Err(NotFollowed::Away {
            next: resolved.to_string(),
            base: fhir_base.origin().ascii_serialization(),
        });
    }
    Ok(resolved.to_string())
}

/// A next link the search does not follow: the payer's paging is wrong (conformance).
#[derive(Debug, thiserror::Error)]
pub enum NotFollowed {
    #[error("the next link {next} is no URL ({problem}); it was not followed")]
    NoUrl {
        next: String,
        problem: url::ParseError,
    },
    #[error(
        "the next link {next} leads away from the FHIR server's origin {base}; it was not followed, and the access token was not sent there (a bearer token goes only to the server it was issued for: RFC 6750 §5.1-5.2, RFC 9700 §2.3)"
    )]
    Away { next: String, base: String },
}

fn failure_of(error: &HttpError, kind: &str, page: usize) -> SearchFailure {
    SearchFailure {
        kind: if error.is_skip() {
            FailureKind::Blocked
        } else {
            FailureKind::Environment
        },
        message: format!("{kind} page {page}: {error}"),
    }
}

fn string_at(document: &sonic_rs::Value, name: &str) -> Option<String> {
    document
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

fn next_link(document: &sonic_rs::Value) -> Option<String> {
    document
        .get("link")?
        .as_array()?
        .iter()
        .find(|link| link.get("relation").and_then(|r| r.as_str()) == Some("next"))?
        .get("url")?
        .as_str()
        .map(str::to_owned)
}

/// One copy of each string: the references of a page's resources mostly name the same
/// member, payer and providers.
#[derive(Debug, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(known) = self.0.get(text) {
            return Arc::clone(known);
        }
        let shared: Arc<str> = Arc::from(text);
        self.0.insert(Arc::clone(&shared));
        shared
    }
}

/// The reduced view of a returned resource.
fn summarize(
    resource: &sonic_rs::Value,
    page: usize,
    entry: usize,
    strings: &mut Interner,
) -> ResourceSummary {
    let mut references = Vec::new();
    collect_references(resource, &mut references, strings);
    references.shrink_to_fit();
    let owners = ["patient", "subject", "beneficiary"]
        .iter()
        .filter_map(|field| {
            resource
                .get(*field)?
                .get("reference")?
                .as_str()
                .map(|r| strings.get(r))
        })
        .collect();
    let contained = resource
        .get("contained")
        .and_then(|c| c.as_array())
        .map(|items| items.iter().filter_map(|c| string_at(c, "id")).collect())
        .unwrap_or_default();
    ResourceSummary {
        kind: strings.get(
            resource
                .get("resourceType")
                .and_then(|t| t.as_str())
                .unwrap_or("(no resourceType)"),
        ),
        id: string_at(resource, "id"),
        page,
        entry,
        owners,
        references,
        contained,
    }
}

fn collect_references(value: &sonic_rs::Value, out: &mut Vec<Arc<str>>, strings: &mut Interner) {
    // One type check per node: this walk runs on every resource read.
    match value.get_type() {
        sonic_rs::JsonType::Object => {
            for (name, member) in value.as_object().into_iter().flat_map(|o| o.iter()) {
                if name == "reference" {
                    if let Some(text) = member.as_str() {
                        out.push(strings.get(text));
                    }
                } else if member.is_object() || member.is_array() {
                    collect_references(member, out, strings);
                }
            }
        }
        sonic_rs::JsonType::Array => {
            for item in value.as_array().into_iter().flat_map(|a| a.iter()) {
                collect_references(item, out, strings);
            }
        }
        _ => {}
    }
}

/// Read the resources `ids` of `kind` one by one (`GET {base}/{kind}/{id}`), validating
/// each: for a type the server reads but does not search. A read that does not answer 200
/// with that resource ends it.
pub async fn read_each(
    http: &Http,
    fhir_base: &Url,
    kind: &str,
    ids: &[String],
    token: &Secret,
    validator: &Validator,
) -> SearchResult {
    let mut result = SearchResult {
        kind: kind.to_owned(),
        read_by_reference: true,
        ..SearchResult::default()
    };
    let mut strings = Interner::default();
    for (number, id) in ids.iter().enumerate() {
        let path = resource_path(kind, id);
        let response =
            match read(http, fhir_base, &path, Some(token), &format!("Read {path}")).await {
                Ok(response) => response,
                Err(error) => {
                    result.failure = Some(failure_of(&error, kind, number + 1));
                    break;
                }
            };
        if response.status != 200 {
            let reason = crate::payer::http::operation_outcome_text(&response.body)
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            result.failure = Some(SearchFailure::conformance(format!(
                "GET {path} (referenced by the member's data) answered {}{reason}",
                response.status
            )));
            break;
        }
        let parsed = match crate::validate::parse_document(&response.body) {
            Ok(parsed) => parsed,
            Err(finding) => {
                result.failure = Some(SearchFailure::conformance(format!(
                    "GET {path} is not JSON: {}",
                    finding.message
                )));
                break;
            }
        };
        let checked = validator.check_parsed(&parsed);
        let document = parsed.document;
        result.profiled += checked.profiled;
        merge_counts(&mut result.undecided, checked.undecided);
        merge_counts(&mut result.unknown_profiles, checked.unknown_profiles);
        crate::validate::must_support::merge(&mut result.must_support, &checked.must_support);
        result.invalid += checked.invalid;
        result.findings_not_listed += checked.left_off;
        result
            .findings
            .extend(checked.findings.into_iter().map(|finding| PageFinding {
                page: 0,
                url: path.clone(),
                finding,
            }));
        let summary = summarize(&document, 0, number, &mut strings);
        if &*summary.kind != kind || summary.id.as_deref() != Some(id.as_str()) {
            result.failure = Some(SearchFailure::conformance(format!(
                "GET {path} answered {}, not {path}",
                summary.label()
            )));
            break;
        }
        result.resources.push(summary);
    }
    result
}

/// Read one resource with the token (`GET {base}/{kind}/{id}`): its status and body.
/// `Type/id` for a URL path, the id percent-encoded: an id from a token response or a
/// server's data (`john-allen?_format=json#x`) stays one path segment and adds no query.
pub fn resource_path(kind: &str, id: &str) -> String {
    let mut url = Url::parse("http://x/").expect("a URL");
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.clear().push(kind).push(id);
    }
    url.path().trim_start_matches('/').to_owned()
}

pub async fn read(
    http: &Http,
    fhir_base: &Url,
    path: &str,
    token: Option<&Secret>,
    context: &str,
) -> Result<Response, HttpError> {
    let url = format!(
        "{}/{}",
        fhir_base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let mut request = Request::get(url).header("Accept", "application/fhir+json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {}", token.expose()));
    }
    http.send_with_retries(context, &request).await
}

impl From<&SearchFailure> for StepFailure {
    /// A search that got no usable answer, or a page the payer got wrong: its kind says.
    fn from(failure: &SearchFailure) -> Self {
        StepFailure::of(failure.kind, failure.message.clone())
    }
}

/// What a must-support element no resource carries makes of the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MustSupportVerdict {
    /// A warning (Inferno skips).
    Warn,
    /// A conformance failure.
    Fail,
}

impl SearchResult {
    /// Must Support over the `kind` resources read: every must-support element of each
    /// profile they were checked against appears in at least one of them. `None` for
    /// `verdict`: the target turned the count off. Nothing read, or no profile applied,
    /// leaves nothing to judge.
    pub fn must_support_verdict(
        &self,
        kind: &str,
        verdict: Option<MustSupportVerdict>,
        validated_with: Tier,
    ) -> Result<(), StepFailure> {
        if validated_with < Tier::Profile {
            return Err(StepFailure::blocked(format!(
                "the target validates with tier {} ([validation] tier): no profile was applied",
                validated_with.name()
            )));
        }
        let Some(verdict) = verdict else {
            return Err(StepFailure::blocked(
                "the target does not count Must Support ([validation] must_support = \"off\")",
            ));
        };
        if self.resources.is_empty() {
            return Err(StepFailure::blocked(format!(
                "no {kind} resource was read: Must Support needs data"
            )));
        }
        if self.must_support.is_empty() {
            return Err(StepFailure::blocked(format!(
                "no profile applied to any of the {} {kind} resources",
                self.resources.len()
            )));
        }
        let mut problems = Vec::new();
        for coverage in self.must_support.values() {
            let missing: Vec<&str> = coverage.missing().collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "{}: {} of {} must-support elements in none of its {} resources: {}",
                    coverage.profile,
                    missing.len(),
                    coverage.elements.len(),
                    coverage.resources,
                    missing.join(", ")
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let head = format!("{kind}: must-support elements the payer never sent:");
        let message = listed(&head, &problems);
        Err(match verdict {
            MustSupportVerdict::Warn => StepFailure::warning(message),
            MustSupportVerdict::Fail => StepFailure::conformance(message),
        })
    }

    /// The findings of one tier (all of them for `None`) on the `kind` resources read, the
    /// run validating with tier `validated_with`: none passes; a tier the target does not
    /// validate with, or profiles that applied to none of the resources, leaves nothing to
    /// judge (blocked, with the reason).
    pub fn tier_verdict(
        &self,
        kind: &str,
        tier: Option<Tier>,
        validated_with: Tier,
    ) -> Result<(), StepFailure> {
        if let Some(tier) = tier {
            if validated_with < tier {
                return Err(StepFailure::blocked(format!(
                    "the target validates with tier {} ([validation] tier), so the {} tier was not run",
                    validated_with.name(),
                    tier.name()
                )));
            }
            if tier == Tier::Profile && self.profiled == 0 && !self.resources.is_empty() {
                let declared = self
                    .unknown_profiles
                    .iter()
                    .map(|(url, n)| format!("{url} ({n})"))
                    .collect::<Vec<_>>();
                let why = if declared.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; they declare profiles onramp does not check: {}",
                        declared.join(", ")
                    )
                };
                return Err(StepFailure::blocked(format!(
                    "no profile applied to any of the {} {kind} resources: none declares a profile onramp has and the target's [validation] profiles have none for {kind}{why}",
                    self.resources.len()
                )));
            }
        }
        let findings: Vec<&PageFinding> = self
            .findings
            .iter()
            .filter(|f| tier.is_none_or(|t| f.finding.tier == t))
            .collect();
        if findings.is_empty() {
            return Ok(());
        }
        let problems: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "{}  {}  {} [{} {}] (page {}{})",
                    f.finding.resource.as_deref().unwrap_or("-"),
                    if f.finding.path.is_empty() {
                        "-"
                    } else {
                        &f.finding.path
                    },
                    f.finding.message,
                    f.finding.tier.name(),
                    f.finding.rule,
                    f.page,
                    f.finding
                        .entry
                        .map(|e| format!(", entry {e}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        let what = match tier {
            None => "are not valid FHIR R4",
            Some(Tier::Schema) => "break the R4 JSON Schema",
            Some(Tier::Structure) => "break the R4 StructureDefinitions",
            Some(Tier::Profile) => "break their profiles",
        };
        let head = format!(
            "{} ({} finding{}):",
            broken_count(kind, self.resources.len(), &findings, what),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        Err(StepFailure::conformance(listed(&head, &problems)))
    }
}

/// How many of the `read` resources of `kind` the findings break, counted apart from the
/// other resources on the pages (what an `_include` brought) and from the pages themselves,
/// so that the count never exceeds what was read.
fn broken_count(kind: &str, read: usize, findings: &[&PageFinding], what: &str) -> String {
    let mut of_kind = BTreeSet::new();
    let mut others = BTreeSet::new();
    let mut pages = BTreeSet::new();
    for found in findings {
        let label = found.finding.resource.as_deref().unwrap_or_default();
        let is_kind = label
            .strip_prefix(kind)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ' ']));
        // A resource read by itself (by reference) has no entry: it is its page.
        match (is_kind, found.finding.entry) {
            (true, entry) => {
                of_kind.insert((found.page, entry));
            }
            (false, Some(entry)) => {
                others.insert((found.page, entry));
            }
            (false, None) => {
                pages.insert(found.page);
            }
        }
    }
    let mut text = format!("{} of {read} {kind} resources {what}", of_kind.len());
    if !others.is_empty() {
        text.push_str(&format!(
            ", and {} other resource{} on the pages",
            others.len(),
            if others.len() == 1 { "" } else { "s" }
        ));
    }
    if !pages.is_empty() {
        text.push_str(&format!(
            ", and {} page{} {} as a whole",
            pages.len(),
            if pages.len() == 1 { "" } else { "s" },
            if pages.len() == 1 {
                "itself"
            } else {
                "themselves"
            }
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Findings on an included resource or on a page as a whole are not counted among the
    /// resources of the type read ("14 of 12").
    #[test]
    fn broken_resources_are_never_more_than_those_read() {
        let finding = |page: usize, entry: Option<usize>, resource: &str| PageFinding {
            page,
            url: String::new(),
            finding: Finding {
                entry,
                resource: Some(resource.to_owned()),
                path: String::new(),
                pointer: String::new(),
                keyword: "type".into(),
                message: "wrong".into(),
                tier: Tier::Schema,
                rule: "type".into(),
                profile: None,
            },
        };
        let all = [
            finding(1, Some(0), "ExplanationOfBenefit/a"),
            finding(1, Some(0), "ExplanationOfBenefit/a"),
            finding(1, Some(1), "ExplanationOfBenefit (no id)"),
            finding(1, Some(5), "Coverage/c"),
            finding(2, None, "Bundle"),
        ];
        let refs: Vec<&PageFinding> = all.iter().collect();
        assert_eq!(
            broken_count("ExplanationOfBenefit", 2, &refs, "break the R4 JSON Schema"),
            "2 of 2 ExplanationOfBenefit resources break the R4 JSON Schema, and 1 other resource on the pages, and 1 page itself as a whole"
        );
    }

    /// An id from a token response or a server stays one path segment of a read.
    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(resource_path("Patient", "john-allen"), "Patient/john-allen");
        assert_eq!(
            resource_path("Patient", "john-allen?_format=json#x"),
            "Patient/john-allen%3F_format=json%23x"
        );
        assert_eq!(resource_path("Patient", "../admin"), "Patient/..%2Fadmin");
    }

    fn patient(id: &str) -> ResourceSummary {
        ResourceSummary {
            kind: Arc::from("Patient"),
            id: Some(id.to_owned()),
            page: 1,
            entry: 0,
            owners: Vec::new(),
            references: Vec::new(),
            contained: Vec::new(),
        }
    }

    /// The verdict of a tier is its own findings, counted by resource; a tier the run did
    /// not validate with, or a profile tier nothing declared, leaves nothing to judge.
    #[test]
    fn a_tier_is_judged_on_its_own_findings() {
        let checked = Validator::new(Tier::Structure)
            .check_bytes(br#"{"resourceType":"Patient","id":"p","gender":"robot"}"#);
        assert!(!checked.findings.is_empty());
        let mut result = SearchResult {
            kind: "Patient".into(),
            resources: vec![patient("p"), patient("q")],
            ..SearchResult::default()
        };
        assert_eq!(
            result.tier_verdict("Patient", None, Tier::Structure),
            Ok(())
        );
        result.findings = checked
            .findings
            .into_iter()
            .map(|finding| PageFinding {
                page: 1,
                url: "http://fhir.example/Patient".into(),
                finding,
            })
            .collect();
        let failure = result
            .tier_verdict("Patient", None, Tier::Structure)
            .expect_err("a finding");
        assert_eq!(failure.kind, FailureKind::Conformance);
        assert!(
            failure
                .message
                .starts_with("1 of 2 Patient resources are not valid FHIR R4"),
            "{}",
            failure.message
        );
        let tier = result.findings[0].finding.tier;
        assert!(
            result
                .tier_verdict("Patient", Some(tier), Tier::Structure)
                .is_err()
        );
        let skipped = result
            .tier_verdict("Patient", Some(Tier::Profile), Tier::Structure)
            .expect_err("not run");
        assert_eq!(skipped.kind, FailureKind::Blocked);
        let none_applied = result
            .tier_verdict("Patient", Some(Tier::Profile), Tier::Profile)
            .expect_err("no profile applied");
        assert_eq!(none_applied.kind, FailureKind::Blocked);
        assert!(none_applied.message.contains("no profile applied"));
    }

    #[test]
    fn must_support_warns_by_default_fails_when_asked_and_needs_data() {
        use crate::validate::must_support::Coverage;
        let mut result = SearchResult {
            kind: "Patient".into(),
            resources: vec![patient("p")],
            ..SearchResult::default()
        };
        let warn = Some(MustSupportVerdict::Warn);
        let none = result
            .must_support_verdict("Patient", warn, Tier::Profile)
            .expect_err("no profile applied");
        assert_eq!(none.kind, FailureKind::Blocked);
        result.must_support.insert(
            "http://example.org/StructureDefinition/p".into(),
            Coverage {
                profile: "p".into(),
                resources: 1,
                elements: vec![
                    ("Patient.gender".into(), 1),
                    ("Patient.birthDate".into(), 0),
                ],
            },
        );
        let warned = result
            .must_support_verdict("Patient", warn, Tier::Profile)
            .expect_err("birthDate is missing");
        assert_eq!(warned.severity, crate::infra::fault::Severity::Warning);
        assert!(
            warned.message.contains("Patient.birthDate"),
            "{}",
            warned.message
        );
        assert!(
            !warned.message.contains("Patient.gender"),
            "{}",
            warned.message
        );
        let failed = result
            .must_support_verdict("Patient", Some(MustSupportVerdict::Fail), Tier::Profile)
            .expect_err("birthDate is missing");
        assert_eq!(failed.kind, FailureKind::Conformance);
        assert_eq!(failed.severity, crate::infra::fault::Severity::Error);
        let off = result
            .must_support_verdict("Patient", None, Tier::Profile)
            .expect_err("not counted");
        assert_eq!(off.kind, FailureKind::Blocked);
        result
            .must_support
            .values_mut()
            .for_each(|c| c.elements[1].1 = 1);
        assert_eq!(
            result.must_support_verdict("Patient", warn, Tier::Profile),
            Ok(())
        );
    }

    #[test]
    fn next_links_are_followed_only_on_the_fhir_servers_origin() {
        let base = Url::parse("https://fhir.example.org/r4").expect("url");
        let page = "https://fhir.example.org/r4/Coverage?_count=10";
        for (next, followed) in [
            (
                "https://fhir.example.org/r4/Coverage?page=2",
                Some("https://fhir.example.org/r4/Coverage?page=2"),
            ),
            (
                "Coverage?page=2",
                Some("https://fhir.example.org/r4/Coverage?page=2"),
            ),
            (
                "https://fhir.example.org:443/r4/x",
                Some("https://fhir.example.org/r4/x"),
            ),
            (
                "/other/path?p=2",
                Some("https://fhir.example.org/other/path?p=2"),
            ),
            ("http://fhir.example.org/r4/Coverage?page=2", None),
            ("https://fhir.example.org:8443/r4/Coverage?page=2", None),
            ("https://evil.example.net/r4/Coverage?page=2", None),
            ("https://fhir.example.org.evil.net/r4", None),
            ("//evil.example.net/r4", None),
        ] {
            assert_eq!(
                follow(&base, page, next).ok().as_deref(),
                followed,
                "{next}"
            );
        }
        let refused = follow(&base, page, "http://fhir.example.org/r4/x")
            .expect_err("downgrade")
            .to_string();
        assert!(refused.contains("https://fhir.example.org"), "{refused}");
    }

    #[test]
    fn operation_outcomes_read_as_text() {
        let body = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login","diagnostics":"token expired"},{"severity":"error","code":"x","details":{"text":"and more"}}]}"#;
        assert_eq!(
            crate::payer::http::operation_outcome_text(body).as_deref(),
            Some("token expired; and more")
        );
        assert_eq!(crate::payer::http::operation_outcome_text(b"<html>"), None);
    }

    #[test]
    fn summaries_collect_owners_and_references() {
        let resource: sonic_rs::Value = sonic_rs::from_str(
            r#"{"resourceType":"ExplanationOfBenefit","id":"e1","contained":[{"resourceType":"Organization","id":"c1"}],"patient":{"reference":"Patient/p"},"provider":{"reference":"Organization/o"},"item":[{"locationReference":{"reference":"Location/l"}}]}"#,
        )
        .expect("JSON");
        let summary = summarize(&resource, 1, 0, &mut Interner::default());
        let text = |refs: &[Arc<str>]| refs.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        assert_eq!(text(&summary.owners), ["Patient/p"]);
        assert_eq!(
            text(&summary.references),
            ["Patient/p", "Organization/o", "Location/l"]
        );
        assert_eq!(summary.label(), "ExplanationOfBenefit/e1");
        assert_eq!(summary.contained, vec!["c1"]);
    }

    /// A loopback FHIR server with `last` pages of three Patients each (`p<page>-<n>`),
    /// answering 500 for page `fails` (if any).
    async fn paged_server(last: usize, fails: Option<usize>) -> Url {
        use axum::extract::Query;
        use std::collections::HashMap;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let app = axum::Router::new().route(
            "/r4/Patient",
            axum::routing::get(move |Query(query): Query<HashMap<String, String>>| async move {
                let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let fhir = [("content-type", "application/fhir+json")];
                if Some(page) == fails {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, fhir, String::new());
                }
                let entries: Vec<String> = (0..3)
                    .map(|n| format!(r#"{{"resource":{{"resourceType":"Patient","id":"p{page}-{n}"}}}}"#))
                    .collect();
                let next = if page < last {
                    format!(r#","link":[{{"relation":"next","url":"http://{address}/r4/Patient?page={}"}}]"#, page + 1)
                } else {
                    String::new()
                };
                let body = format!(
                    r#"{{"resourceType":"Bundle","type":"searchset"{next},"entry":[{}]}}"#,
                    entries.join(",")
                );
                (axum::http::StatusCode::OK, fhir, body)
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Url::parse(&format!("http://{address}/r4")).expect("url")
    }

    /// The search's result, and what its progress callback saw (pages, resources).
    async fn read_all(base: &Url) -> (SearchResult, Vec<(usize, usize)>) {
        read_capped(base, 100).await
    }

    async fn read_capped(base: &Url, page_cap: usize) -> (SearchResult, Vec<(usize, usize)>) {
        let recorder = Arc::new(crate::evidence::Recorder::new(None));
        let settings = crate::config::HttpSettings {
            retries: 0,
            ..crate::config::HttpSettings::default()
        };
        let http = Http::new(settings, recorder).expect("client");
        let validator = Arc::new(Validator::new(Tier::Structure));
        let mut seen = Vec::new();
        let result = search(
            &http,
            base,
            "Patient",
            &Secret::new("token"),
            Paging {
                page_size: None,
                page_cap,
            },
            &validator,
            |pages, resources, _| seen.push((pages, resources)),
        )
        .await;
        (result, seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_checked_at_once_are_recorded_in_page_order() {
        let (result, progress) = read_all(&paged_server(9, None).await).await;
        assert_eq!(result.failure, None);
        assert_eq!(result.page_problems, Vec::<String>::new());
        let numbers: Vec<usize> = result.pages.iter().map(|p| p.number).collect();
        assert_eq!(numbers, (1..=9).collect::<Vec<_>>());
        let ids: Vec<String> = result
            .resources
            .iter()
            .filter_map(|r| r.id.clone())
            .collect();
        let expected: Vec<String> = (1..=9)
            .flat_map(|page| (0..3).map(move |n| format!("p{page}-{n}")))
            .collect();
        assert_eq!(ids, expected);
        let expected: Vec<(usize, usize)> = (1..=9).map(|n| (n, n * 3)).collect();
        assert_eq!(progress, expected);
    }

    /// The target's page cap is onramp's limit, not a rule the payer broke: the pages read
    /// are judged, the searchset check holds, and a note says the rest was not read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_page_cap_is_a_note_not_the_payers_fault() {
        let (result, _) = read_capped(&paged_server(9, None).await, 4).await;
        assert_eq!(result.pages.len(), 4);
        assert!(result.unfinished);
        assert_eq!(result.page_problems, Vec::<String>::new());
        assert!(result.page_notes[0].contains("raise [resources] page_cap"));
        let verdict = crate::payer::access::searchset(&result);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        assert_eq!(verdict.notes, result.page_notes);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_that_fails_keeps_the_pages_before_it() {
        let (result, _) = read_all(&paged_server(9, Some(5)).await).await;
        let failure = result.failure.expect("page 5 failed");
        assert!(failure.message.contains("page 5"), "{}", failure.message);
        assert!(failure.message.contains("500"), "{}", failure.message);
        let numbers: Vec<usize> = result.pages.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        assert_eq!(result.resources.len(), 12);
        assert_eq!(result.resources[11].id.as_deref(), Some("p4-2"));
    }
}
