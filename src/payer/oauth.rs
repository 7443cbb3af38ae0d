//! OAuth 2.0 for the app under test, with the `oauth2` crate: the authorization URL (a
//! 256-bit `state`, PKCE S256 when the target asks for it), reading the redirect back, the
//! code exchange and the refresh, with the client authenticated in the body or with HTTP
//! Basic as the target says. The raw token response is kept (headers and the fields checks
//! need) so that the token scenario can judge it; tokens themselves are [`Secret`]s and are
//! registered with the evidence recorder the moment they arrive.

use super::failure::StepFailure;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenUrl,
};
use serde_json::Value;
use url::Url;

use crate::infra::secret::Secret;
use crate::payer::http::{Http, HttpError, Request};

/// How the client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (the payer guide's curl).
    #[default]
    Body,
    /// HTTP Basic.
    Basic,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// An authorization request, ready to open in the browser.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    pub url: Url,
    pub state: String,
    pub verifier: Option<Secret>,
    pub redirect_uri: Url,
}

/// What came back on the redirect URI.
#[derive(Debug, Clone, Default)]
pub struct Redirect {
    pub code: Option<Secret>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The token endpoint's answer, as far as the checks need it.
#[derive(Debug, Clone, Default)]
pub struct TokenAnswer {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    /// The response's members other than the tokens (`token_type`, `expires_in`, `scope`,
    /// `patient`, `error`, ...), exactly as sent.
    pub fields: serde_json::Map<String, Value>,
    /// Present when the answer is a token response (an `access_token` in a 2xx answer).
    pub tokens: Option<Tokens>,
    /// The OpenID Connect `id_token`, when there was one.
    pub id_token: Option<Secret>,
    /// Why there are no tokens: an OAuth error, a malformed response, or no answer.
    pub problem: Option<String>,
    /// The HTTP failure, when there was no answer at all.
    pub transport: Option<HttpError>,
}

impl TokenAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Tokens from a successful exchange.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub expires_at: Option<Instant>,
}

impl Tokens {
    /// Whether the access token expires within `margin`.
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at <= Instant::now() + margin)
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the target's {what} is not usable: {reason}")]
pub struct OAuthConfigError {
    what: &'static str,
    reason: String,
}

