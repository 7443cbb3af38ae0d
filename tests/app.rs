//! The app under test (`[app]`, `app.feature`): the example app in `examples/app/` driven end
//! to end through the embedded sandbox's sign-in, and its broken variants, each failing
//! exactly the step it should, as kind `app` (never the payer's verdict). Real Chromium, the
//! real binary, a real app process that onramp starts and must stop.

mod common;

use common::run::Run;
use serde_json::Value;

/// A target that starts the example app with `broken` (its `EXAMPLE_APP_BREAK`), short
/// timeouts, and the run's temp folder among its arguments so that a process left behind
/// is found.
fn example_target(dir: &std::path::Path, broken: &str) -> String {
    let app = common::repo().join("examples/app/app.py");
    format!(
        "name = \"example-app\"\n[sandbox]\n[browser]\ntimeout = \"6s\"\n\n\
         [app]\nname = \"Example app\"\nurl = \"http://127.0.0.1:${{app.port}}/\"\n\
         connect = \"Connect your health plan\"\n\
         command = [\"python3\", \"{}\", \"{}\"]\ntimeout = \"4s\"\n\n\
         [app.env]\nFHIR_BASE = \"${{target.fhir_base}}\"\nPORT = \"${{app.port}}\"\nEXAMPLE_APP_BREAK = \"{broken}\"\n",
        app.display(),
        Run::tmp(dir).display()
    )
}

/// No process of the app started with `marker` among its arguments is left once the run
/// has ended: onramp stops the app and whatever it started.
fn assert_no_app_left(marker: &std::path::Path) {
    let marker = marker.display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
                let status =
                    std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
                let zombie = status
                    .lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'));
                let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                (line.contains(&marker) && !zombie).then_some(line)
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the app was left running: {left:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn app_run(broken: &str) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = common::write(
        dir.path(),
        "target.toml",
        &example_target(dir.path(), broken),
    );
    let run = Run::with(
        &[
            "--target",
            target.to_str().expect("utf-8"),
            "--tags",
            "@app",
        ],
        |_| {},
    );
    assert_no_app_left(&Run::tmp(dir.path()));
    run
}

/// A run of the example app (`broken` as in [`example_target`]) with the shipped sign-in and
/// one feature of our own, `then`: the app opened, connected and signed in to, then the
/// steps `then` lists.
fn own_feature_run(broken: &str, scenario: &str, then: &str) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let features = dir.path().join("features");
    std::fs::create_dir_all(&features).expect("features dir");
    std::fs::copy(
        common::repo().join("features/authorization.feature"),
        features.join("authorization.feature"),
    )
    .expect("the sign-in");
    common::write(
        &features,
        "mine.feature",
        &format!(
            "@app\nFeature: Mine\n  Scenario: {scenario}\n    Given the member opens the app\n    When the member clicks \"Connect your health plan\"\n    And the member signs in to the health plan\n{then}"
        ),
    );
    let target = common::write(
        dir.path(),
        "target.toml",
        &example_target(dir.path(), broken),
    );
    let run = Run::new(&[
        "--target",
        target.to_str().expect("utf-8"),
        "--features",
        features.to_str().expect("utf-8"),
        "--tags",
        "@app",
    ]);
    assert_no_app_left(&Run::tmp(dir.path()));
    run
}

/// The app scenario's steps: (text, status, failure kind).
fn steps(summary: &Value) -> Vec<(String, String, String)> {
    let scenario = Run::scenario(summary, "connects the app");
    scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&s["text"]), text(&s["status"]), text(&s["failure"]))
        })
        .collect()
}

/// The status of the step whose text starts with `text`.
fn status<'a>(steps: &'a [(String, String, String)], text: &str) -> (&'a str, &'a str) {
    let (_, status, kind) = steps
        .iter()
        .find(|(t, _, _)| t.starts_with(text))
        .unwrap_or_else(|| panic!("no step {text} in {steps:?}"));
    (status, kind)
}

