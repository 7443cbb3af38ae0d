//! The evidence of a run: HTTP exchanges, browser screenshots and notes, recorded as they
//! happen and redacted at the door. Every secret the run learns (the client secret, codes,
//! PKCE verifiers, tokens) is registered here first, and nothing is stored without passing
//! the redactor: no report built from this can leak one.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";
/// Bodies are kept up to this many bytes (after redaction).
const BODY_LIMIT: usize = 16 * 1024;
/// Longer than any secret: a token, code or key cut at the end of a piece of a body read
/// for redaction lies at least this far past the part kept.
const SECRET_MARGIN: usize = 16 * 1024;
/// Header names whose values are always secret.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
/// Form fields and query parameters whose values are always secret.
const SECRET_FIELDS: [&str; 8] = [
    "access_token",
    "refresh_token",
    "id_token",
    "code",
    "code_verifier",
    "client_secret",
    "client_assertion",
    "password",
];
/// JSON members whose values are always secret: the same but `code`, which in a JSON body
/// is a FHIR Coding's code (an authorization code only ever travels in a query or a form).
const SECRET_MEMBERS: [&str; 7] = [
    "access_token",
    "refresh_token",
    "id_token",
    "code_verifier",
    "client_secret",
    "client_assertion",
    "password",
];

/// One HTTP request and its answer (or failure), as evidence.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Exchange {
    pub index: usize,
    /// What the run was doing (`Token`, `Search ExplanationOfBenefit page 2`, ...).
    pub context: String,
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    /// When the request was sent, in milliseconds since the recorder started (the run's
    /// time axis).
    #[serde(default)]
    pub start_ms: u64,
    pub duration_ms: u64,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Option<String>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
    /// Bytes of body left out.
    pub truncated: u64,
    pub error: Option<String>,
}

/// A browser screenshot saved under `screenshots/`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Screenshot {
    pub index: usize,
    pub context: String,
    pub caption: String,
    /// Path relative to the run's output folder.
    pub file: String,
    pub url: String,
}

/// Something worth knowing that is neither a pass nor a failure (a retry, a skipped check).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Note {
    pub context: String,
    pub text: String,
}

/// One thing the browser was made to do (open a page, click, fill a field, wait), timed on
/// the run's time axis.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct BrowserAction {
    pub context: String,
    /// What was done, as the features said it (`click "Sign in"`), secrets left out.
    pub action: String,
    pub start_ms: u64,
    pub duration_ms: u64,
    /// Whether the browser managed it.
    pub ok: bool,
}

/// Everything recorded, for the run summary.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Evidence {
    pub exchanges: Vec<Exchange>,
    pub screenshots: Vec<Screenshot>,
    pub notes: Vec<Note>,
    pub browser_actions: Vec<BrowserAction>,
}

/// An exchange as the HTTP layer saw it, before redaction.
#[derive(Debug, Clone, Default)]
pub struct RawExchange {
    pub context: String,
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    pub duration: Duration,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Option<Vec<u8>>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<Vec<u8>>,
    pub error: Option<String>,
}

/// Records evidence for one run.
#[derive(Debug)]
pub struct Recorder {
    secrets: RwLock<BTreeSet<String>>,
    evidence: Mutex<Evidence>,
    screenshots_dir: Option<PathBuf>,
    last_screenshot: Mutex<Option<[u8; 32]>>,
    /// The run's time zero, as an instant and on the wall clock.
    origin: (Instant, SystemTime),
    /// Where each exchange and browser action is printed as it is recorded (`--verbose`).
    trace: Option<crate::infra::console::Console>,
    /// Who else gets each saved screenshot (its file and PNG) as it is taken: the recording.
    frames: Option<FrameSink>,
}

/// The context of the app under test's pages (the `@app` scenarios): their screenshots make
/// the app's own recording.
pub const APP_CONTEXT: &str = "App";

/// A taker of screenshots as they are saved (see [`Recorder::with_frames`]).
pub struct FrameSink(pub Box<TakeFrame>);

/// What a [`FrameSink`] calls with a saved screenshot's context, file and PNG.
pub type TakeFrame = dyn Fn(&str, &str, &[u8]) + Send + Sync;

impl std::fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameSink")
    }
}

impl Recorder {
    /// A recorder that saves screenshots under `dir/screenshots` (nowhere when `None`).
    pub fn new(dir: Option<&Path>) -> Self {
        Self {
            secrets: RwLock::new(BTreeSet::new()),
            evidence: Mutex::new(Evidence::default()),
            screenshots_dir: dir.map(|d| d.join("screenshots")),
            last_screenshot: Mutex::new(None),
            origin: (Instant::now(), SystemTime::now()),
            trace: None,
            frames: None,
        }
    }

