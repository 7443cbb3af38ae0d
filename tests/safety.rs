//! Safety of the outputs, end to end: a run against a payer that serves hostile text, with a
//! planted client secret and real codes and tokens. No output file (nor the terminal)
//! holds a secret, and the HTML report shows the hostile text inert in a real browser.

mod common;

use std::path::{Path, PathBuf};

use onramp::sandbox::{Client, Sandbox, SandboxConfig};
use serde_json::json;

const PLANTED_SECRET: &str = "planted-client-secret-7f3a9c";
const HOSTILE: &str = "<script>document.title='pwned'</script>\"><img src=x onerror=\"document.title='pwned'\">{{handlebars}}";
/// Every class of control text a payer can send: CSI and OSC escapes, BEL, a C1 control,
/// the Unicode line and paragraph separators, a carriage return, and lines that would be
/// CI workflow commands.
const CONTROLS: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\u{2028}x\u{2029}\r\n::warning file=x::forged\n##[error]forged\u{0}";

fn hostile_data(dir: &Path) {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {
                "resourceType": "Patient", "id": "p1",
                "meta": {"source": HOSTILE},
                "identifier": [{"type": {"coding": [{"code": "MB"}]}, "value": "123456789123"}],
                "name": [{"family": "Allen", "given": ["John"], "text": HOSTILE}],
                "gender": format!("{CONTROLS}{HOSTILE}"),
                "birthDate": "1950-10-19",
                "address": [{"line": [HOSTILE], "postalCode": "02114"}]
            }},
            {"resource": {
                "resourceType": "Coverage", "id": "c1", "status": "active",
                "beneficiary": {"reference": "Patient/p1"},
                "payor": [{"reference": "Organization/o1", "display": HOSTILE}]
            }},
            {"resource": {"resourceType": "Organization", "id": "o1", "name": HOSTILE}},
            {"resource": {
                "resourceType": "ExplanationOfBenefit", "id": "e1", "status": "active",
                "type": {"text": HOSTILE}, "use": "claim",
                "patient": {"reference": "Patient/p1"},
                "created": "2026-01-01",
                "insurer": {"reference": "Organization/o1"},
                "provider": {"reference": "Practitioner/d1"},
                "outcome": "complete",
                "insurance": [{"focal": true, "coverage": {"reference": "Coverage/c1"}}],
                "item": [{"sequence": 1, "productOrService": {"text": HOSTILE}, "locationReference": {"reference": "Location/l1"}}]
            }},
            {"resource": {"resourceType": "Practitioner", "id": "d1", "name": [{"family": HOSTILE}]}},
            {"resource": {"resourceType": "Location", "id": "l1", "name": HOSTILE, "description": "{{#each x}}{{/each}}"}}
        ]
    });
    common::write(dir, "data/plan.json", &bundle.to_string());
}

fn files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_holds_a_secret_and_hostile_text_stays_inert() {
    let dir = tempfile::tempdir().expect("temp dir");
    hostile_data(dir.path());
    let sandbox = Sandbox::start(SandboxConfig {
        data: Some(dir.path().join("data")),
        clients: vec![Client {
            client_id: "safety-client".into(),
            client_secret: Some(PLANTED_SECRET.into()),
            redirect_uris: Vec::new(),
            any_loopback: true,
        }],
        ..SandboxConfig::default()
    })
    .await
    .expect("the sandbox starts");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let target = common::write(
        dir.path(),
        "target.toml",
        &format!(
            "name = \"hostile payer\"\n[endpoints]\nauthorize = \"{}\"\ntoken = \"{}\"\nfhir_base = \"{}\"\n\n[client]\nid = \"safety-client\"\nsecret = \"${{SAFETY_SECRET}}\"\nredirect_uri = \"http://127.0.0.1:{port}/callback\"\nauth = \"basic\"\n\n[oauth]\npkce = true\n\n[member]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\nzip = \"02114\"\n\n[payer]\nsandbox_sync_to = \"sync@payer.example\"\nproduction_access_to = \"access@payer.example\"\n",
            sandbox.authorize_url(),
            sandbox.token_url(),
            sandbox.fhir_base()
        ),
    );
    let out = dir.path().join("reports");
    let output = run(dir.path(), &target, &[]).await;
    let stdout = common::stdout(&output);
    assert_eq!(
        common::code(&output),
        1,
        "the hostile Patient is not valid R4:\n{stdout}"
    );

    // Every secret the run saw: the planted client secret and every code and token issued.
    let mut secrets = sandbox.issued_secrets();
    assert!(
        secrets.len() >= 4,
        "codes and tokens were issued: {}",
        secrets.len()
    );
    secrets.push(PLANTED_SECRET.to_owned());
    let report = out.join("latest");
    assert_nowhere(&report, &output, &secrets);
    let terminal = format!("{stdout}{}", common::stderr(&output));
    assert!(
        terminal.contains("[2J") && terminal.contains("::warning file=x::forged"),
        "the payer's control text reached the terminal, inert:\n{terminal}"
    );

    // The hostile text is in the report, as text.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("summary.json")).expect("summary"))
            .expect("JSON");
    assert!(
        summary.to_string().contains("document.title"),
        "the hostile values reached the report's model"
    );
    let driver = onramp::browser::ChromeDriver::start()
        .await
        .expect("chromedriver");
    let browser =
        onramp::browser::Browser::open(driver.url(), &onramp::browser::BrowserOptions::default())
            .await
            .expect("browser");
    browser
        .goto(&format!(
            "file://{}",
            report
                .join("report.html")
                .canonicalize()
                .expect("path")
                .display()
        ))
        .await
        .expect("opens");
    assert!(
        browser
            .title()
            .await
            .expect("title")
            .starts_with("onramp report")
    );
    assert_eq!(browser.count("script").await.expect("count"), 0);
    assert_eq!(browser.count("img[onerror]").await.expect("count"), 0);
    let text = browser.text().await.expect("text");
    assert!(
        text.contains("<script>document.title='pwned'</script>"),
        "shown as text"
    );
    browser.close().await.expect("closed");
    sandbox.shutdown().await;
}

