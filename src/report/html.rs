//! `report.html`: one self-contained page rendered from the [`RunSummary`] with handlebars
//! (strict mode, templates and CSS from `reports/`, embedded at build time). Screenshots are
//! inlined as data URIs; the page loads nothing, runs no script, and its Content-Security-
//! Policy forbids both. Every value from the run goes through handlebars' escaping: a
//! resource named `<script>` shows as text.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use handlebars::Handlebars;
use serde::Serialize;

use crate::checklist::ItemStatus;
use crate::summary::{FailureKind, Outcome, RunSummary, Status};

const TEMPLATE: &str = include_str!("../../reports/report.hbs");
const CSS: &str = include_str!("../../reports/report.css");
/// Groups of findings shown per resource type (by rule and path, the commonest first); the
/// rest are counted, and every finding is in summary.json.
const GROUPS_SHOWN: usize = 100;
/// Example findings shown per group.
const EXAMPLES_SHOWN: usize = 3;
/// A run of more exchanges than this of one kind (the pages of a search) shows its first
/// [`RUN_HEAD`] and its last in full, every failed one in full, and one line for the rest.
const RUN_SHOWN: usize = 6;
const RUN_HEAD: usize = 3;

/// Why the report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("the HTML report could not be rendered: {0}")]
pub struct RenderError(String);

/// The screenshots' bytes, by their file name in the summary.
pub type Images = BTreeMap<String, Vec<u8>>;

#[derive(Serialize)]
pub(crate) struct Verdict {
    label: &'static str,
    class: &'static str,
}

#[derive(Serialize)]
struct Counts {
    scenarios: usize,
    scenarios_passed: usize,
    steps: usize,
    steps_passed: usize,
    resources: usize,
    invalid: u64,
    exchanges: usize,
}

#[derive(Serialize)]
struct FailureView<'a> {
    feature: &'a str,
    scenario: &'a str,
    keyword: &'a str,
    step: &'a str,
    message: &'a str,
    kind: &'static str,
    kind_label: &'static str,
}

#[derive(Serialize)]
struct StepView<'a> {
    keyword: &'a str,
    text: &'a str,
    status: &'static str,
    duration: String,
    error: Option<&'a str>,
    /// `err` for a failure, `warn` for a SHOULD not met, `note` (neutral) for why a step
    /// was skipped.
    error_class: &'static str,
}

#[derive(Serialize)]
struct ScenarioView<'a> {
    name: &'a str,
    /// Failed scenarios show their steps at once.
    open: bool,
    tags: String,
    status: &'static str,
    duration: String,
    steps: Vec<StepView<'a>>,
}

#[derive(Serialize)]
struct FeatureView<'a> {
    name: &'a str,
    scenarios: Vec<ScenarioView<'a>>,
}

#[derive(Serialize)]
struct ShotView<'a> {
    index: usize,
    anchor: String,
    caption: &'a str,
    context: &'a str,
    /// Host and path of the page (its query is in summary.json).
    place: String,
    data: String,
}

#[derive(Serialize)]
struct RecordingView<'a> {
    file: &'a str,
    description: String,
    caveat: &'static str,
}

#[derive(Serialize)]
struct FindingView<'a> {
    resource: &'a str,
    path: &'a str,
    message: &'a str,
    keyword: &'a str,
    page: usize,
}

#[derive(Serialize)]
struct ResourceView<'a> {
    kind: &'a str,
    status: &'static str,
    count: usize,
    pages: usize,
    invalid: u64,
    problems: &'a [String],
    notes: &'a [String],
    failure: Option<&'a str>,
    finding_groups: Vec<FindingGroupView<'a>>,
    /// Findings in groups not shown.
    findings_more: usize,
    /// `schema 2 · structure 5 · profile 1`.
    tier_counts: String,
    /// Constraints not evaluated, and declared profiles not checked, for a note.
    not_evaluated: String,
    profiles_not_checked: String,
}

/// Findings of one rule at one path (array indexes left out), with a few examples.
#[derive(Serialize)]
struct FindingGroupView<'a> {
    tier: &'static str,
    /// The profile's short name, for profile findings.
    profile: Option<&'a str>,
    rule: &'a str,
    path: String,
    count: usize,
    examples: Vec<FindingView<'a>>,
    examples_more: usize,
}

