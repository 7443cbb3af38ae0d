//! What the scenarios of a run record and share, concern by concern, held by the
//! [`super::context::RunContext`]: the other members' grants, searches and probes
//! ([`Members`]), each type's search ([`Searches`]), the discovery documents
//! ([`Discovery`]), the sign-ins that failed for good ([`Failures`]) and the public APIs
//! with their reads ([`Books`]). The operations on them live with their concern
//! (`members.rs`, `searches.rs`, `documents.rs`, `browser_sign_in.rs`, `books.rs`), which
//! take the context; these records take nothing from it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::{Mutex as AsyncMutex, OnceCell};

use super::failure::StepFailure;
use super::session::Grant;
use crate::infra::secret::Secret;
use crate::payer::discovery::Fetched;
use crate::payer::fhir::SearchResult;
pub use crate::payer::isolation::Probe;
use crate::payer::public::Book;
use crate::validate::Validator;
use url::Url;

type GrantCell = Arc<OnceCell<Result<Arc<Grant>, StepFailure>>>;
type SearchCell = Arc<OnceCell<Arc<SearchResult>>>;

/// The other members' grants and searches, and the probes.
#[derive(Debug, Default)]
pub struct Members {
    pub(super) grants: AsyncMutex<BTreeMap<usize, GrantCell>>,
    pub(super) searches: AsyncMutex<BTreeMap<(usize, String), SearchCell>>,
    pub(super) probes: Mutex<Vec<Probe>>,
}

impl Members {
    /// Every probe so far.
    pub fn probes(&self) -> Vec<Probe> {
        self.probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether any member other than the run's signed in (or tried to).
    pub async fn engaged(&self) -> bool {
        !self.grants.lock().await.is_empty()
    }

    /// The grant of member `index` (> 0), if they signed in.
    pub async fn existing(&self, index: usize) -> Option<Result<Arc<Grant>, StepFailure>> {
        self.grants.lock().await.get(&index)?.get().cloned()
    }

    /// The finished searches of member `index` (> 0).
    pub async fn finished(&self, index: usize) -> Vec<Arc<SearchResult>> {
        self.searches
            .lock()
            .await
            .iter()
            .filter(|((member, _), _)| *member == index)
            .filter_map(|(_, cell)| cell.get().cloned())
            .collect()
    }

    pub(super) fn record(&self, probe: Probe) {
        self.probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(probe);
    }
}

/// Each type's search, run once.
#[derive(Debug, Default)]
pub struct Searches {
    pub(super) cells: AsyncMutex<BTreeMap<String, Arc<OnceCell<Arc<SearchResult>>>>>,
    pub(super) show_progress: bool,
}

impl Searches {
    pub fn new(show_progress: bool) -> Self {
        Self {
            cells: AsyncMutex::default(),
            show_progress,
        }
    }

    /// The searches already made of `kinds`, without making any.
    pub(super) async fn made(&self, kinds: &[String]) -> Vec<Arc<SearchResult>> {
        let cells = self.cells.lock().await;
        kinds
            .iter()
            .filter_map(|kind| cells.get(kind).and_then(|cell| cell.get().cloned()))
            .collect()
    }

    pub(super) async fn cell(&self, kind: &str) -> Arc<OnceCell<Arc<SearchResult>>> {
        let mut cells = self.cells.lock().await;
        Arc::clone(cells.entry(kind.to_owned()).or_default())
    }

    /// The searches that finished, without starting any.
    pub async fn finished(&self) -> Vec<Arc<SearchResult>> {
        self.cells
            .lock()
            .await
            .values()
            .filter_map(|cell| cell.get().cloned())
            .collect()
    }

    /// The finished search for `kind`, if it ran.
    pub async fn get(&self, kind: &str) -> Option<Arc<SearchResult>> {
        self.cells.lock().await.get(kind)?.get().cloned()
    }

