//! Fuzzing every parser that reads outside input: documents for `validate` (and the pages a
//! run reads), target files, onboarding manifests, the sandbox's query strings and forms,
//! and FHIR responses as the run's search reads them. The inputs are structure-aware
//! (FHIR-shaped JSON, nesting past the 512-level limit, long strings, control characters,
//! bidirectional overrides, byte-level mutations). A panic, a 5xx from the sandbox or a
//! hang fails the test with proptest's smallest failing input.
//!
//! Each target runs `ONRAMP_FUZZ_CASES` cases (64 by default, so `cargo test` stays quick);
//! for a longer run: `ONRAMP_FUZZ_CASES=20000 cargo test --release --test fuzz -- --nocapture`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

fn cases() -> u32 {
    std::env::var("ONRAMP_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Run `body` on a thread with the stack onramp gives every thread that walks documents.
fn with_big_stack(body: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(onramp::validate::STACK_SIZE)
        .spawn(body)
        .expect("thread")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// Strings a hostile or unlucky input holds.
fn odd_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "\\PC{0,24}",
        2 => any::<String>(),
        1 => Just("\u{0}\u{1b}[2J\r\n\u{202e}\u{feff}\u{85}".to_owned()),
        1 => Just("é\u{301}𝔘 日本 \u{200d}👩‍👩‍👧".to_owned()),
        1 => (0usize..20_000).prop_map(|n| "x".repeat(n)),
        1 => Just("2026-02-30T25:61:00+99:99".to_owned()),
        1 => prop::sample::select(vec!["", "Patient/", "#", "urn:uuid:", "Patient/../../x", "%00"])
            .prop_map(str::to_owned),
    ]
    .boxed()
}

/// Element names FHIR resources use, and some they do not.
fn key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "resourceType", "id", "meta", "contained", "entry", "resource", "extension",
            "url", "valueString", "reference", "patient", "beneficiary", "status",
            "identifier", "type", "coding", "system", "code", "total", "link", "relation",
            "birthDate", "_birthDate", "item", "sequence", "text", "div",
        ])
        .prop_map(str::to_owned),
        1 => odd_string(),
    ]
    .boxed()
}

fn json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

/// A resource of a real (or unreal) type with FHIR-ish content.
fn resource() -> BoxedStrategy<Value> {
    (
        prop::sample::select(vec![
            "Patient",
            "Coverage",
            "ExplanationOfBenefit",
            "Organization",
            "Bundle",
            "OperationOutcome",
            "Basic",
            "NotAType",
            "",
        ]),
        json(),
    )
        .prop_map(|(kind, body)| {
            let mut object = match body {
                Value::Object(object) => object,
                other => Map::from_iter([("extension".to_owned(), other)]),
            };
            object.insert("resourceType".into(), Value::from(kind));
            Value::Object(object)
        })
        .boxed()
}

/// Nested arrays or objects, `levels` deep (past the limit or just inside it).
fn deep() -> BoxedStrategy<Vec<u8>> {
    (
        prop_oneof![1usize..600, 500usize..530, 600usize..60_000],
        any::<bool>(),
    )
        .prop_map(|(levels, arrays)| {
            let (open, close) = if arrays {
                ("[", "]")
            } else {
                (r#"{"resourceType":"Basic","contained":["#, "]}")
            };
            format!("{}{}", open.repeat(levels), close.repeat(levels)).into_bytes()
        })
        .boxed()
}

/// The bytes of a document: whole, deep, or damaged.
fn document() -> BoxedStrategy<Vec<u8>> {
    let whole = prop_oneof![resource(), json()].prop_map(|v| v.to_string().into_bytes());
    let damaged = (
        resource(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0u8..3,
    )
        .prop_map(|(v, at, byte, how)| {
            let mut bytes = v.to_string().into_bytes();
            let at = at.index(bytes.len() + 1);
            match how {
                0 => bytes.truncate(at),
                1 => bytes.insert(at, byte),
                _ => bytes
                    .splice(at..at, b"\xEF\xBB\xBF\xFF\xC0".iter().copied())
                    .for_each(drop),
            }
            bytes
        });
    prop_oneof![4 => whole, 2 => deep(), 2 => damaged, 1 => prop::collection::vec(any::<u8>(), 0..256)]
        .boxed()
}

#[test]
fn validation_takes_any_document() {
    with_big_stack(|| {
        let registry = onramp::validate::Registry::global();
        runner()
            .run(&document(), |bytes| {
                let checked = registry.check_bytes(&bytes);
                if onramp::validate::deeper_than(&bytes, onramp::validate::MAX_DEPTH).is_some() {
                    prop_assert!(checked.findings.iter().any(|f| f.keyword == "json"));
                }
                Ok(())
            })
            .expect("no panic");
    });
}

/// The depth pre-check skips strings in jumps; this is its definition, a byte at a time.
fn deeper_than_bytewise(bytes: &[u8], limit: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (at, &byte) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[test]
fn the_depth_check_agrees_with_a_byte_at_a_time_scan() {
    let bytes = prop_oneof![
        document(),
        prop::collection::vec(prop::sample::select(b"[]{}\"\\a ".to_vec()), 0..64),
    ];
    // Cheap cases: many of them.
    let mut runner = TestRunner::new(Config {
        cases: cases() * 16,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(bytes, 0usize..8), |(bytes, limit)| {
            prop_assert_eq!(
                onramp::validate::deeper_than(&bytes, limit),
                deeper_than_bytewise(&bytes, limit)
            );
            Ok(())
        })
        .expect("the same offset");
}

/// Every pointer into a value, for mutating valid resources anywhere.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (name, member) in map {
                let next = format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
                out.push(next.clone());
                pointers(member, next, out);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let next = format!("{at}/{index}");
                out.push(next.clone());
                pointers(item, next, out);
            }
        }
        _ => {}
    }
}

