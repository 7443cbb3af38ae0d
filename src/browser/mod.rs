//! The browser: a WebDriver session (fantoccini) on Chromium, the chromedriver that serves
//! it, and what a person does on a sign-in page — click a link or button by its text, fill
//! a field found by its label (or placeholder, accessible name, `name`), choose an option,
//! tick a box, wait for a text, submit — plus screenshots and catching the redirect back to
//! the app. Every wait has a timeout that names what it waited for.
//!
//! It knows nothing of FHIR or OAuth: it drives pages and reports what it saw.

mod chromium;
mod driver;
mod setup;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub use chromium::Chromium;
pub use driver::{ChromeDriver, find_chromedriver, find_chromium};
pub use setup::{BrowserError, BrowserOptions, CHROMEDRIVER_ENV, CHROMIUM_ENV, DevToolsEndpoint};
use setup::{chromium_args, new_profile, preferences};

/// What a page offers a person (see [`Browser::offers`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageOffers {
    pub buttons: Vec<String>,
    pub fields: Vec<String>,
}

impl std::fmt::Display for PageOffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = |items: &[String]| {
            items
                .iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.buttons.is_empty(), self.fields.is_empty()) {
            (true, true) => f.write_str("no link, button or form field"),
            (false, true) => write!(f, "the links and buttons {}", quoted(&self.buttons)),
            (true, false) => write!(f, "the fields {}", quoted(&self.fields)),
            (false, false) => write!(
                f,
                "the links and buttons {}; the fields {}",
                quoted(&self.buttons),
                quoted(&self.fields)
            ),
        }
    }
}

/// The names of a page's visible links, buttons and form fields, as [`Browser::offers`]
/// reads them.
const PAGE_OFFERS: &str = r#"
const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
const clean = t => (t || '').replace(/\s+/g, ' ').trim();
const out = { buttons: [], fields: [] };
const add = (list, t) => { t = clean(t); if (t && !list.includes(t)) list.push(t); };
for (const e of document.querySelectorAll('a, button, input[type=submit], input[type=button], [role=button], [role=link]')) {
  if (!visible(e)) continue;
  add(out.buttons, (e.tagName === 'INPUT' ? e.value : e.innerText) || e.getAttribute('aria-label'));
}
for (const e of document.querySelectorAll('input, textarea, select')) {
  if (!visible(e) || ['hidden', 'submit', 'button'].includes(e.type)) continue;
  let label = e.id ? document.querySelector('label[for="' + CSS.escape(e.id) + '"]') : null;
  label = label || e.closest('label');
  add(out.fields, (label && label.innerText) || e.getAttribute('aria-label') || e.placeholder || e.name || e.id);
}
return out;
"#;

/// The web element identifier (W3C WebDriver, "Elements"): the key under which a script's
/// result names an element.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// JavaScript that sets `el` to the first element that the first XPath with a match finds
/// (`arguments[0]`, in order of preference), or null: one command for what would otherwise
/// be a Find Element per XPath, each costing Chromium and chromedriver several milliseconds
/// of CPU.
macro_rules! first_match_js {
    () => {
        r#"let el = null;
for (const path of arguments[0]) {
  const hit = document.evaluate(path, document, null,
    XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
  if (hit && hit.nodeType === Node.ELEMENT_NODE) { el = hit; break; }
}
"#
    };
}

/// The element `first_match_js!` finds, or null.
const FIRST_MATCH: &str = concat!(first_match_js!(), "return el;");

/// The field `first_match_js!` finds, focused, with what it holds selected: the field, what
/// it holds, its `type`, and whether it takes text that an insertion can replace; or null.
const FIELD_FOCUSED: &str = concat!(
    first_match_js!(),
    r#"if (!el) { return null; }
el.focus();
const type = (el.getAttribute('type') || '').toLowerCase();
const text = el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' &&
  ['', 'text', 'password', 'email', 'tel', 'search', 'url'].includes(type));
if (text) { el.select(); }
return { field: el, value: el.value, type: type,
  text: text && document.activeElement === el };"#
);

