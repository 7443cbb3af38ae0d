//! Opt-in: the published sample data in `../shared/corpus` is valid R4, so onramp must report
//! nothing on it. Run with `ONRAMP_CORPUS=../shared/corpus cargo test --test corpus`.

mod common;

use common::{code, run, stderr, stdout};

#[test]
fn published_sample_data_has_no_findings() {
    let Ok(corpus) = std::env::var("ONRAMP_CORPUS") else {
        eprintln!("skipped: set ONRAMP_CORPUS to the shared corpus folder to run this test");
        return;
    };
    let path = std::path::Path::new(&corpus);
    if !path.is_dir() {
        eprintln!("skipped: ONRAMP_CORPUS={corpus} is not a folder");
        return;
    }
    let output = run(&["validate", "--format", "json", &corpus]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("JSON output; stderr: {}", stderr(&output)));
    assert_eq!(
        document["findings"],
        serde_json::json!([]),
        "{}",
        stdout(&output)
    );
    assert!(document["resources"].as_u64().unwrap_or(0) > 50);
    assert_eq!(code(&output), 0);
}
