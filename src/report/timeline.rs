//! The timeline drawn for report.html: one inline SVG (no script, no external font or
//! style), with a row each for features, scenarios, steps and browser actions, and as many
//! rows as overlapping HTTP exchanges need; the slowest exchanges are numbered on the axis
//! and link to their entry. Every bar has a `<title>` (a tooltip on screen); colours are
//! fills, so it prints as it shows. Every text is escaped here: this is the one place in
//! the report that builds markup outside handlebars.

use std::fmt::Write as _;

use crate::summary::{Lane, Span, Timeline};

/// Width of the drawing (its viewBox; it scales to the page).
const WIDTH: f64 = 1000.0;
/// Width of the row names.
const LABELS: f64 = 84.0;
/// Right margin, room for the last tick's label and a number.
const MARGIN: f64 = 24.0;
/// Most rows the HTTP exchanges get; beyond that, they share the last.
const HTTP_ROWS: usize = 12;
/// Height of the axis above the rows.
const AXIS: f64 = 22.0;

/// `&`, `<`, `>`, `"`, `'` as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn fill(span: &Span, index: usize) -> &'static str {
    match (span.lane, span.status.as_str()) {
        // A browser action that did not succeed is often what a probe expects (a page
        // that must not lead back to the app): pale, not red; its step says if it failed.
        (Lane::Browser, "failed") => "#cfc3e6",
        (_, "failed") => "#c62828",
        (_, "warning") => "#f9a825",
        (_, "skipped") => "#bdbdbd",
        (Lane::Http, "client-error") => "#ffb300",
        (Lane::Http, "server-error") => "#c62828",
        (Lane::Http, _) => "#00897b",
        (Lane::Browser, _) => "#7e57c2",
        (Lane::Feature, _) => ["#1e4f91", "#4a78b8"][index % 2],
        (Lane::Scenario, _) => ["#3f7fd0", "#8fb4e6"][index % 2],
        (Lane::Step, _) => ["#43a047", "#8bc34a"][index % 2],
    }
}

/// A tick interval of 1, 2 or 5 × 10ⁿ ms giving at most ten ticks.
fn tick(duration_ms: u64) -> u64 {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if duration_ms / (step * factor) <= 10 {
                return step * factor;
            }
        }
        step *= 10;
    }
}

fn tick_label(ms: u64, step: u64) -> String {
    if step >= 1000 {
        format!("{} s", ms / 1000)
    } else if step >= 100 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// Rows for the HTTP spans (indexes into `spans`): each goes to the first row whose last
/// exchange ended before it started.
fn pack(spans: &[&Span]) -> Vec<usize> {
    let mut ends: Vec<u64> = Vec::new();
    spans
        .iter()
        .map(
            |span| match ends.iter().position(|&end| end <= span.start_ms) {
                Some(row) => {
                    ends[row] = span.start_ms + span.duration_ms;
                    row
                }
                None if ends.len() < HTTP_ROWS => {
                    ends.push(span.start_ms + span.duration_ms);
                    ends.len() - 1
                }
                None => HTTP_ROWS - 1,
            },
        )
        .collect()
}

/// The timeline as an `<svg>` element; empty when nothing was timed.
pub fn svg(timeline: &Timeline) -> String {
    if timeline.spans.is_empty() {
        return String::new();
    }
    let axis = Axis {
        duration: timeline.duration_ms.max(1),
        plot: WIDTH - LABELS - MARGIN,
    };
    let duration = axis.duration;

    let lane =
        |lane: Lane| -> Vec<&Span> { timeline.spans.iter().filter(|s| s.lane == lane).collect() };
    let mut http = lane(Lane::Http);
    http.sort_by_key(|s| (s.start_ms, s.exchange));
    let http_rows = pack(&http);
    let http_count = http_rows.iter().max().map_or(0, |r| r + 1);

    // (name, spans, height) per row, top to bottom.
    let rows: [(&str, Vec<&Span>, f64); 4] = [
        ("Features", lane(Lane::Feature), 16.0),
        ("Scenarios", lane(Lane::Scenario), 12.0),
        ("Steps", lane(Lane::Step), 12.0),
        ("Browser", lane(Lane::Browser), 12.0),
    ];
    const GAP: f64 = 6.0;
    const HTTP_HEIGHT: f64 = 8.0;
    let rows_height: f64 =
        rows.iter().map(|r| r.2 + GAP).sum::<f64>() + http_count as f64 * (HTTP_HEIGHT + 2.0) + GAP;
    let height = AXIS + rows_height + 26.0;

    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0}" width="100%" role="img" aria-labelledby="timeline-title" font-family="system-ui, sans-serif" font-size="10"><title id="timeline-title">The run on one time axis: features, scenarios, steps, browser actions and HTTP exchanges ({:.2} s)</title>"#,
        duration as f64 / 1000.0
    );
    axis_lines(&mut out, &axis, AXIS + rows_height);
    let mut y = AXIS;
    for (name, spans, h) in &rows {
        let _ = write!(
            out,
            r##"<text x="0" y="{:.1}" fill="#333">{name}</text>"##,
            y + h - 3.0
        );
        // Failures and warnings last, on top of their neighbours.
        let loud = |span: &Span| matches!(span.status.as_str(), "failed" | "warning");
        for (index, span) in spans.iter().enumerate().filter(|(_, s)| !loud(s)) {
            bar(&mut out, &axis, span, index, y, *h);
        }
        for (index, span) in spans.iter().enumerate().filter(|(_, s)| loud(s)) {
            bar(&mut out, &axis, span, index, y, *h);
        }
        y += h + GAP;
    }
    if http_count > 0 {
        let _ = write!(
            out,
            r##"<text x="0" y="{:.1}" fill="#333">HTTP</text>"##,
            y + HTTP_HEIGHT - 1.0
        );
    }
    let merged = merged(timeline, &http, &http_rows, http_count, &axis);
    for (index, (span, row, _)) in merged.iter().enumerate() {
        let top = y + *row as f64 * (HTTP_HEIGHT + 2.0);
        bar(&mut out, &axis, span, index, top, HTTP_HEIGHT);
        if let Some(rank) = timeline
            .slowest
            .iter()
            .position(|s| Some(s.exchange) == span.exchange)
        {
            let _ = write!(
                out,
                r##"<a href="#exchange-{}"><text x="{:.1}" y="{:.1}" fill="#000" font-weight="bold">{}</text></a>"##,
                span.exchange.unwrap_or_default(),
                axis.x(span.start_ms + span.duration_ms) + 2.0,
                top + HTTP_HEIGHT,
                rank + 1
            );
        }
    }
    y += http_count as f64 * (HTTP_HEIGHT + 2.0) + GAP;

    legend(&mut out, y);
    out.push_str("</svg>");
    out
}

