//! What a server says about itself before anyone signs in, and how that is judged: its
//! SMART configuration (`{fhir_base}/.well-known/smart-configuration`, SMART App Launch
//! 2.0.0, "Conformance") and its CapabilityStatement (`{fhir_base}/metadata`), against SMART
//! 2.0 and the CARIN Blue Button IG 2.0.0's CapabilityStatement.
//!
//! What CARIN requires is data: `schemas/carin-bb/capability.json`, derived by
//! `schemas/carin.py` from the IG package (see `schemas/README.md`), embedded here. The
//! checks are pure functions of the documents; fetching them is the run's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use super::failure::StepFailure;
use crate::infra::words::listed;

/// The CapabilityStatement of the CARIN IG, as `instantiates` names it.
pub const CARIN_CAPABILITY: &str = "http://hl7.org/fhir/us/carin-bb/CapabilityStatement/c4bb";
/// The SMART capabilities the CARIN IG asks a payer's server to support.
pub const CARIN_SMART_CAPABILITIES: [&str; 6] = [
    "launch-standalone",
    "client-confidential-symmetric",
    "sso-openid-connect",
    "context-standalone-patient",
    "permission-offline",
    "permission-patient",
];
const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// What the CARIN IG's CapabilityStatement expects of a server, per resource type.
#[derive(Debug, Clone, Deserialize)]
pub struct Carin {
    pub resources: BTreeMap<String, CarinResource>,
    /// The IG's search parameters, by base type and code.
    #[serde(rename = "searchParameters")]
    pub search_parameters: BTreeMap<String, BTreeMap<String, CarinParameter>>,
}

/// One type's expectations: `SHALL`, `SHOULD` or `MAY` per interaction and parameter.
#[derive(Debug, Clone, Deserialize)]
pub struct CarinResource {
    pub interactions: BTreeMap<String, Option<String>>,
    #[serde(rename = "searchParams")]
    pub search_params: BTreeMap<String, Option<String>>,
    pub includes: Vec<String>,
}

/// A search parameter the IG defines.
#[derive(Debug, Clone, Deserialize)]
pub struct CarinParameter {
    #[serde(rename = "type")]
    pub kind: String,
    pub expression: Option<String>,
    pub target: Vec<String>,
    pub comparator: Vec<String>,
}

impl Carin {
    /// The embedded expectations.
    pub fn get() -> &'static Carin {
        static CARIN: LazyLock<Carin> = LazyLock::new(|| {
            serde_json::from_str(include_str!("../../schemas/carin-bb/capability.json"))
                .unwrap_or_else(|e| unreachable!("the embedded CARIN data is tested: {e}"))
        });
        &CARIN
    }

    /// What CARIN makes a SHALL of `kind`: interactions and, when searching is a SHALL,
    /// search parameters.
    pub fn shall(&self, kind: &str) -> (Vec<&str>, Vec<&str>) {
        let Some(resource) = self.resources.get(kind) else {
            return (Vec::new(), Vec::new());
        };
        let interactions: Vec<&str> = resource
            .interactions
            .iter()
            .filter(|(_, e)| e.as_deref() == Some("SHALL"))
            .map(|(name, _)| name.as_str())
            .collect();
        let parameters = if interactions.contains(&"search-type") {
            resource
                .search_params
                .iter()
                .filter(|(_, e)| e.as_deref() == Some("SHALL"))
                .map(|(name, _)| name.as_str())
                .collect()
        } else {
            Vec::new()
        };
        (interactions, parameters)
    }
}

/// A document fetched for discovery: what came back, whatever it was.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub url: String,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    /// The body, when it is JSON.
    pub json: Option<Value>,
    /// Why it is not JSON, or why there is nothing to fetch.
    pub problem: Option<String>,
    /// Why no usable answer came: onramp could not test, the server is not judged.
    pub failure: Option<crate::payer::http::HttpError>,
}

/// A discovery document that cannot be read as the JSON object it must be: `what` it is,
/// where, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Unusable {
    pub what: &'static str,
    pub url: String,
    pub why: Why,
}

/// Why a discovery document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// No usable answer came (onramp could not test).
    NoAnswer(String),
    /// The body is not JSON, or there is nothing to fetch.
    Problem(String),
    /// An answer other than 200.
    Status(u16),
    /// No status at all.
    Silent,
    /// JSON, but not an object.
    NotObject,
}

