//! `onramp validate` as a user runs it: arguments, outputs, exit codes.

mod common;

use common::{code, run, run_with_stdin, stderr, stdout, write};

const GOOD: &str = r#"{"resourceType":"Patient","id":"good"}"#;
const BAD: &str = r#"{"resourceType":"Patient","id":"bad","gender":"mal"}"#;

#[test]
fn the_shipped_example_is_valid() {
    let output = run(&["validate", "examples/demo-member-bundle.json"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "1 file, 8 resources: all valid");
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
    assert!(
        text.trim_end()
            .ends_with("1 file, 3 resources: 2 invalid (5 findings)"),
        "{text}"
    );
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
    assert_eq!(document["resources"], 11);
    assert_eq!(document["invalid"], 2);
    let findings = document["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 5);
    let first = &findings[0];
    for field in [
        "file", "line", "entry", "resource", "path", "pointer", "keyword", "message",
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
}
