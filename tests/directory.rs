//! The public half of CMS-9115-F: the Provider Directory (Plan-Net) and the drug formulary
//! (US Drug Formulary). The sandbox serves both as FHIR says (string searches ignore case
//! and accents, chains, `_revinclude`, paging), a target says where a payer's are (or has
//! none, and the scenarios are skipped saying so), an unreachable one is "could not test",
//! and a broken reference in the directory fails the references check.

mod common;

use common::run::Run;
use common::sandbox::{http, start};
use onramp::sandbox::SandboxConfig;
use onramp::sandbox::data::books::Book;
use serde_json::Value;

async fn get(url: &str) -> (u16, Value) {
    let response = http().get(url).send().await.expect("the sandbox answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ids(bundle: &Value) -> Vec<(String, String, String)> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["resource"]["resourceType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["resource"]["id"].as_str().unwrap_or_default().to_owned(),
                e["search"]["mode"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_sandbox_directory_searches_as_fhir_says() {
    let sandbox = start(SandboxConfig::default()).await;
    let base = sandbox.book_base(Book::Directory);
    // A string search is a prefix, without regard to case or accents: "garcia" finds García.
    let (status, found) = get(&format!("{base}/Practitioner?family=garcia&_count=100")).await;
    assert_eq!(status, 200, "{found}");
    assert!(found["total"].as_u64().is_some_and(|n| n > 0), "{found}");
    for entry in found["entry"].as_array().expect("entries") {
        assert_eq!(entry["resource"]["name"][0]["family"], "García", "{entry}");
    }
    // A chain: roles whose location is in Anytown (asked in lower case), and only those.
    let (_, roles) = get(&format!(
        "{base}/PractitionerRole?location.address-city=anytown&_include=PractitionerRole:location&_count=100"
    ))
    .await;
    let entries = ids(&roles);
    assert!(
        entries
            .iter()
            .any(|(k, _, m)| k == "PractitionerRole" && m == "match")
    );
    for (kind, id, mode) in &entries {
        if kind == "Location" {
            assert_eq!(mode, "include");
            let (_, location) = get(&format!("{base}/Location/{id}")).await;
            assert_eq!(location["address"]["city"], "Anytown", "{location}");
        }
    }
    // _revinclude brings the roles of the practitioner, marked as included.
    let (_, practitioner) = get(&format!(
        "{base}/Practitioner?_id=HansSolo&_revinclude=PractitionerRole:practitioner"
    ))
    .await;
    let entries = ids(&practitioner);
    assert_eq!(
        entries[0],
        ("Practitioner".into(), "HansSolo".into(), "match".into())
    );
    assert!(
        entries[1..]
            .iter()
            .all(|(k, _, m)| k == "PractitionerRole" && m == "include")
    );
    assert!(entries.len() > 1, "{entries:?}");
    // Paging by _offset, to the end.
    let mut next = Some(format!("{base}/PractitionerRole?_count=40"));
    let mut seen = 0;
    while let Some(url) = next.take() {
        let (_, page) = get(&url).await;
        seen += page["entry"].as_array().map_or(0, Vec::len);
        next = page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned);
    }
    assert_eq!(seen, 150, "30 practitioners, five roles each");
    // What a directory must not do or cannot mean.
    let (status, outcome) = get(&format!("{base}/Patient")).await;
    assert_eq!(status, 404, "{outcome}");
    let (status, outcome) = get(&format!("{base}/Practitioner?shoe-size=9")).await;
    assert_eq!(status, 400, "{outcome}");
    assert!(outcome.to_string().contains("shoe-size"), "{outcome}");
    // The formulary: the plan the members' Coverage names, and its drugs by RxNorm code.
    let formulary = sandbox.book_base(Book::Formulary);
    let (_, plans) = get(&format!(
        "{formulary}/InsurancePlan?identifier=DHP-GOLD-PPO"
    ))
    .await;
    assert_eq!(plans["total"], 1, "{plans}");
    let (_, drugs) = get(&format!(
        "{formulary}/MedicationKnowledge?code=http://www.nlm.nih.gov/research/umls/rxnorm|1000091"
    ))
    .await;
    assert_eq!(drugs["total"], 1, "{drugs}");
}

#[tokio::test]
async fn a_directory_that_requires_a_token_says_so_with_401() {
    let sandbox = start(SandboxConfig {
        faults: vec!["directory-requires-token".parse().expect("a fault")],
        ..SandboxConfig::default()
    })
    .await;
    let base = sandbox.book_base(Book::Directory);
    let response = http()
        .get(format!("{base}/Practitioner"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let with = http()
        .get(format!("{base}/Practitioner"))
        .bearer_auth("anything")
        .send()
        .await
        .expect("answers");
    assert_eq!(with.status().as_u16(), 200);
}

/// A remote target at the sandbox's Patient Access endpoints, with `more` appended.
fn remote(sandbox: &onramp::sandbox::Sandbox, more: &str) -> String {
    let origin = sandbox.origin();
    format!(
        "[endpoints]\nauthorize = \"{}\"\ntoken = \"{}\"\nfhir_base = \"{}\"\n\n\
         [client]\nid = \"onramp-demo-client\"\nsecret = \"onramp-demo-secret\"\nredirect_uri = \"{origin}/callback\"\n\n\
         [member]\nfirst_name = \"John\"\nlast_name = \"Allen\"\nbirth_date = \"10/19/1950\"\nmember_id = \"123456789123\"\nzip = \"02114\"\n\n\
         [http]\ntimeout = \"3s\"\nconnect_timeout = \"1s\"\nretries = 0\n\n{more}",
        sandbox.authorize_url(),
        sandbox.token_url(),
        sandbox.fhir_base(),
    )
}

fn in_background(toml: String, tags: &'static str) -> tokio::task::JoinHandle<Run> {
    tokio::task::spawn_blocking(move || Run::with_target("target.toml", &toml, tags))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_a_directory_skips_it_saying_why() {
    let sandbox = start(SandboxConfig::default()).await;
    let run = in_background(remote(&sandbox, ""), "@directory or @formulary")
        .await
        .expect("the run");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    for scenario in summary["scenarios"].as_array().expect("scenarios") {
        assert_eq!(scenario["status"], "skipped", "{scenario}");
        let why = scenario["steps"][0]["error"].as_str().unwrap_or_default();
        assert!(why.contains("the target has no ["), "{scenario}");
    }
    let verdicts: Vec<(&str, &str)> = summary["apis"]
        .as_array()
        .expect("apis")
        .iter()
        .map(|a| {
            (
                a["api"].as_str().unwrap_or(""),
                a["verdict"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("provider-directory", "not tested"),
            ("drug-formulary", "not tested")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payers_directory_and_formulary_are_tested_where_the_target_says() {
    let sandbox = start(SandboxConfig::default()).await;
    let more = format!(
        "[directory]\nfhir_base = \"{}\"\n\n[formulary]\nfhir_base = \"{}\"\ntoken = \"a-formulary-key\"\n",
        sandbox.book_base(Book::Directory),
        sandbox.book_base(Book::Formulary)
    );
    let run = in_background(remote(&sandbox, &more), "@directory or @formulary")
        .await
        .expect("the run");
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    let verdicts: Vec<&str> = summary["apis"]
        .as_array()
        .expect("apis")
        .iter()
        .map(|a| a["verdict"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(verdicts, ["conformant", "conformant"], "{}", run.stdout());
    // The formulary's key went with its reads, and nowhere into the outputs or the terminal.
    for file in ["summary.json", "report.html", "junit.xml", "cucumber.json"] {
        let text = std::fs::read_to_string(run.report().join(file)).expect(file);
        assert!(!text.contains("a-formulary-key"), "{file}");
    }
    assert!(!run.stdout().contains("a-formulary-key") && !run.stderr().contains("a-formulary-key"));
    assert_eq!(bearer(&summary, "/formulary/r4/"), Some(true));
    assert!(
        summary["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .any(|r| {
                r["api"] == "provider-directory"
                    && r["type"] == "PractitionerRole"
                    && r["count"] == 150
            })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_cannot_be_reached_is_could_not_test() {
    let sandbox = start(SandboxConfig::default()).await;
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("address").port()
    };
    let more = format!("[directory]\nfhir_base = \"http://127.0.0.1:{refused}/directory/r4\"\n");
    let run = in_background(remote(&sandbox, &more), "@directory")
        .await
        .expect("the run");
    assert_eq!(run.code(), 3, "{}", run.stdout());
    let failed = run.failed_steps();
    assert!(!failed.is_empty());
    for step in failed {
        assert_eq!(step.failure, "environment", "{step:#?}");
    }
}

#[test]
fn a_dangling_reference_in_the_directory_fails_the_references_check() {
    let run = Run::new(&[
        "--tags",
        "@directory",
        "--sandbox-fault",
        "dangling-reference:Endpoint",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let failed = run.failed_steps();
    assert!(
        failed.iter().any(
            |f| f.step == "every reference between the returned resources resolves"
                && f.error.contains("Organization/gone")
        ),
        "{failed:#?}"
    );
    for step in &failed {
        assert_eq!(step.failure, "conformance", "{step:#?}");
    }
}

/// Whether every exchange with `path` in its URL carried a bearer token (`Some(true)`), none
/// did (`Some(false)`), or there was none.
fn bearer(summary: &Value, path: &str) -> Option<bool> {
    let carried: Vec<bool> = summary["exchanges"]
        .as_array()
        .expect("exchanges")
        .iter()
        .filter(|e| e["url"].as_str().is_some_and(|u| u.contains(path)))
        .map(|e| {
            e["request_headers"].as_array().is_some_and(|headers| {
                headers.iter().any(|h| {
                    h[0].as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case("authorization"))
                        && h[1].as_str().is_some_and(|v| v.starts_with("Bearer "))
                })
            })
        })
        .collect();
    if carried.is_empty() {
        None
    } else if carried.iter().all(|c| *c) {
        Some(true)
    } else {
        assert!(
            carried.iter().all(|c| !c),
            "{path}: some with a token, some without"
        );
        Some(false)
    }
}

#[test]
fn the_directory_goes_without_a_token_and_a_member_formulary_with_the_members() {
    let run = Run::with_target(
        "member-formulary.toml",
        "[sandbox]\n\n[formulary]\nmember_token = true\n",
        "@directory or @formulary",
    );
    assert_eq!(run.code(), 0, "{}", run.stdout());
    let summary = run.summary();
    assert_eq!(bearer(&summary, "/directory/r4/"), Some(false));
    assert_eq!(bearer(&summary, "/formulary/r4/"), Some(true));
}
