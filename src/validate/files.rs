//! Reading what `onramp validate` is pointed at — `.json` files, `.ndjson` streams,
//! directories, standard input — and checking it in parallel, in input order, in bounded
//! memory.
//!
//! One reader thread cuts the input into batches of whole documents (about
//! [`BATCH_BYTES`] each); the caller's thread checks a batch on the worker pool while the
//! reader fills the next. At most [`BATCHES_IN_FLIGHT`] batches exist at once, so memory
//! depends on the batch size and the largest single document, not on the input's size.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use rayon::prelude::*;

use super::{Checked, Validator};

/// Bytes of input per batch.
pub const BATCH_BYTES: usize = 2 << 20;
/// Batches read ahead of the one being checked.
pub const BATCHES_IN_FLIGHT: usize = 2;
/// The largest single document (JSON file or NDJSON line) onramp reads.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 30;

/// One thing to validate, as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `-`: standard input, NDJSON or a single JSON document.
    Stdin,
    /// A file or a directory.
    Path(PathBuf),
}

impl Input {
    /// `-` is standard input; anything else is a path.
    pub fn parse(text: &str) -> Self {
        if text == "-" {
            Self::Stdin
        } else {
            Self::Path(PathBuf::from(text))
        }
    }
}

/// What happened to one document or one file, in input order.
#[derive(Debug)]
pub enum Event {
    /// A document was checked.
    Checked {
        file: Arc<str>,
        /// 1-based line, for NDJSON.
        line: Option<u64>,
        checked: Checked,
    },
    /// A file could not be read; what was read of it before stays reported.
    Unreadable { file: Arc<str>, reason: String },
    /// A file was started (counted once, even when it is empty).
    FileStarted,
    /// Input bytes consumed, for progress.
    Progress(u64),
}

/// The largest `.json` file looked at as a possible Bulk Data manifest (a manifest of a
/// million output files is about 150 MB; a resource that big is not one).
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// A Bulk Data export's manifest (the `$export` status response, FHIR Bulk Data Access
/// 2.0 §Response - Complete Status): `transactionTime`, `request` and `output[]`, each
/// output an NDJSON file's `url` (and its `type`).
#[derive(serde::Deserialize)]
struct Manifest {
    #[serde(rename = "transactionTime")]
    _transaction_time: serde::de::IgnoredAny,
    output: Vec<ManifestOutput>,
}

#[derive(serde::Deserialize)]
struct ManifestOutput {
    url: String,
}

/// The files `bytes` lists when it is a Bulk Data manifest (read from `path`): a local path
/// or `file:` URL (relative ones from the manifest's folder) for each output, or why one
/// cannot be read. `None` when it is not a manifest (a FHIR resource, anything else).
fn bulk_outputs(bytes: &[u8], path: &Path) -> Option<Vec<Result<PathBuf, String>>> {
    // Cheap before parsing: every manifest names its transaction time; no resource does.
    memchr::memmem::find(bytes, b"\"transactionTime\"")?;
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if value.get("resourceType").is_some() {
        return None;
    }
    let manifest: Manifest = serde_json::from_value(value).ok()?;
    let folder = path.parent().unwrap_or(Path::new("."));
    Some(
        manifest
            .output
            .into_iter()
            .map(|output| output_path(&output.url, folder))
            .collect(),
    )
}

/// Where one output of a manifest is on this machine.
fn output_path(url: &str, folder: &Path) -> Result<PathBuf, String> {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "file" => parsed.to_file_path().map_err(|()| {
            format!(
                "the manifest lists {}, which names no local file",
                crate::infra::origin::without_query(&parsed)
            )
        }),
        Ok(parsed) => Err(format!(
            "the manifest lists {}, a remote file: onramp validate reads local files, so download the export's files (with the export's access token) and list their paths or file: URLs",
            crate::infra::origin::without_query(&parsed)
        )),
        // Not a URL: a path, relative to the manifest's folder.
        Err(_) => Ok(folder.join(url)),
    }
}

/// A document over [`MAX_DOCUMENT_BYTES`].
fn too_large() -> io::Error {
    io::Error::other(format!(
        "the document is larger than {} MiB, the most onramp reads as one document; split it into NDJSON",
        MAX_DOCUMENT_BYTES >> 20
    ))
}