/// `onramp run --target TARGET ARGS` in `dir` (reports in `dir/reports`), with the planted
/// client secret in the environment, and every output on: the verbose trace of each
/// exchange, GitHub annotations, and a job summary in `dir/step-summary.md`.
async fn run(dir: &Path, target: &Path, args: &[&str]) -> std::process::Output {
    let (out, tmp) = (dir.join("reports"), dir.join("tmp"));
    let step_summary = dir.join("step-summary.md");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let target = target.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        common::onramp()
            .args(["run", "--target"])
            .arg(&target)
            .arg("--out")
            .arg(&out)
            .args(["--verbose", "--annotations", "github"])
            .args(&args)
            .env("GITHUB_STEP_SUMMARY", &step_summary)
            .env("SAFETY_SECRET", PLANTED_SECRET)
            .env("TMPDIR", &tmp)
            .output()
            .expect("onramp runs")
    })
    .await
    .expect("joined")
}

/// None of `secrets` appears in any file under `report` (every output is there), in the
/// job summary beside the reports' folder, nor in `output`'s terminal text.
fn assert_nowhere(report: &Path, output: &std::process::Output, secrets: &[String]) {
    let mut written = files(&report.canonicalize().expect("a report"));
    let step_summary = report
        .parent()
        .and_then(Path::parent)
        .expect("reports in a folder")
        .join("step-summary.md");
    assert!(step_summary.is_file(), "the job summary was written");
    written.push(step_summary);
    for expected in [
        "summary.json",
        "report.html",
        "junit.xml",
        "cucumber.json",
        "checklist.md",
        "sandbox-sync.eml",
    ] {
        assert!(
            written.iter().any(|p| p.ends_with(expected)),
            "{expected} written"
        );
    }
    // A run that did not pass drafts no production-access request: it says why instead.
    assert!(
        written
            .iter()
            .any(|p| p.ends_with("production-access.eml") || p.ends_with("not-drafted.txt")),
        "the production-access draft, or why there is none"
    );
    for file in &written {
        let bytes = std::fs::read(file).expect("readable");
        for secret in secrets {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} holds {secret}", file.display());
        }
    }
    let terminal = format!("{}{}", common::stdout(output), common::stderr(output));
    assert_inert(&written, &terminal);
    for secret in secrets {
        assert!(
            !terminal.contains(secret.as_str()),
            "the terminal shows {secret}"
        );
    }
}

/// No output holds a payer's control text raw: no file has an escape, BEL, C1 or NUL byte
/// (JSON and XML escape them; text shows them escaped), and the terminal has none of those,
/// no line or paragraph separator, and no line a CI runner would take as a command.
fn assert_inert(written: &[PathBuf], terminal: &str) {
    let raw = |text: &str| {
        text.chars()
            .find(|c| matches!(*c, '\u{0}' | '\u{7}' | '\u{1b}' | '\u{80}'..='\u{9f}'))
    };
    for file in written {
        if file.extension().is_some_and(|x| x == "png" || x == "mp4") {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(file).expect("readable")).into_owned();
        assert_eq!(
            raw(&text),
            None,
            "{} holds raw control text",
            file.display()
        );
    }
    assert_eq!(raw(terminal), None, "the terminal shows raw control text");
    assert!(
        !terminal.contains('\u{2028}') && !terminal.contains('\u{2029}'),
        "the terminal shows a raw line separator"
    );
    for line in terminal.lines() {
        let line = line.trim_start();
        assert!(
            !line.starts_with("::warning file=x") && !line.starts_with("##[error]forged"),
            "a payer's text became a CI command: {line}"
        );
    }
}

