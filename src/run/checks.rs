//! The verdicts of the resource checks, recorded once, when their step runs (already
//! redacted), for the summary to report per type.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::evidence::Recorder;
use crate::payer::access::Verdict;

/// One check of one type, as its step judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub check: String,
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// Every check's verdict, per resource type, in the order they ran.
#[derive(Debug, Default)]
pub struct Checks {
    by_kind: Mutex<BTreeMap<String, Vec<CheckRecord>>>,
}

impl Checks {
    /// Record `verdict` of `check` on `kind`, redacted.
    pub fn record(&self, recorder: &Recorder, kind: &str, check: &str, verdict: &Verdict) {
        let record = CheckRecord {
            check: check.to_owned(),
            problems: verdict
                .problems
                .iter()
                .map(|p| recorder.redact(p))
                .collect(),
            notes: verdict.notes.iter().map(|n| recorder.redact(n)).collect(),
        };
        let mut by_kind = self.by_kind.lock().unwrap_or_else(|p| p.into_inner());
        let records = by_kind.entry(kind.to_owned()).or_default();
        records.retain(|r| r.check != record.check);
        records.push(record);
    }

    /// The records of `kind`.
    pub fn of(&self, kind: &str) -> Vec<CheckRecord> {
        self.by_kind
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .cloned()
            .unwrap_or_default()
    }
}