#[derive(Serialize)]
struct ExchangeView<'a> {
    /// For a line standing for exchanges not shown: what they were.
    gap: Option<String>,
    index: usize,
    context: &'a str,
    method: &'a str,
    url: &'a str,
    status: String,
    status_class: &'static str,
    duration_ms: u64,
    request_headers: &'a [(String, String)],
    request_body: Option<&'a str>,
    response_headers: &'a [(String, String)],
    response_body: Option<&'a str>,
    truncated: u64,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct ItemView<'a> {
    status: &'static str,
    label: &'a str,
    value: Option<&'a str>,
    detail: &'a str,
    todo: Option<&'a str>,
}

#[derive(Serialize)]
struct ChecklistView<'a> {
    done: usize,
    total: usize,
    summary: String,
    items: Vec<ItemView<'a>>,
}

#[derive(Serialize)]
struct View<'a> {
    run_id: &'a str,
    verdict: Verdict,
    target: &'a crate::summary::TargetInfo,
    scopes: String,
    pkce: &'static str,
    faults: String,
    /// The tiers and profiles every resource was validated with.
    validation: String,
    started_at: String,
    finished_at: String,
    duration: String,
    onramp_version: &'a str,
    fhir_version: &'a str,
    browser: &'a str,
    counts: Counts,
    failures: Vec<FailureView<'a>>,
    warnings: Vec<FailureView<'a>>,
    errors: &'a [String],
    features: Vec<FeatureView<'a>>,
    screenshots: Vec<ShotView<'a>>,
    recording: Option<RecordingView<'a>>,
    resources: Vec<ResourceView<'a>>,
    token: Option<TokenView<'a>>,
    exchanges: Vec<ExchangeView<'a>>,
    checklist: ChecklistView<'a>,
    notes: &'a [crate::evidence::Note],
    /// The inline SVG of [`super::timeline::svg`], escaped there.
    timeline_svg: String,
    slowest: Vec<SlowView<'a>>,
    members: Vec<MemberView<'a>>,
}

/// One member's section (`@isolation`).
#[derive(Serialize)]
struct MemberView<'a> {
    label: &'a str,
    patient: &'a str,
    status: &'static str,
    problem: Option<&'a str>,
    served: String,
    asked: usize,
    refused: usize,
    answered_without: usize,
    leaked: usize,
    leaks: &'a [crate::summary::MemberLeak],
}

#[derive(Serialize)]
struct SlowView<'a> {
    rank: usize,
    exchange: usize,
    label: &'a str,
    context: &'a str,
    duration_ms: u64,
}

#[derive(Serialize)]
struct TokenView<'a> {
    status: String,
    token_type: &'a str,
    expires_in: String,
    scope_requested: &'a str,
    scope_granted: &'a str,
    patient: &'a str,
    cache_control: &'a str,
    pragma: &'a str,
    refreshed: u32,
    problem: Option<&'a str>,
}

fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// `2026-11-28 19:50:27 UTC` from an RFC 3339 time.
fn readable_time(rfc3339: &str) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&format).ok())
        .unwrap_or_else(|| rfc3339.to_owned())
}

pub(crate) fn verdict(outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Passed => Verdict {
            label: "Conformant",
            class: "passed",
        },
        Outcome::Failed => Verdict {
            label: "Not conformant",
            class: "failed",
        },
        Outcome::Error => Verdict {
            label: "Could not test everything",
            class: "error",
        },
        Outcome::Interrupted => Verdict {
            label: "Interrupted",
            class: "interrupted",
        },
    }
}