/// What a path that is no regular file is, for a message.
fn kind_of(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = metadata.file_type();
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// How a file's content is split into documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Json,
    Ndjson,
}

fn shape_of(path: &Path) -> Shape {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("ndjson" | "jsonl") => Shape::Ndjson,
        _ => Shape::Json,
    }
}

/// Files a directory contributes: FHIR JSON and NDJSON, found recursively, in name order.
fn is_fhir_file(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("json" | "ndjson" | "jsonl")
    )
}

/// Total size of the files the inputs name, for a progress bar; `None` when unknown (stdin).
pub fn total_bytes(inputs: &[Input]) -> Option<u64> {
    let mut total = 0;
    for input in inputs {
        let Input::Path(path) = input else {
            return None;
        };
        if path.is_dir() {
            for entry in walkdir::WalkDir::new(path)
                .follow_links(true)
                .into_iter()
                .flatten()
            {
                if entry.file_type().is_file() && is_fhir_file(entry.path()) {
                    total += entry.metadata().map_or(0, |m| m.len());
                }
            }
        } else {
            total += std::fs::metadata(path).map_or(0, |m| m.len());
        }
    }
    Some(total)
}

/// A unit of work: one document's bytes in a batch, or a read failure to report in order.
enum Unit {
    Document {
        file: Arc<str>,
        line: Option<u64>,
        range: Range<usize>,
    },
    Unreadable {
        file: Arc<str>,
        reason: String,
    },
    FileStarted,
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    units: Vec<Unit>,
}

impl Batch {
    fn push_document(&mut self, file: &Arc<str>, line: Option<u64>, bytes: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.units.push(Unit::Document {
            file: Arc::clone(file),
            line,
            range: start..self.data.len(),
        });
    }

    fn is_full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.units.len() >= 4096
    }
}

/// Check every input on `pool`, calling `sink` with each event in input order.
pub fn check_inputs(
    validator: &Validator,
    inputs: Vec<Input>,
    pool: &rayon::ThreadPool,
    mut sink: impl FnMut(Event),
) {
    let (sender, receiver) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
    // Checked batches go back to the reader to be refilled: their buffers are already
    // allocated and touched, so reading costs no fresh pages.
    let (recycle, recycled) = sync_channel::<Batch>(BATCHES_IN_FLIGHT + 2);
    let reader = std::thread::Builder::new()
        .name("onramp-reader".into())
        .stack_size(super::STACK_SIZE)
        .spawn(move || {
            let mut reader = Reader {
                batch: Batch::default(),
                send: &sender,
                recycled: &recycled,
            };
            for input in inputs {
                if reader.input(&input).is_err() {
                    return; // the receiving side is gone: stop reading
                }
            }
            let _ = reader.flush();
        });
    let Ok(reader) = reader else {
        sink(Event::Unreadable {
            file: "-".into(),
            reason: "cannot start the reader thread".into(),
        });
        return;
    };
    drain(validator, &receiver, &recycle, pool, &mut sink);
    // A reader that panicked has already had its batches drained; nothing is left to report.
    let _ = reader.join();
}

fn drain(
    validator: &Validator,
    receiver: &Receiver<Batch>,
    recycle: &SyncSender<Batch>,
    pool: &rayon::ThreadPool,
    sink: &mut impl FnMut(Event),
) {
    for mut batch in receiver {
        let data = &batch.data;
        let results: Vec<Option<Checked>> = pool.install(|| {
            batch
                .units
                .par_iter()
                .map(|unit| match unit {
                    Unit::Document { range, .. } => {
                        Some(validator.check_bytes(&data[range.clone()]))
                    }
                    _ => None,
                })
                .collect()
        });
        let bytes = batch.data.len() as u64;
        for (unit, result) in batch.units.drain(..).zip(results) {
            match (unit, result) {
                (Unit::Document { file, line, .. }, Some(checked)) => {
                    sink(Event::Checked {
                        file,
                        line,
                        checked,
                    });
                }
                (Unit::Unreadable { file, reason }, _) => sink(Event::Unreadable { file, reason }),
                (Unit::FileStarted, _) => sink(Event::FileStarted),
                (Unit::Document { .. }, None) => {}
            }
        }
        sink(Event::Progress(bytes));
        batch.data.clear();
        // The reader may have finished; an unreturned buffer is simply freed.
        let _ = recycle.try_send(batch);
    }
}

