//! The embedded demo health plan: an offline stand-in for a payer's Patient Access demo
//! environment (the identity pages, the OAuth 2.0 / SMART token endpoint, discovery, and a
//! read-only FHIR R4 API), with synthetic members at any scale and fault injection.
//!
//! It imitates a payer ([`Persona`]: the payer guide's demo plan, or a Blue Button
//! 2.0-like plan) where that payer's documentation describes it (paths, page texts, form
//! labels, test members, five-minute single-use codes) and behaves as a correct OAuth 2.0
//! server where it is silent. It runs in-process on an ephemeral port for tests and
//! for `onramp run` ([`Sandbox::start`]), or standalone with `onramp sandbox`.
//!
//! It knows nothing of the harness: nothing here imports the browser, the run or reports.

mod authorize;
pub mod data;
pub mod faults;
mod fhir;
mod grants;
mod openid;
mod pages;
pub mod persona;
mod public;
mod token;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use data::Store;
use data::generate::Generated;
use data::load::{LoadError, Loaded};
pub use faults::{Fault, FaultError};
pub use persona::{Persona, PkceMode};

/// The authorization "system" path segment of the payer's demo (`/oauth2/authorize/test`).
pub const SYSTEM: &str = "test";
/// The demo client every sandbox registers.
pub const DEMO_CLIENT_ID: &str = "onramp-demo-client";
/// The demo client's secret. It is published (the sandbox prints it); treat it as a secret
/// anyway, as a real one would be.
pub const DEMO_CLIENT_SECRET: &str = "onramp-demo-secret";
/// The public client registered for apps under test (SMART `client-public`: no secret, PKCE
/// required), any loopback redirect URI.
pub const APP_PUBLIC_CLIENT_ID: &str = "onramp-app";
/// The confidential client registered for apps under test (`client-confidential-symmetric`).
pub const APP_CONFIDENTIAL_CLIENT_ID: &str = "onramp-app-confidential";
/// Its secret, published as the demo client's is.
pub const APP_CONFIDENTIAL_CLIENT_SECRET: &str = "onramp-app-secret";
/// Largest request body accepted (forms, token requests).
const BODY_LIMIT: usize = 16 * 1024;

/// An app registered with the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// None for a public client (SMART `client-public`), which proves itself with PKCE.
    pub client_secret: Option<String>,
    /// Redirect URIs accepted exactly as written.
    pub redirect_uris: Vec<String>,
    /// Also accept any `http://` redirect URI on a loopback host (RFC 8252 §7.3).
    pub any_loopback: bool,
}

impl Client {
    /// The demo client: any loopback `http` redirect URI, plus `extra` ones.
    pub fn demo(extra: Vec<String>) -> Self {
        Self {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: Some(DEMO_CLIENT_SECRET.into()),
            redirect_uris: extra,
            any_loopback: true,
        }
    }

    /// The clients registered for apps under test: a public one and a confidential one,
    /// each taking any loopback `http` redirect URI.
    pub fn apps() -> [Self; 2] {
        [
            Self {
                client_id: APP_PUBLIC_CLIENT_ID.into(),
                client_secret: None,
                redirect_uris: Vec::new(),
                any_loopback: true,
            },
            Self {
                client_id: APP_CONFIDENTIAL_CLIENT_ID.into(),
                client_secret: Some(APP_CONFIDENTIAL_CLIENT_SECRET.into()),
                redirect_uris: Vec::new(),
                any_loopback: true,
            },
        ]
    }

    /// Whether it is a public client (no secret: PKCE is its proof).
    pub fn is_public(&self) -> bool {
        self.client_secret.is_none()
    }

    /// Whether `uri` is a redirect URI this client registered.
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        if self
            .redirect_uris
            .iter()
            .any(|registered| registered == uri)
        {
            return true;
        }
        let Ok(url) = Url::parse(uri) else {
            return false;
        };
        self.any_loopback
            && url.scheme() == "http"
            && url.fragment().is_none()
            && match url.host() {
                Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            }
    }
}

/// Reads the codes and tokens a sandbox has issued so far ([`Sandbox::issued_source`]).
pub struct IssuedSecrets(Arc<State>);

impl IssuedSecrets {
    /// Every code and token issued until now (the newest, bounded).
    pub fn now(&self) -> Vec<String> {
        self.0.grants.issued()
    }
}

