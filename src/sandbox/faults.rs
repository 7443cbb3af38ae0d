//! Fault injection: how the sandbox misbehaves on purpose, so that a harness's failure
//! reporting can itself be tested.
//!
//! | spec | effect |
//! |---|---|
//! | `latency=300ms` | every FHIR response waits that long first |
//! | `status=503@0.2` | that fraction of FHIR requests (spread evenly) gets that status with an OperationOutcome; `status=500` means all |
//! | `rate-limit=5/s` | more than that many FHIR requests a second get 429 with `Retry-After` |
//! | `malformed-json:Type` | searches and reads of `Type` answer with a body that is not JSON |
//! | `invalid-resource:Type` | every served `Type` resource breaks the R4 schema (`meta.lastUpdated` is not an instant) |
//! | `structure-violation:Type` | every served `Type` resource breaks an R4 StructureDefinition rule the schema lets through (`meta.lastUpdated` is February 30th) |
//! | `profile-violation:Type` | every served `Type` resource breaks a rule of its profile that R4 does not have: a CARIN Blue Button 2.0.0 `meta.profile` loses the version CARIN requires; otherwise (US Core's) the first `Type` resource of a search by `patient` alone loses an element its profile requires and R4 does not (Condition's `category`); in the Provider Directory and the formulary, the first `Type` resource does (PractitionerRole's `active`) |
//! | `must-support-missing:PROFILE.PATH` | every served resource that declares the profile named `PROFILE` (its URL's last segment: `C4BB-Patient`) lacks the element at `PATH` (member names, `deceasedBoolean` or `address.period`), which the profile makes must-support |
//! | `foreign-patient:Type` | the first searchset page of `Type` also holds a resource outside the member's compartment |
//! | `drop-next-link:Type` | searchsets of `Type` never link to the next page, though `total` says there is more |
//! | `deep-json:Type` | searchsets and reads of `Type` answer 100 KB of JSON nested 50,000 levels deep (inside a Bundle) |
//! | `foreign-next-link:Type` | the next link of `Type`'s searchsets names the sandbox by another origin (`localhost` for `127.0.0.1`, or the reverse): a client that follows it hands its token to another origin |
//! | `expire-codes` | every authorization code is already expired when it is exchanged |
//! | `slow-body` / `slow-body=100ms` | FHIR response bodies trickle out in 1 KiB chunks, that long apart (default 200ms) |
//! | `not-searchset:Type` | searchsets of `Type` say `"type": "collection"` |
//! | `duplicate:Type` | the second page of `Type` (or, with one page, its last entry) repeats the first resource in place of another |
//! | `dangling-reference:Type` | the first `Type` resource references `Organization/gone`, which does not exist (in the Patient Access API, the Provider Directory and the formulary) |
//! | `dangling-contained:Type` | the first `Type` resource references `#gone`, which it does not contain |
//! | `wrong-redirect` | after the sign-in the browser is sent to the redirect URI's origin, but another path |
//! | `omit-code` | the redirect after the sign-in carries no `code` |
//! | `wrong-state` | the redirect carries a `state` other than the app's |
//! | `open-redirect` | any redirect URI is accepted, registered or not |
//! | `reusable-codes` | a code can be exchanged more than once |
//! | `ignore-pkce` | the token endpoint does not check `code_verifier` |
//! | `token-field:NAME=JSON` / `token-field:-NAME` | the token response's member NAME is that JSON value, or absent |
//! | `smart-field:NAME=JSON` / `smart-field:-NAME` | the same, in the SMART configuration |
//! | `metadata-field:NAME=JSON` / `metadata-field:-NAME` | the same, at the top of the CapabilityStatement |
//! | `metadata-drop:Type.CODE` | the CapabilityStatement leaves out `Type`'s interaction or search parameter CODE |
//! | `metadata-oauth-mismatch` | the CapabilityStatement's `oauth-uris` name another token endpoint |
//! | `no-pragma` | the token response has no `Pragma: no-cache` |
//! | `cacheable-token` | the token response says `Cache-Control: max-age=3600` |
//! | `anonymous-read` | FHIR reads without a token are answered (with the first member's data) |
//! | `anonymous-status=403` | FHIR reads without a token are refused with that status (403 or 404), not 401 |
//! | `no-challenge` | a 401 from the FHIR API has no `WWW-Authenticate` header |
//! | `introspection-field:NAME=JSON` / `introspection-field:-NAME` | the same, in the answer to introspecting a live token |
//! | `ignore-scopes` | FHIR reads and searches are answered whatever the token's scopes |
//! | `refresh-widens-scope` | a refresh that asks for fewer scopes gets the grant's whole scope |
//! | `refresh-keeps-old` | a refresh token keeps working after it was used |
//! | `refresh-accepts-any` | any refresh token the server never issued gets tokens (the first member's) |
//! | `accept-any-secret` | the token endpoint does not check the client secret |
//! | `accept-unknown-client` | the token endpoint lets an unregistered `client_id` through client authentication |
//! | `accept-unknown-codes` | the token endpoint gives tokens (the first member's) for codes it never issued |
//! | `pkce-optional` | a code issued with a PKCE challenge is exchanged without `code_verifier` |
//! | `pkce-any-verifier` | any `code_verifier` is accepted (a missing one is not) |
//! | `pkce-plain` | a `code_verifier` equal to the challenge is accepted (the `plain` method) |
//! | `revocation-noop` | the revocation endpoint answers 200 and revokes nothing |
//! | `introspection-always-active` | introspection says `active: true` for any token |
//! | `codes-die-on-error` | a code is spent by any refused exchange of it, whatever the reason |
//! | `refresh-adds-scope` | a refresh without `scope` answers with the grant's scope plus `user/*.read`, which nobody granted |
//! | `refresh-unusable-token` | the access token of a refresh without `scope` reads nothing (introspection still calls it active) |
//! | `refresh-narrows-too-far` | a refresh with `scope` gets an access token without any of the resource scopes asked |
//! | `password-as-text` | the Blue Button login page's password field is `type="text"`: what is typed shows on screen |
//! | `revoked-still-reads` | a revoked access token is inactive at introspection, but the FHIR API still takes it |
//! | `search-ignores:Type.CODE` | searches of `Type` by CODE answer as if the parameter were not there |
//! | `search-misses:Type.CODE` | searches of `Type` by CODE find nothing |
//! | `include-as-match:Type` | what `_include` brings into `Type` searchsets is marked `search.mode = match` |
//! | `include-missing:Type` | searches of `Type` ignore `_include` |
//! | `no-read:Type` | reads of `Type` by id answer 404 |
//! | `cross-member-leak:Type` | one member's token reads other members' `Type` resources: by id, by `_id` search and by a search naming their Patient (`patient=`, `beneficiary=`, ...) |
//! | `cross-member-leak:Type.read` / `.id` / `.patient` | the same leak, in that one way only |
//! | `sign-in-as-first` | whoever signs in, the code is for the plan's first member |
//! | `directory-requires-token` | the Provider Directory and the formulary answer only requests that carry a token (401 otherwise) |
//! | `directory-serves-patients` | the Provider Directory answers Patient, Coverage and ExplanationOfBenefit searches without a token, with the first member's |
//! | `chain-ignored:PARAM.CHAINED` | directory and formulary searches ignore that chained parameter (`chain-ignored:location.address-city`) and answer as if it were not there |
//! | `revinclude-missing:Type` | directory and formulary searches of `Type` ignore `_revinclude` |
//! | `id-token:missing` / `unsigned` / `bad-signature` / `unknown-kid` / `wrong-issuer` / `wrong-audience` / `expired` / `no-subject` / `foreign-fhir-user` | the `id_token` is left out, or breaks that one property |

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One fault, as `--fault` spells it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Latency(Duration),
    Status {
        code: u16,
        fraction: f64,
    },
    RateLimit {
        per_second: u32,
    },
    MalformedJson(String),
    DeepJson(String),
    InvalidResource(String),
    StructureViolation(String),
    ProfileViolation(String),
    /// Resources declaring the profile (by short name) lack the element at the path.
    MustSupportMissing {
        profile: String,
        path: String,
    },
    ForeignPatient(String),
    DropNextLink(String),
    ForeignNextLink(String),
    ExpireCodes,
    SlowBody(Duration),
    NotSearchset(String),
    Duplicate(String),
    DanglingReference(String),
    DanglingContained(String),
    WrongRedirect,
    OmitCode,
    WrongState,
    OpenRedirect,
    ReusableCodes,
    IgnorePkce,
    /// A member of a JSON document the server sends, set to a JSON value or removed (`None`).
    Field {
        document: Document,
        name: String,
        value: Option<serde_json::Value>,
    },
    MetadataDrop {
        kind: String,
        code: String,
    },
    /// Searches of `kind` by `code` answer as if the parameter were not there.
    SearchIgnores {
        kind: String,
        code: String,
    },
    /// Searches of `kind` by `code` find nothing.
    SearchMisses {
        kind: String,
        code: String,
    },
    IncludeAsMatch(String),
    IncludeMissing(String),
    NoRead(String),
    /// Other members' resources of `kind` are served to a member's token, in one way or
    /// (`None`) every way.
    CrossMemberLeak {
        kind: String,
        via: Option<Leak>,
    },
    SignInAsFirst,
    MetadataOauthMismatch,
    NoPragma,
    CacheableToken,
    AnonymousRead,
    /// The status a read without a token is refused with instead of 401.
    AnonymousStatus(u16),
    NoChallenge,
    IdToken(IdTokenFault),
    IgnoreScopes,
    RefreshWidensScope,
    RefreshKeepsOld,
    RefreshAcceptsAny,
    AcceptAnySecret,
    AcceptUnknownClient,
    AcceptUnknownCodes,
    PkceOptional,
    PkceAnyVerifier,
    PkcePlain,
    RevocationNoop,
    IntrospectionAlwaysActive,
    CodesDieOnError,
    RefreshAddsScope,
    RefreshUnusableToken,
    RefreshNarrowsTooFar,
    RevokedStillReads,
    PasswordAsText,
    /// The public directories answer only requests that carry a token.
    DirectoryRequiresToken,
    /// The Provider Directory serves the first member's Patient, Coverage and claims to
    /// anyone.
    DirectoryServesPatients,
    /// Directory and formulary searches ignore the chained parameter (`location.address-city`).
    ChainIgnored(String),
    /// Directory and formulary searches of `Type` ignore `_revinclude`.
    RevincludeMissing(String),
}

