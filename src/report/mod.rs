//! Outputs of a run, rendered from the [`RunSummary`] alone: `summary.json`, `report.html`,
//! `checklist.md`, the email drafts and the recording (the JUnit and Cucumber JSON files come
//! from cucumber's own writers, wired by the runner). File writes are atomic: a report is
//! complete or absent, never half-written.
//!
//! Renderers never touch the network.

pub mod email;
pub mod html;
pub mod recording;

use std::io::Write as _;
use std::path::Path;

use crate::run::summary::RunSummary;

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

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}")]
    Write {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Render(#[from] html::RenderError),
}

fn write(dir: &Path, name: &str, bytes: &[u8], files: &mut Vec<String>) -> Result<(), ReportError> {
    let path = dir.join(name);
    write_atomically(&path, bytes).map_err(|source| ReportError::Write { path, source })?;
    files.push(name.to_owned());
    Ok(())
}

/// Write `summary.json`, `report.html`, `checklist.md` and `emails/*.eml` into `dir` (where
/// the screenshots already are); returns the files written, in order.
pub fn write_outputs(dir: &Path, summary: &RunSummary) -> Result<Vec<String>, ReportError> {
    let mut files = Vec::new();
    let json = serde_json::to_vec_pretty(summary).map_err(|e| ReportError::Write {
        path: dir.join("summary.json"),
        source: e.into(),
    })?;
    write(dir, "summary.json", &json, &mut files)?;
    let images: html::Images = summary
        .screenshots
        .iter()
        .filter_map(|shot| Some((shot.file.clone(), std::fs::read(dir.join(&shot.file)).ok()?)))
        .collect();
    let page = html::render(summary, &images)?;
    write(dir, "report.html", page.as_bytes(), &mut files)?;
    write(
        dir,
        "checklist.md",
        crate::checklist::render_markdown(&summary.checklist).as_bytes(),
        &mut files,
    )?;
    for draft in [
        email::sandbox_sync(&summary.checklist),
        email::production_access(&summary.checklist, Some(("report.html", page.as_bytes()))),
    ] {
        let draft = draft.map_err(|source| ReportError::Write {
            path: dir.join("emails"),
            source,
        })?;
        write(
            dir,
            &format!("emails/{}", draft.name),
            &draft.bytes,
            &mut files,
        )?;
    }
    Ok(files)
}