/// The time axis: milliseconds to x.
struct Axis {
    duration: u64,
    /// The plot's width, right of the row labels.
    plot: f64,
}

impl Axis {
    fn x(&self, ms: u64) -> f64 {
        LABELS + ms as f64 / self.duration as f64 * self.plot
    }
}

/// The time axis, with a grid line at every tick down to `bottom`.
fn axis_lines(out: &mut String, axis: &Axis, bottom: f64) {
    let step = tick(axis.duration);
    let mut at = 0;
    while at <= axis.duration {
        let tx = axis.x(at);
        let _ = write!(
            out,
            r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{bottom:.1}" stroke="#e3e6ea" stroke-width="1"/><text x="{tx:.1}" y="12" text-anchor="middle" fill="#555">{}</text>"##,
            AXIS - 4.0,
            tick_label(at, step)
        );
        at += step;
    }
}

/// One span as a bar (with its title; a feature wide enough shows its name).
fn bar(out: &mut String, axis: &Axis, span: &Span, index: usize, y: f64, h: f64) {
    let (x0, x1) = (
        axis.x(span.start_ms),
        axis.x(span.start_ms + span.duration_ms),
    );
    // A failure or a warning is never too short to see.
    let least =
        if matches!(span.status.as_str(), "failed" | "warning") && span.lane != Lane::Browser {
            3.0
        } else {
            1.0
        };
    let w = (x1 - x0).max(least);
    let title = format!(
        "{} — {} ms, from {:.3} s{}",
        span.label,
        span.duration_ms,
        span.start_ms as f64 / 1000.0,
        match span.status.as_str() {
            "passed" | "ok" => String::new(),
            other => format!(" ({other})"),
        }
    );
    let _ = write!(
        out,
        r#"<rect x="{x0:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}" fill="{}"><title>{}</title></rect>"#,
        fill(span, index),
        escape(&title)
    );
    // A feature wide enough shows its name.
    if span.lane == Lane::Feature {
        let room = (w / 5.6) as usize;
        if room >= 4 {
            let name: String = span.label.chars().take(room).collect();
            let name = if name.chars().count() < span.label.chars().count() {
                format!(
                    "{}…",
                    name.chars()
                        .take(room.saturating_sub(1))
                        .collect::<String>()
                )
            } else {
                name
            };
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" fill="#fff" font-size="9" pointer-events="none">{}</text>"##,
                x0 + 2.0,
                y + h - 4.5,
                escape(&name)
            );
        }
    }
}