/// The faults that are a bare name.
const FLAGS: &[(&str, Fault)] = &[
    ("expire-codes", Fault::ExpireCodes),
    ("wrong-redirect", Fault::WrongRedirect),
    ("omit-code", Fault::OmitCode),
    ("wrong-state", Fault::WrongState),
    ("open-redirect", Fault::OpenRedirect),
    ("reusable-codes", Fault::ReusableCodes),
    ("ignore-pkce", Fault::IgnorePkce),
    ("cacheable-token", Fault::CacheableToken),
    ("anonymous-read", Fault::AnonymousRead),
    ("metadata-oauth-mismatch", Fault::MetadataOauthMismatch),
    ("no-pragma", Fault::NoPragma),
    ("no-challenge", Fault::NoChallenge),
    ("ignore-scopes", Fault::IgnoreScopes),
    ("refresh-widens-scope", Fault::RefreshWidensScope),
    ("refresh-keeps-old", Fault::RefreshKeepsOld),
    ("refresh-accepts-any", Fault::RefreshAcceptsAny),
    ("accept-any-secret", Fault::AcceptAnySecret),
    ("accept-unknown-client", Fault::AcceptUnknownClient),
    ("accept-unknown-codes", Fault::AcceptUnknownCodes),
    ("pkce-optional", Fault::PkceOptional),
    ("pkce-any-verifier", Fault::PkceAnyVerifier),
    ("pkce-plain", Fault::PkcePlain),
    ("revocation-noop", Fault::RevocationNoop),
    (
        "introspection-always-active",
        Fault::IntrospectionAlwaysActive,
    ),
    ("codes-die-on-error", Fault::CodesDieOnError),
    ("refresh-adds-scope", Fault::RefreshAddsScope),
    ("refresh-unusable-token", Fault::RefreshUnusableToken),
    ("refresh-narrows-too-far", Fault::RefreshNarrowsTooFar),
    ("revoked-still-reads", Fault::RevokedStillReads),
    ("password-as-text", Fault::PasswordAsText),
    ("sign-in-as-first", Fault::SignInAsFirst),
    ("directory-requires-token", Fault::DirectoryRequiresToken),
    ("directory-serves-patients", Fault::DirectoryServesPatients),
];