impl Unusable {
    fn describe(&self) -> String {
        let (what, url) = (self.what, &self.url);
        match &self.why {
            Why::NoAnswer(failure) => format!("{what}: {failure}"),
            Why::Problem(problem) => format!("{what} ({url}): {problem}"),
            Why::Status(status) => format!("{what} ({url}) answered {status}, not 200"),
            Why::Silent => format!("{what} ({url}) did not answer"),
            Why::NotObject => format!("{what} ({url}) is not a JSON object"),
        }
    }
}

impl Fetched {
    /// The JSON object, or what is wrong instead.
    pub fn object(&self, what: &'static str) -> Result<&serde_json::Map<String, Value>, Unusable> {
        let unusable = |why: Why| Unusable {
            what,
            url: self.url.clone(),
            why,
        };
        if let Some(failure) = &self.failure {
            return Err(unusable(Why::NoAnswer(failure.to_string())));
        }
        if let Some(problem) = &self.problem {
            return Err(unusable(Why::Problem(problem.clone())));
        }
        match self.status {
            Some(200) => {}
            Some(status) => return Err(unusable(Why::Status(status))),
            None => return Err(unusable(Why::Silent)),
        }
        self.json
            .as_ref()
            .and_then(Value::as_object)
            .ok_or_else(|| unusable(Why::NotObject))
    }

    fn media_type(&self) -> String {
        self.content_type
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }
}

fn strings(value: Option<&Value>) -> Option<Vec<&str>> {
    value?.as_array()?.iter().map(Value::as_str).collect()
}

