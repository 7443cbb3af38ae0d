//! The report's production-access checklist.

use serde::Serialize;

use crate::checklist::ItemStatus;
use crate::summary::RunSummary;

#[derive(Serialize)]
pub(super) struct ItemView<'a> {
    status: &'static str,
    label: &'a str,
    value: Option<&'a str>,
    detail: &'a str,
    todo: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct ChecklistView<'a> {
    done: usize,
    total: usize,
    summary: String,
    items: Vec<ItemView<'a>>,
}

pub(super) fn checklist(summary: &RunSummary) -> ChecklistView<'_> {
    let checklist = &summary.checklist;
    let done = checklist.items.len() - checklist.missing();
    ChecklistView {
        done,
        total: checklist.items.len(),
        summary: match &checklist.manifest {
            Some(path) => format!(
                "{done} of {} items ready, from {}.",
                checklist.items.len(),
                path.display()
            ),
            None => {
                "No onboarding manifest: run `onramp init`, fill in onboarding.toml, and run again."
                    .into()
            }
        },
        items: checklist
            .items
            .iter()
            .map(|i| ItemView {
                status: match i.status {
                    ItemStatus::Complete => "complete",
                    ItemStatus::Missing => "missing",
                    ItemStatus::Invalid => "invalid",
                },
                label: &i.label,
                value: i.value.as_deref(),
                detail: &i.detail,
                todo: i.todo.as_deref(),
            })
            .collect(),
    }
}
