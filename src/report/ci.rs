//! What a CI system shows of a run: the Markdown job summary GitHub Actions renders on the
//! run's page (appended to `GITHUB_STEP_SUMMARY`), and workflow-command annotations
//! (`::error file=…,line=…::…`) that put each failed step on its feature file's line.
//! Pure: the summary in, text out. Text from the target (messages quoting a server) is
//! escaped for Markdown, and workflow-command data is percent-encoded, so nothing a server
//! says can add markup or a command of its own.

use std::fmt::Write as _;
use std::path::Path;

use crate::summary::{Outcome, RunSummary, Status};

/// Failures and warnings listed in the job summary; the rest are counted.
const LISTED: usize = 50;
/// Characters of a failure message shown in the job summary.
const MESSAGE_LIMIT: usize = 2000;

/// Where to find the run's artifacts on GitHub, from the variables every job has.
#[derive(Debug, Clone, Default)]
pub struct GithubRun {
    /// `GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID`.
    pub url: Option<String>,
}

impl GithubRun {
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = match (
            var("GITHUB_SERVER_URL"),
            var("GITHUB_REPOSITORY"),
            var("GITHUB_RUN_ID"),
        ) {
            (Some(server), Some(repository), Some(run)) => Some(format!(
                "{}/{repository}/actions/runs/{run}",
                server.trim_end_matches('/')
            )),
            _ => None,
        };
        Self { url }
    }
}

/// `text` safe inside a Markdown paragraph or table cell: HTML and Markdown punctuation
/// escaped, line breaks as spaces.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let text = text.replace(['\n', '\r'], " ");
    for c in crate::infra::text::inert(&text).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' | '~' | '{' | '}' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` with its line breaks kept and everything else [`crate::infra::text::inert`].
fn lines_inert(text: &str) -> String {
    text.lines()
        .map(crate::infra::text::inert)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` as a fenced block whose fence no line of it can close.
fn fenced(text: &str) -> String {
    let text = lines_inert(text);
    let mut cut: String = text.chars().take(MESSAGE_LIMIT).collect();
    if cut.len() < text.len() {
        cut.push_str(" …");
    }
    let longest = cut.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{cut}\n{fence}\n")
}

fn verdict(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "✅ conformant",
        Outcome::Failed => "❌ NOT conformant",
        Outcome::AppFailed => "❌ conformant, but the app failed",
        Outcome::Error => "⚠️ could not test everything",
        Outcome::Interrupted => "⏹️ interrupted",
    }
}

/// The job summary of a run whose report is in `dir`.
pub fn github_step_summary(summary: &RunSummary, dir: &Path, github: &GithubRun) -> String {
    let mut md = String::new();
    let counts = &summary.scenario_counts;
    let _ = writeln!(md, "## onramp: {}\n", verdict(summary.outcome));
    let _ = writeln!(
        md,
        "{} scenarios ({} passed, {} failed, {} skipped; {} warnings) against **{}**{} in {:.1} s, exit code {}.\n",
        counts.passed + counts.failed + counts.skipped,
        counts.passed,
        counts.failed,
        counts.skipped,
        summary.step_counts.warnings,
        inline(&summary.target.name),
        summary
            .target
            .persona
            .as_deref()
            .map(|p| format!(" (the embedded sandbox, persona {})", inline(p)))
            .unwrap_or_default(),
        summary.duration_ms as f64 / 1000.0,
        summary.exit_code
    );
    if !summary.resources.is_empty() {
        md.push_str(
            "| Resource type | Resources | Pages | Invalid | Problems |\n|---|--:|--:|--:|---|\n",
        );
        for resource in &summary.resources {
            let problems = match (&resource.failure, resource.problems.len()) {
                (Some(failure), _) => inline(failure),
                (None, 0) => "none".to_owned(),
                (None, n) => format!("{n}: {}", inline(&resource.problems[0])),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {problems} |",
                inline(&resource.kind),
                resource.count,
                resource.pages,
                resource.invalid
            );
        }
        md.push('\n');
    }
    for (heading, status) in [("Failures", Status::Failed), ("Warnings", Status::Warning)] {
        let listed: Vec<_> = summary
            .scenarios
            .iter()
            .flat_map(|scenario| {
                scenario
                    .steps
                    .iter()
                    .filter(move |step| step.status == status)
                    .map(move |step| (scenario, step))
            })
            .collect();
        if listed.is_empty() {
            continue;
        }
        let _ = writeln!(md, "### {heading} ({})\n", listed.len());
        for (scenario, step) in listed.iter().take(LISTED) {
            let _ = writeln!(
                md,
                "- **{} › {}**: {} {} (`{}:{}`)\n",
                inline(&scenario.feature),
                inline(&scenario.name),
                inline(&step.keyword),
                inline(&step.text),
                inline(&scenario.file).replace('`', "'"),
                step.line
            );
            if let Some(error) = &step.error {
                for line in fenced(error).lines() {
                    let _ = writeln!(md, "  {line}");
                }
                md.push('\n');
            }
        }
        if listed.len() > LISTED {
            let _ = writeln!(md, "…and {} more in the report.\n", listed.len() - LISTED);
        }
    }
    if !summary.errors.is_empty() {
        md.push_str("### Harness errors\n\n");
        for error in &summary.errors {
            let _ = writeln!(md, "- {}", inline(error));
        }
        md.push('\n');
    }
    let _ = write!(
        md,
        "The full report is in `{}` (`report.html`, `summary.json`, `junit.xml`)",
        dir.display().to_string().replace('`', "'")
    );
    match &github.url {
        Some(url) => {
            let _ = writeln!(
                md,
                "; keep it as an artifact of [this run]({url}#artifacts)."
            );
        }
        None => md.push_str(".\n"),
    }
    md
}

