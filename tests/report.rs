//! The HTML report and the checklist rendered from a fixed summary (snapshots), and hostile
//! content shown inert in a real browser.

mod common;

use onramp::checklist::{Checklist, Item, ItemStatus, Manifest};
use onramp::evidence::{Exchange, Note, Screenshot};
use onramp::summary::{
    Counts, FailureKind, Outcome, Recording, ResourceFinding, ResourceResult, RunSummary,
    ScenarioSummary, Severity, Status, StepSummary, TargetInfo, TokenSummary,
};

const HOSTILE: &str = "<script>document.title='pwned'</script>\"><img src=x onerror=\"document.title='pwned'\">{{handlebars}}";

fn step(text: &str, status: Status, error: Option<&str>) -> StepSummary {
    StepSummary {
        keyword: "Then".into(),
        text: text.into(),
        line: 7,
        status,
        start_ms: 100,
        duration_ms: 12,
        error: error.map(str::to_owned),
        failure: error.map(|_| FailureKind::Conformance),
        severity: match status {
            Status::Failed => Some(Severity::Error),
            Status::Warning => Some(Severity::Warning),
            Status::Passed | Status::Skipped => None,
        },
    }
}

/// A summary with every section filled, `text` planted in every free-text field.
fn summary(text: &str) -> RunSummary {
    let mut summary = bare_summary(text);
    summary.browser_actions = vec![onramp::evidence::BrowserAction {
        context: "Authorization".into(),
        action: format!("click \"{text}\""),
        start_ms: 300,
        duration_ms: 40,
        ok: true,
    }];
    summary.timeline = onramp::run::summarize::timeline(
        &summary.scenarios,
        &summary.browser_actions,
        &summary.exchanges,
    );
    summary
}

