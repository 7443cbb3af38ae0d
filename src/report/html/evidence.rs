//! The report's evidence of the browser: the screenshots, inlined, and the recording.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::Images;
use crate::summary::RunSummary;

#[derive(Serialize)]
pub(super) struct ShotView<'a> {
    index: usize,
    anchor: String,
    caption: &'a str,
    context: &'a str,
    /// Host and path of the page (its query is in summary.json).
    place: String,
    data: String,
}

#[derive(Serialize)]
pub(super) struct RecordingView<'a> {
    file: &'a str,
    description: String,
    caveat: &'static str,
}

pub(super) fn screenshots<'a>(summary: &'a RunSummary, images: &Images) -> Vec<ShotView<'a>> {
    summary
        .screenshots
        .iter()
        .filter_map(|shot| {
            let bytes = images.get(&shot.file)?;
            Some(ShotView {
                index: shot.index,
                anchor: format!("shot-{}", shot.index),
                caption: &shot.caption,
                context: &shot.context,
                place: url::Url::parse(&shot.url).map_or_else(
                    |_| shot.url.clone(),
                    |u| {
                        format!(
                            "{}{}",
                            u.host_str()
                                .map(|h| format!(
                                    "{h}{}",
                                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                                ))
                                .unwrap_or_default(),
                            u.path()
                        )
                    },
                ),
                data: format!("data:image/png;base64,{}", STANDARD.encode(bytes)),
            })
        })
        .collect()
}

pub(super) fn recording(summary: &RunSummary) -> Option<RecordingView<'_>> {
    summary.recording.as_ref().map(|r| RecordingView {
        file: &r.file,
        description: format!(
            "{} frames of the harness's browser signing the test member in ({}), one per browser step.",
            r.frames, r.media_type
        ),
        caveat: "It shows onramp's own connection to the Demo Health Plan, not your app's user interface: the payer asks for a recording of your app connecting and displaying the member's data.",
    })
}