fn view<'a>(summary: &'a RunSummary, images: &Images) -> View<'a> {
    let mut features: Vec<FeatureView<'a>> = Vec::new();
    let (mut failures, mut warnings) = (Vec::new(), Vec::new());
    for scenario in &summary.scenarios {
        for step in &scenario.steps {
            let Some(error) = &step.error else { continue };
            let (list, kind, kind_label) = match (step.status, step.failure) {
                (Status::Warning, _) => (
                    &mut warnings,
                    "warning",
                    "a SHOULD the target does not meet (the verdict stands)",
                ),
                (Status::Failed, Some(FailureKind::Environment)) => {
                    (&mut failures, "environment", "onramp could not test this")
                }
                (Status::Failed, Some(FailureKind::Usage)) => (
                    &mut failures,
                    "environment",
                    "the features or the target configuration need fixing",
                ),
                (Status::Failed, _) => {
                    (&mut failures, "conformance", "the target is not conformant")
                }
                (Status::Passed | Status::Skipped, _) => continue,
            };
            {
                list.push(FailureView {
                    feature: &scenario.feature,
                    scenario: &scenario.name,
                    keyword: &step.keyword,
                    step: &step.text,
                    message: error,
                    kind,
                    kind_label,
                });
            }
        }
        let view = ScenarioView {
            name: &scenario.name,
            // A failure is open; a skip is collapsed, its reason a click away.
            open: scenario.status == Status::Failed,
            tags: scenario.tags.join(" "),
            status: scenario.status.name(),
            duration: seconds(scenario.duration_ms),
            steps: scenario
                .steps
                .iter()
                .enumerate()
                .map(|(at, step)| StepView {
                    keyword: &step.keyword,
                    text: &step.text,
                    status: step.status.name(),
                    duration: seconds(step.duration_ms),
                    // A reason the step before gave already is not repeated.
                    error: step.error.as_deref().filter(|error| {
                        step.status == Status::Failed
                            || at == 0
                            || scenario.steps[at - 1].error.as_deref() != Some(*error)
                    }),
                    error_class: match step.status {
                        Status::Failed => "err",
                        Status::Warning => "warn",
                        Status::Passed | Status::Skipped => "note",
                    },
                })
                .collect(),
        };
        match features.iter_mut().find(|f| f.name == scenario.feature) {
            Some(feature) => feature.scenarios.push(view),
            None => features.push(FeatureView {
                name: &scenario.feature,
                scenarios: vec![view],
            }),
        }
    }
    let screenshots = summary
        .screenshots
        .iter()
        .filter_map(|shot| {
            let bytes = images.get(&shot.file)?;
            Some(ShotView {
                index: shot.index,
                anchor: format!("shot-{}", shot.index),
                caption: &shot.caption,
                context: &shot.context,
                place: url::Url::parse(&shot.url).map_or_else(
                    |_| shot.url.clone(),
                    |u| {
                        format!(
                            "{}{}",
                            u.host_str()
                                .map(|h| format!(
                                    "{h}{}",
                                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                                ))
                                .unwrap_or_default(),
                            u.path()
                        )
                    },
                ),
                data: format!("data:image/png;base64,{}", STANDARD.encode(bytes)),
            })
        })
        .collect();
    let resources = summary
        .resources
        .iter()
        .map(|r| {
            let mut groups = finding_groups(&r.findings);
            let findings_more = groups.iter().skip(GROUPS_SHOWN).map(|g| g.count).sum();
            groups.truncate(GROUPS_SHOWN);
            ResourceView {
                kind: &r.kind,
                status: if r.failure.is_some() || !r.problems.is_empty() || r.invalid > 0 {
                    "failed"
                } else {
                    "passed"
                },
                count: r.count,
                pages: r.pages,
                invalid: r.invalid,
                problems: &r.problems,
                notes: &r.notes,
                failure: r.failure.as_deref(),
                finding_groups: groups,
                findings_more,
                tier_counts: {
                    let counts = crate::summary::finding_counts(&r.findings);
                    ["schema", "structure", "profile"]
                        .iter()
                        .filter_map(|tier| {
                            counts.get(*tier).map(|rules| {
                                format!(
                                    "{tier}: {}",
                                    plural(rules.values().sum::<u64>(), "finding")
                                )
                            })
                        })
                        .collect::<Vec<_>>()
                        .join(" · ")
                },
                not_evaluated: r
                    .not_evaluated
                    .iter()
                    .map(|(key, n)| format!("{key} ({n}×)"))
                    .collect::<Vec<_>>()
                    .join(", "),
                profiles_not_checked: r
                    .profiles_not_checked
                    .iter()
                    .map(|(url, n)| format!("{url} ({})", plural(*n, "resource")))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect();
    let token = summary.token.as_ref().map(|t| TokenView {
        status: t
            .status
            .map_or_else(|| "no answer".into(), |s| s.to_string()),
        token_type: t.token_type.as_deref().unwrap_or("(none)"),
        expires_in: t
            .expires_in
            .as_ref()
            .map_or_else(|| "(none)".into(), ToString::to_string),
        scope_requested: &t.scope_requested,
        scope_granted: t
            .scope_granted
            .as_deref()
            .unwrap_or("(not given: the requested scope)"),
        patient: t.patient.as_deref().unwrap_or("(not given)"),
        cache_control: t.cache_control.as_deref().unwrap_or("(none)"),
        pragma: t.pragma.as_deref().unwrap_or("(none)"),
        refreshed: t.refreshed,
        problem: t.problem.as_deref(),
    });
    let slowest: Vec<usize> = summary
        .timeline
        .slowest
        .iter()
        .map(|s| s.exchange)
        .collect();
    let exchanges = shown_exchanges(&summary.exchanges, &slowest)
        .into_iter()
        .map(|shown| match shown {
            Shown::Gap(text) => ExchangeView {
                gap: Some(text),
                index: 0,
                context: "",
                method: "",
                url: "",
                status: String::new(),
                status_class: "",
                duration_ms: 0,
                request_headers: &[],
                request_body: None,
                response_headers: &[],
                response_body: None,
                truncated: 0,
                error: None,
            },
            Shown::Full(e) => ExchangeView {
                gap: None,
                index: e.index,
                context: &e.context,
                method: &e.method,
                url: &e.url,
                status: e
                    .status
                    .map_or_else(|| "no answer".into(), |s| s.to_string()),
                status_class: match e.status {
                    Some(200..=399) => "ok",
                    Some(400..=499) => "warn",
                    Some(_) | None => "bad",
                },
                duration_ms: e.duration_ms,
                request_headers: &e.request_headers,
                request_body: e.request_body.as_deref(),
                response_headers: &e.response_headers,
                response_body: e.response_body.as_deref(),
                truncated: e.truncated,
                error: e.error.as_deref(),
            },
        })
        .collect();
    let checklist = &summary.checklist;
    let done = checklist.items.len() - checklist.missing();
    let recording = summary.recording.as_ref().map(|r| RecordingView {
        file: &r.file,
        description: format!(
            "{} frames of the harness's browser signing the test member in ({}), one per browser step.",
            r.frames, r.media_type
        ),
        caveat: "It shows onramp's own connection to the Demo Health Plan, not your app's user interface: the payer asks for a recording of your app connecting and displaying the member's data.",
    });
    View {
        run_id: &summary.run_id,
        verdict: if summary.outcome == Outcome::Error && summary.exit_code == crate::infra::exit::USAGE {
            // Not run as written: the payer was not judged.
            Verdict {
                label: "The features or the target do not fit",
                class: "error",
            }
        } else {
            verdict(summary.outcome)
        },
        target: &summary.target,
        scopes: summary.target.scopes.join(" "),
        pkce: if summary.target.pkce { "S256" } else { "not used" },
        faults: summary.target.faults.join(", "),
        validation: validation_line(&summary.target.validation),
        started_at: readable_time(&summary.started_at),
        finished_at: readable_time(&summary.finished_at),
        duration: seconds(summary.duration_ms),
        onramp_version: &summary.onramp_version,
        fhir_version: &summary.fhir_version,
        browser: summary.browser.as_deref().unwrap_or("no browser used"),
        counts: Counts {
            scenarios: summary.scenarios.len(),
            scenarios_passed: summary.scenario_counts.passed,
            steps: summary.step_counts.passed + summary.step_counts.failed + summary.step_counts.skipped,
            steps_passed: summary.step_counts.passed,
            resources: summary.resources.iter().map(|r| r.count).sum(),
            invalid: summary.resources.iter().map(|r| r.invalid).sum(),
            exchanges: summary.exchanges.len(),
        },
        failures,
        warnings,
        errors: &summary.errors,
        features,
        screenshots,
        recording,
        resources,
        token,
        exchanges,
        checklist: ChecklistView {
            done,
            total: checklist.items.len(),
            summary: match &checklist.manifest {
                Some(path) => format!("{done} of {} items ready, from {}.", checklist.items.len(), path.display()),
                None => "No onboarding manifest: run `onramp init`, fill in onboarding.toml, and run again.".into(),
            },
            items: checklist
                .items
                .iter()
                .map(|i| ItemView {
                    status: match i.status {
                        ItemStatus::Complete => "complete",
                        ItemStatus::Missing => "missing",
                        ItemStatus::Invalid => "invalid",
                    },
                    label: &i.label,
                    value: i.value.as_deref(),
                    detail: &i.detail,
                    todo: i.todo.as_deref(),
                })
                .collect(),
        },
        notes: &summary.notes,
        timeline_svg: super::timeline::svg(&summary.timeline),
        slowest: summary
            .timeline
            .slowest
            .iter()
            .enumerate()
            .map(|(rank, slow)| SlowView {
                rank: rank + 1,
                exchange: slow.exchange,
                label: &slow.label,
                context: &slow.context,
                duration_ms: slow.duration_ms,
            })
            .collect(),
        members: summary
            .members
            .iter()
            .map(|m| MemberView {
                label: &m.label,
                patient: m.patient.as_deref().unwrap_or("not known"),
                status: if m.problem.is_some() || !m.leaks.is_empty() {
                    "failed"
                } else {
                    "passed"
                },
                problem: m.problem.as_deref(),
                served: if m.resources.is_empty() {
                    "nothing read".to_owned()
                } else {
                    m.resources
                        .iter()
                        .map(|r| format!("{} {}", r.count, r.kind))
                        .collect::<Vec<_>>()
                        .join(" · ")
                },
                asked: m.asked,
                refused: m.refused,
                answered_without: m.answered_without,
                leaked: m.leaks.len(),
                leaks: &m.leaks,
            })
            .collect(),
    }
}

/// What the run validated with, in a line.
fn validation_line(validation: &crate::summary::ValidationInfo) -> String {
    let tiers = match validation.tier {
        crate::validate::Tier::Schema => "tier schema: the official R4 JSON Schema",
        crate::validate::Tier::Structure => {
            "tier structure: the official R4 JSON Schema and the R4 StructureDefinitions"
        }
        crate::validate::Tier::Profile => {
            "tier profile: the official R4 JSON Schema, the R4 StructureDefinitions and the CARIN Blue Button 2.0.0 profiles"
        }
    };
    if validation.tier != crate::validate::Tier::Profile {
        return tiers.to_owned();
    }
    let profiles: Vec<&str> = validation
        .profiles
        .iter()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .collect();
    if profiles.is_empty() {
        format!("{tiers} that resources declare")
    } else {
        format!(
            "{tiers} that resources declare, and {} for every resource of its type",
            profiles.join(", ")
        )
    }
}

/// `path` without its array indexes: `EOB.item[3].adjudication[1]` → `EOB.item[].adjudication[]`.
fn without_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' if in_index => in_index = false,
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// Findings grouped by tier, rule and path: schema first, then structure, then profile,
/// the commonest first within a tier.
fn finding_groups(findings: &[crate::summary::ResourceFinding]) -> Vec<FindingGroupView<'_>> {
    let mut groups: Vec<FindingGroupView<'_>> = Vec::new();
    let mut index: std::collections::HashMap<(crate::validate::Tier, &str, String), usize> =
        std::collections::HashMap::new();
    for f in findings {
        let path = without_indexes(&f.path);
        let rule = if f.rule.is_empty() {
            &f.keyword
        } else {
            &f.rule
        };
        let at = *index
            .entry((f.tier, rule.as_str(), path.clone()))
            .or_insert_with(|| {
                groups.push(FindingGroupView {
                    tier: f.tier.name(),
                    profile: f
                        .profile
                        .as_deref()
                        .map(|p| p.rsplit('/').next().unwrap_or(p)),
                    rule,
                    path,
                    count: 0,
                    examples: Vec::new(),
                    examples_more: 0,
                });
                groups.len() - 1
            });
        let group = &mut groups[at];
        group.count += 1;
        if group.examples.len() < EXAMPLES_SHOWN {
            group.examples.push(FindingView {
                resource: f.resource.as_deref().unwrap_or("-"),
                path: &f.path,
                message: &f.message,
                keyword: &f.keyword,
                page: f.page,
            });
        } else {
            group.examples_more += 1;
        }
    }
    let rank = |tier: &str| match tier {
        "schema" => 0,
        "structure" => 1,
        _ => 2,
    };
    groups.sort_by_key(|g| (rank(g.tier), std::cmp::Reverse(g.count)));
    groups
}

/// An exchange shown in full, or a line for several that are not.
enum Shown<'a> {
    Full(&'a crate::evidence::Exchange),
    Gap(String),
}

/// What an exchange's context says without its trailing number (`Search Coverage, page `).
fn stem(context: &str) -> &str {
    context.trim_end_matches(|c: char| c.is_ascii_digit())
}

fn failed(exchange: &crate::evidence::Exchange) -> bool {
    exchange.error.is_some() || exchange.status.is_none_or(|s| s >= 400)
}

/// The exchanges as the report lists them: runs of the same kind (the thousand pages of a
/// member's claims) shortened to their first and last, any that failed and any in
/// `always` (the slowest, which the timeline links to), with a line saying what the others
/// were; everything stays in summary.json.
fn shown_exchanges<'a>(
    exchanges: &'a [crate::evidence::Exchange],
    always: &[usize],
) -> Vec<Shown<'a>> {
    let mut shown = Vec::new();
    let mut start = 0;
    while start < exchanges.len() {
        let kind = stem(&exchanges[start].context);
        let end = exchanges[start..]
            .iter()
            .position(|e| stem(&e.context) != kind)
            .map_or(exchanges.len(), |n| start + n);
        let run = &exchanges[start..end];
        if run.len() <= RUN_SHOWN {
            shown.extend(run.iter().map(Shown::Full));
        } else {
            let last = run.len() - 1;
            let mut hidden: Vec<&crate::evidence::Exchange> = Vec::new();
            for (at, exchange) in run.iter().enumerate() {
                if at < RUN_HEAD
                    || at == last
                    || failed(exchange)
                    || always.contains(&exchange.index)
                {
                    if !hidden.is_empty() {
                        shown.push(Shown::Gap(gap_line(&hidden)));
                        hidden.clear();
                    }
                    shown.push(Shown::Full(exchange));
                } else {
                    hidden.push(exchange);
                }
            }
        }
        start = end;
    }
    shown
}