    /// Also hand every saved screenshot to `sink` (its file, relative to the run's folder,
    /// and its PNG), in the order they are taken.
    pub fn with_frames(self, sink: FrameSink) -> Self {
        Self {
            frames: Some(sink),
            ..self
        }
    }

    /// Also print every exchange and browser action on standard output as it is recorded,
    /// redacted like everything else.
    pub fn with_trace(self, console: crate::infra::console::Console) -> Self {
        Self {
            trace: Some(console),
            ..self
        }
    }

    /// Milliseconds from the run's time zero to `at`.
    pub fn offset(&self, at: Instant) -> u64 {
        millis(at.saturating_duration_since(self.origin.0))
    }

    /// Milliseconds from the run's time zero to `at` on the wall clock (cucumber's events).
    pub fn wall_offset(&self, at: SystemTime) -> u64 {
        at.duration_since(self.origin.1).map_or(0, millis)
    }

    fn trace(&self, line: &str) {
        if let Some(console) = self.trace {
            use std::io::Write as _;
            let line = crate::infra::text::inert(line);
            let _ = writeln!(
                std::io::stdout().lock(),
                "{}",
                console.paint_out("2", &line)
            );
        }
    }

    /// Record what the browser was made to do, from `started` until now.
    pub fn browser_action(&self, context: &str, action: &str, started: Instant, ok: bool) {
        let action = BrowserAction {
            context: self.redact(context),
            action: self.redact(&redact_query(action)),
            start_ms: self.offset(started),
            duration_ms: millis(started.elapsed()),
            ok,
        };
        self.trace(&format!(
            "      browser {} ({} ms){}",
            action.action,
            action.duration_ms,
            if ok { "" } else { " failed" }
        ));
        self.evidence().browser_actions.push(action);
    }

    fn evidence(&self) -> std::sync::MutexGuard<'_, Evidence> {
        self.evidence
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Remember a secret value: from now on it is replaced wherever it appears. Values
    /// shorter than six characters are not secrets worth the false positives.
    pub fn add_secret(&self, value: &str) {
        if value.len() >= 6 {
            self.secrets
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(value.to_owned());
            // Also as it appears percent-encoded in URLs and form bodies.
            let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            if encoded != value {
                self.secrets
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(encoded);
            }
        }
    }

    /// Whether `value` is a secret onramp knows (a member's password, a client secret).
    pub fn is_secret(&self, value: &str) -> bool {
        self.secrets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(value)
    }