/// The HTTP spans with their rows, neighbours merged when there are too many to draw.
fn merged<'t>(
    timeline: &'t Timeline,
    http: &[&'t Span],
    http_rows: &[usize],
    http_count: usize,
    axis: &Axis,
) -> Vec<(Span, usize, usize)> {
    // Thousands of exchanges (a member's claims, page after page) would be thousands of
    // bars thinner than a pixel: neighbours in a row with the same status that touch within
    // half a pixel are drawn as one bar, named for how many it stands for.
    let mut merged: Vec<(Span, usize, usize)> = Vec::new();
    let mut last_in_row: Vec<Option<usize>> = vec![None; http_count];
    let half_pixel = axis.duration as f64 / axis.plot / 2.0;
    let is_slow = |exchange: Option<usize>| {
        timeline
            .slowest
            .iter()
            .any(|s| Some(s.exchange) == exchange)
    };
    for (span, row) in http.iter().zip(http_rows) {
        if http.len() > 400
            && !is_slow(span.exchange)
            && let Some(at) = last_in_row[*row]
            && !is_slow(merged[at].0.exchange)
            && merged[at].0.status == span.status
            && span.start_ms as f64
                <= (merged[at].0.start_ms + merged[at].0.duration_ms) as f64 + half_pixel
        {
            let (first, _, count) = &mut merged[at];
            let end = (span.start_ms + span.duration_ms).max(first.start_ms + first.duration_ms);
            first.duration_ms = end - first.start_ms;
            first.exchange = None;
            *count += 1;
            first.label = format!("{count} exchanges");
            continue;
        }
        merged.push(((*span).clone(), *row, 1));
        last_in_row[*row] = Some(merged.len() - 1);
    }
    merged
}

/// The legend, at `y`.
fn legend(out: &mut String, y: f64) {
    let legend = [
        ("#43a047", "passed"),
        ("#c62828", "failed"),
        ("#f9a825", "warning"),
        ("#7e57c2", "browser action"),
        ("#cfc3e6", "browser action that did not succeed"),
        ("#00897b", "HTTP 1xx–3xx"),
        ("#ffb300", "HTTP 4xx"),
    ];
    let mut lx = LABELS;
    for (colour, text) in legend {
        let _ = write!(
            out,
            r##"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{colour}"/><text x="{:.1}" y="{:.1}" fill="#333">{text}</text>"##,
            y + 4.0,
            lx + 14.0,
            y + 12.5
        );
        lx += 22.0 + text.chars().count() as f64 * 5.6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick(2934), 500);
        assert_eq!(tick(9), 1);
        assert_eq!(tick(120_000), 20_000);
        assert_eq!(tick_label(1500, 500), "1.5 s");
    }

    #[test]
    fn overlapping_exchanges_get_rows_of_their_own() {
        let span = |start_ms, duration_ms| Span {
            lane: Lane::Http,
            label: "GET /".into(),
            start_ms,
            duration_ms,
            status: "ok".into(),
            exchange: Some(1),
        };
        let spans = [span(0, 10), span(5, 10), span(10, 5), span(16, 1)];
        let refs: Vec<&Span> = spans.iter().collect();
        assert_eq!(pack(&refs), [0, 1, 0, 0]);
    }

    #[test]
    fn a_failure_is_wide_enough_to_see_and_drawn_on_top() {
        let step = |start_ms, duration_ms, status: &str| Span {
            lane: Lane::Step,
            label: "Then x".into(),
            start_ms,
            duration_ms,
            status: status.into(),
            exchange: None,
        };
        let timeline = Timeline {
            duration_ms: 10_000,
            spans: vec![
                step(0, 5000, "passed"),
                step(5000, 0, "failed"),
                step(5000, 5000, "passed"),
            ],
            slowest: Vec::new(),
        };
        let svg = svg(&timeline);
        let failed = svg
            .find(r##"fill="#c62828"><title>"##)
            .expect("the failure is drawn");
        let last_pass = svg
            .rfind(r##"fill="#43a047"><title>"##)
            .max(svg.rfind(r##"fill="#8bc34a"><title>"##));
        assert!(
            last_pass.is_some_and(|p| p < failed),
            "drawn after the passes"
        );
        let rect = &svg[svg[..failed].rfind("<rect").expect("its rect")..failed];
        assert!(rect.contains(r#"width="3.00""#), "{rect}");
    }

    #[test]
    fn text_is_escaped() {
        let timeline = Timeline {
            duration_ms: 10,
            spans: vec![Span {
                lane: Lane::Step,
                label: "Then <script>alert('x')</script> & \"more\"".into(),
                start_ms: 0,
                duration_ms: 10,
                status: "passed".into(),
                exchange: None,
            }],
            slowest: Vec::new(),
        };
        let svg = svg(&timeline);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;")
        );
    }
}
