//! `POST /oauth2/token`: the code exchange and token refresh (RFC 6749 §4.1.3, §6), with the
//! client authenticated by `client_secret` in the body or HTTP Basic, PKCE (RFC 7636), and
//! errors as RFC 6749 §5.2 JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::State;
use super::authorize::parameters;
use super::faults::{Document, Fault};
use super::grants::{Exchange, GrantError, Issued, Rules};

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
    params: &std::collections::HashMap<String, String>,
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
        (None, None) => {
            return Err(OAuthError::invalid_client(
                "no client authentication: send client_id and client_secret in the body, or HTTP Basic",
                true,
            ));
        }
    };
    let Some(client) = state.client(&client_id) else {
        return Err(OAuthError::invalid_client(
            format!("no client \"{client_id}\" is registered"),
            via_basic,
        ));
    };
    if !same_secret(&secret, &client.client_secret) {
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

fn exchange(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Issued, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(OAuthError::invalid_request(
            "the token request must be application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the request body is not UTF-8"))?;
    let params = parameters(text).map_err(OAuthError::invalid_request)?;
    let client_id = authenticate(state, headers, &params)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    match grant_type.as_str() {
        "authorization_code" => {
            let code = params
                .get("code")
                .filter(|c| !c.is_empty())
                .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
            let issued = state.grants.redeem(
                code,
                Exchange {
                    client_id: &client_id,
                    redirect_uri: params.get("redirect_uri").map(String::as_str),
                    code_verifier: params.get("code_verifier").map(String::as_str),
                },
                Rules {
                    code_lifetime: state.config.code_lifetime,
                    token_lifetime: state.config.token_lifetime,
                    force_expired: state.faults.has(&Fault::ExpireCodes),
                    reusable: state.faults.has(&Fault::ReusableCodes),
                    check_pkce: !state.faults.has(&Fault::IgnorePkce),
                    require_redirect_uri: state.config.persona.requires_redirect_uri_at_token(),
                },
            )?;
            Ok(issued)
        }
        "refresh_token" => {
            let refresh = params
                .get("refresh_token")
                .filter(|c| !c.is_empty())
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
            Ok(state
                .grants
                .refresh(refresh, &client_id, state.config.token_lifetime)?)
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
