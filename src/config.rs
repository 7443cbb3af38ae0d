//! Targets: which environment a run tests and how to talk to it.
//!
//! Two targets are built in: `sandbox` (the embedded demo health plan, the default) and
//! `1up-demo` (the payer guide's demo endpoints, with credentials from the environment). Any
//! other target is a TOML file (see `schemas/target.schema.json` and the template `onramp
//! init` writes). String values may say `${ENV_VAR}`; that is how secrets should arrive.
//! Errors name the file, the key and the line, and never repeat a secret.
//!
//! This module only reads configuration: it opens no connection and starts nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::sandbox::{Fault, PkceMode};
use crate::secret::Secret;

/// Environment variables the `1up-demo` target reads.
pub const ONEUP_CLIENT_ID: &str = "ONRAMP_1UP_CLIENT_ID";
pub const ONEUP_CLIENT_SECRET: &str = "ONRAMP_1UP_CLIENT_SECRET";
pub const ONEUP_REDIRECT_URI: &str = "ONRAMP_1UP_REDIRECT_URI";

/// The commented template `onramp init` writes.
pub const TARGET_TEMPLATE: &str = include_str!("../features/onramp-target.toml");

/// What went wrong with a target.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no built-in target \"{name}\" and no file by that name; built-in targets are: sandbox, 1up-demo"
    )]
    UnknownTarget { name: String },
    #[error("cannot read the target file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("the 1up-demo target needs your client's credentials: set {}", variables.join(", "))]
    MissingCredentials { variables: Vec<&'static str> },
}

/// How the client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (the payer guide's curl).
    #[default]
    Body,
    /// HTTP Basic.
    Basic,
}

/// The member the identity form is filled in for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIdentity {
    pub fields: BTreeMap<String, String>,
}

impl MemberIdentity {
    /// The guide's test member.
    pub fn john_allen() -> Self {
        let (first, last, birth, member, zip) = crate::sandbox::data::generate::JOHN_ALLEN;
        let fields = [
            ("first_name", first),
            ("last_name", last),
            ("birth_date", birth),
            ("member_id", member),
            ("zip", zip),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self { fields }
    }

    /// `${member.<name>}` values, for feature tables.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
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
    pub members: usize,
    pub eobs_per_member: usize,
    pub faults: Vec<Fault>,
    pub pkce: PkceMode,
    /// How long the sandbox's access tokens live (short ones exercise the refresh).
    pub token_lifetime: Duration,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            members: 3,
            eobs_per_member: 12,
            faults: Vec::new(),
            pkce: PkceMode::Optional,
            token_lifetime: Duration::from_secs(7200),
        }
    }
}

/// HTTP behaviour towards the target.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub retries: u32,
    pub max_response_bytes: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retries: 3,
            max_response_bytes: 64 << 20,
        }
    }
}

/// A target, resolved from a built-in name or a file.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    pub endpoints: Endpoints,
    pub client_id: String,
    pub client_secret: Secret,
    /// `None`: onramp listens on a loopback port of its own choosing.
    pub redirect_uri: Option<Url>,
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    pub pkce: bool,
    pub member: MemberIdentity,
    pub required_resources: Vec<String>,
    pub page_size: Option<u32>,
    pub page_cap: usize,
    pub http: HttpSettings,
}

const DEFAULT_SCOPES: [&str; 3] = ["patient/*.read", "launch/patient", "openid"];

impl Target {
    fn defaults(name: &str, endpoints: Endpoints) -> Self {
        Self {
            name: name.to_owned(),
            source: None,
            endpoints,
            client_id: crate::sandbox::DEMO_CLIENT_ID.to_owned(),
            client_secret: Secret::new(crate::sandbox::DEMO_CLIENT_SECRET),
            redirect_uri: None,
            client_auth: ClientAuth::Body,
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            pkce: false,
            member: MemberIdentity::john_allen(),
            required_resources: crate::sandbox::data::REQUIRED_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            page_size: None,
            page_cap: 1000,
            http: HttpSettings::default(),
        }
    }

    /// The embedded sandbox, with PKCE exercised.
    pub fn sandbox() -> Self {
        Self {
            pkce: true,
            ..Self::defaults("sandbox", Endpoints::Sandbox(SandboxSettings::default()))
        }
    }