impl std::fmt::Debug for IssuedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedSecrets")
    }
}

/// Everything a sandbox can be told.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Which payer to imitate.
    pub persona: Persona,
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Members of the generated plan (John Allen is the first).
    pub members: usize,
    pub eobs_per_member: usize,
    /// Serve this folder of FHIR files instead of the generated plan.
    pub data: Option<PathBuf>,
    pub faults: Vec<Fault>,
    pub pkce: PkceMode,
    pub clients: Vec<Client>,
    pub code_lifetime: Duration,
    pub token_lifetime: Duration,
    /// Practitioners in the Provider Directory (five PractitionerRoles each).
    pub directory_size: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            persona: Persona::default(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            members: 3,
            eobs_per_member: 12,
            data: None,
            faults: Vec::new(),
            pkce: PkceMode::default(),
            clients: [Client::demo(Vec::new())]
                .into_iter()
                .chain(Client::apps())
                .collect(),
            code_lifetime: Duration::from_secs(300),
            token_lifetime: Duration::from_secs(7200),
            directory_size: DEFAULT_DIRECTORY_SIZE,
        }
    }
}

/// Why a sandbox did not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve the data folder")]
    Data(#[from] LoadError),
}

/// Practitioners in the Provider Directory unless told otherwise.
pub const DEFAULT_DIRECTORY_SIZE: usize = 30;

/// What every handler shares.
pub(crate) struct State {
    pub config: SandboxConfig,
    pub store: Arc<dyn Store>,
    pub grants: grants::Grants,
    pub keys: openid::Keys,
    pub faults: faults::Faults,
    pub pages: pages::Pages,
    /// `http://host:port`, no trailing slash.
    pub origin: String,
    /// Keys search cursors so that a tampered cursor is refused.
    pub cursor_key: String,
    /// The public books, grown when first asked for.
    pub directory: tokio::sync::OnceCell<Arc<data::books::Listing>>,
    pub formulary: tokio::sync::OnceCell<Arc<data::books::Listing>>,
}

impl State {
    /// What a sandbox serving `store` at `origin` shares.
    fn new(config: SandboxConfig, store: Arc<dyn Store>, origin: String) -> Arc<Self> {
        Arc::new(State {
            faults: faults::Faults::new(config.faults.clone()),
            pages: pages::Pages::new(config.persona.brand()),
            config,
            store,
            grants: grants::Grants::default(),
            keys: openid::Keys,
            origin,
            cursor_key: grants::random_token(),
            directory: tokio::sync::OnceCell::new(),
            formulary: tokio::sync::OnceCell::new(),
        })
    }

    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.config
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
    }

    pub fn fhir_base(&self) -> String {
        format!("{}{}", self.origin, self.config.persona.fhir_path())
    }

    pub fn authorize_url(&self) -> String {
        format!("{}{}", self.origin, self.config.persona.authorize_path())
    }

    pub fn token_url(&self) -> String {
        format!("{}{}", self.origin, self.config.persona.token_path())
    }

    pub fn revocation_url(&self) -> String {
        format!("{}{}", self.origin, self.config.persona.revocation_path())
    }

    pub fn introspection_url(&self) -> String {
        format!(
            "{}{}",
            self.origin,
            self.config.persona.introspection_path()
        )
    }

    /// Where the OpenID signing keys are.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.origin)
    }
}