/// The app's OAuth client for one target.
#[derive(Debug)]
pub struct OAuthClient {
    client: Client,
    http: Http,
    scopes: Vec<String>,
    pkce: bool,
    redirect_uri: Url,
    authorize: Url,
    token: Url,
    auth: ClientAuth,
    secret: Secret,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl OAuthClient {
    #[allow(
        clippy::too_many_arguments,
        reason = "one value per setting of the target"
    )]
    pub fn new(
        authorize: &Url,
        token: &Url,
        client_id: &str,
        client_secret: &Secret,
        redirect_uri: &Url,
        auth: ClientAuth,
        scopes: &[String],
        pkce: bool,
        http: Http,
    ) -> Result<Self, OAuthConfigError> {
        let bad = |what: &'static str| {
            move |e: url::ParseError| OAuthConfigError {
                what,
                reason: e.to_string(),
            }
        };
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::new(authorize.to_string()).map_err(bad("authorize URL"))?)
            .set_token_uri(TokenUrl::new(token.to_string()).map_err(bad("token URL"))?)
            .set_redirect_uri(
                RedirectUrl::new(redirect_uri.to_string()).map_err(bad("redirect URI"))?,
            )
            .set_auth_type(match auth {
                ClientAuth::Body => AuthType::RequestBody,
                ClientAuth::Basic => AuthType::BasicAuth,
            });
        http.recorder().add_secret(client_secret.expose());
        Ok(Self {
            client,
            http,
            scopes: scopes.to_vec(),
            pkce,
            redirect_uri: redirect_uri.clone(),
            authorize: authorize.clone(),
            token: token.clone(),
            auth,
            secret: client_secret.clone(),
        })
    }

    /// The same client under other credentials: for requests that a server must refuse
    /// (an unknown `client_id`, a wrong secret).
    pub fn with_credentials(
        &self,
        client_id: &str,
        client_secret: &Secret,
    ) -> Result<Self, OAuthConfigError> {
        Self::new(
            &self.authorize,
            &self.token,
            client_id,
            client_secret,
            &self.redirect_uri,
            self.auth,
            &self.scopes,
            self.pkce,
            self.http.clone(),
        )
    }

    /// POST a form to one of the authorization server's endpoints (revocation,
    /// introspection), authenticated as the client is at the token endpoint.
    pub async fn post_form(
        &self,
        context: &str,
        url: &str,
        fields: &[(&str, &str)],
    ) -> Result<crate::payer::http::Response, HttpError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        let mut headers = vec![(
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )];
        match self.auth {
            ClientAuth::Body => {
                form.append_pair("client_id", self.client_id());
                form.append_pair("client_secret", self.secret.expose());
            }
            ClientAuth::Basic => {
                use base64::Engine as _;
                // RFC 6749 §2.3.1: each part form-urlencoded, then base64.
                let encode = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!(
                    "{}:{}",
                    encode(self.client_id()),
                    encode(self.secret.expose())
                );
                headers.push((
                    "Authorization".to_owned(),
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ),
                ));
            }
        }
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        let request = Request {
            method: reqwest::Method::POST,
            url: url.to_owned(),
            headers,
            body: Some(form.finish().into_bytes()),
        };
        self.http.send(context, &request).await
    }

    /// The app's `client_id`.
    pub fn client_id(&self) -> &str {
        self.client.client_id().as_str()
    }

    /// How the client authenticates at the token endpoint.
    pub fn auth(&self) -> ClientAuth {
        self.auth
    }

    /// A fresh authorization request, with PKCE as the target says.
    pub fn start(&self) -> AuthorizationStart {
        self.start_with(self.pkce)
    }

    /// A fresh authorization request, with or without PKCE.
    pub fn start_with(&self, pkce: bool) -> AuthorizationStart {
        let mut request = self
            .client
            .authorize_url(|| CsrfToken::new_random_len(32))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new));
        let mut verifier = None;
        if pkce {
            let (challenge, secret) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            self.http.recorder().add_secret(secret.secret());
            verifier = Some(Secret::new(secret.secret().clone()));
        }
        let (url, state) = request.url();
        AuthorizationStart {
            url,
            state: state.secret().clone(),
            verifier,
            redirect_uri: self.redirect_uri.clone(),
        }
    }

    /// Read the authorization response from the URL the browser landed on.
    pub fn read_redirect(&self, landed: &Url) -> Redirect {
        let mut redirect = Redirect::default();
        // Parameters in the query, or in the fragment for servers that answer that way.
        let pairs: Vec<(String, String)> = landed
            .query_pairs()
            .into_owned()
            .chain(
                landed
                    .fragment()
                    .map(|f| {
                        url::form_urlencoded::parse(f.as_bytes())
                            .into_owned()
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            )
            .collect();
        for (name, value) in pairs {
            match name.as_str() {
                "code" => {
                    self.http.recorder().add_secret(&value);
                    redirect.code = Some(Secret::new(value));
                }
                "state" => redirect.state = Some(value),
                "error" => redirect.error = Some(value),
                "error_description" => redirect.error_description = Some(value),
                _ => {}
            }
        }
        redirect
    }

    /// Exchange `code` as `attempt` says: properly (with `verifier`), or in one of the ways
    /// the token endpoint must refuse (a wrong secret, an unknown client, no or another
    /// verifier, the `challenge` as the verifier). An attempt that needs what the sign-in
    /// did not make (a PKCE verifier, a challenge) is a usage error.
    pub async fn attempt(
        &self,
        attempt: Attempt,
        code: &Secret,
        verifier: Option<&Secret>,
        challenge: Option<&Secret>,
    ) -> Result<TokenAnswer, StepFailure> {
        let random = || {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        };
        let pkce_needed = || {
            verifier.ok_or_else(|| {
                StepFailure::usage("this attempt needs a PKCE sign-in (\"… once more with PKCE\")")
            })
        };
        Ok(match attempt {
            Attempt::WrongSecret => {
                let wrong = Secret::new(random());
                self.with_credentials(self.client_id(), &wrong)
                    .map_err(|e| StepFailure::usage(e.to_string()))?
                    .exchange(code, verifier)
                    .await
            }
            Attempt::UnknownClient => {
                let stranger = format!("onramp-unregistered-{}", &random()[..12]);
                self.with_credentials(&stranger, &Secret::new(random()))
                    .map_err(|e| StepFailure::usage(e.to_string()))?
                    .exchange(code, verifier)
                    .await
            }
            Attempt::NoVerifier => {
                pkce_needed()?;
                self.exchange(code, None).await
            }
            Attempt::OtherVerifier => {
                pkce_needed()?;
                self.exchange(code, Some(&Secret::new(random()))).await
            }
            Attempt::ChallengeAsVerifier => {
                pkce_needed()?;
                let challenge = challenge.ok_or_else(|| {
                    StepFailure::usage("the authorization request sent no code_challenge")
                })?;
                self.exchange(code, Some(challenge)).await
            }
            Attempt::Proper | Attempt::Again | Attempt::Unissued => {
                self.exchange(code, verifier).await
            }
        })
    }

    /// Exchange a code for tokens.
    pub async fn exchange(&self, code: &Secret, verifier: Option<&Secret>) -> TokenAnswer {
        let capture = Arc::new(Mutex::new(None));
        let call = self.caller(
            "Token: exchange the authorization code",
            Arc::clone(&capture),
        );
        let mut request = self
            .client
            .exchange_code(AuthorizationCode::new(code.expose().to_owned()));
        if let Some(verifier) = verifier {
            request =
                request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_owned()));
        }
        let result = request.request_async(&call).await;
        self.answer(result, &capture)
    }

    /// Exchange a refresh token for new tokens.
    pub async fn refresh(&self, refresh: &Secret) -> TokenAnswer {
        self.refresh_with_scope(refresh, None).await
    }

    /// Exchange a refresh token for new tokens, asking for `scope` (RFC 6749 §6) if given.
    pub async fn refresh_with_scope(&self, refresh: &Secret, scope: Option<&str>) -> TokenAnswer {
        let capture = Arc::new(Mutex::new(None));
        let call = self.caller("Token: refresh the access token", Arc::clone(&capture));
        let token = RefreshToken::new(refresh.expose().to_owned());
        let result = self
            .client
            .exchange_refresh_token(&token)
            .add_scopes(
                scope
                    .into_iter()
                    .flat_map(str::split_whitespace)
                    .map(|s| Scope::new(s.to_owned())),
            )
            .request_async(&call)
            .await;
        self.answer(result, &capture)
    }

    /// The HTTP function the `oauth2` crate calls: onramp's recorded client.
    fn caller(
        &self,
        context: &'static str,
        capture: Arc<Mutex<Option<Result<crate::payer::http::Response, HttpError>>>>,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, TransportError>> + Send>,
    > {
        let http = self.http.clone();
        move |request: oauth2::HttpRequest| {
            let http = http.clone();
            let capture = Arc::clone(&capture);
            Box::pin(async move {
                let (parts, body) = request.into_parts();
                let outgoing = Request {
                    method: parts.method,
                    url: parts.uri.to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(n, v)| {
                            (
                                n.as_str().to_owned(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                    body: Some(body),
                };
                let result = http.send(context, &outgoing).await;
                *capture.lock().unwrap_or_else(|p| p.into_inner()) = Some(result.clone());
                let response = result.map_err(|e| TransportError(e.to_string()))?;
                let mut builder = oauth2::http::Response::builder().status(response.status);
                for (name, value) in &response.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder
                    .body(response.body)
                    .map_err(|e| TransportError(e.to_string()))
            })
        }
    }

    fn answer(
        &self,
        result: Result<
            oauth2::basic::BasicTokenResponse,
            oauth2::RequestTokenError<TransportError, oauth2::basic::BasicErrorResponse>,
        >,
        capture: &Mutex<Option<Result<crate::payer::http::Response, HttpError>>>,
    ) -> TokenAnswer {
        let raw = capture.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut answer = TokenAnswer::default();
        let mut secrets: serde_json::Map<String, Value> = serde_json::Map::new();
        match raw {
            Some(Ok(response)) => {
                answer.status = Some(response.status);
                answer.headers = response.headers.clone();
                if let Ok(Value::Object(mut members)) =
                    serde_json::from_slice::<Value>(&response.body)
                {
                    for name in ["access_token", "refresh_token", "id_token"] {
                        if let Some(value) = members.remove(name) {
                            if let Value::String(text) = &value {
                                self.http.recorder().add_secret(text);
                            }
                            secrets.insert(name.to_owned(), value);
                        }
                    }
                    answer.fields = members;
                }
            }
            Some(Err(error)) => answer.transport = Some(error),
            None => {}
        }
        answer.id_token = secrets
            .get("id_token")
            .and_then(Value::as_str)
            .map(Secret::new);
        // The tokens are read from the answer as sent, so that each check judges one member
        // of it (a malformed `expires_in` fails its own check, not the whole response).
        let success = answer.status.is_some_and(|s| (200..300).contains(&s));
        match secrets.get("access_token").and_then(Value::as_str) {
            Some(access) if success && !access.is_empty() => {
                answer.tokens = Some(Tokens {
                    access: Secret::new(access),
                    refresh: secrets
                        .get("refresh_token")
                        .and_then(Value::as_str)
                        .map(Secret::new),
                    expires_at: answer
                        .fields
                        .get("expires_in")
                        .and_then(Value::as_u64)
                        .map(|seconds| Instant::now() + Duration::from_secs(seconds)),
                });
            }
            _ => {
                let described = match (
                    answer.fields.get("error"),
                    answer.fields.get("error_description"),
                ) {
                    (Some(code), description) => format!(
                        "{}{}",
                        code.as_str().unwrap_or("(error)"),
                        description
                            .and_then(Value::as_str)
                            .map(|d| format!(" ({d})"))
                            .unwrap_or_default()
                    ),
                    _ => match &result {
                        Err(error) => self.http.recorder().redact(&error.to_string()),
                        Ok(_) => "the answer holds no access_token".to_owned(),
                    },
                };
                answer.problem = Some(described);
            }
        }
        answer
    }
}
/// One attempt at exchanging a code (RFC 6749 §4.1.3, RFC 7636 §4.5): the proper one, or
/// one the token endpoint must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// With a client secret the app was never given.
    WrongSecret,
    /// As a `client_id` the server never registered.
    UnknownClient,
    /// Without the `code_verifier` of a PKCE authorization request.
    NoVerifier,
    /// With a well-formed `code_verifier` of another request.
    OtherVerifier,
    /// With the `code_challenge` itself as the verifier (what a `plain`-method server takes).
    ChallengeAsVerifier,
    /// As a real app would.
    Proper,
    /// Properly, once more.
    Again,
    /// With a code the server never issued (no sign-in at all).
    Unissued,
}

impl Attempt {
    /// The attempts that must be refused, and so must not spend the code.
    pub fn is_wrong(self) -> bool {
        !matches!(self, Attempt::Proper | Attempt::Again)
    }

    /// The attempt, as a failure message names it.
    pub fn describe(self) -> &'static str {
        match self {
            Attempt::WrongSecret => "the exchange with a wrong client secret",
            Attempt::UnknownClient => "the exchange as an unregistered client",
            Attempt::NoVerifier => "the exchange without the code_verifier",
            Attempt::OtherVerifier => "the exchange with another code_verifier",
            Attempt::ChallengeAsVerifier => "the exchange with the code_challenge as code_verifier",
            Attempt::Proper => "the proper exchange",
            Attempt::Again => "the second proper exchange",
            Attempt::Unissued => "the exchange of a code the server never issued",
        }
    }
}