fn bare_summary(text: &str) -> RunSummary {
    RunSummary {
        schema_version: 3,
        run_id: "20261128-120000-abcd".into(),
        outcome: Outcome::Failed,
        exit_code: 1,
        interrupted_by: None,
        target: TargetInfo {
            name: format!("demo {text}"),
            kind: "sandbox".into(),
            persona: Some("demo-plan".into()),
            features: "shipped (demo-plan sign-in)".into(),
            authorize_url: "http://127.0.0.1:1/oauth2/authorize/test".into(),
            token_url: "http://127.0.0.1:1/oauth2/token".into(),
            fhir_base: "http://127.0.0.1:1/r4".into(),
            client_id: "onramp-demo-client".into(),
            redirect_uri: "http://127.0.0.1:2/onramp/callback".into(),
            scopes: vec!["patient/*.read".into(), "openid".into()],
            pkce: true,
            client_auth: "body".into(),
            faults: vec!["invalid-resource:Patient".into()],
            validation: onramp::summary::ValidationInfo {
                tier: onramp::validate::Tier::Profile,
                profiles: vec![
                    "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Patient".into(),
                ],
            },
            payer: onramp::config::PayerContacts {
                name: Some("1upHealth".into()),
                sandbox_sync_to: Some("payer-patient-access@1up.health".into()),
                production_access_to: Some("cms-prod-access@1up.health".into()),
                checklist: Some("1up-guide".into()),
            },
            directory: None,
            formulary: None,
        },
        started_at: "2026-11-28T12:00:00Z".into(),
        finished_at: "2026-11-28T12:00:03Z".into(),
        duration_ms: 2700,
        onramp_version: "0.1.0".into(),
        fhir_version: "4.0.1".into(),
        browser: Some("chrome 156.0".into()),
        scenarios: vec![
            ScenarioSummary {
                feature: "Authorization".into(),
                file: "features/authorization.feature".into(),
                name: "The member confirms their identity".into(),
                line: 20,
                tags: vec!["@authorization".into()],
                status: Status::Passed,
                start_ms: 100,
                duration_ms: 1800,
                steps: vec![
                    step(
                        "the redirect carries an authorization code",
                        Status::Passed,
                        None,
                    ),
                    step(
                        "the token response says Pragma: no-cache",
                        Status::Warning,
                        Some(&format!("Pragma is absent {text}")),
                    ),
                ],
            },
            ScenarioSummary {
                feature: "Required resources".into(),
                file: "features/resources.feature".into(),
                name: format!("The member's Patient resources {text}"),
                line: 22,
                tags: vec!["@resources".into()],
                status: Status::Failed,
                start_ms: 1950,
                duration_ms: 30,
                steps: vec![
                    step(
                        "every Patient resource is valid FHIR R4",
                        Status::Failed,
                        Some(&format!("Patient/p1 Patient.gender {text}")),
                    ),
                    step(
                        "every Patient resource belongs to the member",
                        Status::Skipped,
                        None,
                    ),
                ],
            },
        ],
        apis: Vec::new(),
        scenario_counts: Counts {
            passed: 1,
            failed: 1,
            warnings: 0,
            skipped: 0,
        },
        step_counts: Counts {
            passed: 1,
            failed: 1,
            warnings: 1,
            skipped: 1,
        },
        resources: vec![ResourceResult {
            kind: "Patient".into(),
            api: Default::default(),
            count: 1,
            pages: 1,
            invalid: 1,
            findings_not_listed: 0,
            findings: vec![
                ResourceFinding {
                    page: 1,
                    url: "http://127.0.0.1:1/r4/Patient".into(),
                    entry: Some(0),
                    resource: Some("Patient/p1".into()),
                    path: "Patient.gender".into(),
                    pointer: "/entry/0/resource/gender".into(),
                    keyword: "enum".into(),
                    message: format!("\"{text}\" is not an allowed code here"),
                    tier: onramp::validate::Tier::Schema,
                    rule: "enum".into(),
                    profile: None,
                },
                ResourceFinding {
                    page: 1,
                    url: "http://127.0.0.1:1/r4/Patient".into(),
                    entry: Some(0),
                    resource: Some("Patient/p1".into()),
                    path: "Patient.identifier".into(),
                    pointer: "/entry/0/resource/identifier".into(),
                    keyword: "cardinality".into(),
                    message: format!("C4BB-Patient requires identifier:memberid, found 0 ({text})"),
                    tier: onramp::validate::Tier::Profile,
                    rule: "cardinality".into(),
                    profile: Some(
                        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Patient".into(),
                    ),
                },
            ],
            problems: vec![format!(
                "Organization/{text} is not referenced by the member's data"
            )],
            notes: vec![],
            failure: None,
            timing: Default::default(),
            not_evaluated: [("txt-1".to_owned(), 1)].into(),
            profiles_not_checked: [(
                "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient".to_owned(),
                1,
            )]
            .into(),
            finding_counts: Default::default(),
            must_support: [(
                "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Patient".to_owned(),
                onramp::validate::must_support::Coverage {
                    profile: "C4BB-Patient".into(),
                    resources: 2,
                    elements: vec![
                        ("Patient.birthDate".into(), 2),
                        ("Patient.deceased[x]".into(), 0),
                    ],
                },
            )]
            .into_iter()
            .collect(),
        }],
        token: Some(TokenSummary {
            status: Some(200),
            token_type: Some("Bearer".into()),
            expires_in: Some(serde_json::json!(7200)),
            scope_requested: "patient/*.read openid".into(),
            scope_granted: Some(text.into()),
            patient: Some("p1".into()),
            cache_control: Some("no-store".into()),
            pragma: Some("no-cache".into()),
            refreshed: 0,
            problem: None,
        }),
        exchanges: vec![Exchange {
            index: 1,
            context: "Search Patient, page 1".into(),
            method: "GET".into(),
            url: "http://127.0.0.1:1/r4/Patient".into(),
            status: Some(200),
            start_ms: 1960,
            duration_ms: 3,
            request_headers: vec![("authorization".into(), "Bearer [redacted]".into())],
            request_body: None,
            response_headers: vec![("content-type".into(), "application/fhir+json".into())],
            response_body: Some(format!(
                "{{\"resourceType\":\"Bundle\",\"note\":\"{text}\"}}"
            )),
            truncated: 0,
            error: None,
        }],
        screenshots: vec![Screenshot {
            index: 1,
            context: "Authorization".into(),
            caption: format!("authorization page {text}"),
            file: "screenshots/01-authorization-page.png".into(),
            url: "http://127.0.0.1:1/oauth2/authorize/test".into(),
        }],
        notes: vec![Note {
            context: "Authorization".into(),
            text: format!("PKCE used {text}"),
        }],
        errors: vec![],
        checklist: Checklist {
            manifest: Some("onboarding.toml".into()),
            items: vec![
                Item {
                    key: "company".into(),
                    label: "Company name".into(),
                    status: ItemStatus::Complete,
                    value: Some(format!("Acme {text}")),
                    detail: "given".into(),
                    todo: None,
                    attachment: None,
                },
                Item {
                    key: "logo".into(),
                    label: "Square logo (link or attachment)".into(),
                    status: ItemStatus::Invalid,
                    value: Some("logo.png".into()),
                    detail: "512 x 256 px: not square".into(),
                    todo: Some("crop or pad the logo to a square".into()),
                    attachment: None,
                },
            ],
            answers: Manifest::default(),
        },
        recording: Some(Recording {
            file: "recording.png".into(),
            media_type: "image/apng".into(),
            frames: 1,
        }),
        app_recording: None,
        browser_actions: Vec::new(),
        timeline: Default::default(),
        members: vec![
            onramp::summary::MemberSummary {
                label: format!("member {text}"),
                patient: Some("p1".into()),
                problem: None,
                resources: vec![onramp::summary::MemberResources {
                    kind: "Coverage".into(),
                    count: 1,
                }],
                asked: 3,
                refused: 1,
                answered_without: 1,
                leaks: vec![onramp::summary::MemberLeak {
                    reader: format!("reader {text}"),
                    kind: "Coverage".into(),
                    way: "read by id".into(),
                    url: format!("http://127.0.0.1:1/r4/Coverage/{text}"),
                    status: Some(200),
                    resources: vec![format!("Coverage/{text}")],
                }],
            },
            onramp::summary::MemberSummary {
                label: "second".into(),
                patient: None,
                problem: Some(format!("could not sign in: {text}")),
                ..Default::default()
            },
        ],
    }
}