/// The routes of a sandbox over `state`, at its persona's paths.
pub(crate) fn router(state: Arc<State>) -> Router {
    let persona = state.config.persona;
    let sign_in = match persona.login() {
        persona::Login::IdentityForm => Router::new()
            .route("/oauth2/authorize/{system}", get(authorize::start))
            .route(
                "/oauth2/authorize/{system}/identity",
                get(authorize::identity_form).post(authorize::identity_submit),
            ),
        persona::Login::PasswordAndConsent => {
            let path = persona.authorize_path();
            Router::new()
                .route(path, get(authorize::login_start))
                .route(&format!("{path}login"), post(authorize::login_submit))
                .route(&format!("{path}consent"), post(authorize::consent_submit))
        }
    };
    Router::new()
        .route("/", get(index))
        .route("/callback", get(callback))
        .route(APP_CALLBACK_PATH, get(app_callback))
        .route("/jwks.json", get(openid::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(openid::configuration),
        )
        .merge(sign_in)
        .route(persona.token_path(), post(token::token))
        .route(persona.revocation_path(), post(token::revoke))
        .route(persona.introspection_path(), post(token::introspect))
        .nest(persona.fhir_path(), fhir::routes(Arc::clone(&state)))
        .nest(
            data::books::path(data::books::Book::Directory),
            public::routes(data::books::Book::Directory),
        )
        .nest(
            data::books::path(data::books::Book::Formulary),
            public::routes(data::books::Book::Formulary),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// One log line per request: method, path (never the query, which can carry codes), status.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        "{method} {path} {} ({} ms)",
        response.status().as_u16(),
        started.elapsed().as_millis()
    );
    response
}

/// What `onramp sandbox` prints at start: where everything is and how to sign in.
pub fn describe(sandbox: &Sandbox) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let persona = sandbox.persona();
    let _ = writeln!(
        text,
        "{} (onramp sandbox, persona {persona}) is running. Press Ctrl-C to stop.\n",
        persona.brand()
    );
    let _ = writeln!(text, "  Authorize   {}", sandbox.authorize_url());
    let _ = writeln!(text, "  Token       {}", sandbox.token_url());
    let _ = writeln!(text, "  FHIR base   {}", sandbox.fhir_base());
    let _ = writeln!(
        text,
        "  Discovery   {}/.well-known/smart-configuration",
        sandbox.fhir_base()
    );
    let _ = writeln!(
        text,
        "  Directory   {} (Plan-Net, no token)",
        sandbox.book_base(data::books::Book::Directory)
    );
    let _ = writeln!(
        text,
        "  Formulary   {} (US Drug Formulary, no token)",
        sandbox.book_base(data::books::Book::Formulary)
    );
    let _ = writeln!(
        text,
        "  Scopes      {}\n",
        authorize::SCOPES_SUPPORTED.join(" ")
    );
    for client in sandbox.clients() {
        let _ = writeln!(text, "  Client");
        let _ = writeln!(text, "    client_id      {}", client.client_id);
        match &client.client_secret {
            Some(secret) => {
                let _ = writeln!(text, "    client_secret  {secret}");
            }
            None => {
                let _ = writeln!(
                    text,
                    "    client_secret  none: a public client (PKCE with S256 required), for apps"
                );
            }
        }
        let mut uris: Vec<String> = client.redirect_uris.clone();
        if client.any_loopback {
            uris.push(
                "any http://localhost or loopback (127.0.0.1, [::1]) URL, any port and path".into(),
            );
        }
        let _ = writeln!(
            text,
            "    redirect URIs  {}\n",
            uris.join("\n                   ")
        );
    }
    let _ = writeln!(
        text,
        "  Members ({} in all; type these into the {})",
        sandbox.member_count(),
        match persona.login() {
            persona::Login::IdentityForm => "identity form",
            persona::Login::PasswordAndConsent => "login page",
        }
    );
    describe_members(&mut text, sandbox);
    if let Some(client) = sandbox.clients().first() {
        describe_try_it(&mut text, sandbox, client);
    }
    let faults: Vec<String> = sandbox.faults().iter().map(ToString::to_string).collect();
    let _ = write!(
        text,
        "\n  Faults      {}",
        if faults.is_empty() {
            "none".to_owned()
        } else {
            faults.join(", ")
        }
    );
    text
}

/// The first members, as a person types them in.
fn describe_members(text: &mut String, sandbox: &Sandbox) {
    use std::fmt::Write as _;
    let persona = sandbox.persona();
    for index in 0..sandbox.member_count().min(3) {
        if persona.login() == persona::Login::PasswordAndConsent {
            let patient = sandbox
                .member(index)
                .map(|m| m.patient_id)
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "    Username {} · Password {}   (Patient/{patient})",
                Persona::username_of(index),
                Persona::password_of(index)
            );
            continue;
        }
        let Some(member) = sandbox.member(index) else {
            continue;
        };
        match member.identity {
            Some(id) => {
                let _ = writeln!(
                    text,
                    "    {} {} · Birthdate {} · Plan Member ID {} · Zip Code {}   (Patient/{})",
                    id.first_name,
                    id.last_name,
                    id.birth_date,
                    id.member_id,
                    id.zip,
                    member.patient_id
                );
            }
            None => {
                let _ = writeln!(
                    text,
                    "    Patient/{} cannot sign in (incomplete identity)",
                    member.patient_id
                );
            }
        }
    }
}