/// SMART 2.0 "Conformance": served as JSON, with `token_endpoint`, `capabilities`,
/// `grant_types_supported` and `code_challenge_methods_supported` (REQUIRED), and
/// `authorization_endpoint` (REQUIRED with `launch-standalone` or `launch-ehr`).
pub fn smart_required_fields(smart: &Fetched) -> Result<(), Vec<String>> {
    let config = smart
        .object("the SMART configuration")
        .map_err(|p| vec![p.to_string()])?;
    let mut problems = Vec::new();
    if smart.media_type() != "application/json" {
        problems.push(format!(
            "its Content-Type is {}, not application/json",
            smart.content_type.as_deref().unwrap_or("(none)")
        ));
    }
    let capabilities = strings(config.get("capabilities"));
    let launches = capabilities
        .as_ref()
        .is_some_and(|c| c.contains(&"launch-standalone") || c.contains(&"launch-ehr"));
    for (field, required) in [
        ("token_endpoint", true),
        ("authorization_endpoint", launches),
    ] {
        match config.get(field) {
            Some(Value::String(url)) if url::Url::parse(url).is_ok() => {}
            Some(other) => problems.push(format!("{field} is {other}, not an absolute URL")),
            None if required => problems.push(format!("{field} is missing")),
            None => {}
        }
    }
    for field in [
        "capabilities",
        "grant_types_supported",
        "code_challenge_methods_supported",
    ] {
        if strings(config.get(field)).is_none() {
            problems.push(match config.get(field) {
                None => format!("{field} is missing"),
                Some(other) => format!("{field} is {other}, not an array of strings"),
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// SMART 2.0: `grant_types_supported` includes `authorization_code`, and
/// `code_challenge_methods_supported` includes `S256` and not `plain`.
pub fn smart_pkce(smart: &Fetched) -> Result<(), Vec<String>> {
    let config = smart
        .object("the SMART configuration")
        .map_err(|p| vec![p.to_string()])?;
    let mut problems = Vec::new();
    let grants = strings(config.get("grant_types_supported")).unwrap_or_default();
    if !grants.contains(&"authorization_code") {
        problems.push(format!(
            "grant_types_supported ({}) lacks authorization_code",
            grants.join(", ")
        ));
    }
    let methods = strings(config.get("code_challenge_methods_supported")).unwrap_or_default();
    if !methods.contains(&"S256") {
        problems.push(format!(
            "code_challenge_methods_supported ({}) lacks S256",
            methods.join(", ")
        ));
    }
    if methods.contains(&"plain") {
        problems.push(
            "code_challenge_methods_supported includes plain, which SMART 2.0 forbids".into(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// SMART 2.0: with `sso-openid-connect`, `issuer` and `jwks_uri` are REQUIRED. (Without
/// it `issuer` is to be omitted: a warning, from [`smart_issuer_without_openid`].)
pub fn smart_openid_fields(smart: &Fetched) -> Result<(), Vec<String>> {
    let config = smart
        .object("the SMART configuration")
        .map_err(|p| vec![p.to_string()])?;
    let capabilities = strings(config.get("capabilities")).unwrap_or_default();
    if !capabilities.contains(&"sso-openid-connect") {
        return Ok(());
    }
    let problems: Vec<String> = ["issuer", "jwks_uri"]
        .into_iter()
        .filter_map(|field| match config.get(field) {
            Some(Value::String(url)) if url::Url::parse(url).is_ok() => None,
            Some(other) => Some(format!("{field} is {other}, not an absolute URL")),
            None => Some(format!(
                "{field} is missing, though the capabilities include sso-openid-connect"
            )),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// SMART 2.0: without `sso-openid-connect`, `issuer` is omitted.
pub fn smart_issuer_without_openid(smart: &Fetched) -> Option<String> {
    let config = smart.object("the SMART configuration").ok()?;
    let capabilities = strings(config.get("capabilities")).unwrap_or_default();
    (!capabilities.contains(&"sso-openid-connect") && config.contains_key("issuer")).then(|| {
        "the configuration names an issuer but does not offer sso-openid-connect (SMART 2.0: issuer is omitted then)".into()
    })
}

/// The CARIN IG's SMART capabilities the configuration does not offer.
pub fn smart_missing_carin_capabilities(smart: &Fetched) -> Result<Vec<&'static str>, Unusable> {
    let config = smart.object("the SMART configuration")?;
    let capabilities = strings(config.get("capabilities")).unwrap_or_default();
    Ok(CARIN_SMART_CAPABILITIES
        .into_iter()
        .filter(|c| !capabilities.contains(c))
        .collect())
}

/// A CapabilityStatement, as far as the checks read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerCapability {
    pub fhir_version: Option<String>,
    pub formats: Vec<String>,
    pub instantiates: Vec<String>,
    /// The `oauth-uris` extension's `authorize` and `token`.
    pub oauth_authorize: Option<String>,
    pub oauth_token: Option<String>,
    pub resources: BTreeMap<String, ResourceCapability>,
}

/// What the server says it does with one type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceCapability {
    pub interactions: BTreeSet<String>,
    pub search_params: BTreeSet<String>,
    pub includes: BTreeSet<String>,
}

impl ServerCapability {
    /// Read what matters of a CapabilityStatement (only `rest` in `server` mode counts).
    pub fn read(statement: &serde_json::Map<String, Value>) -> Self {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let mut capability = Self {
            fhir_version: statement.get("fhirVersion").and_then(text),
            formats: statement
                .get("format")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(text).collect())
                .unwrap_or_default(),
            instantiates: statement
                .get("instantiates")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(text).collect())
                .unwrap_or_default(),
            ..Self::default()
        };
        let rests = statement.get("rest").and_then(Value::as_array);
        for rest in rests.into_iter().flatten() {
            if rest.get("mode").and_then(Value::as_str) != Some("server") {
                continue;
            }
            let oauth = rest
                .pointer("/security/extension")
                .and_then(Value::as_array)
                .and_then(|list| {
                    list.iter()
                        .find(|e| e.get("url").and_then(Value::as_str) == Some(OAUTH_URIS))
                })
                .and_then(|e| e.get("extension"))
                .and_then(Value::as_array);
            for inner in oauth.into_iter().flatten() {
                let value = inner.get("valueUri").and_then(text);
                match inner.get("url").and_then(Value::as_str) {
                    Some("authorize") => capability.oauth_authorize = value,
                    Some("token") => capability.oauth_token = value,
                    _ => {}
                }
            }
            for resource in rest
                .get("resource")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(kind) = resource.get("type").and_then(Value::as_str) else {
                    continue;
                };
                let codes = |field: &str, key: &str| -> BTreeSet<String> {
                    resource
                        .get(field)
                        .and_then(Value::as_array)
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|i| i.get(key).and_then(Value::as_str))
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                capability.resources.insert(
                    kind.to_owned(),
                    ResourceCapability {
                        interactions: codes("interaction", "code"),
                        search_params: codes("searchParam", "name"),
                        includes: resource
                            .get("searchInclude")
                            .and_then(Value::as_array)
                            .map(|i| i.iter().filter_map(text).collect())
                            .unwrap_or_default(),
                    },
                );
            }
        }
        capability
    }

    /// Whether the server says it searches `kind`.
    pub fn searches(&self, kind: &str) -> bool {
        self.resources
            .get(kind)
            .is_some_and(|r| r.interactions.contains("search-type"))
    }
}

/// The CapabilityStatement is one, for R4 (4.0.x), in JSON.
pub fn capability_statement(metadata: &Fetched) -> Result<ServerCapability, Vec<String>> {
    let statement = metadata
        .object("the CapabilityStatement")
        .map_err(|p| vec![p.to_string()])?;
    let mut problems = Vec::new();
    let media = metadata.media_type();
    if media != "application/fhir+json" && media != "application/json" {
        problems.push(format!(
            "its Content-Type is {}, not application/fhir+json",
            metadata.content_type.as_deref().unwrap_or("(none)")
        ));
    }
    if statement.get("resourceType").and_then(Value::as_str) != Some("CapabilityStatement") {
        problems.push(format!(
            "its resourceType is {}, not CapabilityStatement",
            statement
                .get("resourceType")
                .map_or_else(|| "missing".to_owned(), ToString::to_string)
        ));
    }
    let capability = ServerCapability::read(statement);
    match capability.fhir_version.as_deref() {
        Some(version) if version.starts_with("4.0.") => {}
        Some(version) => problems.push(format!("its fhirVersion is {version}, not R4 (4.0.1)")),
        None => problems.push("it has no fhirVersion".into()),
    }
    if !capability.formats.iter().any(|f| {
        matches!(
            f.as_str(),
            "json" | "application/fhir+json" | "application/json"
        )
    }) {
        problems.push(format!(
            "its format ({}) does not include json",
            capability.formats.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(capability)
    } else {
        Err(problems)
    }
}

/// What a CapabilityStatement lacks of what CARIN makes a SHALL for `required` types (and,
/// for a type CARIN does not cover, any way to reach it: `read` or `search-type`).
pub fn capability_missing(capability: &ServerCapability, required: &[String]) -> Vec<String> {
    let carin = Carin::get();
    let mut problems = Vec::new();
    for kind in required {
        let Some(server) = capability.resources.get(kind) else {
            problems.push(format!("it does not list {kind}"));
            continue;
        };
        if !carin.resources.contains_key(kind) {
            if !server.interactions.contains("read") && !server.interactions.contains("search-type")
            {
                problems.push(format!("{kind} has neither read nor search-type"));
            }
            continue;
        }
        let (interactions, parameters) = carin.shall(kind);
        let lacking: Vec<&str> = interactions
            .into_iter()
            .filter(|i| !server.interactions.contains(*i))
            .collect();
        if !lacking.is_empty() {
            problems.push(format!(
                "{kind} lacks the interaction {}",
                lacking.join(", ")
            ));
        }
        let lacking: Vec<&str> = parameters
            .into_iter()
            .filter(|p| !server.search_params.contains(*p))
            .collect();
        if !lacking.is_empty() {
            problems.push(format!(
                "{kind} lacks the search parameter {}",
                lacking.join(", ")
            ));
        }
    }
    problems
}

/// SMART App Launch 2.0: the CapabilityStatement's `oauth-uris` extension (kept for apps
/// that read the endpoints there) names the same authorize and token endpoints as the SMART
/// configuration. Without the extension, a SHOULD the server misses; without either
/// endpoint in the configuration, nothing to compare (its own check reports that).
pub fn oauth_uris_agree(capability: &ServerCapability, smart: &Fetched) -> Result<(), StepFailure> {
    let config = smart
        .object("the SMART configuration")
        .map_err(|e| StepFailure::blocked(e.to_string()))?;
    let (Some(authorize), Some(token)) = (&capability.oauth_authorize, &capability.oauth_token)
    else {
        return Err(StepFailure::warning(
            "the CapabilityStatement has no oauth-uris extension with authorize and token; SMART App Launch 2.0 keeps it for apps that read the endpoints there",
        ));
    };
    let mut differ = Vec::new();
    let mut compared = 0;
    for (name, said, field) in [
        ("authorize", authorize, "authorization_endpoint"),
        ("token", token, "token_endpoint"),
    ] {
        let Some(other) = config.get(field).and_then(|v| v.as_str()) else {
            continue;
        };
        compared += 1;
        if said != other {
            differ.push(format!(
                "oauth-uris {name} is {said}, the SMART configuration's {field} is {other}"
            ));
        }
    }
    if compared == 0 {
        Err(StepFailure::blocked(
            "the SMART configuration names no endpoint to compare",
        ))
    } else if differ.is_empty() {
        Ok(())
    } else {
        Err(StepFailure::conformance(listed(
            "the CapabilityStatement and the SMART configuration disagree on where to authorize:",
            &differ,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::fault::{FailureKind, Severity};
    use serde_json::json;

    fn fetched(body: Value) -> Fetched {
        Fetched {
            url: "https://x/.well-known/smart-configuration".into(),
            status: Some(200),
            content_type: Some("application/json".into()),
            json: Some(body),
            problem: None,
            failure: None,
        }
    }

    /// The oauth-uris extension agrees with the SMART configuration, or says where not.
    #[test]
    fn the_oauth_uris_agree_with_the_smart_configuration() {
        let capability = |authorize: Option<&str>| ServerCapability {
            oauth_authorize: authorize.map(str::to_owned),
            oauth_token: Some("https://x/token".into()),
            ..ServerCapability::default()
        };
        let smart = fetched(json!({
            "authorization_endpoint": "https://x/authorize",
            "token_endpoint": "https://x/token",
        }));
        assert_eq!(
            oauth_uris_agree(&capability(Some("https://x/authorize")), &smart),
            Ok(())
        );
        let differ =
            oauth_uris_agree(&capability(Some("https://y/authorize")), &smart).expect_err("differ");
        assert_eq!(differ.kind, FailureKind::Conformance);
        assert!(
            differ
                .message
                .contains("oauth-uris authorize is https://y/authorize")
        );
        let missing = oauth_uris_agree(&capability(None), &smart).expect_err("no extension");
        assert_eq!(missing.severity, Severity::Warning);
        let nothing = oauth_uris_agree(
            &capability(Some("https://x/authorize")),
            &fetched(json!({})),
        )
        .expect_err("nothing to compare");
        assert_eq!(nothing.kind, FailureKind::Blocked);
    }

    #[test]
    fn the_embedded_carin_expectations_are_the_igs() {
        let carin = Carin::get();
        let (interactions, parameters) = carin.shall("ExplanationOfBenefit");
        assert_eq!(interactions, ["read", "search-type"]);
        assert!(parameters.contains(&"service-start-date") && parameters.contains(&"patient"));
        let (interactions, parameters) = carin.shall("Patient");
        assert_eq!(interactions, ["read"]);
        assert!(parameters.is_empty(), "searching a Patient is a MAY");
        assert_eq!(
            carin.search_parameters["ExplanationOfBenefit"]["billable-period-start"]
                .expression
                .as_deref(),
            Some("ExplanationOfBenefit.billablePeriod.start")
        );
    }

    #[test]
    fn smart_configurations_are_judged_field_by_field() {
        let good = fetched(json!({
            "authorization_endpoint": "https://a/authorize", "token_endpoint": "https://a/token",
            "capabilities": ["launch-standalone"], "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"]
        }));
        assert_eq!(smart_required_fields(&good), Ok(()));
        assert_eq!(smart_pkce(&good), Ok(()));
        assert_eq!(smart_openid_fields(&good), Ok(()));
        let bad = fetched(json!({
            "capabilities": ["launch-standalone", "sso-openid-connect"],
            "grant_types_supported": ["client_credentials"],
            "code_challenge_methods_supported": ["S256", "plain"]
        }));
        let problems = smart_required_fields(&bad).expect_err("endpoints missing");
        assert!(
            problems.iter().any(|p| p == "token_endpoint is missing"),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p == "authorization_endpoint is missing"),
            "{problems:?}"
        );
        assert_eq!(smart_pkce(&bad).expect_err("plain").len(), 2);
        assert_eq!(smart_openid_fields(&bad).expect_err("no issuer").len(), 2);
    }
}
