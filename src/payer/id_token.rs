//! The OpenID Connect `id_token` a token response carries when `openid` was granted (SMART
//! App Launch 2.0, "Scopes for requesting identity data"; OpenID Connect Core 1.0 §2,
//! §3.1.3.7): reading its header and claims, and checking its signature against the
//! server's JSON Web Key Set with jsonwebtoken. Pure functions; fetching the keys is the
//! run's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::failure::StepFailure;

/// An id_token's two readable parts.
#[derive(Debug, Clone)]
pub struct IdToken {
    pub header: serde_json::Map<String, Value>,
    pub claims: serde_json::Map<String, Value>,
}

impl IdToken {
    /// Read a compact JWS (`header.claims.signature`) without trusting it; one that cannot
    /// be read is the payer's fault.
    pub fn read(token: &str) -> Result<IdToken, StepFailure> {
        Self::parts(token).map_err(StepFailure::conformance)
    }

    fn parts(token: &str) -> Result<IdToken, String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, _signature] = parts.as_slice() else {
            return Err(format!(
                "the id_token has {} parts, not the three of a signed JWT",
                parts.len()
            ));
        };
        let object = |part: &str, what: &str| -> Result<serde_json::Map<String, Value>, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|_| format!("the id_token's {what} is not base64url"))?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(format!("the id_token's {what} is not a JSON object")),
            }
        };
        Ok(IdToken {
            header: object(header, "header")?,
            claims: object(claims, "claims")?,
        })
    }

    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }
}

/// OpenID Connect Core 1.0 §3.1.3.7 and SMART 2.0: the token is signed with RS256 by a key of
/// `jwks` (the one its `kid` names, or the only RSA key when it names none).
pub fn verify_signature(token: &str, jwks: &Value) -> Result<(), StepFailure> {
    signature(token, jwks).map_err(StepFailure::conformance)
}

fn signature(token: &str, jwks: &Value) -> Result<(), String> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| format!("the id_token's header cannot be read: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!(
            "the id_token is signed with {:?}, not RS256 (SMART App Launch 2.0 requires RS256)",
            header.alg
        ));
    }
    let set: JwkSet = serde_json::from_value(jwks.clone())
        .map_err(|e| format!("the JSON Web Key Set cannot be read: {e}"))?;
    let rsa: Vec<&Jwk> = set
        .keys
        .iter()
        .filter(|k| matches!(k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)))
        .collect();
    let key = match &header.kid {
        Some(kid) => rsa
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .ok_or_else(|| {
                format!("the JSON Web Key Set has no RSA key with the id_token's kid {kid:?}")
            })?,
        None => match rsa.as_slice() {
            [only] => only,
            [] => return Err("the JSON Web Key Set has no RSA key".into()),
            _ => {
                return Err(
                    "the id_token names no kid and the JSON Web Key Set has several RSA keys"
                        .into(),
                );
            }
        },
    };
    let key = DecodingKey::from_jwk(key).map_err(|e| format!("the key cannot be used: {e}"))?;
    // The signature alone: the claims are judged one by one elsewhere.
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|_| ())
        .map_err(|e| format!("the id_token's signature does not verify with the server's key: {e}"))
}

