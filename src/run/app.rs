//! The app under test in the run (`[app]`, the `@app` features): started when a scenario
//! first needs it and stopped with the run ([`AppHost`]), and visited in the run's browser
//! as the member would ([`AppVisit`]): its start page, the payer's sign-in replayed from the
//! `@sign-in` recipe wherever the app sends the member, the way back, and what it then
//! shows, judged by [`crate::app`]. A failure here is the app's (kind `app`), never the
//! payer's; an app that cannot be reached because nothing was started is the user's setup.

use std::time::{Duration, Instant};

use url::Url;

use super::StepFailure;
pub use super::app_host::{AppHost, Expected};
use super::context::RunContext;
use super::page::{Page, url_without_query};
use super::shared_browser::environment;
use crate::app::MemberName;
use crate::infra::fault::FailureKind;
use crate::infra::origin::same_origin;
use crate::payer::recipe::Action;

/// What the scenarios' context calls the app's pages.
pub const CONTEXT: &str = crate::evidence::APP_CONTEXT;

/// The recording's first page, as a `data:` URL: the app, the payer's target, the member,
/// the date and time, and onramp's version (every value HTML-escaped).
fn title_card(app: &str, target: &str, member: &str) -> Url {
    use base64::Engine as _;
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let now = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{app}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:0;height:100vh;display:flex;flex-direction:column;justify-content:center;align-items:center;background:#0b3d91;color:#fff}}\
         h1{{font-size:2.6rem;margin:.2rem}}p{{font-size:1.3rem;margin:.3rem;opacity:.92}}small{{margin-top:2rem;opacity:.7}}</style></head>\
         <body><h1>{app}</h1><p>connects to {target} and shows the member's data</p>\
         <p>Member: {member}</p><p>{now}</p><small>recorded by onramp {version}</small></body></html>",
        app = escape(app),
        target = escape(target),
        member = escape(member),
        version = env!("CARGO_PKG_VERSION"),
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(html);
    Url::parse(&format!("data:text/html;charset=utf-8;base64,{encoded}"))
        .unwrap_or_else(|_| Url::parse("about:blank").unwrap_or_else(|e| unreachable!("{e}")))
}

/// The app, open in the run's browser for one scenario.
#[derive(Debug)]
pub struct AppVisit {
    pub page: Page,
    /// Where the member started.
    pub start: Url,
    /// Whether the browser came back to the app after the sign-in (`None`: not yet asked).
    pub back: Option<bool>,
    /// The app's name, for messages.
    pub name: String,
    pub timeout: Duration,
}

impl AppVisit {
    /// Open the app's start page (starting the app first when onramp starts it), as a
    /// stranger to the payer: cookies of earlier sign-ins are deleted.
    pub async fn open(ctx: &RunContext) -> Result<Self, StepFailure> {
        let settings = ctx.app.settings()?.clone();
        let url = ctx.app.ready().await?;
        // Read before the browser is held: it may need the browser for onramp's own
        // sign-in. Its failures are told by the checks that need it.
        let expected = ctx.app_expected().await;
        let browser = ctx.browser.lock().await?;
        browser.forget_sign_ins().await.map_err(environment)?;
        let mut page = Page::new(browser, CONTEXT, true, 0);
        page.clicks_outlast_loads = true;
        // The recording opens on a title card: what is shown, for whom, when, by what.
        let member = expected
            .name
            .as_ref()
            .map_or_else(|| "the target's member".to_owned(), |n| n.to_string());
        let payer = ctx.target.payer.name.as_ref().unwrap_or(&ctx.target.name);
        let card = title_card(&settings.name, payer, &member);
        if page.goto(ctx, &card).await.is_ok() {
            page.screenshot(ctx, "title card").await;
        }
        // A start page that does not load in time is the app's; a browser that fails is not.
        page.goto(ctx, &url).await.map_err(|e| {
            if e.is_load_timeout() {
                StepFailure::app(format!(
                    "{} did not load its start page at {} in time: {e}",
                    settings.name,
                    url_without_query(&url)
                ))
            } else {
                environment(e)
            }
        })?;
        let mut visit = Self {
            page,
            start: url,
            back: None,
            name: settings.name,
            timeout: settings.timeout,
        };
        visit.loaded_fine(ctx, "the app's start page").await?;
        visit.page.screenshot(ctx, "the app's start page").await;
        Ok(visit)
    }