/// A Chrome DevTools Protocol command through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct DevTools {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// WebDriver's Navigate To (§10.1) with an absolute URL.
#[derive(Debug)]
struct NavigateTo {
    url: String,
}

impl fantoccini::wd::WebDriverCompatibleCommand for NavigateTo {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/url", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "url": self.url });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// A link or button found on the page, not clicked yet ([`Browser::clickable`]).
#[derive(Debug)]
pub struct Clickable {
    element: fantoccini::elements::Element,
    text: String,
}

impl Clickable {
    pub async fn click(self) -> Result<(), BrowserError> {
        self.element
            .click()
            .await
            .map_err(BrowserError::command(format!("click \"{}\"", self.text)))
    }
}

/// How the page in the window loaded ([`Browser::page_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageState {
    pub status: Option<u16>,
    pub error_page: bool,
    pub loaded: bool,
}

/// Reads [`PageState`] in the page: Chromium's error pages are `chrome-error://` documents
/// with a `#main-frame-error` (or a `neterror` body).
const PAGE_STATE: &str = r#"
const nav = performance.getEntriesByType('navigation')[0];
const status = nav && typeof nav.responseStatus === 'number' ? nav.responseStatus : null;
const error = location.protocol === 'chrome-error:'
  || !!document.getElementById('main-frame-error')
  || !!(document.body && document.body.classList.contains('neterror'));
return { status: status, error: error, ready: document.readyState };
"#;

/// Puts `arguments[0]` in a caption bar at the bottom of the page, or removes it (null).
/// Mask the fields holding a typed secret (see [`Browser::mask_fields`]); returns how many.
const MASK_FIELDS: &str = r#"
const typed = arguments[0];
let masked = 0;
for (const field of document.querySelectorAll('input, textarea')) {
  if ((field.getAttribute('type') || '').toLowerCase() === 'password') continue;
  const value = String(field.value || '');
  let holds = false;
  for (let i = 0; i < typed.length; i++) {
    if (typed[i] && value.indexOf(typed[i]) !== -1) { holds = true; break; }
  }
  if (holds) {
    field.style.setProperty('-webkit-text-security', 'disc', 'important');
    masked++;
  }
}
return masked;
"#;

const CAPTION: &str = r#"
const old = document.getElementById('onramp-caption');
if (old) old.remove();
if (arguments[0] === null) return;
const bar = document.createElement('div');
bar.id = 'onramp-caption';
bar.textContent = arguments[0];
bar.setAttribute('style', 'position:fixed;left:0;right:0;bottom:0;z-index:2147483647;' +
  'background:rgba(32,33,36,.9);color:#fff;font:600 20px/1.4 system-ui,sans-serif;' +
  'padding:14px 24px;margin:0;text-align:left;pointer-events:none');
(document.body || document.documentElement).appendChild(bar);
"#;

/// One browser window, with a private profile that is removed when it closes.
pub struct Browser {
    client: Client,
    timeout: Duration,
    patience: Patience,
    /// The private profile onramp made, for a local browser (a remote driver makes its own).
    profile: Option<tempfile::TempDir>,
    /// The browser context it works in, attached to a Chromium onramp started.
    context: Option<chromium::Context>,
}

/// How long [`Browser`] looks for what a step names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Patience {
    /// Up to the timeout: the page is expected to show it.
    #[default]
    Wait,
    /// Briefly, once the page has loaded: the page may well not show it (a probe).
    Settle,
}