    /// `text` with every known secret replaced, and with the values of secret parameters
    /// (`code=…`, `"access_token": "…"`, `Bearer …`) blanked even when the value was never
    /// registered: a URL the browser showed can hold a code nobody has read yet.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        let mut out = redact_patterns(text);
        // Longest first, so that a secret containing another is replaced whole.
        let mut ordered: Vec<&String> = secrets.iter().collect();
        ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in ordered {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    fn redact_body(&self, body: &[u8], content_type: Option<&str>) -> (String, u64) {
        if let Some(kept) = self.redact_large_body(body, content_type) {
            return kept;
        }
        let text = String::from_utf8_lossy(body);
        let structural = if content_type.is_some_and(|t| t.contains("x-www-form-urlencoded")) {
            redact_form(&text)
        } else if content_type.is_some_and(|t| t.contains("json"))
            || text.trim_start().starts_with('{')
        {
            if may_name_a_secret(&text) {
                redact_json(&text).unwrap_or_else(|| text.into_owned())
            } else {
                text.into_owned()
            }
        } else {
            text.into_owned()
        };
        let redacted = self.redact(&structural);
        if redacted.len() <= BODY_LIMIT {
            return (redacted, 0);
        }
        let mut cut = BODY_LIMIT;
        while !redacted.is_char_boundary(cut) {
            cut -= 1;
        }
        (redacted[..cut].to_owned(), (redacted.len() - cut) as u64)
    }

    /// A large body (a page of a FHIR search: hundreds of kilobytes, of which the first
    /// [`BODY_LIMIT`] bytes are kept) redacted from its beginning only. Sound because
    /// redaction only ever shortens text: whatever is cut in the middle at the end of the
    /// piece read lies more than [`SECRET_MARGIN`] bytes after the part kept, unless so much
    /// was redacted that the piece shrank below that margin, when (as for a body that could
    /// name a secret member, which is walked whole) the full body is redacted instead.
    fn redact_large_body(&self, body: &[u8], content_type: Option<&str>) -> Option<(String, u64)> {
        const PIECE: usize = BODY_LIMIT * 4;
        if body.len() <= PIECE || content_type.is_some_and(|t| t.contains("x-www-form-urlencoded"))
        {
            return None;
        }
        let piece = String::from_utf8_lossy(&body[..PIECE]);
        if may_name_a_secret(&piece) {
            return None;
        }
        let redacted = self.redact(&piece);
        if redacted.len() < BODY_LIMIT + SECRET_MARGIN {
            return None;
        }
        let mut cut = BODY_LIMIT;
        while !redacted.is_char_boundary(cut) {
            cut -= 1;
        }
        let kept = redacted[..cut].to_owned();
        Some((kept, (body.len() - cut) as u64))
    }

    fn redact_headers(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let value = if SECRET_HEADERS.contains(&lower.as_str()) {
                    match value.split_once(' ') {
                        Some((scheme, _)) => format!("{scheme} {REDACTED}"),
                        None => REDACTED.to_owned(),
                    }
                } else {
                    self.redact(value)
                };
                (lower, value)
            })
            .collect()
    }

    /// Record an HTTP exchange, redacted.
    pub fn exchange(&self, raw: RawExchange) {
        let content_type = |headers: &[(String, String)]| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        let request_type = content_type(&raw.request_headers);
        let response_type = content_type(&raw.response_headers);
        let (request_body, request_cut) = raw
            .request_body
            .as_deref()
            .map(|b| self.redact_body(b, request_type.as_deref()))
            .map_or((None, 0), |(b, c)| (Some(b), c));
        let (response_body, response_cut) = raw
            .response_body
            .as_deref()
            .map(|b| self.redact_body(b, response_type.as_deref()))
            .map_or((None, 0), |(b, c)| (Some(b), c));
        let exchange = Exchange {
            index: 0,
            context: self.redact(&raw.context),
            method: raw.method,
            url: self.redact(&redact_query(&raw.url)),
            status: raw.status,
            start_ms: self.offset(
                Instant::now()
                    .checked_sub(raw.duration)
                    .unwrap_or(self.origin.0),
            ),
            duration_ms: millis(raw.duration),
            request_headers: self.redact_headers(&raw.request_headers),
            request_body,
            response_headers: self.redact_headers(&raw.response_headers),
            response_body,
            truncated: request_cut + response_cut,
            error: raw.error.map(|e| self.redact(&e)),
        };
        self.trace(&format!(
            "      {} {} {} ({} ms)",
            exchange.method,
            exchange.url,
            exchange.status.map_or_else(
                || exchange.error.clone().unwrap_or_default(),
                |s| s.to_string()
            ),
            exchange.duration_ms
        ));
        let mut evidence = self.evidence();
        let index = evidence.exchanges.len() + 1;
        evidence.exchanges.push(Exchange { index, ..exchange });
    }

    /// Save a screenshot (PNG) and record it. A screenshot that cannot be saved becomes a
    /// note: losing a picture must not fail the run.
    pub fn screenshot(&self, context: &str, caption: &str, url: &str, png: &[u8]) {
        // The same picture twice in a row (a click that only navigated) says nothing new.
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(png).into();
        {
            let mut last = self
                .last_screenshot
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if *last == Some(digest) {
                return;
            }
            *last = Some(digest);
        }
        let index = self.evidence().screenshots.len() + 1;
        let mut words = crate::infra::text::slug_words(caption);
        words.truncate(6);
        let slug = words.join("-");
        let name = format!("{index:02}-{slug}.png");
        let Some(dir) = &self.screenshots_dir else {
            return;
        };
        let saved = std::fs::create_dir_all(dir)
            .and_then(|()| crate::infra::atomic::write(&dir.join(&name), png));
        match saved {
            Ok(()) => {
                let file = format!("screenshots/{name}");
                if let Some(sink) = &self.frames {
                    (sink.0)(context, &file, png);
                }
                self.evidence().screenshots.push(Screenshot {
                    index,
                    context: self.redact(context),
                    caption: self.redact(caption),
                    file,
                    url: self.redact(&redact_query(url)),
                });
            }
            Err(error) => self.note(
                context,
                &format!("screenshot \"{caption}\" could not be saved: {error}"),
            ),
        }
    }

    /// Record a note.
    pub fn note(&self, context: &str, text: &str) {
        let note = Note {
            context: self.redact(context),
            text: self.redact(text),
        };
        self.evidence().notes.push(note);
    }

    /// How many screenshots were recorded so far.
    pub fn screenshot_count(&self) -> usize {
        self.evidence().screenshots.len()
    }

    /// Everything recorded so far.
    pub fn snapshot(&self) -> Evidence {
        self.evidence().clone()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Values of [`SECRET_FIELDS`] in free text as `name=value` (queries, forms), of
/// [`SECRET_MEMBERS`] as `"name":"value"` (JSON), and credentials after `Bearer`/`Basic`
/// (16 characters or more: a token, not a word such as "authentication").
fn redact_patterns(text: &str) -> String {
    static PATTERNS: std::sync::LazyLock<[regex::Regex; 3]> = std::sync::LazyLock::new(|| {
        [
            regex::Regex::new(&format!(r"\b({})=[^&\s#\x22'<>]+", SECRET_FIELDS.join("|")))
                .unwrap_or_else(|e| unreachable!("a literal pattern: {e}")),
            regex::Regex::new(&format!(
                r#""({})"\s*:\s*"[^"]*""#,
                SECRET_MEMBERS.join("|")
            ))
            .unwrap_or_else(|e| unreachable!("a literal pattern: {e}")),
            regex::Regex::new(r"\b(Bearer|Basic) [A-Za-z0-9\-._~+/]{16,}=*")
                .unwrap_or_else(|e| unreachable!("a literal pattern: {e}")),
        ]
    });
    let [pairs, json, schemes] = &*PATTERNS;
    if !(text.contains('=') || text.contains('"') || text.contains(' ')) {
        return text.to_owned();
    }
    let out = pairs.replace_all(text, format!("${{1}}={REDACTED}").as_str());
    let out = json.replace_all(&out, format!("\"${{1}}\":\"{REDACTED}\"").as_str());
    schemes
        .replace_all(&out, format!("${{1}} {REDACTED}").as_str())
        .into_owned()
}

/// Query parameters that carry secrets, blanked in a URL.
fn redact_query(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if parsed.query().is_none() {
        return url.to_owned();
    }
    let pairs = redact_pairs(parsed.query_pairs());
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

fn redact_form(body: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(redact_pairs(url::form_urlencoded::parse(body.as_bytes())))
        .finish()
}

/// Decoded name/value pairs with the values of [`SECRET_FIELDS`] blanked.
fn redact_pairs<'a>(
    pairs: impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
) -> Vec<(String, String)> {
    pairs
        .map(|(name, value)| {
            let value = if SECRET_FIELDS.contains(&name.as_ref()) {
                REDACTED.to_owned()
            } else {
                value.into_owned()
            };
            (name.into_owned(), value)
        })
        .collect()
}

/// Whether a JSON text can hold a member named as a secret: the name appears in it, or an
/// escape (`\u…`) could spell it. When neither, the structural pass cannot change anything
/// and is skipped: a page of a FHIR search (hundreds of kilobytes, no secret members) is not
/// parsed a second time just to be recorded.
fn may_name_a_secret(body: &str) -> bool {
    body.contains("\\u") || SECRET_MEMBERS.iter().any(|name| body.contains(name))
}

fn redact_json(body: &str) -> Option<String> {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(members) => {
                for (name, member) in members.iter_mut() {
                    if SECRET_MEMBERS.contains(&name.as_str()) && member.is_string() {
                        *member = serde_json::Value::String(REDACTED.to_owned());
                    } else {
                        walk(member);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_str(body).ok()?;
    walk(&mut value);
    crate::infra::json::to_string(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_body_is_redacted_from_its_beginning_and_keeps_no_secret() {
        let recorder = Recorder::new(None);
        recorder.add_secret("registered-secret-value-123");
        // Secrets early (kept), and one straddling the end of the piece read.
        let mut body = String::from(
            r#"{"resourceType":"Bundle","note":"registered-secret-value-123 and Bearer abcdefghijklmnopqrstuvwxyz0123","entry":["#,
        );
        while body.len() < BODY_LIMIT * 4 - 10 {
            body.push_str(r#"{"resource":{"resourceType":"Basic","id":"x"}},"#);
        }
        body.push_str("registered-secret-value-123");
        body.push_str(&"{}".repeat(50_000));
        body.push_str("]}");
        let (kept, left_out) = recorder.redact_body(body.as_bytes(), Some("application/fhir+json"));
        assert_eq!(kept.len(), BODY_LIMIT);
        assert_eq!(left_out as usize, body.len() - BODY_LIMIT);
        assert!(
            !kept.contains("registered-secret") && !kept.contains("abcdefghijklmnop"),
            "{}",
            &kept[..200]
        );
        assert!(kept.contains("[redacted] and Bearer [redacted]"));
        // A large body that names a secret member is walked whole, as before.
        let named = format!(
            r#"{{"padding":"{}","access_token":"tok-abcdef-123456"}}"#,
            "p".repeat(BODY_LIMIT * 5)
        );
        let (kept, _) = recorder.redact_body(named.as_bytes(), Some("application/json"));
        assert!(kept.starts_with(r#"{"padding":"ppp"#));
        let whole = recorder.redact_body(named.as_bytes(), Some("application/json"));
        assert_eq!(whole.0.len(), BODY_LIMIT);
    }

    #[test]
    fn only_json_that_can_name_a_secret_is_walked() {
        assert!(!may_name_a_secret(
            r#"{"resourceType":"Bundle","entry":[]}"#
        ));
        assert!(may_name_a_secret(r#"{"access_token":"x"}"#));
        assert!(may_name_a_secret(r#"{"x":{"refresh_token":"y"}}"#));
        // An escaped name is still a name.
        let escaped = r#"{"access\u005ftoken":"tok-123456789"}"#;
        assert!(may_name_a_secret(escaped));
        assert_eq!(
            redact_json(escaped).as_deref(),
            Some(r#"{"access_token":"[redacted]"}"#)
        );
    }

    #[test]
    fn secrets_are_replaced_everywhere_they_appear() {
        let recorder = Recorder::new(None);
        recorder.add_secret("s3cr3t/value+x");
        recorder.exchange(RawExchange {
            context: "Token".into(),
            method: "POST".into(),
            url: "https://auth.example/token?code=abcdef123&x=s3cr3t%2Fvalue%2Bx".into(),
            status: Some(200),
            request_headers: vec![("Authorization".into(), "Basic dXNlcjpwYXNz".into()), ("Content-Type".into(), "application/x-www-form-urlencoded".into())],
            request_body: Some(b"grant_type=authorization_code&code=abcdef123&client_secret=s3cr3t%2Fvalue%2Bx".to_vec()),
            response_headers: vec![("content-type".into(), "application/json".into())],
            response_body: Some(br#"{"access_token":"tok-123456","token_type":"Bearer","nested":{"refresh_token":"r-987654"},"echo":"s3cr3t/value+x","coding":{"code":"I10"}}"#.to_vec()),
            ..RawExchange::default()
        });
        let evidence = recorder.snapshot();
        let text = serde_json::to_string(&evidence).expect("serializes");
        for leaked in [
            "s3cr3t",
            "abcdef123",
            "dXNlcjpwYXNz",
            "tok-123456",
            "r-987654",
        ] {
            assert!(!text.contains(leaked), "{leaked} leaked: {text}");
        }
        assert!(text.contains("Bearer"), "non-secret values stay");
        assert!(
            text.contains(r#"\"code\":\"I10\""#),
            "a FHIR code stays: {text}"
        );
        assert_eq!(
            evidence.exchanges[0].request_headers[0],
            ("authorization".into(), "Basic [redacted]".into())
        );
    }

    #[test]
    fn secret_parameters_are_blanked_in_free_text_even_when_never_registered() {
        let recorder = Recorder::new(None);
        let text = recorder.redact(
            "timed out; the browser is at http://127.0.0.1:9/cb/elsewhere?code=live-code-123&state=s1 showing {\"access_token\": \"tok-9\"} with Authorization: Bearer abc.def-ghi-jkl-mno",
        );
        for leaked in ["live-code-123", "tok-9", "abc.def-ghi-jkl-mno"] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
        assert!(
            text.contains("state=s1") && text.contains("code=[redacted]"),
            "{text}"
        );
        assert_eq!(recorder.redact("zipcode=02114"), "zipcode=02114");
        assert_eq!(recorder.redact("postal_code=02114"), "postal_code=02114");
        for kept in [
            "this server takes HTTP Basic client authentication (client_secret_basic)",
            "WWW-Authenticate: Bearer realm=\"onramp\", error=\"invalid_token\"",
            r#"{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"I10"}]}"#,
        ] {
            assert_eq!(recorder.redact(kept), kept);
        }
        assert_eq!(
            recorder.redact("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
            "Authorization: Bearer [redacted]"
        );
    }

    #[test]
    fn long_bodies_are_cut_and_counted() {
        let recorder = Recorder::new(None);
        recorder.exchange(RawExchange {
            response_body: Some(vec![b'x'; BODY_LIMIT + 100]),
            ..RawExchange::default()
        });
        let exchange = &recorder.snapshot().exchanges[0];
        assert_eq!(exchange.truncated, 100);
        assert_eq!(
            exchange.response_body.as_ref().map(String::len),
            Some(BODY_LIMIT)
        );
    }
}
