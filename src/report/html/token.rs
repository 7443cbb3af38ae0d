//! The report's token response.

use serde::Serialize;

use crate::summary::RunSummary;

#[derive(Serialize)]
pub(super) struct TokenView<'a> {
    status: String,
    token_type: &'a str,
    expires_in: String,
    scope_requested: &'a str,
    scope_granted: &'a str,
    patient: &'a str,
    cache_control: &'a str,
    pragma: &'a str,
    refreshed: u32,
    problem: Option<&'a str>,
}

pub(super) fn token(summary: &RunSummary) -> Option<TokenView<'_>> {
    summary.token.as_ref().map(|t| TokenView {
        status: t
            .status
            .map_or_else(|| "no answer".into(), |s| s.to_string()),
        token_type: t.token_type.as_deref().unwrap_or("(none)"),
        expires_in: t
            .expires_in
            .as_ref()
            .map_or_else(|| "(none)".into(), ToString::to_string),
        scope_requested: &t.scope_requested,
        scope_granted: t
            .scope_granted
            .as_deref()
            .unwrap_or("(not given: the requested scope)"),
        patient: t.patient.as_deref().unwrap_or("(not given)"),
        cache_control: t.cache_control.as_deref().unwrap_or("(none)"),
        pragma: t.pragma.as_deref().unwrap_or("(none)"),
        refreshed: t.refreshed,
        problem: t.problem.as_deref(),
    })
}
