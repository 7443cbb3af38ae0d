//! The summary of a finished run, built once from what the steps recorded as they ran (the
//! context's searches, checks and grants, the collector's scenarios, the recorder's
//! evidence) and the onboarding manifest; every output is then rendered from it alone.

use std::path::Path;

use super::collector;
use super::context::RunContext;
use super::failure::StepFailure;
use super::plan::now_rfc3339;
use crate::evidence::{BrowserAction, Exchange};
use crate::payer::fhir::SearchResult;
use crate::summary::{
    Counts, FailureKind, Lane, Outcome, ResourceFinding, ResourceResult, RunSummary, SLOWEST,
    ScenarioSummary, Slow, Span, Status, TargetInfo, Timeline, TokenSummary, exchange_label,
};

/// What the summary is made of besides the run context.
pub struct SummaryParts<'a> {
    pub id: String,
    pub target: TargetInfo,
    pub started_at: String,
    pub duration_ms: u64,
    pub interrupted: Option<crate::infra::stop::Stop>,
    pub ctx: &'a RunContext,
    pub collected: collector::Collected,
    pub manifest: Option<&'a Path>,
    pub require_checklist: bool,
    /// The run's folder, where the recordings are.
    pub dir: &'a Path,
    /// The recordings made during the run.
    pub recordings: crate::report::recording::Recordings,
}

/// Counts of passed, failed and skipped.
fn count(statuses: impl Iterator<Item = Status>) -> Counts {
    let mut counts = Counts::default();
    for status in statuses {
        match status {
            Status::Passed => counts.passed += 1,
            Status::Failed => counts.failed += 1,
            Status::Warning => counts.warnings += 1,
            Status::Skipped => counts.skipped += 1,
        }
    }
    counts
}

/// Whether the app under test passed: its scenarios (`@app`) ran, and every one passed.
fn app_passed(scenarios: &[ScenarioSummary]) -> bool {
    let mut app = scenarios
        .iter()
        .filter(|s| s.tags.iter().any(|t| t == "@app"))
        .peekable();
    app.peek().is_some() && app.all(|s| s.status == Status::Passed)
}

/// The summary of a finished run, from what the steps recorded as they ran.
pub async fn summarize(parts: SummaryParts<'_>) -> RunSummary {
    let ctx = parts.ctx;
    let redact = |text: &str| ctx.recorder.redact(text);
    let collector::Collected {
        scenarios,
        mut errors,
        ..
    } = parts.collected;
    let scenario_counts = count(scenarios.iter().map(|s| s.status));
    let step_counts = count(
        scenarios
            .iter()
            .flat_map(|s| s.steps.iter().map(|st| st.status)),
    );
    let failures: Vec<FailureKind> = scenarios
        .iter()
        .flat_map(|s| s.steps.iter())
        .filter(|st| st.status == Status::Failed)
        .filter_map(|st| st.failure)
        .collect();
    let (mut outcome, mut exit_code) = Outcome::decide(
        parts.interrupted,
        &failures,
        !errors.is_empty(),
        scenarios.is_empty(),
    );
    if scenarios.is_empty() && parts.interrupted.is_none() {
        errors.push("no scenario ran: check --tags and the features".into());
    }
    let list = &ctx.target.checklist;
    let mut checklist = match crate::checklist::check(parts.manifest, list) {
        Ok(checklist) => checklist,
        Err(error) => {
            errors.push(redact(&error.to_string()));
            crate::checklist::absent(list)
        }
    };
    let mut made = |made: crate::report::recording::Made, what: &str| {
        made.unwrap_or_else(|error| {
            errors.push(format!("no {what}: {error}"));
            None
        })
    };
    let recording = made(parts.recordings.run, "recording");
    let app_recording = made(parts.recordings.app, "recording of the app");
    if let Some(app) = &app_recording {
        checklist.recorded_app(&parts.dir.join(&app.file), app_passed(&scenarios));
    }
    if parts.require_checklist && list.items.is_empty() {
        errors.push(
            "--require-checklist: the target names no production-access checklist ([payer] checklist)"
                .into(),
        );
        (outcome, exit_code) = (Outcome::Error, crate::infra::exit::USAGE);
    } else if parts.require_checklist && outcome == Outcome::Passed && !checklist.complete() {
        errors.push(format!(
            "--require-checklist: {} production-access items are not ready",
            checklist.missing()
        ));
        (outcome, exit_code) = (Outcome::Failed, crate::infra::exit::FAILURES);
    }

    let mut resources: Vec<ResourceResult> = ctx
        .searches
        .finished()
        .await
        .iter()
        .map(|search| resource_result(ctx, search, crate::summary::Api::PatientAccess))
        .collect();
    for api in &ctx.books.apis {
        for search in api.searches.finished().await {
            resources.push(resource_result(
                ctx,
                &search,
                crate::summary::Api::of_book(api.book),
            ));
        }
    }
    let apis = crate::summary::ApiVerdict::of(&scenarios);
    let token = token_summary(ctx);
    let members = member_summaries(ctx).await;
    let evidence = ctx.recorder.snapshot();
    let timeline = timeline(&scenarios, &evidence.browser_actions, &evidence.exchanges);
    RunSummary {
        schema_version: crate::summary::SCHEMA_VERSION,
        run_id: parts.id,
        exit_code,
        outcome,
        interrupted_by: parts.interrupted.map(|s| s.name().to_owned()),
        target: parts.target,
        started_at: parts.started_at,
        finished_at: now_rfc3339(),
        duration_ms: parts.duration_ms,
        onramp_version: env!("CARGO_PKG_VERSION").to_owned(),
        fhir_version: crate::validate::FHIR_VERSION.to_owned(),
        browser: ctx.browser.version(),
        scenarios,
        apis,
        scenario_counts,
        step_counts,
        resources,
        token,
        exchanges: evidence.exchanges,
        screenshots: evidence.screenshots,
        notes: evidence.notes,
        errors,
        checklist,
        recording,
        app_recording,
        browser_actions: evidence.browser_actions,
        timeline,
        members,
    }
}

