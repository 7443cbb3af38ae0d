//! The report's HTTP exchanges: every request and answer (a long run of pages shortened to
//! its head, its tail and its failures), and the slowest named.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::summary::RunSummary;

/// A run of more exchanges than this of one kind (the pages of a search) shows its first
/// [`RUN_HEAD`] and its last in full, every failed one in full, and one line for the rest.
const RUN_SHOWN: usize = 6;
const RUN_HEAD: usize = 3;

#[derive(Serialize)]
pub(super) struct ExchangeView<'a> {
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

#[derive(Serialize)]
pub(super) struct SlowView<'a> {
    rank: usize,
    exchange: usize,
    label: &'a str,
    context: &'a str,
    duration_ms: u64,
}

pub(super) fn exchanges(summary: &RunSummary) -> Vec<ExchangeView<'_>> {
    let slowest: Vec<usize> = summary
        .timeline
        .slowest
        .iter()
        .map(|s| s.exchange)
        .collect();
    shown_exchanges(&summary.exchanges, &slowest)
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
        .collect()
}

pub(super) fn slowest(summary: &RunSummary) -> Vec<SlowView<'_>> {
    summary
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
        .collect()
}
