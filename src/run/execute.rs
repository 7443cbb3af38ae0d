//! Running the features through cucumber, with the collector as its one writer, until they
//! end, a signal stops them, `--deadline` comes or (`--fail-fast`) a scenario fails; and
//! what each way of ending adds to the record ([`Ended::account`]). A panic outside a step is
//! caught ([`caught`]): the report is still written and the browser still closed.

use std::path::PathBuf;
use std::sync::Arc;

use cucumber::WriterExt as _;
use cucumber::gherkin;

use super::collector;
use super::context::RunContext;
use super::failure::ScenarioKey;

/// The step definitions a run executes: the World of the layer above ([`crate::steps`]).
/// The run knows them only through this, so that the arrows point one way.
pub trait Steps:
    cucumber::World + cucumber::codegen::WorldInventory + std::fmt::Debug + Send + Sync + 'static
{
    /// Enter a scenario: the run's shared context and where the scenario is.
    fn enter(&mut self, ctx: Arc<RunContext>, scenario: ScenarioKey);

    /// The steps of the sign-in language: one pattern for all of them (registered for
    /// `Given` and `When`), and the step that performs them.
    fn sign_in() -> (regex::Regex, cucumber::Step<Self>);
}

/// How the features' run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Completed,
    /// A signal stopped it.
    Stopped(crate::infra::stop::Stop),
    /// `--deadline` came.
    Deadline,
    /// `--fail-fast` and a step failed.
    FailFast,
}

impl Ended {
    /// What this way of ending adds to `collected` (the deadline is an error of the run,
    /// `--fail-fast` a note), and the signal that stopped the run, if one did.
    /// `deadline` is the one the user gave.
    pub fn account(
        self,
        mut collected: collector::Collected,
        deadline: Option<std::time::Duration>,
        recorder: &crate::evidence::Recorder,
    ) -> (collector::Collected, Option<crate::infra::stop::Stop>) {
        let stopped = match self {
            Ended::Stopped(stop) => Some(stop),
            Ended::Deadline => {
                collected.errors.push(format!(
                    "the run reached its --deadline of {} and was stopped there; the scenarios it had not finished are not in this report",
                    crate::infra::words::seconds(deadline.unwrap_or_default())
                ));
                None
            }
            Ended::FailFast => {
                recorder.note(
                    "Run",
                    "--fail-fast: the run stopped at its first failed step; the scenarios after it were not run",
                );
                None
            }
            Ended::Completed => None,
        };
        (collected, stopped)
    }
}

/// What ends a run early besides a signal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    pub fail_fast: bool,
    pub deadline: Option<std::time::Duration>,
}

/// Run the features through cucumber, with the collector as its one writer; what it
/// collected, and how it ended.
pub async fn execute<W: Steps>(
    ctx: &Arc<RunContext>,
    features: Vec<gherkin::Feature>,
    tags: Option<gherkin::tagexpr::TagOperation>,
    console: Option<crate::infra::console::Console>,
    stops: &mut crate::infra::stop::Stops,
    bounds: Bounds,
) -> (collector::Collected, Ended) {
    let collector = collector::Collector::new(
        Arc::clone(&ctx.recorder),
        Arc::clone(&ctx.verdicts),
        console.map(|console| collector::Terminal { console }),
    );
    let collected = Arc::clone(&collector.collected);
    let failed = Arc::clone(&collector.failed);
    let cli: cucumber::cli::Opts<_, _, _, cucumber::cli::Empty> = cucumber::cli::Opts {
        tags_filter: tags,
        ..cucumber::cli::Opts::default()
    };
    let hook_ctx = Arc::clone(ctx);
    let (pattern, sign_in) = W::sign_in();
    let cucumber = W::cucumber::<PathBuf>()
        .with_parser(crate::features::Parser)
        .with_writer(collector.normalized())
        .with_cli(cli)
        .given(pattern.clone(), sign_in)
        .when(pattern, sign_in)
        .max_concurrent_scenarios(1)
        .fail_on_skipped()
        .before(move |feature, _, scenario, world| {
            world.enter(
                Arc::clone(&hook_ctx),
                collector::scenario_key(feature, scenario),
            );
            Box::pin(async {})
        });
    let deadline = async {
        match bounds.deadline {
            Some(deadline) => tokio::time::sleep(deadline).await,
            None => std::future::pending().await,
        }
    };
    let fail_fast = async {
        if bounds.fail_fast {
            failed.notified().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let (ended, crashed) = tokio::select! {
        ran = caught(cucumber.run(features)) => (Ended::Completed, ran.err()),
        stop = stops.next() => (Ended::Stopped(stop), None),
        () = deadline => (Ended::Deadline, None),
        () = fail_fast => (Ended::FailFast, None),
    };
    let mut collected = std::mem::take(&mut *collected.lock().unwrap_or_else(|p| p.into_inner()));
    if ended != Ended::Completed {
        collected.close_open("not run: the run was stopped before it", &ctx.recorder);
    }
    if let Some(panic) = crashed {
        collected.errors.push(format!(
            "onramp failed during the run ({panic}); this report holds what was recorded until then. This is a defect in onramp: please report it"
        ));
    }
    (collected, ended)
}

/// Run `future`; a panic in it (outside a step, whose panics are its verdict) becomes
/// `Err(message)` instead of unwinding through the run, so the report is still written and
/// the browser still closed.
async fn caught<T>(future: impl Future<Output = T>) -> Result<T, String> {
    use futures_util::FutureExt as _;
    std::panic::AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|panic| crate::infra::cause::panic_message(&*panic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_outside_a_step_is_caught_with_its_message() {
        assert_eq!(caught(async { 7 }).await, Ok(7));
        let failed = caught(async {
            if std::hint::black_box(true) {
                panic!("the collector broke");
            }
        })
        .await;
        assert_eq!(failed, Err("the collector broke".to_owned()));
        let formatted =
            std::panic::catch_unwind(|| panic!("page {} of {}", 2, 3)).expect_err("panics");
        assert_eq!(
            crate::infra::cause::panic_message(&*formatted),
            "page 2 of 3"
        );
    }
}
