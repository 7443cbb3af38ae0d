//! The member's authorization for the run: a code waiting to be exchanged (the one the
//! `@sign-in` scenario caught), and the grant of the run, from the first exchange that any
//! scenario made, whose access token every read uses and which is refreshed when it is
//! about to expire.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, OnceCell};
use url::Url;

use super::StepFailure;
use crate::evidence::Recorder;
use crate::infra::secret::Secret;
use crate::payer::oauth::{AuthorizationStart, OAuthClient, Redirect, TokenAnswer, Tokens};

/// A member's sign-in, up to the redirect back to the app.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub start: AuthorizationStart,
    pub landed: Url,
    pub redirect: Redirect,
}

impl Authorized {
    /// The code the redirect carried, or the failure of a redirect without one.
    pub fn code(&self) -> Result<&Secret, StepFailure> {
        self.redirect.code.as_ref().ok_or_else(|| {
            StepFailure::conformance(format!(
                "the redirect carried no code{}",
                self.redirect
                    .error
                    .as_ref()
                    .map(|e| format!(" but error={e}"))
                    .unwrap_or_default()
            ))
        })
    }
}

/// The tokens of the run.
#[derive(Debug)]
pub struct Grant {
    /// The exchange that gave them, as the token checks judge it.
    pub answer: TokenAnswer,
    pub requested_scope: String,
    tokens: AsyncMutex<Option<Tokens>>,
    refreshed: AtomicU32,
}

impl Grant {
    pub fn new(answer: TokenAnswer, requested_scope: String) -> Self {
        let tokens = answer.tokens.clone();
        Self {
            answer,
            requested_scope,
            tokens: AsyncMutex::new(tokens),
            refreshed: AtomicU32::new(0),
        }
    }

    /// How often the access token was refreshed.
    pub fn refreshed(&self) -> u32 {
        self.refreshed.load(Ordering::Relaxed)
    }

    /// The `patient` the token response named.
    pub fn patient(&self) -> Option<String> {
        self.answer
            .fields
            .get("patient")
            .and_then(|p| p.as_str())
            .map(str::to_owned)
    }

    /// The scope the member granted: the token response's `scope`, else (RFC 6749 §5.1:
    /// omitted when identical) the one requested.
    pub fn granted_scope(&self) -> String {
        self.answer
            .fields
            .get("scope")
            .and_then(|s| s.as_str())
            .map_or_else(|| self.requested_scope.clone(), str::to_owned)
    }

    /// Whether the grant holds a refresh token.
    pub async fn has_refresh_token(&self) -> bool {
        self.tokens
            .lock()
            .await
            .as_ref()
            .is_some_and(|t| t.refresh.is_some())
    }

    /// Refresh the grant now (the `@refresh` checks), asking for `scope` if given. The grant
    /// keeps the newest refresh token (the old one may be revoked, RFC 6749 §6), and takes
    /// the new access token only from a refresh without `scope` (a narrower one would fail
    /// the reads that follow). Gives the refresh token used and the answer; `None` when
    /// the grant holds no refresh token.
    pub async fn refresh_now(
        &self,
        oauth: &OAuthClient,
        scope: Option<&str>,
    ) -> Option<(Secret, TokenAnswer)> {
        let mut tokens = self.tokens.lock().await;
        let used = tokens.as_ref()?.refresh.clone()?;
        let answer = oauth.refresh_with_scope(&used, scope).await;
        if let (Some(current), Some(fresh)) = (tokens.as_mut(), answer.tokens.as_ref()) {
            if let Some(rotated) = &fresh.refresh {
                current.refresh = Some(rotated.clone());
            }
            if scope.is_none() {
                current.access = fresh.access.clone();
                current.expires_at = fresh.expires_at;
            }
            self.refreshed.fetch_add(1, Ordering::Relaxed);
        }
        Some((used, answer))
    }

    /// A live access token, refreshed when it expires within a minute.
    pub async fn access_token(
        &self,
        oauth: &OAuthClient,
        recorder: &Recorder,
    ) -> Result<Secret, StepFailure> {
        let mut tokens = self.tokens.lock().await;
        let Some(current) = tokens.as_ref() else {
            let why = self
                .answer
                .problem
                .clone()
                .unwrap_or_else(|| "no token response".into());
            // The token checks judge the exchange; what needs its token only waits for it.
            return Err(StepFailure::blocked(format!(
                "no access token: the code exchange failed: {why}"
            )));
        };
        if current.expires_within(Duration::from_secs(60))
            && let Some(refresh) = current.refresh.clone()
        {
            let answer = oauth.refresh(&refresh).await;
            match answer.tokens {
                Some(fresh) => {
                    self.refreshed.fetch_add(1, Ordering::Relaxed);
                    recorder.note(
                        "Token",
                        "the access token was about to expire and was refreshed",
                    );
                    *tokens = Some(fresh);
                }
                None => recorder.note(
                    "Token",
                    &format!(
                        "refreshing the access token failed: {}",
                        answer.problem.unwrap_or_default()
                    ),
                ),
            }
        }
        tokens
            .as_ref()
            .map(|t| t.access.clone())
            .ok_or_else(|| StepFailure::blocked("no access token"))
    }
}

/// What the scenarios of a run share of the member's authorization.
#[derive(Debug, Default)]
pub struct Session {
    offered: Mutex<Option<Authorized>>,
    grant: OnceCell<Result<Arc<Grant>, StepFailure>>,
}

impl Session {
    /// A fresh code from the sign-in scenario, for the next scenario that needs one.
    pub fn offer(&self, authorized: Authorized) {
        *self.offered.lock().unwrap_or_else(|p| p.into_inner()) = Some(authorized);
    }

    /// The offered code, if it was not taken yet.
    pub fn take_offered(&self) -> Option<Authorized> {
        self.offered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Make `grant` the run's grant, unless a scenario already established one.
    pub fn establish(&self, grant: Grant) {
        let _ = self.grant.set(Ok(Arc::new(grant)));
    }

    /// The run's grant, obtained with `obtain` if no scenario established one. When
    /// obtaining it failed, the step that tried fails with why; every later step that
    /// needs it is skipped, naming that failure (its premise failed, it broke no rule).
    pub async fn grant(
        &self,
        obtain: impl Future<Output = Result<Grant, StepFailure>>,
    ) -> Result<Arc<Grant>, StepFailure> {
        if let Some(Err(failure)) = self.grant.get() {
            return Err(StepFailure::premise("no token", failure));
        }
        self.grant
            .get_or_init(|| async { obtain.await.map(Arc::new) })
            .await
            .clone()
    }

    /// The grant, if one was established, without obtaining one.
    pub fn existing(&self) -> Option<Arc<Grant>> {
        self.grant.get().and_then(|g| g.as_ref().ok()).cloned()
    }
}
