//! Writing `onramp validate` results as they arrive: one text line per finding and a
//! summary line, or one JSON document whose findings are streamed out one by one.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::Finding;
use super::files::Event;
use crate::infra::text::inert;

/// Output format of `onramp validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `file:line  Type/id  path  message`, then a summary line.
    Text,
    /// One JSON document: `{"files","resources","invalid","findings":[...],"errors":[...]}`.
    Json,
    /// One finding per line, as each JSON finding (a streaming filter: nothing for valid
    /// documents unless asked, [`Writer::with_valid`]; the summary goes to standard error).
    Ndjson,
}

/// Counts over everything checked.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub files: u64,
    pub resources: u64,
    pub invalid: u64,
    pub findings: u64,
    pub unreadable: u64,
    /// Constraints that applied but could not be evaluated, and how often.
    pub undecided: BTreeMap<Box<str>, u64>,
    /// Declared profiles onramp does not have, and how many resources declared each.
    pub unknown_profiles: BTreeMap<Box<str>, u64>,
    /// Must-support coverage per profile, when counted.
    pub must_support: super::must_support::Tally,
    /// Profiles declared without a version → the IG each was checked against.
    pub resolved_profiles: BTreeMap<Box<str>, Box<str>>,
    /// Findings counted but not listed, past the first [`super::MAX_FINDINGS`] of a document.
    pub left_off: u64,
}

/// A finding with where it was found, as the JSON output spells it.
#[derive(Serialize)]
struct Located<'a> {
    file: &'a str,
    line: Option<u64>,
    entry: Option<usize>,
    resource: Option<&'a str>,
    path: &'a str,
    pointer: &'a str,
    keyword: &'a str,
    message: &'a str,
    tier: &'static str,
    rule: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
}

/// A document without findings, as the NDJSON output writes it when asked
/// ([`Writer::with_valid`]).
#[derive(Serialize)]
struct Valid<'a> {
    file: &'a str,
    line: Option<u64>,
    valid: bool,
    resources: u64,
}

#[derive(Serialize)]
struct Unreadable {
    file: String,
    reason: String,
}

/// Writes results to `out` (standard output) and read failures to `err` (standard error).
pub struct Writer<W: Write, E: Write> {
    format: Format,
    out: W,
    err: E,
    totals: Totals,
    unreadable: Vec<Unreadable>,
    console: crate::infra::console::Console,
    /// Whether a document without findings gets a line too.
    valid: bool,
}

impl<W: Write, E: Write> Writer<W, E> {
    /// Start the output (the JSON document's opening).
    pub fn begin(format: Format, mut out: W, err: E) -> io::Result<Self> {
        if format == Format::Json {
            out.write_all(b"{\"findings\":[")?;
        }
        Ok(Self {
            format,
            out,
            err,
            totals: Totals::default(),
            unreadable: Vec::new(),
            console: crate::infra::console::Console::default(),
            valid: false,
        })
    }

    /// Also write a line for every document without findings (text and NDJSON; the JSON
    /// document counts them): a pipeline that must account for every input line, valid or
    /// not.
    pub fn with_valid(self, valid: bool) -> Self {
        Self { valid, ..self }
    }

    /// Colour the text output as `console` allows (plain by default).
    pub fn with_console(self, console: crate::infra::console::Console) -> Self {
        Self { console, ..self }
    }