/// The three requests of a sign-in, with curl, for the first client.
fn describe_try_it(text: &mut String, sandbox: &Sandbox, client: &Client) {
    use std::fmt::Write as _;
    let persona = sandbox.persona();
    let redirect = format!("{}/callback", sandbox.origin());
    let _ = writeln!(text, "\n  Try it");
    let _ = writeln!(
        text,
        "    1. open    {}?client_id={}&redirect_uri={redirect}&state=xyz{}",
        sandbox.authorize_url(),
        client.client_id,
        match sandbox.state.config.pkce {
            PkceMode::Required => "&code_challenge=CHALLENGE&code_challenge_method=S256",
            _ => "",
        }
    );
    let _ = writeln!(
        text,
        "               and sign in; the browser lands on {redirect}?code=CODE&state=xyz"
    );
    let secret = client.client_secret.as_deref().unwrap_or_default();
    let credentials = if persona.secret_in_body() {
        format!(
            "-d client_id={} -d client_secret={secret}",
            client.client_id
        )
    } else {
        format!("-u {}:{secret}", client.client_id)
    };
    let pkce = match sandbox.state.config.pkce {
        PkceMode::Required => " -d code_verifier=VERIFIER",
        _ => "",
    };
    let _ = writeln!(
        text,
        "    2. curl -X POST {} {credentials} -d grant_type=authorization_code -d code=CODE -d redirect_uri={redirect}{pkce}",
        sandbox.token_url(),
    );
    let _ = writeln!(
        text,
        "    3. curl -H 'Authorization: Bearer ACCESS_TOKEN' {}/ExplanationOfBenefit",
        sandbox.fhir_base()
    );
}

async fn index(axum::extract::State(state): axum::extract::State<Arc<State>>) -> Response {
    let page = state.pages.render(
        "index",
        &serde_json::json!({
            "authorize_url": state.authorize_url(),
            "token_url": state.token_url(),
            "fhir_base": state.fhir_base(),
        }),
    );
    html_page(axum::http::StatusCode::OK, page)
}

/// `GET /callback`: a stand-in redirect URI that shows what an app would receive, for trying
/// the sign-in by hand.
async fn callback(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let page = state.pages.render(
        "callback",
        &serde_json::json!({
            "code": params.get("code"),
            "state": params.get("state"),
            "error": params.get("error"),
            "error_description": params.get("error_description"),
            "code_minutes": state.config.code_lifetime.as_secs().div_ceil(60),
            "token_url": state.token_url(),
        }),
    );
    html_page(axum::http::StatusCode::OK, page)
}

/// Where an app whose callback shares the sandbox's origin is sent back to (as a payer's own
/// test client is): a page that shows nothing of what the redirect carries.
pub const APP_CALLBACK_PATH: &str = "/app/callback";

async fn app_callback() -> Response {
    html_page(
        axum::http::StatusCode::OK,
        "<!doctype html><meta charset=utf-8><title>App</title><body style=\"font:16px system-ui;margin:3rem\"><h1>The app received the authorization response</h1><p>A test client on the demo health plan's own origin.</p></body>".to_owned(),
    )
}

