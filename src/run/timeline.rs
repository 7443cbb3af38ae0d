//! Where a run's time went: every feature, scenario, step, browser action and HTTP exchange
//! as a span on one time axis (milliseconds since the run's time zero), and the slowest
//! exchanges named. Built from the summary's own records after the run; summary.json keeps
//! it and report.html draws it.

use serde::{Deserialize, Serialize};

use super::summary::{ScenarioSummary, Status};
use crate::evidence::{BrowserAction, Exchange};

/// How many of the slowest exchanges are named.
pub const SLOWEST: usize = 5;

/// The run on one time axis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The axis' length: the end of the last span.
    pub duration_ms: u64,
    pub spans: Vec<Span>,
    /// The slowest HTTP exchanges, slowest first.
    pub slowest: Vec<Slow>,
}

/// Which row of the timeline a span belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Feature,
    Scenario,
    Step,
    Browser,
    Http,
}

/// One thing that took time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub lane: Lane,
    pub label: String,
    pub start_ms: u64,
    pub duration_ms: u64,
    /// `passed`, `failed`, `warning` or `skipped` for features, scenarios and steps; `ok`
    /// or `failed` for browser actions; for HTTP `ok` (1xx–3xx), `client-error` (4xx, often
    /// what a negative check asked for), `server-error` (5xx) or `failed` (no answer).
    pub status: String,
    /// The exchange's `index` in `exchanges`, for HTTP spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<usize>,
}

/// One of the slowest exchanges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slow {
    /// The exchange's `index` in `exchanges`.
    pub exchange: usize,
    /// `GET /fhir/ExplanationOfBenefit?patient=…`: method, path and query.
    pub label: String,
    pub context: String,
    pub duration_ms: u64,
}

/// An exchange's method and where it went, without scheme and host: every exchange of a
/// run goes to the same few servers, the path is what tells them apart.
pub fn exchange_label(exchange: &Exchange) -> String {
    let place = match url::Url::parse(&exchange.url) {
        Ok(url) => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => exchange.url.clone(),
    };
    format!("{} {place}", exchange.method)
}

/// The timeline of a run from its records.
pub fn build(
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
        let timeline = build(&[], &[], &exchanges);
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
