//! Writing a file atomically: through a temporary file in the same folder and a rename, so
//! that a report, a screenshot or a file `onramp init` writes is complete or absent, never
//! half-written.

use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` (creating its folder), readable like any file the user writes.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

/// Write `path` atomically from what `fill` writes (buffered): for an output too large to
/// hold twice in memory (a summary of 100,000 claims).
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, file.as_file_mut());
        fill(&mut out)?;
        out.flush()?;
    }
    // Reports are for sharing: readable like any file the user writes (temp files are 0600).
    std::fs::set_permissions(
        file.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
