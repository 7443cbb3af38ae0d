//! Targets: which environment a run tests and how to talk to it.
//!
//! A target is a TOML file (see `schemas/target.schema.json` and the template `onramp init`
//! writes). A few are built in, as TOML files embedded from `targets/`: `sandbox` (the
//! embedded demo health plan, the default), `sandbox:bluebutton` (the embedded sandbox as a
//! Blue Button 2.0-like plan; once `sandbox-bluebutton`, which still works), `1up-demo` and
//! `bluebutton-sandbox` (real demo environments, credentials from the environment). The
//! offline ones start with `sandbox`, and a colon, so that they read apart from the real
//! payers' presets. No payer's endpoints, wording or members live in this
//! code: they are in those files.
//!
//! Reading a target goes from the file's raw shape ([`TargetFile`], as serde reads it) to a
//! resolved [`Target`] whose every value has been checked. A `[sandbox]` target takes what
//! it does not say (client, member, scopes, required types) from the built-in target of its
//! persona. String values may say
//! `${ENV_VAR}` or `${ENV_VAR:-default}`; that is how secrets arrive. Errors name the file,
//! the key and the line, list every missing variable at once, and never repeat a secret.
//!
//! This module only reads configuration: it opens no connection and starts nothing.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::infra::file::FileError;

pub use crate::payer::http::HttpSettings;
pub use crate::payer::oauth::ClientAuth;
use toml::Spanned;
use url::Url;

use crate::infra::secret::Secret;
use crate::sandbox::{Fault, Persona, PkceMode};

/// The commented template `onramp init` writes.
pub const TARGET_TEMPLATE: &str = include_str!("../targets/onramp-target.toml");

/// The built-in targets, by name.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("sandbox", include_str!("../targets/sandbox.toml")),
    (
        "sandbox:bluebutton",
        include_str!("../targets/sandbox-bluebutton.toml"),
    ),
    ("1up-demo", include_str!("../targets/1up-demo.toml")),
    (
        "bluebutton-sandbox",
        include_str!("../targets/bluebutton-sandbox.toml"),
    ),
];

/// What a target file says when it names no scopes: the payer guide's.
const DEFAULT_SCOPES: [&str; 3] = ["patient/*.read", "launch/patient", "openid"];

/// What went wrong with a target.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no built-in target \"{name}\" and no file by that name; built-in targets are: {}",
        built_in_names().join(", ")
    )]
    UnknownTarget { name: String },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{}", missing_message(path, variables))]
    MissingVariables {
        path: PathBuf,
        /// `(variable, key, line)`.
        variables: Vec<(String, String, usize)>,
    },
}

fn missing_message(path: &Path, variables: &[(String, String, usize)]) -> String {
    match variables {
        [(name, key, line)] => format!(
            "{}:{line}: {key}: the environment variable {name} is not set",
            path.display()
        ),
        _ => format!(
            "{}: set the environment variables {}",
            path.display(),
            variables
                .iter()
                .map(|(name, key, line)| format!("{name} (line {line}, {key})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The names of the built-in targets.
/// Old names of built-in targets, and what each is called now.
pub const RENAMED: [(&str, &str); 1] = [("sandbox-bluebutton", "sandbox:bluebutton")];

/// The built-in target `spec` names, under its name today (an old name is followed).
pub fn built_in(spec: &str) -> Option<(&'static str, &'static str)> {
    let spec = renamed(spec).unwrap_or(spec);
    BUILT_IN.iter().find(|(name, _)| *name == spec).copied()
}

/// What an old name of a built-in target is called now, when `spec` is one.
pub fn renamed(spec: &str) -> Option<&'static str> {
    RENAMED
        .iter()
        .find(|(old, _)| *old == spec)
        .map(|(_, new)| *new)
}

pub fn built_in_names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(name, _)| *name).collect()
}

/// Where the target's endpoints are.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoints {
    /// Start the embedded sandbox and use its endpoints.
    Sandbox(SandboxSettings),
    Remote(Box<RemoteEndpoints>),
}

/// A real environment's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteEndpoints {
    pub authorize: Url,
    pub token: Url,
    pub fhir_base: Url,
}

/// How to start the embedded sandbox for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxSettings {
    pub persona: Persona,
    /// The persona's default when `None`.
    pub members: Option<usize>,
    pub eobs_per_member: usize,
    pub faults: Vec<Fault>,
    /// The persona's default when `None`.
    pub pkce: Option<PkceMode>,
    /// How long the sandbox's access tokens live (short ones exercise the refresh).
    pub token_lifetime: Duration,
    /// The app's redirect URI is the sandbox's own `/app/callback`, on the origin of its sign-in
    /// pages, as a payer's own test client has it.
    pub same_origin_callback: bool,
    /// Practitioners in the sandbox's Provider Directory.
    pub directory_size: usize,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            persona: Persona::default(),
            members: None,
            eobs_per_member: 12,
            faults: Vec::new(),
            pkce: None,
            token_lifetime: Duration::from_secs(7200),
            same_origin_callback: false,
            directory_size: crate::sandbox::DEFAULT_DIRECTORY_SIZE,
        }
    }
}

/// Who the payer is and where its onboarding requests go (`[payer]`): data of the target
/// (the built-in 1upHealth targets carry the payer guide's addresses), never of onramp. A
/// target that names no address gets no draft to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PayerContacts {
    /// The payer's name, as its emails and the report address it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where to ask for the app to be synced to the demo environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_sync_to: Option<String>,
    /// Where to send the production-access request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_access_to: Option<String>,
    /// The production-access checklist the payer asks for: a shipped list's name
    /// (`1up-guide`) or a file (relative to the target file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checklist: Option<String>,
}

/// Which features a run executes when `--features` does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureSource {
    /// The shipped features with this sign-in ([`crate::features::shipped`]).
    Shipped(String),
    /// A folder of the user's own.
    Dir(PathBuf),
}

/// The app's client at the target.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub id: String,
    pub secret: Secret,
    /// `None`: onramp listens on a loopback port of its own choosing.
    pub redirect_uri: Option<Url>,
    pub auth: ClientAuth,
}

