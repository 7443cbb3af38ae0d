//! One run of `onramp run` in a folder of its own, and what it left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One run of the binary in its own folder, with its own temp dir (so that its Chromium
/// profiles can be told apart from other tests').
pub struct Run {
    pub dir: tempfile::TempDir,
    pub output: Output,
}

impl Run {
    pub fn tmp(dir: &Path) -> PathBuf {
        dir.join("tmp")
    }

    pub fn command(dir: &Path, args: &[&str]) -> Command {
        std::fs::create_dir_all(Self::tmp(dir)).expect("tmp dir");
        let mut command = super::onramp();
        command
            .args(["run", "--out"])
            .arg(dir.join("reports"))
            .args(args)
            .current_dir(dir)
            .env("TMPDIR", Self::tmp(dir))
            .env_remove("ONRAMP_1UP_CLIENT_ID")
            .env_remove("ONRAMP_1UP_CLIENT_SECRET")
            .env_remove("ONRAMP_1UP_REDIRECT_URI")
            .env_remove("ONRAMP_BB_CLIENT_ID")
            .env_remove("ONRAMP_BB_CLIENT_SECRET")
            .env_remove("ONRAMP_BB_REDIRECT_URI")
            .env_remove("NO_COLOR")
            .env_remove("GITHUB_STEP_SUMMARY");
        command
    }

    pub fn new(args: &[&str]) -> Self {
        Self::with(args, |_| {})
    }

    /// A run against a target file `name` holding `toml`, selecting `tags`.
    pub fn with_target(name: &str, toml: &str, tags: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = super::write(dir.path(), name, toml);
        Self::new(&["--target", target.to_str().expect("utf-8"), "--tags", tags])
    }

    pub fn with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Self::command(dir.path(), args);
        adjust(&mut command);
        let output = command.output().expect("onramp runs");
        let run = Self { dir, output };
        run.assert_no_browser_left();
        run
    }

    pub fn code(&self) -> i32 {
        self.output.status.code().expect("exited")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn report(&self) -> PathBuf {
        self.dir.path().join("reports").join("latest")
    }

    pub fn summary(&self) -> Value {
        let text =
            std::fs::read_to_string(self.report().join("summary.json")).unwrap_or_else(|e| {
                panic!(
                    "summary.json: {e}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                )
            });
        serde_json::from_str(&text).expect("summary.json is JSON")
    }

    pub fn scenario<'a>(summary: &'a Value, needle: &str) -> &'a Value {
        summary["scenarios"]
            .as_array()
            .expect("scenarios")
            .iter()
            .find(|s| s["name"].as_str().unwrap_or_default().contains(needle))
            .unwrap_or_else(|| panic!("no scenario named like {needle}"))
    }

    /// Chromium and chromedriver processes started for this run (its TMPDIR holds their
    /// profiles) must all be gone.
    pub fn assert_no_browser_left(&self) {
        let marker = Self::tmp(self.dir.path()).display().to_string();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let left: Vec<String> = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
                    let status =
                        std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
                    let zombie = status
                        .lines()
                        .any(|l| l.starts_with("State:") && l.contains('Z'));
                    let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                    (line.contains(&marker) && !zombie).then_some(line)
                })
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes left behind: {left:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A failed step, as summary.json reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub scenario: String,
    pub step: String,
    /// `failed`, or `warning` for a SHOULD.
    pub status: String,
    pub error: String,
    pub failure: String,
}

impl Run {
    /// Every failed step of the run, and every warning.
    pub fn failed_steps(&self) -> Vec<Failed> {
        let summary = self.summary();
        let mut failed = Vec::new();
        for scenario in summary["scenarios"].as_array().expect("scenarios") {
            for step in scenario["steps"].as_array().expect("steps") {
                if step["status"] == "failed" || step["status"] == "warning" {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                    failed.push(Failed {
                        scenario: text(&scenario["name"]),
                        step: text(&step["text"]),
                        status: text(&step["status"]),
                        error: text(&step["error"]),
                        failure: text(&step["failure"]),
                    });
                }
            }
        }
        failed
    }
}
