//! `onramp validate` as a user runs it: arguments, outputs, exit codes.

mod common;

use common::{code, run, run_with_stdin, stderr, stdout, write};

const GOOD: &str = r#"{"resourceType":"Patient","id":"good"}"#;
const BAD: &str = r#"{"resourceType":"Patient","id":"bad","gender":"mal"}"#;

#[test]
fn the_shipped_example_is_valid() {
    let output = run(&["validate", "examples/demo-member-bundle.json"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    // Codes of CPT, ICD-10-CM and CMS's place of service cannot be listed offline: counted
    // per value set, never a finding.
    assert_eq!(
        stdout(&output).trim(),
        "1 file, 8 resources: all valid; codes not judged offline in 3 value sets \
         (AMACPTCMSHCPCSProcedureCodes ×1, CDCICD910CMDiagnosisCodes ×1, CMSPlaceofServiceCodes ×1)"
    );
}

#[test]
fn the_shipped_problems_are_reported_with_lines_and_paths() {
    let output = run(&["validate", "examples/problems.ndjson"]);
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    assert!(
        text.contains("examples/problems.ndjson:2  Patient/patient-with-problems  Patient.birthDate  \"10/19/1950\" is not a valid FHIR date"),
        "{text}"
    );
    assert!(text.contains("examples/problems.ndjson:3  ExplanationOfBenefit/eob-with-problems  ExplanationOfBenefit.item[0].adjudication[1].amount.value  expected a number"), "{text}");
    // Each finding says its tier and rule; the structure and profile tiers find what the
    // schema lets through.
    assert!(text.contains("Patient.birthDate  \"10/19/1950\" is not a valid FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, with a real month and day  [schema pattern]"), "{text}");
    assert!(text.contains("examples/problems.ndjson:4  Coverage/coverage-with-problems  Coverage.status  \"ok\" is not in the value set fm-status (required binding): use one of active, cancelled, draft, entered-in-error  [structure binding]"), "{text}");
    assert!(text.contains("Coverage.period.end  \"2025-02-30\" is not a real dateTime: February 2025 has 28 days  [structure date]"), "{text}");
    assert!(
        text.contains(
            "Coverage.payor  C4BB-Coverage allows at most 1 payor, found 2  [profile cardinality]"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "1 file, 4 resources: 3 invalid (9 findings); 1 constraint not evaluated (per-1); codes not judged offline in"
        ),
        "{text}"
    );
}

#[test]
fn tiers_say_how_far_validation_goes() {
    let findings = |args: &[&str]| -> Vec<(String, String)> {
        let mut all = vec!["validate", "--format", "json"];
        all.extend_from_slice(args);
        all.push("examples/problems.ndjson");
        let output = run(&all);
        let document: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON document");
        document["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                (
                    f["tier"].as_str().unwrap_or_default().to_owned(),
                    f["rule"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let schema = findings(&["--tier", "schema"]);
    assert_eq!(schema.len(), 5, "{schema:?}");
    assert!(
        schema.iter().all(|(tier, _)| tier == "schema"),
        "{schema:?}"
    );
    let structure = findings(&["--tier", "structure"]);
    assert_eq!(structure.len(), 8, "{structure:?}");
    assert!(
        structure.iter().all(|(tier, _)| tier != "profile"),
        "{structure:?}"
    );
    let all = findings(&[]);
    assert_eq!(all.len(), 9, "{all:?}");
    assert!(
        all.contains(&("profile".into(), "cardinality".into())),
        "{all:?}"
    );
    assert!(
        all.contains(&("structure".into(), "date".into())),
        "{all:?}"
    );
}

#[test]
fn a_profile_can_be_given_and_an_unknown_one_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A Coverage that declares no profile: valid R4, but not the CARIN Coverage profile.
    let coverage = r#"{"resourceType":"Coverage","id":"c","status":"active","beneficiary":{"reference":"Patient/p"},"payor":[{"reference":"Organization/o"}]}"#;
    write(dir.path(), "coverage.json", coverage);
    let path = dir.path().join("coverage.json");
    let path = path.to_str().expect("utf-8");
    assert_eq!(code(&run(&["validate", path])), 0);
    let url = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Coverage";
    let given = run(&["validate", "--profile", url, path]);
    assert_eq!(code(&given), 1, "{}", stdout(&given));
    let text = stdout(&given);
    assert!(
        text.contains("C4BB-Coverage requires subscriberId"),
        "{text}"
    );
    assert!(
        text.contains("[profile invariant:coverage-meta-profile-version]"),
        "{text}"
    );
    let unknown = run(&[
        "validate",
        "--profile",
        "http://example.org/StructureDefinition/nope",
        path,
    ]);
    assert_eq!(code(&unknown), 2);
    assert!(
        stderr(&unknown).contains("unknown profile http://example.org/StructureDefinition/nope"),
        "{}",
        stderr(&unknown)
    );
    let schema_only = run(&["validate", "--tier", "schema", "--profile", url, path]);
    assert_eq!(code(&schema_only), 2);
}

#[test]
fn json_output_is_one_document_with_every_field() {
    let output = run(&[
        "validate",
        "--format",
        "json",
        "examples/problems.ndjson",
        "examples/demo-member-bundle.json",
    ]);
    assert_eq!(code(&output), 1);
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    assert_eq!(document["files"], 2);
    assert_eq!(document["resources"], 12);
    assert_eq!(document["invalid"], 3);
    let findings = document["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 9);
    assert_eq!(
        document["not_evaluated"],
        serde_json::json!({
            "binding:AMACPTCMSHCPCSProcedureCodes": 2,
            "binding:CDCICD910CMDiagnosisCodes": 2,
            "binding:CMSPlaceofServiceCodes": 2,
            "per-1": 2
        })
    );
    assert_eq!(document["profiles_not_checked"], serde_json::json!({}));
    let first = &findings[0];
    for field in [
        "file", "line", "entry", "resource", "path", "pointer", "keyword", "message", "tier",
        "rule",
    ] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }
    assert_eq!(first["file"], "examples/problems.ndjson");
    assert_eq!(first["line"], 2);
    assert_eq!(first["entry"], serde_json::Value::Null);
}

#[test]
fn directories_are_searched_recursively_in_name_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "b/two.json", BAD);
    write(dir.path(), "a/one.ndjson", &format!("{GOOD}\n\n{BAD}\n"));
    write(dir.path(), "a/notes.txt", "not FHIR");
    let root = dir.path().to_str().expect("utf-8 path");
    let output = run(&["validate", root]);
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with(&format!(
            "{root}/a/one.ndjson:3  Patient/bad  Patient.gender"
        )),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("{root}/b/two.json  Patient/bad  Patient.gender")),
        "{text}"
    );
    assert_eq!(lines[2], "2 files, 3 resources: 2 invalid (2 findings)");
}

