//! The run's screenshots as one animation, so a team has a recording of the demo-plan
//! connection at hand: an MP4 when `ffmpeg` is on `PATH`, otherwise an animated PNG, which
//! every current browser plays (`--recording auto|mp4|apng|none`). One frame per browser
//! step, 1.5 s each. It is made off the critical path ([`Film`]): each screenshot goes to
//! ffmpeg's input as it is taken, from a thread of its own, with the encoder set for still
//! frames (2 frames a second, a fast preset); the end of the run only waits for the last
//! frames.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::evidence::Screenshot;
use crate::summary::Recording;

/// Why no recording was made (the run goes on without one).
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("screenshot {file} cannot be read: {reason}")]
    Frame { file: String, reason: String },
    #[error("the recording cannot be written: {0}")]
    Write(String),
}

/// `--recording`: which animation to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// An MP4 when ffmpeg is on `PATH`, else an animated PNG.
    #[default]
    Auto,
    /// An MP4 (needs ffmpeg on `PATH`).
    Mp4,
    /// An animated PNG, without ffmpeg.
    Apng,
    /// No recording.
    None,
}

impl Mode {
    /// Whether this mode can work here: `mp4` needs ffmpeg.
    pub fn check(self) -> Result<(), NeedsFfmpeg> {
        if self == Mode::Mp4 && which::which("ffmpeg").is_err() {
            return Err(NeedsFfmpeg);
        }
        Ok(())
    }
}

/// `--recording mp4` where ffmpeg is not installed.
#[derive(Debug, thiserror::Error)]
#[error(
    "--recording mp4 needs ffmpeg on PATH (Debian: apt-get install -y ffmpeg); --recording apng makes an animated PNG without it"
)]
pub struct NeedsFfmpeg;

/// What the recording thread ends with.
pub type Made = Result<Option<Recording>, RecordingError>;

/// A frame for [`Film`]: a screenshot's file (relative to the run's folder) and its PNG.
struct Frame {
    file: String,
    png: Vec<u8>,
}

/// One recording, made while the run goes on: each screenshot is handed over as it is
/// taken ([`Reel::frame`], which never blocks) to a thread that pipes it into ffmpeg, so
/// what is left at the end ([`Reel::finish`]) is the encoder's last frames.
#[derive(Debug)]
struct Reel {
    frames: std::sync::Mutex<Option<std::sync::mpsc::Sender<Frame>>>,
    done: std::sync::Mutex<Option<std::thread::JoinHandle<Made>>>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Where a reel goes and how long each screenshot shows.
#[derive(Debug, Clone, Copy)]
struct Cut {
    /// The file name without its extension (`recording`, `recording-app`).
    stem: &'static str,
    /// How many frames of 1.5 s each screenshot is held for.
    hold: usize,
}

impl Reel {
    fn start(dir: &Path, mode: Mode, cut: Cut) -> Self {
        let (sender, frames) = std::sync::mpsc::channel();
        let dir = dir.to_owned();
        let done = std::thread::Builder::new()
            .name(format!("onramp-{}", cut.stem))
            .spawn(move || film(&dir, mode, cut, &frames))
            .ok();
        Self {
            frames: std::sync::Mutex::new(done.is_some().then_some(sender)),
            done: std::sync::Mutex::new(done),
        }
    }

    fn frame(&self, file: &str, png: &[u8]) {
        let frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(frames) = frames.as_ref() {
            let _ = frames.send(Frame {
                file: file.to_owned(),
                png: png.to_vec(),
            });
        }
    }

    fn finish(&self) -> Made {
        drop(self.frames.lock().unwrap_or_else(|p| p.into_inner()).take());
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner()).take();
        match done {
            None => Ok(None),
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(RecordingError::Write("the encoder panicked".into()))),
        }
    }
}

/// The run's recordings, made as the screenshots are taken: onramp's own connection to the
/// payer (`recording.*`), and the app under test's pages (`recording-app.*`, the screen
/// recording the payer asks for: each page held 3 s, long enough to read).
#[derive(Debug)]
pub struct Film {
    run: Reel,
    app: Reel,
}

/// What [`Film::finish`] made.
#[derive(Debug)]
pub struct Recordings {
    pub run: Made,
    pub app: Made,
}

impl Film {
    /// Start the recordings of a run whose folder is `dir`.
    pub fn start(dir: &Path, mode: Mode) -> Self {
        Self {
            run: Reel::start(
                dir,
                mode,
                Cut {
                    stem: "recording",
                    hold: 1,
                },
            ),
            app: Reel::start(
                dir,
                mode,
                Cut {
                    stem: "recording-app",
                    hold: 2,
                },
            ),
        }
    }

    /// A screenshot taken in `context`, saved as `file` under the run's folder: the app's
    /// pages ([`crate::evidence::APP_CONTEXT`]) go to the app's recording, the rest to the
    /// run's.
    pub fn frame(&self, context: &str, file: &str, png: &[u8]) {
        if context == crate::evidence::APP_CONTEXT {
            self.app.frame(file, png);
        } else {
            self.run.frame(file, png);
        }
    }

    /// No more frames: wait for the recordings (none of a kind without its screenshots, or
    /// when the mode is `none`).
    pub fn finish(&self) -> Recordings {
        Recordings {
            run: self.run.finish(),
            app: self.app.finish(),
        }
    }
}

