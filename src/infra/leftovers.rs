//! What a killed onramp leaves behind, and how the next run clears it.
//!
//! SIGKILL (the OOM killer, `kill -9`, a CI runner's hard timeout) gives onramp no chance to
//! stop its Chromium and chromedriver or remove their temp folders. Every such folder onramp
//! makes is marked with an owner file naming the onramp process (pid and start time, so a
//! reused pid is not mistaken for it). The next run sweeps the temp folder: a marked folder
//! whose owner is gone is provably a leftover, so the processes started with it (their
//! command line names the folder) are killed and the folder removed. Unmarked folders, and
//! folders of an onramp still running, are never touched.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The owner file in each folder onramp makes for a browser or driver.
const OWNER: &str = "onramp-owner";

/// What a sweep cleared.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub folders: usize,
    pub processes: usize,
}

/// Mark `dir` as this process's.
pub fn mark(dir: &Path) {
    if let Some(owner) = owner_line(std::process::id()) {
        let _ = std::fs::write(dir.join(OWNER), owner);
    }
}

/// `pid start-time`: the start time (clock ticks since boot, `/proc/PID/stat` field 22) tells
/// a process from a later one given the same pid.
fn owner_line(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 1..];
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid} {start}"))
}

/// Whether the process an owner file names is still the one running.
fn alive(owner: &str) -> bool {
    let Some(pid) = owner
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<u32>().ok())
    else {
        // Not a line onramp wrote: not provably a leftover.
        return true;
    };
    owner_line(pid).is_some_and(|now| now.trim() == owner.trim())
}

/// Clear what killed onramp processes left in the temp folder.
pub fn sweep() -> Swept {
    let mut swept = Swept::default();
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return swept;
    };
    let orphans: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("onramp-"))
        })
        .filter(|path| std::fs::read_to_string(path.join(OWNER)).is_ok_and(|owner| !alive(&owner)))
        .collect();
    for folder in orphans {
        swept.processes += kill_started_with(&folder);
        if std::fs::remove_dir_all(&folder).is_ok() {
            swept.folders += 1;
        }
    }
    swept
}

/// Kill every process whose command line names `folder` (Chromium's `--user-data-dir`,
/// chromedriver's `--log-path`); how many.
fn kill_started_with(folder: &Path) -> usize {
    let needle = folder.display().to_string();
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let names_folder = raw.split(|b| *b == 0).any(|arg| {
            let arg = String::from_utf8_lossy(arg);
            arg.split_once('=').is_some_and(|(flag, value)| {
                flag.starts_with("--")
                    && (value == needle || value.starts_with(&format!("{needle}/")))
            })
        });
        if names_folder && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            killed += 1;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_not() {
        let me = owner_line(std::process::id()).expect("own stat");
        assert!(alive(&me));
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id();
        let line = owner_line(pid);
        child.wait().expect("waits");
        if let Some(line) = line {
            assert!(!alive(&line));
        }
        // The same pid with another start time is another process.
        let other = format!("{} 1", std::process::id());
        assert!(!alive(&other));
        assert!(alive("not a line onramp wrote"));
    }
}