/// One section per member, when the `@isolation` checks signed the members in.
async fn member_summaries(ctx: &RunContext) -> Vec<crate::summary::MemberSummary> {
    if !ctx.members.engaged().await {
        return Vec::new();
    }
    let probes = ctx.members.probes();
    let mut out = Vec::new();
    for index in 0..ctx.target.members.len() {
        let (searches, grant) = if index == 0 {
            (
                ctx.searches.finished().await,
                Some(
                    ctx.session
                        .existing()
                        .ok_or_else(|| StepFailure::blocked("no token")),
                ),
            )
        } else {
            (
                ctx.members.finished(index).await,
                ctx.members.existing(index).await,
            )
        };
        let patient = grant
            .as_ref()
            .and_then(|g| g.as_ref().ok())
            .and_then(|g| g.patient())
            .or_else(|| match searches.iter().find(|s| s.kind == "Patient") {
                Some(found) if found.resources.len() == 1 => found.resources[0].id.clone(),
                _ => None,
            });
        let theirs: Vec<&super::records::Probe> =
            probes.iter().filter(|p| p.owner == index).collect();
        out.push(crate::summary::MemberSummary {
            label: ctx.member_label(index),
            patient,
            problem: grant
                .and_then(Result::err)
                .map(|f| ctx.recorder.redact(&f.message)),
            resources: searches
                .iter()
                .map(|s| crate::summary::MemberResources {
                    kind: s.kind.clone(),
                    count: s.resources.len(),
                })
                .collect(),
            asked: theirs.len(),
            refused: theirs
                .iter()
                .filter(|p| p.status.is_some_and(|s| (400..500).contains(&s)))
                .count(),
            answered_without: theirs
                .iter()
                .filter(|p| {
                    p.leaked.is_empty() && p.status.is_some_and(|s| (200..300).contains(&s))
                })
                .count(),
            leaks: theirs
                .iter()
                .filter(|p| !p.leaked.is_empty())
                .map(|p| crate::summary::MemberLeak {
                    reader: ctx.member_label(p.reader),
                    kind: p.kind.clone(),
                    way: p.way.describe().to_owned(),
                    url: p.url.clone(),
                    status: p.status,
                    resources: p.leaked.clone(),
                })
                .collect(),
        });
    }
    out
}

