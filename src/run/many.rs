//! `onramp run --target A --target B ... [--jobs N]`: several targets at once, each a whole
//! [`super::run`] with its own sandbox (when it is one), redirect listener, browser session
//! and report folder, at most N at a time, sharing one chromedriver and one Chromium (each
//! run's window a browser context of its own: its own cookies and storage), or the
//! `--webdriver` named, such as a Selenium Grid. Every target is resolved before any starts, so a wrong
//! target file stops the command at once. The run's folder holds one folder per target and
//! the index of them all ([`crate::report::index`]); the exit code is the worst target's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{Plan, RunError, RunOptions, RunReport, Steps};
use crate::report::index::{Combined, TargetOutcome};
use crate::summary::Outcome;

/// A finished run over several targets.
#[derive(Debug)]
pub struct ManyReport {
    pub combined: Combined,
    /// Each target's run, in the order given (`Err` when it could not run or report).
    pub runs: Vec<Result<RunReport, RunError>>,
    pub dir: PathBuf,
    /// Files written into `dir`.
    pub files: Vec<String>,
}

/// A folder name for a target: its name in lower case, letters, digits and dashes.
fn folder_name(name: &str, taken: &[String]) -> String {
    let mut slug = crate::infra::text::slug_words(name).join("-");
    if slug.is_empty() {
        slug = "target".into();
    }
    slug.truncate(60);
    let mut candidate = slug.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{slug}-{n}");
        n += 1;
    }
    candidate
}

/// Run every target of `targets`, `jobs` at a time, with `base`'s other options.
pub async fn run_many<W: Steps>(
    base: RunOptions,
    targets: Vec<String>,
    jobs: usize,
) -> Result<ManyReport, RunError> {
    // From here on no signal ends the process: each run listens for its own, stops and
    // writes its report, and then the index is written.
    let stops = crate::infra::stop::Stops::listen();
    let started = Instant::now();
    let started_at = super::plan::now_rfc3339();
    let jobs = jobs.clamp(1, targets.len().max(1));
    // Every target resolves, or nothing starts.
    let (plans, folders) = resolve_all::<W>(&base, &targets)?;
    let signs_in = plans.iter().any(|plan| plan.signs_in);
    if signs_in {
        super::preflight::tools(base.webdriver.as_deref()).map_err(RunError::Tools)?;
    }
    let id = super::plan::run_id();
    let dir = base
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("onramp-report"))
        .join(&id);
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;

    let (driver, chromium) = shared_browser(&base, signs_in).await;
    let devtools = chromium.as_ref().map(|c| c.endpoint().clone());
    let shared = driver.as_ref().map(|driver| driver.url().to_owned());

    let permits = Arc::new(tokio::sync::Semaphore::new(jobs));
    let console = base.console;
    let runs = plans.into_iter().zip(&folders).map(|(plan, folder)| {
        let mut plan = plan.within(dir.join(folder));
        if let Some(webdriver) = &shared {
            plan = plan.sharing(webdriver.clone(), devtools.clone());
        }
        let permits = Arc::clone(&permits);
        let receiver = spawn_target::<W>(plan, folder.clone(), permits, console);
        async move {
            match receiver {
                Ok(receiver) => receiver.await.unwrap_or(Err(RunError::Crashed)),
                Err(source) => Err(RunError::Start {
                    what: "a thread",
                    source,
                }),
            }
        }
    });
    let runs: Vec<Result<RunReport, RunError>> = futures_util::future::join_all(runs).await;
    if let Some(mut chromium) = chromium {
        chromium.stop();
    }
    if let Some(mut driver) = driver {
        driver.stop();
    }

    let outcomes = outcomes(&runs, &targets, &folders);
    let (outcome, exit_code) = crate::report::index::worst(&outcomes);
    let combined = Combined {
        schema_version: crate::report::index::SCHEMA_VERSION,
        run_id: id,
        outcome,
        exit_code,
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        jobs,
        onramp_version: env!("CARGO_PKG_VERSION").to_owned(),
        interrupted_by: stops.came().map(|stop| stop.name().to_owned()),
        targets: outcomes,
    };
    let summaries: Vec<_> = runs
        .iter()
        .map(|r| r.as_ref().ok().map(|r| &r.summary))
        .collect();
    let files = crate::report::index::write(&dir, &combined, &summaries).map_err(|source| {
        RunError::Report {
            outcome: format!("{outcome:?}").to_lowercase(),
            dir: dir.clone(),
            source,
        }
    })?;
    crate::report::link_latest(&dir);
    Ok(ManyReport {
        combined,
        runs,
        dir,
        files,
    })
}