/// A live code in a failure message (the browser sent to the wrong path of the app, with the
/// code in its address) reaches no output: not summary.json, not the HTML, not junit.xml or
/// cucumber.json, not the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_code_in_a_failure_message_reaches_no_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = Sandbox::start(SandboxConfig {
        faults: vec!["wrong-redirect".parse().expect("fault")],
        clients: vec![Client {
            client_id: "safety-client".into(),
            client_secret: Some(PLANTED_SECRET.into()),
            redirect_uris: Vec::new(),
            any_loopback: true,
        }],
        ..SandboxConfig::default()
    })
    .await
    .expect("the sandbox starts");
    let target = common::write(
        dir.path(),
        "target.toml",
        &format!(
            "[endpoints]\nauthorize = \"{}\"\ntoken = \"{}\"\nfhir_base = \"{}\"\n\n[client]\nid = \"safety-client\"\nsecret = \"${{SAFETY_SECRET}}\"\nredirect_uri = \"http://127.0.0.1:{}/callback\"\n\n[member]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\nzip = \"02114\"\n\n[payer]\nsandbox_sync_to = \"sync@payer.example\"\nproduction_access_to = \"access@payer.example\"\n",
            sandbox.authorize_url(),
            sandbox.token_url(),
            sandbox.fhir_base(),
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("port")
                .local_addr()
                .expect("addr")
                .port()
        ),
    );
    let out = dir.path().join("reports");
    let output = run(dir.path(), &target, &["--tags", "@authorization"]).await;
    assert_eq!(common::code(&output), 1, "{}", common::stdout(&output));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("latest/summary.json")).expect("summary"))
            .expect("JSON");
    let failed = summary["scenarios"][0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["status"] == "failed")
        .expect("a failed step");
    assert_eq!(
        failed["text"],
        "the browser is sent back to the app's redirect URI"
    );
    let message = failed["error"].as_str().expect("message");
    assert!(
        message.contains("/callback/elsewhere?code=[redacted]&state="),
        "the code was in the failure path, blanked: {message}"
    );
    let mut secrets = sandbox.issued_secrets();
    assert_eq!(secrets.len(), 1, "one code was issued");
    secrets.push(PLANTED_SECRET.to_owned());
    assert_nowhere(&out.join("latest"), &output, &secrets);
    sandbox.shutdown().await;
}

#[test]
fn the_access_token_never_follows_a_link_to_another_origin() {
    // The sandbox names itself `localhost` in the next links of two types: the same server
    // by another origin, which would take the token if onramp sent it.
    let run = common::run::Run::new(&[
        "--sandbox-fault",
        "foreign-next-link:ExplanationOfBenefit",
        "--sandbox-fault",
        "foreign-next-link:Coverage",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let summary = run.summary();
    let exchanges = summary["exchanges"].as_array().expect("exchanges");
    assert!(!exchanges.is_empty());
    for exchange in exchanges {
        let url = exchange["url"].as_str().unwrap_or_default();
        assert!(!url.contains("//localhost"), "a request went to {url}");
    }
    let failed = run.failed_steps();
    assert!(
        failed
            .iter()
            .any(|f| f.step == "every page is a searchset Bundle"
                && f.error.contains("http://localhost:")),
        "{failed:#?}"
    );
}

/// A payer whose password field is `type="text"` shows the typed password on screen: onramp
/// masks it before every screenshot, so the filled-in form's image is the very image a
/// password field makes (pixel for pixel), and the record says it was masked.
#[test]
fn a_password_shown_as_text_never_reaches_an_image() {
    let screenshot = |faults: &[&str]| {
        let mut args = vec!["--target", "sandbox:bluebutton", "--tags", "@sign-in"];
        for fault in faults {
            args.extend(["--sandbox-fault", fault]);
        }
        let run = common::run::Run::new(&args);
        assert_eq!(run.code(), 0, "{}", run.stdout());
        let png = std::fs::read(run.report().join("screenshots/02-form-filled-in.png"))
            .expect("the filled-in form's screenshot");
        let notes = run.summary()["notes"].to_string();
        (
            png,
            notes.contains("it is masked in every screenshot and recording"),
        )
    };
    let (masked, said_masked) = screenshot(&["password-as-text"]);
    let (password_field, said_plain) = screenshot(&[]);
    assert!(
        masked == password_field,
        "the filled-in form with the password as text must look exactly as with a password field"
    );
    assert!(said_masked, "the record says the field was masked");
    assert!(!said_plain, "a password field needs no mask");
}
