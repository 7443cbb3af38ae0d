//! `onramp run`: the conformance run, in two halves. [`Plan::resolve`] turns the options
//! into checked settings (the target, the parsed features with every step bound, the sign-in
//! recipe, the tags, the report folder) and stops with a usage error before anything starts
//! ([`preflight`] also finds the browser). [`run`] then starts what the target needs (the
//! embedded sandbox, a loopback redirect listener), asks a remote payer's hosts once
//! ([`preflight::unreachable`]: nothing runs against a payer that cannot be reached), runs
//! the features through cucumber with one writer of ours ([`execute`], [`collector`]),
//! builds one [`RunSummary`] and writes every output from it. Ctrl-C, SIGTERM or SIGHUP
//! ([`crate::infra::stop`]), `--deadline` and `--fail-fast` stop the run and still write what was
//! recorded.
//!
//! Data flows one way: steps record into the context and the recorder (redacted at the
//! door); the summary is built from them after the run; renderers only read the summary.

mod browser_sign_in;
mod checks;
mod collector;
pub mod context;
mod documents;
mod execute;
mod failure;
pub mod many;
pub mod members;
pub mod preflight;
mod searches;
pub mod session;
mod shared_browser;
pub mod summary;
pub mod timeline;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cucumber::gherkin;
use url::Url;

use crate::browser::BrowserOptions;
use crate::config::{ConfigError, Endpoints, FeatureSource, Target};
use crate::evidence::Recorder;
use crate::features::{Features, FeaturesError};
use crate::payer::http::Http;
use crate::payer::oauth::OAuthClient;
use crate::payer::recipe::Recipe;
use crate::sandbox::{Client, Fault, Sandbox, SandboxConfig};
pub use browser_sign_in::{Probe, SignIn};
use context::RunContext;
pub use failure::{ScenarioKey, StepFailure, Verdicts, verdict};
use summary::{
    Counts, FailureKind, Outcome, ResourceFinding, ResourceResult, RunSummary, Status, TargetInfo,
    TokenSummary,
};

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
    /// How much to print, and in colour or not.
    pub console: crate::infra::console::Console,
    /// Which recording of the browser steps to make.
    pub recording: crate::report::recording::Mode,
    /// The report folder itself (a run over several targets gives each its own), instead
    /// of a new one under `out`.
    pub report_dir: Option<PathBuf>,
    /// Print nothing while the run goes (a run over several targets prints each target's
    /// verdict when it ends instead).
    pub silent: bool,
    /// `webdriver` is a chromedriver onramp started for several runs: the browser is local
    /// (a profile folder of its own), and the driver is not this run's to stop.
    pub shared_driver: bool,
    /// A Chromium onramp started for several runs, this run's sign-ins to happen in a
    /// browser context of its own there (with `shared_driver`).
    pub devtools: Option<crate::browser::DevToolsEndpoint>,
    /// `--fail-fast`: stop at the first failed step (the report is still written).
    pub fail_fast: bool,
    /// `--deadline`: the longest the features may run; what ran by then is reported.
    pub deadline: Option<std::time::Duration>,
}

/// Why a run could not start, or could not write its report. (A run that starts always
/// builds a [`RunSummary`].)
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Features(#[from] FeaturesError),
    #[error("{} of the features {} no step definition (nothing was run):\n{}", crate::infra::text::plural(steps.len(), "step"), if steps.len() == 1 { "has" } else { "have" }, steps.iter().map(|s| format!("  {s}")).collect::<Vec<_>>().join("\n"))]
    Unbound { steps: Vec<preflight::Unbound> },
    #[error("the sign-in needs a browser, and none can start (nothing was run)")]
    Tools(#[source] crate::browser::BrowserError),
    #[error("--tags {tags:?} is not a tag expression: {reason}")]
    Tags { tags: String, reason: String },
    #[error(
        "--sandbox-fault applies to the embedded sandbox, but the target {target} is a remote environment"
    )]
    FaultsNeedSandbox { target: String },
    #[error("{source_file}: {message}")]
    Member {
        source_file: String,
        message: String,
    },
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
    #[error("{0}")]
    Recording(String),
    #[error("--target {target}: {error}")]
    OneOf {
        target: String,
        error: Box<RunError>,
    },
    #[error("the run finished ({outcome}) but its report in {dir} could not be written")]
    Report {
        outcome: String,
        dir: PathBuf,
        #[source]
        source: crate::report::ReportError,
    },
}