/// ffmpeg encoding what it reads on standard input.
struct Encoder {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
}

impl Encoder {
    fn spawn(dir: &Path, stem: &str) -> Result<Self, RecordingError> {
        let ffmpeg = which::which("ffmpeg")
            .map_err(|_| RecordingError::Write("ffmpeg is not on PATH".into()))?;
        // At the lowest priority, on one thread: the run's browser and checks come first,
        // the recording takes what CPU they leave.
        let nice = which::which("nice").ok();
        let mut command = match &nice {
            Some(nice) => {
                let mut command = Command::new(nice);
                command.args(["-n", "19"]).arg(&ffmpeg);
                command
            }
            None => Command::new(&ffmpeg),
        };
        let mut child = command
            .args([
                "-y",
                "-loglevel",
                "error",
                "-f",
                "image2pipe",
                "-c:v",
                "png",
                // Each screenshot shows for 1.5 s.
                "-framerate",
                "2/3",
                "-i",
                "-",
                "-vf",
                "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p",
                // One frame per screenshot, shown for its 1.5 s (ffmpeg's default, 25 a
                // second, encodes 37 times as many; 2 a second still three times), with
                // x264 set for speed and still pictures.
                "-r",
                "2/3",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "stillimage",
                "-threads",
                "1",
                "-movflags",
                "+faststart",
            ])
            .arg(dir.join(format!("{stem}.mp4")))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RecordingError::Write(format!("ffmpeg did not start: {e}")))?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    fn write(&mut self, png: &[u8]) -> Result<(), RecordingError> {
        use std::io::Write as _;
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(RecordingError::Write("ffmpeg's input is closed".into()));
        };
        stdin
            .write_all(png)
            .map_err(|e| RecordingError::Write(format!("ffmpeg stopped reading: {e}")))
    }

    fn finish(mut self, dir: &Path, stem: &str) -> Result<(), RecordingError> {
        use std::io::Read as _;
        drop(self.stdin.take());
        let mut said = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut said);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| RecordingError::Write(format!("ffmpeg did not finish: {e}")))?;
        let file = dir.join(format!("{stem}.mp4"));
        if status.success() && file.is_file() {
            return Ok(());
        }
        let _ = std::fs::remove_file(file);
        Err(RecordingError::Write(format!(
            "ffmpeg failed ({status}): {}",
            crate::infra::text::inert(said.lines().last().unwrap_or("no message"))
        )))
    }
}

impl Drop for Encoder {
    /// An encoder abandoned half way (its input failed) is stopped, not left behind.
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The recording thread: frames in, the recording out.
fn film(
    dir: &Path,
    mode: Mode,
    cut: Cut,
    frames: &std::sync::mpsc::Receiver<Frame>,
) -> Result<Option<Recording>, RecordingError> {
    let wants_mp4 = match mode {
        Mode::None => {
            for _ in frames.iter() {}
            return Ok(None);
        }
        Mode::Apng => false,
        Mode::Mp4 => true,
        Mode::Auto => which::which("ffmpeg").is_ok(),
    };
    let mut shots = Vec::new();
    let mut encoder: Option<Result<Encoder, RecordingError>> = None;
    for frame in frames.iter() {
        if wants_mp4 {
            let live = encoder.get_or_insert_with(|| Encoder::spawn(dir, cut.stem));
            if let Ok(running) = live
                && let Err(error) = (0..cut.hold).try_for_each(|_| running.write(&frame.png))
            {
                // ffmpeg stopped reading: what it said on the way out is the reason.
                let stopped = match encoder.take() {
                    Some(Ok(running)) => running.finish(dir, cut.stem).err().unwrap_or(error),
                    _ => error,
                };
                encoder = Some(Err(stopped));
            }
        }
        for _ in 0..cut.hold {
            shots.push(Screenshot {
                index: shots.len() + 1,
                context: String::new(),
                caption: String::new(),
                file: frame.file.clone(),
                url: String::new(),
            });
        }
    }
    if shots.is_empty() {
        return Ok(None);
    }
    let encoded = match encoder {
        Some(Ok(encoder)) => encoder.finish(dir, cut.stem),
        Some(Err(error)) => Err(error),
        None => Err(RecordingError::Write("ffmpeg was not asked".into())),
    };
    match (encoded, mode) {
        (Ok(()), _) => Ok(Some(Recording {
            file: format!("{}.mp4", cut.stem),
            media_type: "video/mp4".into(),
            frames: shots.len(),
        })),
        (Err(error), Mode::Mp4) => Err(error),
        // Without ffmpeg, or when it failed: the animated PNG.
        (Err(_), _) => animated_png(dir, cut.stem, &shots).map(Some),
    }
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

fn animated_png(dir: &Path, stem: &str, shots: &[Screenshot]) -> Result<Recording, RecordingError> {
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
    crate::infra::atomic::write(&dir.join(format!("{stem}.png")), &bytes)
        .map_err(|e| RecordingError::Write(e.to_string()))?;
    Ok(Recording {
        file: format!("{stem}.png"),
        media_type: "image/apng".into(),
        frames: frames.len(),
    })
}
