//! `onramp run`: the conformance run, as a table of contents. [`plan`] turns the user's
//! [`RunOptions`] into a checked [`Plan`] and stops with a usage error before anything starts;
//! [`run`] then starts what the target needs ([`connect`]: the embedded sandbox, a loopback
//! redirect listener, the clients), asks a remote payer's hosts once ([`preflight`]: nothing
//! runs against a payer that cannot be reached), runs the features through cucumber with one
//! writer of ours ([`execute`], [`collector`]) against the scenarios' shared [`context`],
//! builds one [`crate::summary::RunSummary`] ([`summarize`]) and writes every output from it
//! ([`crate::report`]). Ctrl-C, SIGTERM or SIGHUP ([`crate::infra::stop`]), `--deadline` and
//! `--fail-fast` stop the run and still write what was recorded.
//!
//! Data flows one way: steps record into the context and the recorder (redacted at the
//! door); the summary is built from them after the run; renderers only read the summary.
//! The steps sit above the run: it runs any [`Steps`], and the command line names ours.

pub mod app;
mod app_host;
pub mod books;
mod browser_sign_in;
mod checks;
mod collector;
pub mod connect;
pub mod context;
mod documents;
pub mod dry_run;
pub mod error;
pub mod execute;
mod failure;
pub mod many;
pub mod members;
pub mod page;
pub mod plan;
pub mod preflight;
pub mod records;
pub mod searches;
pub mod session;
mod shared_browser;
pub mod summarize;

use std::sync::Arc;
use std::time::Instant;

pub use browser_sign_in::{Probe, SignIn};
pub use error::{RunError, RunReport};
pub use execute::Steps;
pub use failure::{ScenarioKey, StepFailure, Verdicts, verdict};
pub use plan::{Plan, RunOptions};

use crate::report::recording::Film;

/// Run the conformance features of `plan` with the steps of `W` and write the report.
/// Errors are only returned for what stops a run before it starts, and for a report that
/// cannot be written.
pub async fn run<W: Steps>(plan: Plan) -> Result<RunReport, RunError> {
    // From here on no signal ends the process: one that comes before the features run
    // stops them before they start, one that comes after is left for the report to finish.
    let mut stops = crate::infra::stop::Stops::listen();
    let started = Instant::now();
    let started_at = plan::now_rfc3339();
    plan.recording.check()?;
    if plan.signs_in && plan.browser.devtools.is_none() {
        preflight::tools(plan.webdriver.as_deref()).map_err(RunError::Tools)?;
    }
    let dir = plan.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;
    // The recording is made as the screenshots are taken.
    let film = Arc::new(Film::start(&dir, plan.recording));
    let recorder = connect::recorder(&plan, &film);
    let browser = Arc::new(shared_browser::SharedBrowser::new(
        plan.webdriver.clone(),
        plan.browser.clone(),
    ));
    if plan.signs_in {
        browser.warm();
    }
    // A target that cannot be reached stops the run; the browser starting meanwhile is
    // closed first.
    let connected = match connect::connect(&plan, &recorder).await {
        Ok(connected) => connected,
        Err(error) => {
            browser.close().await;
            return Err(error);
        }
    };
    let target_info = connected.target_info(&plan);
    let (ctx, rest) = connected.into_context(plan, Arc::clone(&recorder), browser)?;
    let terminal = (!rest.silent).then_some(rest.console);
    let bounds = execute::Bounds {
        fail_fast: rest.fail_fast,
        deadline: rest.deadline.map(|d| d.saturating_sub(started.elapsed())),
    };
    let (collected, interrupted) = match preflight::unreachable(&ctx, rest.sandbox.is_some()).await
    {
        // Nothing is tested against a payer that cannot be reached: every scenario is
        // skipped, saying why, in the time one request takes.
        Some(lines) => (
            preflight::not_run(&rest.features, rest.tags.as_ref(), &lines, &recorder),
            None,
        ),
        None => {
            let (collected, ended) =
                execute::execute::<W>(&ctx, rest.features, rest.tags, terminal, &mut stops, bounds)
                    .await;
            ended.account(collected, rest.deadline, &recorder)
        }
    };
    if let Some(stop) = interrupted {
        eprintln!(
            "\nonramp: interrupted by {}; writing what was recorded",
            stop.name()
        );
    }
    ctx.browser.close().await;
    if let Some(sandbox) = rest.sandbox {
        sandbox.shutdown().await;
    }
    if let Some((_, task)) = rest.listener {
        task.abort();
    }
    // The recordings are finished first: the app's answers the checklist's screen recording.
    let recordings = film.finish();
    let mut summary = summarize::summarize(summarize::SummaryParts {
        dir: &dir,
        recordings,
        id: rest.id,
        target: target_info,
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        interrupted,
        ctx: &ctx,
        collected,
        manifest: rest.manifest.as_deref(),
        require_checklist: rest.require_checklist,
    })
    .await;
    let files =
        crate::report::write_run(&dir, &mut summary).map_err(|source| RunError::Report {
            outcome: format!("{:?}", summary.outcome).to_lowercase(),
            dir: dir.clone(),
            source,
        })?;
    if rest.link_latest {
        crate::report::link_latest(&dir);
    }
    Ok(RunReport {
        summary,
        dir,
        files,
    })
}