/// A way another member's resources leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leak {
    /// A read by id.
    Read,
    /// A search by `_id`.
    Id,
    /// A search by a reference to their Patient.
    Patient,
}

impl Leak {
    const ALL: [(&'static str, Leak); 3] = [
        ("read", Leak::Read),
        ("id", Leak::Id),
        ("patient", Leak::Patient),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, l)| *l == self)
            .map_or("?", |(n, _)| n)
    }
}

/// A JSON document of the server's that a `*-field` fault changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// The token response (`token-field`).
    Token,
    /// The SMART configuration (`smart-field`).
    Smart,
    /// The CapabilityStatement (`metadata-field`).
    Metadata,
    /// The introspection response (`introspection-field`).
    Introspection,
}

impl Document {
    const ALL: [(&'static str, Document); 4] = [
        ("token-field", Self::Token),
        ("smart-field", Self::Smart),
        ("metadata-field", Self::Metadata),
        ("introspection-field", Self::Introspection),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, d)| *d == self)
            .map_or("?", |(name, _)| name)
    }
}

/// How an `id-token:…` fault breaks the id_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenFault {
    Missing,
    Unsigned,
    BadSignature,
    UnknownKid,
    WrongIssuer,
    WrongAudience,
    Expired,
    NoSubject,
    ForeignFhirUser,
}

impl IdTokenFault {
    const ALL: [(&'static str, IdTokenFault); 9] = [
        ("missing", Self::Missing),
        ("unsigned", Self::Unsigned),
        ("bad-signature", Self::BadSignature),
        ("unknown-kid", Self::UnknownKid),
        ("wrong-issuer", Self::WrongIssuer),
        ("wrong-audience", Self::WrongAudience),
        ("expired", Self::Expired),
        ("no-subject", Self::NoSubject),
        ("foreign-fhir-user", Self::ForeignFhirUser),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(name, _)| name)
    }
}

