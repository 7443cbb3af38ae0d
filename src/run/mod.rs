//! `onramp run`: the conformance run. Resolves the target (starting the embedded sandbox when
//! it is the target), opens the evidence recorder and the run's shared context, runs the
//! Gherkin features through cucumber (its terminal, JUnit and JSON writers, plus a collector
//! of ours), then builds one [`RunSummary`] and writes the outputs. Ctrl-C stops the run and
//! still writes what was recorded, marked interrupted.
//!
//! Data flows one way: steps record into the context and the recorder; the summary is built
//! from them after the run; renderers only read the summary.

mod collector;
pub mod context;
pub mod features;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cucumber::{World as _, WriterExt as _, writer};
use url::Url;

use crate::browser::BrowserOptions;
use crate::config::{ConfigError, Endpoints, Target};
use crate::evidence::Recorder;
use crate::http::Http;
use crate::oauth::OAuthClient;
use crate::sandbox::{Client, Fault, Sandbox, SandboxConfig};
use crate::steps::OnrampWorld;
use context::RunContext;
use features::{Features, FeaturesError};
use summary::{
    Counts, FailureKind, Outcome, ResourceFinding, ResourceResult, RunSummary, Status, TargetInfo,
    TokenSummary,
};

/// A failed step: the message, and whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub kind: FailureKind,
    pub message: String,
}

const CONFORMANCE_PREFIX: &str = "not conformant: ";
const ENVIRONMENT_PREFIX: &str = "could not test: ";

impl StepFailure {
    /// The target did something wrong.
    pub fn conformance(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Conformance,
            message: message.into(),
        }
    }

    /// onramp could not test.
    pub fn environment(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Environment,
            message: message.into(),
        }
    }

    /// The features or the target configuration are wrong: onramp could not test either.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::environment(message)
    }

    /// Whose fault a failure message (as cucumber reports it) is.
    pub fn kind_of_message(text: &str) -> FailureKind {
        if text.starts_with(CONFORMANCE_PREFIX) {
            FailureKind::Conformance
        } else {
            FailureKind::Environment
        }
    }
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = match self.kind {
            FailureKind::Conformance => CONFORMANCE_PREFIX,
            FailureKind::Environment => ENVIRONMENT_PREFIX,
        };
        write!(f, "{prefix}{}", self.message)
    }
}

impl std::error::Error for StepFailure {}

/// Everything `onramp run` can be told.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--target`: a built-in name or a TOML file; the sandbox when `None`.
    pub target: Option<String>,
    pub features: Option<PathBuf>,
    pub tags: Option<String>,
    /// The report folder's parent (`onramp-report` by default).
    pub out: Option<PathBuf>,
    pub webdriver: Option<String>,
    pub headed: bool,
    pub sandbox_faults: Vec<Fault>,
    /// The onboarding manifest; `onboarding.toml` here when it exists.
    pub manifest: Option<PathBuf>,
    /// An incomplete production-access checklist fails the run.
    pub require_checklist: bool,
}

/// Why a run could not start. (A run that starts always ends with a [`RunSummary`].)
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Features(#[from] FeaturesError),
    #[error("--tags {tags:?} is not a tag expression: {reason}")]
    Tags { tags: String, reason: String },
    #[error(
        "--sandbox-fault applies to the embedded sandbox, but the target {target} is a remote environment"
    )]
    FaultsNeedSandbox { target: String },
    #[error("cannot create the report folder {path}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox did not start")]
    Sandbox(#[source] crate::sandbox::SandboxError),
    #[error("cannot set up the run: {0}")]
    Setup(String),
}

impl RunError {
    /// The exit code: configuration and usage problems are 2, the rest 3.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_)
            | RunError::Features(_)
            | RunError::Tags { .. }
            | RunError::FaultsNeedSandbox { .. } => crate::exit::USAGE,
            RunError::Sandbox(crate::sandbox::SandboxError::Data(_)) => crate::exit::USAGE,
            RunError::Output { .. } | RunError::Sandbox(_) | RunError::Setup(_) => {
                crate::exit::ENVIRONMENT
            }
        }
    }
}

/// A finished run: its summary and where the report went.
#[derive(Debug)]
pub struct RunReport {
    pub summary: RunSummary,
    pub dir: PathBuf,
    /// Files written, relative to `dir`.
    pub files: Vec<String>,
}

