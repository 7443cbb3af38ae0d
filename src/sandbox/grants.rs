//! What the sandbox's authorization server remembers: sign-ins in progress, authorization
//! codes, access and refresh tokens. All in memory, all opaque random strings, all expiring,
//! and bounded so that a flood of requests cannot grow it without end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The most entries of each kind kept at once; past it, expired ones are dropped and, if
/// none are, the new request is refused.
const CAPACITY: usize = 50_000;
/// The most pending sign-ins kept: each holds at most about 5 KB (the authorize endpoint
/// caps `redirect_uri`, `state` and `scope`), so a flood holds at most about 50 MB.
const SIGN_IN_CAPACITY: usize = 10_000;
/// How long a sign-in may stay between the landing page and "Verify identity".
pub const SIGN_IN_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A fresh unguessable value (256 bits), URL-safe.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// PKCE S256: `BASE64URL(SHA256(verifier)) == challenge` (RFC 7636 §4.6).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// An authorization request waiting for the member to verify their identity.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: String,
    pub code_challenge: Option<String>,
    /// The member, once they have logged in (Blue Button: before the consent page).
    pub member: Option<usize>,
    pub started: Instant,
    /// Wrong identities or passwords typed so far (see [`MAX_ATTEMPTS`]).
    pub attempts: u32,
}

/// Wrong identities or passwords one sign-in may take before it ends: guessing a member's
/// details is not free.
pub const MAX_ATTEMPTS: u32 = 5;

/// Wrong tries at one member (by the member ID or username typed), over any number of
/// sign-ins, before signing in as that member pauses for [`MEMBER_LOCKOUT`]: a new sign-in
/// per five guesses must not make guessing free.
pub const MEMBER_FAILURES: u32 = 10;
/// How long a member's sign-ins pause: short enough that the member can wait it out.
pub const MEMBER_LOCKOUT: Duration = Duration::from_secs(60);
/// Wrong tries older than this are forgotten.
const MEMBER_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most members whose wrong tries are remembered at once.
const MEMBER_CAPACITY: usize = 10_000;

/// One member's recent wrong tries.
#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn forgotten(&self, now: Instant) -> bool {
        now.duration_since(self.last) > MEMBER_WINDOW
            && self.locked_until.is_none_or(|until| until <= now)
    }
}

/// The key wrong tries are counted under: what was typed to name the member, trimmed, in
/// one case, and cut short (it is untrusted input).
fn member_key(typed: &str) -> String {
    typed.trim().to_lowercase().chars().take(64).collect()
}

/// An issued authorization code.
#[derive(Debug, Clone)]
struct Code {
    client_id: String,
    redirect_uri: String,
    member: usize,
    scope: String,
    code_challenge: Option<String>,
    expires: Instant,
    used: bool,
    grant: u64,
}

/// What a token is good for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub client_id: String,
    pub member: usize,
    pub scope: String,
    pub grant: u64,
}

#[derive(Debug, Clone)]
struct Access {
    authorization: Authorization,
    expires: Instant,
    /// Live at the authorization server, refused by the FHIR API (`refresh-unusable-token`).
    api_refuses: bool,
}

/// A refresh token: the grant's whole scope (a refresh may narrow the access token's, never
/// the grant's) and when it stops working.
#[derive(Debug, Clone)]
struct Refresh {
    authorization: Authorization,
    expires: Instant,
}

/// How long a refresh token lives (an `offline_access` grant outlives a day of runs).
const REFRESH_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// How the token endpoint treats a refresh.
#[derive(Debug, Clone, Copy)]
pub struct RefreshRules {
    pub token_lifetime: Duration,
    /// The access token keeps the grant's whole scope whatever was asked (`refresh-widens-scope`).
    pub widen: bool,
    /// The used refresh token keeps working (`refresh-keeps-old`).
    pub keep_old: bool,
    /// A refresh without `scope` also grants `user/*.read` (`refresh-adds-scope`).
    pub add_scope: bool,
    /// A refresh without `scope` gives an access token that introspects as live but that the
    /// FHIR API refuses (`refresh-unusable-token`).
    pub unusable: bool,
    /// A refresh with `scope` keeps none of its resource scopes (`refresh-narrows-too-far`).
    pub too_narrow: bool,
}