/// How long a settled page may take to show what a probe looks for.
const SETTLE_GRACE: Duration = Duration::from_millis(250);

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Open a Chromium session on the WebDriver at `webdriver`: in a browser context of
    /// its own in the Chromium `options.devtools` names, or else in a Chromium the
    /// WebDriver starts.
    pub async fn open(webdriver: &str, options: &BrowserOptions) -> Result<Self, BrowserError> {
        if let Some(endpoint) = &options.devtools {
            return Self::attach(webdriver, endpoint, options).await;
        }
        let chromium = match (&options.chromium, options.remote) {
            (Some(path), _) => Some(path.clone()),
            (None, false) => Some(find_chromium(false)?),
            (None, true) => std::env::var_os(CHROMIUM_ENV).map(PathBuf::from),
        };
        let profile = if options.remote {
            None
        } else {
            Some(new_profile()?)
        };
        let mut args = chromium_args(options);
        if let Some(profile) = &profile {
            args.push(format!("--user-data-dir={}", profile.path().display()));
        }

        let mut chrome_options = json!({ "args": args });
        if let Some(chromium) = chromium {
            chrome_options["binary"] = json!(chromium.display().to_string());
        }
        if options.remote {
            // The driver writes these into the profile it creates.
            chrome_options["prefs"] = preferences();
        }
        let client = connect(webdriver, chrome_options, options.timeout).await?;
        Ok(Self {
            client,
            timeout: options.timeout,
            patience: Patience::Wait,
            profile,
            context: None,
        })
    }

    /// A session on the page of a new browser context in the Chromium at `endpoint`.
    async fn attach(
        webdriver: &str,
        endpoint: &DevToolsEndpoint,
        options: &BrowserOptions,
    ) -> Result<Self, BrowserError> {
        let starting = chromium::SESSIONS.take(chromium::Turn::Start).await;
        let context = chromium::Context::open(endpoint, options.window).await?;
        let client = match connect(
            webdriver,
            json!({ "debuggerAddress": endpoint.address }),
            options.timeout,
        )
        .await
        {
            Ok(client) => client,
            Err(error) => {
                drop(starting);
                context.close().await;
                return Err(error);
            }
        };
        let page = fantoccini::wd::WindowHandle::try_from(context.page.clone());
        let browser = Self {
            client,
            timeout: options.timeout,
            patience: Patience::Wait,
            profile: None,
            context: Some(context),
        };
        let switched = match page {
            Ok(page) => browser
                .client
                .switch_to_window(page)
                .await
                .map_err(BrowserError::command("switch to the new context's page")),
            Err(_) => Err(BrowserError::DevTools {
                url: endpoint.browser.clone(),
                reason: "the new page's target id is not a window handle".into(),
            }),
        };
        drop(starting);
        if let Err(error) = switched {
            let _ = browser.close().await;
            return Err(error);
        }
        Ok(browser)
    }

    /// The browser's name and version as the WebDriver reported them.
    pub fn version(&self) -> Option<String> {
        let capabilities = self.client.capabilities()?;
        let name = capabilities
            .get("browserName")
            .and_then(|n| n.as_str())
            .unwrap_or("browser");
        let version = capabilities
            .get("browserVersion")
            .and_then(|v| v.as_str())?;
        Some(format!("{name} {version}"))
    }

    /// The private profile folder onramp made (removed when the browser is dropped); none
    /// for a remote WebDriver, which makes its own.
    pub fn profile_dir(&self) -> Option<&std::path::Path> {
        self.profile.as_ref().map(tempfile::TempDir::path)
    }

    /// Load `url`.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        // WebDriver's Navigate To, not fantoccini's `goto`, which first asks for the current
        // address to resolve a relative URL, and so waits for Chromium's start page to load.
        self.client
            .issue_cmd(NavigateTo {
                url: url.to_owned(),
            })
            .await
            .map(drop)
            .map_err(BrowserError::command(format!("open {url}")))
    }

    /// The address the window shows now.
    pub async fn current_url(&self) -> Result<url::Url, BrowserError> {
        self.client
            .current_url()
            .await
            .map_err(BrowserError::command("read the current URL"))
    }

    /// The page's visible text.
    pub async fn text(&self) -> Result<String, BrowserError> {
        let body = self
            .client
            .find(Locator::Css("body"))
            .await
            .map_err(BrowserError::command("find the page body"))?;
        body.text()
            .await
            .map_err(BrowserError::command("read the page text"))
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Result<Vec<u8>, BrowserError> {
        self.client
            .screenshot()
            .await
            .map_err(BrowserError::command("take a screenshot"))
    }

    async fn here(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "(unknown)".into())
    }

    /// How long to look for what a step names. `Patience::Settle` is for probes that expect
    /// a page to refuse: once the page has loaded, look only briefly.
    pub fn set_patience(&mut self, patience: Patience) {
        self.patience = patience;
    }

    async fn loaded(&self) -> bool {
        self.client
            .execute("return document.readyState", Vec::new())
            .await
            .is_ok_and(|state| state == "complete")
    }

    /// Retry `probe` until it yields, or fail naming `what`: after the timeout, or (when
    /// settling) a moment after the page has finished loading.
    async fn wait_until<T, F, Fut>(&self, what: &str, mut probe: F) -> Result<T, BrowserError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let started = Instant::now();
        let mut loaded_at: Option<Instant> = None;
        loop {
            if let Some(found) = probe().await {
                return Ok(found);
            }
            if started.elapsed() >= self.timeout {
                return Err(BrowserError::Timeout {
                    what: what.to_owned(),
                    waited: started.elapsed(),
                });
            }
            if self.patience == Patience::Settle {
                match loaded_at {
                    Some(at) if at.elapsed() >= SETTLE_GRACE => {
                        return Err(BrowserError::Missing {
                            what: what.to_owned(),
                            url: self.here().await,
                        });
                    }
                    Some(_) => {}
                    None if self.loaded().await => loaded_at = Some(Instant::now()),
                    None => {}
                }
            }
            // Fast at first (most pages answer within a few polls), then every 100 ms.
            let pause = if started.elapsed() < Duration::from_millis(500) {
                20
            } else {
                100
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    async fn find_first(&self, xpaths: &[String]) -> Option<fantoccini::elements::Element> {
        let found = self
            .client
            .execute(FIRST_MATCH, vec![json!(xpaths)])
            .await
            .ok()?;
        self.element(&found)
    }

    /// The element a script returned (a WebDriver element reference), if it is one.
    fn element(&self, value: &serde_json::Value) -> Option<fantoccini::elements::Element> {
        let id = value.get(ELEMENT_KEY)?.as_str()?;
        Some(fantoccini::elements::Element::from_element_id(
            self.client.clone(),
            id.to_owned().into(),
        ))
    }

    /// Click the link or button whose text (or accessible name) is `text`.
    pub async fn click(&self, text: &str) -> Result<(), BrowserError> {
        self.clickable(text).await?.click().await
    }

    /// The link or button whose text (or accessible name) is `text`, once the page shows
    /// it: a page that has settled, to be looked at (a screenshot) before it is clicked.
    pub async fn clickable(&self, text: &str) -> Result<Clickable, BrowserError> {
        let t = xpath_literal(text);
        let xpaths = [
            format!(
                "//a[normalize-space(.)={t}] | //button[normalize-space(.)={t}] | //input[(@type='submit' or @type='button') and @value={t}] | //*[@role='button' or @role='link'][normalize-space(.)={t}]"
            ),
            format!(
                "//*[self::a or self::button or @role='button' or @role='link'][@aria-label={t}]"
            ),
        ];
        let element = self
            .wait_until(&format!("a link or button \"{text}\""), || {
                self.find_first(&xpaths)
            })
            .await?;
        Ok(Clickable {
            element,
            text: text.to_owned(),
        })
    }

    /// The form field a person would call `name`: by its label, else its accessible name,
    /// its placeholder, or its `name`/`id`.
    async fn field(&self, name: &str) -> Result<fantoccini::elements::Element, BrowserError> {
        let xpaths = field_xpaths(name);
        self.wait_until(&format!("a field labelled \"{name}\""), || {
            self.find_first(&xpaths)
        })
        .await
    }

    /// Type `value` into the field called `name` (see [`Browser::field`]); returns whether
    /// the field hides what is typed (a password field), so that the caller can treat the
    /// value as a secret.
    ///
    /// A text field is focused, its content selected and replaced by `value` in one
    /// insertion, as a paste or an input method would (Chromium's `Input.insertText`,
    /// which fires `beforeinput` and `input` like typing and honours `maxlength`; what
    /// Playwright's `fill` does). WebDriver's key-by-key typing costs about 6 ms a
    /// character; it remains for other fields (`select`, dates) and for a WebDriver that is
    /// not chromedriver.
    pub async fn fill(&self, name: &str, value: &str) -> Result<bool, BrowserError> {
        // Found, focused and selected in one command.
        let xpaths = json!(field_xpaths(name));
        let (field, seen) = self
            .wait_until(&format!("a field labelled \"{name}\""), || async {
                let seen = self
                    .client
                    .execute(FIELD_FOCUSED, vec![xpaths.clone()])
                    .await
                    .ok()?;
                Some((self.element(&seen["field"])?, seen))
            })
            .await?;
        let kind = seen["type"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let password = kind == "password";
        if seen["text"].as_bool() == Some(true) && self.insert_text(value).await {
            return Ok(password);
        }
        if seen["value"].as_str().is_some_and(|v| !v.is_empty()) {
            field
                .clear()
                .await
                .map_err(BrowserError::command(format!("clear the field \"{name}\"")))?;
        }
        field
            .send_keys(value)
            .await
            .map_err(BrowserError::command(format!(
                "type into the field \"{name}\""
            )))?;
        Ok(password)
    }

    /// Replace the focused field's selection with `text` through chromedriver's DevTools
    /// bridge; false when the WebDriver has none.
    async fn insert_text(&self, text: &str) -> bool {
        self.client
            .issue_cmd(DevTools {
                cmd: "Input.insertText",
                params: json!({ "text": text }),
            })
            .await
            .is_ok()
    }

    /// Press Enter in the field called `name`, or (with none) the page's first submit
    /// button: how a person submits a form.
    pub async fn submit(&self, field: Option<&str>) -> Result<(), BrowserError> {
        match field {
            Some(name) => {
                let field = self.field(name).await?;
                field
                    .send_keys("\u{E007}")
                    .await
                    .map_err(BrowserError::command(format!("press Enter in \"{name}\"")))
            }
            None => {
                let xpaths = ["//form//*[self::button[not(@type) or @type='submit'] or self::input[@type='submit']]".to_owned()];
                let button = self
                    .wait_until("a form with a submit button", || self.find_first(&xpaths))
                    .await?;
                button
                    .click()
                    .await
                    .map_err(BrowserError::command("submit the form"))
            }
        }
    }

    /// Choose `option`: a radio button or checkbox labelled so, or (with `field`) the option
    /// of the select labelled `field`, or the radio button in the group whose legend is
    /// `field`.
    pub async fn choose(&self, option: &str, field: Option<&str>) -> Result<(), BrowserError> {
        let o = xpath_literal(option);
        let toggle = "(self::input[@type='radio' or @type='checkbox'])";
        let xpaths: Vec<String> = match field {
            None => vec![
                format!("//*[{toggle} and @id=//label[normalize-space(.)={o}]/@for]"),
                format!("//label[normalize-space(.)={o}]//*[{toggle}]"),
                format!("//*[{toggle} and @aria-label={o}]"),
                format!("//select/option[normalize-space(.)={o}]"),
            ],
            Some(field) => {
                let f = xpath_literal(field);
                vec![
                    format!(
                        "//select[@id=//label[normalize-space(.)={f}]/@for]/option[normalize-space(.)={o}]"
                    ),
                    format!(
                        "//label[normalize-space(.)={f}]//select/option[normalize-space(.)={o}]"
                    ),
                    format!(
                        "//select[@aria-label={f} or @name={f}]/option[normalize-space(.)={o}]"
                    ),
                    format!(
                        "//fieldset[legend[normalize-space(.)={f}]]//*[{toggle} and @id=//label[normalize-space(.)={o}]/@for]"
                    ),
                    format!(
                        "//fieldset[legend[normalize-space(.)={f}]]//label[normalize-space(.)={o}]//*[{toggle}]"
                    ),
                ]
            }
        };
        let what = match field {
            Some(field) => format!("an option \"{option}\" for \"{field}\""),
            None => format!("an option \"{option}\""),
        };
        let element = self.wait_until(&what, || self.find_first(&xpaths)).await?;
        let chosen = element
            .is_selected()
            .await
            .map_err(BrowserError::command(format!(
                "read whether \"{option}\" is chosen"
            )))?;
        if chosen {
            return Ok(());
        }
        element
            .click()
            .await
            .map_err(BrowserError::command(format!("choose \"{option}\"")))
    }

    /// Tick (`on`) or clear the checkbox labelled `label`.
    pub async fn set_checked(&self, label: &str, on: bool) -> Result<(), BrowserError> {
        let l = xpath_literal(label);
        let checkbox = "(self::input[@type='checkbox'])";
        let xpaths = [
            format!("//*[{checkbox} and @id=//label[normalize-space(.)={l}]/@for]"),
            format!("//label[normalize-space(.)={l}]//*[{checkbox}]"),
            format!("//*[{checkbox} and (@aria-label={l} or @name={l})]"),
        ];
        let element = self
            .wait_until(&format!("a checkbox \"{label}\""), || {
                self.find_first(&xpaths)
            })
            .await?;
        let checked = element
            .is_selected()
            .await
            .map_err(BrowserError::command(format!(
                "read the checkbox \"{label}\""
            )))?;
        if checked == on {
            return Ok(());
        }
        element.click().await.map_err(BrowserError::command(format!(
            "click the checkbox \"{label}\""
        )))
    }

    /// Wait until the page shows `text`.
    pub async fn wait_for_text(&self, text: &str) -> Result<(), BrowserError> {
        self.wait_until(&format!("the text \"{text}\""), || async {
            self.text()
                .await
                .ok()
                .filter(|t| t.contains(text))
                .map(|_| ())
        })
        .await
    }

    /// Wait until the window's address satisfies `arrived` (the redirect back to the app),
    /// and return it. Works whether or not the address loads: an unreachable app URL still
    /// becomes the window's address.
    pub async fn wait_for_url(
        &self,
        what: &str,
        arrived: impl Fn(&url::Url) -> bool,
    ) -> Result<url::Url, BrowserError> {
        self.wait_until(what, || async {
            let url = self.client.current_url().await.ok()?;
            arrived(&url).then_some(url)
        })
        .await
    }

    /// What the page offers a person: the names of its visible links and buttons and of
    /// its visible form fields (by label, accessible name, placeholder or name), the first
    /// twenty of each. For a message that says what a page has when it lacks what a step
    /// names.
    pub async fn offers(&self) -> PageOffers {
        let found = self.client.execute(PAGE_OFFERS, Vec::new()).await;
        let list = |value: &serde_json::Value, key: &str| -> Vec<String> {
            value
                .get(key)
                .and_then(|v| v.as_array())
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str())
                        .take(20)
                        .map(|t| crate::infra::text::truncate(t, 60))
                        .collect()
                })
                .unwrap_or_default()
        };
        match found {
            Ok(value) => PageOffers {
                buttons: list(&value, "buttons"),
                fields: list(&value, "fields"),
            },
            Err(_) => PageOffers::default(),
        }
    }

    /// How the page in the window loaded: its HTTP status (Navigation Timing's
    /// `responseStatus`, when the browser reports one), whether it is the browser's own error
    /// page (the address did not answer), and whether it has finished loading.
    pub async fn page_state(&self) -> Result<PageState, BrowserError> {
        let state = self
            .client
            .execute(PAGE_STATE, Vec::new())
            .await
            .map_err(BrowserError::command("read how the page loaded"))?;
        Ok(PageState {
            status: state["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| *s > 0),
            error_page: state["error"].as_bool().unwrap_or(false),
            loaded: state["ready"].as_str() == Some("complete"),
        })
    }

    /// Show `text` as a caption over the bottom of the page (for a recording: what the
    /// member just did), or (`None`) take it away. The text is set as text, never as HTML;
    /// a page that cannot take it is left as it is.
    pub async fn caption(&self, text: Option<&str>) {
        let _ = self.client.execute(CAPTION, vec![json!(text)]).await;
    }

    /// Mask every field (not a password field, which masks itself) whose value holds one of
    /// `typed`, the secrets typed into this page, so that no screenshot shows them: the
    /// field draws discs (`-webkit-text-security`), as a password field does. Returns how
    /// many fields it masked; a page that cannot take it masks none.
    pub async fn mask_fields(&self, typed: &[String]) -> usize {
        self.client
            .execute(MASK_FIELDS, vec![json!(typed)])
            .await
            .ok()
            .and_then(|n| n.as_u64())
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The page's title.
    pub async fn title(&self) -> Result<String, BrowserError> {
        self.client
            .title()
            .await
            .map_err(BrowserError::command("read the page title"))
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> Result<usize, BrowserError> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|found| found.len())
            .map_err(BrowserError::command(format!("look for {css}")))
    }

    /// Where the page is, for error messages.
    pub async fn location(&self) -> String {
        self.here().await
    }

    /// Forget every sign-in the browser remembers (all cookies, of every site), so that the
    /// next sign-in starts as a stranger: a server that remembers one member must not send
    /// the browser straight back with that member's code when another signs in. Through
    /// the DevTools bridge when the WebDriver has one, else WebDriver's Delete All Cookies
    /// on the page that is open (all a W3C WebDriver can do).
    pub async fn forget_sign_ins(&self) -> Result<(), BrowserError> {
        let cleared = self
            .client
            .issue_cmd(DevTools {
                cmd: "Network.clearBrowserCookies",
                params: json!({}),
            })
            .await
            .is_ok();
        if cleared {
            return Ok(());
        }
        self.client
            .delete_all_cookies()
            .await
            .map_err(BrowserError::command("delete the cookies"))
    }

    /// End the session: Chromium quits, or (attached) the context closes with its page.
    pub async fn close(self) -> Result<(), BrowserError> {
        let _ending = match &self.context {
            Some(_) => Some(chromium::SESSIONS.take(chromium::Turn::End).await),
            None => None,
        };
        let closed = self
            .client
            .close()
            .await
            .map_err(BrowserError::command("close the browser"));
        if let Some(context) = self.context {
            context.close().await;
        }
        closed
    }
}