/// One resource type's result: what its search read and what its checks found, redacted.
fn resource_result(
    ctx: &RunContext,
    search: &SearchResult,
    api: crate::summary::Api,
) -> ResourceResult {
    let redact = |text: &str| ctx.recorder.redact(text);
    // The checks of a public API's type are recorded under its title (steps/resources.rs).
    let checks = match api {
        crate::summary::Api::PatientAccess => ctx.checks.of(&search.kind),
        crate::summary::Api::ProviderDirectory => ctx.checks.of(&format!(
            "{} {}",
            crate::payer::public::Book::Directory.title(),
            search.kind
        )),
        crate::summary::Api::DrugFormulary => ctx.checks.of(&format!(
            "{} {}",
            crate::payer::public::Book::Formulary.title(),
            search.kind
        )),
    };
    let mut result = ResourceResult {
        count: search.resources.len(),
        pages: search.pages.len(),
        invalid: search.invalid,
        findings_not_listed: search.findings_not_listed,
        findings: search
            .findings
            .iter()
            .map(|f| ResourceFinding {
                page: f.page,
                url: redact(&f.url),
                entry: f.finding.entry,
                resource: f.finding.resource.as_deref().map(redact),
                path: redact(&f.finding.path),
                pointer: redact(&f.finding.pointer),
                keyword: f.finding.keyword.clone(),
                message: redact(&f.finding.message),
                tier: f.finding.tier,
                rule: f.finding.rule.clone(),
                profile: f.finding.profile.clone(),
            })
            .collect(),
        not_evaluated: search
            .undecided
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
        profiles_not_checked: search
            .unknown_profiles
            .iter()
            .map(|(k, n)| (redact(k), *n))
            .collect(),
        finding_counts: std::collections::BTreeMap::new(),
        must_support: search
            .must_support
            .iter()
            .map(|(url, coverage)| (redact(url), coverage.clone()))
            .collect(),
        problems: checks.iter().flat_map(|c| c.problems.clone()).collect(),
        notes: checks.iter().flat_map(|c| c.notes.clone()).collect(),
        failure: search.failure.as_ref().map(|f| redact(&f.message)),
        timing: crate::summary::SearchTiming {
            fetch_ms: search.pages.iter().map(|p| p.duration_ms).sum(),
            parse_ms: search.pages.iter().map(|p| p.parse_us).sum::<u64>() / 1000,
            check_ms: search.pages.iter().map(|p| p.check_us).sum::<u64>() / 1000,
        },
        kind: search.kind.clone(),
        api,
    };
    result.finding_counts = crate::summary::finding_counts(&result.findings);
    result
}

/// The run's token response as the report shows it, redacted.
fn token_summary(ctx: &RunContext) -> Option<TokenSummary> {
    let redact = |text: &str| ctx.recorder.redact(text);
    ctx.session.existing().map(|grant| {
        let answer = &grant.answer;
        let text = |name: &str| answer.fields.get(name).and_then(|v| v.as_str()).map(redact);
        TokenSummary {
            status: answer.status,
            token_type: text("token_type"),
            expires_in: answer.fields.get("expires_in").cloned(),
            scope_requested: grant.requested_scope.clone(),
            scope_granted: text("scope"),
            patient: text("patient"),
            cache_control: answer.header("cache-control").map(redact),
            pragma: answer.header("pragma").map(redact),
            refreshed: grant.refreshed(),
            problem: answer.problem.as_deref().map(redact),
        }
    })
}