fn tiny_png() -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, 4, 3);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(&[40u8; 48]).expect("pixels");
    }
    bytes
}

fn images() -> onramp::report::html::Images {
    [(
        "screenshots/01-authorization-page.png".to_owned(),
        tiny_png(),
    )]
    .into_iter()
    .collect()
}

#[test]
fn the_report_renders_every_section() {
    let html = onramp::report::html::render(&summary("(plain)"), &images()).expect("renders");
    insta::assert_snapshot!("report_html", html);
}

#[test]
fn the_checklist_renders_as_markdown() {
    let markdown = onramp::checklist::render_markdown(&summary("| pipes |").checklist);
    insta::assert_snapshot!("checklist_md", markdown);
}

#[test]
fn the_report_loads_nothing_and_runs_nothing() {
    let html = onramp::report::html::render(&summary("x"), &images()).expect("renders");
    assert!(
        html.contains("default-src 'none'"),
        "a CSP that forbids scripts and loads"
    );
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "no script of its own"
    );
    for remote in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(remote), "no remote resource: {remote}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_stays_text_in_a_real_browser() {
    let html = onramp::report::html::render(&summary(HOSTILE), &images()).expect("renders");
    assert!(
        !html.contains("<script>document.title"),
        "escaped in the markup"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.html");
    std::fs::write(&path, &html).expect("written");
    let driver = onramp::browser::ChromeDriver::start()
        .await
        .expect("chromedriver");
    let browser =
        onramp::browser::Browser::open(driver.url(), &onramp::browser::BrowserOptions::default())
            .await
            .expect("browser");
    browser
        .goto(&format!("file://{}", path.display()))
        .await
        .expect("opens from disk");
    let title = browser.title().await.expect("title");
    assert!(
        title.starts_with("onramp report"),
        "the title was not rewritten: {title}"
    );
    assert_eq!(browser.count("script").await.expect("count"), 0);
    assert_eq!(browser.count("img[onerror]").await.expect("count"), 0);
    let text = browser.text().await.expect("text");
    assert!(
        text.contains("<script>document.title='pwned'</script>"),
        "the hostile text is shown as text"
    );
    assert!(
        text.contains("{{handlebars}}"),
        "handlebars syntax in data is not evaluated"
    );
    let shot = browser.screenshot().await.expect("screenshot");
    assert!(shot.len() > 1000);
    browser.close().await.expect("closed");
}

#[test]
fn a_report_that_cannot_be_written_names_the_path_and_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A folder where summary.json should go.
    std::fs::create_dir(dir.path().join("summary.json")).expect("folder");
    let error = onramp::report::write_outputs(dir.path(), &summary("plain"))
        .expect_err("summary.json cannot be written");
    let error = onramp::run::RunError::Report {
        outcome: "passed".into(),
        dir: dir.path().to_owned(),
        source: error,
    };
    assert_eq!(error.exit_code(), 3);
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(
        chain.starts_with("the run finished (passed) but its report in ")
            && chain.contains("summary.json")
            && chain.contains("os error"),
        "{chain}"
    );
}

#[test]
fn junit_and_cucumber_json_are_rendered_from_the_summary() {
    let summary = summary(HOSTILE);
    let junit = onramp::report::junit::render(&summary);
    insta::assert_snapshot!("junit", junit);
    assert!(!junit.contains("<script>") && junit.contains("&lt;script&gt;"));
    assert!(junit.contains("<failure type=\"conformance\""));
    let json: serde_json::Value =
        serde_json::from_str(&onramp::report::cucumber::render(&summary)).expect("JSON");
    let features = json.as_array().expect("features");
    assert_eq!(features.len(), 2);
    assert_eq!(features[1]["uri"], "features/resources.feature");
    let steps = &features[1]["elements"][0]["steps"];
    assert_eq!(steps[0]["result"]["status"], "failed");
    assert_eq!(steps[0]["result"]["duration"], 12_000_000);
    assert!(
        steps[0]["result"]["error_message"]
            .as_str()
            .expect("message")
            .contains("Patient.gender")
    );
    assert_eq!(steps[1]["result"]["status"], "skipped");
}