impl RunError {
    /// The exit code: configuration and usage problems are 2, the rest 3.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::OneOf { error, .. } => error.exit_code(),
            RunError::Config(_)
            | RunError::Unbound { .. }
            | RunError::Features(_)
            | RunError::Tags { .. }
            | RunError::Member { .. }
            | RunError::FaultsNeedSandbox { .. }
            | RunError::Recording(_)
            | RunError::Sandbox(crate::sandbox::SandboxError::Data(_)) => crate::infra::exit::USAGE,
            RunError::Output { .. }
            | RunError::Tools(_)
            | RunError::Sandbox(_)
            | RunError::Setup(_)
            | RunError::Report { .. } => crate::infra::exit::ENVIRONMENT,
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

/// A run's settings, resolved and checked before anything starts.
#[derive(Debug)]
pub struct Plan {
    pub target: Target,
    /// Parsed, with the Scenario Outlines expanded.
    pub features: Vec<gherkin::Feature>,
    /// Where the features came from, for the report.
    pub features_source: String,
    pub recipe: Option<Recipe>,
    pub tags: Option<gherkin::tagexpr::TagOperation>,
    /// Whether the run will sign in for sure (the `@sign-in` scenario is selected), so the
    /// browser can start at once.
    pub signs_in: bool,
    pub id: String,
    pub dir: PathBuf,
}

impl Plan {
    /// Resolve the target, load and parse the features, find the sign-in, parse the tags,
    /// and check that the target's `[member]` has what the sign-in types in.
    pub fn resolve(options: &RunOptions) -> Result<Self, RunError> {
        let mut target = Target::resolve(options.target.as_deref())?;
        if !options.sandbox_faults.is_empty() {
            match &mut target.endpoints {
                Endpoints::Sandbox(settings) => settings
                    .faults
                    .extend(options.sandbox_faults.iter().cloned()),
                Endpoints::Remote(_) => {
                    return Err(RunError::FaultsNeedSandbox {
                        target: target.name.clone(),
                    });
                }
            }
        }
        let (features, features_source) = match (&options.features, &target.features) {
            (Some(dir), _) | (None, FeatureSource::Dir(dir)) => {
                (Features::from_dir(dir)?, dir.display().to_string())
            }
            (None, FeatureSource::Shipped(name)) => (
                Features::embedded(name)?,
                format!("shipped ({name} sign-in)"),
            ),
        };
        let features = features.parse(&target.required_resources)?;
        let recipe = Recipe::find(&features).map_err(FeaturesError::SignIn)?;
        if let Some(recipe) = &recipe {
            for member in &target.members {
                for name in recipe.placeholders() {
                    if !member.values.contains_key(&name) {
                        return Err(RunError::Member {
                            source_file: recipe.source.clone(),
                            message: format!(
                                "the sign-in types in ${{member.{name}}}, but the target {} has no [member] {name} for {} (it has: {})",
                                target.source.display(),
                                member.label,
                                if member.values.is_empty() {
                                    "nothing".to_owned()
                                } else {
                                    member.values.keys().cloned().collect::<Vec<_>>().join(", ")
                                }
                            ),
                        });
                    }
                }
            }
            if target.members.is_empty() && !recipe.placeholders().is_empty() {
                return Err(RunError::Member {
                    source_file: recipe.source.clone(),
                    message: format!(
                        "the sign-in types in ${{member.…}} values, but the target {} has no [member]",
                        target.source.display()
                    ),
                });
            }
        }
        let tags = options
            .tags
            .as_ref()
            .map(|text| {
                text.parse::<gherkin::tagexpr::TagOperation>()
                    .map_err(|e| RunError::Tags {
                        tags: text.clone(),
                        reason: e.to_string(),
                    })
            })
            .transpose()?;
        let unbound = preflight::unbound_steps(&features, tags.as_ref());
        if !unbound.is_empty() {
            return Err(RunError::Unbound { steps: unbound });
        }
        let signs_in = recipe.as_ref().is_some_and(|r| {
            tags.as_ref().is_none_or(|t| {
                use cucumber::tag::Ext as _;
                t.eval(r.tags.iter())
            })
        });
        let id = run_id();
        let dir = options.report_dir.clone().unwrap_or_else(|| {
            options
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("onramp-report"))
                .join(&id)
        });
        Ok(Self {
            target,
            features,
            features_source,
            recipe,
            tags,
            signs_in,
            id,
            dir,
        })
    }
}

pub fn run_id() -> String {
    let format = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "run".into());
    format!("{stamp}-{}", random_hex(2))
}