    /// Counts so far.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Record one event.
    pub fn event(&mut self, event: Event) -> io::Result<()> {
        match event {
            Event::FileStarted => self.totals.files += 1,
            Event::Progress(_) => {}
            Event::Unreadable { file, reason } => {
                self.totals.unreadable += 1;
                writeln!(
                    self.err,
                    "onramp: cannot read {}: {}",
                    inert(&file),
                    inert(&reason)
                )?;
                self.unreadable.push(Unreadable {
                    file: file.to_string(),
                    reason,
                });
            }
            Event::Checked {
                file,
                line,
                checked,
            } => {
                self.totals.resources += checked.resources;
                self.totals.invalid += checked.invalid;
                for (key, count) in &checked.undecided {
                    *self.totals.undecided.entry(key.clone()).or_default() += count;
                }
                for (url, count) in &checked.unknown_profiles {
                    *self.totals.unknown_profiles.entry(url.clone()).or_default() += count;
                }
                super::must_support::merge(&mut self.totals.must_support, &checked.must_support);
                for (url, ig) in &checked.resolved_profiles {
                    self.totals
                        .resolved_profiles
                        .entry(url.clone())
                        .or_insert_with(|| ig.clone());
                }
                for finding in &checked.findings {
                    self.finding(&file, line, finding)?;
                }
                if self.valid && checked.findings.is_empty() && checked.left_off == 0 {
                    self.valid_document(&file, line, checked.resources)?;
                }
                if checked.left_off > 0 {
                    self.totals.left_off += checked.left_off;
                    self.totals.findings += checked.left_off;
                    if self.format != Format::Json {
                        let location = location(&file, line, None);
                        let to: &mut dyn Write = if self.format == Format::Ndjson {
                            &mut self.err
                        } else {
                            &mut self.out
                        };
                        writeln!(
                            to,
                            "{}  and {} more in this document, not listed (the first {} are)",
                            inert(&location),
                            plural(checked.left_off, "finding"),
                            super::MAX_FINDINGS
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A line for a document without findings.
    fn valid_document(&mut self, file: &str, line: Option<u64>, resources: u64) -> io::Result<()> {
        match self.format {
            Format::Ndjson => {
                let valid = Valid {
                    file,
                    line,
                    valid: true,
                    resources,
                };
                crate::infra::json::to_writer(&mut self.out, &valid)?;
                self.out.write_all(b"\n")
            }
            Format::Text => writeln!(
                self.out,
                "{}  valid ({})",
                inert(&location(file, line, None)),
                plural(resources, "resource")
            ),
            Format::Json => Ok(()),
        }
    }

    fn finding(&mut self, file: &str, line: Option<u64>, finding: &Finding) -> io::Result<()> {
        let first = self.totals.findings == 0;
        self.totals.findings += 1;
        match self.format {
            Format::Json | Format::Ndjson => {
                if !first && self.format == Format::Json {
                    self.out.write_all(b",")?;
                }
                let located = Located {
                    file,
                    line,
                    entry: finding.entry,
                    resource: finding.resource.as_deref(),
                    path: &finding.path,
                    pointer: &finding.pointer,
                    keyword: &finding.keyword,
                    message: &finding.message,
                    tier: finding.tier.name(),
                    rule: &finding.rule,
                    profile: finding.profile.as_deref(),
                };
                crate::infra::json::to_writer(&mut self.out, &located)?;
                if self.format == Format::Ndjson {
                    self.out.write_all(b"\n")?;
                }
            }
            Format::Text => {
                let location = location(file, line, finding.entry);
                let resource = finding.resource.as_deref().unwrap_or("-");
                let path = if finding.path.is_empty() {
                    "-"
                } else {
                    &finding.path
                };
                writeln!(
                    self.out,
                    "{}  {}  {}  {}  [{} {}]",
                    inert(&location),
                    inert(resource),
                    inert(path),
                    inert(&finding.message),
                    finding.tier.name(),
                    inert(&finding.rule)
                )?;
            }
        }
        Ok(())
    }

    /// Finish the output: the JSON document's counts, or the text summary line.
    pub fn finish(mut self) -> io::Result<Totals> {
        let totals = std::mem::take(&mut self.totals);
        match self.format {
            Format::Json => {
                self.out.write_all(b"],\"errors\":")?;
                crate::infra::json::to_writer(&mut self.out, &self.unreadable)?;
                if totals.left_off > 0 {
                    write!(self.out, ",\"findings_not_listed\":{}", totals.left_off)?;
                }
                self.out.write_all(b",\"not_evaluated\":")?;
                crate::infra::json::to_writer(&mut self.out, &totals.undecided)?;
                self.out.write_all(b",\"profiles_not_checked\":")?;
                crate::infra::json::to_writer(&mut self.out, &totals.unknown_profiles)?;
                if !totals.resolved_profiles.is_empty() {
                    self.out.write_all(b",\"profiles_resolved\":")?;
                    crate::infra::json::to_writer(&mut self.out, &totals.resolved_profiles)?;
                }
                if !totals.must_support.is_empty() {
                    self.out.write_all(b",\"must_support\":")?;
                    crate::infra::json::to_writer(&mut self.out, &totals.must_support)?;
                }
                write!(
                    self.out,
                    ",\"files\":{},\"resources\":{},\"invalid\":{}}}",
                    totals.files, totals.resources, totals.invalid
                )?;
                writeln!(self.out)?;
            }
            Format::Ndjson => {
                // Standard output holds findings only: what a pipeline reads.
                for line in must_support_lines(&totals.must_support) {
                    writeln!(self.err, "{}", inert(&line))?;
                }
                writeln!(self.err, "{}", inert(&summary(&totals)))?;
            }
            Format::Text => {
                let colour = if totals.findings > 0 || totals.unreadable > 0 {
                    "31"
                } else {
                    "32"
                };
                // Profile and element names come from packages and resources: inert.
                for line in must_support_lines(&totals.must_support) {
                    writeln!(self.out, "{}", inert(&line))?;
                }
                writeln!(
                    self.out,
                    "{}",
                    self.console.paint_out(colour, &inert(&summary(&totals)))
                )?;
            }
        }
        self.out.flush()?;
        Ok(totals)
    }
}

/// Where a finding is, as the text output writes it: `file[:line][:entry[N]]`.
fn location(file: &str, line: Option<u64>, entry: Option<usize>) -> String {
    let mut location = file.to_owned();
    if let Some(line) = line {
        location.push_str(&format!(":{line}"));
    }
    if let Some(entry) = entry {
        location.push_str(&format!(":entry[{entry}]"));
    }
    location
}

/// Must-support coverage, a profile per paragraph: its resources, then each element with
/// how many carry it; a missing one is a warning (Inferno skips where data lacks it).
pub fn must_support_lines(tally: &super::must_support::Tally) -> Vec<String> {
    let mut lines = Vec::new();
    for coverage in tally.values() {
        let missing: Vec<&str> = coverage.missing().collect();
        lines.push(format!(
            "must support: {} ({}): {} of {} elements present{}",
            coverage.profile,
            plural(coverage.resources, "resource"),
            coverage.elements.len() - missing.len(),
            coverage.elements.len(),
            if missing.is_empty() {
                ""
            } else {
                "; warning: missing in every resource"
            }
        ));
        for (id, count) in &coverage.elements {
            let mark = if *count == 0 { "MISSING" } else { "" };
            lines.push(format!("  {count:>6}  {id}  {mark}").trim_end().to_owned());
        }
    }
    lines
}

/// `3 files, 1204 resources: 2 invalid (5 findings)`.
pub fn summary(totals: &Totals) -> String {
    let mut text = format!(
        "{}, {}: ",
        plural(totals.files, "file"),
        plural(totals.resources, "resource")
    );
    if totals.findings == 0 {
        text.push_str("all valid");
    } else {
        text.push_str(&format!(
            "{} invalid ({})",
            totals.invalid,
            plural(totals.findings, "finding")
        ));
    }
    if totals.unreadable > 0 {
        text.push_str(&format!(
            "; {} could not be read",
            plural(totals.unreadable, "file")
        ));
    }
    let prefix = super::profile::BINDING_PREFIX;
    let keys: Vec<&str> = totals
        .undecided
        .keys()
        .map(|k| &**k)
        .filter(|k| !k.starts_with(prefix))
        .collect();
    if !keys.is_empty() {
        text.push_str(&format!(
            "; {} not evaluated ({})",
            plural(keys.len() as u64, "constraint"),
            list(&keys, 6)
        ));
    }
    let sets: Vec<String> = totals
        .undecided
        .iter()
        .filter_map(|(k, n)| k.strip_prefix(prefix).map(|set| format!("{set} ×{n}")))
        .collect();
    if !sets.is_empty() {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        text.push_str(&format!(
            "; codes not judged offline in {} ({})",
            plural(sets.len() as u64, "value set"),
            list(&sets, 4)
        ));
    }
    let mut by_ig: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (url, ig) in &totals.resolved_profiles {
        by_ig
            .entry(ig)
            .or_default()
            .push(url.rsplit('/').next().unwrap_or(url));
    }
    for (ig, urls) in by_ig {
        text.push_str(&format!(
            "; declared without a version, checked against {ig}: {}",
            list(&urls, 4)
        ));
    }
    if !totals.unknown_profiles.is_empty() {
        let resources: u64 = totals.unknown_profiles.values().sum();
        let urls: Vec<&str> = totals
            .unknown_profiles
            .keys()
            .map(|k| k.rsplit('/').next().unwrap_or(k))
            .collect();
        text.push_str(&format!(
            "; {} declared not checked ({}: in no IG loaded, or not in that version; add one with --ig)",
            plural(resources, "profile"),
            list(&urls, 4)
        ));
    }
    text
}

fn list(items: &[&str], limit: usize) -> String {
    let mut text = items
        .iter()
        .take(limit)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > limit {
        text.push_str(&format!(", and {} more", items.len() - limit));
    }
    text
}

pub fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