#[test]
fn standard_input_takes_ndjson() {
    let output = run_with_stdin(&["validate", "-"], format!("{GOOD}\n{BAD}\n").as_bytes());
    assert_eq!(code(&output), 1);
    assert!(
        stdout(&output).starts_with("-:2  Patient/bad  Patient.gender"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn standard_input_takes_a_pretty_printed_document() {
    let pretty = "{\n  \"resourceType\": \"Patient\",\n  \"gender\": \"mal\"\n}\n";
    let output = run_with_stdin(&["validate", "-"], pretty.as_bytes());
    assert_eq!(code(&output), 1);
    assert!(
        stdout(&output).starts_with("-  Patient  Patient.gender"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn malformed_json_is_a_finding_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "x.ndjson",
        &format!("{GOOD}\n{{\"resourceType\":\n{GOOD}\n"),
    );
    let output = run(&[
        "validate",
        "--format",
        "json",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&output), 1);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let finding = &document["findings"][0];
    assert_eq!(finding["keyword"], "json");
    assert_eq!(finding["line"], 2);
    assert_eq!(document["resources"], 3);
}

#[test]
fn a_missing_path_is_a_usage_error_naming_it() {
    let output = run(&[
        "validate",
        "examples/demo-member-bundle.json",
        "no/such/file.json",
    ]);
    assert_eq!(code(&output), 2);
    let message = stderr(&output);
    assert!(
        message.contains("cannot read no/such/file.json"),
        "{message}"
    );
    assert!(message.contains("No such file or directory"), "{message}");
    assert!(stdout(&output).is_empty());
}

#[test]
fn no_path_at_all_is_a_usage_error() {
    let output = run(&["validate"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("PATH"), "{}", stderr(&output));
}

#[test]
fn output_order_does_not_depend_on_the_number_of_workers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut lines = String::new();
    for i in 0..3000 {
        let gender = if i % 7 == 0 { "mal" } else { "male" };
        lines.push_str(&format!(
            "{{\"resourceType\":\"Patient\",\"id\":\"p{i}\",\"gender\":\"{gender}\"}}\n"
        ));
    }
    let file = write(dir.path(), "many.ndjson", &lines);
    let path = file.to_str().expect("utf-8");
    let one = run(&["validate", "-j", "1", path]);
    let four = run(&["validate", "--jobs", "4", path]);
    assert_eq!(code(&one), 1);
    assert_eq!(stdout(&one), stdout(&four));
    assert_eq!(stdout(&one).lines().count(), 3000 / 7 + 1 + 1);
}

#[test]
fn help_lists_only_working_commands() {
    let output = run(&["--help"]);
    assert_eq!(code(&output), 0);
    let text = stdout(&output);
    assert!(text.contains("validate"), "{text}");
}

#[test]
fn the_sandbox_command_prints_where_it_is_serves_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut child = common::onramp()
        .args([
            "sandbox",
            "--port",
            "0",
            "--members",
            "2",
            "--fault",
            "latency=1ms",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("onramp sandbox starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = String::new();
    let mut fhir_base = None;
    for line in lines.by_ref() {
        let line = line.expect("a line");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(base) = line.trim().strip_prefix("FHIR base") {
            fhir_base = Some(base.trim().to_owned());
        }
        if line.trim_start().starts_with("Faults") {
            break;
        }
    }
    for expected in [
        "onramp-demo-client",
        "onramp-demo-secret",
        "John Allen",
        "10/19/1950",
        "123456789123",
        "02114",
        "latency=1ms",
        "Members (2 in all",
        // What an app under development needs: its clients and the scopes.
        "client_id      onramp-app\n",
        "PKCE with S256 required",
        "onramp-app-confidential",
        "Scopes      patient/*.read",
    ] {
        assert!(printed.contains(expected), "{expected} in:\n{printed}");
    }
    let base = fhir_base.expect("the FHIR base is printed");
    let address = base
        .trim_start_matches("http://")
        .trim_end_matches("/r4")
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("the sandbox listens");
    let request =
        format!("GET /r4/metadata HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("request sent");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("answer read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("CapabilityStatement"));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_bad_fault_spec_is_a_usage_error_that_lists_the_valid_ones() {
    let output = run(&["sandbox", "--fault", "explode"]);
    assert_eq!(code(&output), 2);
    let message = stderr(&output);
    assert!(message.contains("unknown fault `explode`"), "{message}");
    assert!(message.contains("rate-limit=5/s"), "{message}");
}

#[test]
fn an_unusable_data_folder_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "broken.json", "{ not json");
    let output = run(&[
        "sandbox",
        "--port",
        "0",
        "--data",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&output), 2);
    let message = stderr(&output);
    assert!(message.contains("broken.json"), "{message}");
}

/// `levels` Patients, each contained in the one before: 2 JSON levels per Patient.
fn nested_contained(levels: usize) -> String {
    let mut text = String::new();
    for i in 0..levels {
        text.push_str(&format!(
            r#"{{"resourceType":"Patient","id":"c{i}","contained":["#
        ));
    }
    text.push_str(r#"{"resourceType":"Patient","id":"leaf"}"#);
    text.push_str(&"]}".repeat(levels));
    text
}

#[test]
fn documents_nested_beyond_512_levels_are_a_finding_not_a_crash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let arrays = write(
        dir.path(),
        "arrays.json",
        &format!("{}{}", "[".repeat(3661), "]".repeat(3661)),
    );
    let contained = write(dir.path(), "contained.json", &nested_contained(1812));
    for file in [&arrays, &contained] {
        let output = run(&[
            "validate",
            "--format",
            "json",
            file.to_str().expect("utf-8"),
        ]);
        assert_eq!(code(&output), 1, "{}", stderr(&output));
        let printed = stdout(&output);
        assert!(
            printed.contains("\"keyword\":\"json\"") && printed.contains("deeper than 512 levels"),
            "{printed}"
        );
    }
    // The same on stdin and as an NDJSON line.
    let line = format!("{}\n{}\n", nested_contained(1812), nested_contained(1));
    let output = run_with_stdin(&["validate", "-"], line.as_bytes());
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(stdout(&output).contains("deeper than 512 levels"));
    // Just inside the limit, every walk still fits its stack (in a debug build too).
    let deep = write(dir.path(), "deep.json", &nested_contained(255));
    let output = run(&["validate", deep.to_str().expect("utf-8")]);
    assert!(matches!(code(&output), 0 | 1), "{}", stderr(&output));
}

#[test]
fn a_byte_order_mark_before_ndjson_on_stdin_keeps_it_ndjson() {
    let input = "\u{feff}{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"b\"}\n";
    let output = run_with_stdin(&["validate", "-"], input.as_bytes());
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    assert!(
        stdout(&output).contains("2 resources"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn text_output_escapes_control_characters_from_the_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    // An id with an escape sequence and a newline that would forge a finding line, a
    // bidirectional override in a code, and a file name with a control character.
    let hostile = r#"{"resourceType":"Patient","id":"\u001b[2J\nforged.json  Patient/x  -  all fine","gender":"\u202eelam"}"#;
    let file = write(dir.path(), "bad\u{7}.json", hostile);
    let output = run(&["validate", file.to_str().expect("utf-8")]);
    assert_eq!(code(&output), 1);
    let printed = stdout(&output);
    assert!(
        !printed
            .chars()
            .any(|c| c.is_control() && c != '\n' || c == '\u{202e}'),
        "{printed:?}"
    );
    assert!(
        !printed.lines().any(|l| l.starts_with("forged.json")),
        "{printed}"
    );
    assert!(printed.contains("\\u{1b}[2J\\nforged.json"), "{printed}");
    assert!(printed.contains("bad\\u{7}.json"), "{printed}");
    // The JSON output stays one valid JSON document, with the text as it was.
    let output = run(&[
        "validate",
        "--format",
        "json",
        file.to_str().expect("utf-8"),
    ]);
    let document: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    assert!(
        document["findings"]
            .to_string()
            .contains("\\u001b[2J\\nforged.json")
    );
}

#[test]
fn odd_inputs_get_a_clear_answer_without_hanging() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A FIFO nobody writes to, and a device that never ends: refused at once, by name.
    let fifo = dir.path().join("pipe.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    for (path, kind) in [
        (fifo.to_str().expect("utf-8"), "a FIFO"),
        ("/dev/zero", "a character device"),
    ] {
        let output = run(&["validate", path]);
        assert_eq!(code(&output), 2, "{path}");
        assert!(stderr(&output).contains(kind), "{}", stderr(&output));
    }
    // Links inside a folder are followed; one that loops is reported.
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).expect("folder");
    let real = write(
        dir.path(),
        "real.json",
        r#"{"resourceType":"Patient","id":"a"}"#,
    );
    std::os::unix::fs::symlink(&real, folder.join("link.json")).expect("link");
    std::os::unix::fs::symlink(&folder, folder.join("loop")).expect("loop");
    let output = run(&["validate", folder.to_str().expect("utf-8")]);
    assert_eq!(code(&output), 2);
    assert!(
        stdout(&output).contains("1 resource: all valid"),
        "{}",
        stdout(&output)
    );
    assert!(stderr(&output).contains("loop"), "{}", stderr(&output));
    // No document at all is the same finding whatever the input.
    let empty_json = write(dir.path(), "empty.json", "");
    let empty_ndjson = write(dir.path(), "empty.ndjson", "\n\n");
    for output in [
        run(&["validate", empty_json.to_str().expect("utf-8")]),
        run(&["validate", empty_ndjson.to_str().expect("utf-8")]),
        run_with_stdin(&["validate", "-"], b""),
        run_with_stdin(&["validate", "-"], b"\n \n"),
    ] {
        assert_eq!(code(&output), 1, "{}", stdout(&output));
        assert!(stdout(&output).contains("no JSON document: the input is empty"));
    }
}

#[test]
fn completions_complete_commands_and_options_and_the_man_page_renders() {
    let dir = tempfile::tempdir().expect("temp dir");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = run(&["completions", shell]);
        assert_eq!(code(&output), 0, "{shell}");
        assert!(stdout(&output).contains("validate"), "{shell}");
    }
    assert_eq!(code(&run(&["completions", "tcsh"])), 2);
    // The bash script, sourced in a real bash, completes a command and an option.
    let script = write(
        dir.path(),
        "onramp.bash",
        &stdout(&run(&["completions", "bash"])),
    );
    let complete = |words: &str, cword: usize, cur: &str, prev: &str| {
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; _onramp onramp {cur} {prev}; echo \"${{COMPREPLY[*]}}\"",
            script.display()
        );
        let output = std::process::Command::new("bash")
            .args(["-c", &program])
            .output()
            .expect("bash runs");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(complete("onramp ru", 1, "ru", "onramp"), "run");
    assert_eq!(
        complete("onramp validate --for", 2, "--for", "validate"),
        "--format"
    );
    // The manual page is roff that names every command.
    let man = run(&["man"]);
    assert_eq!(code(&man), 0);
    let page = stdout(&man);
    assert!(
        page.starts_with(".ie") || page.contains(".TH onramp 1"),
        "{page}"
    );
    for command in [
        "validate",
        "sandbox",
        "run",
        "init",
        "checklist",
        "completions",
    ] {
        assert!(page.contains(command), "{command} in the man page");
    }
    // `--dir` writes a page per command, each with that command's own options, so that
    // the pages onramp(1) points to exist.
    let dir = tempfile::tempdir().expect("temp dir");
    let pages = dir.path().join("man1");
    let written = run(&["man", "--dir", pages.to_str().expect("utf-8")]);
    assert_eq!(code(&written), 0, "{}", stderr(&written));
    for (page, option) in [
        ("onramp.1", "\\-\\-color"),
        ("onramp-run.1", "\\-\\-target"),
        ("onramp-validate.1", "\\-\\-tier"),
        ("onramp-sandbox.1", "\\-\\-fault"),
        ("onramp-init.1", "\\-\\-preset"),
        ("onramp-checklist.1", "\\-\\-manifest"),
        ("onramp-man.1", "\\-\\-dir"),
    ] {
        let text =
            std::fs::read_to_string(pages.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(option), "{page} documents {option}");
        assert!(stdout(&written).contains(page), "{}", stdout(&written));
    }
    // `-j` is the jobs flag of every command that has one.
    for args in [
        ["run", "-j", "2", "--dry-run"],
        ["validate", "-j", "2", "examples/demo-member-bundle.json"],
    ] {
        let output = run(&args);
        assert_ne!(code(&output), 2, "{args:?}: {}", stderr(&output));
    }
}

/// The commands of a CI script: each line split at `&&`, `||`, `;` and `|`, as words
/// (the examples quote nothing).
fn commands(script: &str) -> Vec<Vec<String>> {
    script
        .lines()
        .flat_map(|line| {
            line.split("&&")
                .flat_map(|part| part.split("||"))
                .flat_map(|part| part.split([';', '|']))
                .map(|part| {
                    part.split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .filter(|words| !words.is_empty() && !words[0].starts_with('#'))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every command is one a CI image has or the example installs, and every onramp command
/// is one onramp accepts, flags included.
fn assert_commands_exist(example: &str, scripts: &[String]) {
    use clap::Parser as _;
    let mut onramp_runs = 0;
    for script in scripts {
        for words in commands(script) {
            match words[0].as_str() {
                "onramp" => {
                    if let Err(error) = onramp::cli::Cli::try_parse_from(&words) {
                        panic!(
                            "{example}: `{}` is not an onramp command: {error}",
                            words.join(" ")
                        );
                    }
                    onramp_runs += usize::from(words.get(1).is_some_and(|w| w == "run"));
                }
                "apt-get" => assert!(
                    matches!(words.get(1).map(String::as_str), Some("update" | "install")),
                    "{example}: {words:?}"
                ),
                "cargo" => {
                    assert_eq!(
                        words.get(1).map(String::as_str),
                        Some("install"),
                        "{example}: {words:?}"
                    );
                    assert!(
                        words.contains(&"--locked".to_owned()),
                        "{example}: {words:?}"
                    );
                    // `--path .` builds this repository: it must be a crate.
                    assert!(common::repo().join("Cargo.toml").is_file());
                }
                other => panic!(
                    "{example}: `{other}` is neither onramp nor a command the example installs"
                ),
            }
        }
    }
    assert!(onramp_runs > 0, "{example} runs onramp");
    let all = scripts.join("\n");
    assert!(
        all.contains("apt-get install -y chromium chromium-driver"),
        "{example} installs Chromium"
    );
}

fn example(name: &str) -> (String, yaml_rust2::Yaml) {
    let text = std::fs::read_to_string(common::repo().join("examples/ci").join(name))
        .expect("the example exists");
    let mut documents = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{name} is not YAML: {e}"));
    assert_eq!(documents.len(), 1, "{name} is one document");
    (text, documents.remove(0))
}

#[test]
fn the_github_actions_example_parses_and_runs_real_commands() {
    let (_, workflow) = example("github-actions.yml");
    assert!(!workflow["on"].is_badvalue(), "a trigger");
    let job = &workflow["jobs"]["conformance"];
    let steps = job["steps"].as_vec().expect("steps");
    let scripts: Vec<String> = steps
        .iter()
        .filter_map(|step| step["run"].as_str().map(str::to_owned))
        .collect();
    assert_commands_exist("github-actions.yml", &scripts);
    assert!(scripts.iter().any(|s| s.contains("--annotations github")));
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("the report is uploaded");
    assert_eq!(
        upload["if"].as_str(),
        Some("always()"),
        "even when the run fails"
    );
    assert_eq!(upload["with"]["path"].as_str(), Some("onramp-report/"));
}

#[test]
fn the_gitlab_ci_example_parses_and_runs_real_commands() {
    let (_, pipeline) = example("gitlab-ci.yml");
    let job = &pipeline["onramp"];
    let mut scripts = Vec::new();
    for key in ["before_script", "script"] {
        for line in job[key].as_vec().expect(key) {
            scripts.push(line.as_str().expect("a command").to_owned());
        }
    }
    assert_commands_exist("gitlab-ci.yml", &scripts);
    let artifacts = &job["artifacts"];
    assert_eq!(artifacts["when"].as_str(), Some("always"));
    assert_eq!(artifacts["paths"][0].as_str(), Some("onramp-report/"));
    assert_eq!(
        artifacts["reports"]["junit"].as_str(),
        Some("onramp-report/*/junit.xml")
    );
}

#[test]
fn colour_follows_the_flag_and_never_reaches_a_pipe_by_itself() {
    let examples = common::repo().join("examples/problems.ndjson");
    let examples = examples.to_str().expect("utf-8");
    let plain = run(&["validate", examples]);
    assert!(!stdout(&plain).contains('\u{1b}'), "{}", stdout(&plain));
    let coloured = run(&["validate", "--color", "always", examples]);
    assert!(
        stdout(&coloured).contains("\u{1b}[31m1 file, 4 resources"),
        "{}",
        stdout(&coloured)
    );
    let never = common::onramp()
        .args(["--color", "never", "validate", examples])
        .env("CLICOLOR_FORCE", "1")
        .output()
        .expect("runs");
    assert!(!stdout(&never).contains('\u{1b}'));
    let bad = run(&["validate", "--color", "sometimes", examples]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("auto, always, never"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn verbose_validate_says_how_fast_and_quiet_conflicts_with_verbose() {
    let verbose = run(&["validate", "-v", "examples/demo-member-bundle.json"]);
    assert_eq!(code(&verbose), 0);
    assert!(
        stderr(&verbose).contains("onramp: validated 8 resources in "),
        "{}",
        stderr(&verbose)
    );
    let both = run(&["validate", "-q", "-v", "examples/demo-member-bundle.json"]);
    assert_eq!(code(&both), 2);
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
}

#[test]
fn the_sandbox_log_has_no_colour_codes_in_a_file() {
    use std::io::{BufRead as _, BufReader};
    let mut sandbox = common::onramp()
        .args(["sandbox", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(sandbox.stdout.take().expect("stdout")).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.split_whitespace()
                .find(|w| w.contains("/.well-known/smart-configuration"))
                .map(str::to_owned)
        })
        .expect("the sandbox says where it is");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        reqwest::get(&base).await.expect("answers");
    });
    // SIGTERM: the sandbox stops cleanly and its log is complete.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &sandbox.id().to_string()])
        .status();
    let output = sandbox.wait_with_output().expect("stops");
    let log = stderr(&output);
    assert!(log.contains("GET /"), "a request was logged: {log}");
    assert!(!log.contains('\u{1b}'), "no escape codes: {log:?}");
}

/// Text from a file never drives the terminal or a CI log: control characters, line
/// separators and a line that would be a workflow command, wherever `validate` prints them
/// (a finding, the summary's "declared not checked" profiles).
#[test]
fn hostile_text_in_a_file_is_printed_inert() {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile =
        "http://evil.example/\u{1b}[2J\u{7}\u{1b}]0;owned\u{7}x\u{2028}\n::warning file=a::forged";
    let resource = serde_json::json!({
        "resourceType": "Patient", "id": "p1",
        "meta": {"profile": [profile]},
        "gender": "\n::stop-commands::x\u{2029}"
    });
    let path = write(dir.path(), "evil.json", &resource.to_string());
    let output = run(&["validate", path.to_str().expect("utf-8")]);
    let text = stdout(&output);
    assert!(text.contains("declared not checked"), "{text}");
    for c in text.chars() {
        assert!(
            c == '\n' || !(c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "raw {c:?} in {text:?}"
        );
    }
    for line in text.lines() {
        let start = line.trim_start();
        assert!(
            !start.starts_with("::") && !start.starts_with("##["),
            "{line:?}"
        );
    }
}

/// A byte order mark on a line of its own, then NDJSON on standard input: each line is
/// still a document of its own.
#[test]
fn a_byte_order_mark_then_a_blank_line_then_ndjson_is_read_line_by_line() {
    let mut input = b"\xEF\xBB\xBF\n".to_vec();
    input.extend_from_slice(format!("{GOOD}\n{BAD}\n").as_bytes());
    let output = run_with_stdin(&["validate", "-"], &input);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.contains("2 resources: 1 invalid"), "{text}");
    assert!(text.contains("Patient/bad"), "{text}");
}

/// A document with more findings than anyone reads gets the first ones listed and the rest
/// counted, in text and JSON; the summary still counts them all.
#[test]
fn findings_are_capped_per_document_and_the_rest_counted() {
    let cap = onramp::validate::MAX_FINDINGS;
    let names = vec!["{}"; cap + 25].join(",");
    let document = format!(r#"{{"resourceType":"Patient","id":"many","name":[{names}]}}"#);
    let output = run_with_stdin(
        &["validate", "--tier", "structure", "-"],
        document.as_bytes(),
    );
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cap + 2, "{}", &lines[cap..].join("\n"));
    assert_eq!(
        lines[cap],
        format!("-:1  and 25 findings more in this document, not listed (the first {cap} are)")
    );
    assert_eq!(
        lines[cap + 1],
        format!("1 file, 1 resource: 1 invalid ({} findings)", cap + 25)
    );
    let json = run_with_stdin(
        &["validate", "--tier", "structure", "--format", "json", "-"],
        document.as_bytes(),
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), cap);
    assert_eq!(json["findings_not_listed"], 25);
}

/// A Bulk Data export is validated from its manifest: every NDJSON file its output lists (a
/// path relative to the manifest, or a file: URL), and a remote URL is reported, without its
/// query (where a signature may be), as a file to download first.
#[test]
fn a_bulk_data_manifest_validates_every_file_it_lists() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "out/Patient.ndjson",
        &format!("{GOOD}\n{GOOD}\n"),
    );
    let bad = write(
        dir.path(),
        "elsewhere/Patient-2.ndjson",
        &format!("{BAD}\n"),
    );
    let manifest = write(
        dir.path(),
        "manifest.json",
        &serde_json::json!({
            "transactionTime": "2026-12-07T10:00:00Z",
            "request": "https://payer.example/fhir/$export",
            "requiresAccessToken": true,
            "output": [
                {"type": "Patient", "url": "out/Patient.ndjson"},
                {"type": "Patient", "url": format!("file://{}", bad.display())},
                {"type": "Coverage", "url": "https://payer.example/files/Coverage.ndjson?sig=s3cr3t"}
            ],
            "error": []
        })
        .to_string(),
    );
    let output = run(&["validate", manifest.to_str().expect("utf-8")]);
    // A file that cannot be read makes the exit 2, as for any path.
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("Patient-2.ndjson:1  Patient/bad  Patient.gender"),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with("3 files, 3 resources: 1 invalid (1 finding); 1 file could not be read"),
        "{text}"
    );
    let errors = stderr(&output);
    assert!(
        errors.contains("https://payer.example/files/Coverage.ndjson, a remote file"),
        "{errors}"
    );
    assert!(!errors.contains("s3cr3t") && !text.contains("s3cr3t"));
    // A JSON file that is not a manifest is still one document.
    assert_eq!(
        code(&run(&["validate", "examples/demo-member-bundle.json"])),
        0
    );
}

/// `--format ndjson` is a clean streaming filter: one finding per line on standard output,
/// nothing for valid lines, the summary on standard error.
#[test]
fn ndjson_format_prints_one_finding_per_line_and_nothing_else() {
    let input = format!("{GOOD}\n{BAD}\n{GOOD}\n");
    let output = run_with_stdin(&["validate", "--format", "ndjson", "-"], input.as_bytes());
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let finding: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(finding["file"], "-");
    assert_eq!(finding["line"], 2);
    assert_eq!(finding["resource"], "Patient/bad");
    assert_eq!(finding["tier"], "schema");
    assert!(
        stderr(&output).contains("1 file, 3 resources: 1 invalid (1 finding)"),
        "{}",
        stderr(&output)
    );
    let valid = run_with_stdin(
        &["validate", "--format", "ndjson", "-"],
        format!("{GOOD}\n").as_bytes(),
    );
    assert_eq!(code(&valid), 0);
    assert_eq!(stdout(&valid), "");
}

/// `--valid` accounts for every input line: a line per valid document as well, in NDJSON
/// and in text; with `--format json` it is a usage error saying what to use.
#[test]
fn valid_lists_every_document_without_findings_when_asked() {
    let input = format!("{GOOD}\n{BAD}\n{GOOD}\n");
    let output = run_with_stdin(
        &["validate", "--format", "ndjson", "--valid", "-"],
        input.as_bytes(),
    );
    assert_eq!(code(&output), 1);
    let text = stdout(&output);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[0]["resources"], 1);
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["resource"], "Patient/bad");
    assert!(lines[1].get("valid").is_none(), "{text}");
    assert_eq!(lines[2]["line"], 3);
    assert_eq!(lines[2]["valid"], true);

    let text = run_with_stdin(&["validate", "--valid", "-"], input.as_bytes());
    assert_eq!(code(&text), 1);
    let printed = stdout(&text);
    assert!(printed.contains("-:1  valid (1 resource)"), "{printed}");
    assert!(printed.contains("-:3  valid (1 resource)"), "{printed}");
    assert!(!printed.contains("-:2  valid"), "{printed}");

    let json = run_with_stdin(
        &["validate", "--format", "json", "--valid", "-"],
        input.as_bytes(),
    );
    assert_eq!(code(&json), 2);
    assert!(
        stderr(&json).contains("--format ndjson or text"),
        "{}",
        stderr(&json)
    );
}
