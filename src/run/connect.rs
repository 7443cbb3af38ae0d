//! What a run talks to, started before the features run: the loopback listener the
//! browser is redirected to (or the sandbox's own callback page), the embedded sandbox when
//! it is the target (with the app's client registered), the HTTP and OAuth clients, and the evidence recorder.

use std::sync::Arc;

use url::Url;

use super::context::{self, RunContext};
use super::error::RunError;
use super::plan::{Plan, random_hex};
use super::shared_browser::SharedBrowser;
use crate::config::{Endpoints, Target};
use crate::evidence::Recorder;
use crate::payer::http::Http;
use crate::payer::oauth::OAuthClient;
use crate::report::recording::Film;
use crate::sandbox::{Client, Sandbox, SandboxConfig};
use crate::summary::TargetInfo;

/// The loopback redirect listener, the target (the sandbox started when it is one), and the
/// clients that talk to it.
pub struct Connected {
    pub listener: Option<(Url, tokio::task::JoinHandle<()>)>,
    pub redirect_uri: Url,
    pub sandbox: Option<Sandbox>,
    pub endpoints: context::Endpoints,
    pub client: crate::config::ClientSettings,
    pub http: Http,
    pub oauth: OAuthClient,
}

pub async fn connect(plan: &Plan, recorder: &Arc<Recorder>) -> Result<Connected, RunError> {
    // The redirect URI the app uses, and a listener for it when it is on loopback.
    let registered = plan
        .target
        .client
        .as_ref()
        .and_then(|c| c.redirect_uri.clone());
    let listener = redirect_listener(registered.as_ref()).await;
    let redirect_uri = match (&registered, &listener) {
        (Some(uri), _) => uri.clone(),
        (None, Some((uri, _))) => uri.clone(),
        (None, None) => {
            return Err(RunError::NoLoopbackPort);
        }
    };
    let Started {
        sandbox,
        endpoints,
        client,
    } = start_target(&plan.target, &redirect_uri).await?;
    // The app's callback on the sandbox's own origin, beside its sign-in pages (its client
    // takes any loopback redirect URI).
    let (listener, redirect_uri) = match (&plan.target.endpoints, &sandbox, &registered) {
        (Endpoints::Sandbox(settings), Some(started), None) if settings.same_origin_callback => {
            if let Some((_, task)) = listener {
                task.abort();
            }
            let url = started.app_callback_url();
            let callback =
                Url::parse(&url).map_err(|source| RunError::SandboxUrl { url, source })?;
            (None, callback)
        }
        _ => (listener, redirect_uri),
    };

    let http = Http::new(plan.target.http.clone(), Arc::clone(recorder)).map_err(RunError::Http)?;
    let oauth = OAuthClient::new(
        &endpoints.authorize,
        &endpoints.token,
        &client.id,
        &client.secret,
        &redirect_uri,
        client.auth,
        &plan.target.scopes,
        plan.target.pkce,
        http.clone(),
    )
    .map_err(RunError::OAuth)?;
    Ok(Connected {
        listener,
        redirect_uri,
        sandbox,
        endpoints,
        client,
        http,
        oauth,
    })
}

impl Connected {
    /// The target as the report names it.
    pub fn target_info(&self, plan: &Plan) -> TargetInfo {
        let target = &plan.target;
        TargetInfo {
            name: target.name.clone(),
            kind: if self.sandbox.is_some() {
                "sandbox"
            } else {
                "remote"
            }
            .into(),
            persona: self.sandbox.as_ref().map(|s| s.persona().name().to_owned()),
            features: plan.features_source.clone(),
            authorize_url: self.endpoints.authorize.to_string(),
            token_url: self.endpoints.token.to_string(),
            fhir_base: self.endpoints.fhir_base.to_string(),
            client_id: self.client.id.clone(),
            redirect_uri: self.redirect_uri.to_string(),
            scopes: target.scopes.clone(),
            pkce: target.pkce,
            client_auth: format!("{:?}", self.client.auth).to_lowercase(),
            faults: match &target.endpoints {
                Endpoints::Sandbox(settings) => {
                    settings.faults.iter().map(ToString::to_string).collect()
                }
                Endpoints::Remote(_) => Vec::new(),
            },
            validation: crate::summary::ValidationInfo {
                tier: target.validation.tier,
                profiles: target.validation.profiles.clone(),
            },
            payer: target.payer.clone(),
            directory: self.book_base(target, crate::payer::public::Book::Directory),
            formulary: self.book_base(target, crate::payer::public::Book::Formulary),
        }
    }

