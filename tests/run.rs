//! `onramp run` end to end: the shipped features against the embedded sandbox with real
//! Chromium, every sandbox fault failing the right scenario, the outputs, the exit codes,
//! and no browser process left behind by any of it.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::run::Run;
use serde_json::Value;

#[test]
fn the_shipped_features_pass_against_the_sandbox_and_write_every_output() {
    let run = Run::new(&[]);
    assert_eq!(
        run.code(),
        0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout(),
        run.stderr()
    );
    assert!(
        run.stdout().contains(
            "onramp: conformant: 261 scenarios (255 passed, 0 failed, 6 skipped) against sandbox"
        ),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains(
            "onramp: Patient Access API conformant · Provider Directory API conformant · Drug Formulary conformant"
        ),
        "{}",
        run.stdout()
    );
    let summary = run.summary();
    assert_eq!(summary["schema_version"], 3);
    assert_eq!(summary["outcome"], "passed");
    assert_eq!(summary["target"]["name"], "sandbox");
    let scenarios = summary["scenarios"].as_array().expect("scenarios");
    // 91 of the Patient Access API, 129 of the Provider Directory, 41 of the formulary.
    assert_eq!(scenarios.len(), 261);
    for scenario in scenarios {
        // The isolation rows of the types no member owns (Organization, Practitioner,
        // Location) have nothing to ask for.
        let shared = ["Organization", "Practitioner", "Location"]
            .iter()
            .any(|kind| {
                scenario["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(&format!("another member's {kind}")))
            });
        // The built-in target has no [app]: the app's scenario is skipped, saying why.
        let app = scenario["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "@app"));
        // The formulary's Locations are coverage areas (a state, a country): no city or
        // postal code to search by, and the search says so.
        let area = scenario["name"].as_str().is_some_and(|n| {
            n.starts_with("The Drug Formulary's Location searched by address-city")
                || n.starts_with("The Drug Formulary's Location searched by address-postalcode")
        });
        assert_eq!(
            scenario["status"],
            if shared || app || area {
                "skipped"
            } else {
                "passed"
            },
            "{scenario}"
        );
        assert!(
            scenario["feature"].is_string()
                && !scenario["steps"].as_array().expect("steps").is_empty()
        );
    }
    let resources = summary["resources"].as_array().expect("resources");
    let kinds: Vec<&str> = resources
        .iter()
        .filter_map(|r| r["type"].as_str())
        .collect();
    for kind in [
        "ExplanationOfBenefit",
        "Coverage",
        "Organization",
        "Patient",
        "Practitioner",
        "Location",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let eob = resources
        .iter()
        .find(|r| r["type"] == "ExplanationOfBenefit")
        .expect("EOB");
    assert_eq!(eob["count"], 12);
    assert_eq!(eob["pages"], 2);
    assert_eq!(eob["invalid"], 0);
    assert_eq!(eob["findings"], serde_json::json!([]));
    assert_eq!(summary["token"]["token_type"], "Bearer");
    let report = run.report();
    let junit = std::fs::read_to_string(report.join("junit.xml")).expect("junit.xml");
    assert!(junit.starts_with("<?xml") && junit.contains("<testsuites"));
    let cucumber: Value = serde_json::from_str(
        &std::fs::read_to_string(report.join("cucumber.json")).expect("cucumber.json"),
    )
    .expect("JSON");
    assert_eq!(
        cucumber.as_array().map(Vec::len),
        Some(13),
        "thirteen features"
    );
    let screenshots: Vec<_> = std::fs::read_dir(report.join("screenshots"))
        .expect("screenshots")
        .flatten()
        .collect();
    assert!(screenshots.len() >= 4, "a screenshot per browser step");
    for screenshot in summary["screenshots"].as_array().expect("listed") {
        assert!(
            report
                .join(screenshot["file"].as_str().expect("file"))
                .is_file()
        );
    }
    for file in [
        "report.html",
        "checklist.md",
        "emails/sandbox-sync.eml",
        "emails/production-access.eml",
    ] {
        assert!(report.join(file).is_file(), "{file}");
    }
    let recording = summary["recording"]["file"].as_str().expect("a recording");
    assert!(report.join(recording).is_file());
    assert_eq!(
        summary["checklist"]["items"].as_array().map(Vec::len),
        Some(16)
    );
    // JUnit: one suite per feature, one case per scenario, all passing.
    assert_eq!(junit.matches("<testsuite ").count(), 13, "{junit}");
    assert_eq!(junit.matches("<testcase ").count(), 261, "{junit}");
    // Each suite says which part of CMS-9115-F it is about, and that API's verdict.
    assert_eq!(
        junit
            .matches("<property name=\"api\" value=\"Provider Directory API\"/><property name=\"api-verdict\" value=\"conformant\"/>")
            .count(),
        1,
        "{junit}"
    );
    // Both members signed in, and each has a section.
    let members = summary["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m["leaks"] == serde_json::json!([])));
    assert!(!junit.contains("<failure") && !junit.contains("<error"));
}

/// A run with sandbox faults: which scenario failed, with what message.
fn failing(faults: &[&str]) -> (Run, Value) {
    let mut args = Vec::new();
    for fault in faults {
        args.push("--sandbox-fault");
        args.push(fault);
    }
    let run = Run::new(&args);
    let summary = run.summary();
    (run, summary)
}

fn failed_step(scenario: &Value) -> String {
    scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["status"] == "failed")
        .and_then(|s| s["error"].as_str())
        .unwrap_or_else(|| panic!("no failed step in {scenario}"))
        .to_owned()
}

#[test]
fn data_faults_fail_the_scenario_of_their_type_and_the_rest_still_run() {
    let (run, summary) = failing(&[
        "invalid-resource:Patient",
        "foreign-patient:ExplanationOfBenefit",
        "malformed-json:Coverage",
        "drop-next-link:Location",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    assert_eq!(summary["outcome"], "failed");
    let patient = failed_step(Run::scenario(&summary, "Patient resources"));
    assert!(
        patient.contains("Patient/john-allen")
            && patient.contains("Patient.meta.lastUpdated")
            && patient.contains("not a valid FHIR instant"),
        "{patient}"
    );
    let eob = failed_step(Run::scenario(&summary, "ExplanationOfBenefit resources"));
    assert!(
        eob.contains("ExplanationOfBenefit/eob-m00001-0 belongs to Patient/m00001"),
        "{eob}"
    );
    let coverage = failed_step(Run::scenario(&summary, "Coverage resources"));
    assert!(
        coverage.contains("Coverage page 1") && coverage.contains("is not JSON"),
        "{coverage}"
    );
    for passing in [
        "Organization resources",
        "Practitioner resources",
        "receives a code",
        "Bearer token",
    ] {
        assert_eq!(
            Run::scenario(&summary, passing)["status"],
            "passed",
            "{passing}"
        );
    }
    // Of the resources scenarios, three fail: Location's dropped link only shows when it has
    // more pages. The same faults also fail CARIN searches and reads of those types.
    let failed_resources = summary["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter(|s| s["feature"] == "Required resources" && s["status"] == "failed")
        .count();
    assert_eq!(failed_resources, 3, "{}", run.stdout());
    let patient_result = summary["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Patient")
        .expect("Patient");
    assert_eq!(patient_result["invalid"], 1);
    assert_eq!(
        patient_result["findings"][0]["path"],
        "Patient.meta.lastUpdated"
    );
}

#[test]
fn a_dropped_next_link_breaks_the_total() {
    let (run, summary) = failing(&["drop-next-link:ExplanationOfBenefit"]);
    assert_eq!(run.code(), 1);
    let eob = failed_step(Run::scenario(&summary, "ExplanationOfBenefit resources"));
    assert!(eob.contains("Bundle.total says 12 but 10"), "{eob}");
}

#[test]
fn expired_codes_fail_the_token_scenario_with_the_servers_reason() {
    let (run, summary) = failing(&["expire-codes"]);
    assert_eq!(run.code(), 1);
    let token = failed_step(Run::scenario(&summary, "Bearer token"));
    assert!(
        token.contains("invalid_grant") && token.contains("expired"),
        "{token}"
    );
    assert_eq!(
        Run::scenario(&summary, "receives a code")["status"],
        "passed"
    );
}

#[test]
fn server_errors_and_slow_answers_are_could_not_test_with_the_url_and_the_reason() {
    let (run, summary) = failing(&["status=503"]);
    assert_eq!(
        run.code(),
        3,
        "the payer was unavailable: onramp could not test"
    );
    let eob = failed_step(Run::scenario(&summary, "ExplanationOfBenefit resources"));
    assert!(
        eob.contains("the payer was unavailable")
            && eob.contains("answered 503 after 4 attempts")
            && eob.contains("injected fault"),
        "{eob}"
    );
    assert!(
        summary["notes"]
            .as_array()
            .expect("notes")
            .iter()
            .any(|n| n["text"].as_str().unwrap_or_default().contains("retrying"))
    );

    let run = Run::with_target(
        "slow.toml",
        "[sandbox]\nfaults = [\"latency=1500ms\"]\n\n[http]\ntimeout = \"500ms\"\nretries = 0\n",
        "@resources",
    );
    assert_eq!(run.code(), 3, "{}", run.stdout());
    let summary = run.summary();
    let eob = failed_step(Run::scenario(&summary, "ExplanationOfBenefit resources"));
    assert!(eob.contains("did not answer within 0.5 s"), "{eob}");
}

#[test]
fn a_body_that_trickles_past_the_timeout_is_could_not_test() {
    let run = Run::with_target(
        "trickle.toml",
        "[sandbox]\nfaults = [\"slow-body=400ms\"]\n\n[http]\ntimeout = \"1s\"\nretries = 0\n",
        "@resources",
    );
    assert_eq!(run.code(), 3, "{}", run.stdout());
    let eob = failed_step(Run::scenario(
        &run.summary(),
        "ExplanationOfBenefit resources",
    ));
    assert!(
        eob.contains("ExplanationOfBenefit page 1") && eob.contains("did not answer within 1 s"),
        "{eob}"
    );
}

#[test]
fn an_access_token_about_to_expire_is_refreshed() {
    let run = Run::with_target(
        "short.toml",
        "[sandbox]\ntoken_lifetime = \"30s\"\n",
        "@token or @resources",
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    assert!(
        summary["token"]["refreshed"].as_u64().unwrap_or(0) >= 1,
        "{}",
        summary["token"]
    );
    assert!(
        summary["exchanges"]
            .as_array()
            .expect("exchanges")
            .iter()
            .any(|e| e["context"] == "Token: refresh the access token")
    );
}

#[test]
fn the_rate_limit_is_honoured_and_the_run_passes() {
    let (run, summary) = failing(&["rate-limit=4/s"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let notes = summary["notes"].as_array().expect("notes");
    assert!(
        notes.iter().any(|n| n["text"]
            .as_str()
            .unwrap_or_default()
            .contains("answered 429; retrying")),
        "{notes:?}"
    );
}

#[test]
fn a_missing_chromedriver_is_an_environment_error_with_an_install_hint() {
    let run = Run::with(&["--tags", "@authorization"], |command| {
        command.env("ONRAMP_CHROMEDRIVER", "/nonexistent/chromedriver");
    });
    // Found before anything starts (tests/field.rs: said once, no report folder).
    assert_eq!(run.code(), 3, "{}", run.stdout());
    let said = run.stderr();
    assert!(
        said.contains("chromedriver was not found")
            && said.contains("apt-get install -y chromium chromium-driver"),
        "{said}"
    );
}

/// A chromedriver started by the test, as a remote WebDriver (Selenium Grid, a driver on
/// another machine) would be: in a process group of its own, ended with everything it
/// started when dropped, whatever the test did.
struct RemoteDriver {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl RemoteDriver {
    fn start() -> Self {
        use std::os::unix::process::CommandExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let log = dir.path().join("chromedriver.log");
        let child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            // A path, as Selenium Grid 3 and many hosted grids have one.
            .arg("--url-base=/wd/hub")
            .arg(format!("--log-path={}", log.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts (apt-get install -y chromium-driver)");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}/wd/hub"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !driver.ready() {
            assert!(Instant::now() < deadline, "chromedriver answers /status");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// Whether it answers `/status` with `ready: true`.
    fn ready(&self) -> bool {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            match reqwest::get(format!("{}/status", self.url)).await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|status| status["value"]["ready"] == true),
                Err(_) => false,
            }
        })
    }

    /// The processes chromedriver started that are still running (its browsers).
    fn children(&self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let mut children = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so read after its ')'.
            let Some((head, tail)) = stat.rsplit_once(')') else {
                continue;
            };
            let ppid = tail.split_whitespace().nth(1);
            if ppid == Some(pid.as_str()) {
                children.push(head.to_owned() + ")");
            }
        }
        children
    }
}

impl Drop for RemoteDriver {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait();
    }
}

#[test]
fn a_remote_webdriver_is_used_as_it_is_and_left_running() {
    let mut driver = RemoteDriver::start();
    // onramp must start no driver of its own: the one it would start does not exist.
    let run = Run::with(
        &[
            "--webdriver",
            &driver.url,
            "--tags",
            "@authorization or @token",
        ],
        |command| {
            command.env(
                "ONRAMP_CHROMEDRIVER",
                "/nonexistent/onramp-must-not-start-a-driver",
            );
        },
    );
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let summary = run.summary();
    assert_eq!(summary["scenario_counts"]["passed"], 2);
    assert!(
        summary["browser"]
            .as_str()
            .is_some_and(|b| b.starts_with("chrome")),
        "the remote browser named itself: {}",
        summary["browser"]
    );
    // onramp did not stop the driver: it still runs and takes sessions.
    assert!(
        driver.child.try_wait().expect("status").is_none(),
        "chromedriver still runs"
    );
    assert!(driver.ready(), "chromedriver still answers");
    // onramp closed its session: the driver logged the Quit, and the browser it started for
    // the session is gone.
    let log = std::fs::read_to_string(&driver.log).expect("chromedriver's log");
    assert_eq!(log.matches("COMMAND InitSession").count(), 1, "one session");
    assert_eq!(
        log.matches("COMMAND Quit").count(),
        1,
        "the session was closed"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !driver.children().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the session's browser is gone: {:?}",
            driver.children()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tags_select_scenarios() {
    let run = Run::new(&["--tags", "@authorization or @token"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(run.summary()["scenarios"].as_array().map(Vec::len), Some(2));
    let bad = Run::new(&["--tags", "@a and and"]);
    assert_eq!(bad.code(), 2);
    assert!(bad.stderr().contains("--tags"), "{}", bad.stderr());
}

#[test]
fn the_1up_demo_target_without_credentials_says_what_to_set() {
    let run = Run::new(&["--target", "1up-demo"]);
    assert_eq!(run.code(), 2);
    for variable in [
        "ONRAMP_1UP_CLIENT_ID",
        "ONRAMP_1UP_CLIENT_SECRET",
        "ONRAMP_1UP_REDIRECT_URI",
    ] {
        assert!(run.stderr().contains(variable), "{}", run.stderr());
    }
}

#[test]
fn bad_target_files_name_the_key_and_line_and_never_echo_a_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = common::write(
        dir.path(),
        "bad.toml",
        "[endpoints]\nauthorize = \"https://a.example/authorize\"\ntoken = \"https://a.example/token\"\nfhir_base = \"not a url\"\n\n[client]\nid = \"x\"\nsecret = \"super-secret-value\"\nredirect_uri = \"http://localhost:1/cb\"\n",
    );
    let run = Run::new(&["--target", target.to_str().expect("utf-8")]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr().contains("bad.toml:4: endpoints.fhir_base"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("super-secret-value"));
    let unknown = Run::new(&["--target", "no-such-target"]);
    assert_eq!(unknown.code(), 2);
    assert!(
        unknown.stderr().contains(
            "built-in targets are: sandbox, sandbox:bluebutton, 1up-demo, bluebutton-sandbox"
        ),
        "{}",
        unknown.stderr()
    );
}

#[test]
fn an_unreachable_target_is_an_environment_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let run = Run::with_target(
        "gone.toml",
        &format!(
            "[endpoints]\nauthorize = \"http://127.0.0.1:{port}/authorize\"\ntoken = \"http://127.0.0.1:{port}/token\"\nfhir_base = \"http://127.0.0.1:{port}/r4\"\n\n[client]\nid = \"x\"\nsecret = \"y\"\nredirect_uri = \"http://127.0.0.1:9/cb\"\n\n[member]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\nzip = \"02114\"\n"
        ),
        "@access-control",
    );
    assert_eq!(run.code(), 3, "{}", run.stdout());
    assert_eq!(run.summary()["outcome"], "error");
}

#[test]
fn init_writes_editable_features_that_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let init = common::onramp()
        .args(["init"])
        .arg(dir.path())
        .output()
        .expect("init");
    assert_eq!(init.status.code(), Some(0));
    for file in [
        "features/authorization.feature",
        "features/token.feature",
        "features/resources.feature",
        "features/access-control.feature",
        "onramp-target.toml",
        "onboarding.toml",
    ] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }
    let again = common::onramp()
        .args(["init"])
        .arg(dir.path())
        .output()
        .expect("init");
    assert_eq!(again.status.code(), Some(2), "no overwrite without --force");
    // Edit a feature: only the token scenario, with the target's own settings.
    for feature in [
        "discovery",
        "openid",
        "resources",
        "carin-search",
        "clinical",
        "provider-directory",
        "formulary",
        "isolation",
        "access-control",
        "app",
        "refresh",
    ] {
        std::fs::remove_file(dir.path().join(format!("features/{feature}.feature")))
            .expect("remove");
    }
    let features = dir.path().join("features");
    let target = dir.path().join("onramp-target.toml");
    let run = Run::new(&[
        "--features",
        features.to_str().expect("utf-8"),
        "--target",
        target.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(run.summary()["scenarios"].as_array().map(Vec::len), Some(2));
}

/// Start a slow run, send `signal` once `ready` says so, and check what a stopped run must
/// leave: exit 128 + the signal, an interrupted report naming it, no browser process and no
/// temp folder.
fn stop_a_run(
    signal: nix::sys::signal::Signal,
    code: i32,
    ready: impl Fn(&std::path::Path) -> bool,
) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = common::write(
        dir.path(),
        "slow.toml",
        "[sandbox]\nfaults = [\"latency=2s\"]\n",
    );
    let child = Run::command(dir.path(), &["--target", target.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("onramp runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    let reports = dir.path().join("reports");
    while !ready(&reports) {
        assert!(
            Instant::now() < deadline,
            "the run never got ready for {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = signal_and_wait(dir, child, signal, code);
    let summary = run.summary();
    assert_eq!(summary["outcome"], "interrupted");
    assert_eq!(summary["exit_code"], code);
    assert_eq!(summary["interrupted_by"], signal.as_str());
    run.assert_no_browser_left();
    let left: Vec<_> = std::fs::read_dir(Run::tmp(run.dir.path()))
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "temp folders left: {left:?}");
    run
}

/// Send `signal` to a run and wait for it to exit with `code`: the run, for its report.
fn signal_and_wait(
    dir: tempfile::TempDir,
    mut child: std::process::Child,
    signal: nix::sys::signal::Signal,
    code: i32,
) -> Run {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, signal).expect("signal sent");
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(code), "{signal}");
    Run {
        dir,
        output: Output {
            status,
            stdout: Vec::new(),
            stderr: Vec::new(),
        },
    }
}

/// Whether the run has taken its first screenshot: the browser is busy.
fn mid_sign_in(reports: &std::path::Path) -> bool {
    let found = walkdir::WalkDir::new(reports)
        .into_iter()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "png"));
    if found {
        // Into the run, with chromedriver and Chromium up.
        std::thread::sleep(Duration::from_millis(500));
    }
    found
}

#[test]
fn ctrl_c_stops_the_run_writes_an_interrupted_report_and_leaves_no_browser() {
    let run = stop_a_run(nix::sys::signal::Signal::SIGINT, 130, mid_sign_in);
    assert!(
        !run.summary()["screenshots"]
            .as_array()
            .expect("screenshots")
            .is_empty(),
        "what was recorded is kept"
    );
}

#[test]
fn sigterm_and_sighup_stop_the_run_as_ctrl_c_does() {
    stop_a_run(nix::sys::signal::Signal::SIGTERM, 143, mid_sign_in);
    stop_a_run(nix::sys::signal::Signal::SIGHUP, 129, mid_sign_in);
}

#[test]
fn a_signal_while_the_browser_starts_leaves_nothing_behind() {
    // The report folder exists as soon as the plan is resolved, when the browser starts
    // in the background and before any scenario.
    stop_a_run(nix::sys::signal::Signal::SIGTERM, 143, |reports| {
        reports.is_dir()
    });
}

/// A signal in the first moments of a multi-target run, before any target's run listens,
/// still stops every target: exit 128 + the signal, each target's report and the combined
/// summary say which signal, and no browser or temp folder is left.
#[test]
fn a_signal_at_the_start_of_a_multi_target_run_stops_every_target() {
    for (signal, code, delay) in [
        (nix::sys::signal::Signal::SIGTERM, 143, 100),
        (nix::sys::signal::Signal::SIGHUP, 129, 50),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Run::command(
            dir.path(),
            &["--target", "sandbox", "--target", "sandbox:bluebutton"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("onramp runs");
        std::thread::sleep(Duration::from_millis(delay));
        let run = signal_and_wait(dir, child, signal, code);
        let combined = run.summary();
        assert_eq!(combined["interrupted_by"], signal.as_str(), "{combined:#}");
        assert_eq!(combined["exit_code"], code);
        for target in combined["targets"].as_array().expect("targets") {
            assert_eq!(target["exit_code"], code, "{target:#}");
        }
        run.assert_no_browser_left();
    }
}

/// After a SIGKILL nothing of onramp's runs: the next run removes the temp folders a killed
/// onramp marked as its own and stops the processes started with them, and leaves alone
/// what it cannot prove is a leftover (an unmarked folder, a live onramp's folder).
#[test]
fn the_next_run_clears_what_a_killed_run_left() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tmp = Run::tmp(dir.path());
    let folder = |name: &str, owner: Option<String>| {
        let path = tmp.join(name);
        std::fs::create_dir_all(&path).expect("folder");
        if let Some(owner) = owner {
            std::fs::write(path.join("onramp-owner"), owner).expect("owner");
        }
        path
    };
    let mut finished = std::process::Command::new("true").spawn().expect("true");
    let dead = finished.id();
    finished.wait().expect("waits");
    let leftover = folder("onramp-chromium-killed", Some(format!("{dead} 1")));
    let unmarked = folder("onramp-chromium-unmarked", None);
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let start = stat[stat.rfind(')').expect(")") + 1..]
        .split_whitespace()
        .nth(19)
        .expect("start time")
        .to_owned();
    let live = folder(
        "onramp-chromedriver-live",
        Some(format!("{} {start}", std::process::id())),
    );
    // The interpreter itself, not a wrapper script that starts it a moment later.
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    let python = String::from_utf8_lossy(&python.stdout).trim().to_owned();
    let mut browser = std::process::Command::new(&python)
        .args(["-c", "import time; time.sleep(120)"])
        .arg(format!("--user-data-dir={}", leftover.display()))
        .spawn()
        .expect("a stand-in browser");
    let run = Run::with(&["--tags", "@token", "--recording", "none"], |command| {
        command.current_dir(dir.path()).env("TMPDIR", &tmp);
    });
    assert!(
        run.stderr()
            .contains("a killed onramp run left 1 temp folder and 1 browser or driver process(es)"),
        "{}",
        run.stderr()
    );
    assert!(!leftover.exists());
    assert!(unmarked.exists() && live.exists());
    let status = browser.wait().expect("stopped");
    assert!(
        !status.success(),
        "the leftover browser was killed: {status}"
    );
}

#[test]
fn require_checklist_fails_a_conformant_run_with_an_incomplete_checklist() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = common::write(dir.path(), "onboarding.toml", "company = \"Acme\"\n");
    let run = Run::new(&[
        "--tags",
        "@token",
        "--manifest",
        manifest.to_str().expect("utf-8"),
        "--require-checklist",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let summary = run.summary();
    assert_eq!(summary["outcome"], "failed");
    assert!(
        summary["errors"][0]
            .as_str()
            .unwrap_or_default()
            .contains("--require-checklist"),
        "{}",
        summary["errors"]
    );
    let without = Run::new(&[
        "--tags",
        "@token",
        "--manifest",
        manifest.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        without.code(),
        0,
        "the checklist does not change the verdict unless required"
    );
}

#[test]
fn the_bluebutton_persona_passes_its_own_features_and_its_password_stays_secret() {
    let run = Run::new(&["--target", "sandbox:bluebutton"]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let summary = run.summary();
    assert_eq!(summary["target"]["persona"], "bluebutton");
    assert_eq!(summary["target"]["client_auth"], "basic");
    // The Patient Access API's types (the Provider Directory's and the formulary's are the
    // sandbox's own, as for every persona).
    let kinds: Vec<&str> = summary["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r.get("api").is_none())
        .filter_map(|r| r["type"].as_str())
        .collect();
    assert_eq!(kinds, ["Coverage", "ExplanationOfBenefit", "Patient"]);
    // 2 discovery + 1 sign-in + 1 token + 1 OpenID + 3 types + 21 CARIN searches (3 reads,
    // 10 searches, 8 includes) + 4 isolation + 5 access-control + 4 refresh scenarios.
    assert_eq!(patient_access_passed(&summary), 42);
    assert_eq!(summary["members"].as_array().map(Vec::len), Some(2));
    let captions: Vec<&str> = summary["screenshots"]
        .as_array()
        .expect("screenshots")
        .iter()
        .filter_map(|s| s["caption"].as_str())
        .collect();
    assert!(captions.contains(&"before clicking Allow"), "{captions:?}");
    for file in walkdir::WalkDir::new(run.report().canonicalize().expect("report"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        let bytes = std::fs::read(file.path()).expect("readable");
        for password in [b"PW00000!", b"PW00001!"] {
            assert!(
                !bytes.windows(8).any(|w| w == password),
                "{} holds a member's password",
                file.path().display()
            );
        }
    }
}

#[test]
fn two_members_are_kept_apart_and_a_leak_between_them_fails_with_both_sections() {
    let run = Run::new(&["--tags", "@isolation"]);
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let summary = run.summary();
    let members = summary["members"].as_array().expect("members");
    let labels: Vec<&str> = members.iter().filter_map(|m| m["label"].as_str()).collect();
    assert_eq!(labels, ["John Allen", "Wei Novak"]);
    let patients: Vec<&str> = members
        .iter()
        .filter_map(|m| m["patient"].as_str())
        .collect();
    assert_eq!(patients, ["john-allen", "m00001"]);
    for member in members {
        // Patient: 1 read, 1 _id search; Coverage: 1, 1 and 2 (patient, beneficiary);
        // ExplanationOfBenefit: 3 reads, 3 _id searches, 1 patient search.
        assert_eq!(member["asked"], 13, "{member}");
        assert_eq!(member["leaks"], serde_json::json!([]), "{member}");
    }
    // The browser forgot the first member before the second signed in.
    let actions: Vec<&str> = summary["browser_actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("forget the previous member")),
        "{actions:?}"
    );
    let html = std::fs::read_to_string(run.report().join("report.html")).expect("report");
    assert!(html.contains("<h2>Members</h2>") && html.contains("Wei Novak"));

    // Every way at once: each is its own check, and both members' sections show the leaks.
    let leaky = Run::new(&[
        "--tags",
        "@isolation",
        "--sandbox-fault",
        "cross-member-leak:ExplanationOfBenefit",
    ]);
    assert_eq!(leaky.code(), 1, "{}", leaky.stdout());
    let failed: Vec<String> = leaky.failed_steps().into_iter().map(|f| f.step).collect();
    assert_eq!(
        failed,
        [
            "no member's token reads another member's ExplanationOfBenefit by id",
            "no member's token finds another member's ExplanationOfBenefit by _id",
            "no member's token finds another member's ExplanationOfBenefit by their Patient"
        ]
    );
    let summary = leaky.summary();
    for member in summary["members"].as_array().expect("members") {
        assert_eq!(
            member["leaks"].as_array().map(Vec::len),
            Some(7),
            "{member}"
        );
    }
    let html = std::fs::read_to_string(leaky.report().join("report.html")).expect("report");
    assert!(
        html.contains("<b>7 served it</b>"),
        "the leaks are in the report"
    );
}

#[test]
fn a_target_with_one_member_skips_isolation_saying_how_to_add_one() {
    let run = Run::with_target(
        "one.toml",
        "[sandbox]\n\n[member]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\nzip = \"02114\"\n",
        "@isolation",
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    assert_eq!(summary["scenario_counts"]["skipped"], 7);
    assert!(summary.get("members").is_none(), "no member signed in");
    assert!(
        run.stdout()
            .contains("list two or more test members of the plan under [[members]]"),
        "{}",
        run.stdout()
    );
    // A second member who lacks what the sign-in types in is a usage error.
    let run = Run::with_target(
        "two.toml",
        "[sandbox]\n\n[[members]]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\nzip = \"02114\"\n\n[[members]]\nlabel = \"Wei\"\nfirst_name = \"Wei\"\n",
        "@isolation",
    );
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("has no [member] birth_date for Wei"),
        "{}",
        run.stderr()
    );
}

/// `onramp init` in a fresh folder, with `args` after the folder.
fn init(args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let init = common::onramp()
        .arg("init")
        .arg(dir.path())
        .args(args)
        .output()
        .expect("init");
    assert_eq!(init.status.code(), Some(0), "{}", common::stderr(&init));
    dir
}

#[test]
fn the_bluebutton_preset_writes_features_that_run_unchanged_against_the_persona() {
    let dir = init(&["--preset", "bluebutton-sandbox"]);
    let authorization = std::fs::read_to_string(dir.path().join("features/authorization.feature"))
        .expect("the sign-in feature");
    assert!(authorization.contains("| Username | ${member.username} |"));
    let target = std::fs::read_to_string(dir.path().join("onramp-target.toml")).expect("target");
    assert!(
        target.contains("https://sandbox.bluebutton.cms.gov/v2/o/authorize/")
            && target.contains("features = \"features\""),
        "{target}"
    );
    let features = dir.path().join("features");
    let run = Run::new(&[
        "--target",
        "sandbox:bluebutton",
        "--features",
        features.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert_eq!(patient_access_passed(&run.summary()), 42);
}

/// How many of the Patient Access API's scenarios passed (`apis` in summary.json).
fn patient_access_passed(summary: &Value) -> u64 {
    summary["apis"]
        .as_array()
        .expect("apis")
        .iter()
        .find(|a| a["api"] == "patient-access")
        .and_then(|a| a["scenarios"]["passed"].as_u64())
        .expect("the Patient Access API's verdict")
}

#[test]
fn a_sign_in_the_persona_does_not_offer_fails_at_the_step_that_names_it() {
    // The demo plan's sign-in against the Blue Button persona: its page has no
    // "Click here to confirm identity", and every scenario that needs a sign-in says so.
    let run = Run::with_target(
        "mismatch.toml",
        "sign_in = \"demo-plan\"\n[sandbox]\npersona = \"bluebutton\"\n\n[member]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\nzip = \"02114\"\n",
        "@authorization or @token",
    );
    // The features do not fit the payer's pages: one usage failure, at the step that names
    // the link, saying what the page offers; what needed a sign-in is skipped, naming it.
    assert_eq!(run.code(), 2, "{}", run.stdout());
    let failed = run.failed_steps();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let step = &failed[0];
    assert!(
        step.error
            .contains("a link or button \"Click here to confirm identity\"")
            && step.error.contains("the page offers"),
        "{step:#?}"
    );
    assert_eq!(step.failure, "usage");
    let summary = run.summary();
    let token = Run::scenario(&summary, "Bearer token");
    assert_eq!(token["status"], "skipped", "{token}");
    assert!(
        token["steps"].to_string().contains("no sign-in"),
        "{}",
        token["steps"]
    );
}

#[test]
fn the_sign_in_wording_lives_in_the_features_and_every_sign_in_follows_it() {
    let dir = init(&[]);
    let feature = dir.path().join("features/authorization.feature");
    let original = std::fs::read_to_string(&feature).expect("feature");
    let target = dir.path().join("onramp-target.toml");
    // A missing field costs a browser timeout per sign-in: keep it short.
    let text = std::fs::read_to_string(&target).expect("target");
    std::fs::write(
        &target,
        text.replace("timeout = \"15s\"", "timeout = \"2s\""),
    )
    .expect("edit");
    let target = target.to_str().expect("utf-8");

    // The birthdate field found by its placeholder instead of its label: still passes.
    std::fs::write(
        &feature,
        original.replace("| Birthdate      |", "| MM/DD/YYYY     |"),
    )
    .expect("edit");
    let run = Run::new(&["--target", target]);
    assert_eq!(run.code(), 0, "{}", run.stdout());

    // A label the page does not show: the sign-in scenario fails (usage, naming the field
    // and what the page offers), and every scenario that needs a sign-in is skipped, naming
    // it, instead of failing the same way again.
    std::fs::write(
        &feature,
        original.replace("| Birthdate      |", "| Date of Birth  |"),
    )
    .expect("edit");
    let run = Run::new(&["--target", target]);
    assert_eq!(run.code(), 2, "{}", run.stdout());
    let failed = run.failed_steps();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        failed[0].scenario,
        "The member confirms their identity and the app receives a code"
    );
    assert_eq!(failed[0].failure, "usage");
    assert!(
        failed[0]
            .error
            .contains("a field labelled \"Date of Birth\"")
            && failed[0].error.contains("\"Birthdate\""),
        "{failed:#?}"
    );
    let summary = run.summary();
    for needs_a_sign_in in [
        "The code is exchanged for a Bearer token that reads the member's data",
        "A code is exchanged only by its client, with its PKCE verifier, and only once",
        "A fresh access token is introspected, then revoked",
    ] {
        let scenario = Run::scenario(&summary, needs_a_sign_in);
        assert_eq!(scenario["status"], "skipped", "{scenario}");
        assert!(
            scenario["steps"].to_string().contains("Date of Birth"),
            "the skip names the sign-in's failure: {scenario}"
        );
    }
    assert_eq!(
        patient_access_passed(&summary),
        5,
        "only the scenarios that need no sign-in pass (discovery, the unauthenticated read, the unissued code, the unissued refresh token); the unregistered redirect's probe follows the sign-in, so it is skipped too"
    );
    // The public APIs need no sign-in: the Provider Directory and the formulary are tested.
    let verdicts: Vec<&str> = summary["apis"]
        .as_array()
        .expect("apis")
        .iter()
        .skip(1)
        .map(|a| a["verdict"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(verdicts, ["conformant", "conformant"]);
}

#[test]
fn usage_errors_exit_2_with_what_to_fix() {
    // A sign-in placeholder the target's [member] lacks.
    let run = Run::with_target(
        "no-zip.toml",
        "[sandbox]\n\n[member]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\n",
        "@token",
    );
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("has no [member] zip")
            && run.stderr().contains("features/authorization.feature:"),
        "{}",
        run.stderr()
    );

    // A step no definition matches: found before anything starts (tests/field.rs).
    let dir = init(&[]);
    let token = dir.path().join("features/token.feature");
    let text = std::fs::read_to_string(&token).expect("feature");
    std::fs::write(
        &token,
        text.replace(
            "And the token type is Bearer",
            "And the token is made of cheese",
        ),
    )
    .expect("edit");
    let target = dir.path().join("onramp-target.toml");
    let run = Run::new(&[
        "--target",
        target.to_str().expect("utf-8"),
        "--tags",
        "@token",
    ]);
    assert_eq!(run.code(), 2, "{}", run.stdout());
    assert!(
        run.stderr().contains("features/token.feature:")
            && run.stderr().contains("And the token is made of cheese"),
        "{}",
        run.stderr()
    );

    // Two scenarios tagged @sign-in.
    std::fs::write(
        dir.path().join("features/second.feature"),
        "Feature: Another\n  @sign-in\n  Scenario: Again\n    Given the app starts an authorization request\n",
    )
    .expect("write");
    let run = Run::new(&["--target", target.to_str().expect("utf-8")]);
    assert_eq!(run.code(), 2);
    assert!(
        run.stderr()
            .contains("more than one scenario is tagged @sign-in"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_failed_check_does_not_hide_the_independent_checks_after_it() {
    let run = Run::new(&[
        "--tags",
        "@token",
        "--sandbox-fault",
        "token-field:token_type=\"MAC\"",
        "--sandbox-fault",
        "cacheable-token",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let failed: Vec<String> = run.failed_steps().into_iter().map(|f| f.step).collect();
    assert_eq!(
        failed,
        [
            "the token type is Bearer",
            "the token response may not be cached"
        ]
    );
    let steps = &run.summary()["scenarios"][0]["steps"];
    let statuses: Vec<&str> = steps
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "passed", "passed", "passed", "failed", "passed", "passed", "passed", "failed",
            "passed", "passed"
        ],
        "the checks between and after the failures ran"
    );
}

#[test]
fn a_type_the_server_does_not_search_is_read_by_reference() {
    // CARIN requires only read of Organization, Practitioner and Patient (and Location is no
    // CARIN profile): a server that searches none of them is still conformant.
    let run = Run::new(&[
        "--tags",
        "@resources",
        "--sandbox-fault",
        "metadata-drop:Location.search-type",
        "--sandbox-fault",
        "metadata-drop:Practitioner.search-type",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    let location = summary["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Location")
        .expect("Location");
    assert_eq!(location["pages"], 0, "no searchset was read");
    assert_eq!(location["count"], 2);
    assert!(
        summary["exchanges"]
            .as_array()
            .expect("exchanges")
            .iter()
            .any(|e| e["context"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Read Location/")),
        "each Location was read by its id"
    );
}

#[test]
fn a_response_nested_50000_levels_deep_fails_its_step_and_the_run_goes_on() {
    let (run, summary) = failing(&["deep-json:Coverage"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let failed = run.failed_steps();
    assert!(
        failed.iter().any(
            |f| f.step == "the app searches for Coverage and follows every page"
                && f.error.contains("/Coverage")
                && f.error.contains("deeper than 512 levels")
        ),
        "{failed:#?}"
    );
    // Every other type was still read and judged.
    assert!(summary["scenario_counts"]["passed"].as_u64().unwrap_or(0) > 20);
}

/// Every file under `dir`, recursively.
fn every_file(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(every_file(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn quiet_prints_the_failure_and_the_verdict_and_ci_gets_annotations_and_a_job_summary() {
    let summary_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(summary_file.path(), "# Earlier step\n").expect("written");
    let run = Run::with(
        &[
            "--quiet",
            "--annotations",
            "github",
            "--tags",
            "@token",
            "--sandbox-fault",
            "token-field:-scope",
        ],
        |command| {
            command
                .env("GITHUB_STEP_SUMMARY", summary_file.path())
                .env("GITHUB_SERVER_URL", "https://github.example")
                .env("GITHUB_REPOSITORY", "acme/app")
                .env("GITHUB_RUN_ID", "42");
        },
    );
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let stdout = run.stdout();
    // Quiet: no feature or passing step, only the failure with its scenario, then the verdict.
    assert!(
        !stdout.contains("Feature:") && !stdout.contains('✔'),
        "{stdout}"
    );
    assert!(stdout.contains("Token › The code is exchanged"), "{stdout}");
    assert!(
        stdout.contains("✘  And the token response names the granted scope"),
        "{stdout}"
    );
    assert!(
        stdout.contains("onramp: NOT conformant: 1 scenario (0 passed, 1 failed)"),
        "{stdout}"
    );
    assert!(
        run.stderr().trim().is_empty(),
        "nothing on stderr: {}",
        run.stderr()
    );
    // The annotation names the step's feature file and line; the shipped features are not
    // in this folder (the job's checkout), so they go into the title, not `file=`.
    let annotation = stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .expect("an annotation");
    let summary = run.summary();
    let scenario = Run::scenario(&summary, "The code is exchanged");
    let step = scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["status"] == "failed")
        .expect("the failed step");
    assert!(
        annotation.starts_with("::error title=Token › The code is exchanged"),
        "{annotation}"
    );
    assert!(
        annotation.contains(&format!(
            "({}%3A{})::",
            scenario["file"].as_str().expect("file"),
            step["line"]
        )),
        "{annotation}"
    );
    assert!(
        annotation.contains("::And the token response names the granted scope%0A"),
        "{annotation}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("::")).count(),
        1,
        "{stdout}"
    );
    // The job summary is appended, with the verdict, the failure and where the report is.
    let markdown = std::fs::read_to_string(summary_file.path()).expect("the job summary");
    assert!(
        markdown.starts_with("# Earlier step\n## onramp: ❌ NOT conformant"),
        "{markdown}"
    );
    assert!(markdown.contains("### Failures (1)"), "{markdown}");
    assert!(
        markdown.contains("**Token › The code is exchanged"),
        "{markdown}"
    );
    assert!(
        markdown.contains("```text\n"),
        "the message in a block: {markdown}"
    );
    assert!(
        markdown.contains("[this run](https://github.example/acme/app/actions/runs/42#artifacts)"),
        "{markdown}"
    );
    assert!(markdown.contains("report.html"), "{markdown}");
}

#[test]
fn verbose_traces_every_exchange_and_colour_is_only_where_asked() {
    let run = Run::new(&[
        "--verbose",
        "--color",
        "always",
        "--tags",
        "@authorization or @token",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let stdout = run.stdout();
    assert!(
        stdout.contains("POST http://127.0.0.1:"),
        "exchanges traced: {stdout}"
    );
    assert!(stdout.contains("/oauth2/token 200 ("), "{stdout}");
    assert!(
        stdout.contains("browser click \"Click here to confirm identity\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("\u{1b}[32m"),
        "coloured as asked: {stdout:?}"
    );
    // Asked-for colour is the terminal's: no report file holds an escape code.
    let text_files = every_file(&run.report())
        .into_iter()
        .filter(|f| !f.extension().is_some_and(|e| e == "png" || e == "mp4"));
    for file in text_files {
        let bytes = std::fs::read(&file).expect("readable");
        assert!(
            !bytes.contains(&0x1b),
            "{} holds an escape code",
            file.display()
        );
    }
    // The timeline: every step, the browser actions and the exchanges on one axis.
    let summary = run.summary();
    let timeline = &summary["timeline"];
    let lanes: Vec<&str> = timeline["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .filter_map(|s| s["lane"].as_str())
        .collect();
    for lane in ["feature", "scenario", "step", "browser", "http"] {
        assert!(lanes.contains(&lane), "{lane} on the timeline");
    }
    let exchanges = summary["exchanges"].as_array().expect("exchanges").len();
    assert_eq!(lanes.iter().filter(|l| **l == "http").count(), exchanges);
    assert!(!timeline["slowest"].as_array().expect("slowest").is_empty());
    let html = std::fs::read_to_string(run.report().join("report.html")).expect("report");
    assert!(
        html.contains("<svg class=\"timeline\""),
        "the report draws it"
    );
}

#[test]
fn no_color_and_a_pipe_mean_no_escape_codes() {
    let run = Run::with(&["--tags", "@authorization"], |command| {
        command.env("NO_COLOR", "1");
    });
    assert_eq!(run.code(), 0, "{}", run.stdout());
    assert!(!run.stdout().contains('\u{1b}') && !run.stderr().contains('\u{1b}'));
    let plain = Run::new(&["--tags", "@authorization"]);
    assert!(
        !plain.stdout().contains('\u{1b}'),
        "a pipe is not a terminal"
    );
}

/// A `PATH` of its own in `dir`: chromium and chromedriver, and `ffmpeg` as given (a script,
/// or none).
fn bare_path(dir: &std::path::Path, ffmpeg: Option<&str>) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in ["chromium", "chromedriver"] {
        let found = which::which(tool).expect("chromium and chromedriver on PATH");
        std::os::unix::fs::symlink(found, bin.join(tool)).expect("linked");
    }
    if let Some(script) = ffmpeg {
        let path = bin.join("ffmpeg");
        std::fs::write(&path, script).expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("mode");
    }
    bin
}

#[test]
fn the_recording_is_what_was_asked_for_and_a_broken_ffmpeg_falls_back() {
    let recording = |run: &Run| {
        let summary = run.summary();
        (
            summary["recording"]["media_type"]
                .as_str()
                .map(str::to_owned),
            summary["errors"].to_string(),
        )
    };
    let none = Run::new(&["--recording", "none", "--tags", "@authorization"]);
    assert_eq!(none.code(), 0, "{}", none.stdout());
    assert_eq!(none.summary()["recording"], Value::Null);
    assert!(
        !none.report().join("recording.png").exists()
            && !none.report().join("recording.mp4").exists()
    );

    let apng = Run::new(&["--recording", "apng", "--tags", "@authorization"]);
    assert_eq!(recording(&apng).0.as_deref(), Some("image/apng"));
    assert!(apng.report().join("recording.png").is_file());

    // mp4 without ffmpeg is a usage error before anything starts.
    let tools = tempfile::tempdir().expect("temp dir");
    let no_ffmpeg = bare_path(&tools.path().join("none"), None);
    let mp4 = Run::with(
        &["--recording", "mp4", "--tags", "@authorization"],
        |command| {
            command.env("PATH", &no_ffmpeg);
        },
    );
    assert_eq!(mp4.code(), 2, "{}", mp4.stderr());
    assert!(
        mp4.stderr()
            .contains("--recording mp4 needs ffmpeg on PATH"),
        "{}",
        mp4.stderr()
    );

    // An ffmpeg that fails: auto falls back to the animated PNG, mp4 says why there is none.
    let broken = bare_path(
        &tools.path().join("broken"),
        Some("#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n"),
    );
    let auto = Run::with(&["--tags", "@authorization"], |command| {
        command.env("PATH", &broken);
    });
    assert_eq!(auto.code(), 0, "{}", auto.stdout());
    assert_eq!(recording(&auto).0.as_deref(), Some("image/apng"));
    assert!(!auto.report().join("recording.mp4").exists());
    let asked = Run::with(
        &["--recording", "mp4", "--tags", "@authorization"],
        |command| {
            command.env("PATH", &broken);
        },
    );
    let (media, errors) = recording(&asked);
    assert_eq!(media, None);
    assert!(
        errors.contains("no recording")
            && errors.contains("ffmpeg failed")
            && errors.contains("Unknown encoder libx264"),
        "{errors}"
    );
}

// .ci/run installs ffmpeg, so this runs there; without it the test above covers every path
// that does not need a real encoder, and this one is reported as ignored (see build.rs).
#[test]
#[cfg_attr(
    not(onramp_ffmpeg),
    ignore = "ffmpeg was not on PATH when the tests were built: the MP4 recording is not tested"
)]
fn with_ffmpeg_the_recording_is_an_mp4_made_during_the_run() {
    let run = Run::new(&["--tags", "@authorization"]);
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    assert_eq!(summary["recording"]["media_type"], "video/mp4");
    let frames = summary["recording"]["frames"].as_u64().expect("frames");
    assert_eq!(
        frames as usize,
        summary["screenshots"].as_array().expect("shots").len()
    );
    let bytes = std::fs::read(run.report().join("recording.mp4")).expect("the MP4");
    assert_eq!(&bytes[4..8], b"ftyp", "an MP4 file");
    // Each frame shows for 1.5 s: ffprobe says how long the video is.
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(run.report().join("recording.mp4"))
        .output()
        .expect("ffprobe runs");
    let seconds: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .expect("a duration");
    assert!(
        (seconds - frames as f64 * 1.5).abs() < 0.6,
        "{seconds} s for {frames} frames"
    );
}

#[test]
fn several_targets_run_at_once_on_one_chromedriver_each_with_its_report_and_one_index() {
    let files = tempfile::tempdir().expect("temp dir");
    let leaky = common::write(
        files.path(),
        "leaky.toml",
        "name = \"leaky plan\"\n[sandbox]\nfaults = [\"cross-member-leak:Coverage\"]\n",
    );
    // Every chromedriver started leaves a line here.
    let log = files.path().join("drivers.log");
    let real = which("chromedriver");
    let wrapper = common::write(
        files.path(),
        "chromedriver",
        &format!(
            "#!/bin/sh\necho started >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let run = Run::with(
        &[
            "--target",
            "sandbox",
            "--target",
            "sandbox:bluebutton",
            "--target",
            "sandbox",
            "--target",
            leaky.to_str().expect("utf-8"),
            "--jobs",
            "4",
            "--tags",
            "@sign-in or @isolation",
            "--recording",
            "none",
        ],
        |command| {
            command.env("ONRAMP_CHROMEDRIVER", &wrapper);
        },
    );
    // The worst outcome: the leaky plan fails.
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let started = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        started.lines().count(),
        1,
        "one chromedriver for every session"
    );
    assert!(
        run.stdout().contains("[leaky-plan] NOT conformant"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("4 targets (3 conformant, 1 not)"),
        "{}",
        run.stdout()
    );

    let index = run.report();
    let combined: Value = serde_json::from_str(
        &std::fs::read_to_string(index.join("summary.json")).expect("combined summary"),
    )
    .expect("JSON");
    assert_eq!(combined["exit_code"], 1);
    assert_eq!(combined["outcome"], "failed");
    assert_eq!(combined["jobs"], 4);
    let targets = combined["targets"].as_array().expect("targets");
    let dirs: Vec<&str> = targets.iter().filter_map(|t| t["dir"].as_str()).collect();
    assert_eq!(
        dirs,
        ["sandbox", "sandbox-bluebutton", "sandbox-2", "leaky-plan"]
    );
    let outcomes: Vec<&str> = targets
        .iter()
        .filter_map(|t| t["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["passed", "passed", "passed", "failed"]);
    for (dir, target) in dirs.iter().zip(targets) {
        let own: Value = serde_json::from_str(
            &std::fs::read_to_string(index.join(dir).join("summary.json")).expect("own summary"),
        )
        .expect("JSON");
        assert_eq!(own["target"]["name"], target["name"]);
        assert_eq!(own["members"].as_array().map(Vec::len), Some(2), "{dir}");
        assert!(index.join(dir).join("report.html").is_file());
    }
    let junit = std::fs::read_to_string(index.join("junit.xml")).expect("junit");
    assert_eq!(junit.matches("<testsuite ").count(), 4, "{junit}");
    assert!(junit.contains("<testsuite name=\"leaky-plan\"") && junit.contains("<failure"));
    let html = std::fs::read_to_string(index.join("index.html")).expect("index");
    for dir in dirs {
        assert!(
            html.contains(&format!("href=\"{dir}/report.html\"")),
            "{dir}"
        );
    }

    // A target that does not resolve stops them all before anything starts.
    let run = Run::new(&["--target", "sandbox", "--target", "nowhere.toml"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("--target nowhere.toml"),
        "{}",
        run.stderr()
    );
}

/// Where `tool` is on PATH.
fn which(tool: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}
