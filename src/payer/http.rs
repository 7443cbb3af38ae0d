//! HTTP to the target: reqwest over rustls with a connect and a total timeout, a cap on
//! response size, bounded retries on 429/502/503/504 that honour `Retry-After`, and every
//! exchange recorded (and redacted) as evidence. Shared by the token exchange and the FHIR
//! reads. No usable answer is an [`HttpError`], which is never the payer's conformance: a
//! 5xx or 429 after the retries is "the payer was unavailable", and an origin that gave no
//! answer at all gets no more requests in the run ([`HttpError::Down`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::evidence::{RawExchange, Recorder};

/// HTTP behaviour towards the target.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// How long a whole request may take, the body included.
    pub timeout: Duration,
    /// How long resolving the name and connecting (TLS included) may take.
    pub connect_timeout: Duration,
    pub retries: u32,
    pub max_response_bytes: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            max_response_bytes: 64 << 20,
        }
    }
}

/// The longest `Retry-After` onramp waits; a longer one ends the retries.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub duration: Duration,
    /// Attempts it took (1 when no retry was needed).
    pub attempts: u32,
}

impl Response {
    /// The response without its body: status, URL, headers and timing.
    pub fn clone_head(&self) -> Response {
        Response {
            url: self.url.clone(),
            status: self.status,
            headers: self.headers.clone(),
            body: Vec::new(),
            duration: self.duration,
            attempts: self.attempts,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no usable answer came. Every one of these means onramp could not test (the
/// environment's fault, never the payer's conformance): no rule the payer must follow is
/// judged by a network that failed, an answer that never came or a server that said it was
/// unavailable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// No connection: the name does not resolve, the port refuses, TLS fails.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// Connected (or connecting), but no whole answer within the target's timeouts.
    #[error("{url} did not answer within {}", crate::infra::words::seconds(*timeout))]
    Timeout { url: String, timeout: Duration },
    #[error(
        "{url} answered with more than {} MiB, onramp's limit ([http] max_response_mib); onramp stops reading there",
        limit >> 20
    )]
    TooLarge { url: String, limit: u64 },
    #[error("request to {url} failed: {reason}")]
    Failed { url: String, reason: String },
    /// The payer answered 5xx or 429, after the retries the target allows: it was
    /// unavailable, which breaks no rule a check judges.
    #[error("the payer was unavailable: {url} answered {status}{}{}", attempts_text(*attempts), body_text(body))]
    Unavailable {
        url: String,
        status: u16,
        attempts: u32,
        /// The start of the body (an OperationOutcome, an HTML error page), as text.
        body: String,
    },
    /// Not sent: the same origin gave no answer earlier in the run, so this request would
    /// only wait as long again.
    #[error("not sent to {url}: {origin} gave no answer earlier in this run ({cause})")]
    Down {
        url: String,
        origin: String,
        cause: String,
    },
}

fn attempts_text(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

fn body_text(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl HttpError {
    /// Whether the request was never sent because its origin failed earlier: the step that
    /// needs it is skipped (its premise failed), not failed.
    pub fn is_skip(&self) -> bool {
        matches!(self, Self::Down { .. })
    }

    /// Whether this failure shows the origin gives no answer at all, so that later requests
    /// to it are not sent ([`HttpError::Down`]).
    fn takes_origin_down(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Timeout { .. })
    }
}

/// `scheme://host:port` of `url`, or the URL itself when it has no host.
pub fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .filter(|u| u.has_host())
        .map_or_else(|| url.to_owned(), |u| u.origin().ascii_serialization())
}

/// The origins that gave no answer in this run, and why.
#[derive(Debug, Default)]
struct Breaker {
    down: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Breaker {
    fn cause(&self, origin: &str) -> Option<String> {
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(origin)
            .cloned()
    }

    fn trip(&self, origin: String, cause: String) {
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(origin)
            .or_insert(cause);
    }
}

/// The HTTP client of a run.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    settings: HttpSettings,
    recorder: Arc<Recorder>,
    breaker: Arc<Breaker>,
}

/// A request to send, kept whole so that it can be sent again.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: reqwest::Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

impl Http {
    pub fn new(settings: HttpSettings, recorder: Arc<Recorder>) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout.min(settings.timeout))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("onramp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Failed {
                url: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            client,
            settings,
            recorder,
            breaker: Arc::default(),
        })
    }

    /// Why `url`'s origin is known to give no answer in this run, if it is: a browser
    /// about to open a page there need not wait for it either.
    pub fn down(&self, url: &str) -> Option<String> {
        self.breaker.cause(&origin_of(url))
    }

    /// The target's HTTP settings.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Send once, record the exchange; a 5xx or 429 is [`HttpError::Unavailable`].
    pub async fn send(&self, context: &str, request: &Request) -> Result<Response, HttpError> {
        unavailable(self.send_raw(context, request).await?)
    }

    /// Send once and record the exchange, whatever the status. A request to an origin that
    /// gave no answer earlier is not sent ([`HttpError::Down`]).
    async fn send_raw(&self, context: &str, request: &Request) -> Result<Response, HttpError> {
        let origin = origin_of(&request.url);
        if let Some(cause) = self.breaker.cause(&origin) {
            return Err(HttpError::Down {
                url: request.url.clone(),
                origin,
                cause,
            });
        }
        let started = Instant::now();
        let outcome = self.attempt(request).await;
        let duration = started.elapsed();
        let mut raw = RawExchange {
            context: context.to_owned(),
            method: request.method.to_string(),
            url: request.url.clone(),
            duration,
            request_headers: request.headers.clone(),
            request_body: request.body.clone(),
            ..RawExchange::default()
        };
        match &outcome {
            Ok((status, headers, body)) => {
                raw.status = Some(*status);
                raw.response_headers = headers.clone();
                raw.response_body = Some(body.clone());
            }
            Err(error) => {
                raw.error = Some(error.to_string());
                if error.takes_origin_down() {
                    self.breaker.trip(origin, error.to_string());
                }
            }
        }
        self.recorder.exchange(raw);
        outcome.map(|(status, headers, body)| Response {
            url: request.url.clone(),
            status,
            headers,
            body,
            duration,
            attempts: 1,
        })
    }

    async fn attempt(
        &self,
        request: &Request,
    ) -> Result<(u16, Vec<(String, String)>, Vec<u8>), HttpError> {
        let url = request.url.clone();
        let mut builder = self.client.request(request.method.clone(), &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let classify = |error: reqwest::Error| {
            if error.is_timeout() {
                HttpError::Timeout {
                    url: url.clone(),
                    timeout: self.settings.timeout,
                }
            } else if error.is_connect() {
                HttpError::Unreachable {
                    url: url.clone(),
                    reason: root_cause(&error),
                }
            } else {
                HttpError::Failed {
                    url: url.clone(),
                    reason: root_cause(&error),
                }
            }
        };
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let limit = self.settings.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(HttpError::TooLarge { url, limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(HttpError::TooLarge { url, limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body))
    }

    /// Send, retrying 429/502/503/504 up to the configured number of times and honouring
    /// `Retry-After`; every attempt is recorded, every retry noted.
    pub async fn send_with_retries(
        &self,
        context: &str,
        request: &Request,
    ) -> Result<Response, HttpError> {
        let mut attempt = 1;
        loop {
            let response = self.send_raw(context, request).await?;
            let retryable = matches!(response.status, 429 | 502 | 503 | 504);
            if !retryable || attempt > self.settings.retries {
                return unavailable(Response {
                    attempts: attempt,
                    ..response
                });
            }
            let wait =
                retry_after(response.header("retry-after")).unwrap_or_else(|| backoff(attempt));
            if wait > MAX_RETRY_WAIT {
                self.recorder.note(
                    context,
                    &format!(
                        "{} answered {} asking to retry after {} s, longer than onramp waits",
                        request.url,
                        response.status,
                        wait.as_secs()
                    ),
                );
                return unavailable(Response {
                    attempts: attempt,
                    ..response
                });
            }
            self.recorder.note(
                context,
                &format!(
                    "{} answered {}; retrying in {} ms (attempt {} of {})",
                    request.url,
                    response.status,
                    wait.as_millis(),
                    attempt + 1,
                    self.settings.retries + 1
                ),
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// A 5xx or 429 answer as [`HttpError::Unavailable`] (its body's first 300 characters as
/// text, the OperationOutcome's diagnostics when it is one); any other answer as it is.
fn unavailable(response: Response) -> Result<Response, HttpError> {
    if response.status < 500 && response.status != 429 {
        return Ok(response);
    }
    let text = operation_outcome_text(&response.body).unwrap_or_else(|| {
        String::from_utf8_lossy(&response.body)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    });
    Err(HttpError::Unavailable {
        url: response.url,
        status: response.status,
        attempts: response.attempts,
        body: crate::infra::text::truncate(&text, 300),
    })
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt.saturating_sub(1).min(6)))
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: Option<&str>) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let wait = when - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The deepest cause of `error`, which says it plainest.
pub fn root_cause(error: &dyn std::error::Error) -> String {
    let mut deepest = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        deepest = cause.to_string();
        source = cause.source();
    }
    deepest
}

/// The human text of an error answer that is an OperationOutcome (FHIR R4 §3.1.0.4), if it
/// is one.
pub fn operation_outcome_text(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("resourceType")?.as_str()? != "OperationOutcome" {
        return None;
    }
    let texts: Vec<String> = value
        .get("issue")?
        .as_array()?
        .iter()
        .filter_map(|issue| {
            issue
                .get("diagnostics")
                .and_then(|d| d.as_str())
                .or_else(|| issue.pointer("/details/text").and_then(|t| t.as_str()))
                .or_else(|| issue.get("code").and_then(|c| c.as_str()))
                .map(str::to_owned)
        })
        .collect();
    (!texts.is_empty()).then(|| {
        let mut joined = texts.join("; ");
        if joined.len() > 500 {
            let mut cut = 500;
            while !joined.is_char_boundary(cut) {
                cut -= 1;
            }
            joined.truncate(cut);
            joined.push('…');
        }
        joined
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(Some("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert!(backoff(30) <= Duration::from_secs(16));
    }
}