    /// Where the target's public API `book` is: its `fhir_base`, else the sandbox's own.
    fn book_base(&self, target: &Target, book: crate::payer::public::Book) -> Option<String> {
        let settings = target.book(book)?;
        match &settings.fhir_base {
            Some(base) => Some(base.to_string()),
            None => self.sandbox.as_ref().map(|s| s.book_base(book)),
        }
    }

    /// The scenarios' shared context, made of the plan and what was started for it; and
    /// what the run keeps for itself.
    pub fn into_context(
        self,
        plan: Plan,
        recorder: Arc<Recorder>,
        browser: Arc<SharedBrowser>,
    ) -> Result<(Arc<RunContext>, Running), RunError> {
        let validator = Arc::new(
            crate::validate::Validator::new(plan.target.validation.tier)
                .with_profiles(&plan.target.validation.profiles)
                .map_err(RunError::Profile)?
                .with_must_support(
                    plan.target.validation.must_support != crate::config::MustSupportLevel::Off,
                ),
        );
        let show_progress = plan.console.progress && !plan.silent;
        let endpoints = &self.endpoints;
        let app = super::app_host::AppHost::new(plan.target.app.as_ref(), &|name| match name {
            "authorize" => endpoints.authorize.to_string(),
            "token" => endpoints.token.to_string(),
            _ => endpoints.fhir_base.to_string(),
        })
        .with_issued(self.sandbox.as_ref().map(Sandbox::issued_source));
        let sandbox = self.sandbox.as_ref();
        let books = super::records::Books::new(
            &plan.target,
            &|book| sandbox.and_then(|s| Url::parse(&s.book_base(book)).ok()),
            show_progress,
        )
        .map_err(RunError::Profile)?;
        let ctx = Arc::new(RunContext {
            app,
            validator,
            books,
            target: plan.target,
            endpoints: self.endpoints,
            http: self.http,
            oauth: self.oauth,
            recorder,
            browser,
            session: super::session::Session::default(),
            members: super::records::Members::default(),
            searches: super::records::Searches::new(show_progress),
            checks: super::checks::Checks::default(),
            discovery: super::records::Discovery::default(),
            verdicts: Arc::default(),
            recipe: plan.recipe,
            sign_in_failures: super::records::Failures::default(),
        });
        let running = Running {
            features: plan.features,
            tags: plan.tags,
            id: plan.id,
            sandbox: self.sandbox,
            listener: self.listener,
            console: plan.console,
            silent: plan.silent,
            fail_fast: plan.fail_fast,
            deadline: plan.deadline,
            manifest: plan.manifest,
            require_checklist: plan.require_checklist,
            link_latest: plan.link_latest,
        };
        Ok((ctx, running))
    }
}

/// What the run keeps beside the shared context: the features to run, what it started
/// and stops at the end, and the settings of its end.
pub struct Running {
    pub features: Vec<cucumber::gherkin::Feature>,
    pub tags: Option<cucumber::gherkin::tagexpr::TagOperation>,
    pub id: String,
    pub sandbox: Option<Sandbox>,
    pub listener: Option<(Url, tokio::task::JoinHandle<()>)>,
    pub console: crate::infra::console::Console,
    pub silent: bool,
    pub fail_fast: bool,
    pub deadline: Option<std::time::Duration>,
    pub manifest: Option<std::path::PathBuf>,
    pub require_checklist: bool,
    pub link_latest: bool,
}

