//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `onramp` binary cargo built for these tests.
pub fn onramp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onramp"))
}

/// Run `onramp` with `args` in `dir` (the repository root when `None`).
pub fn run(args: &[&str]) -> Output {
    onramp()
        .args(args)
        .current_dir(repo())
        .output()
        .expect("onramp runs")
}

/// Run `onramp` with `input` on standard input.
pub fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = onramp()
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("onramp starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("stdin accepts input");
    child.wait_with_output().expect("onramp finishes")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("fixture directory");
    }
    std::fs::write(&path, content).expect("fixture written");
    path
}