/// A target, resolved from a built-in name or a file.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// The file it came from (`NAME (built-in)` for a built-in one).
    pub source: PathBuf,
    pub endpoints: Endpoints,
    /// `None` for a sandbox target without `[client]`: the run registers one of its own.
    pub client: Option<ClientSettings>,
    pub scopes: Vec<String>,
    pub pkce: bool,
    /// The member the sign-in types in, for `${member.<name>}`: the first of `members`.
    pub member: BTreeMap<String, String>,
    /// Every member the target lists (`[member]` is one, `[[members]]` several): the first
    /// is the run's; the others sign in for the `@isolation` checks.
    pub members: Vec<Member>,
    pub required_resources: Vec<String>,
    /// The clinical types the `@clinical` features read: `[resources] clinical`, or every
    /// type of US Core's that holds a member's data (the payer's CapabilityStatement then
    /// says which it serves).
    pub clinical_resources: Vec<String>,
    /// Whether the target listed them (then each is required, whatever the payer says).
    pub clinical_listed: bool,
    pub page_size: Option<u32>,
    pub page_cap: usize,
    pub http: HttpSettings,
    /// The longest wait for a page, a field or the redirect.
    pub browser_timeout: Duration,
    pub features: FeatureSource,
    /// How the run validates what it reads.
    pub validation: ValidationSettings,
    /// The payer's onboarding contacts.
    pub payer: PayerContacts,
    /// The items of the payer's production-access checklist (none when the target names no
    /// list).
    pub checklist: crate::checklist::ItemList,
    /// The app under test (`[app]`), driven by the `@app` features.
    pub app: Option<AppSettings>,
    /// The Provider Directory (`[directory]`): the sandbox's own for a sandbox target.
    pub directory: Option<BookSettings>,
    /// The drug formulary (`[formulary]`): the sandbox's own for a sandbox target.
    pub formulary: Option<BookSettings>,
}

/// `[directory]` or `[formulary]`: where a public API of the payer's is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSettings {
    /// `None`: the sandbox's own (a sandbox target).
    pub fhir_base: Option<Url>,
    /// Sent as a bearer token with its reads (the check that the directory is public
    /// never sends it).
    pub token: Option<Secret>,
    /// Read with the member's access token (a formulary offered behind the member's
    /// sign-in).
    pub member_token: bool,
}

impl Target {
    /// The settings of the public API `book`, if the target has it.
    pub fn book(&self, book: crate::payer::public::Book) -> Option<&BookSettings> {
        match book {
            crate::payer::public::Book::Directory => self.directory.as_ref(),
            crate::payer::public::Book::Formulary => self.formulary.as_ref(),
        }
    }
}

/// What onramp fills in an `[app]` value when the run starts: a free loopback port for the
/// app, and the target's endpoints (the sandbox's are known only then).
pub const APP_PLACEHOLDERS: [&str; 4] = [
    "app.port",
    "target.authorize",
    "target.token",
    "target.fhir_base",
];

/// The app under test (`[app]`): onramp plays the member in it, and the app does its own
/// OAuth, so onramp needs none of its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// Where a member starts (http or https, loopback included); may hold the
    /// [`APP_PLACEHOLDERS`].
    pub url: String,
    /// What the report and the recording call the app.
    pub name: String,
    /// How long the app may take for each thing asked of it: to answer, to come back from
    /// the payer, to show the data.
    pub timeout: Duration,
    /// The text of the link or button that starts connecting to the health plan
    /// (`${app.connect}` in the features).
    pub connect: Option<String>,
    /// A command that starts the app (program and arguments, run in [`AppSettings::dir`]),
    /// stopped when the run ends; none when the app is already running.
    pub command: Vec<String>,
    /// Environment for the command, values with the [`APP_PLACEHOLDERS`].
    pub env: BTreeMap<String, String>,
    /// The folder of the target file: where the command runs.
    pub dir: PathBuf,
}

/// How long the app may take for each thing asked of it, unless `[app] timeout` says.
pub const APP_TIMEOUT: Duration = Duration::from_secs(30);

/// `[validation]`: the tiers and the profiles every resource read is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationSettings {
    pub tier: crate::validate::Tier,
    /// Canonical URLs applied to every resource of their type, declared or not. By
    /// default, the CARIN Blue Button 2.0.0 profiles its CapabilityStatement names for the
    /// required types; `profiles = []` applies none.
    pub profiles: Vec<String>,
    /// IG packages loaded for the profile tier (files, or shipped `name@version`); they
    /// are loaded for the whole process when the target is read.
    pub igs: Vec<String>,
    /// What a must-support element no resource carries is: a warning (the default, as
    /// Inferno skips), a failure, or not counted at all.
    pub must_support: MustSupportLevel,
}

/// `[validation] must_support`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MustSupportLevel {
    #[default]
    Warn,
    Fail,
    Off,
}

impl ValidationSettings {
    /// The US Core profiles its CapabilityStatement supports for `types`.
    pub fn us_core_defaults(types: &[String]) -> Vec<String> {
        let mut urls: Vec<String> = types
            .iter()
            .flat_map(|t| crate::payer::clinical::profiles(t))
            .collect();
        urls.sort();
        urls.dedup();
        urls
    }

    /// The CARIN profiles the IG's CapabilityStatement supports for `types`.
    pub fn carin_defaults(types: &[String]) -> Vec<String> {
        use crate::validate::catalog::{CARIN, Catalog};
        let Some((carin, _)) = Catalog::global().ig(CARIN) else {
            return Vec::new();
        };
        let supported = &carin.supported;
        let mut urls: Vec<String> = types
            .iter()
            .filter_map(|t| supported.get(t.as_str()))
            .flat_map(|urls| urls.iter().map(|u| u.to_string()))
            .collect();
        urls.sort();
        urls.dedup();
        urls
    }
}

impl Target {
    /// Resolve `--target`: a built-in name (the sandbox when `None`) or a TOML file.
    pub fn resolve(spec: Option<&str>) -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let spec = spec.unwrap_or("sandbox");
        if let Some((name, text)) = built_in(spec) {
            return Self::from_toml(text, Path::new(&format!("{name} (built-in)")), env);
        }
        let path = Path::new(spec);
        if path.is_file() {
            return Self::from_file(path);
        }
        Err(ConfigError::UnknownTarget {
            name: spec.to_owned(),
        })
    }

    /// Read a TOML target file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
            what: "target file",
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path, |name| std::env::var(name).ok())
    }

    /// Parse a TOML target, expanding `${VAR}` with `env`.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut file: TargetFile = toml::from_str(text).map_err(|e| FileError::Invalid {
            path: path.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
        // A sandbox target says only what differs from the built-in target of its persona.
        if let Some(sandbox) = &file.sandbox {
            let persona = sandbox.persona.as_ref().map_or_else(
                || Persona::default().name().to_owned(),
                |p| p.get_ref().clone(),
            );
            if let Some(base) = sandbox_preset(&persona) {
                file.inherit(base);
            }
        }
        let reader = Reader {
            text,
            path,
            env: &env,
            missing: RefCell::default(),
        };
        let target = reader.resolve(file);
        let missing = reader.missing.into_inner();
        if !missing.is_empty() {
            return Err(ConfigError::MissingVariables {
                path: path.to_owned(),
                variables: missing,
            });
        }
        target
    }

    /// Scopes as one space-separated string.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    /// The values of every member that are secrets (under a name saying password or
    /// secret).
    pub fn member_secrets(&self) -> impl Iterator<Item = &str> {
        self.members.iter().flat_map(|m| {
            m.values
                .iter()
                .filter(|(name, _)| is_secret_name(name))
                .map(|(_, value)| value.as_str())
        })
    }
}

