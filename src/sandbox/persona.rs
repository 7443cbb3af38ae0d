//! The payers the sandbox can pretend to be. Payers differ in their sign-in pages, paths,
//! client authentication, the resource types they serve and how strict their token
//! endpoint is; a persona gathers one payer's choices so that the harness can be tested
//! against more than one of them, offline.
//!
//! - `demo-plan`: the payer guide's demo health plan (1upHealth's demo environment): an
//!   identity form, the client secret in the body or HTTP Basic, PKCE optional, all six
//!   required types, `_count` up to 100.
//! - `bluebutton`: modelled on CMS Blue Button 2.0's sandbox: a username and password
//!   login (synthetic enrollees `BBUser00000`…, passwords `PW00000!`…), a consent page
//!   with **Allow** / **Deny**, HTTP Basic only, PKCE required, `redirect_uri` required at
//!   the token endpoint (RFC 6749 §4.1.3), Patient, Coverage and ExplanationOfBenefit
//!   only, `_count` up to 50.

use std::fmt;
use std::str::FromStr;

/// A payer the sandbox imitates.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Persona {
    /// The payer guide's demo health plan.
    #[default]
    DemoPlan,
    /// A CMS Blue Button 2.0-like plan.
    Bluebutton,
}

/// How members prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// A landing page, then an identity form matched against the plan's records.
    IdentityForm,
    /// A username and password, then a consent page.
    PasswordAndConsent,
}

impl Persona {
    /// Its name, as targets and `--persona` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Persona::DemoPlan => "demo-plan",
            Persona::Bluebutton => "bluebutton",
        }
    }

    /// The name pages show.
    pub fn brand(self) -> &'static str {
        match self {
            Persona::DemoPlan => "Demo Health Plan",
            Persona::Bluebutton => "Blue Button 2.0 sandbox",
        }
    }

    pub fn login(self) -> Login {
        match self {
            Persona::DemoPlan => Login::IdentityForm,
            Persona::Bluebutton => Login::PasswordAndConsent,
        }
    }

    /// The authorization endpoint's path.
    pub fn authorize_path(self) -> &'static str {
        match self {
            Persona::DemoPlan => "/oauth2/authorize/test",
            Persona::Bluebutton => "/v2/o/authorize/",
        }
    }

    /// The token endpoint's path.
    pub fn token_path(self) -> &'static str {
        match self {
            Persona::DemoPlan => "/oauth2/token",
            Persona::Bluebutton => "/v2/o/token/",
        }
    }

    /// The token revocation endpoint's path (RFC 7009).
    pub fn revocation_path(self) -> &'static str {
        match self {
            Persona::DemoPlan => "/oauth2/revoke",
            Persona::Bluebutton => "/v2/o/revoke_token/",
        }
    }

    /// The token introspection endpoint's path (RFC 7662).
    pub fn introspection_path(self) -> &'static str {
        match self {
            Persona::DemoPlan => "/oauth2/introspect",
            Persona::Bluebutton => "/v2/o/introspect/",
        }
    }

    /// The FHIR base's path (no trailing slash).
    pub fn fhir_path(self) -> &'static str {
        match self {
            Persona::DemoPlan => "/r4",
            Persona::Bluebutton => "/v2/fhir",
        }
    }

    /// The resource types it serves (of those the data has); `None`: all of them.
    pub fn served_types(self) -> Option<&'static [&'static str]> {
        match self {
            Persona::DemoPlan => None,
            Persona::Bluebutton => Some(&["Coverage", "ExplanationOfBenefit", "Patient"]),
        }
    }

    /// Whether the client may send its secret in the form body (else HTTP Basic only).
    pub fn secret_in_body(self) -> bool {
        self == Persona::DemoPlan
    }

    /// Whether a code exchange must repeat the authorization request's `redirect_uri`
    /// (RFC 6749 §4.1.3). The demo plan accepts the guide's request, which sends none.
    pub fn requires_redirect_uri_at_token(self) -> bool {
        self == Persona::Bluebutton
    }

    /// Members of the generated plan when the configuration does not say.
    pub fn default_members(self) -> usize {
        match self {
            Persona::DemoPlan => 3,
            Persona::Bluebutton => 100,
        }
    }

    /// The largest `_count` honoured.
    pub fn max_count(self) -> usize {
        match self {
            Persona::DemoPlan => 100,
            Persona::Bluebutton => 50,
        }
    }

    /// How the authorization endpoint treats PKCE when the configuration does not say.
    pub fn default_pkce(self) -> PkceMode {
        match self {
            Persona::DemoPlan => PkceMode::Optional,
            Persona::Bluebutton => PkceMode::Required,
        }
    }

    /// The member index of a Blue Button-style username (`BBUser00042` → 42).
    pub fn member_of_username(username: &str) -> Option<usize> {
        let digits = username.strip_prefix("BBUser")?;
        (digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    }

    /// The password of member `index` (`PW00042!`).
    pub fn password_of(index: usize) -> String {
        format!("PW{index:05}!")
    }

    /// The username of member `index` (`BBUser00042`).
    pub fn username_of(index: usize) -> String {
        format!("BBUser{index:05}")
    }
}

impl fmt::Display for Persona {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Persona {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [Persona::DemoPlan, Persona::Bluebutton]
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| {
                format!("no persona \"{text}\"; the personas are demo-plan and bluebutton")
            })
    }
}

/// How the authorization endpoint treats PKCE (RFC 7636).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PkceMode {
    /// `code_challenge` is ignored and not advertised.
    Off,
    /// Honoured when sent (S256 only).
    #[default]
    Optional,
    /// Every authorization request must send an S256 `code_challenge`.
    Required,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_usernames_map_to_members() {
        for persona in [Persona::DemoPlan, Persona::Bluebutton] {
            assert_eq!(persona.name().parse::<Persona>(), Ok(persona));
        }
        assert!("blue-button".parse::<Persona>().is_err());
        assert_eq!(Persona::member_of_username("BBUser00042"), Some(42));
        assert_eq!(Persona::member_of_username("BBUser42"), None);
        assert_eq!(Persona::username_of(7), "BBUser00007");
        assert_eq!(Persona::password_of(7), "PW00007!");
    }
}