    /// That the page loaded from the app: not the browser's error page, and a status below
    /// 400; the failure is the app's.
    async fn loaded_fine(&self, ctx: &RunContext, what: &str) -> Result<(), StepFailure> {
        let state = self.page.browser.page_state().await.map_err(environment)?;
        let at = self.here(ctx).await;
        if state.error_page {
            self.page.evidence(ctx, &format!("{what}: no answer")).await;
            return Err(StepFailure::app(format!(
                "{what} did not load: the browser shows its own error page at {at} ({} did not answer there)",
                self.name
            )));
        }
        if let Some(status) = state.status.filter(|s| *s >= 400) {
            self.page
                .evidence(ctx, &format!("{what}: status {status}"))
                .await;
            return Err(StepFailure::app(format!(
                "{what} at {at} answered {status}; it shows: {}",
                self.shown(400).await
            )));
        }
        Ok(())
    }

    /// Where the browser is, its query and fragment cut (the app's callback carries its code).
    async fn here(&self, ctx: &RunContext) -> String {
        match self.page.browser.current_url().await {
            Ok(url) => ctx.recorder.redact(&url_without_query(&url)),
            Err(_) => "(unknown)".into(),
        }
    }

    /// The page's text, whitespace collapsed, at most `limit` characters.
    async fn shown(&self, limit: usize) -> String {
        let text = self.page.browser.text().await.unwrap_or_default();
        crate::infra::text::truncate(
            &text.split_whitespace().collect::<Vec<_>>().join(" "),
            limit,
        )
    }

    /// Whether the browser is on the app's origin.
    async fn in_app(&self) -> bool {
        self.page
            .browser
            .current_url()
            .await
            .is_ok_and(|url| same_origin(&url, &self.start))
    }

    /// Do what one step of the sign-in language says, on the app's page.
    pub async fn perform(&mut self, ctx: &RunContext, action: &Action) -> Result<(), StepFailure> {
        if matches!(action, Action::Start | Action::Open) {
            return Err(StepFailure::usage(
                "in an @app scenario the app starts its own authorization request: open the app, click what starts it, then `the member signs in to the health plan`",
            ));
        }
        self.page.perform(ctx, action).await
    }

    /// Replay the `@sign-in` recipe from wherever the app sent the member. A first step
    /// that finds nothing to act on while the browser is still in the app, or on a page the
    /// payer refused with an error status, is the app's failure; a later one, the recipe's.
    pub async fn sign_in(&mut self, ctx: &RunContext) -> Result<(), StepFailure> {
        let recipe = ctx.recipe()?;
        let payer = &ctx.endpoints.authorize;
        let payer_apart = !same_origin(payer, &self.start);
        let mut acted = false;
        for step in &recipe.steps {
            if matches!(step.action, Action::Start | Action::Open) {
                continue;
            }
            if acted && payer_apart && self.in_app().await {
                ctx.recorder.note(
                    CONTEXT,
                    "the payer sent the member back to the app without asking again",
                );
                return Ok(());
            }
            match self.page.perform(ctx, &step.action).await {
                Ok(()) => acted = true,
                Err(failure) if !acted && failure.kind == FailureKind::Usage => {
                    return Err(self.not_at_payer(ctx, failure, payer_apart).await);
                }
                Err(failure) => {
                    return Err(StepFailure {
                        message: format!(
                            "{} (replaying the sign-in of {}, line {}: {})",
                            failure.message, recipe.source, step.line, step.text
                        ),
                        ..failure
                    });
                }
            }
        }
        Ok(())
    }

    /// Why the sign-in's first step found nothing: the app did not send the member to the
    /// payer, the payer refused the app's request, or (a payer page that does not fit) the
    /// recipe.
    async fn not_at_payer(
        &self,
        ctx: &RunContext,
        failure: StepFailure,
        payer_apart: bool,
    ) -> StepFailure {
        let at = self.here(ctx).await;
        if payer_apart && self.in_app().await {
            return StepFailure::app(format!(
                "{} did not send the member to the health plan's sign-in: the browser is still in the app, at {at}, showing: {} (if the app needs a click or an answer first, the features lack that step before `the member signs in to the health plan`)",
                self.name,
                self.shown(300).await
            ));
        }
        let status = self
            .page
            .browser
            .page_state()
            .await
            .ok()
            .and_then(|s| s.status);
        if let Some(status) = status.filter(|s| *s >= 400) {
            return StepFailure::app(format!(
                "the health plan refused {}'s authorization request with {status} at {at} (its client_id, redirect_uri, scopes or PKCE are not what the payer accepts); the page says: {}",
                self.name,
                self.shown(300).await
            ));
        }
        failure
    }