/// A resource the sandbox generates (valid at every tier), with one value anywhere in it
/// replaced by arbitrary JSON: what reaches the structure and profile walkers and the
/// FHIRPath evaluator deep inside otherwise-valid claims.
fn mutated_claim() -> BoxedStrategy<Vec<u8>> {
    use onramp::sandbox::data::Store;
    let plan = onramp::sandbox::data::generate::Generated::new(2, 4);
    let mut bases = Vec::new();
    for kind in [
        "ExplanationOfBenefit",
        "Coverage",
        "Patient",
        "Organization",
        "Practitioner",
    ] {
        bases.extend(plan.page(0, kind, 0, 4));
    }
    (
        prop::sample::select(bases),
        any::<prop::sample::Index>(),
        json(),
    )
        .prop_map(|(mut base, at, replacement)| {
            let mut all = Vec::new();
            pointers(&base, String::new(), &mut all);
            if !all.is_empty()
                && let Some(slot) = base.pointer_mut(&all[at.index(all.len())])
            {
                *slot = replacement;
            }
            base.to_string().into_bytes()
        })
        .boxed()
}

#[test]
fn every_tier_takes_any_document() {
    with_big_stack(|| {
        let (_, carin) = onramp::validate::catalog::Catalog::global()
            .ig(onramp::validate::catalog::CARIN)
            .expect("CARIN ships");
        let all_profiles: Vec<String> = carin.iter().map(|p| p.url.to_string()).collect();
        let validator = onramp::validate::Validator::default()
            .with_profiles(&all_profiles)
            .expect("the IG's profiles");
        let inputs = prop_oneof![2 => document(), 3 => mutated_claim()];
        runner()
            .run(&inputs, |bytes| {
                let checked = validator.check_bytes(&bytes);
                for finding in &checked.findings {
                    prop_assert!(!finding.message.is_empty());
                    prop_assert!(!finding.rule.is_empty());
                }
                Ok(())
            })
            .expect("no panic");
    });
}

#[test]
fn target_files_take_any_text() {
    let line = prop_oneof![
        Just("[sandbox]".to_owned()),
        Just("[client]".to_owned()),
        Just("[oauth]".to_owned()),
        Just("[member]".to_owned()),
        Just("[endpoints]".to_owned()),
        Just("[resources]".to_owned()),
        (key(), odd_string()).prop_map(|(k, v)| format!("{k:?} = {v:?}")),
        (key(), json()).prop_map(|(k, v)| format!("{k:?} = {v}")),
        prop::sample::select(vec![
            "faults = [\"latency=99999h\", \"status=999@2\"]",
            "timeout = \"-1s\"",
            "page_cap = 18446744073709551616",
            "scopes = [\"${UNSET}\", \"${X:-}\"]",
            "authorize = \"javascript:alert(1)\"",
            "fhir_base = \"http://[::1\"",
            "required = [\"NotAType\", \"\"]",
        ])
        .prop_map(str::to_owned),
        odd_string(),
    ];
    runner()
        .run(&prop::collection::vec(line, 0..12), |lines| {
            let text = lines.join("\n");
            let _ =
                onramp::config::Target::from_toml(&text, std::path::Path::new("fuzz.toml"), |_| {
                    None
                });
            Ok(())
        })
        .expect("no panic");
}

#[test]
fn onboarding_manifests_take_any_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("onboarding.toml");
    let line = prop_oneof![
        (key(), odd_string()).prop_map(|(k, v)| format!("{k:?} = {v:?}")),
        prop::sample::select(vec![
            "company = \"Acme\"",
            "logo = \"/dev/zero\"",
            "logo = \"../../../../etc/passwd\"",
            "privacy_policy = \"\\u0000\"",
            "[[contacts]]",
            "email = \"not an email\"",
        ])
        .prop_map(str::to_owned),
        odd_string(),
    ];
    runner()
        .run(&prop::collection::vec(line, 0..10), |lines| {
            std::fs::write(&manifest, lines.join("\n")).expect("written");
            let _ = onramp::checklist::check(
                Some(&manifest),
                &onramp::checklist::ItemList::shipped("1up-guide").unwrap_or_default(),
            );
            Ok(())
        })
        .expect("no panic");
}

