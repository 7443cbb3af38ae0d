//! What is checked before anything starts, so that a run that cannot work stops in a second
//! with one clear message instead of failing every scenario: every step of the selected
//! scenarios has a definition ([`unbound_steps`]: an unknown step is a usage error naming its
//! file and line and the closest known steps), the browser the sign-in needs is installed
//! ([`tools`]), and each endpoint's host resolves, takes a connection and answers HTTP
//! ([`reach`]: one line each; a host that cannot be reached means nothing runs,
//! [`not_run`]). `onramp run --dry-run` prints all of it with the plan.

use std::time::{Duration, Instant};

use cucumber::gherkin;
use url::Url;

use super::execute::Steps;
use crate::config::HttpSettings;

/// The selected scenarios of `features` (by `tags`), in run order, with their feature.
pub fn selected<'a>(
    features: &'a [gherkin::Feature],
    tags: Option<&gherkin::tagexpr::TagOperation>,
) -> Vec<(&'a gherkin::Feature, &'a gherkin::Scenario)> {
    use cucumber::tag::Ext as _;
    let mut out = Vec::new();
    for feature in features {
        let rules = feature
            .rules
            .iter()
            .flat_map(|rule| rule.scenarios.iter().map(move |s| (Some(rule), s)));
        for (rule, scenario) in feature.scenarios.iter().map(|s| (None, s)).chain(rules) {
            let all = feature
                .tags
                .iter()
                .chain(rule.map(|r| r.tags.iter()).into_iter().flatten())
                .chain(&scenario.tags);
            if tags.is_none_or(|t| t.eval(all)) {
                out.push((feature, scenario));
            }
        }
    }
    out
}

/// Every step of the selected scenarios (their Backgrounds included) that no definition
/// matches, or that more than one matches.
pub fn unbound_steps<W: Steps>(
    features: &[gherkin::Feature],
    tags: Option<&gherkin::tagexpr::TagOperation>,
) -> Vec<super::error::Unbound> {
    let collection = W::collection();
    let (sign_in, _) = W::sign_in();
    let known = known_steps::<W>();
    let mut out = Vec::new();
    for (feature, scenario) in selected(features, tags) {
        let background = feature.background.iter().flat_map(|b| b.steps.iter());
        for step in background.chain(&scenario.steps) {
            let is_sign_in = step.ty != gherkin::StepType::Then && sign_in.is_match(&step.value);
            let table = step.table.as_ref().map(|t| t.rows.as_slice());
            let why = match collection.find(step) {
                Ok(Some(_)) => continue,
                Ok(None) if is_sign_in => {
                    match crate::payer::recipe::Action::parse(&step.value, table) {
                        Ok(Some(_)) => continue,
                        Ok(None) => "not a step of the sign-in language".to_owned(),
                        Err(why) => why.to_string(),
                    }
                }
                Ok(None) => "no step definition matches it".to_owned(),
                Err(ambiguous) => format!(
                    "{} step definitions match it",
                    ambiguous.possible_matches.len()
                ),
            };
            out.push(super::error::Unbound {
                at: format!(
                    "{}:{}",
                    crate::payer::recipe::display_path(feature.path.as_deref()),
                    step.position.line
                ),
                step: format!("{} {}", step.keyword.trim(), step.value),
                why,
                closest: closest(&step.value, &known),
            });
        }
    }
    out
}

/// Every step onramp defines, as people write them (a parameter shown as `…`), and the
/// sign-in language's steps.
fn known_steps<W: Steps>() -> Vec<String> {
    use cucumber::codegen::WorldInventory;
    let mut out = Vec::new();
    out.extend(patterns::<W, <W as WorldInventory>::Given>());
    out.extend(patterns::<W, <W as WorldInventory>::When>());
    out.extend(patterns::<W, <W as WorldInventory>::Then>());
    out.extend(
        crate::payer::recipe::AS_WRITTEN
            .iter()
            .map(|s| (*s).to_owned()),
    );
    out.sort();
    out.dedup();
    out
}

/// The step definitions of one keyword, readable.
fn patterns<W: Steps, T>() -> Vec<String>
where
    T: cucumber::codegen::StepConstructor<W> + cucumber::codegen::inventory::Collect,
{
    cucumber::codegen::inventory::iter::<T>
        .into_iter()
        .map(|step| readable(step.inner().1().as_str()))
        .collect()
}

/// A step definition's pattern as a person writes the step: anchors and escapes dropped,
/// each parameter shown as `…`.
fn readable(pattern: &str) -> String {
    let inner = pattern.trim_start_matches('^').trim_end_matches('$');
    let mut out = String::new();
    let mut depth = 0usize;
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && depth == 0
                {
                    out.push(next);
                }
            }
            '(' => {
                if depth == 0 {
                    out.push('…');
                }
                depth += 1;
            }
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The (at most three) known steps most like `text` (Jaro-Winkler, which weighs a shared
/// beginning: a step is mostly mistyped towards its end).
fn closest(text: &str, known: &[String]) -> Vec<String> {
    let text = text.to_lowercase();
    let mut scored: Vec<(f64, &String)> = known
        .iter()
        .map(|k| (strsim::jaro_winkler(&text, &k.to_lowercase()), k))
        .filter(|(score, _)| *score >= 0.85)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
}

/// Whether the browser the run needs is installed: chromedriver and a Chromium, unless a
/// WebDriver was named (`--webdriver`), which brings its own.
pub fn tools(webdriver: Option<&str>) -> Result<(), crate::browser::BrowserError> {
    if webdriver.is_some() {
        return Ok(());
    }
    crate::browser::find_chromedriver()?;
    crate::browser::find_chromium(true)?;
    Ok(())
}

/// How one endpoint's host answered the preflight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// What the endpoint is (`authorize`, `token`, `FHIR`).
    pub name: String,
    /// `scheme://host:port`.
    pub origin: String,
    /// `Ok(what it answered)` or `Err(why no answer came)`.
    pub outcome: Result<String, String>,
}