/// The example app, as shipped with its own target file, connects and shows John Allen and
/// his claims: every app step passes and the run is conformant.
#[test]
fn the_example_app_connects_and_shows_the_members_data() {
    let target = common::repo().join("examples/app/target.toml");
    let run = Run::new(&[
        "--target",
        target.to_str().expect("utf-8"),
        "--tags",
        "@app",
    ]);
    let summary = run.summary();
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let steps = steps(&summary);
    assert!(
        steps.iter().all(|(_, status, _)| status == "passed"),
        "{steps:#?}"
    );
    assert_eq!(steps.len(), 6, "{steps:#?}");
    // The app's pages are in the record, the member's data on the last of them.
    let shots: Vec<&Value> = summary["screenshots"]
        .as_array()
        .expect("screenshots")
        .iter()
        .filter(|s| s["context"] == "App")
        .collect();
    assert!(shots.len() >= 3, "{shots:#?}");
    assert!(
        shots.iter().any(|s| s["caption"] == "back in the app"),
        "{shots:#?}"
    );
    // The app's own recording: the title card, then its pages.
    let recording = summary["app_recording"]["file"]
        .as_str()
        .expect("an app recording");
    assert!(recording.starts_with("recording-app."), "{recording}");
    assert!(run.report().join(recording).is_file());
    assert_eq!(shots[0]["caption"], "title card", "{shots:#?}");
    // It answers the checklist's screen recording, and the request email attaches it.
    let item = summary["checklist"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["key"] == "screen_recording")
        .expect("the screen recording item");
    assert_eq!(item["status"], "complete", "{item}");
    assert_eq!(item["value"].as_str(), Some(recording), "{item}");
    let email = std::fs::read_to_string(run.report().join("emails/production-access.eml"))
        .expect("the production-access draft");
    assert!(email.contains(recording), "the recording is attached");
    // The app's code never reaches an output: its callback's query is cut or redacted.
    let all = std::fs::read_to_string(run.report().join("summary.json")).expect("summary");
    for line in all.lines().filter(|l| l.contains("/callback?")) {
        assert!(
            line.contains("code=[redacted]") || !line.contains("code="),
            "{line}"
        );
    }
}

/// An app that shows an error page after the callback fails "the browser is back in the
/// app", as the app's fault; what it would show is skipped, and the payer stays conformant.
#[test]
fn an_app_that_errs_after_the_callback_is_not_back() {
    let run = app_run("error-page");
    let summary = run.summary();
    let steps = steps(&summary);
    assert_eq!(
        status(&steps, "the browser is back in the app"),
        ("failed", "app")
    );
    assert_eq!(
        status(&steps, "the app shows the member's name").0,
        "skipped"
    );
    assert_eq!(status(&steps, "the app shows one of").0, "skipped");
    assert_eq!(status(&steps, "the member signs in").0, "passed");
    assert_eq!(summary["outcome"], "app_failed", "{}", run.stdout());
    assert_eq!(run.code(), 1);
    assert!(
        run.stdout().contains("conformant, but the app failed"),
        "{}",
        run.stdout()
    );
    let junit = std::fs::read_to_string(run.report().join("junit.xml")).expect("junit");
    assert!(junit.contains("type=\"app\""), "{junit}");
    // A recording of an app that failed is no evidence for the payer.
    let item = summary["checklist"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["key"] == "screen_recording")
        .expect("the screen recording item");
    assert_ne!(item["status"], "complete", "{item}");
    assert!(
        item["detail"]
            .as_str()
            .is_some_and(|d| d.contains("failing")),
        "{item}"
    );
}

/// An app whose callback never answers is not back in time: the app's fault, not a
/// browser that could not test.
#[test]
fn an_app_that_never_answers_its_callback_is_not_back() {
    let run = app_run("hang");
    let steps = steps(&run.summary());
    assert_eq!(
        status(&steps, "the browser is back in the app"),
        ("failed", "app"),
        "{steps:#?}"
    );
    assert_eq!(status(&steps, "the member signs in").0, "passed");
    assert_eq!(run.code(), 1);
}

/// An app that shows another member's name fails exactly that step; its claims are the
/// member's.
#[test]
fn an_app_that_shows_another_members_name_fails_the_name() {
    let run = app_run("other-member");
    let steps = steps(&run.summary());
    assert_eq!(
        status(&steps, "the app shows the member's name"),
        ("failed", "app")
    );
    assert_eq!(status(&steps, "the browser is back in the app").0, "passed");
    assert_eq!(status(&steps, "the app shows one of").0, "passed");
    let failed = run.failed_steps();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].error.contains("John Allen"),
        "{}",
        failed[0].error
    );
    assert!(failed[0].error.contains("Jane Roe"), "{}", failed[0].error);
}