/// What introspection tells of a live token (RFC 7662 §2.2).
#[derive(Debug, Clone)]
pub struct Introspected {
    pub authorization: Authorization,
    /// Seconds from now until it expires.
    pub expires_in: u64,
    /// A refresh token rather than an access token.
    pub refresh: bool,
}

/// Why a code or refresh token was refused (all are `invalid_grant` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("the authorization code is not known to this server")]
    UnknownCode,
    #[error("the authorization code has expired (codes are valid for {0} seconds)")]
    ExpiredCode(u64),
    #[error("the authorization code was already used; the tokens issued with it are revoked")]
    ReusedCode,
    #[error("the authorization code was issued to another client")]
    WrongClient,
    #[error("redirect_uri does not match the one in the authorization request")]
    WrongRedirect,
    #[error("redirect_uri is missing; it was in the authorization request (RFC 6749 §4.1.3)")]
    MissingRedirect,
    #[error("code_verifier is missing; the authorization request used PKCE")]
    MissingVerifier,
    #[error("code_verifier does not match the code_challenge (S256)")]
    WrongVerifier,
    #[error("the refresh token is not known to this server, or was revoked")]
    UnknownRefresh,
    #[error("the refresh asks for scopes the grant does not hold: {}", .0.join(" "))]
    WiderScope(Vec<String>),
    #[error("the server holds too many grants; try again later")]
    Full,
}

/// Tokens issued in answer to a code or a refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub authorization: Authorization,
}

/// Everything the authorization server remembers.
#[derive(Debug, Default)]
pub struct Grants {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sign_ins: HashMap<String, SignIn>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    /// Access tokens revoked by the revocation endpoint (for `revoked-still-reads`).
    revoked: HashMap<String, Access>,
    next_grant: u64,
    /// Every code and token ever issued, newest last (bounded), for tests that check that a
    /// client never leaks one.
    issued: std::collections::VecDeque<String>,
    /// Recent wrong tries per member key.
    failures: HashMap<String, Failures>,
}

fn remember(inner: &mut Inner, value: &str) {
    if inner.issued.len() >= CAPACITY {
        inner.issued.pop_front();
    }
    inner.issued.push_back(value.to_owned());
}

/// What the token endpoint was given, besides the code.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

/// How the token endpoint judges a PKCE `code_verifier` (faults make it lax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkce {
    /// RFC 7636 §4.6: required, and `S256` of it must be the challenge.
    S256,
    /// Not checked at all (`ignore-pkce`).
    Off,
    /// Checked when sent (`pkce-optional`).
    Optional,
    /// Any verifier will do, but one must be sent (`pkce-any-verifier`).
    AnyVerifier,
    /// The challenge itself also passes, as under `plain` (`pkce-plain`).
    AlsoPlain,
}

/// How the token endpoint judges a code.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub code_lifetime: Duration,
    pub token_lifetime: Duration,
    /// Every code is already expired (`expire-codes`).
    pub force_expired: bool,
    /// A used code works again (`reusable-codes`).
    pub reusable: bool,
    /// How `code_verifier` is checked against the challenge.
    pub pkce: Pkce,
    /// `redirect_uri` must be repeated when the authorization request had one.
    pub require_redirect_uri: bool,
    /// A refused exchange spends the code (`codes-die-on-error`).
    pub die_on_error: bool,
}

fn make_room<V>(map: &mut HashMap<String, V>, expired: impl Fn(&V) -> bool) -> bool {
    make_room_within(map, CAPACITY, expired)
}

fn make_room_within<V>(
    map: &mut HashMap<String, V>,
    capacity: usize,
    expired: impl Fn(&V) -> bool,
) -> bool {
    if map.len() >= capacity {
        map.retain(|_, value| !expired(value));
    }
    map.len() < capacity
}

