//! SMART scopes (App Launch 2.0 §"Scopes and Launch Context"): what a space-separated
//! scope string lets a token read, and whether one scope string is within another. The
//! sandbox enforces them on every read and refresh; the checks judge a payer's grants with
//! the same rules.
//!
//! Resource scopes are `context/Type.permissions`: the context `patient`, `user` or
//! `system`; the type a resource type or `*`; the permissions SMART v1's `read`, `write`
//! or `*`, or SMART v2's `c`, `r`, `u`, `d`, `s` in that order (`rs`, `cruds`), optionally
//! followed by `?param=value` (a v2 finer-grained scope, which grants no more than its
//! unqualified form). Every other scope (`openid`, `launch/patient`, `offline_access`)
//! grants no read and is within another scope string only when it is in it.

use super::failure::StepFailure;

/// What a token may do with a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// `GET [base]/Type/id`
    Read,
    /// `GET [base]/Type?…`
    Search,
}

/// A parsed resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope<'a> {
    pub context: &'a str,
    /// A resource type, or `*`.
    pub kind: &'a str,
    read: bool,
    search: bool,
    /// Any of create, update, delete (v1 `write`).
    write: bool,
    /// A v2 `?query` qualifier: the scope grants at most its unqualified form.
    pub qualified: bool,
}

impl<'a> ResourceScope<'a> {
    /// Parse `patient/Coverage.read`, `user/*.rs`, `patient/Observation.rs?category=x`.
    pub fn parse(scope: &'a str) -> Option<Self> {
        let (context, rest) = scope.split_once('/')?;
        if !matches!(context, "patient" | "user" | "system") {
            return None;
        }
        let (kind, permissions) = rest.split_once('.')?;
        let (permissions, qualified) = match permissions.split_once('?') {
            Some((permissions, _)) => (permissions, true),
            None => (permissions, false),
        };
        let valid_kind = kind == "*"
            || (kind.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
                && kind.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !valid_kind {
            return None;
        }
        let (read, search, write) = match permissions {
            "read" => (true, true, false),
            "*" => (true, true, true),
            "write" => (false, false, true),
            v2 if is_v2(v2) => (
                v2.contains('r'),
                v2.contains('s'),
                v2.contains(['c', 'u', 'd']),
            ),
            _ => return None,
        };
        Some(Self {
            context,
            kind,
            read,
            search,
            write,
            qualified,
        })
    }

    /// Whether it lets a token do `interaction` on `kind`.
    pub fn permits(&self, kind: &str, interaction: Interaction) -> bool {
        (self.kind == "*" || self.kind == kind)
            && match interaction {
                Interaction::Read => self.read,
                Interaction::Search => self.search,
            }
    }

    /// Whether everything it grants, `wider` grants too.
    fn within(&self, wider: &ResourceScope<'_>) -> bool {
        self.context == wider.context
            && (wider.kind == "*" || wider.kind == self.kind)
            && (!self.read || wider.read)
            && (!self.search || wider.search)
            && (!self.write || wider.write)
            && (self.qualified || !wider.qualified)
    }
}

/// SMART v2 permissions: a non-empty subsequence of `cruds`.
fn is_v2(permissions: &str) -> bool {
    let mut order = "cruds".chars();
    !permissions.is_empty() && permissions.chars().all(|c| order.any(|o| o == c))
}

/// Whether the scopes in `granted` let a token do `interaction` on `kind` (unqualified:
/// a `?query` scope grants only part of a type, so it does not count).
pub fn permits(granted: &str, kind: &str, interaction: Interaction) -> bool {
    granted
        .split_whitespace()
        .filter_map(ResourceScope::parse)
        .any(|scope| !scope.qualified && scope.permits(kind, interaction))
}

/// Whether every scope of `narrow` is in `wide`, or (a resource scope) is granted by one
/// of `wide`'s: `patient/Coverage.read` is within `patient/*.read`.
pub fn within(narrow: &str, wide: &str) -> bool {
    outside(narrow, wide).is_empty()
}

/// The scopes of `narrow` that `wide` does not cover.
pub fn outside<'a>(narrow: &'a str, wide: &str) -> Vec<&'a str> {
    let wide_scopes: Vec<&str> = wide.split_whitespace().collect();
    let wide_resources: Vec<ResourceScope<'_>> = wide_scopes
        .iter()
        .filter_map(|s| ResourceScope::parse(s))
        .collect();
    narrow
        .split_whitespace()
        .filter(|scope| {
            if wide_scopes.contains(scope) {
                return false;
            }
            match ResourceScope::parse(scope) {
                Some(resource) => !wide_resources.iter().any(|w| resource.within(w)),
                None => true,
            }
        })
        .collect()
}