/// Workflow-command data: `%`, CR and LF percent-encoded.
fn command_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow-command property: also `:` and `,`.
fn command_property(text: &str) -> String {
    command_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// One `::error` (a failed step) or `::warning` (a SHOULD not met) line per step, on the
/// feature file's line when `in_checkout(file)` says the file is there to point at (the
/// shipped features live in the binary: for them the file and line go into the title
/// instead), and an `::error` per harness error.
pub fn github_annotations(summary: &RunSummary, in_checkout: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    for scenario in &summary.scenarios {
        for step in &scenario.steps {
            let level = match step.status {
                Status::Failed => "error",
                Status::Warning => "warning",
                Status::Passed | Status::Skipped => continue,
            };
            let mut title = format!("{} › {}", scenario.feature, scenario.name);
            let place = if in_checkout(&scenario.file) {
                format!(
                    "file={},line={},",
                    command_property(&scenario.file),
                    step.line
                )
            } else {
                title.push_str(&format!(" ({}:{})", scenario.file, step.line));
                String::new()
            };
            let message = format!(
                "{} {}\n{}",
                step.keyword,
                step.text,
                step.error.as_deref().unwrap_or("")
            );
            lines.push(format!(
                "::{level} {place}title={}::{}",
                command_property(&crate::infra::text::inert(&title)),
                command_data(&lines_inert(message.trim_end()))
            ));
        }
    }
    for error in &summary.errors {
        lines.push(format!(
            "::error title=onramp::{}",
            command_data(&crate::infra::text::inert(error))
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_from_the_target_stays_text() {
        assert_eq!(
            inline("<img src=x> **bold** | [link](http://x)"),
            "&lt;img src=x&gt; \\*\\*bold\\*\\* \\| \\[link\\]\\(http://x\\)"
        );
        let block = fenced("a ``` fence\n```\nand more");
        assert!(block.starts_with("````text\n"), "{block}");
        assert!(block.ends_with("\n````\n"), "{block}");
    }

    #[test]
    fn workflow_command_text_cannot_start_a_command() {
        assert_eq!(
            command_data("50% done\n::add-mask::x\r"),
            "50%25 done%0A::add-mask::x%0D"
        );
        assert_eq!(command_property("a:b,c"), "a%3Ab%2Cc");
    }
}