/// A token another client holds, asked to be revoked (RFC 7009 §2.1: the server verifies
/// that the token was issued to the client asking).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the token was issued to another client")]
pub struct OtherClients;

impl Grants {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Remember a sign-in. When the table is full of live sign-ins, the oldest is forgotten:
    /// a flood of abandoned authorization requests never locks out a new one.
    pub fn start_sign_in(&self, sign_in: SignIn) -> String {
        let mut inner = self.lock();
        let now = Instant::now();
        if !make_room_within(&mut inner.sign_ins, SIGN_IN_CAPACITY, |s| {
            now.duration_since(s.started) > SIGN_IN_LIFETIME
        }) && let Some(oldest) = inner
            .sign_ins
            .iter()
            .min_by_key(|(_, s)| s.started)
            .map(|(id, _)| id.clone())
        {
            inner.sign_ins.remove(&oldest);
        }
        let id = random_token();
        inner.sign_ins.insert(id.clone(), sign_in);
        id
    }

    /// Count a wrong identity or password; whether the sign-in may go on (after
    /// [`MAX_ATTEMPTS`] it is ended).
    pub fn failed_attempt(&self, id: &str) -> bool {
        let mut inner = self.lock();
        let Some(sign_in) = inner.sign_ins.get_mut(id) else {
            return false;
        };
        sign_in.attempts += 1;
        if sign_in.attempts >= MAX_ATTEMPTS {
            inner.sign_ins.remove(id);
            return false;
        }
        true
    }