/// Why a fault spec was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault `{spec}`: {reason}; expected one of {EXPECTED}")]
pub struct FaultError {
    spec: String,
    reason: String,
}

/// Every fault's spelling, for messages and help.
pub const EXPECTED: &str = "latency=300ms, status=503@0.2, rate-limit=5/s, malformed-json:Type, deep-json:Type, invalid-resource:Type, structure-violation:Type, profile-violation:Type, must-support-missing:PROFILE.PATH, foreign-patient:Type, drop-next-link:Type, foreign-next-link:Type, not-searchset:Type, duplicate:Type, dangling-reference:Type, dangling-contained:Type, expire-codes, slow-body[=100ms], wrong-redirect, omit-code, wrong-state, open-redirect, reusable-codes, ignore-pkce, token-field:NAME=JSON, token-field:-NAME, smart-field:NAME=JSON, smart-field:-NAME, metadata-field:NAME=JSON, metadata-field:-NAME, metadata-drop:Type.CODE, search-ignores:Type.CODE, search-misses:Type.CODE, include-as-match:Type, include-missing:Type, no-read:Type, cross-member-leak:Type[.read|.id|.patient], sign-in-as-first, metadata-oauth-mismatch, no-pragma, cacheable-token, anonymous-read, anonymous-status=403, no-challenge, introspection-field:NAME=JSON, introspection-field:-NAME, ignore-scopes, refresh-widens-scope, refresh-keeps-old, refresh-accepts-any, accept-any-secret, accept-unknown-client, accept-unknown-codes, pkce-optional, pkce-any-verifier, pkce-plain, revocation-noop, introspection-always-active, codes-die-on-error, refresh-adds-scope, refresh-unusable-token, refresh-narrows-too-far, revoked-still-reads, password-as-text, directory-requires-token, directory-serves-patients, chain-ignored:PARAM.CHAINED, revinclude-missing:Type, id-token:missing|unsigned|bad-signature|unknown-kid|wrong-issuer|wrong-audience|expired|no-subject|foreign-fhir-user";

fn error(spec: &str, reason: impl Into<String>) -> FaultError {
    FaultError {
        spec: spec.to_owned(),
        reason: reason.into(),
    }
}

/// `300ms`, `2s`, `1s 500ms` (humantime's syntax), at most ten minutes.
fn duration(spec: &str, text: &str) -> Result<Duration, FaultError> {
    let value = humantime::parse_duration(text).map_err(|e| {
        error(
            spec,
            format!("`{text}` is not a duration such as 300ms or 2s ({e})"),
        )
    })?;
    if value > Duration::from_secs(600) {
        return Err(error(spec, "durations go from 0 to 600 s"));
    }
    Ok(value)
}

fn resource_type(spec: &str, name: &str) -> Result<String, FaultError> {
    if crate::validate::Registry::global().is_resource_type(name) {
        Ok(name.to_owned())
    } else {
        Err(error(
            spec,
            format!("`{name}` is not an R4 resource type (names are case-sensitive)"),
        ))
    }
}

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(spec: &str) -> Result<Self, FaultError> {
        let spec = spec.trim();
        if let Some(fault) = document_field(spec).or_else(|| per_code(spec)) {
            return fault;
        }
        if let Some(what) = spec.strip_prefix("cross-member-leak:") {
            return cross_member_leak(spec, what);
        }
        if let Some(what) = spec.strip_prefix("must-support-missing:") {
            return must_support_missing(spec, what);
        }
        if let Some(chain) = spec.strip_prefix("chain-ignored:") {
            return match chain.split_once('.') {
                Some((reference, chained)) if !reference.is_empty() && !chained.is_empty() => {
                    Ok(Self::ChainIgnored(chain.to_owned()))
                }
                _ => Err(error(
                    spec,
                    "name a chained parameter: chain-ignored:location.address-city",
                )),
            };
        }
        if let Some(how) = spec.strip_prefix("id-token:") {
            return IdTokenFault::ALL
                .iter()
                .find(|(name, _)| *name == how)
                .map(|(_, f)| Self::IdToken(*f))
                .ok_or_else(|| error(spec, format!("`{how}` is no way to break an id_token")));
        }
        if let Some((name, kind)) = spec.split_once(':') {
            return per_type(spec, name, resource_type(spec, kind)?);
        }
        let (name, value) = match spec.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (spec, None),
        };
        if let (Some((_, flag)), None) = (FLAGS.iter().find(|(n, _)| *n == name), value) {
            return Ok(flag.clone());
        }
        valued(spec, name, value)
    }
}