fn run_id() -> String {
    let format = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "run".into());
    let suffix: String = rand::random::<[u8; 2]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{stamp}-{suffix}")
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A tiny loopback app that receives the redirect, so the browser lands on a real page.
async fn redirect_listener(preferred: Option<&Url>) -> Option<(Url, tokio::task::JoinHandle<()>)> {
    let bind = match preferred {
        Some(url) => {
            let host = url.host_str()?;
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if url.scheme() != "http" || !loopback {
                return None;
            }
            format!("127.0.0.1:{}", url.port_or_known_default()?)
        }
        None => "127.0.0.1:0".to_owned(),
    };
    let listener = tokio::net::TcpListener::bind(&bind).await.ok()?;
    let address = listener.local_addr().ok()?;
    let url = match preferred {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{address}/onramp/callback")).ok()?,
    };
    let page = "<!doctype html><meta charset=utf-8><title>onramp</title>\
        <body style=\"font:16px system-ui;margin:3rem\"><h1>onramp received the authorization response</h1>\
        <p>This window belongs to an onramp run; it closes when the run ends.</p></body>";
    let app = axum::Router::new().fallback(move || async move { axum::response::Html(page) });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Some((url, task))
}

/// Run the conformance features and write the report. Errors are only returned for what
/// stops a run before it starts; everything after ends in a summary.
pub async fn run(options: RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let mut target = Target::resolve(options.target.as_deref())?;
    if !options.sandbox_faults.is_empty() {
        match &mut target.endpoints {
            Endpoints::Sandbox(settings) => settings
                .faults
                .extend(options.sandbox_faults.iter().cloned()),
            Endpoints::Remote { .. } => {
                return Err(RunError::FaultsNeedSandbox {
                    target: target.name.clone(),
                });
            }
        }
    }
    let features = match &options.features {
        Some(dir) => Features::from_dir(dir)?,
        None => Features::embedded(),
    };
    let tags = options
        .tags
        .as_ref()
        .map(|text| {
            text.parse::<cucumber::gherkin::tagexpr::TagOperation>()
                .map_err(|e| RunError::Tags {
                    tags: text.clone(),
                    reason: e.to_string(),
                })
        })
        .transpose()?;

    let id = run_id();
    let dir = options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("onramp-report"))
        .join(&id);
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;
    let recorder = Arc::new(Recorder::new(Some(&dir)));

    // The redirect URI the app uses, and a listener for it when it is on loopback.
    let listener = redirect_listener(target.redirect_uri.as_ref()).await;
    let redirect_uri = match (&target.redirect_uri, &listener) {
        (Some(uri), _) => uri.clone(),
        (None, Some((uri, _))) => uri.clone(),
        (None, None) => {
            return Err(RunError::Setup(
                "no loopback port is free for the redirect URI".into(),
            ));
        }
    };

    // The sandbox, when it is the target.
    let mut faults: Vec<String> = Vec::new();
    let (sandbox, endpoints) = match &target.endpoints {
        Endpoints::Sandbox(settings) => {
            faults = settings.faults.iter().map(ToString::to_string).collect();
            let config = SandboxConfig {
                members: settings.members,
                eobs_per_member: settings.eobs_per_member,
                faults: settings.faults.clone(),
                pkce: settings.pkce,
                token_lifetime: settings.token_lifetime,
                clients: vec![Client::demo(vec![redirect_uri.to_string()])],
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::start(config).await.map_err(RunError::Sandbox)?;
            let parse =
                |text: String| Url::parse(&text).map_err(|e| RunError::Setup(e.to_string()));
            let endpoints = context::Endpoints {
                authorize: parse(sandbox.authorize_url())?,
                token: parse(sandbox.token_url())?,
                fhir_base: parse(sandbox.fhir_base())?,
            };
            (Some(sandbox), endpoints)
        }
        Endpoints::Remote(remote) => (
            None,
            context::Endpoints {
                authorize: remote.authorize.clone(),
                token: remote.token.clone(),
                fhir_base: remote.fhir_base.clone(),
            },
        ),
    };

    let http = Http::new(target.http.clone(), Arc::clone(&recorder))
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let oauth = OAuthClient::new(
        &endpoints.authorize,
        &endpoints.token,
        &target.client_id,
        &target.client_secret,
        &redirect_uri,
        target.client_auth,
        &target.scopes,
        target.pkce,
        http.clone(),
    )
    .map_err(|e| RunError::Setup(e.to_string()))?;
    let target_info = TargetInfo {
        name: target.name.clone(),
        kind: if sandbox.is_some() {
            "sandbox".into()
        } else {
            "remote".into()
        },
        authorize_url: endpoints.authorize.to_string(),
        token_url: endpoints.token.to_string(),
        fhir_base: endpoints.fhir_base.to_string(),
        client_id: target.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scopes: target.scopes.clone(),
        pkce: target.pkce,
        client_auth: format!("{:?}", target.client_auth).to_lowercase(),
        faults,
    };
    let show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let browser_options = BrowserOptions {
        headed: options.headed,
        ..BrowserOptions::default()
    };
    let ctx = Arc::new(RunContext::new(
        target,
        endpoints,
        http,
        oauth,
        Arc::clone(&recorder),
        options.webdriver.clone(),
        browser_options,
        show_progress,
    ));

    // Cucumber, with its own JUnit and JSON writers next to the terminal and our collector.
    let junit = tempfile::NamedTempFile::new_in(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;
    let json = tempfile::NamedTempFile::new_in(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;
    let reopen = |file: &tempfile::NamedTempFile| {
        file.reopen().map_err(|source| RunError::Output {
            path: dir.clone(),
            source,
        })
    };
    let collector = collector::Collector::default();
    let collected = Arc::clone(&collector.collected);
    let cli: cucumber::cli::Opts<_, _, _, cucumber::cli::Empty> = cucumber::cli::Opts {
        tags_filter: tags,
        ..cucumber::cli::Opts::default()
    };
    let hook_ctx = Arc::clone(&ctx);
    let cucumber = OnrampWorld::cucumber::<PathBuf>()
        .with_parser(features::Parser)
        .with_writer(
            writer::Basic::raw(
                std::io::stdout(),
                writer::Coloring::Auto,
                writer::Verbosity::Default,
            )
            .summarized()
            .tee::<OnrampWorld, _>(writer::JUnit::for_tee(
                reopen(&junit)?,
                writer::Verbosity::Default,
            ))
            .tee::<OnrampWorld, _>(writer::Json::for_tee(reopen(&json)?))
            .tee::<OnrampWorld, _>(collector.discard_stats_writes().discard_arbitrary_writes())
            .normalized(),
        )
        .with_cli(cli)
        .max_concurrent_scenarios(1)
        .fail_on_skipped()
        .before(move |_, _, _, world| {
            world.ctx = Some(Arc::clone(&hook_ctx));
            Box::pin(async {})
        });

    let interrupted = tokio::select! {
        _ = cucumber.run(features) => false,
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        eprintln!("\nonramp: interrupted; writing what was recorded");
    }
    ctx.close_browser().await;
    let browser = ctx.browser_version();
    if let Some(sandbox) = sandbox {
        sandbox.shutdown().await;
    }
    if let Some((_, task)) = listener {
        task.abort();
    }

    let manifest = options.manifest.clone().or_else(|| {
        let default = PathBuf::from(crate::checklist::MANIFEST_NAME);
        default.is_file().then_some(default)
    });
    let mut summary = summarize(SummaryParts {
        id,
        target: target_info,
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        interrupted,
        browser,
        ctx: &ctx,
        collected: &collected,
        manifest: manifest.as_deref(),
        require_checklist: options.require_checklist,
    })
    .await;

    let mut files = Vec::new();
    let complete = !interrupted;
    for (file, name) in [(junit, "junit.xml"), (json, "cucumber.json")] {
        if complete && file.as_file().metadata().is_ok_and(|m| m.len() > 0) {
            let _ = std::fs::set_permissions(
                file.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            );
            match file.persist(dir.join(name)) {
                Ok(_) => files.push(name.to_owned()),
                Err(e) => summary
                    .errors
                    .push(format!("cannot write {name}: {}", e.error)),
            }
        }
    }
    match crate::report::recording::assemble(&dir, &summary.screenshots) {
        Ok(recording) => summary.recording = recording,
        Err(error) => summary.errors.push(format!("no recording: {error}")),
    }
    let written =
        crate::report::write_outputs(&dir, &summary).map_err(|e| RunError::Setup(e.to_string()))?;
    files.splice(0..0, written);
    if let Some(recording) = &summary.recording {
        files.push(recording.file.clone());
    }
    if !summary.screenshots.is_empty() {
        files.push(format!("screenshots/ ({} PNG)", summary.screenshots.len()));
    }
    link_latest(&dir);
    Ok(RunReport {
        summary,
        dir,
        files,
    })
}

/// Point `<out>/latest` at this run, for CI jobs that publish a fixed path.
fn link_latest(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let latest = parent.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(name, &latest);
}

struct SummaryParts<'a> {
    id: String,
    target: TargetInfo,
    started_at: String,
    duration_ms: u64,
    interrupted: bool,
    browser: Option<String>,
    ctx: &'a RunContext,
    collected: &'a std::sync::Mutex<collector::Collected>,
    manifest: Option<&'a Path>,
    require_checklist: bool,
}

async fn summarize(parts: SummaryParts<'_>) -> RunSummary {
    let (scenarios, errors) = {
        let collected = parts.collected.lock().unwrap_or_else(|p| p.into_inner());
        (collected.scenarios.clone(), collected.errors.clone())
    };
    let count = |statuses: &mut dyn Iterator<Item = Status>| {
        let mut counts = Counts::default();
        for status in statuses {
            match status {
                Status::Passed => counts.passed += 1,
                Status::Failed => counts.failed += 1,
                Status::Skipped => counts.skipped += 1,
            }
        }
        counts
    };
    let scenario_counts = count(&mut scenarios.iter().map(|s| s.status));
    let step_counts = count(
        &mut scenarios
            .iter()
            .flat_map(|s| s.steps.iter().map(|st| st.status)),
    );
    let failures: Vec<FailureKind> = scenarios
        .iter()
        .flat_map(|s| s.steps.iter().filter_map(|st| st.failure))
        .collect();
    let outcome = if parts.interrupted {
        Outcome::Interrupted
    } else if !errors.is_empty() || failures.contains(&FailureKind::Environment) {
        Outcome::Error
    } else if !failures.is_empty() || scenario_counts.failed > 0 {
        Outcome::Failed
    } else if scenarios.is_empty() {
        Outcome::Error
    } else {
        Outcome::Passed
    };
    let mut errors = errors;
    if scenarios.is_empty() && !parts.interrupted {
        errors.push("no scenario ran: check --tags and the features".into());
    }
    let checklist = match crate::checklist::check(parts.manifest) {
        Ok(checklist) => checklist,
        Err(error) => {
            errors.push(error.to_string());
            crate::checklist::absent()
        }
    };
    let outcome = if parts.require_checklist && outcome == Outcome::Passed && !checklist.complete()
    {
        errors.push(format!(
            "--require-checklist: {} production-access items are not ready",
            checklist.missing()
        ));
        Outcome::Failed
    } else {
        outcome
    };

    let ctx = parts.ctx;
    let searches = ctx.finished_searches().await;
    let patient = ctx.known_patient_id().await;
    let all: std::collections::BTreeMap<String, crate::fhir::SearchResult> = searches
        .iter()
        .map(|s| (s.kind.clone(), s.clone()))
        .collect();
    let resources = searches
        .iter()
        .map(|search| {
            let verdicts = [
                crate::access::searchset(search),
                crate::access::total(search),
                crate::access::duplicates(search),
                crate::access::membership(search, patient.as_deref(), &all),
                crate::access::references(search, &all),
            ];
            ResourceResult {
                kind: search.kind.clone(),
                count: search.resources.len(),
                pages: search.pages.len(),
                invalid: search.invalid,
                findings: search
                    .findings
                    .iter()
                    .map(|f| ResourceFinding {
                        page: f.page,
                        url: ctx.recorder.redact(&f.url),
                        entry: f.finding.entry,
                        resource: f.finding.resource.clone(),
                        path: f.finding.path.clone(),
                        pointer: f.finding.pointer.clone(),
                        keyword: f.finding.keyword.clone(),
                        message: ctx.recorder.redact(&f.finding.message),
                    })
                    .collect(),
                problems: verdicts
                    .iter()
                    .flat_map(|v| v.problems.iter().cloned())
                    .collect(),
                notes: verdicts
                    .iter()
                    .flat_map(|v| v.notes.iter().cloned())
                    .collect(),
                failure: search
                    .failure
                    .as_ref()
                    .map(|f| ctx.recorder.redact(&f.message)),
            }
        })
        .collect();
    let token = ctx.existing_session().map(|session| {
        let answer = &session.answer;
        let text = |name: &str| {
            answer
                .fields
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        TokenSummary {
            status: answer.status,
            token_type: text("token_type"),
            expires_in: answer.fields.get("expires_in").cloned(),
            scope_requested: session.requested_scope.clone(),
            scope_granted: text("scope"),
            patient: text("patient"),
            cache_control: answer.header("cache-control").map(str::to_owned),
            pragma: answer.header("pragma").map(str::to_owned),
            refreshed: session.refreshed(),
            problem: answer.problem.as_ref().map(|p| ctx.recorder.redact(p)),
        }
    });
    let evidence = ctx.recorder.snapshot();
    let redact_steps = |mut scenario: summary::ScenarioSummary| {
        for step in &mut scenario.steps {
            step.error = step.error.as_ref().map(|e| ctx.recorder.redact(e));
        }
        scenario
    };
    RunSummary {
        schema_version: summary::SCHEMA_VERSION,
        run_id: parts.id,
        exit_code: outcome.exit_code(),
        outcome,
        target: parts.target,
        started_at: parts.started_at,
        finished_at: now_rfc3339(),
        duration_ms: parts.duration_ms,
        onramp_version: env!("CARGO_PKG_VERSION").to_owned(),
        fhir_version: crate::validate::FHIR_VERSION.to_owned(),
        browser: parts.browser,
        scenarios: scenarios.into_iter().map(redact_steps).collect(),
        scenario_counts,
        step_counts,
        resources,
        token,
        exchanges: evidence.exchanges,
        screenshots: evidence.screenshots,
        notes: evidence.notes,
        errors: errors.iter().map(|e| ctx.recorder.redact(e)).collect(),
        checklist,
        recording: None,
    }
}