    /// How long signing in as the member `typed` names stays paused, if it is.
    pub fn member_paused(&self, typed: &str) -> Option<Duration> {
        let inner = self.lock();
        let now = Instant::now();
        inner
            .failures
            .get(&member_key(typed))
            .and_then(|f| f.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// Count a wrong try at the member `typed` names; how long their sign-ins now pause,
    /// when this try reached [`MEMBER_FAILURES`].
    pub fn member_failed(&self, typed: &str) -> Option<Duration> {
        let mut inner = self.lock();
        let now = Instant::now();
        let key = member_key(typed);
        if !inner.failures.contains_key(&key)
            && !make_room_within(&mut inner.failures, MEMBER_CAPACITY, |f| f.forgotten(now))
            && let Some(oldest) = inner
                .failures
                .iter()
                .filter(|(_, f)| f.locked_until.is_none_or(|until| until <= now))
                .min_by_key(|(_, f)| f.last)
                .map(|(key, _)| key.clone())
        {
            inner.failures.remove(&oldest);
        }
        let failures = inner.failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if failures.forgotten(now) {
            failures.count = 0;
            failures.locked_until = None;
        }
        failures.count += 1;
        failures.last = now;
        if failures.count >= MEMBER_FAILURES {
            failures.count = 0;
            failures.locked_until = Some(now + MEMBER_LOCKOUT);
            return Some(MEMBER_LOCKOUT);
        }
        None
    }

    /// The member `typed` names signed in: their wrong tries are forgotten.
    pub fn member_succeeded(&self, typed: &str) {
        self.lock().failures.remove(&member_key(typed));
    }

    /// A sign-in still in progress.
    pub fn sign_in(&self, id: &str) -> Option<SignIn> {
        let inner = self.lock();
        inner
            .sign_ins
            .get(id)
            .filter(|s| s.started.elapsed() <= SIGN_IN_LIFETIME)
            .cloned()
    }

    /// Record that the member of a sign-in has logged in; false when it is unknown.
    pub fn verify_sign_in(&self, id: &str, member: usize) -> bool {
        let mut inner = self.lock();
        match inner.sign_ins.get_mut(id) {
            Some(sign_in) if sign_in.started.elapsed() <= SIGN_IN_LIFETIME => {
                sign_in.member = Some(member);
                true
            }
            _ => false,
        }
    }

    /// End a sign-in (verified or cancelled): its id works once.
    pub fn finish_sign_in(&self, id: &str) -> Option<SignIn> {
        self.lock()
            .sign_ins
            .remove(id)
            .filter(|s| s.started.elapsed() <= SIGN_IN_LIFETIME)
    }

    /// Issue a code for a verified member.
    pub fn issue_code(
        &self,
        sign_in: &SignIn,
        member: usize,
        lifetime: Duration,
    ) -> Option<String> {
        let mut inner = self.lock();
        let now = Instant::now();
        if !make_room(&mut inner.codes, |c| c.expires < now) {
            return None;
        }
        inner.next_grant += 1;
        let grant = inner.next_grant;
        let code = random_token();
        remember(&mut inner, &code);
        inner.codes.insert(
            code.clone(),
            Code {
                client_id: sign_in.client_id.clone(),
                redirect_uri: sign_in.redirect_uri.clone(),
                member,
                scope: sign_in.scope.clone(),
                code_challenge: sign_in.code_challenge.clone(),
                expires: now + lifetime,
                used: false,
                grant,
            },
        );
        Some(code)
    }

    /// Exchange a code for tokens. A code works once: using it again revokes what it gave.
    pub fn redeem(
        &self,
        code: &str,
        exchange: Exchange<'_>,
        rules: Rules,
    ) -> Result<Issued, GrantError> {
        let mut inner = self.lock();
        let entry = inner.codes.get_mut(code).ok_or(GrantError::UnknownCode)?;
        if entry.used && !rules.reusable {
            let grant = entry.grant;
            inner.access.retain(|_, a| a.authorization.grant != grant);
            inner.refresh.retain(|_, r| r.authorization.grant != grant);
            return Err(GrantError::ReusedCode);
        }
        let judged = Self::judge(entry, exchange, rules);
        entry.used |= judged.is_ok() || rules.die_on_error;
        judged?;
        let authorization = Authorization {
            client_id: entry.client_id.clone(),
            member: entry.member,
            scope: entry.scope.clone(),
            grant: entry.grant,
        };
        let scope = authorization.scope.clone();
        Self::issue(
            &mut inner,
            authorization,
            &scope,
            rules.token_lifetime,
            true,
        )
    }

    /// Whether `exchange` may redeem the code `entry`.
    fn judge(entry: &Code, exchange: Exchange<'_>, rules: Rules) -> Result<(), GrantError> {
        if entry.client_id != exchange.client_id {
            return Err(GrantError::WrongClient);
        }
        if rules.force_expired || entry.expires < Instant::now() {
            return Err(GrantError::ExpiredCode(rules.code_lifetime.as_secs()));
        }
        match exchange.redirect_uri {
            Some(given) if given != entry.redirect_uri => return Err(GrantError::WrongRedirect),
            None if rules.require_redirect_uri => return Err(GrantError::MissingRedirect),
            _ => {}
        }
        if let Some(challenge) = entry.code_challenge.as_ref() {
            match (exchange.code_verifier, rules.pkce) {
                (_, Pkce::Off) | (None, Pkce::Optional) | (Some(_), Pkce::AnyVerifier) => {}
                (None, _) => return Err(GrantError::MissingVerifier),
                (Some(verifier), Pkce::AlsoPlain) if verifier == challenge => {}
                (Some(verifier), _) if pkce_matches(verifier, challenge) => {}
                (Some(_), _) => return Err(GrantError::WrongVerifier),
            }
        }
        Ok(())
    }

    /// Exchange a refresh token for new tokens; the old refresh token stops working. A
    /// `scope` narrows the new access token (RFC 6749 §6: it may not hold scopes the grant
    /// does not); the new refresh token keeps the grant's whole scope.
    pub fn refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
        scope: Option<&str>,
        rules: RefreshRules,
    ) -> Result<Issued, GrantError> {
        let mut inner = self.lock();
        let authorization = inner
            .refresh
            .get(refresh_token)
            .filter(|r| r.authorization.client_id == client_id && r.expires >= Instant::now())
            .map(|r| r.authorization.clone())
            .ok_or(GrantError::UnknownRefresh)?;
        let access_scope = match scope {
            Some(asked) if !asked.trim().is_empty() => {
                let wider = crate::payer::scope::outside(asked, &authorization.scope);
                if !wider.is_empty() {
                    return Err(GrantError::WiderScope(
                        wider.into_iter().map(str::to_owned).collect(),
                    ));
                }
                if rules.widen {
                    authorization.scope.clone()
                } else {
                    asked
                        .split_whitespace()
                        .filter(|s| {
                            !rules.too_narrow
                                || crate::payer::scope::ResourceScope::parse(s).is_none()
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            }
            _ if rules.add_scope => format!("{} user/*.read", authorization.scope),
            _ => authorization.scope.clone(),
        };
        if !rules.keep_old {
            inner.refresh.remove(refresh_token);
        }
        let usable = !(rules.unusable && scope.is_none_or(|s| s.trim().is_empty()));
        Self::issue(
            &mut inner,
            authorization,
            &access_scope,
            rules.token_lifetime,
            usable,
        )
    }

    /// Tokens nobody earned, as a broken server gives them for a code or refresh token it
    /// never issued (`accept-unknown-codes`, `refresh-accepts-any`): the first member's.
    pub fn issue_unearned(
        &self,
        client_id: &str,
        scope: &str,
        token_lifetime: Duration,
    ) -> Result<Issued, GrantError> {
        let mut inner = self.lock();
        inner.next_grant += 1;
        let authorization = Authorization {
            client_id: client_id.to_owned(),
            member: 0,
            scope: scope.to_owned(),
            grant: inner.next_grant,
        };
        Self::issue(&mut inner, authorization, scope, token_lifetime, true)
    }

    fn issue(
        inner: &mut Inner,
        authorization: Authorization,
        access_scope: &str,
        lifetime: Duration,
        usable: bool,
    ) -> Result<Issued, GrantError> {
        let now = Instant::now();
        if !make_room(&mut inner.access, |a| a.expires < now)
            || !make_room(&mut inner.refresh, |r| r.expires < now)
        {
            return Err(GrantError::Full);
        }
        let access_token = random_token();
        let refresh_token = random_token();
        remember(inner, &access_token);
        remember(inner, &refresh_token);
        let access = Authorization {
            scope: access_scope.to_owned(),
            ..authorization.clone()
        };
        inner.access.insert(
            access_token.clone(),
            Access {
                authorization: access.clone(),
                expires: now + lifetime,
                api_refuses: !usable,
            },
        );
        inner.refresh.insert(
            refresh_token.clone(),
            Refresh {
                authorization,
                expires: now + REFRESH_LIFETIME,
            },
        );
        Ok(Issued {
            access_token,
            refresh_token,
            authorization: access,
        })
    }

    /// Revoke a token of `client_id` (RFC 7009 §2.1): an access token alone, or a refresh
    /// token with every access token of its grant. Unknown tokens are no error (§2.2);
    /// another client's token is, and stays live.
    pub fn revoke(&self, token: &str, client_id: &str) -> Result<(), OtherClients> {
        let mut inner = self.lock();
        if let Some(access) = inner.access.get(token) {
            if access.authorization.client_id != client_id {
                return Err(OtherClients);
            }
            if let Some(access) = inner.access.remove(token) {
                let now = Instant::now();
                if make_room(&mut inner.revoked, |a| a.expires < now) {
                    inner.revoked.insert(token.to_owned(), access);
                }
            }
        } else if let Some(refresh) = inner.refresh.get(token) {
            if refresh.authorization.client_id != client_id {
                return Err(OtherClients);
            }
            let grant = refresh.authorization.grant;
            inner.refresh.remove(token);
            inner.access.retain(|_, a| a.authorization.grant != grant);
        }
        Ok(())
    }

    /// What a token is, if it is live (RFC 7662 §2.2).
    pub fn introspect(&self, token: &str) -> Option<Introspected> {
        let inner = self.lock();
        let now = Instant::now();
        let (authorization, expires, refresh) = match inner.access.get(token) {
            Some(a) => (a.authorization.clone(), a.expires, false),
            None => {
                let r = inner.refresh.get(token)?;
                (r.authorization.clone(), r.expires, true)
            }
        };
        (expires >= now).then(|| Introspected {
            authorization,
            expires_in: expires.duration_since(now).as_secs(),
            refresh,
        })
    }

    /// Whether `value` is a code or token this server ever issued (the latest 50,000).
    pub fn ever_issued(&self, value: &str) -> bool {
        self.lock().issued.iter().any(|v| v == value)
    }

    /// Every code and token issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.lock().issued.iter().cloned().collect()
    }

    /// What a revoked access token granted, while it would still be live.
    pub fn revoked(&self, token: &str) -> Option<Authorization> {
        let inner = self.lock();
        let access = inner.revoked.get(token)?;
        (access.expires >= Instant::now()).then(|| access.authorization.clone())
    }

    /// What a bearer token grants, if it is live.
    pub fn access(&self, token: &str) -> Option<Authorization> {
        let inner = self.lock();
        let access = inner.access.get(token).filter(|a| !a.api_refuses)?;
        (access.expires >= Instant::now()).then(|| access.authorization.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A paused member can wait it out: once the pause has passed they sign in again, and
    /// wrong tries older than the window are forgotten. Time is moved by rewriting the
    /// instants recorded.
    #[test]
    fn a_member_pause_ends_and_old_wrong_tries_are_forgotten() {
        let grants = Grants::default();
        for _ in 1..MEMBER_FAILURES {
            assert_eq!(grants.member_failed(" BBUser00000 "), None);
        }
        assert_eq!(grants.member_failed("bbuser00000"), Some(MEMBER_LOCKOUT));
        assert!(grants.member_paused("BBUSER00000").is_some());
        assert!(grants.member_paused("BBUser00001").is_none());
        let past = Instant::now() - Duration::from_secs(1);
        grants
            .lock()
            .failures
            .values_mut()
            .for_each(|f| f.locked_until = Some(past));
        assert!(grants.member_paused("BBUser00000").is_none());
        // Nine wrong tries long ago and one now do not pause.
        for _ in 1..MEMBER_FAILURES {
            grants.member_failed("BBUser00000");
        }
        let long_ago = Instant::now() - MEMBER_WINDOW - Duration::from_secs(1);
        grants
            .lock()
            .failures
            .values_mut()
            .for_each(|f| f.last = long_ago);
        assert_eq!(grants.member_failed("BBUser00000"), None);
        // A flood of member keys stays bounded.
        for n in 0..MEMBER_CAPACITY + 10 {
            grants.member_failed(&format!("guess{n}"));
        }
        assert!(grants.lock().failures.len() <= MEMBER_CAPACITY);
    }

    #[test]
    fn a_full_sign_in_table_forgets_its_oldest_entry_and_takes_the_new_one() {
        let grants = Grants::default();
        let sign_in = |client: &str| SignIn {
            client_id: client.to_owned(),
            redirect_uri: String::new(),
            state: None,
            scope: String::new(),
            code_challenge: None,
            member: None,
            started: Instant::now(),
            attempts: 0,
        };
        let first = grants.start_sign_in(sign_in("first"));
        for _ in 1..SIGN_IN_CAPACITY {
            grants.start_sign_in(sign_in("flood"));
        }
        assert!(grants.sign_in(&first).is_some());
        let newest = grants.start_sign_in(sign_in("newest"));
        assert!(
            grants.sign_in(&newest).is_some(),
            "a new sign-in is never refused"
        );
        assert!(grants.sign_in(&first).is_none(), "the oldest made room");
        assert_eq!(grants.lock().sign_ins.len(), SIGN_IN_CAPACITY);
    }

    #[test]
    fn pkce_follows_rfc_7636_appendix_b() {
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "wrong"
        ));
        assert!(!pkce_matches(
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
    }
}
