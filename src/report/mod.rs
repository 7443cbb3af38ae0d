//! Outputs of a run, rendered from the [`RunSummary`] alone: `summary.json` here, the
//! JUnit and Cucumber JSON files through cucumber's own writers (wired by the runner). File
//! writes are atomic: a report is complete or absent, never half-written.
//!
//! Renderers never touch the network.

use std::io::Write as _;
use std::path::Path;

/// Write `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    // Reports are for sharing: readable like any file the user writes (temp files are 0600).
    std::fs::set_permissions(
        file.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
