//! The Spark example as a payer would run it on its export: a generated Bulk Data export of
//! 100,000 resources with known errors, validated by `examples/spark/validate_export.py` in
//! Spark's local mode with this build's binary, and every error found exactly once.
//!
//! It needs PySpark and a Java runtime (`.ci/run` installs both and sets
//! `ONRAMP_REQUIRE_SPARK`). Without them it is skipped, saying so, unless that is set.

mod common;

use std::io::Write as _;
use std::process::Command;

const RESOURCES: usize = 100_000;

fn spark_available() -> Result<(), String> {
    let python = Command::new("python3")
        .args(["-c", "import pyspark"])
        .output()
        .map_err(|e| format!("no python3: {e}"))?;
    if !python.status.success() {
        return Err("PySpark is not installed (python3 -m pip install pyspark)".into());
    }
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|o| o.status.success()) {
        return Err("no Java runtime (apt-get install -y default-jre-headless)".into());
    }
    Ok(())
}

#[test]
fn a_spark_job_finds_every_error_of_an_export_once() {
    if let Err(why) = spark_available() {
        assert!(
            std::env::var_os("ONRAMP_REQUIRE_SPARK").is_none(),
            "ONRAMP_REQUIRE_SPARK is set but the Spark test cannot run: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // Two output files; every 997th resource has a gender no value set has (schema), every
    // 1,009th a day that does not exist (structure).
    let (mut enum_errors, mut date_errors) = (0, 0);
    let mut outputs = Vec::new();
    for part in 0..2 {
        let name = format!("Patient.{part}.ndjson");
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(dir.path().join(&name)).expect("file"));
        for i in (part * RESOURCES / 2)..((part + 1) * RESOURCES / 2) {
            let (gender, birth) = if i % 997 == 0 {
                enum_errors += 1;
                ("mal", "1970-01-01")
            } else if i % 1009 == 0 {
                date_errors += 1;
                ("female", "2021-02-30")
            } else {
                ("female", "1970-01-01")
            };
            writeln!(
                file,
                r#"{{"resourceType":"Patient","id":"p{i}","gender":"{gender}","birthDate":"{birth}","name":[{{"family":"F{i}"}}]}}"#
            )
            .expect("write");
        }
        outputs.push(serde_json::json!({"type": "Patient", "url": name}));
    }
    let manifest = common::write(
        dir.path(),
        "manifest.json",
        &serde_json::json!({
            "transactionTime": "2026-12-07T10:00:00Z",
            "request": "https://payer.example/fhir/Patient/$export",
            "requiresAccessToken": true,
            "output": outputs,
            "error": []
        })
        .to_string(),
    );
    let out = dir.path().join("findings.parquet");
    let output = Command::new("python3")
        .arg(common::repo().join("examples/spark/validate_export.py"))
        .args(["--master", "local[2]", "--partitions", "4", "--onramp"])
        .arg(env!("CARGO_BIN_EXE_onramp"))
        .arg("--out")
        .arg(&out)
        .arg(&manifest)
        .output()
        .expect("the Spark job runs");
    let text = common::stdout(&output);
    assert!(
        output.status.success(),
        "{text}\n{}",
        common::stderr(&output)
    );
    let errors = enum_errors + date_errors;
    assert!(
        text.contains(&format!("onramp: {errors} findings in {errors} resources")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  Patient  schema  enum  {enum_errors}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  Patient  structure  date  {date_errors}\n")),
        "{text}"
    );
    assert!(out.join("_SUCCESS").is_file(), "the Parquet was written");
}
