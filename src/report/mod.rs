//! Outputs of a run, rendered from the [`RunSummary`] alone (so each passes the run's one
//! redaction): `summary.json`, `report.html`, `junit.xml`, `cucumber.json`,
//! `checklist.md`, the email drafts and the recording. File writes are atomic
//! ([`crate::infra::atomic`]).
//!
//! Renderers never touch the network.

pub mod ci;
pub mod cucumber;
pub mod email;
pub mod html;
pub mod index;
pub mod junit;
pub mod recording;
pub mod timeline;

use std::path::Path;

use crate::summary::RunSummary;

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
    crate::infra::atomic::write(&path, bytes)
        .map_err(|source| ReportError::Write { path, source })?;
    files.push(name.to_owned());
    Ok(())
}

/// Write `summary.json` alone: the first output, and the last one left when another cannot
/// be rendered.
pub fn write_summary(
    dir: &Path,
    summary: &RunSummary,
    files: &mut Vec<String>,
) -> Result<(), ReportError> {
    let path = dir.join("summary.json");
    // Streamed to the file: the summary of a large run is tens of megabytes.
    crate::infra::atomic::write_with(&path, |out| {
        crate::infra::json::to_writer_pretty(out, summary).map_err(std::io::Error::from)
    })
    .map_err(|source| ReportError::Write { path, source })?;
    files.push("summary.json".to_owned());
    Ok(())
}

/// Write `summary.json`, `report.html`, `junit.xml`, `cucumber.json`, `checklist.md` and
/// `emails/*.eml` into `dir` (where the screenshots already are); returns the files
/// written, in order.
pub fn write_outputs(dir: &Path, summary: &RunSummary) -> Result<Vec<String>, ReportError> {
    let mut files = Vec::new();
    write_summary(dir, summary, &mut files)?;
    let images: html::Images = summary
        .screenshots
        .iter()
        .filter_map(|shot| Some((shot.file.clone(), std::fs::read(dir.join(&shot.file)).ok()?)))
        .collect();
    let page = html::render(summary, &images)?;
    write(dir, "report.html", page.as_bytes(), &mut files)?;
    write(
        dir,
        "junit.xml",
        junit::render(summary).as_bytes(),
        &mut files,
    )?;
    write(
        dir,
        "cucumber.json",
        cucumber::render(summary).as_bytes(),
        &mut files,
    )?;
    write(
        dir,
        "checklist.md",
        crate::checklist::render_markdown(&summary.checklist).as_bytes(),
        &mut files,
    )?;
    let (drafts, not_drafted) = email::drafts(
        &summary.checklist,
        &summary.target.payer,
        passed(summary),
        Some(("report.html", page.as_bytes())),
    )
    .map_err(|source| ReportError::Write {
        path: dir.join("emails"),
        source,
    })?;
    for draft in drafts {
        write(
            dir,
            &format!("emails/{}", draft.name),
            &draft.bytes,
            &mut files,
        )?;
    }
    if !not_drafted.is_empty() {
        write(
            dir,
            "emails/not-drafted.txt",
            email::not_drafted(&not_drafted).as_bytes(),
            &mut files,
        )?;
    }
    Ok(files)
}

/// Whether the run passed, or how it did not (for the drafts that claim readiness).
fn passed(summary: &RunSummary) -> Result<(), String> {
    use crate::summary::Outcome;
    let counts = &summary.scenario_counts;
    match summary.outcome {
        Outcome::Passed => Ok(()),
        Outcome::Failed => Err(format!(
            "failed ({} of {} scenarios)",
            counts.failed,
            counts.passed + counts.failed + counts.skipped
        )),
        Outcome::AppFailed => Err("passed the payer's checks, but the app failed its own".into()),
        Outcome::Error => Err("could not test everything".into()),
        Outcome::Interrupted => Err("was interrupted".into()),
    }
}

/// Write every output of `summary` into `dir`; the files written (the recordings made
/// during the run among them), for the closing line. A defect in a renderer still leaves
/// `summary.json`, saying so.
pub fn write_run(dir: &Path, summary: &mut RunSummary) -> Result<Vec<String>, ReportError> {
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        write_with_recordings(dir, summary)
    }));
    match written {
        Ok(result) => result,
        Err(panic) => {
            let message = crate::infra::cause::panic_message(&*panic);
            summary.errors.push(format!(
                "onramp failed while writing the report ({message}); summary.json holds the run. This is a defect in onramp: please report it"
            ));
            summary.outcome = crate::summary::Outcome::Error;
            summary.exit_code = crate::infra::exit::ENVIRONMENT;
            let mut files = Vec::new();
            write_summary(dir, summary, &mut files)?;
            Ok(files)
        }
    }
}

fn write_with_recordings(dir: &Path, summary: &RunSummary) -> Result<Vec<String>, ReportError> {
    let mut files = write_outputs(dir, summary)?;
    for recording in [&summary.recording, &summary.app_recording]
        .into_iter()
        .flatten()
    {
        files.push(recording.file.clone());
    }
    if !summary.screenshots.is_empty() {
        files.push(format!("screenshots/ ({} PNG)", summary.screenshots.len()));
    }
    Ok(files)
}

/// Point `<out>/latest` at this run, for CI jobs that publish a fixed path.
pub fn link_latest(dir: &Path) {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return;
    };
    let latest = parent.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(name, &latest);
}
