//! `onramp run --dry-run`: everything a run of a [`Plan`] needs checked and said, without
//! starting anything (the embedded sandbox included) or sending anything but the preflight's
//! one GET to each remote host.

use super::error::RunError;
use super::plan::Plan;
use super::preflight;

/// What `onramp run --dry-run` found: the plan as text, and the exit code a run would
/// start with (0 when nothing stands in its way, 3 when the browser or the payer cannot be
/// had).
#[derive(Debug)]
pub struct DryRun {
    pub text: String,
    pub exit_code: u8,
}

/// Check everything a run of `plan` needs, and say what it would do, without
/// starting anything (the embedded sandbox included) or sending anything but the preflight's
/// one GET to each remote host.
pub async fn dry_run(plan: &Plan) -> Result<DryRun, RunError> {
    use std::fmt::Write as _;
    let mut exit_code = crate::infra::exit::OK;
    let mut text = String::new();
    let target = &plan.target;
    let where_ = match &target.endpoints {
        crate::config::Endpoints::Sandbox(settings) => format!(
            "the embedded demo health plan (persona {}), started by the run",
            settings.persona.name()
        ),
        crate::config::Endpoints::Remote(_) => "a remote environment".to_owned(),
    };
    let _ = writeln!(
        text,
        "target {} ({where_}), from {}",
        target.name,
        target.source.display()
    );
    let selected = preflight::selected(&plan.features, plan.tags.as_ref());
    let _ = writeln!(
        text,
        "  features: {}; {} selected",
        plan.features_source,
        crate::infra::words::plural(selected.len(), "scenario")
    );
    let members: Vec<&str> = target.members.iter().map(|m| m.label.as_str()).collect();
    let _ = writeln!(
        text,
        "  members: {}",
        if members.is_empty() {
            "none".to_owned()
        } else {
            members.join(", ")
        }
    );
    let books: Vec<String> = crate::payer::public::Book::ALL
        .iter()
        .map(|book| {
            let at = match target.book(*book) {
                None => "none (its scenarios are skipped)".to_owned(),
                Some(settings) => match &settings.fhir_base {
                    Some(base) => base.to_string(),
                    None => "the sandbox's own".to_owned(),
                },
            };
            format!("{} {at}", book.title())
        })
        .collect();
    let _ = writeln!(text, "  public APIs: {}", books.join("; "));
    let browser = if plan.recipe.is_none() {
        "not needed (the features have no sign-in)".to_owned()
    } else if let Some(webdriver) = &plan.webdriver {
        format!("the WebDriver at {webdriver}")
    } else {
        match (
            crate::browser::find_chromedriver(),
            crate::browser::find_chromium(true),
        ) {
            (Ok(driver), Ok(chromium)) => format!(
                "chromedriver {}, Chromium {}",
                driver.display(),
                chromium.display()
            ),
            // The sign-in scenario needs it for sure; the others only if they sign in.
            (Err(error), _) | (_, Err(error)) if plan.signs_in => {
                exit_code = crate::infra::exit::ENVIRONMENT;
                format!("cannot start: {error}")
            }
            (Err(error), _) | (_, Err(error)) => {
                format!("cannot start, which fails the first scenario that signs in: {error}")
            }
        }
    };
    let _ = writeln!(text, "  browser: {browser}");
    if let crate::config::Endpoints::Remote(remote) = &target.endpoints {
        let endpoints = [
            ("authorize", &remote.authorize),
            ("token", &remote.token),
            ("FHIR", &remote.fhir_base),
        ];
        let _ = writeln!(text, "  hosts:");
        for reached in preflight::reach(&endpoints, &target.http).await {
            if reached.outcome.is_err() {
                exit_code = crate::infra::exit::ENVIRONMENT;
            }
            let _ = writeln!(text, "    {reached}");
        }
    }
    let _ = writeln!(
        text,
        "  timeouts: HTTP {} (connect {}), {} retries; browser {}",
        crate::infra::words::seconds(target.http.timeout),
        crate::infra::words::seconds(target.http.connect_timeout),
        target.http.retries,
        crate::infra::words::seconds(target.browser_timeout)
    );
    let _ = writeln!(text, "  report: {}/", plan.dir.display());
    let _ = writeln!(text, "  scenarios, in the order they run:");
    for (index, (feature, scenario)) in selected.iter().enumerate() {
        let tags: Vec<String> = feature
            .tags
            .iter()
            .chain(&scenario.tags)
            .map(|t| format!("@{t}"))
            .collect();
        let _ = writeln!(
            text,
            "    {:>3}. {}:{}  {} › {}  {}",
            index + 1,
            crate::payer::recipe::display_path(feature.path.as_deref()),
            scenario.position.line,
            feature.name,
            scenario.name,
            tags.join(" ")
        );
    }
    Ok(DryRun { text, exit_code })
}
