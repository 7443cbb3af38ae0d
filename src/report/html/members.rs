//! The report's members (`@isolation`): each member's sign-in, what they read, and what
//! their token got of the others' data.

use serde::Serialize;

use crate::summary::RunSummary;

/// One member's section (`@isolation`).
#[derive(Serialize)]
pub(super) struct MemberView<'a> {
    label: &'a str,
    patient: &'a str,
    status: &'static str,
    problem: Option<&'a str>,
    served: String,
    asked: usize,
    refused: usize,
    answered_without: usize,
    leaked: usize,
    leaks: &'a [crate::summary::MemberLeak],
}

pub(super) fn members(summary: &RunSummary) -> Vec<MemberView<'_>> {
    summary
        .members
        .iter()
        .map(|m| MemberView {
            label: &m.label,
            patient: m.patient.as_deref().unwrap_or("not known"),
            status: if m.problem.is_some() || !m.leaks.is_empty() {
                "failed"
            } else {
                "passed"
            },
            problem: m.problem.as_deref(),
            served: if m.resources.is_empty() {
                "nothing read".to_owned()
            } else {
                m.resources
                    .iter()
                    .map(|r| format!("{} {}", r.count, r.kind))
                    .collect::<Vec<_>>()
                    .join(" · ")
            },
            asked: m.asked,
            refused: m.refused,
            answered_without: m.answered_without,
            leaked: m.leaks.len(),
            leaks: &m.leaks,
        })
        .collect()
}