/// A query string of search parameters the sandbox knows and does not, with odd values.
fn query() -> BoxedStrategy<String> {
    let name = prop::sample::select(vec![
        "_id",
        "patient",
        "beneficiary",
        "type",
        "identifier",
        "service-date",
        "service-start-date",
        "billable-period-start",
        "_lastUpdated",
        "_count",
        "_include",
        "_cursor",
        "_revinclude",
        "bogus",
        "",
        "%",
        "_count%00",
    ]);
    let value = prop_oneof![
        odd_string(),
        prop::sample::select(vec![
            "gt2020-01-01",
            "lt",
            "ge9999-99-99",
            "eq",
            "-1",
            "0",
            "18446744073709551616",
            "ExplanationOfBenefit:*",
            "Coverage:payor",
            "a|b|c",
            "%ZZ",
            "Patient/john-allen",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec((name, value), 0..6)
        .prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(n, v)| format!("{n}={}", urlencoding(&v)))
                .collect::<Vec<_>>()
                .join("&")
        })
        .boxed()
}

/// Percent-encode what a URL cannot hold, leaving `%` alone half of the time (broken
/// escapes are part of the input too).
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'%' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_sandbox_answers_any_query_and_form_without_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (sandbox, token) = runtime.block_on(async {
        let sandbox = common::sandbox::start(onramp::sandbox::SandboxConfig::default()).await;
        let token = common::sandbox::token_for(&sandbox, common::sandbox::JOHN).await;
        (sandbox, token)
    });
    let http = common::sandbox::http();
    let kinds = prop::sample::select(vec![
        "Patient",
        "Coverage",
        "ExplanationOfBenefit",
        "Organization",
        "Practitioner",
        "Location",
        "Bogus",
        "Patient/john-allen",
        "ExplanationOfBenefit/%00",
        "..",
    ]);
    let form = prop::collection::vec((key(), odd_string()), 0..8);
    runner()
        .run(&(kinds, query(), form), |(kind, query, form)| {
            runtime.block_on(async {
                let search = http
                    .get(format!("{}/{kind}?{query}", sandbox.fhir_base()))
                    .header("Authorization", format!("Bearer {token}"))
                    .send()
                    .await
                    .expect("the sandbox answers");
                prop_assert!(
                    search.status().as_u16() < 500,
                    "{kind}?{query}: {}",
                    search.status()
                );
                for url in [
                    sandbox.token_url(),
                    format!("{}/identity", sandbox.authorize_url()),
                ] {
                    let posted = http
                        .post(&url)
                        .form(&form)
                        .send()
                        .await
                        .expect("the sandbox answers");
                    prop_assert!(posted.status().as_u16() < 500, "{url}: {}", posted.status());
                }
                let authorize = http
                    .get(format!("{}?{query}", sandbox.authorize_url()))
                    .send()
                    .await
                    .expect("the sandbox answers");
                prop_assert!(authorize.status().as_u16() < 500, "authorize?{query}");
                Ok(())
            })
        })
        .expect("no server error");
}

#[test]
fn the_runs_search_reads_any_response() {
    with_big_stack(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_stack_size(onramp::validate::STACK_SIZE)
            .build()
            .expect("runtime");
        let body: Arc<Mutex<(u16, Vec<u8>)>> = Arc::new(Mutex::new((200, Vec::new())));
        let served = Arc::clone(&body);
        let base = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let address = listener.local_addr().expect("address");
            let app = axum::Router::new().fallback(move || {
                let (status, bytes) = served.lock().expect("body").clone();
                async move {
                    (
                        axum::http::StatusCode::from_u16(status)
                            .unwrap_or(axum::http::StatusCode::OK),
                        [("content-type", "application/fhir+json")],
                        bytes,
                    )
                }
            });
            tokio::spawn(async move { axum::serve(listener, app).await });
            url::Url::parse(&format!("http://{address}/r4")).expect("url")
        });
        let recorder = Arc::new(onramp::evidence::Recorder::new(None));
        let settings = onramp::config::HttpSettings {
            timeout: Duration::from_secs(5),
            retries: 0,
            ..onramp::config::HttpSettings::default()
        };
        let http = onramp::payer::http::Http::new(settings, recorder).expect("client");
        let token = onramp::infra::secret::Secret::new("fuzz-token");
        // Every tier, with the CARIN profiles the run applies by default.
        let validator = Arc::new(
            onramp::validate::Validator::default()
                .with_profiles(&onramp::config::ValidationSettings::carin_defaults(&[
                    "Patient".to_owned(),
                ]))
                .expect("the IG's profiles"),
        );
        let status = prop::sample::select(vec![200u16, 200, 200, 401, 404, 500, 302]);
        runner()
            .run(&(status, document()), |(status, bytes)| {
                *body.lock().expect("body") = (status, bytes);
                let result = runtime.block_on(onramp::payer::fhir::search(
                    &http,
                    &base,
                    "Patient",
                    &token,
                    onramp::payer::fhir::Paging {
                        page_size: Some(10),
                        page_cap: 3,
                    },
                    &validator,
                    |_, _, _| {},
                ));
                prop_assert!(result.pages.len() <= 3);
                Ok(())
            })
            .expect("no panic");
    });
}
