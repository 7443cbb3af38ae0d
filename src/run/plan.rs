//! What `onramp run` is told ([`RunOptions`], the user's) and what it will do ([`Plan`],
//! every setting resolved and checked before anything starts): the target with its faults,
//! the parsed features with every step bound, the sign-in recipe against the target's
//! members, the tags, the recording, the browser and the report folder. Every later stage
//! takes the Plan, never the options. A run over several targets resolves each Plan first
//! and then gives it its share of the browser and its folder ([`Plan::within`],
//! [`Plan::sharing`]): internal wiring, not something a user says.

use std::path::PathBuf;

use cucumber::gherkin;

use super::error::RunError;
use super::execute::Steps;
use crate::browser::{BrowserOptions, DevToolsEndpoint};
use crate::config::{Endpoints, FeatureSource, Target};
use crate::features::{Features, FeaturesError};
use crate::infra::console::Console;
use crate::payer::recipe::Recipe;
use crate::report::recording;
use crate::sandbox::Fault;

/// Everything a user can tell `onramp run` (the command line, or a program calling it).
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
    pub console: Console,
    /// Which recording of the browser steps to make.
    pub recording: recording::Mode,
    /// `--fail-fast`: stop at the first failed step (the report is still written).
    pub fail_fast: bool,
    /// `--deadline`: the longest the features may run; what ran by then is reported.
    pub deadline: Option<std::time::Duration>,
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
    /// The report folder.
    pub dir: PathBuf,
    /// `<out>/latest` points at `dir` when the run ends (not for one target of several).
    pub link_latest: bool,
    /// The WebDriver the sign-ins use; onramp starts chromedriver when `None`.
    pub webdriver: Option<String>,
    /// How the browser starts (headed, page timeout, a shared Chromium's endpoint).
    pub browser: BrowserOptions,
    pub console: Console,
    /// Print nothing while the run goes (one target of several: its verdict is printed
    /// when it ends instead).
    pub silent: bool,
    pub recording: recording::Mode,
    /// The onboarding manifest: the one given, or `onboarding.toml` here when it exists.
    pub manifest: Option<PathBuf>,
    pub require_checklist: bool,
    pub fail_fast: bool,
    pub deadline: Option<std::time::Duration>,
}

impl Plan {
    /// Resolve the target, load and parse the features, find the sign-in, parse the tags,
    /// check that the target's `[member]` has what the sign-in types in, and that every
    /// step of `W` binds.
    pub fn resolve<W: Steps>(options: &RunOptions) -> Result<Self, RunError> {
        let target = target_with_faults(options)?;
        let (features, features_source) = match (&options.features, &target.features) {
            (Some(dir), _) | (None, FeatureSource::Dir(dir)) => {
                (Features::from_dir(dir)?, dir.display().to_string())
            }
            (None, FeatureSource::Shipped(name)) => (
                Features::embedded(name)?,
                format!("shipped ({name} sign-in)"),
            ),
        };
        let features = features.parse_with(&crate::features::Fill::of(
            &target.required_resources,
            &target.clinical_resources,
        ))?;
        let recipe = Recipe::find(&features).map_err(FeaturesError::SignIn)?;
        if let Some(recipe) = &recipe {
            members_fit(&target, recipe)?;
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
        let unbound = super::preflight::unbound_steps::<W>(&features, tags.as_ref());
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
        let dir = options
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("onramp-report"))
            .join(&id);
        let browser = BrowserOptions {
            headed: options.headed,
            timeout: target.browser_timeout,
            remote: options.webdriver.is_some(),
            ..BrowserOptions::default()
        };
        let manifest = options.manifest.clone().or_else(|| {
            let default = PathBuf::from(crate::checklist::MANIFEST_NAME);
            default.is_file().then_some(default)
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
            link_latest: true,
            webdriver: options.webdriver.clone(),
            browser,
            console: options.console,
            silent: false,
            recording: options.recording,
            manifest,
            require_checklist: options.require_checklist,
            fail_fast: options.fail_fast,
            deadline: options.deadline,
        })
    }

    /// One target of several: its report goes into `dir` (no `latest` link of its own) and
    /// it prints nothing while it runs.
    pub fn within(mut self, dir: PathBuf) -> Self {
        self.dir = dir;
        self.link_latest = false;
        self.silent = true;
        self
    }

    /// The sign-ins go through a chromedriver onramp started for several runs (the browser
    /// is local: a profile of its own), in a browser context of their own in the shared
    /// Chromium at `devtools` when there is one.
    pub fn sharing(mut self, webdriver: String, devtools: Option<DevToolsEndpoint>) -> Self {
        self.webdriver = Some(webdriver);
        self.browser.remote = false;
        self.browser.devtools = devtools;
        self
    }
}

/// The target of `--target`, with the `--sandbox-fault`s added (the sandbox's only).
fn target_with_faults(options: &RunOptions) -> Result<Target, RunError> {
    let mut target = Target::resolve(options.target.as_deref())?;
    if options.sandbox_faults.is_empty() {
        return Ok(target);
    }
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
    Ok(target)
}

/// That every member of the target has every `${member.…}` value the sign-in types in.
fn members_fit(target: &Target, recipe: &Recipe) -> Result<(), RunError> {
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
    Ok(())
}

/// A run's id: when it started, and four random hex digits.
pub fn run_id() -> String {
    let format = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let stamp = time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "run".into());
    format!("{stamp}-{}", random_hex(2))
}

/// `bytes` random bytes in hex.
pub(super) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Now, as RFC 3339 (UTC).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