/// OpenID Connect Core 1.0 §3.1.3.7: `iss` is the issuer, `aud` contains the client.
pub fn issued_for(token: &IdToken, issuer: &str, client_id: &str) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    match token.claim("iss").and_then(Value::as_str) {
        Some(iss) if iss.trim_end_matches('/') == issuer.trim_end_matches('/') => {}
        Some(iss) => problems.push(format!("iss is {iss}, not the server's issuer {issuer}")),
        None => problems.push("there is no iss".into()),
    }
    let audience: Vec<&str> = match token.claim("aud") {
        Some(Value::String(one)) => vec![one],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audience.contains(&client_id) {
        problems.push(format!(
            "aud ({}) does not name the app's client_id {client_id}",
            if audience.is_empty() {
                "missing".to_owned()
            } else {
                audience.join(", ")
            }
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// OpenID Connect Core 1.0 §2: `exp` is in the future, `iat` not (allowing `leeway` seconds of
/// clock difference), and `exp` after `iat`.
pub fn current(token: &IdToken, now: i64, leeway: i64) -> Result<(), Vec<String>> {
    let time = |name: &str| token.claim(name).and_then(Value::as_i64);
    let mut problems = Vec::new();
    match (time("iat"), time("exp")) {
        (Some(iat), Some(exp)) => {
            if exp <= now - leeway {
                problems.push(format!("exp ({exp}) has passed (now {now})"));
            }
            if iat > now + leeway {
                problems.push(format!("iat ({iat}) is in the future (now {now})"));
            }
            if exp <= iat {
                problems.push(format!("exp ({exp}) is not after iat ({iat})"));
            }
        }
        (iat, exp) => {
            if iat.is_none() {
                problems.push("there is no numeric iat".into());
            }
            if exp.is_none() {
                problems.push("there is no numeric exp".into());
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// OpenID Connect Core 1.0 §2: `sub` is a string of at most 255 ASCII characters.
pub fn subject(token: &IdToken) -> Result<(), StepFailure> {
    sub(token).map_err(|problem| {
        StepFailure::conformance(format!(
            "the id_token's subject is wrong (OpenID Connect Core 1.0 §2): {problem}"
        ))
    })
}

fn sub(token: &IdToken) -> Result<(), String> {
    match token.claim("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() && sub.len() <= 255 => Ok(()),
        Some("") => Err("sub is empty".into()),
        Some(_) => Err("sub is longer than 255 characters".into()),
        None => Err("there is no sub".into()),
    }
}

/// SMART App Launch 2.0 (`fhirUser`): the resource the id_token names as its user, as a path
/// on the FHIR base `base` (it may be absolute on that base, or a relative `Type/id`).
pub fn fhir_user(token: &IdToken, base: &str) -> Result<String, StepFailure> {
    let Some(user) = token.claim("fhirUser").and_then(Value::as_str) else {
        return Err(StepFailure::conformance(
            "the id_token has no fhirUser claim, though fhirUser was asked for (SMART App Launch 2.0)",
        ));
    };
    let base = base.trim_end_matches('/');
    let path = user
        .strip_prefix(base)
        .unwrap_or(user)
        .trim_start_matches('/');
    if path.contains("://") {
        return Err(StepFailure::conformance(format!(
            "fhirUser {user} is not on the FHIR base {base}"
        )));
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(claims: Value) -> IdToken {
        IdToken {
            header: serde_json::Map::new(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn claims_are_judged_one_property_at_a_time() {
        let good = token(
            json!({"iss": "https://s/", "aud": ["a", "app"], "sub": "p1", "iat": 100, "exp": 200}),
        );
        assert_eq!(issued_for(&good, "https://s", "app"), Ok(()));
        assert_eq!(current(&good, 150, 60), Ok(()));
        assert_eq!(subject(&good), Ok(()));
        let bad = token(json!({"iss": "https://other", "aud": "x", "iat": 500, "exp": 250}));
        assert_eq!(
            issued_for(&bad, "https://s", "app")
                .expect_err("both")
                .len(),
            2
        );
        assert_eq!(current(&bad, 400, 60).expect_err("all").len(), 3);
        assert!(subject(&bad).is_err());
    }

    #[test]
    fn a_token_that_is_not_three_parts_is_no_signed_jwt() {
        assert!(IdToken::read("a.b").is_err());
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"sub":"p"}"#)
        );
        let read = IdToken::read(&unsigned).expect("readable");
        assert_eq!(read.claim("sub"), Some(&json!("p")));
        assert!(verify_signature(&unsigned, &json!({"keys": []})).is_err());
    }

    /// fhirUser is a resource on the FHIR base, absolute or relative; one elsewhere, or none,
    /// is the payer's fault.
    #[test]
    fn fhir_user_is_a_path_on_the_fhir_base() {
        let with = |claims: Value| IdToken {
            header: serde_json::Map::new(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        };
        let base = "https://fhir.example/r4/";
        let absolute = with(serde_json::json!({"fhirUser": "https://fhir.example/r4/Patient/p"}));
        assert_eq!(fhir_user(&absolute, base).unwrap(), "Patient/p");
        let relative = with(serde_json::json!({"fhirUser": "Patient/p"}));
        assert_eq!(fhir_user(&relative, base).unwrap(), "Patient/p");
        let elsewhere = with(serde_json::json!({"fhirUser": "https://other.example/Patient/p"}));
        let failure = fhir_user(&elsewhere, base).unwrap_err();
        assert_eq!(failure.kind, crate::infra::fault::FailureKind::Conformance);
        assert!(
            failure.message.contains("not on the FHIR base"),
            "{failure:?}"
        );
        let none = with(serde_json::json!({}));
        assert!(
            fhir_user(&none, base)
                .unwrap_err()
                .message
                .contains("no fhirUser")
        );
    }
}