/// An app that shows none of the member's claims fails exactly that step.
#[test]
fn an_app_that_shows_no_claims_fails_the_claims() {
    let run = app_run("no-claims");
    let steps = steps(&run.summary());
    assert_eq!(
        status(&steps, "the app shows one of the member's claims"),
        ("failed", "app")
    );
    assert_eq!(
        status(&steps, "the app shows the member's name").0,
        "passed"
    );
    assert_eq!(run.failed_steps().len(), 1);
}

/// An app that shows clinical data is checked against the member's own resources of that
/// type, as the payer holds them; one that shows none of them fails that step as the app's.
#[test]
fn an_app_is_checked_against_the_members_clinical_data() {
    let then = "    Then the app shows one of the member's Condition resources\n";
    let run = own_feature_run("", "What the app shows of Condition", then);
    let summary = run.summary();
    let scenario = Run::scenario(&summary, "What the app shows of Condition");
    assert_eq!(scenario["status"], "passed", "{scenario:#}");
    assert!(
        summary["notes"]
            .to_string()
            .contains("of the member's Condition as the payer holds it"),
        "{}",
        summary["notes"]
    );
    let run = own_feature_run("no-conditions", "What the app shows of Condition", then);
    let failed = run.failed_steps();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        failed[0].step,
        "the app shows one of the member's Condition resources"
    );
    assert_eq!(failed[0].failure, "app");
    assert!(
        failed[0]
            .error
            .contains("shows none of the member's Condition resources"),
        "{}",
        failed[0].error
    );
}

/// A team's own check of what the app shows passes when the page shows it and fails as the
/// app's when it does not; a scenario without `the browser is back in the app` waits for the
/// way back before looking.
#[test]
fn the_app_shows_what_the_features_say_or_fails() {
    let run = own_feature_run(
        "",
        "What the app shows",
        "    Then the app shows \"your CLAIMS\"\n    And the app shows \"Prescriptions\"\n",
    );
    let summary = run.summary();
    let scenario = Run::scenario(&summary, "What the app shows");
    let statuses: Vec<(&str, &str)> = scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap_or_default(),
                s["failure"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("passed", ""),
            ("passed", ""),
            ("passed", ""),
            ("passed", ""),
            ("failed", "app")
        ],
        "{}",
        run.stdout()
    );
    assert!(run.failed_steps()[0].error.contains("\"Prescriptions\""));
}

/// An app that puts its access token on the page cannot put it in onramp's outputs: the
/// sandbox's codes and tokens are redacted from what the app's pages say.
#[test]
fn an_app_showing_its_token_does_not_leak_it() {
    let run = own_feature_run(
        "show-token",
        "A debug page",
        "    Then the app shows \"Prescriptions\"\n",
    );
    let failed = run.failed_steps();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    // The page's text is in the message, the token in it redacted.
    assert!(
        failed[0].error.contains("Debug: access token [redacted]"),
        "{}",
        failed[0].error
    );
    let summary = std::fs::read_to_string(run.report().join("summary.json")).expect("summary");
    assert!(!summary.contains("access token ") || summary.contains("access token [redacted]"));
    for text in [summary, run.stdout(), run.stderr()] {
        for (at, _) in text.match_indices("access token ") {
            let after = &text[at + "access token ".len()..];
            assert!(after.starts_with("[redacted]"), "{}", &text[at..at + 60]);
        }
    }
}

/// An app that nobody started, and that onramp was not told how to start, is the user's
/// setup: usage, naming the URL and what to do; a target without [app] skips the feature.
#[test]
fn an_app_not_running_is_a_usage_error_and_no_app_skips() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let run = Run::with_target(
        "target.toml",
        &format!(
            "[sandbox]\n[app]\nurl = \"http://127.0.0.1:{port}/\"\nconnect = \"Connect\"\ntimeout = \"2s\"\n"
        ),
        "@app",
    );
    let opened = steps(&run.summary());
    assert_eq!(
        status(&opened, "the member opens the app"),
        ("failed", "usage")
    );
    let failed = run.failed_steps();
    assert!(failed[0].error.contains("start"), "{}", failed[0].error);
    assert_eq!(run.code(), 2);

    let run = Run::with_target("target.toml", "[sandbox]\n", "@app");
    let skipped = steps(&run.summary());
    assert!(
        skipped.iter().all(|(_, status, _)| status == "skipped"),
        "{skipped:#?}"
    );
    assert!(
        run.stdout().contains("the target has no [app]"),
        "{}",
        run.stdout()
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
}