struct Reader<'s> {
    batch: Batch,
    send: &'s SyncSender<Batch>,
    recycled: &'s Receiver<Batch>,
}

/// The receiver hung up; stop reading.
struct Stopped;

impl Reader<'_> {
    fn flush(&mut self) -> Result<(), Stopped> {
        if self.batch.units.is_empty() {
            return Ok(());
        }
        let next = self.recycled.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.batch, next);
        self.send.send(batch).map_err(|_| Stopped)
    }

    fn flush_if_full(&mut self) -> Result<(), Stopped> {
        if self.batch.is_full() {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn unreadable(&mut self, file: &Arc<str>, error: &io::Error) -> Result<(), Stopped> {
        self.batch.units.push(Unit::Unreadable {
            file: Arc::clone(file),
            reason: error.to_string(),
        });
        self.flush_if_full()
    }

    fn input(&mut self, input: &Input) -> Result<(), Stopped> {
        match input {
            Input::Stdin => {
                let name: Arc<str> = "-".into();
                self.batch.units.push(Unit::FileStarted);
                let stdin = io::stdin().lock();
                self.stdin(&name, BufReader::with_capacity(1 << 20, stdin))
            }
            Input::Path(path) if path.is_dir() => {
                // Links are followed (to files and folders alike); a link that loops back
                // or leads nowhere is reported, not skipped.
                for entry in walkdir::WalkDir::new(path)
                    .follow_links(true)
                    .sort_by_file_name()
                {
                    match entry {
                        Ok(entry) if entry.file_type().is_file() && is_fhir_file(entry.path()) => {
                            self.file(entry.path(), shape_of(entry.path()))?;
                        }
                        Ok(_) => {}
                        Err(error) => {
                            let file: Arc<str> =
                                error.path().unwrap_or(path).display().to_string().into();
                            let reason = error
                                .io_error()
                                .map_or_else(|| error.to_string(), ToString::to_string);
                            self.batch.units.push(Unit::Unreadable { file, reason });
                        }
                    }
                }
                Ok(())
            }
            Input::Path(path) => self.file(path, shape_of(path)),
        }
    }

    /// A file, split into documents as `shape` says (a Bulk Data output is NDJSON whatever
    /// its name).
    fn file(&mut self, path: &Path, shape: Shape) -> Result<(), Stopped> {
        let name: Arc<str> = path.display().to_string().into();
        self.batch.units.push(Unit::FileStarted);
        // Before opening: opening a FIFO waits for a writer, and a device never ends.
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) => return self.unreadable(&name, &error),
        };
        if !metadata.is_file() {
            let error = io::Error::other(format!(
                "it is {}, not a regular file; onramp reads files, folders and standard input: pass it as `onramp validate - < {}`",
                kind_of(&metadata),
                path.display()
            ));
            return self.unreadable(&name, &error);
        }
        if shape == Shape::Json && metadata.len() > MAX_DOCUMENT_BYTES {
            return self.unreadable(&name, &too_large());
        }
        let file = match File::open(path) {
            Ok(file) => file,
            Err(error) => return self.unreadable(&name, &error),
        };
        match shape {
            Shape::Ndjson => self.ndjson(&name, BufReader::with_capacity(1 << 20, file), 0),
            Shape::Json if metadata.len() <= MAX_MANIFEST_BYTES => {
                let mut bytes = Vec::new();
                if let Err(error) = BufReader::new(file).read_to_end(&mut bytes) {
                    return self.unreadable(&name, &error);
                }
                match bulk_outputs(&bytes, path) {
                    Some(outputs) => self.export(&name, outputs),
                    None => self.whole(&name, io::empty(), None, bytes),
                }
            }
            Shape::Json => self.whole(&name, file, None, Vec::new()),
        }
    }

    /// The NDJSON files a Bulk Data export's manifest lists, each validated as NDJSON.
    fn export(
        &mut self,
        manifest: &Arc<str>,
        outputs: Vec<Result<PathBuf, String>>,
    ) -> Result<(), Stopped> {
        for output in outputs {
            match output {
                Ok(path) => self.file(&path, Shape::Ndjson)?,
                Err(reason) => {
                    self.batch.units.push(Unit::Unreadable {
                        file: Arc::clone(manifest),
                        reason,
                    });
                    self.flush_if_full()?;
                }
            }
        }
        Ok(())
    }

    /// One JSON document: the rest of `source`, after `head`.
    fn whole(
        &mut self,
        name: &Arc<str>,
        source: impl Read,
        line: Option<u64>,
        mut head: Vec<u8>,
    ) -> Result<(), Stopped> {
        let mut limited = source.take(MAX_DOCUMENT_BYTES + 1 - head.len() as u64);
        if let Err(error) = limited.read_to_end(&mut head) {
            return self.unreadable(name, &error);
        }
        if head.len() as u64 > MAX_DOCUMENT_BYTES {
            return self.unreadable(name, &too_large());
        }
        self.batch.push_document(name, line, &head);
        self.flush_if_full()
    }

    /// NDJSON: one document per line, read straight into the batch; blank lines are
    /// skipped but counted.
    fn ndjson(
        &mut self,
        name: &Arc<str>,
        mut source: impl BufRead,
        mut line: u64,
    ) -> Result<(), Stopped> {
        // Documents read so far (stdin's first line counts: it is passed in as `line` 1).
        let mut documents = line;
        loop {
            let start = self.batch.data.len();
            let read = (&mut source)
                .take(MAX_DOCUMENT_BYTES + 1)
                .read_until(b'\n', &mut self.batch.data);
            let end = self.batch.data.len();
            match read {
                Ok(0) => {
                    // Not one document in the whole input: said as for an empty `.json`.
                    if documents == 0 {
                        self.batch.push_document(name, None, b"");
                        self.flush_if_full()?;
                    }
                    return Ok(());
                }
                Ok(_) => {}
                Err(error) => {
                    self.batch.data.truncate(start);
                    return self.unreadable(name, &error);
                }
            }
            line += 1;
            if (end - start) as u64 > MAX_DOCUMENT_BYTES {
                self.batch.data.truncate(start);
                let error = io::Error::other(format!(
                    "line {line} is longer than {} MiB, the most onramp reads as one document",
                    MAX_DOCUMENT_BYTES >> 20
                ));
                return self.unreadable(name, &error);
            }
            if self.batch.data[start..].iter().all(u8::is_ascii_whitespace) {
                self.batch.data.truncate(start);
                continue;
            }
            // The line ending is not part of the document: positions in messages stay on it.
            let content = &self.batch.data[start..end];
            let trimmed = content.len()
                - content
                    .iter()
                    .rev()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .count();
            self.batch.units.push(Unit::Document {
                file: Arc::clone(name),
                line: Some(line),
                range: start..start + trimmed,
            });
            documents += 1;
            self.flush_if_full()?;
        }
    }

    /// Standard input is NDJSON when its first line is a whole JSON document, and one JSON
    /// document otherwise (a pretty-printed resource starts with a line holding only `{`).
    fn stdin(&mut self, name: &Arc<str>, mut source: impl BufRead) -> Result<(), Stopped> {
        let mut head = Vec::new();
        let mut skipped = 0;
        loop {
            head.clear();
            match (&mut source)
                .take(MAX_DOCUMENT_BYTES + 1)
                .read_until(b'\n', &mut head)
            {
                Ok(0) => {
                    // Nothing but blank lines: said as for an empty `.json`.
                    self.batch.push_document(name, None, b"");
                    return self.flush_if_full();
                }
                Ok(_) => {}
                Err(error) => return self.unreadable(name, &error),
            }
            // A byte order mark opens the stream, on a line of its own if need be.
            let content = match skipped {
                0 => head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head),
                _ => &head,
            };
            if !content.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            skipped += 1;
        }
        // A line too deep to parse is a whole line too (a pretty-printed document starts
        // with `{` alone); a byte order mark does not make NDJSON one document.
        let probe = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
        if super::deeper_than(probe, super::MAX_DEPTH).is_some()
            || sonic_rs::from_slice::<sonic_rs::value::Value>(probe).is_ok()
        {
            self.batch.push_document(name, Some(skipped + 1), &head);
            self.flush_if_full()?;
            self.ndjson(name, source, skipped + 1)
        } else {
            self.whole(name, source, None, head)
        }
    }
}
