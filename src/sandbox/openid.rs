//! OpenID Connect for the sandbox: an RSA key made when first needed (one per process),
//! its JWKS (`/jwks.json`), an OpenID configuration (`/.well-known/openid-configuration`),
//! and the `id_token` a token response carries when `openid` was granted (RS256, with
//! `fhirUser` when that scope was granted too). Key generation and signing are aws-lc-rs's and
//! jsonwebtoken's; the `id-token:…` faults break one property of the token each.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use axum::extract::State as Shared;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::State;
use super::faults::IdTokenFault;

/// The server's signing key and what it publishes of it.
pub struct Signer {
    key: EncodingKey,
    kid: String,
    jwks: Value,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A fresh RSA-2048 key.
    fn generate() -> Result<Self, String> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| e.to_string())?;
        let pkcs8 = pair.as_der().map_err(|e| e.to_string())?;
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let digest = <sha2::Sha256 as sha2::Digest>::digest(n.as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..12]);
        let jwks = json!({
            "keys": [{ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e }]
        });
        Ok(Self { key, kid, jwks })
    }
}

/// The signing key of every sandbox in this process, made on first use: an RSA key costs
/// 50 to 300 ms of CPU to make, and a run over several targets starts a sandbox for each at
/// once. Each sandbox publishes it in its own JWKS and signs with it, so an app sees what a
/// payer's key gives it; no check compares two sandboxes' keys.
static SIGNER: OnceLock<Result<Arc<Signer>, String>> = OnceLock::new();

/// The sandbox's signer.
#[derive(Debug, Default)]
pub struct Keys;

impl Keys {
    /// Make the key now, if it is not made yet (a sandbox starts this in the background, so
    /// that the first token response does not wait for it).
    pub fn prepare(&self) {
        let _ = self.get();
    }

    fn get(&self) -> Result<Arc<Signer>, String> {
        SIGNER
            .get_or_init(|| Signer::generate().map(Arc::new))
            .clone()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `id_token` for `member`'s grant to `client_id` with `scope`, as the faults allow;
/// `None` without `openid`, or when a fault withholds it.
pub fn id_token(state: &State, client_id: &str, member: usize, scope: &str) -> Option<String> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if !scopes.contains(&"openid") {
        return None;
    }
    let fault = state.faults.id_token();
    if fault == Some(IdTokenFault::Missing) {
        return None;
    }
    let signer = match state.keys.get() {
        Ok(signer) => signer,
        Err(error) => {
            tracing::error!(%error, "no signing key: the id_token is left out");
            return None;
        }
    };
    let patient = |index: usize| {
        state
            .store
            .member(index)
            .map(|m| m.patient_id)
            .unwrap_or_default()
    };
    let issued = now();
    let mut claims = json!({
        "iss": state.origin,
        "sub": patient(member),
        "aud": client_id,
        "iat": issued,
        "exp": issued + 3600,
    });
    if scopes.contains(&"fhirUser") {
        let whose = if fault == Some(IdTokenFault::ForeignFhirUser) {
            (member + 1) % state.store.member_count().max(1)
        } else {
            member
        };
        claims["fhirUser"] = json!(format!("{}/Patient/{}", state.fhir_base(), patient(whose)));
    }
    match fault {
        Some(IdTokenFault::WrongIssuer) => claims["iss"] = json!("https://elsewhere.invalid"),
        Some(IdTokenFault::WrongAudience) => claims["aud"] = json!("another-app"),
        Some(IdTokenFault::Expired) => {
            claims["iat"] = json!(issued - 7200);
            claims["exp"] = json!(issued - 3600);
        }
        Some(IdTokenFault::NoSubject) => {
            if let Some(object) = claims.as_object_mut() {
                object.remove("sub");
            }
        }
        _ => {}
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(if fault == Some(IdTokenFault::UnknownKid) {
        "not-in-the-jwks".to_owned()
    } else {
        signer.kid.clone()
    });
    if fault == Some(IdTokenFault::Unsigned) {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
        return Some(format!(
            "{}.{}.",
            part(&json!({ "alg": "none", "typ": "JWT" })),
            part(&claims)
        ));
    }
    let token = jsonwebtoken::encode(&header, &claims, &signer.key).ok()?;
    if fault == Some(IdTokenFault::BadSignature) {
        // Another signature of the same length: the key's, but over other bytes.
        let (signed, _) = token.rsplit_once('.')?;
        let other = jsonwebtoken::encode(&header, &json!({ "other": true }), &signer.key).ok()?;
        let (_, signature) = other.rsplit_once('.')?;
        return Some(format!("{signed}.{signature}"));
    }
    Some(token)
}

/// `GET /jwks.json`.
pub(crate) async fn jwks(Shared(state): Shared<Arc<State>>) -> Response {
    match state.keys.get() {
        Ok(signer) => {
            let mut response = axum::Json(signer.jwks.clone()).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            );
            response
        }
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error).into_response(),
    }
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
pub(crate) async fn configuration(Shared(state): Shared<Arc<State>>) -> Response {
    axum::Json(json!({
        "issuer": state.origin,
        "authorization_endpoint": state.authorize_url(),
        "token_endpoint": state.token_url(),
        "jwks_uri": state.jwks_url(),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser"],
    }))
    .into_response()
}