#[test]
fn a_large_run_keeps_the_report_small_and_grouped() {
    let mut summary = summary("(large)");
    let page = |n: usize, status: u16, ms: u64| Exchange {
        index: n,
        context: format!("Search ExplanationOfBenefit, page {n}"),
        method: "GET".into(),
        url: format!("http://127.0.0.1:1/r4/ExplanationOfBenefit?_count=100&_cursor={n}"),
        status: Some(status),
        start_ms: n as u64 * 10,
        duration_ms: ms,
        request_headers: vec![("authorization".into(), "Bearer [redacted]".into())],
        request_body: None,
        response_headers: vec![("content-type".into(), "application/fhir+json".into())],
        response_body: Some("x".repeat(16 * 1024)),
        truncated: 200_000,
        error: None,
    };
    summary.exchanges = (1..=2000)
        .map(|n| match n {
            1000 => page(n, 500, 9),
            1500 => page(n, 200, 250),
            _ => page(n, 200, 8),
        })
        .collect();
    summary.resources[0].findings = (0..6000)
        .map(|n| ResourceFinding {
            page: n / 100 + 1,
            url: "http://127.0.0.1:1/r4/ExplanationOfBenefit".into(),
            entry: Some(n % 100),
            resource: Some(format!("ExplanationOfBenefit/e{n}")),
            path: format!(
                "ExplanationOfBenefit.item[{}].adjudication[{}].amount.value",
                n % 7,
                n % 3
            ),
            pointer: String::new(),
            keyword: if n % 3 == 0 { "type" } else { "required" }.into(),
            message: format!("finding {n}"),
            tier: onramp::validate::Tier::Schema,
            rule: if n % 3 == 0 { "type" } else { "required" }.into(),
            profile: None,
        })
        .collect();
    summary.timeline = onramp::run::summarize::timeline(
        &summary.scenarios,
        &summary.browser_actions,
        &summary.exchanges,
    );
    let html = onramp::report::html::render(&summary, &images()).expect("renders");
    assert!(html.len() < 5 * 1024 * 1024, "{} bytes", html.len());
    // The pages: the first three, the failed one, the slowest and the last in full; a line
    // for each stretch between them.
    for shown in [1, 2, 3, 1000, 1500, 2000] {
        assert!(
            html.contains(&format!("id=\"exchange-{shown}\"")),
            "#{shown} shown"
        );
    }
    assert!(!html.contains("id=\"exchange-4\""));
    assert!(
        html.contains(
            "#4–#999: 996 more exchanges of “Search ExplanationOfBenefit, page …”, all 200"
        ),
        "a gap line"
    );
    assert!(
        html.contains("#1501–#1999: 499 more exchanges"),
        "a gap line after the slowest"
    );
    // Findings grouped by rule and path without positions, commonest first, with counts.
    let required = html.find("ExplanationOfBenefit.item[].adjudication[].amount.value</code><br><span class=\"muted\">schema · required").expect("the required group");
    let typed = html.find("ExplanationOfBenefit.item[].adjudication[].amount.value</code><br><span class=\"muted\">schema · type").expect("the type group");
    assert!(required < typed, "4000 before 2000");
    assert!(
        html.contains("<td class=\"num\">4000</td>")
            && html.contains("<td class=\"num\">2000</td>")
    );
    assert!(html.contains("… and 3997 more"), "examples are few");
    // The timeline draws the many exchanges as few bars, and names the slowest.
    let svg = &html[html.find("<svg class=\"timeline\"").expect("svg")..];
    let svg = &svg[..svg.find("</svg>").expect("end")];
    assert!(
        svg.matches("<rect").count() < 200,
        "{} bars",
        svg.matches("<rect").count()
    );
    assert!(svg.contains("href=\"#exchange-1500\""));
}

#[test]
fn annotations_point_at_the_feature_file_only_when_it_is_in_the_checkout() {
    let summary = summary("(plain)");
    let here = onramp::report::ci::github_annotations(&summary, |file| {
        file == "features/resources.feature" || file == "features/authorization.feature"
    });
    assert_eq!(here.len(), 2, "{here:?}");
    assert!(
        here[0].starts_with("::warning file=features/authorization.feature,line=7,title=Authorization › The member confirms their identity::Then the token response says Pragma: no-cache%0APragma is absent (plain)"),
        "{}",
        here[0]
    );
    assert!(
        here[1].starts_with("::error file=features/resources.feature,line=7,title="),
        "{}",
        here[1]
    );
    let shipped = onramp::report::ci::github_annotations(&summary, |_| false);
    assert!(
        shipped[1].starts_with("::error title=Required resources › The member's Patient resources (plain) (features/resources.feature%3A7)::"),
        "{}",
        shipped[1]
    );
}