/// `document:NAME=JSON` or `document:-NAME`: a field of a discovery document set or removed.
fn document_field(spec: &str) -> Option<Result<Fault, FaultError>> {
    for (prefix, document) in Document::ALL {
        let Some(field) = spec
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            continue;
        };
        if let Some(name) = field.strip_prefix('-') {
            return Some(Ok(Fault::Field {
                document,
                name: name.to_owned(),
                value: None,
            }));
        }
        let Some((name, value)) = field.split_once('=') else {
            return Some(Err(error(
                spec,
                format!("write {prefix}:NAME=JSON or {prefix}:-NAME"),
            )));
        };
        let value: serde_json::Value = match serde_json::from_str(value) {
            Ok(value) => value,
            Err(e) => {
                return Some(Err(error(
                    spec,
                    format!("`{value}` is not JSON ({e}); quote strings"),
                )));
            }
        };
        return Some(Ok(Fault::Field {
            document,
            name: name.to_owned(),
            value: Some(value),
        }));
    }
    None
}

/// `metadata-drop:Type.CODE`, `search-ignores:Type.CODE`, `search-misses:Type.CODE`.
fn per_code(spec: &str) -> Option<Result<Fault, FaultError>> {
    for prefix in ["metadata-drop", "search-ignores", "search-misses"] {
        let Some(what) = spec
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(':'))
        else {
            continue;
        };
        let Some((kind, code)) = what.split_once('.') else {
            return Some(Err(error(spec, format!("write {prefix}:Type.CODE"))));
        };
        return Some(resource_type(spec, kind).map(|kind| {
            let code = code.to_owned();
            match prefix {
                "metadata-drop" => Fault::MetadataDrop { kind, code },
                "search-ignores" => Fault::SearchIgnores { kind, code },
                _ => Fault::SearchMisses { kind, code },
            }
        }));
    }
    None
}

/// `cross-member-leak:Type[.read|.id|.patient]`.
fn cross_member_leak(spec: &str, what: &str) -> Result<Fault, FaultError> {
    let (kind, via) = match what.split_once('.') {
        Some((kind, how)) => (
            kind,
            Some(
                Leak::ALL
                    .iter()
                    .find(|(name, _)| *name == how)
                    .map(|(_, leak)| *leak)
                    .ok_or_else(|| error(spec, format!("`{how}` is not read, id or patient")))?,
            ),
        ),
        None => (what, None),
    };
    Ok(Fault::CrossMemberLeak {
        kind: resource_type(spec, kind)?,
        via,
    })
}

/// `must-support-missing:PROFILE.PATH`: the profile must be one onramp has, and the path
/// one of its must-support elements.
fn must_support_missing(spec: &str, what: &str) -> Result<Fault, FaultError> {
    let Some((profile, path)) = what.split_once('.') else {
        return Err(error(
            spec,
            "say the profile and the element: must-support-missing:C4BB-Patient.deceasedBoolean",
        ));
    };
    use crate::validate::catalog::{CARIN, Catalog, US_CORE};
    let mut names: Vec<&str> = Vec::new();
    for ig in [CARIN, US_CORE] {
        if let Some((_, profiles)) = Catalog::global().ig(ig) {
            names.extend(
                profiles
                    .iter()
                    .filter(|p| &*p.resource_type != "Extension")
                    .map(|p| p.short()),
            );
        }
    }
    if !names.contains(&profile) {
        return Err(error(
            spec,
            format!(
                "no CARIN or US Core profile is called {profile}; they are {}",
                names.join(", ")
            ),
        ));
    }
    if path.is_empty()
        || path
            .split('.')
            .any(|part| part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(error(
            spec,
            format!("`{path}` is not an element path (member names joined by dots)"),
        ));
    }
    Ok(Fault::MustSupportMissing {
        profile: profile.to_owned(),
        path: path.to_owned(),
    })
}