/// An HTML page with the headers every sandbox page carries.
pub(crate) fn html_page(status: axum::http::StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A running sandbox. Dropping it stops the server; [`Sandbox::shutdown`] also waits for it.
pub struct Sandbox {
    address: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Bind, load or generate the data, and serve in the background.
    pub async fn start(config: SandboxConfig) -> Result<Self, SandboxError> {
        let store: Arc<dyn Store> = match &config.data {
            Some(dir) => {
                let dir = dir.clone();
                let loaded = tokio::task::spawn_blocking(move || Loaded::from_dir(&dir))
                    .await
                    .map_err(|join| LoadError::Read {
                        path: PathBuf::new(),
                        source: std::io::Error::other(join.to_string()),
                    })??;
                for warning in &loaded.warnings {
                    tracing::warn!("{warning}");
                }
                Arc::new(loaded)
            }
            None => Arc::new(Generated::new(config.members, config.eobs_per_member)),
        };
        let requested = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(requested)
            .await
            .map_err(|source| SandboxError::Bind {
                address: requested,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| SandboxError::Bind {
            address: requested,
            source,
        })?;
        let shown_host = if address.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            address.ip()
        };
        let origin = format!("http://{}", SocketAddr::new(shown_host, address.port()));
        let state = State::new(config, store, origin);
        let keys = Arc::clone(&state);
        tokio::task::spawn_blocking(move || keys.keys.prepare());
        let app = router(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the sandbox stopped serving");
            }
        });
        Ok(Self {
            address,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://host:port`: the authorization server's base.
    pub fn origin(&self) -> &str {
        &self.state.origin
    }

    /// The authorization endpoint (`/oauth2/authorize/test`).
    pub fn authorize_url(&self) -> String {
        self.state.authorize_url()
    }

    /// The callback of an app on the sandbox's own origin ([`APP_CALLBACK_PATH`]).
    pub fn app_callback_url(&self) -> String {
        format!("{}{APP_CALLBACK_PATH}", self.state.origin)
    }

    /// The token endpoint (`/oauth2/token`).
    pub fn token_url(&self) -> String {
        self.state.token_url()
    }

    /// The FHIR base (`/r4`).
    pub fn fhir_base(&self) -> String {
        self.state.fhir_base()
    }

    /// The base of a public book: the Provider Directory (`/directory/r4`) or the drug
    /// formulary (`/formulary/r4`).
    pub fn book_base(&self, book: data::books::Book) -> String {
        format!("{}{}", self.state.origin, data::books::path(book))
    }

    /// The registered clients (the demo client first).
    pub fn clients(&self) -> &[Client] {
        &self.state.config.clients
    }

    /// The members of the plan, as far as they can be listed.
    pub fn member(&self, index: usize) -> Option<data::Member> {
        self.state.store.member(index)
    }

    pub fn member_count(&self) -> usize {
        self.state.store.member_count()
    }

    /// Every authorization code, access token and refresh token the sandbox has issued (the
    /// latest 50,000): what a client under test must never print or store.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.state.grants.issued()
    }

    /// A handle that reads [`Sandbox::issued_secrets`] later, for whoever must keep the
    /// codes and tokens of other clients (an app under test) out of what it writes.
    pub fn issued_source(&self) -> IssuedSecrets {
        IssuedSecrets(Arc::clone(&self.state))
    }

    /// The payer it imitates.
    pub fn persona(&self) -> Persona {
        self.state.config.persona
    }

    /// The faults in force.
    pub fn faults(&self) -> &[Fault] {
        self.state.faults.list()
    }

    /// Stop accepting requests, let the ones in flight finish (for at most five seconds:
    /// a browser may hold a connection open), and wait.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    fn app(persona: Persona) -> Router {
        let config = SandboxConfig {
            persona,
            ..SandboxConfig::default()
        };
        let store = Arc::new(Generated::new(config.members, config.eobs_per_member));
        router(State::new(config, store, "http://sandbox.test".into()))
    }

    async fn get(app: Router, path: &str) -> Response {
        app.oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .unwrap_or_else(|e| match e {})
    }

    #[tokio::test]
    async fn each_persona_serves_its_own_paths_without_a_socket() {
        for (persona, fhir, authorize) in [
            (
                Persona::DemoPlan,
                "/r4",
                "/oauth2/authorize/test?client_id=x",
            ),
            (
                Persona::Bluebutton,
                "/v2/fhir",
                "/v2/o/authorize/?client_id=x",
            ),
        ] {
            let metadata = get(app(persona), &format!("{fhir}/metadata")).await;
            assert_eq!(metadata.status(), 200, "{persona}");
            let anonymous = get(app(persona), &format!("{fhir}/Patient")).await;
            assert_eq!(anonymous.status(), 401, "{persona}");
            assert!(anonymous.headers().contains_key("www-authenticate"));
            // An unknown app gets an error page, never a redirect.
            assert_eq!(
                get(app(persona), authorize).await.status(),
                400,
                "{persona}"
            );
        }
        assert_eq!(
            get(app(Persona::Bluebutton), "/r4/metadata").await.status(),
            404
        );
    }
}