    /// The payer guide's demo environment, credentials from the environment.
    pub fn oneup_demo(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let read = |name: &'static str| env(name).filter(|v| !v.trim().is_empty());
        let (id, secret, redirect) = (
            read(ONEUP_CLIENT_ID),
            read(ONEUP_CLIENT_SECRET),
            read(ONEUP_REDIRECT_URI),
        );
        let missing: Vec<&'static str> = [
            (ONEUP_CLIENT_ID, id.is_none()),
            (ONEUP_CLIENT_SECRET, secret.is_none()),
            (ONEUP_REDIRECT_URI, redirect.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        let (Some(id), Some(secret), Some(redirect)) = (id, secret, redirect) else {
            return Err(ConfigError::MissingCredentials { variables: missing });
        };
        let redirect_uri = Url::parse(redirect.trim()).map_err(|e| ConfigError::Invalid {
            path: PathBuf::from(format!("${ONEUP_REDIRECT_URI}")),
            line: None,
            message: format!("not a URL ({e}): use the redirect URI registered for your client in the 1up Dev Portal"),
        })?;
        let parse = |text: &str| Url::parse(text).unwrap_or_else(|_| unreachable_url());
        Ok(Self {
            client_id: id.trim().to_owned(),
            client_secret: Secret::new(secret.trim()),
            redirect_uri: Some(redirect_uri),
            ..Self::defaults(
                "1up-demo",
                Endpoints::Remote(Box::new(RemoteEndpoints {
                    authorize: parse("https://auth.1uphealthdemo.com/oauth2/authorize/test"),
                    token: parse("https://auth.1uphealthdemo.com/oauth2/token"),
                    fhir_base: parse("https://api.1uphealthdemo.com/r4"),
                })),
            )
        })
    }

    /// Resolve `--target`: a built-in name or a TOML file.
    pub fn resolve(spec: Option<&str>) -> Result<Self, ConfigError> {
        match spec {
            None | Some("sandbox") => Ok(Self::sandbox()),
            Some("1up-demo") => Self::oneup_demo(|name| std::env::var(name).ok()),
            Some(path) if Path::new(path).is_file() => Self::from_file(Path::new(path)),
            Some(name) => Err(ConfigError::UnknownTarget {
                name: name.to_owned(),
            }),
        }
    }

    /// Read a TOML target file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
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
        let invalid =
            |span: Option<std::ops::Range<usize>>, message: String| ConfigError::Invalid {
                path: path.to_owned(),
                line: span.map(|s| line_of(text, s.start)),
                message,
            };
        let file: TargetFile =
            toml::from_str(text).map_err(|e| invalid(e.span(), e.message().to_owned()))?;
        let expand = |key: &str, value: &Spanned<String>| -> Result<String, ConfigError> {
            expand_env(value.get_ref(), &env)
                .map_err(|message| invalid(Some(value.span()), format!("{key}: {message}")))
        };
        let url = |key: &str, value: &Spanned<String>| -> Result<Url, ConfigError> {
            let text = expand(key, value)?;
            let parsed = Url::parse(&text).map_err(|e| {
                invalid(
                    Some(value.span()),
                    format!("{key}: not an absolute URL ({e})"),
                )
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid(
                    Some(value.span()),
                    format!("{key}: must be an http or https URL"),
                ));
            }
            Ok(parsed)
        };
        let endpoints = match (file.endpoints, file.sandbox) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    None,
                    "a target has [endpoints] or [sandbox], not both".into(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    None,
                    "a target needs [endpoints] (authorize, token, fhir_base) or [sandbox]".into(),
                ));
            }
            (Some(e), None) => Endpoints::Remote(Box::new(RemoteEndpoints {
                authorize: url("endpoints.authorize", &e.authorize)?,
                token: url("endpoints.token", &e.token)?,
                fhir_base: url("endpoints.fhir_base", &e.fhir_base)?,
            })),
            (None, Some(s)) => {
                let mut faults = Vec::new();
                for spec in s.faults.unwrap_or_default() {
                    let fault = spec
                        .get_ref()
                        .parse::<Fault>()
                        .map_err(|e| invalid(Some(spec.span()), format!("sandbox.faults: {e}")))?;
                    faults.push(fault);
                }
                let defaults = SandboxSettings::default();
                if let Some(members) = &s.members
                    && *members.get_ref() == 0
                {
                    return Err(invalid(
                        Some(members.span()),
                        "sandbox.members: a plan needs at least one member".into(),
                    ));
                }
                let token_lifetime = match &s.token_lifetime {
                    Some(text) => parse_duration(text.get_ref()).ok_or_else(|| {
                        invalid(
                            Some(text.span()),
                            "sandbox.token_lifetime: write a duration such as \"30s\"".into(),
                        )
                    })?,
                    None => defaults.token_lifetime,
                };
                Endpoints::Sandbox(SandboxSettings {
                    members: s.members.map_or(defaults.members, Spanned::into_inner),
                    eobs_per_member: s.eobs_per_member.unwrap_or(defaults.eobs_per_member),
                    faults,
                    pkce: s.pkce.unwrap_or(defaults.pkce),
                    token_lifetime,
                })
            }
        };
        let is_sandbox = matches!(endpoints, Endpoints::Sandbox(_));
        let mut target = if is_sandbox {
            Self::sandbox()
        } else {
            Self::defaults("", endpoints.clone())
        };
        target.endpoints = endpoints;
        target.name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "target".into(), |s| s.to_string_lossy().into_owned())
        });
        target.source = Some(path.to_owned());
        match file.client {
            Some(client) => {
                target.client_id = expand("client.id", &client.id)?;
                target.client_secret = Secret::new(expand("client.secret", &client.secret)?);
                target.redirect_uri = client
                    .redirect_uri
                    .as_ref()
                    .map(|r| url("client.redirect_uri", r))
                    .transpose()?;
                target.client_auth = client.auth.unwrap_or_default();
            }
            None if !is_sandbox => {
                return Err(invalid(
                    None,
                    "[client] with id, secret and redirect_uri is required for a remote target"
                        .into(),
                ));
            }
            None => {}
        }
        if !is_sandbox && target.redirect_uri.is_none() {
            return Err(invalid(
                None,
                "client.redirect_uri is required: the redirect URI registered for your client"
                    .into(),
            ));
        }
        if let Some(oauth) = file.oauth {
            if let Some(scopes) = oauth.scopes {
                target.scopes = scopes;
            }
            if let Some(pkce) = oauth.pkce {
                target.pkce = pkce;
            }
        }
        if let Some(member) = file.member {
            let mut fields = BTreeMap::new();
            for (name, value) in member {
                fields.insert(name.clone(), expand(&format!("member.{name}"), &value)?);
            }
            target.member = MemberIdentity { fields };
        }
        if let Some(resources) = file.resources {
            if let Some(required) = resources.required {
                for kind in &required {
                    if !crate::validate::Registry::global().is_resource_type(kind.get_ref()) {
                        return Err(invalid(
                            Some(kind.span()),
                            format!(
                                "resources.required: \"{}\" is not an R4 resource type",
                                kind.get_ref()
                            ),
                        ));
                    }
                }
                target.required_resources = required.into_iter().map(Spanned::into_inner).collect();
            }
            target.page_size = resources.page_size.or(target.page_size);
            target.page_cap = resources.page_cap.unwrap_or(target.page_cap).max(1);
        }
        if let Some(http) = file.http {
            if let Some(timeout) = http.timeout {
                target.http.timeout = parse_duration(timeout.get_ref()).ok_or_else(|| {
                    invalid(
                        Some(timeout.span()),
                        "http.timeout: write a duration such as \"30s\" or \"500ms\"".into(),
                    )
                })?;
            }
            if let Some(retries) = http.retries {
                target.http.retries = retries.min(10);
            }
            if let Some(mib) = http.max_response_mib {
                target.http.max_response_bytes = mib.max(1) << 20;
            }
        }
        Ok(target)
    }

    /// Scopes as one space-separated string.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

