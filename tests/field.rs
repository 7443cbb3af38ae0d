//! Right verdicts in the field: a payer that cannot be reached, a name that does not resolve,
//! a server that takes connections and never answers, a sign-in recipe that does not fit the
//! payer's pages, a step no definition matches, a missing chromedriver, a payer whose sign-in
//! pages share the app's origin. Each must end quickly, with its verdict's kind right and
//! never a conformance failure the payer did not earn. Real loopback sockets, the real
//! binary and (where a run signs in) real Chromium.

mod common;

use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::run::Run;
use serde_json::Value;

/// A remote target at `base` (`http://host:port`) with the guide's member, and the short
/// timeouts a test can wait out.
fn remote_target(base: &str) -> String {
    format!(
        "[endpoints]\nauthorize = \"{base}/authorize\"\ntoken = \"{base}/token\"\nfhir_base = \"{base}/r4\"\n\n\
         [client]\nid = \"x\"\nsecret = \"y\"\nredirect_uri = \"http://127.0.0.1:9/cb\"\n\n\
         [member]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\nzip = \"02114\"\n\n\
         [http]\ntimeout = \"2s\"\nconnect_timeout = \"1s\"\nretries = 0\n\n[browser]\ntimeout = \"3s\"\n"
    )
}

/// A run of every shipped feature against the target file `toml`, ended (and failed) if it
/// outlasts `bound`: what a hung payer must never do to a run.
fn bounded_run(toml: &str, extra: &[&str], bound: Duration) -> (Run, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = common::write(dir.path(), "target.toml", toml);
    let mut args = vec!["--target", target.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let mut child = Run::command(dir.path(), &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("onramp starts");
    let started = Instant::now();
    // Drain the pipes meanwhile, so a chatty run cannot block on them.
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || read_all(stdout));
    let err = std::thread::spawn(move || read_all(stderr));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run was still going after {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = started.elapsed();
    let output = Output {
        status,
        stdout: out.join().expect("stdout thread").unwrap_or_default(),
        stderr: err.join().expect("stderr thread").unwrap_or_default(),
    };
    let run = Run { dir, output };
    run.assert_no_browser_left();
    (run, took)
}

fn read_all(mut reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Every step's failure kind of the run, by status.
fn kinds(summary: &Value) -> Vec<(String, String)> {
    summary["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .flat_map(|s| s["steps"].as_array().cloned().unwrap_or_default())
        .filter(|step| step["status"] == "failed" || step["status"] == "warning")
        .map(|step| {
            (
                step["failure"].as_str().unwrap_or_default().to_owned(),
                step["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The run could not test, blamed nothing on the payer, and skipped every scenario.
fn could_not_test(run: &Run, says: &str) {
    assert_eq!(run.code(), 3, "{}\n{}", run.stdout(), run.stderr());
    let summary = run.summary();
    assert_eq!(summary["outcome"], "error");
    assert!(
        kinds(&summary)
            .iter()
            .all(|(kind, _)| kind != "conformance"),
        "no conformance failure: {:#?}",
        kinds(&summary)
    );
    let errors = summary["errors"].to_string();
    assert!(errors.contains(says), "{errors}");
    assert!(
        run.stdout().contains(says),
        "the terminal says why: {}",
        run.stdout()
    );
    let scenarios = summary["scenarios"].as_array().expect("scenarios");
    assert!(!scenarios.is_empty());
    assert!(
        scenarios.iter().all(|s| s["status"] == "skipped"),
        "every scenario skipped"
    );
    let reason = scenarios[0]["steps"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("could not be reached") && reason.contains(says),
        "{reason}"
    );
    let junit = std::fs::read_to_string(run.report().join("junit.xml")).expect("junit.xml");
    assert!(!junit.contains("type=\"conformance\""), "{junit}");
    assert!(
        junit.contains("<skipped message=\"not run: the payer could not be reached")
            && !junit.contains("skipped=\"0\""),
        "skips are JUnit skips: {junit}"
    );
}

#[test]
fn a_refused_port_is_could_not_test_and_nothing_runs() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let (run, _) = bounded_run(
        &remote_target(&format!("http://127.0.0.1:{port}")),
        &[],
        Duration::from_secs(60),
    );
    could_not_test(&run, "refused the connection");
}

#[test]
fn a_name_that_does_not_resolve_is_could_not_test() {
    let (run, _) = bounded_run(
        &remote_target("https://payer.invalid"),
        &[],
        Duration::from_secs(60),
    );
    could_not_test(&run, "cannot resolve payer.invalid");
}

#[test]
fn a_server_that_never_answers_ends_the_run_within_its_timeouts() {
    // Takes connections and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").expect("port");
    let port = listener.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(16).flatten() {
            open.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let (run, _) = bounded_run(
        &remote_target(&format!("http://127.0.0.1:{port}")),
        &[],
        Duration::from_secs(45),
    );
    could_not_test(&run, "gave no answer within");
    drop(held);
}

#[test]
fn a_server_that_stops_answering_mid_run_is_could_not_test_and_the_rest_is_skipped() {
    // The sandbox answers slower than the target waits: the first read that times out
    // fails as "could not test"; every later request to that origin is not sent.
    let (run, _) = bounded_run(
        "[sandbox]\nfaults = [\"latency=1500ms\"]\n\n[http]\ntimeout = \"500ms\"\nretries = 0\n",
        &["--tags", "@resources"],
        Duration::from_secs(120),
    );
    assert_eq!(run.code(), 3, "{}", run.stdout());
    let summary = run.summary();
    let failed = kinds(&summary);
    assert_eq!(failed.len(), 1, "one failure, the first: {failed:#?}");
    assert_eq!(failed[0].0, "environment");
    assert!(
        failed[0].1.contains("did not answer within 0.5 s"),
        "{failed:#?}"
    );
    let skipped: Vec<&str> = summary["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .flat_map(|s| s["steps"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["status"] == "skipped")
        .filter_map(|s| s["error"].as_str().map(str::to_owned))
        .map(|s| {
            if s.contains("gave no answer earlier") {
                "origin"
            } else {
                "other"
            }
        })
        .collect();
    assert!(skipped.contains(&"origin"), "{skipped:?}");
}

#[test]
fn server_errors_are_the_payer_unavailable_not_a_broken_rule() {
    let (run, _) = bounded_run(
        "[sandbox]\nfaults = [\"status=503\"]\n\n[http]\nretries = 1\n",
        &["--tags", "@resources"],
        Duration::from_secs(120),
    );
    assert_eq!(run.code(), 3, "{}", run.stdout());
    let failed = kinds(&run.summary());
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|(kind, _)| kind == "environment"),
        "{failed:#?}"
    );
    assert!(
        failed[0].1.contains("the payer was unavailable")
            && failed[0].1.contains("answered 503 after 2 attempts")
            && failed[0].1.contains("injected fault"),
        "{failed:#?}"
    );
}

/// `onramp init`'s features with `edit` applied to the sign-in.
fn features_with(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let init = common::onramp()
        .args(["init"])
        .arg(dir.path())
        .output()
        .expect("init");
    assert_eq!(init.status.code(), Some(0));
    let sign_in = dir.path().join("features/authorization.feature");
    let text = std::fs::read_to_string(&sign_in).expect("sign-in");
    std::fs::write(&sign_in, edit(text)).expect("edited");
    dir
}

#[test]
fn a_sign_in_recipe_that_does_not_fit_the_page_is_one_usage_failure() {
    let features = features_with(|text| {
        assert!(text.contains("\"Verify identity\""), "{text}");
        text.replace("\"Verify identity\"", "\"Verify my identity\"")
    });
    let features = features.path().join("features");
    let (run, _) = bounded_run(
        "[sandbox]\n[browser]\ntimeout = \"3s\"\n",
        &["--features", features.to_str().expect("utf-8")],
        Duration::from_secs(180),
    );
    assert_eq!(run.code(), 2, "{}", run.stdout());
    let summary = run.summary();
    let failed = kinds(&summary);
    assert_eq!(failed.len(), 1, "one failure, the recipe's: {failed:#?}");
    let (kind, message) = &failed[0];
    assert_eq!(kind, "usage");
    assert!(
        message.contains("\"Verify my identity\"")
            && message.contains("the page offers")
            && message.contains("\"Verify identity\""),
        "says what the page does offer: {message}"
    );
    // Whatever needed the token is skipped, naming the sign-in.
    let token = Run::scenario(&summary, "Bearer token");
    assert_eq!(token["status"], "skipped", "{token}");
    let reasons = token["steps"].to_string();
    assert!(
        reasons.contains("no sign-in") || reasons.contains("no token"),
        "{reasons}"
    );
    // The page it could not act on is in a screenshot (the last one: a picture identical
    // to the one before it is not taken twice).
    let shots = summary["screenshots"].as_array().expect("screenshots");
    let last = shots.last().expect("a screenshot");
    assert!(
        last["url"]
            .as_str()
            .unwrap_or_default()
            .contains("/identity"),
        "{last}"
    );
    assert!(message.contains("see its screenshot"), "{message}");
}

#[test]
fn an_unknown_step_stops_the_run_before_anything_starts() {
    let features = features_with(|text| {
        text.replacen(
            "Then the browser is sent back",
            "Then the browser is sent home\n    And the browser is sent back",
            1,
        )
    });
    let features = features.path().join("features");
    let started = Instant::now();
    let run = Run::new(&["--features", features.to_str().expect("utf-8")]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(started.elapsed() < Duration::from_secs(20), "stops at once");
    let stderr = run.stderr();
    assert!(
        stderr.contains("features/authorization.feature:")
            && stderr.contains("Then the browser is sent home")
            && stderr.contains("did you mean: ")
            && stderr.contains("the browser is sent back to the app's redirect URI"),
        "{stderr}"
    );
    assert!(
        !run.dir.path().join("reports").exists(),
        "no report folder: nothing ran"
    );

    let dry = Run::new(&["--features", features.to_str().expect("utf-8"), "--dry-run"]);
    assert_eq!(dry.code(), 2, "the dry run finds it too: {}", dry.stderr());
}

#[test]
fn a_missing_chromedriver_is_said_once_before_anything_starts() {
    let run = Run::with(&[], |command| {
        command.env("ONRAMP_CHROMEDRIVER", "/nonexistent/chromedriver");
    });
    assert_eq!(run.code(), 3, "{}", run.stdout());
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert_eq!(
        all.matches("chromedriver was not found").count(),
        1,
        "{all}"
    );
    assert!(
        all.contains("apt-get install -y chromium chromium-driver"),
        "{all}"
    );
    assert!(!run.dir.path().join("reports").exists(), "nothing started");
}

#[test]
fn the_dry_run_prints_the_plan_and_runs_nothing() {
    let run = Run::new(&["--dry-run", "--tags", "@discovery or @token"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let out = run.stdout();
    assert!(out.contains("dry run: nothing is started or run"), "{out}");
    assert!(out.contains("target sandbox"), "{out}");
    assert!(out.contains("features/discovery.feature:"), "{out}");
    assert!(out.contains("features/token.feature:"), "{out}");
    assert!(!out.contains("features/resources.feature:"), "{out}");
    assert!(!run.dir.path().join("reports").exists(), "{out}");

    let port = TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let target = common::write(
        dir.path(),
        "gone.toml",
        &remote_target(&format!("http://127.0.0.1:{port}")),
    );
    let gone = Run::new(&["--dry-run", "--target", target.to_str().expect("utf-8")]);
    assert_eq!(gone.code(), 3, "{}", gone.stdout());
    assert!(
        gone.stdout().contains("refused the connection"),
        "{}",
        gone.stdout()
    );
}

#[test]
fn a_deadline_ends_the_run_with_a_report() {
    let (run, took) = bounded_run(
        "[sandbox]\nfaults = [\"latency=400ms\"]\n",
        &["--deadline", "4s"],
        Duration::from_secs(60),
    );
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert!(took < Duration::from_secs(30), "{took:?}");
    let summary = run.summary();
    assert!(
        summary["errors"].to_string().contains("--deadline of 4 s"),
        "{}",
        summary["errors"]
    );
}

#[test]
fn fail_fast_stops_at_the_first_failure_and_still_reports() {
    let run = Run::new(&[
        "--sandbox-fault",
        "smart-field:-token_endpoint",
        "--fail-fast",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let summary = run.summary();
    let scenarios = summary["scenarios"].as_array().expect("scenarios").len();
    assert!(scenarios < 10, "stopped early: {scenarios} scenarios");
    assert!(run.report().join("report.html").is_file());
}

#[test]
fn sign_in_pages_on_the_apps_origin_are_waited_through_every_time() {
    for _ in 0..3 {
        let (run, _) = bounded_run(
            "[sandbox]\npersona = \"bluebutton\"\nsame_origin_callback = true\n",
            &["--tags", "@authorization or @token"],
            Duration::from_secs(120),
        );
        assert_eq!(run.code(), 0, "{}", run.stdout());
        let summary = run.summary();
        let redirect = summary["target"]["redirect_uri"]
            .as_str()
            .unwrap_or_default();
        let authorize = summary["target"]["authorize_url"]
            .as_str()
            .unwrap_or_default();
        let origin = |u: &str| url::Url::parse(u).map(|u| u.origin().ascii_serialization());
        assert_eq!(origin(redirect), origin(authorize), "one origin");
    }
}

#[test]
fn evidence_claims_readiness_only_after_a_run_that_passed_and_only_to_the_payers_address() {
    // A failing run against the guide's payer: the sync request, no production request.
    let run = Run::new(&["--tags", "@token", "--sandbox-fault", "token-field:-scope"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let emails = run.report().join("emails");
    assert!(emails.join("sandbox-sync.eml").is_file());
    assert!(!emails.join("production-access.eml").exists());
    let why = std::fs::read_to_string(emails.join("not-drafted.txt")).expect("why");
    assert!(
        why.contains("must rest on a run that passed") && why.contains("failed"),
        "{why}"
    );

    // A payer whose target names no address: nothing drafted to anyone, and why.
    // (By its old name, which still works and says what it became.)
    let run = Run::new(&["--target", "sandbox-bluebutton", "--tags", "@discovery"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert!(
        run.stderr()
            .contains("the target \"sandbox-bluebutton\" is now called \"sandbox:bluebutton\""),
        "{}",
        run.stderr()
    );
    assert_eq!(run.summary()["target"]["name"], "sandbox:bluebutton");
    let emails = run.report().join("emails");
    assert!(!emails.join("sandbox-sync.eml").exists());
    assert!(!emails.join("production-access.eml").exists());
    let why = std::fs::read_to_string(emails.join("not-drafted.txt")).expect("why");
    assert!(why.contains("[payer] production_access_to"), "{why}");
    assert_eq!(run.summary()["checklist"]["items"], serde_json::json!([]));

    // The guide's payer and a run that passed: the request, to the guide's address.
    let run = Run::new(&["--tags", "@discovery"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let draft = std::fs::read_to_string(run.report().join("emails/production-access.eml"))
        .expect("drafted");
    assert!(draft.contains("cms-prod-access@1up.health"), "{draft}");
}