/// Whether a member value under `name` is a secret.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password") || name.contains("secret")
}

/// One member a target lists: what the sign-in types in for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// How the report names them: `label` in `[[members]]`, else `member N`.
    pub label: String,
    /// `${member.<name>}` values.
    pub values: BTreeMap<String, String>,
}

/// Reads one file's values, remembering every environment variable that is missing.
struct Reader<'a> {
    text: &'a str,
    path: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
    missing: RefCell<Vec<(String, String, usize)>>,
}

impl Reader<'_> {
    fn invalid(&self, span: Option<std::ops::Range<usize>>, message: String) -> ConfigError {
        ConfigError::File(FileError::Invalid {
            path: self.path.to_owned(),
            line: span.map(|s| line_of(self.text, s.start)),
            message,
        })
    }

    /// A string value with `${VAR}` expanded; a missing variable is remembered (and the
    /// value left empty) so that all of them are reported together.
    fn string(&self, key: &str, value: &Spanned<String>) -> Result<String, ConfigError> {
        let line = line_of(self.text, value.span().start);
        crate::infra::env::expand(value.get_ref(), self.env, &mut |name| {
            self.missing
                .borrow_mut()
                .push((name.to_owned(), key.to_owned(), line));
        })
        .map_err(|error| self.invalid(Some(value.span()), format!("{key}: {error}")))
    }

    /// The members: `[member]` or `[[members]]` (not both), each value expanded.
    fn members(
        &self,
        one: Option<MemberFile>,
        several: Option<Spanned<Vec<MemberFile>>>,
    ) -> Result<Vec<Member>, ConfigError> {
        let tables: Vec<(String, MemberFile)> = match (one, several) {
            (Some(_), Some(several)) => {
                return Err(self.invalid(
                    Some(several.span()),
                    "[[members]]: the file also has [member]; list every member under [[members]] (the first is the run's) and delete [member]".into(),
                ));
            }
            (Some(one), None) => vec![("member".into(), one)],
            (None, Some(several)) => {
                if several.get_ref().is_empty() {
                    return Err(self.invalid(
                        Some(several.span()),
                        "members: the list is empty; give at least one member".into(),
                    ));
                }
                several
                    .into_inner()
                    .into_iter()
                    .enumerate()
                    .map(|(i, table)| (format!("members[{i}]"), table))
                    .collect()
            }
            (None, None) => Vec::new(),
        };
        let mut members: Vec<Member> = Vec::new();
        for (index, (key, table)) in tables.into_iter().enumerate() {
            let mut label = format!("member {}", index + 1);
            let mut values = BTreeMap::new();
            for (name, value) in table {
                let text = self.string(&format!("{key}.{name}"), &value)?;
                if name == "label" {
                    label = text;
                } else {
                    values.insert(name, text);
                }
            }
            if let Some(same) = members.iter().find(|m| m.values == values) {
                return Err(self.invalid(
                    None,
                    format!(
                        "{key}: {label} types in exactly what {} does; each member must be a different person",
                        same.label
                    ),
                ));
            }
            members.push(Member { label, values });
        }
        Ok(members)
    }

    fn url(&self, key: &str, value: &Spanned<String>) -> Result<Url, ConfigError> {
        let text = self.string(key, value)?;
        if text.is_empty() && !self.missing.borrow().is_empty() {
            // Reported with the missing variables.
            return Url::parse("http://missing.invalid/")
                .map_err(|e| self.invalid(None, e.to_string()));
        }
        let parsed = Url::parse(&text).map_err(|e| {
            self.invalid(
                Some(value.span()),
                format!("{key}: not an absolute URL ({e})"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(self.invalid(
                Some(value.span()),
                format!("{key}: must be an http or https URL"),
            ));
        }
        Ok(parsed)
    }

    fn duration(&self, key: &str, value: &Spanned<String>) -> Result<Duration, ConfigError> {
        let text = self.string(key, value)?;
        parse_duration(&text).ok_or_else(|| {
            self.invalid(
                Some(value.span()),
                format!("{key}: write a duration such as \"30s\" or \"500ms\""),
            )
        })
    }

    fn sandbox(&self, s: SandboxFile) -> Result<SandboxSettings, ConfigError> {
        let defaults = SandboxSettings::default();
        let persona = match &s.persona {
            Some(name) => name
                .get_ref()
                .parse::<Persona>()
                .map_err(|e| self.invalid(Some(name.span()), format!("sandbox.persona: {e}")))?,
            None => defaults.persona,
        };
        let mut faults = Vec::new();
        for spec in s.faults.unwrap_or_default() {
            let fault = spec
                .get_ref()
                .parse::<Fault>()
                .map_err(|e| self.invalid(Some(spec.span()), format!("sandbox.faults: {e}")))?;
            faults.push(fault);
        }
        if let Some(members) = &s.members
            && *members.get_ref() == 0
        {
            return Err(self.invalid(
                Some(members.span()),
                "sandbox.members: a plan needs at least one member".into(),
            ));
        }
        Ok(SandboxSettings {
            persona,
            members: s.members.map(Spanned::into_inner),
            eobs_per_member: s.eobs_per_member.unwrap_or(defaults.eobs_per_member),
            faults,
            pkce: s.pkce,
            token_lifetime: s
                .token_lifetime
                .as_ref()
                .map(|t| self.duration("sandbox.token_lifetime", t))
                .transpose()?
                .unwrap_or(defaults.token_lifetime),
            same_origin_callback: s.same_origin_callback.unwrap_or(false),
            directory_size: s.directory_size.unwrap_or(defaults.directory_size),
        })
    }

    /// `[directory]` or `[formulary]` (`key`): a sandbox target has its sandbox's own unless
    /// it names another; a remote target has one only where it says where.
    fn book(
        &self,
        key: &str,
        file: Option<BookFile>,
        sandbox: bool,
    ) -> Result<Option<BookSettings>, ConfigError> {
        let Some(file) = file else {
            return Ok(sandbox.then_some(BookSettings {
                fhir_base: None,
                token: None,
                member_token: false,
            }));
        };
        let fhir_base = match &file.fhir_base {
            Some(base) => Some(self.url(&format!("{key}.fhir_base"), base)?),
            None if sandbox => None,
            None => {
                return Err(self.invalid(
                    None,
                    format!("[{key}] needs fhir_base: where the payer serves it"),
                ));
            }
        };
        let token = file
            .token
            .as_ref()
            .map(|t| self.string(&format!("{key}.token"), t).map(Secret::new))
            .transpose()?;
        let member_token = file.member_token.unwrap_or(false);
        if member_token && token.is_some() {
            return Err(self.invalid(
                file.token.as_ref().map(Spanned::span),
                format!("[{key}] has a token and member_token = true: choose one"),
            ));
        }
        Ok(Some(BookSettings {
            fhir_base,
            token,
            member_token,
        }))
    }

    fn resolve(&self, file: TargetFile) -> Result<Target, ConfigError> {
        let endpoints = self.endpoints(file.endpoints, file.sandbox)?;
        let sandbox_persona = match &endpoints {
            Endpoints::Sandbox(settings) => Some(settings.persona),
            Endpoints::Remote(_) => None,
        };
        let client = self.client(file.client, sandbox_persona.is_none())?;
        let features = self.feature_source(&file.features, &file.sign_in, sandbox_persona)?;
        let oauth = file.oauth.unwrap_or_default();
        let members = self.members(file.member, file.members)?;
        let member = members
            .first()
            .map(|m| m.values.clone())
            .unwrap_or_default();
        let resources = file.resources.unwrap_or_default();
        let required_resources = self.required(resources.required)?;
        let validation_file = file.validation.unwrap_or_default();
        let igs = self.igs(&validation_file)?;
        let clinical_listed = resources.clinical.is_some();
        let clinical_resources = self.clinical(resources.clinical, &required_resources)?;
        let http = self.http(file.http.unwrap_or_default())?;
        let browser_timeout = file
            .browser
            .and_then(|b| b.timeout)
            .as_ref()
            .map(|t| self.duration("browser.timeout", t))
            .transpose()?
            .unwrap_or(crate::browser::BrowserOptions::default().timeout);
        let payer_file = file.payer.unwrap_or_default();
        let checklist = self.checklist(payer_file.checklist.as_ref())?;
        let payer = self.payer(payer_file)?;
        let validation = self.validation(
            validation_file,
            igs,
            &required_resources,
            &clinical_resources,
        )?;
        let app = file.app.map(|app| self.app(app)).transpose()?;
        let sandbox = sandbox_persona.is_some();
        let directory = self.book("directory", file.directory, sandbox)?;
        let formulary = self.book("formulary", file.formulary, sandbox)?;
        Ok(Target {
            name: file.name.unwrap_or_else(|| {
                self.path
                    .file_stem()
                    .map_or_else(|| "target".into(), |s| s.to_string_lossy().into_owned())
            }),
            source: self.path.to_owned(),
            endpoints,
            client,
            scopes: oauth
                .scopes
                .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()),
            pkce: oauth.pkce.unwrap_or(sandbox_persona.is_some()),
            member,
            members,
            required_resources,
            clinical_resources,
            clinical_listed,
            page_size: resources.page_size,
            page_cap: resources.page_cap.unwrap_or(1000).max(1),
            http,
            browser_timeout,
            features,
            validation,
            payer,
            checklist,
            app,
            directory,
            formulary,
        })
    }

    /// `[app]`: its URL an http(s) URL once the placeholders are filled, its command a
    /// program and arguments, every value's `${VAR}` expanded (the placeholders kept).
    fn app(&self, file: AppFile) -> Result<AppSettings, ConfigError> {
        let kept = |name: &str| name.starts_with("app.") || name.starts_with("target.");
        let value = |key: &str, value: &Spanned<String>| -> Result<String, ConfigError> {
            let line = line_of(self.text, value.span().start);
            let text = crate::infra::env::expand_keeping(
                value.get_ref(),
                self.env,
                &mut |name| {
                    self.missing
                        .borrow_mut()
                        .push((name.to_owned(), key.to_owned(), line));
                },
                &kept,
            )
            .map_err(|error| self.invalid(Some(value.span()), format!("{key}: {error}")))?;
            if let Some(unknown) = unknown_placeholder(&text) {
                return Err(self.invalid(
                    Some(value.span()),
                    format!(
                        "{key}: onramp fills no ${{{unknown}}}; it fills {}",
                        APP_PLACEHOLDERS.map(|p| format!("${{{p}}}")).join(", ")
                    ),
                ));
            }
            Ok(text)
        };
        let url = value("app.url", &file.url)?;
        let sample = fill_app_placeholders(&url, 8080, &|_| "http://payer.example/".into());
        match Url::parse(&sample) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            Ok(_) => {
                return Err(self.invalid(
                    Some(file.url.span()),
                    "app.url: must be an http or https URL".into(),
                ));
            }
            Err(e) => {
                return Err(self.invalid(
                    Some(file.url.span()),
                    format!("app.url: not an absolute URL ({e})"),
                ));
            }
        }
        let command = match file.command {
            None => Vec::new(),
            Some(command) if command.get_ref().is_empty() => {
                return Err(self.invalid(
                    Some(command.span()),
                    "app.command: give the program and its arguments, as [\"python3\", \"app.py\"]"
                        .into(),
                ));
            }
            Some(command) => command
                .into_inner()
                .iter()
                .map(|part| value("app.command", part))
                .collect::<Result<_, _>>()?,
        };
        let mut env = BTreeMap::new();
        for (name, text) in file.env.unwrap_or_default() {
            env.insert(name.clone(), value(&format!("app.env.{name}"), &text)?);
        }
        if command.is_empty() && !env.is_empty() {
            return Err(self.invalid(
                None,
                "app.env: there is no app.command to give it to".into(),
            ));
        }
        Ok(AppSettings {
            name: match &file.name {
                Some(name) => self.string("app.name", name)?,
                None => "the app".into(),
            },
            url,
            timeout: file
                .timeout
                .as_ref()
                .map(|t| self.duration("app.timeout", t))
                .transpose()?
                .unwrap_or(APP_TIMEOUT),
            connect: file
                .connect
                .as_ref()
                .map(|c| self.string("app.connect", c))
                .transpose()?,
            command,
            env,
            dir: self
                .path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_owned),
        })
    }

    /// `[endpoints]` (a remote target) or `[sandbox]`, exactly one.
    fn endpoints(
        &self,
        endpoints: Option<EndpointsFile>,
        sandbox: Option<SandboxFile>,
    ) -> Result<Endpoints, ConfigError> {
        Ok(match (endpoints, sandbox) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    None,
                    "a target has [endpoints] or [sandbox], not both".into(),
                ));
            }
            (None, None) => {
                return Err(self.invalid(
                    None,
                    "a target needs [endpoints] (authorize, token, fhir_base) or [sandbox]".into(),
                ));
            }
            (Some(e), None) => Endpoints::Remote(Box::new(RemoteEndpoints {
                authorize: self.url("endpoints.authorize", &e.authorize)?,
                token: self.url("endpoints.token", &e.token)?,
                fhir_base: self.url("endpoints.fhir_base", &e.fhir_base)?,
            })),
            (None, Some(s)) => Endpoints::Sandbox(self.sandbox(s)?),
        })
    }

    /// `[client]`: required, with its redirect URI, for a remote target.
    fn client(
        &self,
        client: Option<ClientFile>,
        remote: bool,
    ) -> Result<Option<ClientSettings>, ConfigError> {
        let client = match client {
            Some(client) => Some(ClientSettings {
                id: self.string("client.id", &client.id)?,
                secret: Secret::new(self.string("client.secret", &client.secret)?),
                redirect_uri: client
                    .redirect_uri
                    .as_ref()
                    .map(|r| self.url("client.redirect_uri", r))
                    .transpose()?,
                auth: client.auth.unwrap_or_default(),
            }),
            None if remote => {
                return Err(self.invalid(
                    None,
                    "[client] with id, secret and redirect_uri is required for a remote target"
                        .into(),
                ));
            }
            None => None,
        };
        if remote && client.as_ref().is_some_and(|c| c.redirect_uri.is_none()) {
            return Err(self.invalid(
                None,
                "client.redirect_uri is required: the redirect URI registered for your client"
                    .into(),
            ));
        }
        Ok(client)
    }

    /// The features the target runs: its own folder, a shipped sign-in by name, or the
    /// one its sandbox persona (or the default) uses.
    fn feature_source(
        &self,
        features: &Option<Spanned<String>>,
        sign_in: &Option<Spanned<String>>,
        sandbox_persona: Option<Persona>,
    ) -> Result<FeatureSource, ConfigError> {
        Ok(match (features, sign_in) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    None,
                    "a target names its own `features` folder or a shipped `sign_in`, not both"
                        .into(),
                ));
            }
            (Some(dir), None) => {
                let dir = self.string("features", dir)?;
                let base = self.path.parent().unwrap_or_else(|| Path::new("."));
                FeatureSource::Dir(base.join(dir))
            }
            (None, Some(name)) => {
                let name_text = self.string("sign_in", name)?;
                if crate::features::shipped::set(&name_text).is_none() {
                    return Err(self.invalid(
                        Some(name.span()),
                        format!(
                            "sign_in: no shipped sign-in is called \"{name_text}\"; the shipped ones are: {}",
                            crate::features::shipped::sign_ins().join(", ")
                        ),
                    ));
                }
                FeatureSource::Shipped(name_text)
            }
            (None, None) => FeatureSource::Shipped(
                sandbox_persona
                    .map_or(crate::features::shipped::DEFAULT_SIGN_IN, Persona::name)
                    .to_owned(),
            ),
        })
    }

    /// `[resources] required`: R4 resource types, or the types every payer serves.
    fn required(&self, required: Option<Vec<Spanned<String>>>) -> Result<Vec<String>, ConfigError> {
        Ok(match required {
            Some(required) => {
                let mut out = Vec::new();
                for kind in &required {
                    let text = self.string("resources.required", kind)?;
                    if !crate::validate::Registry::global().is_resource_type(&text) {
                        return Err(self.invalid(
                            Some(kind.span()),
                            format!("resources.required: \"{text}\" is not an R4 resource type"),
                        ));
                    }
                    out.push(text);
                }
                out
            }
            // What a target file says when it names none: the types every payer serves.
            None => crate::payer::access::REQUIRED_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        })
    }

    /// `[resources] clinical`: R4 types, none of them required ones; by default US Core's
    /// types that hold a member's data, less the required ones.
    fn clinical(
        &self,
        clinical: Option<Vec<Spanned<String>>>,
        required: &[String],
    ) -> Result<Vec<String>, ConfigError> {
        let Some(listed) = clinical else {
            return Ok(crate::payer::clinical::types()
                .into_iter()
                .filter(|kind| !required.contains(kind))
                .collect());
        };
        let mut out = Vec::new();
        for kind in listed {
            let text = &self.string("resources.clinical", &kind)?;
            if !crate::validate::Registry::global().is_resource_type(text) {
                return Err(self.invalid(
                    Some(kind.span()),
                    format!("resources.clinical: \"{text}\" is not an R4 resource type"),
                ));
            }
            if required.iter().any(|r| r == text) {
                return Err(self.invalid(
                    Some(kind.span()),
                    format!(
                        "resources.clinical: {text} is also in resources.required; name each type once"
                    ),
                ));
            }
            if !out.iter().any(|o| o == text) {
                out.push(text.to_owned());
            }
        }
        Ok(out)
    }

    /// `[http]`: the timeouts, retries and the largest answer, each with its default.
    fn http(&self, http_file: HttpFile) -> Result<HttpSettings, ConfigError> {
        let defaults = HttpSettings::default();
        Ok(HttpSettings {
            timeout: http_file
                .timeout
                .as_ref()
                .map(|t| self.duration("http.timeout", t))
                .transpose()?
                .unwrap_or(defaults.timeout),
            connect_timeout: http_file
                .connect_timeout
                .as_ref()
                .map(|t| self.duration("http.connect_timeout", t))
                .transpose()?
                .unwrap_or(defaults.connect_timeout),
            retries: http_file.retries.map_or(defaults.retries, |r| r.min(10)),
            max_response_bytes: http_file
                .max_response_mib
                .map_or(defaults.max_response_bytes, |mib| mib.max(1) << 20),
        })
    }

    /// `[payer] checklist`: a shipped list by name, or a list file beside the target file.
    fn checklist(
        &self,
        named: Option<&Spanned<String>>,
    ) -> Result<crate::checklist::ItemList, ConfigError> {
        let Some(named) = named else {
            return Ok(crate::checklist::ItemList::default());
        };
        let name = self.string("payer.checklist", named)?;
        if let Some(list) = crate::checklist::ItemList::shipped(&name) {
            return Ok(list);
        }
        let path = self
            .path
            .parent()
            .map_or_else(|| PathBuf::from(&name), |dir| dir.join(&name));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid(
                Some(named.span()),
                format!(
                    "payer.checklist: \"{name}\" is no shipped list ({}) and {} cannot be read ({e})",
                    crate::checklist::ItemList::shipped_names().join(", "),
                    path.display()
                ),
            )
        })?;
        crate::checklist::ItemList::parse(&text).map_err(|e| {
            ConfigError::File(FileError::Invalid {
                path: path.clone(),
                line: None,
                message: format!("the checklist named by payer.checklist: {e}"),
            })
        })
    }

    /// `[payer]`: the name and the onboarding addresses, each address well-formed.
    fn payer(&self, file: PayerFile) -> Result<PayerContacts, ConfigError> {
        let address =
            |key: &str, value: &Option<Spanned<String>>| -> Result<Option<String>, ConfigError> {
                let Some(value) = value else { return Ok(None) };
                let text = self.string(key, value)?;
                if text.trim().is_empty() {
                    return Ok(None);
                }
                text.trim()
                    .parse::<email_address::EmailAddress>()
                    .map(|a| Some(a.to_string()))
                    .map_err(|e| {
                        self.invalid(
                            Some(value.span()),
                            format!("{key}: {text:?} is not an email address ({e})"),
                        )
                    })
            };
        Ok(PayerContacts {
            name: file
                .name
                .as_ref()
                .map(|n| self.string("payer.name", n))
                .transpose()?
                .filter(|n| !n.trim().is_empty()),
            sandbox_sync_to: address("payer.sandbox_sync_to", &file.sandbox_sync_to)?,
            production_access_to: address(
                "payer.production_access_to",
                &file.production_access_to,
            )?,
            checklist: file
                .checklist
                .as_ref()
                .map(|c| self.string("payer.checklist", c))
                .transpose()?,
        })
    }

    /// `[validation] igs`: each package loaded for the whole process, before anything asks
    /// which US Core is in use.
    fn igs(&self, file: &ValidationFile) -> Result<Vec<String>, ConfigError> {
        let mut igs = Vec::new();
        for ig in file.igs.iter().flatten() {
            let text = self.string("validation.igs", ig)?;
            let base = self.path.parent().unwrap_or_else(|| Path::new("."));
            let relative = base.join(&text);
            let item = if relative.exists() {
                relative.display().to_string()
            } else {
                text
            };
            crate::validate::load_igs(std::slice::from_ref(&item), None).map_err(|why| {
                self.invalid(
                    Some(ig.span()),
                    format!(
                        "validation.igs: {why}. Give a FHIR package file (relative to this \
                         file) or a shipped package as name@version"
                    ),
                )
            })?;
            igs.push(item);
        }
        Ok(igs)
    }

    fn validation(
        &self,
        file: ValidationFile,
        igs: Vec<String>,
        required: &[String],
        clinical: &[String],
    ) -> Result<ValidationSettings, ConfigError> {
        use crate::validate::Tier;
        let tier = match &file.tier {
            None => Tier::Profile,
            Some(tier) => match tier.get_ref().as_str() {
                "schema" => Tier::Schema,
                "structure" => Tier::Structure,
                "profile" => Tier::Profile,
                other => {
                    return Err(self.invalid(
                        Some(tier.span()),
                        format!("validation.tier: \"{other}\" is not a tier; use schema, structure or profile"),
                    ));
                }
            },
        };
        let explicit = file.profiles.as_ref().is_some_and(|p| !p.is_empty());
        let profiles = match file.profiles {
            None if tier != Tier::Profile => Vec::new(),
            None => {
                let mut urls = ValidationSettings::carin_defaults(required);
                urls.extend(ValidationSettings::us_core_defaults(clinical));
                urls
            }
            Some(list) => {
                let known = crate::validate::catalog::Catalog::global();
                let mut urls = Vec::new();
                for url in list {
                    let text = self.string("validation.profiles", &url)?;
                    if known.find(&text).is_none() {
                        return Err(self.invalid(
                            Some(url.span()),
                            format!(
                                "validation.profiles: onramp has no profile {text}; it has {}",
                                known.describe()
                            ),
                        ));
                    }
                    urls.push(text);
                }
                urls
            }
        };
        if tier != Tier::Profile && explicit {
            return Err(self.invalid(
                file.tier.as_ref().map(|t| t.span()),
                "validation: profiles need tier = \"profile\"".into(),
            ));
        }
        let must_support = match &file.must_support {
            None => MustSupportLevel::Warn,
            Some(level) => match self.string("validation.must_support", level)?.as_str() {
                "warn" => MustSupportLevel::Warn,
                "fail" => MustSupportLevel::Fail,
                "off" => MustSupportLevel::Off,
                other => {
                    return Err(self.invalid(
                        Some(level.span()),
                        format!(
                            "validation.must_support: \"{other}\" is not a level; use warn (the default), fail or off"
                        ),
                    ));
                }
            },
        };
        Ok(ValidationSettings {
            tier,
            profiles,
            igs,
            must_support,
        })
    }
}

