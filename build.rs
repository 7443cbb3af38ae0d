//! What the build learns of the machine for the tests: whether `ffmpeg` is on `PATH`. The
//! MP4 recording's test runs where it is (`.ci/run` installs it) and is reported as ignored,
//! saying why, where it is not; nothing in onramp itself depends on this.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(onramp_ffmpeg)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_file(&dir.join("ffmpeg"))));
    if found {
        println!("cargo::rustc-cfg=onramp_ffmpeg");
    }
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}