/// Start one target's run on a thread and runtime of its own (cucumber's runner is not
/// `Send`), so that the runs use every core; its report comes on the receiver.
fn spawn_target<W: Steps>(
    plan: Plan,
    folder: String,
    permits: Arc<tokio::sync::Semaphore>,
    console: crate::infra::console::Console,
) -> std::io::Result<tokio::sync::oneshot::Receiver<Result<RunReport, RunError>>> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    // Stacks as deep as a single run's: a page is validated on them, and a document may
    // nest up to the parser's limit.
    std::thread::Builder::new()
        .name(format!("onramp-{folder}"))
        .stack_size(crate::validate::STACK_SIZE)
        .spawn(move || {
            let report = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(crate::validate::STACK_SIZE)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(async {
                    let _permit = permits.acquire_owned().await;
                    super::run::<W>(plan).await
                }),
                Err(source) => Err(RunError::Start {
                    what: "a runtime",
                    source,
                }),
            };
            announce(console, &folder, &report);
            let _ = sender.send(report);
        })?;
    Ok(receiver)
}

/// Every target's Plan, and the folder its report goes to.
fn resolve_all<W: Steps>(
    base: &RunOptions,
    targets: &[String],
) -> Result<(Vec<Plan>, Vec<String>), RunError> {
    let mut folders: Vec<String> = Vec::new();
    let mut plans: Vec<Plan> = Vec::new();
    for target in targets {
        let plan = Plan::resolve::<W>(&RunOptions {
            target: Some(target.clone()),
            ..base.clone()
        })
        .map_err(|error| RunError::OneOf {
            target: target.clone(),
            error: Box::new(error),
        })?;
        folders.push(folder_name(&plan.target.name, &folders));
        plans.push(plan);
    }
    Ok((plans, folders))
}

/// One chromedriver for every session, unless a WebDriver was named, and one Chromium,
/// each run's window a browser context of its own in it: a browser process per target is
/// most of what a sign-in costs on a small machine. Both start at once; either may be
/// missing (each run then starts its own, and reports why it cannot).
async fn shared_browser(
    base: &RunOptions,
    signs_in: bool,
) -> (
    Option<crate::browser::ChromeDriver>,
    Option<crate::browser::Chromium>,
) {
    let mut driver = None;
    let mut chromium = None;
    if base.webdriver.is_none() && signs_in {
        let options = crate::browser::BrowserOptions {
            headed: base.headed,
            ..Default::default()
        };
        let (started_driver, started_chromium) = tokio::join!(
            crate::browser::ChromeDriver::start(),
            crate::browser::Chromium::launch(&options)
        );
        match started_driver {
            Ok(started) => driver = Some(started),
            // Each run then tries its own, and reports why it cannot.
            Err(error) => tracing::debug!("no shared chromedriver: {error}"),
        }
        match started_chromium {
            // Without the shared driver, each run starts its own Chromium too.
            Ok(started) if driver.is_some() => chromium = Some(started),
            Ok(_) => {}
            // Each run then starts its own.
            Err(error) => tracing::debug!("no shared Chromium: {error}"),
        }
    }
    (driver, chromium)
}

/// Each target's line in the index: its summary's, or the error that stopped it.
fn outcomes(
    runs: &[Result<RunReport, RunError>],
    targets: &[String],
    folders: &[String],
) -> Vec<TargetOutcome> {
    runs.iter()
        .zip(targets)
        .zip(folders)
        .map(|((run, target), folder)| match run {
            Ok(report) => TargetOutcome::of(target, folder, &report.summary),
            Err(error) => TargetOutcome {
                target: target.clone(),
                name: target.clone(),
                dir: folder.clone(),
                outcome: Outcome::Error,
                exit_code: error.exit_code(),
                duration_ms: 0,
                scenarios: 0,
                passed: 0,
                failed: 0,
                skipped: 0,
                errors: vec![error.to_string()],
            },
        })
        .collect()
}

/// One line per target as it finishes, and its failed steps (unless quiet would hide
/// nothing: failures are always shown).
fn announce(
    console: crate::infra::console::Console,
    folder: &str,
    report: &Result<RunReport, RunError>,
) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match report {
        Ok(report) => {
            let summary = &report.summary;
            let (label, colour) = summary.outcome.verdict();
            let _ = writeln!(
                out,
                "onramp: [{folder}] {}: {} in {:.1} s",
                console.paint_out(colour, label),
                summary.scenario_counts.tally(),
                summary.duration_ms as f64 / 1000.0
            );
            for scenario in &summary.scenarios {
                for step in scenario
                    .steps
                    .iter()
                    .filter(|s| s.status == crate::summary::Status::Failed)
                {
                    let first = step
                        .error
                        .as_deref()
                        .and_then(|e| e.lines().next())
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  ✘ {} › {} › {} {}: {}",
                        scenario.feature,
                        scenario.name,
                        step.keyword,
                        step.text,
                        crate::infra::text::inert(first)
                    );
                }
            }
            for error in &summary.errors {
                let _ = writeln!(out, "  onramp: {}", crate::infra::text::inert(error));
            }
        }
        Err(error) => {
            let _ = writeln!(
                out,
                "onramp: [{folder}] {}: {}",
                console.paint_out("1;33", "could not run"),
                crate::infra::text::inert(&error.to_string())
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::folder_name;

    #[test]
    fn folders_are_plain_and_distinct() {
        assert_eq!(folder_name("my payer's demo", &[]), "my-payer-s-demo");
        assert_eq!(folder_name("sandbox", &["sandbox".into()]), "sandbox-2");
        assert_eq!(folder_name("../..", &[]), "target");
    }
}