/// The run's evidence recorder: screenshots go to the film as they are taken, every
/// exchange to the terminal with `--verbose`, and the members' secrets are redacted.
pub fn recorder(plan: &Plan, film: &Arc<Film>) -> Arc<Recorder> {
    let recorder = Recorder::new(Some(&plan.dir)).with_frames({
        let film = Arc::clone(film);
        crate::evidence::FrameSink(Box::new(move |context, file, png| {
            film.frame(context, file, png);
        }))
    });
    let recorder = Arc::new(if plan.console.verbose() {
        recorder.with_trace(plan.console)
    } else {
        recorder
    });
    for secret in plan.target.member_secrets() {
        recorder.add_secret(secret);
    }
    // The public APIs' own tokens, wherever a server might echo them.
    for book in crate::payer::public::Book::ALL {
        if let Some(token) = plan.target.book(book).and_then(|b| b.token.as_ref()) {
            recorder.add_secret(token.expose());
        }
    }
    recorder
}

/// A tiny loopback app that receives the redirect, so the browser lands on a real page.
async fn redirect_listener(preferred: Option<&Url>) -> Option<(Url, tokio::task::JoinHandle<()>)> {
    let bind = match preferred {
        Some(url) => {
            let host = url.host_str()?;
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if url.scheme() != "http" || !loopback {
                return None;
            }
            format!("127.0.0.1:{}", url.port_or_known_default()?)
        }
        None => "127.0.0.1:0".to_owned(),
    };
    let listener = tokio::net::TcpListener::bind(&bind).await.ok()?;
    let address = listener.local_addr().ok()?;
    let url = match preferred {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{address}/onramp/callback")).ok()?,
    };
    let page = "<!doctype html><meta charset=utf-8><title>onramp</title>\
        <body style=\"font:16px system-ui;margin:3rem\"><h1>onramp received the authorization response</h1>\
        <p>This window belongs to an onramp run; it closes when the run ends.</p></body>";
    let app = axum::Router::new().fallback(move || async move { axum::response::Html(page) });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Some((url, task))
}

/// What the run talks to: the sandbox it started (if any), the endpoints, and the app's
/// client there.
struct Started {
    sandbox: Option<Sandbox>,
    endpoints: context::Endpoints,
    client: crate::config::ClientSettings,
}

/// Start the embedded sandbox when it is the target, registering the target's client
/// (or a fresh one) with `redirect_uri`.
async fn start_target(target: &Target, redirect_uri: &Url) -> Result<Started, RunError> {
    let client = target
        .client
        .clone()
        .unwrap_or_else(|| crate::config::ClientSettings {
            id: format!("onramp-run-{}", random_hex(4)),
            secret: crate::infra::secret::Secret::new(random_hex(24)),
            redirect_uri: None,
            auth: crate::config::ClientAuth::Body,
        });
    match &target.endpoints {
        Endpoints::Sandbox(settings) => {
            let persona = settings.persona;
            let config = SandboxConfig {
                persona,
                members: settings.members.unwrap_or(persona.default_members()),
                eobs_per_member: settings.eobs_per_member,
                faults: settings.faults.clone(),
                pkce: settings.pkce.unwrap_or(persona.default_pkce()),
                token_lifetime: settings.token_lifetime,
                directory_size: settings.directory_size,
                // onramp's own client, and the clients an app under test may use.
                clients: [Client {
                    client_id: client.id.clone(),
                    client_secret: Some(client.secret.expose().to_owned()),
                    redirect_uris: vec![redirect_uri.to_string()],
                    any_loopback: true,
                }]
                .into_iter()
                .chain(Client::apps())
                .collect(),
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::start(config).await.map_err(RunError::Sandbox)?;
            let parse = |url: String| match Url::parse(&url) {
                Ok(parsed) => Ok(parsed),
                Err(source) => Err(RunError::SandboxUrl { url, source }),
            };
            let endpoints = context::Endpoints {
                authorize: parse(sandbox.authorize_url())?,
                token: parse(sandbox.token_url())?,
                fhir_base: parse(sandbox.fhir_base())?,
            };
            Ok(Started {
                sandbox: Some(sandbox),
                endpoints,
                client,
            })
        }
        Endpoints::Remote(remote) => Ok(Started {
            sandbox: None,
            endpoints: context::Endpoints {
                authorize: remote.authorize.clone(),
                token: remote.token.clone(),
                fhir_base: remote.fhir_base.clone(),
            },
            client,
        }),
    }
}