/// The timeline of a run from its records: where its time went.
pub fn timeline(
    scenarios: &[ScenarioSummary],
    actions: &[BrowserAction],
    exchanges: &[Exchange],
) -> Timeline {
    let mut spans = Vec::new();
    // Scenarios run one after another; consecutive scenarios of a feature make its span.
    let mut feature: Option<Span> = None;
    for scenario in scenarios {
        let end = scenario.start_ms + scenario.duration_ms;
        match &mut feature {
            Some(open) if open.label == scenario.feature => {
                open.duration_ms = end.max(open.start_ms + open.duration_ms) - open.start_ms;
                if scenario.status == Status::Failed {
                    open.status = "failed".into();
                }
            }
            _ => {
                spans.extend(feature.take());
                feature = Some(Span {
                    lane: Lane::Feature,
                    label: scenario.feature.clone(),
                    start_ms: scenario.start_ms,
                    duration_ms: scenario.duration_ms,
                    status: if scenario.status == Status::Failed {
                        "failed"
                    } else {
                        "passed"
                    }
                    .into(),
                    exchange: None,
                });
            }
        }
    }
    spans.extend(feature);
    for scenario in scenarios {
        spans.push(Span {
            lane: Lane::Scenario,
            label: scenario.name.clone(),
            start_ms: scenario.start_ms,
            duration_ms: scenario.duration_ms,
            status: scenario.status.name().into(),
            exchange: None,
        });
        // Steps that never ran (after a failure) took no time: they are not on the axis.
        for step in scenario
            .steps
            .iter()
            .filter(|s| s.duration_ms > 0 || s.status != Status::Skipped)
        {
            spans.push(Span {
                lane: Lane::Step,
                label: format!("{} {}", step.keyword, step.text),
                start_ms: step.start_ms,
                duration_ms: step.duration_ms,
                status: step.status.name().into(),
                exchange: None,
            });
        }
    }
    for action in actions {
        spans.push(Span {
            lane: Lane::Browser,
            label: action.action.clone(),
            start_ms: action.start_ms,
            duration_ms: action.duration_ms,
            status: if action.ok { "ok" } else { "failed" }.into(),
            exchange: None,
        });
    }
    for exchange in exchanges {
        spans.push(Span {
            lane: Lane::Http,
            label: exchange_label(exchange),
            start_ms: exchange.start_ms,
            duration_ms: exchange.duration_ms,
            status: match exchange.status {
                Some(100..=399) => "ok",
                Some(400..=499) => "client-error",
                Some(_) => "server-error",
                None => "failed",
            }
            .into(),
            exchange: Some(exchange.index),
        });
    }
    let mut by_time: Vec<&Exchange> = exchanges.iter().collect();
    by_time.sort_by_key(|e| (std::cmp::Reverse(e.duration_ms), e.index));
    let slowest = by_time
        .into_iter()
        .take(SLOWEST)
        .map(|e| Slow {
            exchange: e.index,
            label: exchange_label(e),
            context: e.context.clone(),
            duration_ms: e.duration_ms,
        })
        .collect();
    Timeline {
        duration_ms: spans
            .iter()
            .map(|s| s.start_ms + s.duration_ms)
            .max()
            .unwrap_or(0),
        spans,
        slowest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(index: usize, start_ms: u64, duration_ms: u64, status: Option<u16>) -> Exchange {
        Exchange {
            index,
            context: format!("context {index}"),
            method: "GET".into(),
            url: format!("http://127.0.0.1:1/fhir/Patient?_id={index}"),
            status,
            start_ms,
            duration_ms,
            request_headers: Vec::new(),
            request_body: None,
            response_headers: Vec::new(),
            response_body: None,
            truncated: 0,
            error: None,
        }
    }

    #[test]
    fn the_slowest_exchanges_come_first_and_the_axis_covers_everything() {
        let exchanges: Vec<Exchange> = (1..=8)
            .map(|i| exchange(i, i as u64 * 10, (i as u64 * 7) % 11, Some(200)))
            .chain([exchange(9, 100, 40, Some(404)), exchange(10, 150, 3, None)])
            .collect();
        let timeline = timeline(&[], &[], &exchanges);
        let slow: Vec<usize> = timeline.slowest.iter().map(|s| s.exchange).collect();
        assert_eq!(slow, [9, 3, 6, 1, 4]);
        assert_eq!(timeline.slowest[0].label, "GET /fhir/Patient?_id=9");
        assert_eq!(timeline.duration_ms, 153);
        let statuses: Vec<&str> = timeline.spans[8..]
            .iter()
            .map(|s| s.status.as_str())
            .collect();
        assert_eq!(statuses, ["client-error", "failed"]);
    }
}