/// A WebDriver session for `chrome_options` (`goog:chromeOptions`).
async fn connect(
    webdriver: &str,
    chrome_options: serde_json::Value,
    timeout: Duration,
) -> Result<Client, BrowserError> {
    // Commands are joined onto the endpoint (`session/…`): without a final slash, a
    // Grid's `…/wd/hub` would lose its `hub`.
    let webdriver = &if webdriver.ends_with('/') {
        webdriver.to_owned()
    } else {
        format!("{webdriver}/")
    };
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    // Every page load is bounded by the target's browser timeout (WebDriver's default is
    // 300 s): a payer whose page never loads ends the step, not the run's patience.
    let bound = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    capabilities.insert(
        "timeouts".into(),
        json!({ "pageLoad": bound, "script": bound.max(30_000) }),
    );
    capabilities.insert("goog:chromeOptions".into(), chrome_options);
    ClientBuilder::rustls()
        .map_err(|e| BrowserError::NotReady {
            url: webdriver.to_owned(),
            reason: e.to_string(),
        })?
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .map_err(|source| BrowserError::Session {
            url: webdriver.to_owned(),
            source: Box::new(source),
        })
}

/// Where the form field a person would call `name` is, in order of preference: by its
/// label, its accessible name, its placeholder, or its `name`/`id`.
fn field_xpaths(name: &str) -> [String; 5] {
    let n = xpath_literal(name);
    let control = "(self::input or self::textarea or self::select)";
    [
        format!("//*[{control} and @id=//label[normalize-space(.)={n}]/@for]"),
        format!("//label[normalize-space(.)={n}]//*[{control}]"),
        format!("//*[{control} and @aria-label={n}]"),
        format!("//*[{control} and @placeholder={n}]"),
        format!("//*[{control} and (@name={n} or @id={n})]"),
    ]
}

/// `text` as an XPath string literal, whatever quotes it holds.
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        return format!("'{text}'");
    }
    if !text.contains('"') {
        return format!("\"{text}\"");
    }
    let parts: Vec<String> = text.split('\'').map(|part| format!("'{part}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}

#[cfg(test)]
mod tests {
    use super::xpath_literal;

    #[test]
    fn xpath_literals_survive_quotes() {
        assert_eq!(xpath_literal("First Name"), "'First Name'");
        assert_eq!(xpath_literal("O'Brien"), "\"O'Brien\"");
        assert_eq!(xpath_literal("a'b\"c"), "concat('a', \"'\", 'b\"c')");
    }
}