    pub(super) fn progress_bar(&self, kind: &str) -> ProgressBar {
        if !self.show_progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} reading {prefix}: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_prefix(kind.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

/// A discovery document, fetched on first use, and whether a step has reported already
/// that it got no answer.
#[derive(Debug, Default)]
pub(super) struct Document {
    pub(super) fetched: OnceCell<Fetched>,
    pub(super) reported: AtomicBool,
}

impl Document {
    /// The document, or why a step cannot judge it: the failure itself for the first step
    /// that asks, a skip for the others.
    pub(super) fn answered(&self, what: &str, fetched: &Fetched) -> Result<(), StepFailure> {
        match &fetched.failure {
            None => Ok(()),
            Some(error) if !self.reported.swap(true, Ordering::Relaxed) => {
                Err(StepFailure::from_http(error))
            }
            Some(error) => Err(StepFailure::blocked(format!(
                "{what} could not be read: {error}"
            ))),
        }
    }
}

/// The discovery documents, each fetched on first use.
#[derive(Debug, Default)]
pub struct Discovery {
    pub(super) smart: Document,
    pub(super) metadata: Document,
    pub(super) jwks: Document,
}

/// The first sign-in failure of each member that a later sign-in would only repeat: the
/// recipe does not fit the pages (usage), or the pages could not be had (environment).
#[derive(Debug, Default)]
pub struct Failures(pub(super) Mutex<HashMap<usize, StepFailure>>);

impl Failures {
    /// Keep `failure` of member `member`'s sign-in, if it is one a retry would repeat.
    pub fn record(&self, member: usize, failure: &StepFailure) {
        use crate::summary::FailureKind::{Environment, Usage};
        if matches!(failure.kind, Usage | Environment) {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(member)
                .or_insert_with(|| failure.clone());
        }
    }

    /// Why member `member` cannot sign in, if an earlier sign-in showed it.
    pub(super) fn earlier(&self, member: usize) -> Option<StepFailure> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&member)
            .cloned()
    }
}

/// One public API of the target's.
#[derive(Debug)]
pub struct BookApi {
    pub book: Book,
    pub base: Url,
    /// The target's token for it, if any.
    pub token: Option<Secret>,
    /// Read with the member's access token.
    pub member_token: bool,
    /// The run's tiers, with the IG's profiles applied by type.
    pub validator: Arc<Validator>,
    pub searches: Searches,
    /// Resources read by id to take values from, by `Type/id` (`None`: not readable), so
    /// that the searches of one type read each once.
    pub read: Mutex<HashMap<String, Option<Arc<serde_json::Value>>>>,
}

/// The target's public APIs.
#[derive(Debug, Default)]
pub struct Books {
    pub apis: Vec<BookApi>,
}

impl Books {
    /// The APIs the target has, at their bases (a sandbox target's: `sandbox_base`), each
    /// validated with the run's tier and its IG's profiles.
    pub fn new(
        target: &crate::config::Target,
        sandbox_base: &dyn Fn(Book) -> Option<Url>,
        show_progress: bool,
    ) -> Result<Self, crate::validate::UnknownProfile> {
        let mut apis = Vec::new();
        for book in Book::ALL {
            let Some(settings) = target.book(book) else {
                continue;
            };
            let Some(base) = settings.fhir_base.clone().or_else(|| sandbox_base(book)) else {
                continue;
            };
            let validator = Validator::new(target.validation.tier)
                .with_profiles(&book.profiles())?
                .with_must_support(
                    target.validation.must_support != crate::config::MustSupportLevel::Off,
                );
            apis.push(BookApi {
                book,
                base,
                token: settings.token.clone(),
                member_token: settings.member_token,
                validator: Arc::new(validator),
                searches: Searches::new(show_progress),
                read: Mutex::default(),
            });
        }
        Ok(Self { apis })
    }

    /// The API `book`, or why its scenarios are skipped.
    pub fn get(&self, book: Book) -> Result<&BookApi, StepFailure> {
        self.apis.iter().find(|a| a.book == book).ok_or_else(|| {
            StepFailure::blocked(format!(
                "the target has no [{key}]: give its fhir_base to check the payer's {} ({})",
                book.title(),
                book.ig(),
                key = book.key(),
            ))
        })
    }
}