impl std::fmt::Display for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Ok(answer) => write!(f, "{} ({}): ok, {answer}", self.origin, self.name),
            Err(why) => write!(f, "{} ({}): {why}", self.origin, self.name),
        }
    }
}

/// Resolve, connect to and ask each distinct origin of `endpoints` once (a GET of the
/// endpoint; any HTTP answer will do), all at once, each within the target's timeouts.
pub async fn reach(endpoints: &[(&str, &Url)], settings: &HttpSettings) -> Vec<Reach> {
    let client = match reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout.min(settings.timeout))
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("onramp/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            return vec![Reach {
                name: "HTTP client".into(),
                origin: String::new(),
                outcome: Err(crate::infra::cause::with_causes(&error)),
            }];
        }
    };
    let mut origins: Vec<(String, Vec<&str>, Url)> = Vec::new();
    for (name, url) in endpoints {
        let origin = url.origin().ascii_serialization();
        match origins.iter_mut().find(|(o, _, _)| *o == origin) {
            Some((_, names, _)) => names.push(name),
            None => {
                let mut bare = (*url).clone();
                bare.set_query(None);
                bare.set_fragment(None);
                origins.push((origin, vec![name], bare));
            }
        }
    }
    let asks = origins.into_iter().map(|(origin, names, url)| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let outcome = match client.get(url.clone()).send().await {
                Ok(response) => Ok(format!(
                    "answered HTTP {} in {} ms",
                    response.status().as_u16(),
                    started.elapsed().as_millis()
                )),
                Err(error) => Err(no_answer(&error, &url, settings, started.elapsed())),
            };
            Reach {
                name: names.join(", "),
                origin,
                outcome,
            }
        }
    });
    futures_util::future::join_all(asks).await
}

/// Why `url` gave no answer, in the words a person checks: the name does not resolve, the
/// port refuses, TLS failed, or nothing came in time.
fn no_answer(error: &reqwest::Error, url: &Url, settings: &HttpSettings, took: Duration) -> String {
    let host = url.host_str().unwrap_or_default();
    let causes = crate::infra::cause::with_causes(error);
    let lower = causes.to_lowercase();
    // The deepest cause says it plainest ("Name or service not known", "invalid peer
    // certificate: UnknownIssuer").
    let root = crate::payer::http::root_cause(error);
    let refused = {
        let mut source: Option<&dyn std::error::Error> = Some(error);
        let mut found = false;
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                found |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            source = cause.source();
        }
        found || lower.contains("connection refused")
    };
    if lower.contains("dns error") || lower.contains("lookup address") {
        format!("cannot resolve {host} ({root})")
    } else if refused {
        format!(
            "{host} port {} refused the connection",
            url.port_or_known_default().unwrap_or_default()
        )
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!("TLS error with {host} ({root})")
    } else if error.is_timeout() && error.is_connect() {
        format!(
            "no connection to {host} within {} ([http] connect_timeout)",
            crate::infra::words::seconds(settings.connect_timeout.min(settings.timeout))
        )
    } else if error.is_timeout() {
        format!(
            "{host} took the connection but gave no answer within {} ([http] timeout)",
            crate::infra::words::seconds(took)
        )
    } else {
        format!("no answer from {host} ({root})")
    }
}

/// The lines of the reachability check that failed, for a remote target (the embedded
/// sandbox is onramp's own): `None` when every host answered.
pub async fn unreachable(ctx: &super::context::RunContext, sandbox: bool) -> Option<Vec<String>> {
    if sandbox {
        return None;
    }
    let endpoints = [
        ("authorize", &ctx.endpoints.authorize),
        ("token", &ctx.endpoints.token),
        ("FHIR", &ctx.endpoints.fhir_base),
    ];
    let failed: Vec<String> = reach(&endpoints, &ctx.target.http)
        .await
        .iter()
        .filter(|r| r.outcome.is_err())
        .map(ToString::to_string)
        .collect();
    (!failed.is_empty()).then_some(failed)
}

/// The run of a payer that could not be reached (`lines`, from [`unreachable`]): every
/// selected scenario skipped, saying why, and the reasons as the run's errors (the closing
/// lines print them).
pub fn not_run(
    features: &[gherkin::Feature],
    tags: Option<&gherkin::tagexpr::TagOperation>,
    lines: &[String],
    recorder: &crate::evidence::Recorder,
) -> super::collector::Collected {
    let reason = format!(
        "not run: the payer could not be reached ({})",
        lines.join("; ")
    );
    let errors = lines
        .iter()
        .map(|l| format!("the payer could not be reached: {l}"))
        .collect();
    super::collector::Collected::not_run(&selected(features, tags), &reason, errors, recorder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_reads_as_the_step_people_write() {
        assert_eq!(
            readable(r"^the CapabilityStatement is an R4 CapabilityStatement in JSON$"),
            "the CapabilityStatement is an R4 CapabilityStatement in JSON"
        );
        assert_eq!(
            readable(r#"^the app reads "([^"]*)" by id\.$"#),
            "the app reads \"…\" by id."
        );
    }

    #[test]
    fn the_closest_known_steps_are_offered() {
        let known = known_steps::<crate::steps::OnrampWorld>();
        assert!(known.len() > 50, "{}", known.len());
        let offered = closest("the app reads the SMART configurations", &known);
        assert_eq!(
            offered.first().map(String::as_str),
            Some("the app reads the SMART configuration")
        );
        assert!(closest("zzzz qqqq", &known).is_empty());
    }
}
