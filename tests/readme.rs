//! The README as a new user follows it: every command in a block marked
//! `<!-- tested: offline -->` runs as written (with this build's binary for `onramp`) in a
//! folder of its own, and ends with the exit code its comment says (`exit 1`), else 0.

mod common;

use std::path::Path;

/// The commands of the marked blocks, with the exit code each should end with.
fn offline_commands(readme: &str) -> Vec<(String, i32)> {
    let mut commands = Vec::new();
    let mut marked = false;
    let mut inside = false;
    for line in readme.lines() {
        if line.trim() == "<!-- tested: offline -->" {
            marked = true;
            continue;
        }
        if line.starts_with("```") {
            inside = marked && !inside;
            if !inside {
                marked = false;
            }
            continue;
        }
        if !inside || line.trim().is_empty() {
            continue;
        }
        let (command, comment) = line.split_once('#').unwrap_or((line, ""));
        let code = comment
            .split("exit ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        commands.push((command.trim().to_owned(), code));
    }
    commands
}

#[test]
fn every_offline_command_in_the_readme_runs_as_written() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).expect("README");
    let commands = offline_commands(&readme);
    assert!(commands.len() >= 7, "marked commands: {commands:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    // The README's paths are the repository's.
    std::os::unix::fs::symlink(common::repo().join("examples"), dir.path().join("examples"))
        .expect("examples");
    for (command, expected) in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(words[0], "onramp", "{command}: an onramp command");
        let output = common::onramp()
            .args(&words[1..])
            .current_dir(dir.path())
            .env("TMPDIR", &tmp)
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("ONRAMP_1UP_CLIENT_ID")
            .env_remove("ONRAMP_BB_CLIENT_ID")
            .output()
            .expect("onramp runs");
        assert_eq!(
            output.status.code(),
            Some(*expected),
            "`{command}`\n{}\n{}",
            common::stdout(&output),
            common::stderr(&output)
        );
    }
    assert!(Path::new(&dir.path().join("my-plan/onramp-target.toml")).is_file());
}

#[test]
fn the_marked_blocks_are_found() {
    let sample = "x\n<!-- tested: offline -->\n```sh\nonramp run   # exit 1\n\nonramp validate x # fine\n```\n```sh\nonramp not-tested\n```\n";
    assert_eq!(
        offline_commands(sample),
        [
            ("onramp run".to_owned(), 1),
            ("onramp validate x".to_owned(), 0)
        ]
    );
}