/// `#4–#999: 996 more exchanges of “Search ExplanationOfBenefit, page …”, all 200, 9.12 s in all, the slowest #512 (31 ms)`.
fn gap_line(hidden: &[&crate::evidence::Exchange]) -> String {
    let (Some(first), Some(last)) = (hidden.first(), hidden.last()) else {
        return String::new();
    };
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for e in hidden {
        *statuses
            .entry(
                e.status
                    .map_or_else(|| "no answer".into(), |s| s.to_string()),
            )
            .or_default() += 1;
    }
    let statuses = if statuses.len() == 1 {
        format!("all {}", statuses.keys().next().map_or("", String::as_str))
    } else {
        statuses
            .iter()
            .map(|(status, n)| format!("{n} × {status}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let total: u64 = hidden.iter().map(|e| e.duration_ms).sum();
    let slowest = hidden
        .iter()
        .max_by_key(|e| e.duration_ms)
        .map_or_else(String::new, |e| {
            format!(", the slowest #{} ({} ms)", e.index, e.duration_ms)
        });
    format!(
        "#{}–#{}: {} more exchanges of “{}…”, {statuses}, {:.2} s in all{slowest}; every one is in summary.json",
        first.index,
        last.index,
        hidden.len(),
        stem(&first.context),
        total as f64 / 1000.0
    )
}

/// Render the report. Pure: the summary and the screenshots' bytes in, HTML out.
pub fn render(summary: &RunSummary, images: &Images) -> Result<String, RenderError> {
    render_page(TEMPLATE, &view(summary, images))
}

/// Render `template` (strict, with the report's CSS as the `css` partial) with `view`.
pub(crate) fn render_page(template: &str, view: &impl Serialize) -> Result<String, RenderError> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry
        .register_partial("css", CSS)
        .map_err(|e| RenderError(e.to_string()))?;
    registry
        .register_template_string("page", template)
        .map_err(|e| RenderError(e.to_string()))?;
    registry
        .render("page", view)
        .map_err(|e| RenderError(e.to_string()))
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