fn unreachable_url() -> Url {
    Url::parse("http://invalid.invalid/").unwrap_or_else(|_| unreachable!("a literal URL parses"))
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

/// Replace every `${NAME}` with the variable's value; a missing variable is an error naming it.
pub(crate) fn expand_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "an unclosed ${ (write ${NAME})".to_owned())?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "\"${{{name}}}\" is not an environment variable name"
            ));
        }
        let value =
            env(name).ok_or_else(|| format!("the environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---- the file format ----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    name: Option<String>,
    endpoints: Option<EndpointsFile>,
    sandbox: Option<SandboxFile>,
    client: Option<ClientFile>,
    oauth: Option<OauthFile>,
    member: Option<BTreeMap<String, Spanned<String>>>,
    resources: Option<ResourcesFile>,
    http: Option<HttpFile>,
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
    members: Option<Spanned<usize>>,
    eobs_per_member: Option<usize>,
    faults: Option<Vec<Spanned<String>>>,
    pkce: Option<PkceMode>,
    token_lifetime: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    id: Spanned<String>,
    secret: Spanned<String>,
    redirect_uri: Option<Spanned<String>>,
    auth: Option<ClientAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OauthFile {
    scopes: Option<Vec<String>>,
    pkce: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourcesFile {
    required: Option<Vec<Spanned<String>>>,
    page_size: Option<u32>,
    page_cap: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    timeout: Option<Spanned<String>>,
    retries: Option<u32>,
    max_response_mib: Option<u64>,
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

    #[test]
    fn a_remote_target_file_resolves_with_environment_secrets() {
        let target = Target::from_toml(REMOTE, Path::new("acme.toml"), env).expect("valid");
        assert_eq!(target.name, "Acme demo");
        assert_eq!(target.client_id, "acme-client");
        assert_eq!(target.client_secret.expose(), "acme-secret-value");
        assert_eq!(target.client_auth, ClientAuth::Basic);
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
    }

    #[test]
    fn the_template_is_a_valid_sandbox_target() {
        let target = Target::from_toml(TARGET_TEMPLATE, Path::new("onramp-target.toml"), env)
            .expect("template parses");
        assert!(matches!(target.endpoints, Endpoints::Sandbox(_)));
    }

    #[test]
    fn oneup_demo_without_credentials_lists_what_to_set() {
        let error = Target::oneup_demo(|_| None)
            .expect_err("no credentials")
            .to_string();
        for variable in [ONEUP_CLIENT_ID, ONEUP_CLIENT_SECRET, ONEUP_REDIRECT_URI] {
            assert!(error.contains(variable), "{error}");
        }
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
    }
}
