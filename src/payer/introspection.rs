//! Token introspection (RFC 7662; SMART App Launch 2.0, "Token Introspection") judged on
//! what the introspection endpoint answered about a token.

use serde_json::Value;

use super::failure::StepFailure;
use crate::infra::words::listed;

/// What the token response said of a token, for its introspection to agree with.
#[derive(Debug)]
pub struct Issued<'a> {
    /// The app's client_id.
    pub client_id: &'a str,
    /// The scope granted.
    pub scope: &'a str,
    /// The launch context's patient, if the token response named one.
    pub patient: Option<&'a str>,
}

/// The introspection `live` of a live access token, at time `now` (seconds since the
/// epoch): active, with the client, scope and launch context it was issued with and an
/// `exp` not past.
pub fn live(live: &Value, issued: &Issued<'_>, now: i64) -> Result<(), StepFailure> {
    if live.get("active") != Some(&Value::Bool(true)) {
        return Err(StepFailure::conformance(format!(
            "introspection of the live access token says active: {} (RFC 7662 §2.2: true)",
            live.get("active")
                .map_or_else(|| "(missing)".into(), Value::to_string)
        )));
    }
    let mut problems = Vec::new();
    let text = |name: &str| live.get(name).and_then(Value::as_str);
    if text("client_id") != Some(issued.client_id) {
        problems.push(format!(
            "client_id is {:?}, not the app's",
            text("client_id").unwrap_or("(missing)")
        ));
    }
    let mut want: Vec<&str> = issued.scope.split_whitespace().collect();
    want.sort_unstable();
    match text("scope") {
        Some(scope) => {
            let mut got: Vec<&str> = scope.split_whitespace().collect();
            got.sort_unstable();
            if got != want {
                problems.push(format!(
                    "scope is \"{scope}\", but the token response granted \"{}\"",
                    issued.scope
                ));
            }
        }
        None => problems.push("scope is missing".into()),
    }
    match live.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp >= now - 60 => {}
        Some(exp) => problems.push(format!("exp ({exp}) has passed, yet the token is live")),
        None => problems.push("exp is missing or not a number".into()),
    }
    if let Some(patient) = issued.patient
        && text("patient") != Some(patient)
    {
        problems.push(format!(
            "patient is {:?}, but the token response named {patient}",
            text("patient").unwrap_or("(missing)")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StepFailure::conformance(listed(
            "the introspection of the live access token does not describe it (SMART App Launch 2.0, Token Introspection: active, scope, client_id and exp as granted, and the launch context):",
            &problems,
        )))
    }
}

/// The introspection `dead` of a revoked access token (RFC 7009 §2: a revoked token is
/// invalid; RFC 7662 §2.2): `active: false`, and nothing more (a SHOULD).
pub fn revoked(dead: &Value) -> Result<(), StepFailure> {
    match dead.get("active") {
        Some(Value::Bool(false)) => {}
        other => {
            return Err(StepFailure::conformance(format!(
                "introspection of the revoked access token says active: {} (RFC 7009 §2: a revoked token is invalid; RFC 7662 §2.2: active false)",
                other.map_or_else(|| "(missing)".into(), Value::to_string)
            )));
        }
    }
    let extra: Vec<&String> = dead
        .as_object()
        .map(|o| o.keys().filter(|k| *k != "active").collect())
        .unwrap_or_default();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(StepFailure::warning(format!(
            "the answer for the revoked token also tells {}; RFC 7662 §2.2 says an inactive token's answer SHOULD NOT say more than active: false",
            extra
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::fault::FailureKind;

    const ISSUED: Issued<'static> = Issued {
        client_id: "app",
        scope: "patient/*.read openid",
        patient: Some("p"),
    };

    #[test]
    fn a_live_token_is_described_as_issued() {
        let live = serde_json::json!({
            "active": true, "client_id": "app", "scope": "openid patient/*.read",
            "exp": 1_000, "patient": "p",
        });
        assert_eq!(super::live(&live, &ISSUED, 900), Ok(()));
        let inactive = serde_json::json!({"active": false});
        let failure = super::live(&inactive, &ISSUED, 900).expect_err("inactive");
        assert_eq!(failure.kind, FailureKind::Conformance);
        assert!(
            failure.message.contains("active: false"),
            "{}",
            failure.message
        );
        let wrong = serde_json::json!({
            "active": true, "client_id": "other", "scope": "openid", "exp": 10, "patient": "q",
        });
        let failure = super::live(&wrong, &ISSUED, 900).expect_err("wrong");
        for said in [
            "client_id is \"other\"",
            "scope is \"openid\"",
            "exp (10) has passed",
            "patient is \"q\"",
        ] {
            assert!(
                failure.message.contains(said),
                "{said}: {}",
                failure.message
            );
        }
    }

    #[test]
    fn a_revoked_token_is_inactive_and_says_nothing_more() {
        assert_eq!(revoked(&serde_json::json!({"active": false})), Ok(()));
        let live = revoked(&serde_json::json!({"active": true})).expect_err("live");
        assert_eq!(live.kind, FailureKind::Conformance);
        assert!(live.message.contains("active: true"), "{}", live.message);
        let chatty = revoked(&serde_json::json!({"active": false, "scope": "openid"}))
            .expect_err("says more");
        assert_eq!(chatty.severity, crate::infra::fault::Severity::Warning);
        assert!(
            chatty.message.contains("also tells scope"),
            "{}",
            chatty.message
        );
    }
}