/// The built-in target that starts the sandbox as `persona`.
/// The first `${app.…}` or `${target.…}` in `text` onramp does not fill.
fn unknown_placeholder(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = &after[..end];
        if !APP_PLACEHOLDERS.contains(&name) {
            return Some(name.to_owned());
        }
        rest = &after[end + 1..];
    }
    None
}

/// `text` with the [`APP_PLACEHOLDERS`] filled: the app's `port`, and `endpoint("authorize")`
/// (`token`, `fhir_base`) for the target's.
pub fn fill_app_placeholders(text: &str, port: u16, endpoint: &dyn Fn(&str) -> String) -> String {
    let mut out = text.replace("${app.port}", &port.to_string());
    for name in ["authorize", "token", "fhir_base"] {
        let placeholder = format!("${{target.{name}}}");
        if out.contains(&placeholder) {
            out = out.replace(&placeholder, &endpoint(name));
        }
    }
    out
}

fn sandbox_preset(persona: &str) -> Option<TargetFile> {
    BUILT_IN.iter().find_map(|(_, text)| {
        let preset: TargetFile = toml::from_str(text).ok()?;
        let name = preset.sandbox.as_ref()?.persona.as_ref()?.get_ref().clone();
        (name == persona).then_some(preset)
    })
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// `300ms`, `30s`, `2m`, `1m 30s` (humantime's syntax), above zero and at most an hour.
pub fn parse_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim())
        .ok()
        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600))
}