/// `NAME:Type`: a fault of one resource type's answers.
fn per_type(spec: &str, name: &str, kind: String) -> Result<Fault, FaultError> {
    match name {
        "malformed-json" => Ok(Fault::MalformedJson(kind)),
        "deep-json" => Ok(Fault::DeepJson(kind)),
        "invalid-resource" => Ok(Fault::InvalidResource(kind)),
        "structure-violation" => Ok(Fault::StructureViolation(kind)),
        "profile-violation" => {
            use crate::validate::catalog::{CARIN, Catalog, FORMULARY, PLAN_NET, US_CORE};
            let mut types: Vec<String> = Vec::new();
            for name in [CARIN, US_CORE, PLAN_NET, FORMULARY] {
                if let Some((ig, _)) = Catalog::global().ig(name) {
                    types.extend(ig.supported.keys().map(|k| k.to_string()));
                }
            }
            if !types.contains(&kind) {
                types.sort_unstable();
                types.dedup();
                return Err(error(
                    spec,
                    format!(
                        "none of CARIN Blue Button 2.0.0, US Core, Plan-Net and the Drug Formulary has a profile for {kind}; they have profiles for {}",
                        types.join(", ")
                    ),
                ));
            }
            Ok(Fault::ProfileViolation(kind))
        }
        "foreign-patient" => Ok(Fault::ForeignPatient(kind)),
        "drop-next-link" => Ok(Fault::DropNextLink(kind)),
        "foreign-next-link" => Ok(Fault::ForeignNextLink(kind)),
        "not-searchset" => Ok(Fault::NotSearchset(kind)),
        "duplicate" => Ok(Fault::Duplicate(kind)),
        "dangling-reference" => Ok(Fault::DanglingReference(kind)),
        "dangling-contained" => Ok(Fault::DanglingContained(kind)),
        "include-as-match" => Ok(Fault::IncludeAsMatch(kind)),
        "include-missing" => Ok(Fault::IncludeMissing(kind)),
        "no-read" => Ok(Fault::NoRead(kind)),
        "revinclude-missing" => Ok(Fault::RevincludeMissing(kind)),
        _ => Err(error(spec, format!("unknown fault `{name}`"))),
    }
}

/// `NAME=VALUE` (or `NAME` alone where a value is optional): latency, status, rate limits.
fn valued(spec: &str, name: &str, value: Option<&str>) -> Result<Fault, FaultError> {
    match (name, value) {
        ("latency", Some(value)) => Ok(Fault::Latency(duration(spec, value)?)),
        ("status", Some(value)) => {
            let (code, fraction) = value.split_once('@').unwrap_or((value, "1"));
            let code: u16 = code
                .parse()
                .ok()
                .filter(|c| (400..=599).contains(c))
                .ok_or_else(|| error(spec, "the status must be 400 to 599"))?;
            let fraction: f64 = fraction
                .parse()
                .ok()
                .filter(|f: &f64| *f > 0.0 && *f <= 1.0)
                .ok_or_else(|| error(spec, "the fraction must be above 0 and at most 1"))?;
            Ok(Fault::Status { code, fraction })
        }
        ("rate-limit", Some(value)) => {
            let per_second = value
                .strip_suffix("/s")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| error(spec, "write the limit as requests per second, e.g. 5/s"))?;
            Ok(Fault::RateLimit { per_second })
        }
        ("anonymous-status", Some(value)) => match value.parse::<u16>() {
            Ok(code @ (403 | 404)) => Ok(Fault::AnonymousStatus(code)),
            _ => Err(error(spec, "the status is 403 or 404")),
        },
        ("slow-body", None) => Ok(Fault::SlowBody(Duration::from_millis(200))),
        ("slow-body", Some(value)) => Ok(Fault::SlowBody(duration(spec, value)?)),
        ("latency" | "status" | "rate-limit" | "anonymous-status", None) => {
            Err(error(spec, "it needs a value"))
        }
        _ => Err(error(spec, format!("unknown fault `{name}`"))),
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latency(d) => write!(f, "latency={}ms", d.as_millis()),
            Self::Status { code, fraction } => write!(f, "status={code}@{fraction}"),
            Self::RateLimit { per_second } => write!(f, "rate-limit={per_second}/s"),
            Self::MalformedJson(t) => write!(f, "malformed-json:{t}"),
            Self::DeepJson(t) => write!(f, "deep-json:{t}"),
            Self::InvalidResource(t) => write!(f, "invalid-resource:{t}"),
            Self::StructureViolation(t) => write!(f, "structure-violation:{t}"),
            Self::ProfileViolation(t) => write!(f, "profile-violation:{t}"),
            Self::MustSupportMissing { profile, path } => {
                write!(f, "must-support-missing:{profile}.{path}")
            }
            Self::ForeignPatient(t) => write!(f, "foreign-patient:{t}"),
            Self::DropNextLink(t) => write!(f, "drop-next-link:{t}"),
            Self::ForeignNextLink(t) => write!(f, "foreign-next-link:{t}"),
            Self::SlowBody(d) => write!(f, "slow-body={}ms", d.as_millis()),
            Self::NotSearchset(t) => write!(f, "not-searchset:{t}"),
            Self::Duplicate(t) => write!(f, "duplicate:{t}"),
            Self::DanglingReference(t) => write!(f, "dangling-reference:{t}"),
            Self::DanglingContained(t) => write!(f, "dangling-contained:{t}"),
            Self::Field {
                document,
                name,
                value: None,
            } => write!(f, "{}:-{name}", document.name()),
            Self::Field {
                document,
                name,
                value: Some(value),
            } => write!(f, "{}:{name}={value}", document.name()),
            Self::MetadataDrop { kind, code } => write!(f, "metadata-drop:{kind}.{code}"),
            Self::SearchIgnores { kind, code } => write!(f, "search-ignores:{kind}.{code}"),
            Self::SearchMisses { kind, code } => write!(f, "search-misses:{kind}.{code}"),
            Self::IncludeAsMatch(t) => write!(f, "include-as-match:{t}"),
            Self::IncludeMissing(t) => write!(f, "include-missing:{t}"),
            Self::NoRead(t) => write!(f, "no-read:{t}"),
            Self::ChainIgnored(chain) => write!(f, "chain-ignored:{chain}"),
            Self::RevincludeMissing(t) => write!(f, "revinclude-missing:{t}"),
            Self::CrossMemberLeak { kind, via: None } => write!(f, "cross-member-leak:{kind}"),
            Self::CrossMemberLeak {
                kind,
                via: Some(via),
            } => write!(f, "cross-member-leak:{kind}.{}", via.name()),
            Self::AnonymousStatus(code) => write!(f, "anonymous-status={code}"),
            Self::IdToken(how) => write!(f, "id-token:{}", how.name()),
            flag => f.write_str(
                FLAGS
                    .iter()
                    .find(|(_, known)| known == flag)
                    .map_or("?", |(name, _)| name),
            ),
        }
    }
}

