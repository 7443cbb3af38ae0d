//! The token endpoint (`POST /oauth2/token`: the code exchange and token refresh, RFC 6749
//! §4.1.3 and §6, with PKCE, RFC 7636) and its companions, token revocation (RFC 7009) and
//! introspection (RFC 7662). Every one authenticates the client by `client_secret` in the
//! body or HTTP Basic, and answers errors as RFC 6749 §5.2 JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sha2::{Digest, Sha256};

use std::collections::HashMap;

use super::State;
use super::authorize::{DEFAULT_SCOPE, parameters};
use super::faults::{Document, Fault};
use super::grants::{Exchange, GrantError, Issued, Pkce, RefreshRules, Rules};

/// An RFC 6749 §5.2 error.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, axum::Json(body)).into_response();
        no_store(&mut response);
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"onramp sandbox\""),
            );
        }
        response
    }
}

impl From<GrantError> for OAuthError {
    fn from(error: GrantError) -> Self {
        match error {
            GrantError::MissingRedirect => Self::invalid_request(error.to_string()),
            GrantError::WiderScope(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_scope", error.to_string())
            }
            GrantError::Full => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                error.to_string(),
            ),
            _ => Self::new(StatusCode::BAD_REQUEST, "invalid_grant", error.to_string()),
        }
    }
}

/// Compare secrets by their digests, so the time taken says nothing about the secret.
fn same_secret(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

/// The client that authenticated: HTTP Basic or `client_id` + `client_secret` in the body,
/// never both (RFC 6749 §2.3).
fn authenticate(
    state: &State,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                OAuthError::invalid_client("the Authorization header is not text", true)
            })?;
            let encoded = text.strip_prefix("Basic ").ok_or_else(|| {
                OAuthError::invalid_client(
                    "the token endpoint takes HTTP Basic or client_secret in the body",
                    true,
                )
            })?;
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    OAuthError::invalid_client(
                        "the Basic credentials are not base64 of id:secret",
                        true,
                    )
                })?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                OAuthError::invalid_client("the Basic credentials are not id:secret", true)
            })?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before encoding.
            let unescape = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Some((unescape(id), unescape(secret)))
        }
    };
    let in_body = params.get("client_secret");
    let (client_id, secret, via_basic) = match (basic, in_body) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "the client authenticated twice (HTTP Basic and client_secret); use one",
            ));
        }
        (Some((id, secret)), None) => {
            if params
                .get("client_id")
                .is_some_and(|body_id| body_id != &id)
            {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            (id, secret, true)
        }
        (None, Some(_)) if !state.config.persona.secret_in_body() => {
            return Err(OAuthError::invalid_client(
                "this server takes HTTP Basic client authentication (client_secret_basic), not client_secret in the body",
                true,
            ));
        }
        (None, Some(secret)) => {
            let id = params.get("client_id").ok_or_else(|| {
                OAuthError::invalid_request("client_secret was sent without client_id")
            })?;
            (id.clone(), secret.clone(), false)
        }
        (None, None)
            if params
                .get("client_id")
                .and_then(|id| state.client(id))
                .is_some_and(super::Client::is_public) =>
        {
            // A public client proves itself with the PKCE verifier its code demands.
            return Ok(params.get("client_id").cloned().unwrap_or_default());
        }
        (None, None) => {
            return Err(OAuthError::invalid_client(
                "no client authentication: send client_id and client_secret in the body, or HTTP Basic",
                true,
            ));
        }
    };
    let Some(client) = state.client(&client_id) else {
        if state.faults.has(&Fault::AcceptUnknownClient) {
            return Ok(client_id);
        }
        return Err(OAuthError::invalid_client(
            format!("no client \"{client_id}\" is registered"),
            via_basic,
        ));
    };
    let Some(expected) = &client.client_secret else {
        return Err(OAuthError::invalid_client(
            format!(
                "\"{client_id}\" is a public client: it has no secret; send client_id and the code_verifier"
            ),
            via_basic,
        ));
    };
    if !same_secret(&secret, expected) && !state.faults.has(&Fault::AcceptAnySecret) {
        return Err(OAuthError::invalid_client(
            "the client secret is wrong",
            via_basic,
        ));
    }
    Ok(client_id)
}

fn success(issued: Issued, state: &State) -> Response {
    let patient = state
        .store
        .member(issued.authorization.member)
        .map(|m| m.patient_id)
        .unwrap_or_default();
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": state.config.token_lifetime.as_secs(),
        "refresh_token": issued.refresh_token,
        "scope": issued.authorization.scope,
        "patient": patient,
    });
    if let Some(id_token) = super::openid::id_token(
        state,
        &issued.authorization.client_id,
        issued.authorization.member,
        &issued.authorization.scope,
    ) {
        body["id_token"] = json!(id_token);
    }
    state.faults.change_fields(Document::Token, &mut body);
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    no_store(&mut response);
    if state.faults.has(&Fault::CacheableToken) {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=3600"),
        );
    }
    if state.faults.has(&Fault::NoPragma) {
        response.headers_mut().remove(header::PRAGMA);
    }
    response
}

/// `POST /oauth2/token`
pub(crate) async fn token(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match exchange(&state, &headers, &body) {
        Ok(issued) => success(issued, &state),
        Err(error) => error.into_response(),
    }
}

/// The parameters of a form POST (`application/x-www-form-urlencoded`, every one once).
fn form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the request must be application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the request body is not UTF-8"))?;
    parameters(text).map_err(|e| OAuthError::invalid_request(e.to_string()))
}