    /// Wait for the browser to be back on the app's origin with a page that loaded from it.
    pub async fn come_back(&mut self, ctx: &RunContext) -> Result<(), StepFailure> {
        ctx.app.learn_secrets(&ctx.recorder);
        let started = Instant::now();
        let payer_apart = !same_origin(&ctx.endpoints.authorize, &self.start);
        let mut last = String::new();
        let arrived = loop {
            if let Ok(url) = self.page.browser.current_url().await {
                last = ctx.recorder.redact(&url_without_query(&url));
                let on_payer =
                    !payer_apart && url.path().starts_with(ctx.endpoints.authorize.path());
                if same_origin(&url, &self.start)
                    && !on_payer
                    && self.page.browser.page_state().await.is_ok_and(|s| s.loaded)
                {
                    break true;
                }
            }
            if started.elapsed() >= self.timeout {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        ctx.recorder.browser_action(
            CONTEXT,
            "wait for the browser to come back to the app",
            started,
            arrived,
        );
        self.back = Some(arrived);
        if !arrived {
            self.page.evidence(ctx, "not back in the app").await;
            let whereabouts = if last.is_empty() {
                "the page the browser was sent to last never finished loading (does the app's redirect URI answer?)".to_owned()
            } else {
                format!("it is at {last}")
            };
            return Err(StepFailure::app(format!(
                "after the sign-in the browser did not come back to {} within {}: {whereabouts}; the window shows: {}",
                self.name,
                crate::infra::words::seconds(self.timeout),
                self.shown(300).await
            )));
        }
        // The callback may hand on to the app's own page: let it settle.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fine = self
            .loaded_fine(ctx, "the app's page after the sign-in")
            .await;
        self.back = Some(fine.is_ok());
        fine?;
        self.page.screenshot(ctx, "back in the app").await;
        Ok(())
    }

    /// Wait until the page shows what `find` looks for in its text (the app may load the
    /// member's data after the page): what it found, or the page's text at the timeout.
    pub async fn wait_to_show<T>(
        &mut self,
        ctx: &RunContext,
        what: &str,
        find: impl Fn(&str) -> Option<T>,
    ) -> Result<T, String> {
        if self.back == Some(false) {
            return Err(String::new());
        }
        ctx.app.learn_secrets(&ctx.recorder);
        let started = Instant::now();
        loop {
            let text = self.page.browser.text().await.unwrap_or_default();
            if let Some(found) = find(&text) {
                ctx.recorder
                    .browser_action(CONTEXT, &format!("wait for {what}"), started, true);
                self.page
                    .screenshot(ctx, &format!("the app shows {what}"))
                    .await;
                return Ok(found);
            }
            if started.elapsed() >= self.timeout {
                ctx.recorder
                    .browser_action(CONTEXT, &format!("wait for {what}"), started, false);
                self.page
                    .evidence(ctx, &format!("the app does not show {what}"))
                    .await;
                return Err(self.shown(400).await);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

impl RunContext {
    /// What the app may show of the member's `kind` resources (read once, with the run's
    /// token and the search the run reads `kind` with): the words of their codes and their
    /// dates ([`crate::app::resource_marks`]); or why there is nothing to look for.
    pub async fn app_marks(&self, kind: &str) -> Result<Vec<String>, String> {
        let mut cache = self.app.marks.lock().await;
        if let Some(known) = cache.get(kind) {
            return known.clone();
        }
        let read = async {
            let query: Vec<(String, String)> =
                if self.target.clinical_resources.iter().any(|k| k == kind) {
                    let patient = self.patient_id().await.ok_or_else(|| {
                        "whose resources to read is unknown: no patient in the token response"
                            .to_owned()
                    })?;
                    crate::payer::clinical::first_query(kind, &patient).unwrap_or_else(|| {
                        vec![("patient".to_owned(), format!("Patient/{patient}"))]
                    })
                } else {
                    Vec::new()
                };
            let pairs: Vec<(&str, &str)> = query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let pages = self
                .search_query(
                    kind,
                    &pairs,
                    &format!("{CONTEXT}: what the app should show"),
                )
                .await
                .map_err(|failure| {
                    format!(
                        "onramp could not read the member's {kind} itself: {}",
                        failure.message.lines().next().unwrap_or_default()
                    )
                })?;
            let mut marks: Vec<String> = crate::payer::search::entries(&pages)
                .iter()
                .filter(|(_, r)| r["resourceType"] == kind)
                .flat_map(|(_, r)| crate::app::resource_marks(r))
                .collect();
            marks.sort();
            marks.dedup();
            if marks.is_empty() {
                return Err(format!("the payer returned no {kind} for the member"));
            }
            Ok(marks)
        };
        let found = read.await;
        cache.insert(kind.to_owned(), found.clone());
        found
    }

    /// What the app should show of the member (read once): the payer's Patient and claims
    /// for them, read with the run's own token; the name from the target's `[member]`
    /// (`first_name`, `last_name`) when the Patient cannot be read.
    pub async fn app_expected(&self) -> &Expected {
        self.app.expected.get_or_init(|| self.read_expected()).await
    }

    async fn read_expected(&self) -> Expected {
        let token = self.access_token().await;
        let read = |path: String| {
            let token = token.as_ref().ok().cloned();
            async move {
                let token = token?;
                let response = crate::payer::fhir::read(
                    &self.http,
                    &self.endpoints.fhir_base,
                    &path,
                    Some(&token),
                    &format!("{CONTEXT}: what the app should show"),
                )
                .await
                .ok()?;
                (response.status == 200)
                    .then(|| serde_json::from_slice::<serde_json::Value>(&response.body).ok())
                    .flatten()
            }
        };
        let patient = match self.patient_id().await {
            Some(id) => read(crate::payer::fhir::resource_path("Patient", &id)).await,
            None => None,
        };
        let from_patient = patient.as_ref().and_then(MemberName::of_patient);
        let (name, name_source) = match from_patient {
            Some(name) => (
                Some(name),
                "the member's Patient, as the payer holds it".to_owned(),
            ),
            None => {
                let member = &self.target.member;
                let name = MemberName::new(
                    member.get("first_name").map_or("", String::as_str),
                    member.get("last_name").map_or("", String::as_str),
                );
                (
                    name,
                    "the target's [member] first_name and last_name".to_owned(),
                )
            }
        };
        let mut marks = Vec::new();
        let mut next = Some("ExplanationOfBenefit".to_owned());
        for _ in 0..5 {
            let Some(path) = next.take() else { break };
            let Some(bundle) = read(path).await else {
                break;
            };
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                if entry
                    .pointer("/resource/resourceType")
                    .and_then(|t| t.as_str())
                    == Some("ExplanationOfBenefit")
                {
                    marks.extend(crate::app::claim_marks(&entry["resource"]));
                }
            }
            next = bundle["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str())
                .and_then(|u| {
                    u.strip_prefix(self.endpoints.fhir_base.as_str().trim_end_matches('/'))
                        .map(str::to_owned)
                });
        }
        marks.sort();
        marks.dedup();
        let claims_problem = match (&token, marks.is_empty()) {
            (Err(failure), _) => Some(format!(
                "onramp could not read the member's claims itself: {}",
                failure.message.lines().next().unwrap_or_default()
            )),
            (Ok(_), true) => Some("the payer returned no claims for the member".to_owned()),
            (Ok(_), false) => None,
        };
        Expected {
            name,
            name_source,
            claim_marks: marks,
            claims_problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The title card shows names from the target file and the payer's Patient: every one
    /// is inert there.
    #[test]
    fn the_title_card_escapes_what_it_shows() {
        use base64::Engine as _;
        let card = title_card("<b>App</b>", "Plan & Co", "<script>alert(1)</script>");
        let encoded = card
            .as_str()
            .split_once("base64,")
            .map(|(_, e)| e.to_owned())
            .expect("a base64 data URL");
        let html = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64"),
        )
        .expect("utf-8");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;App&lt;/b&gt;") && html.contains("Plan &amp; Co"));
    }
}
