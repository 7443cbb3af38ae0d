//! The run's screenshots as one animation, so a team has a recording of the demo-plan
//! connection at hand: an MP4 when `ffmpeg` is on `PATH`, otherwise an animated PNG, which
//! every current browser plays. One frame per browser step, 1.5 s each.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::evidence::Screenshot;
use crate::run::summary::Recording;

/// Why no recording was made (the run goes on without one).
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("screenshot {file} cannot be read: {reason}")]
    Frame { file: String, reason: String },
    #[error("the recording cannot be written: {0}")]
    Write(String),
}

/// Assemble `shots` (files under `dir`) into `dir/recording.*`.
pub fn assemble(dir: &Path, shots: &[Screenshot]) -> Result<Option<Recording>, RecordingError> {
    if shots.is_empty() {
        return Ok(None);
    }
    if let Some(recording) = with_ffmpeg(dir, shots) {
        return Ok(Some(recording));
    }
    animated_png(dir, shots).map(Some)
}

fn with_ffmpeg(dir: &Path, shots: &[Screenshot]) -> Option<Recording> {
    let ffmpeg = which::which("ffmpeg").ok()?;
    let list = dir.join("recording-frames.txt");
    let mut text = String::new();
    for shot in shots {
        text.push_str(&format!(
            "file '{}'\nduration 1.5\n",
            dir.join(&shot.file).display()
        ));
    }
    // The concat demuxer wants the last file twice for its duration to count.
    if let Some(last) = shots.last() {
        text.push_str(&format!("file '{}'\n", dir.join(&last.file).display()));
    }
    std::fs::write(&list, text).ok()?;
    let out = dir.join("recording.mp4");
    let status = Command::new(ffmpeg)
        .args([
            "-y",
            "-loglevel",
            "error",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
        ])
        .arg(&list)
        .args([
            "-vf",
            "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p",
            "-movflags",
            "+faststart",
        ])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    let _ = std::fs::remove_file(&list);
    (status.success() && out.is_file()).then(|| Recording {
        file: "recording.mp4".into(),
        media_type: "video/mp4".into(),
        frames: shots.len(),
    })
}

/// Decode a PNG screenshot into RGBA pixels.
fn rgba(path: &Path) -> Result<(u32, u32, Vec<u8>), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let size = reader
        .output_buffer_size()
        .ok_or("the image is too large")?;
    let mut buffer = vec![0; size];
    let info = reader.next_frame(&mut buffer).map_err(|e| e.to_string())?;
    buffer.truncate(info.buffer_size());
    let pixels = match info.color_type {
        png::ColorType::Rgba => buffer,
        png::ColorType::Rgb => buffer
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => buffer
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => buffer.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => return Err("an indexed PNG after expansion".into()),
    };
    Ok((info.width, info.height, pixels))
}

fn animated_png(dir: &Path, shots: &[Screenshot]) -> Result<Recording, RecordingError> {
    let mut frames = Vec::new();
    for shot in shots {
        let (w, h, pixels) =
            rgba(&dir.join(&shot.file)).map_err(|reason| RecordingError::Frame {
                file: shot.file.clone(),
                reason,
            })?;
        frames.push((w, h, pixels));
    }
    let (width, height) = (frames[0].0, frames[0].1);
    // Frames of another size (a resized window) are left out rather than distorted.
    frames.retain(|(w, h, _)| (*w, *h) == (width, height));
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let count = u32::try_from(frames.len()).unwrap_or(u32::MAX);
        encoder
            .set_animated(count, 0)
            .map_err(|e| RecordingError::Write(e.to_string()))?;
        encoder
            .set_frame_delay(3, 2)
            .map_err(|e| RecordingError::Write(e.to_string()))?;
        let mut writer = encoder
            .write_header()
            .map_err(|e| RecordingError::Write(e.to_string()))?;
        for (_, _, pixels) in &frames {
            writer
                .write_image_data(pixels)
                .map_err(|e| RecordingError::Write(e.to_string()))?;
        }
        writer
            .finish()
            .map_err(|e| RecordingError::Write(e.to_string()))?;
    }
    crate::atomic::write(&dir.join("recording.png"), &bytes)
        .map_err(|e| RecordingError::Write(e.to_string()))?;
    Ok(Recording {
        file: "recording.png".into(),
        media_type: "image/apng".into(),
        frames: frames.len(),
    })
}
