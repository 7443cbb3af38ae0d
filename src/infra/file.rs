//! A file the user wrote (a target, an onboarding manifest, a checklist) that cannot be used:
//! which file, where in it, and why. One shape for all of them, so that every such error
//! names the file (and the line, where one is known) the same way.

use std::path::PathBuf;

/// Why a file the user wrote cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the {what} {path}")]
    Read {
        /// What the file is, as the error names it: "target file", "onboarding manifest".
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}