/// `bytes` random bytes in hex.
fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The loopback redirect listener, the target (the sandbox started when it is one), and the
/// clients that talk to it.
struct Connected {
    listener: Option<(Url, tokio::task::JoinHandle<()>)>,
    redirect_uri: Url,
    sandbox: Option<Sandbox>,
    endpoints: context::Endpoints,
    client: crate::config::ClientSettings,
    http: Http,
    oauth: OAuthClient,
}

async fn connect(plan: &Plan, recorder: &Arc<Recorder>) -> Result<Connected, RunError> {
    // The redirect URI the app uses, and a listener for it when it is on loopback.
    let registered = plan
        .target
        .client
        .as_ref()
        .and_then(|c| c.redirect_uri.clone());
    let listener = redirect_listener(registered.as_ref()).await;
    let redirect_uri = match (&registered, &listener) {
        (Some(uri), _) => uri.clone(),
        (None, Some((uri, _))) => uri.clone(),
        (None, None) => {
            return Err(RunError::Setup(
                "no loopback port is free for the redirect URI".into(),
            ));
        }
    };
    let Started {
        sandbox,
        endpoints,
        client,
    } = start_target(&plan.target, &redirect_uri).await?;
    // The app's callback on the sandbox's own origin, beside its sign-in pages (its client
    // takes any loopback redirect URI).
    let (listener, redirect_uri) = match (&plan.target.endpoints, &sandbox, &registered) {
        (Endpoints::Sandbox(settings), Some(started), None) if settings.same_origin_callback => {
            if let Some((_, task)) = listener {
                task.abort();
            }
            let callback = Url::parse(&started.app_callback_url())
                .map_err(|e| RunError::Setup(e.to_string()))?;
            (None, callback)
        }
        _ => (listener, redirect_uri),
    };

    let http = Http::new(plan.target.http.clone(), Arc::clone(recorder))
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let oauth = OAuthClient::new(
        &endpoints.authorize,
        &endpoints.token,
        &client.id,
        &client.secret,
        &redirect_uri,
        client.auth,
        &plan.target.scopes,
        plan.target.pkce,
        http.clone(),
    )
    .map_err(|e| RunError::Setup(e.to_string()))?;
    Ok(Connected {
        listener,
        redirect_uri,
        sandbox,
        endpoints,
        client,
        http,
        oauth,
    })
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

/// What the run talks to: the sandbox it started (if any), the endpoints, and the app's
/// client there.
struct Started {
    sandbox: Option<Sandbox>,
    endpoints: context::Endpoints,
    client: crate::config::ClientSettings,
}

/// Start the embedded sandbox when it is the target, registering the target's client
/// (or a fresh one) with `redirect_uri`.
async fn start_target(target: &Target, redirect_uri: &Url) -> Result<Started, RunError> {
    let client = target
        .client
        .clone()
        .unwrap_or_else(|| crate::config::ClientSettings {
            id: format!("onramp-run-{}", random_hex(4)),
            secret: crate::infra::secret::Secret::new(random_hex(24)),
            redirect_uri: None,
            auth: crate::config::ClientAuth::Body,
        });
    match &target.endpoints {
        Endpoints::Sandbox(settings) => {
            let persona = settings.persona;
            let config = SandboxConfig {
                persona,
                members: settings.members.unwrap_or(persona.default_members()),
                eobs_per_member: settings.eobs_per_member,
                faults: settings.faults.clone(),
                pkce: settings.pkce.unwrap_or(persona.default_pkce()),
                token_lifetime: settings.token_lifetime,
                clients: vec![Client {
                    client_id: client.id.clone(),
                    client_secret: client.secret.expose().to_owned(),
                    redirect_uris: vec![redirect_uri.to_string()],
                    any_loopback: true,
                }],
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
            Ok(Started {
                sandbox: Some(sandbox),
                endpoints,
                client,
            })
        }
        Endpoints::Remote(remote) => Ok(Started {
            sandbox: None,
            endpoints: context::Endpoints {
                authorize: remote.authorize.clone(),
                token: remote.token.clone(),
                fhir_base: remote.fhir_base.clone(),
            },
            client,
        }),
    }
}

/// Run the conformance features and write the report. Errors are only returned for what
/// stops a run before it starts, and for a report that cannot be written.
pub async fn run(options: RunOptions) -> Result<RunReport, RunError> {
    // From here on no signal ends the process: one that comes before the features run
    // stops them before they start, one that comes after is left for the report to finish.
    let mut stops = crate::infra::stop::Stops::listen();
    let started = Instant::now();
    let started_at = now_rfc3339();
    let plan = Plan::resolve(&options)?;
    options.recording.check().map_err(RunError::Recording)?;
    if plan.signs_in && options.devtools.is_none() {
        preflight::tools(options.webdriver.as_deref()).map_err(RunError::Tools)?;
    }
    let dir = plan.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| RunError::Output {
        path: dir.clone(),
        source,
    })?;
    // The recording is made as the screenshots are taken.
    let film = Arc::new(crate::report::recording::Film::start(
        &dir,
        options.recording,
    ));
    let recorder = Recorder::new(Some(&dir)).with_frames({
        let film = Arc::clone(&film);
        crate::evidence::FrameSink(Box::new(move |file, png| film.frame(file, png)))
    });
    let recorder = Arc::new(if options.console.verbose() {
        recorder.with_trace(options.console)
    } else {
        recorder
    });
    for secret in plan.target.member_secrets() {
        recorder.add_secret(secret);
    }
    let browser = Arc::new(shared_browser::SharedBrowser::new(
        options.webdriver.clone(),
        BrowserOptions {
            headed: options.headed,
            timeout: plan.target.browser_timeout,
            remote: options.webdriver.is_some() && !options.shared_driver,
            devtools: options.devtools.clone(),
            ..BrowserOptions::default()
        },
    ));
    if plan.signs_in {
        browser.warm();
    }

    // A target that cannot be reached stops the run; the browser starting meanwhile is
    // closed first.
    let Connected {
        listener,
        redirect_uri,
        sandbox,
        endpoints,
        client,
        http,
        oauth,
    } = match connect(&plan, &recorder).await {
        Ok(connected) => connected,
        Err(error) => {
            browser.close().await;
            return Err(error);
        }
    };
    let target = &plan.target;
    let target_info = TargetInfo {
        name: target.name.clone(),
        kind: if sandbox.is_some() {
            "sandbox"
        } else {
            "remote"
        }
        .into(),
        persona: sandbox.as_ref().map(|s| s.persona().name().to_owned()),
        features: plan.features_source.clone(),
        authorize_url: endpoints.authorize.to_string(),
        token_url: endpoints.token.to_string(),
        fhir_base: endpoints.fhir_base.to_string(),
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scopes: target.scopes.clone(),
        pkce: target.pkce,
        client_auth: format!("{:?}", client.auth).to_lowercase(),
        faults: match &target.endpoints {
            Endpoints::Sandbox(settings) => {
                settings.faults.iter().map(ToString::to_string).collect()
            }
            Endpoints::Remote(_) => Vec::new(),
        },
        validation: summary::ValidationInfo {
            tier: target.validation.tier,
            profiles: target.validation.profiles.clone(),
        },
        payer: target.payer.clone(),
    };
    let show_progress = options.console.progress && !options.silent;
    let Plan {
        target,
        features,
        recipe,
        tags,
        id,
        ..
    } = plan;
    let validator = Arc::new(
        crate::validate::Validator::new(target.validation.tier)
            .with_profiles(&target.validation.profiles)
            .map_err(RunError::Setup)?,
    );
    let ctx = Arc::new(RunContext {
        validator,
        target,
        endpoints,
        http,
        oauth,
        recorder: Arc::clone(&recorder),
        browser,
        session: session::Session::default(),
        members: members::Members::default(),
        searches: searches::Searches::new(show_progress),
        checks: checks::Checks::default(),
        discovery: documents::Discovery::default(),
        verdicts: Arc::default(),
        recipe,
        sign_in_failures: browser_sign_in::Failures::default(),
    });

    let terminal = (!options.silent).then_some(options.console);
    let bounds = execute::Bounds {
        fail_fast: options.fail_fast,
        deadline: options
            .deadline
            .map(|d| d.saturating_sub(started.elapsed())),
    };
    let (collected, interrupted) = match preflight::unreachable(&ctx, sandbox.is_some()).await {
        // Nothing is tested against a payer that cannot be reached: every scenario is
        // skipped, saying why, in the time one request takes.
        Some(lines) => (
            preflight::not_run(&features, tags.as_ref(), &lines, &recorder),
            None,
        ),
        None => {
            let (collected, ended) =
                execute::execute(&ctx, features, tags, terminal, &mut stops, bounds).await;
            ended.account(collected, options.deadline, &recorder)
        }
    };
    if let Some(stop) = interrupted {
        eprintln!(
            "\nonramp: interrupted by {}; writing what was recorded",
            stop.name()
        );
    }
    ctx.browser.close().await;
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
        ctx: &ctx,
        collected,
        manifest: manifest.as_deref(),
        require_checklist: options.require_checklist,
    })
    .await;

    // A defect in a renderer still leaves summary.json, saying so.
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        write_report(&dir, &mut summary, &film)
    }));
    let files = match written {
        Ok(result) => result?,
        Err(panic) => {
            summary.errors.push(format!(
                "onramp failed while writing the report ({}); summary.json holds the run. This is a defect in onramp: please report it",
                execute::panic_message(&*panic)
            ));
            summary.outcome = Outcome::Error;
            summary.exit_code = crate::infra::exit::ENVIRONMENT;
            let mut files = Vec::new();
            crate::report::write_summary(&dir, &summary, &mut files).map_err(|source| {
                RunError::Report {
                    outcome: "error".into(),
                    dir: dir.clone(),
                    source,
                }
            })?;
            files
        }
    };
    if options.report_dir.is_none() {
        link_latest(&dir);
    }
    Ok(RunReport {
        summary,
        dir,
        files,
    })
}