/// The faults in force and the state some of them keep.
#[derive(Debug, Default)]
pub struct Faults {
    list: Vec<Fault>,
    requests: AtomicU64,
    bucket: Mutex<Option<(f64, Instant)>>,
}

/// What to do to one FHIR request before it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interception {
    /// Answer with this status instead.
    Status(u16),
    /// Answer 429, retry after this many seconds.
    RateLimited(u64),
}

impl Faults {
    pub fn new(list: Vec<Fault>) -> Self {
        Self {
            list,
            ..Self::default()
        }
    }

    pub fn list(&self) -> &[Fault] {
        &self.list
    }

    pub fn latency(&self) -> Option<Duration> {
        self.list.iter().find_map(|f| match f {
            Fault::Latency(d) => Some(*d),
            _ => None,
        })
    }

    pub fn slow_body(&self) -> Option<Duration> {
        self.list.iter().find_map(|f| match f {
            Fault::SlowBody(d) => Some(*d),
            _ => None,
        })
    }

    /// Whether `fault` is on (`Fault::ExpireCodes`, `Fault::Duplicate("Coverage".into())`).
    pub fn has(&self, fault: &Fault) -> bool {
        self.list.contains(fault)
    }

    /// The elements to leave out of resources that declare a profile: (profile short name,
    /// path).
    pub fn missing_must_support(&self) -> impl Iterator<Item = (&str, &str)> {
        self.list.iter().filter_map(|f| match f {
            Fault::MustSupportMissing { profile, path } => Some((profile.as_str(), path.as_str())),
            _ => None,
        })
    }

    /// Whether other members' `kind` resources leak `via` that way.
    pub fn leaks(&self, kind: &str, via: Leak) -> bool {
        self.list.iter().any(|f| {
            matches!(f, Fault::CrossMemberLeak { kind: k, via: v }
                if k == kind && v.is_none_or(|v| v == via))
        })
    }

    /// The status a read without a token is refused with, when not 401.
    pub fn anonymous_status(&self) -> Option<u16> {
        self.list.iter().find_map(|f| match f {
            Fault::AnonymousStatus(code) => Some(*code),
            _ => None,
        })
    }

    /// How the id_token is to be broken, if it is.
    pub fn id_token(&self) -> Option<IdTokenFault> {
        self.list.iter().find_map(|f| match f {
            Fault::IdToken(how) => Some(*how),
            _ => None,
        })
    }

    /// Apply the `*-field` faults of `document` to `body` (a JSON object).
    pub fn change_fields(&self, document: Document, body: &mut serde_json::Value) {
        let Some(members) = body.as_object_mut() else {
            return;
        };
        for fault in &self.list {
            if let Fault::Field {
                document: which,
                name,
                value,
            } = fault
                && *which == document
            {
                match value {
                    Some(value) => members.insert(name.clone(), value.clone()),
                    None => members.remove(name),
                };
            }
        }
    }

    /// The interactions and search parameters the CapabilityStatement leaves out, per type.
    pub fn metadata_drops(&self) -> impl Iterator<Item = (&str, &str)> {
        self.list.iter().filter_map(|f| match f {
            Fault::MetadataDrop { kind, code } => Some((kind.as_str(), code.as_str())),
            _ => None,
        })
    }