/// `granted` narrowed so that it no longer lets a token read or search `kind`: scopes
/// for `kind` are dropped, and a wildcard scope becomes one scope per type of `others`
/// with the same context and permissions (`patient/*.read` → `patient/Patient.read …`).
/// `None` when no resource scope would be left (nothing to prove a refusal against).
pub fn excluding(granted: &str, kind: &str, others: &[String]) -> Option<String> {
    let mut kept: Vec<String> = Vec::new();
    for scope in granted.split_whitespace() {
        match ResourceScope::parse(scope) {
            Some(s) if s.kind == "*" => {
                let suffix = &scope[scope.find('.').unwrap_or(scope.len())..];
                kept.extend(
                    others
                        .iter()
                        .filter(|other| other.as_str() != kind)
                        .map(|other| format!("{}/{other}{suffix}", s.context)),
                );
            }
            Some(s) if s.kind == kind => {}
            _ => kept.push(scope.to_owned()),
        }
    }
    kept.dedup();
    kept.iter()
        .any(|s| ResourceScope::parse(s).is_some())
        .then(|| kept.join(" "))
}

/// The token response's `scope` (SMART App Launch 2.0, "Obtain access token": required,
/// because it may differ from what was asked; RFC 6749 §3.3: a space-separated string), and
/// which of the `requested` scopes it leaves out (a server may grant less).
pub fn granted_of<'r>(
    scope: Option<&serde_json::Value>,
    requested: &'r [String],
) -> Result<Vec<&'r str>, StepFailure> {
    match scope {
        Some(serde_json::Value::String(granted)) => {
            let granted: std::collections::BTreeSet<&str> = granted.split_whitespace().collect();
            Ok(requested
                .iter()
                .map(String::as_str)
                .filter(|s| !granted.contains(s))
                .collect())
        }
        Some(other) => Err(StepFailure::conformance(format!(
            "scope is {other}, not a space-separated string (RFC 6749 §3.3)"
        ))),
        None => Err(StepFailure::conformance(
            "the token response has no scope (SMART App Launch 2.0, \"Obtain access token\": scope is required, because it may differ from what was asked)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The granted scope is a string; what it leaves out of the request is said, not failed.
    #[test]
    fn the_granted_scope_is_read_and_compared() {
        let requested = ["patient/*.read".to_owned(), "openid".to_owned()];
        let granted = serde_json::json!("patient/*.read");
        assert_eq!(granted_of(Some(&granted), &requested), Ok(vec!["openid"]));
        let number = serde_json::json!(3);
        assert!(
            granted_of(Some(&number), &requested)
                .expect_err("not a string")
                .message
                .contains("not a space-separated string")
        );
        assert!(
            granted_of(None, &requested)
                .expect_err("none")
                .message
                .contains("has no scope")
        );
    }

    #[test]
    fn v1_and_v2_scopes_grant_reads_and_searches() {
        assert!(permits(
            "patient/*.read openid",
            "Coverage",
            Interaction::Read
        ));
        assert!(permits(
            "patient/Coverage.rs",
            "Coverage",
            Interaction::Search
        ));
        assert!(!permits(
            "patient/Coverage.r",
            "Coverage",
            Interaction::Search
        ));
        assert!(!permits(
            "patient/Coverage.s",
            "Coverage",
            Interaction::Read
        ));
        assert!(!permits(
            "patient/Patient.read",
            "Coverage",
            Interaction::Read
        ));
        assert!(!permits("patient/*.write", "Coverage", Interaction::Read));
        assert!(!permits(
            "patient/Coverage.rs?status=active",
            "Coverage",
            Interaction::Read
        ));
        assert!(!permits(
            "launch/patient openid",
            "Patient",
            Interaction::Read
        ));
        // Out of cruds order, or not a permission at all.
        assert!(ResourceScope::parse("patient/Coverage.sr").is_none());
        assert!(ResourceScope::parse("patient/Coverage.x").is_none());
        assert!(ResourceScope::parse("patient/coverage.read").is_none());
        assert!(ResourceScope::parse("launch/patient").is_none());
    }

    #[test]
    fn narrower_scopes_are_within_wider_ones() {
        let granted = "patient/*.read launch/patient openid fhirUser offline_access";
        assert!(within("patient/Coverage.read launch/patient", granted));
        assert!(within("patient/Coverage.rs", granted));
        assert!(within("", granted));
        assert!(!within("user/*.read", granted));
        assert!(!within("patient/*.cruds", granted));
        assert!(!within("patient/*.read profile", granted));
        assert_eq!(
            outside("openid user/Patient.read", granted),
            ["user/Patient.read"]
        );
        assert!(within(
            "patient/Coverage.rs?status=active",
            "patient/Coverage.rs"
        ));
        assert!(!within(
            "patient/Coverage.rs",
            "patient/Coverage.rs?status=active"
        ));
    }

    #[test]
    fn excluding_a_type_keeps_the_rest() {
        let others = ["Coverage".to_owned(), "Patient".to_owned()];
        assert_eq!(
            excluding(
                "patient/Coverage.read patient/Patient.read openid",
                "Coverage",
                &others
            )
            .as_deref(),
            Some("patient/Patient.read openid")
        );
        assert_eq!(
            excluding("patient/*.read openid", "Coverage", &others).as_deref(),
            Some("patient/Patient.read openid")
        );
        assert_eq!(
            excluding("patient/Coverage.rs openid", "Coverage", &others),
            None
        );
    }
}