/// How PKCE is judged, faults included.
fn pkce(state: &State) -> Pkce {
    let faults = &state.faults;
    if faults.has(&Fault::IgnorePkce) {
        Pkce::Off
    } else if faults.has(&Fault::PkceOptional) {
        Pkce::Optional
    } else if faults.has(&Fault::PkceAnyVerifier) {
        Pkce::AnyVerifier
    } else if faults.has(&Fault::PkcePlain) {
        Pkce::AlsoPlain
    } else {
        Pkce::S256
    }
}

fn exchange(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Issued, OAuthError> {
    let params = form(headers, body)?;
    let client_id = authenticate(state, headers, &params)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    let lifetime = state.config.token_lifetime;
    match grant_type.as_str() {
        "authorization_code" => {
            let code = params
                .get("code")
                .filter(|c| !c.is_empty())
                .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
            let redeemed = state.grants.redeem(
                code,
                Exchange {
                    client_id: &client_id,
                    redirect_uri: params.get("redirect_uri").map(String::as_str),
                    code_verifier: params.get("code_verifier").map(String::as_str),
                },
                Rules {
                    code_lifetime: state.config.code_lifetime,
                    token_lifetime: lifetime,
                    force_expired: state.faults.has(&Fault::ExpireCodes),
                    reusable: state.faults.has(&Fault::ReusableCodes),
                    pkce: pkce(state),
                    require_redirect_uri: state.config.persona.requires_redirect_uri_at_token(),
                    die_on_error: state.faults.has(&Fault::CodesDieOnError),
                },
            );
            match redeemed {
                Err(GrantError::UnknownCode) if state.faults.has(&Fault::AcceptUnknownCodes) => {
                    Ok(state
                        .grants
                        .issue_unearned(&client_id, DEFAULT_SCOPE, lifetime)?)
                }
                other => Ok(other?),
            }
        }
        "refresh_token" => {
            let refresh = params
                .get("refresh_token")
                .filter(|c| !c.is_empty())
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
            let scope = params.get("scope").map(String::as_str);
            let refreshed = state.grants.refresh(
                refresh,
                &client_id,
                scope,
                RefreshRules {
                    token_lifetime: lifetime,
                    widen: state.faults.has(&Fault::RefreshWidensScope),
                    keep_old: state.faults.has(&Fault::RefreshKeepsOld),
                    add_scope: state.faults.has(&Fault::RefreshAddsScope),
                    unusable: state.faults.has(&Fault::RefreshUnusableToken),
                    too_narrow: state.faults.has(&Fault::RefreshNarrowsTooFar),
                },
            );
            match refreshed {
                Err(GrantError::UnknownRefresh)
                    if state.faults.has(&Fault::RefreshAcceptsAny)
                        && !state.grants.ever_issued(refresh) =>
                {
                    Ok(state.grants.issue_unearned(
                        &client_id,
                        scope.unwrap_or(DEFAULT_SCOPE),
                        lifetime,
                    )?)
                }
                other => Ok(other?),
            }
        }
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant_type \"{other}\" is not supported; use authorization_code or refresh_token"
            ),
        )),
    }
}

/// The token a revocation or introspection request names.
fn named_token(params: &HashMap<String, String>) -> Result<&str, OAuthError> {
    params
        .get("token")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))
}

/// `POST` to the revocation endpoint (RFC 7009 §2.1): 200 with an empty body, whether or
/// not the token was known (§2.2).
pub(crate) async fn revoke(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let revoked = (|| {
        let params = form(&headers, &body)?;
        let client_id = authenticate(&state, &headers, &params)?;
        let token = named_token(&params)?;
        if state.faults.has(&Fault::RevocationNoop) {
            return Ok(());
        }
        state
            .grants
            .revoke(token, &client_id)
            .map_err(|e| OAuthError::invalid_request(e.to_string()))
    })();
    match revoked {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(error) => error.into_response(),
    }
}

/// `POST` to the introspection endpoint (RFC 7662 §2.1): what a token is, if it is live,
/// with SMART App Launch 2.0's members ("Token Introspection": `scope`, `client_id`, `exp`,
/// the launch context, `sub` and `fhirUser` when `openid fhirUser` were granted).
pub(crate) async fn introspect(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answered = (|| {
        let params = form(&headers, &body)?;
        authenticate(&state, &headers, &params)?;
        let token = named_token(&params)?;
        let live = state.grants.introspect(token);
        let Some(live) = live else {
            if state.faults.has(&Fault::IntrospectionAlwaysActive) {
                return Ok(
                    json!({ "active": true, "scope": DEFAULT_SCOPE, "token_type": "Bearer" }),
                );
            }
            return Ok(json!({ "active": false }));
        };
        let authorization = &live.authorization;
        let patient = state
            .store
            .member(authorization.member)
            .map(|m| m.patient_id)
            .unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut body = json!({
            "active": true,
            "scope": authorization.scope,
            "client_id": authorization.client_id,
            "exp": now + live.expires_in,
            "iss": state.origin,
            "patient": patient,
        });
        if !live.refresh {
            body["token_type"] = json!("Bearer");
        }
        let scopes: Vec<&str> = authorization.scope.split_whitespace().collect();
        if scopes.contains(&"openid") {
            body["sub"] = json!(patient);
            if scopes.contains(&"fhirUser") {
                body["fhirUser"] = json!(format!("{}/Patient/{patient}", state.fhir_base()));
            }
        }
        state
            .faults
            .change_fields(Document::Introspection, &mut body);
        Ok::<_, OAuthError>(body)
    })();
    match answered {
        Ok(body) => {
            let mut response = (StatusCode::OK, axum::Json(body)).into_response();
            no_store(&mut response);
            response
        }
        Err(error) => error.into_response(),
    }
}