    /// Count one FHIR request and say whether a status or rate-limit fault takes it.
    pub fn intercept(&self) -> Option<Interception> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        for fault in &self.list {
            match fault {
                Fault::RateLimit { per_second } => {
                    if let Some(wait) = self.take_token(f64::from(*per_second)) {
                        return Some(Interception::RateLimited(wait));
                    }
                }
                Fault::Status { code, fraction } => {
                    // Request n fails when the running count of failures due steps up:
                    // failures are spread evenly and the same run fails the same requests.
                    let due = |k: u64| (k as f64 * fraction).floor();
                    if due(n + 1) > due(n) {
                        return Some(Interception::Status(*code));
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// A token bucket holding one second of requests: `None` when a token was taken, else
    /// the whole seconds until one is due.
    fn take_token(&self, rate: f64) -> Option<u64> {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let now = Instant::now();
        let (tokens, last) = bucket.unwrap_or((rate, now));
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * rate).min(rate);
        if tokens >= 1.0 {
            *bucket = Some((tokens - 1.0, now));
            None
        } else {
            *bucket = Some((tokens, now));
            Some(((1.0 - tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_spec_parses_and_prints_back() {
        for spec in [
            "latency=300ms",
            "status=503@0.2",
            "rate-limit=5/s",
            "malformed-json:Coverage",
            "deep-json:Coverage",
            "invalid-resource:Patient",
            "structure-violation:Coverage",
            "profile-violation:ExplanationOfBenefit",
            "foreign-patient:ExplanationOfBenefit",
            "drop-next-link:ExplanationOfBenefit",
            "foreign-next-link:ExplanationOfBenefit",
            "expire-codes",
            "slow-body=100ms",
            "not-searchset:Location",
            "duplicate:ExplanationOfBenefit",
            "dangling-reference:Coverage",
            "dangling-contained:ExplanationOfBenefit",
            "wrong-redirect",
            "omit-code",
            "wrong-state",
            "open-redirect",
            "reusable-codes",
            "ignore-pkce",
            "token-field:-scope",
            "token-field:token_type=\"MAC\"",
            "smart-field:-jwks_uri",
            "metadata-field:fhirVersion=\"3.0.2\"",
            "metadata-drop:ExplanationOfBenefit.type",
            "search-ignores:ExplanationOfBenefit.type",
            "search-misses:Coverage._id",
            "include-as-match:ExplanationOfBenefit",
            "include-missing:Coverage",
            "no-read:Coverage",
            "chain-ignored:location.address-city",
            "revinclude-missing:Practitioner",
            "cross-member-leak:Coverage",
            "cross-member-leak:Patient.read",
            "cross-member-leak:ExplanationOfBenefit.patient",
            "sign-in-as-first",
            "metadata-oauth-mismatch",
            "no-pragma",
            "cacheable-token",
            "anonymous-read",
            "anonymous-status=404",
            "no-challenge",
            "id-token:bad-signature",
            "id-token:foreign-fhir-user",
        ] {
            let fault: Fault = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(fault.to_string(), spec);
        }
        // Every bare name EXPECTED lists is one of FLAGS.
        for name in EXPECTED
            .split(", ")
            .filter(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        {
            assert!(name.parse::<Fault>().is_ok(), "{name} does not parse");
        }
        for (name, flag) in FLAGS {
            assert_eq!(name.parse::<Fault>().as_ref(), Ok(flag));
            assert_eq!(flag.to_string(), *name);
            assert!(EXPECTED.contains(name), "{name} is not in EXPECTED");
        }
        assert_eq!(
            "latency=2s".parse::<Fault>(),
            Ok(Fault::Latency(Duration::from_secs(2)))
        );
        assert_eq!(
            "status=500".parse::<Fault>(),
            Ok(Fault::Status {
                code: 500,
                fraction: 1.0
            })
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, says) in [
            ("latency=300", "not a duration"),
            ("status=200", "400 to 599"),
            ("status=503@2", "fraction"),
            ("rate-limit=5", "requests per second"),
            ("malformed-json:Patients", "not an R4 resource type"),
            ("explode", "unknown fault"),
            ("latency", "needs a value"),
            ("token-field:expires_in=three", "not JSON"),
            ("token-field:scope", "token-field:NAME=JSON"),
        ] {
            let message = spec.parse::<Fault>().expect_err(spec).to_string();
            assert!(message.contains(says), "{spec}: {message}");
            assert!(message.contains("expected one of"), "{message}");
        }
    }

    #[test]
    fn status_faults_hit_an_even_share_of_requests() {
        let faults = Faults::new(vec!["status=503@0.2".parse().expect("spec")]);
        let hits = (0..100).filter(|_| faults.intercept().is_some()).count();
        assert_eq!(hits, 20);
    }

    #[test]
    fn the_rate_limit_refuses_the_request_over_the_limit() {
        let faults = Faults::new(vec!["rate-limit=3/s".parse().expect("spec")]);
        let answers: Vec<_> = (0..4).map(|_| faults.intercept()).collect();
        assert_eq!(&answers[..3], &[None, None, None]);
        assert_eq!(answers[3], Some(Interception::RateLimited(1)));
    }
}