// ---- the file format ----------------------------------------------------------------------

/// A member's values as a file says them.
type MemberFile = BTreeMap<String, Spanned<String>>;

/// A target file as serde reads it, before anything is checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    name: Option<String>,
    sign_in: Option<Spanned<String>>,
    features: Option<Spanned<String>>,
    endpoints: Option<EndpointsFile>,
    sandbox: Option<SandboxFile>,
    client: Option<ClientFile>,
    oauth: Option<OauthFile>,
    member: Option<BTreeMap<String, Spanned<String>>>,
    members: Option<Spanned<Vec<MemberFile>>>,
    resources: Option<ResourcesFile>,
    http: Option<HttpFile>,
    browser: Option<BrowserFile>,
    validation: Option<ValidationFile>,
    payer: Option<PayerFile>,
    app: Option<AppFile>,
    directory: Option<BookFile>,
    formulary: Option<BookFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile {
    fhir_base: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    member_token: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    url: Spanned<String>,
    name: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    connect: Option<Spanned<String>>,
    command: Option<Spanned<Vec<Spanned<String>>>>,
    env: Option<BTreeMap<String, Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayerFile {
    name: Option<Spanned<String>>,
    sandbox_sync_to: Option<Spanned<String>>,
    production_access_to: Option<Spanned<String>>,
    checklist: Option<Spanned<String>>,
}

impl TargetFile {
    /// Take from `base` what this file does not say: the client, the member, the OAuth
    /// settings and the required types.
    fn inherit(&mut self, base: TargetFile) {
        if self.client.is_none() {
            self.client = base.client;
        }
        if self.member.is_none() && self.members.is_none() {
            self.member = base.member;
            self.members = base.members;
        }
        let (oauth, base_oauth) = (
            self.oauth.get_or_insert_with(OauthFile::default),
            base.oauth.unwrap_or_default(),
        );
        oauth.scopes = oauth.scopes.take().or(base_oauth.scopes);
        oauth.pkce = oauth.pkce.or(base_oauth.pkce);
        let (resources, base_resources) = (
            self.resources.get_or_insert_with(ResourcesFile::default),
            base.resources.unwrap_or_default(),
        );
        resources.required = resources.required.take().or(base_resources.required);
        if self.payer.is_none() {
            self.payer = base.payer;
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointsFile {
    authorize: Spanned<String>,
    token: Spanned<String>,
    fhir_base: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxFile {
    persona: Option<Spanned<String>>,
    members: Option<Spanned<usize>>,
    eobs_per_member: Option<usize>,
    faults: Option<Vec<Spanned<String>>>,
    pkce: Option<PkceMode>,
    token_lifetime: Option<Spanned<String>>,
    same_origin_callback: Option<bool>,
    directory_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    id: Spanned<String>,
    secret: Spanned<String>,
    redirect_uri: Option<Spanned<String>>,
    auth: Option<ClientAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OauthFile {
    scopes: Option<Vec<String>>,
    pkce: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesFile {
    required: Option<Vec<Spanned<String>>>,
    clinical: Option<Vec<Spanned<String>>>,
    page_size: Option<u32>,
    page_cap: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    timeout: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    retries: Option<u32>,
    max_response_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BrowserFile {
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidationFile {
    tier: Option<Spanned<String>>,
    profiles: Option<Vec<Spanned<String>>>,
    igs: Option<Vec<Spanned<String>>>,
    must_support: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ACME_ID" => Some("acme-client".into()),
            "ACME_SECRET" => Some("acme-secret-value".into()),
            _ => None,
        }
    }

    const REMOTE: &str = r#"
name = "Acme demo"

[endpoints]
authorize = "https://auth.acme.example/oauth2/authorize/test"
token = "https://auth.acme.example/oauth2/token"
fhir_base = "https://api.acme.example/r4"

[client]
id = "${ACME_ID}"
secret = "${ACME_SECRET}"
redirect_uri = "http://localhost:8765/callback"
auth = "basic"
"#;

    /// Every string may use `${VAR}`, as the README says: the resource types and the
    /// durations too.
    #[test]
    fn resource_types_and_durations_expand_the_environment() {
        let text = format!(
            "{REMOTE}\n[resources]\nrequired = [\"${{KIND:-Coverage}}\"]\nclinical = [\"${{CLINICAL:-Condition}}\"]\n\n[http]\ntimeout = \"${{TIMEOUT:-5s}}\"\n\n[browser]\ntimeout = \"${{TIMEOUT:-5s}}\"\n"
        );
        let target = Target::from_toml(&text, Path::new("acme.toml"), env).expect("valid");
        assert_eq!(target.required_resources, vec!["Coverage".to_owned()]);
        assert_eq!(target.clinical_resources, vec!["Condition".to_owned()]);
        assert_eq!(target.http.timeout, Duration::from_secs(5));
        assert_eq!(target.browser_timeout, Duration::from_secs(5));
    }

    #[test]
    fn a_remote_target_file_resolves_with_environment_secrets() {
        let target = Target::from_toml(REMOTE, Path::new("acme.toml"), env).expect("valid");
        assert_eq!(target.name, "Acme demo");
        let client = target.client.as_ref().expect("a client");
        assert_eq!(client.id, "acme-client");
        assert_eq!(client.secret.expose(), "acme-secret-value");
        assert_eq!(client.auth, ClientAuth::Basic);
        assert_eq!(
            target.features,
            FeatureSource::Shipped(crate::features::shipped::DEFAULT_SIGN_IN.into())
        );
        assert!(!format!("{target:?}").contains("acme-secret-value"));
    }

    #[test]
    fn a_missing_variable_names_the_key_the_line_and_the_variable_but_no_secret() {
        let text = REMOTE.replace("${ACME_SECRET}", "${ACME_MISSING}");
        let error = Target::from_toml(&text, Path::new("acme.toml"), env)
            .expect_err("missing variable")
            .to_string();
        assert_eq!(
            error,
            "acme.toml:11: client.secret: the environment variable ACME_MISSING is not set"
        );
        let text = REMOTE
            .replace("${ACME_SECRET}", "${ACME_MISSING}")
            .replace("${ACME_ID}", "${ACME_ALSO_MISSING}");
        let error = Target::from_toml(&text, Path::new("acme.toml"), env)
            .expect_err("missing variables")
            .to_string();
        assert!(
            error.contains("ACME_ALSO_MISSING (line 10, client.id)")
                && error.contains("ACME_MISSING (line 11, client.secret)"),
            "{error}"
        );
    }

    #[test]
    fn defaults_fill_unset_variables() {
        let text = REMOTE.replace("${ACME_SECRET}", "${ACME_MISSING:-fallback-secret}");
        let target = Target::from_toml(&text, Path::new("acme.toml"), env).expect("valid");
        assert_eq!(
            target.client.expect("client").secret.expose(),
            "fallback-secret"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_point_at_their_line() {
        let text = REMOTE.replace("auth = \"basic\"", "auth = \"basic\"\nscope = \"x\"");
        let error = Target::from_toml(&text, Path::new("t.toml"), env)
            .expect_err("unknown key")
            .to_string();
        assert!(
            error.starts_with("t.toml:14:") && error.contains("scope"),
            "{error}"
        );
        let text = REMOTE.replace("https://api.acme.example/r4", "api.acme.example/r4");
        let error = Target::from_toml(&text, Path::new("t.toml"), env)
            .expect_err("bad URL")
            .to_string();
        assert!(
            error.starts_with("t.toml:7: endpoints.fhir_base"),
            "{error}"
        );
        let error = Target::from_toml(
            &format!("sign_in = \"elsewhere\"\n{REMOTE}"),
            Path::new("t.toml"),
            env,
        )
        .expect_err("unknown sign-in")
        .to_string();
        assert!(error.starts_with("t.toml:1: sign_in"), "{error}");
        let error = Target::from_toml(
            &format!("{REMOTE}\n[validation]\nigs = [\"no-such.tgz\"]\n"),
            Path::new("t.toml"),
            env,
        )
        .expect_err("an IG that is not there")
        .to_string();
        assert!(
            error.contains("validation.igs") && error.contains("no-such.tgz"),
            "{error}"
        );
    }

    #[test]
    fn a_shipped_ig_is_named_by_name_and_version() {
        let target = Target::from_toml(
            &format!("{REMOTE}\n[validation]\nigs = [\"hl7.fhir.us.carin-bb@2.0.0\"]\n"),
            Path::new("t.toml"),
            env,
        )
        .expect("a shipped IG");
        assert_eq!(target.validation.igs, ["hl7.fhir.us.carin-bb@2.0.0"]);
    }

    #[test]
    fn the_template_is_a_valid_sandbox_target_with_its_own_features() {
        let target = Target::from_toml(TARGET_TEMPLATE, Path::new("dir/onramp-target.toml"), env)
            .expect("template parses");
        assert!(matches!(target.endpoints, Endpoints::Sandbox(_)));
        assert_eq!(
            target.features,
            FeatureSource::Dir(PathBuf::from("dir/features"))
        );
    }

    #[test]
    fn every_built_in_target_resolves_and_remote_ones_list_what_to_set() {
        for (name, text) in BUILT_IN {
            let resolved = Target::from_toml(text, Path::new(name), |_| None);
            match name {
                "sandbox" | "sandbox:bluebutton" => {
                    let target = resolved.unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(target.name, name);
                }
                _ => {
                    let error = resolved.expect_err("credentials needed").to_string();
                    assert!(
                        error.contains("CLIENT_ID")
                            && error.contains("CLIENT_SECRET")
                            && error.contains("REDIRECT_URI"),
                        "{error}"
                    );
                    assert!(
                        !error.contains("USERNAME"),
                        "defaults fill the member: {error}"
                    );
                }
            }
        }
        let target = Target::resolve(None).expect("the default");
        assert_eq!(target.name, "sandbox");
        assert!(target.client.is_none() && target.pkce);
        assert_eq!(target.required_resources.len(), 6);
        let bluebutton = Target::resolve(Some("sandbox:bluebutton")).expect("built in");
        assert_eq!(
            bluebutton.features,
            FeatureSource::Shipped("bluebutton".into())
        );
        assert_eq!(
            bluebutton.member_secrets().collect::<Vec<_>>(),
            vec!["PW00000!", "PW00001!"],
            "every member's password is a secret"
        );
    }

    #[test]
    fn members_are_one_or_several_never_both_and_never_twice_the_same() {
        let two = "[sandbox]\n[[members]]\nlabel = \"Ann\"\nusername = \"a\"\n[[members]]\nusername = \"${WHO}\"\n";
        let target = Target::from_toml(two, Path::new("t.toml"), |name| {
            (name == "WHO").then(|| "b".to_owned())
        })
        .expect("valid");
        let labels: Vec<&str> = target.members.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["Ann", "member 2"]);
        assert_eq!(target.member.get("username").map(String::as_str), Some("a"));
        assert!(
            !target.members[0].values.contains_key("label"),
            "label is no placeholder"
        );
        assert_eq!(
            target.members[1].values.get("username").map(String::as_str),
            Some("b")
        );

        let both = "[sandbox]\n[member]\nusername = \"a\"\n[[members]]\nusername = \"b\"\n";
        let error = Target::from_toml(both, Path::new("t.toml"), env).expect_err("both");
        assert!(error.to_string().contains("also has [member]"), "{error}");
        let twice = "[sandbox]\n[[members]]\nusername = \"a\"\n[[members]]\nlabel = \"again\"\nusername = \"a\"\n";
        let error = Target::from_toml(twice, Path::new("t.toml"), env).expect_err("twice");
        assert!(
            error
                .to_string()
                .contains("again types in exactly what member 1 does"),
            "{error}"
        );
        let none = "members = []\n[sandbox]\n";
        assert!(Target::from_toml(none, Path::new("t.toml"), env).is_err());
        // A sandbox file that names no member takes its persona's two.
        let bare = Target::from_toml("[sandbox]\n", Path::new("t.toml"), env).expect("valid");
        assert_eq!(bare.members.len(), 2);
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
    }

    /// `[app]`: `${VAR}` expanded now, `${app.port}` and `${target.…}` kept for the run,
    /// any other `${app.…}` refused at its line; the command runs in the target's folder.
    #[test]
    fn an_app_keeps_its_placeholders_for_the_run() {
        let text = "[sandbox]\n[app]\nurl = \"http://127.0.0.1:${app.port}/\"\ncommand = [\"python3\", \"app.py\"]\n[app.env]\nFHIR_BASE = \"${target.fhir_base}\"\nCLIENT_ID = \"${ACME_ID}\"\n";
        let target = Target::from_toml(text, Path::new("apps/target.toml"), env).expect("loads");
        let app = target.app.expect("an app");
        assert_eq!(app.url, "http://127.0.0.1:${app.port}/");
        assert_eq!(app.env["FHIR_BASE"], "${target.fhir_base}");
        assert_eq!(app.env["CLIENT_ID"], "acme-client");
        assert_eq!(app.dir, Path::new("apps"));
        assert_eq!(app.timeout, APP_TIMEOUT);
        let filled = fill_app_placeholders(&app.url, 4321, &|_| unreachable!("no endpoint"));
        assert_eq!(filled, "http://127.0.0.1:4321/");
        assert_eq!(
            fill_app_placeholders("${target.token}", 1, &|name| format!("<{name}>")),
            "<token>"
        );
        let wrong = "[sandbox]\n[app]\nurl = \"http://127.0.0.1:${app.prt}/\"\n";
        let error = Target::from_toml(wrong, Path::new("t.toml"), env)
            .expect_err("an unknown placeholder")
            .to_string();
        assert!(
            error.contains("t.toml:3") && error.contains("${app.prt}"),
            "{error}"
        );
        let env_without_command = "[sandbox]\n[app]\nurl = \"http://a/\"\n[app.env]\nX = \"1\"\n";
        assert!(Target::from_toml(env_without_command, Path::new("t.toml"), env).is_err());
    }
}