/// Assemble the recording and write every output of `summary` into `dir`; the files
/// written, for the closing line.
fn write_report(
    dir: &Path,
    summary: &mut RunSummary,
    film: &crate::report::recording::Film,
) -> Result<Vec<String>, RunError> {
    match film.finish() {
        Ok(recording) => summary.recording = recording,
        Err(error) => summary.errors.push(format!("no recording: {error}")),
    }
    let mut files =
        crate::report::write_outputs(dir, summary).map_err(|source| RunError::Report {
            outcome: format!("{:?}", summary.outcome).to_lowercase(),
            dir: dir.to_owned(),
            source,
        })?;
    if let Some(recording) = &summary.recording {
        files.push(recording.file.clone());
    }
    if !summary.screenshots.is_empty() {
        files.push(format!("screenshots/ ({} PNG)", summary.screenshots.len()));
    }
    Ok(files)
}

/// Point `<out>/latest` at this run, for CI jobs that publish a fixed path.
pub fn link_latest(dir: &Path) {
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
    interrupted: Option<crate::infra::stop::Stop>,
    ctx: &'a RunContext,
    collected: collector::Collected,
    manifest: Option<&'a Path>,
    require_checklist: bool,
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

/// The summary of a finished run, from what the steps recorded as they ran.
async fn summarize(parts: SummaryParts<'_>) -> RunSummary {
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
    let checklist = match crate::checklist::check(parts.manifest, list) {
        Ok(checklist) => checklist,
        Err(error) => {
            errors.push(redact(&error.to_string()));
            crate::checklist::absent(list)
        }
    };
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

    let resources = ctx
        .searches
        .finished()
        .await
        .into_iter()
        .map(|search| {
            let checks = ctx.checks.of(&search.kind);
            let mut result = ResourceResult {
                count: search.resources.len(),
                pages: search.pages.len(),
                invalid: search.invalid,
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
                problems: checks.iter().flat_map(|c| c.problems.clone()).collect(),
                notes: checks.iter().flat_map(|c| c.notes.clone()).collect(),
                failure: search.failure.as_ref().map(|f| redact(&f.message)),
                timing: summary::SearchTiming {
                    fetch_ms: search.pages.iter().map(|p| p.duration_ms).sum(),
                    parse_ms: search.pages.iter().map(|p| p.parse_us).sum::<u64>() / 1000,
                    check_ms: search.pages.iter().map(|p| p.check_us).sum::<u64>() / 1000,
                },
                kind: search.kind.clone(),
            };
            result.finding_counts = summary::finding_counts(&result.findings);
            result
        })
        .collect();
    let token = ctx.session.existing().map(|grant| {
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
    });
    let members = member_summaries(ctx).await;
    let evidence = ctx.recorder.snapshot();
    let timeline = timeline::build(&scenarios, &evidence.browser_actions, &evidence.exchanges);
    RunSummary {
        schema_version: summary::SCHEMA_VERSION,
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
        scenario_counts,
        step_counts,
        resources,
        token,
        exchanges: evidence.exchanges,
        screenshots: evidence.screenshots,
        notes: evidence.notes,
        errors,
        checklist,
        recording: None,
        browser_actions: evidence.browser_actions,
        timeline,
        members,
    }
}

/// One section per member, when the `@isolation` checks signed the members in.
async fn member_summaries(ctx: &RunContext) -> Vec<summary::MemberSummary> {
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
        let theirs: Vec<&members::Probe> = probes.iter().filter(|p| p.owner == index).collect();
        out.push(summary::MemberSummary {
            label: ctx.member_label(index),
            patient,
            problem: grant
                .and_then(Result::err)
                .map(|f| ctx.recorder.redact(&f.message)),
            resources: searches
                .iter()
                .map(|s| summary::MemberResources {
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
                .map(|p| summary::MemberLeak {
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
