//! The report's resources: per type what was read, its problems, and its findings grouped
//! by rule and path, the commonest first.

use serde::Serialize;

use super::format::plural;
use crate::summary::RunSummary;

/// Groups of findings shown per resource type (by rule and path, the commonest first); the
/// rest are counted, and every finding is in summary.json.
const GROUPS_SHOWN: usize = 100;
/// Example findings shown per group.
const EXAMPLES_SHOWN: usize = 3;

#[derive(Serialize)]
pub(super) struct FindingView<'a> {
    resource: &'a str,
    path: &'a str,
    message: &'a str,
    keyword: &'a str,
    page: usize,
}

#[derive(Serialize)]
pub(super) struct ResourceView<'a> {
    kind: &'a str,
    /// The API it was read from, unless the Patient Access API.
    api: Option<&'static str>,
    status: &'static str,
    count: usize,
    pages: usize,
    invalid: u64,
    problems: &'a [String],
    notes: &'a [String],
    failure: Option<&'a str>,
    finding_groups: Vec<FindingGroupView<'a>>,
    /// Findings in groups not shown.
    findings_more: usize,
    /// `schema 2 · structure 5 · profile 1`.
    tier_counts: String,
    /// Constraints not evaluated, and declared profiles not checked, for a note.
    not_evaluated: String,
    profiles_not_checked: String,
    /// Must-support coverage, a table per profile.
    must_support: Vec<CoverageView<'a>>,
}

/// One profile's must-support coverage.
#[derive(Serialize)]
pub(super) struct CoverageView<'a> {
    profile: &'a str,
    resources: u64,
    present: usize,
    total: usize,
    rows: Vec<CoverageRow<'a>>,
}

#[derive(Serialize)]
pub(super) struct CoverageRow<'a> {
    element: &'a str,
    count: u64,
    missing: bool,
}

/// Findings of one rule at one path (array indexes left out), with a few examples.
#[derive(Serialize)]
pub(super) struct FindingGroupView<'a> {
    tier: &'static str,
    /// The profile's short name, for profile findings.
    profile: Option<&'a str>,
    rule: &'a str,
    path: String,
    count: usize,
    examples: Vec<FindingView<'a>>,
    examples_more: usize,
}

/// `path` without its array indexes: `EOB.item[3].adjudication[1]` → `EOB.item[].adjudication[]`.
fn without_indexes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' if in_index => in_index = false,
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// Findings grouped by tier, rule and path: schema first, then structure, then profile,
/// the commonest first within a tier.
fn finding_groups(findings: &[crate::summary::ResourceFinding]) -> Vec<FindingGroupView<'_>> {
    let mut groups: Vec<FindingGroupView<'_>> = Vec::new();
    let mut index: std::collections::HashMap<(crate::validate::Tier, &str, String), usize> =
        std::collections::HashMap::new();
    for f in findings {
        let path = without_indexes(&f.path);
        let rule = if f.rule.is_empty() {
            &f.keyword
        } else {
            &f.rule
        };
        let at = *index
            .entry((f.tier, rule.as_str(), path.clone()))
            .or_insert_with(|| {
                groups.push(FindingGroupView {
                    tier: f.tier.name(),
                    profile: f
                        .profile
                        .as_deref()
                        .map(|p| p.rsplit('/').next().unwrap_or(p)),
                    rule,
                    path,
                    count: 0,
                    examples: Vec::new(),
                    examples_more: 0,
                });
                groups.len() - 1
            });
        let group = &mut groups[at];
        group.count += 1;
        if group.examples.len() < EXAMPLES_SHOWN {
            group.examples.push(FindingView {
                resource: f.resource.as_deref().unwrap_or("-"),
                path: &f.path,
                message: &f.message,
                keyword: &f.keyword,
                page: f.page,
            });
        } else {
            group.examples_more += 1;
        }
    }
    let rank = |tier: &str| match tier {
        "schema" => 0,
        "structure" => 1,
        _ => 2,
    };
    groups.sort_by_key(|g| (rank(g.tier), std::cmp::Reverse(g.count)));
    groups
}

pub(super) fn resources(summary: &RunSummary) -> Vec<ResourceView<'_>> {
    summary
        .resources
        .iter()
        .map(|r| {
            let mut groups = finding_groups(&r.findings);
            let findings_more = groups.iter().skip(GROUPS_SHOWN).map(|g| g.count).sum();
            groups.truncate(GROUPS_SHOWN);
            ResourceView {
                kind: &r.kind,
                api: (!r.api.is_patient_access()).then(|| r.api.title()),
                status: if r.failure.is_some() || !r.problems.is_empty() || r.invalid > 0 {
                    "failed"
                } else {
                    "passed"
                },
                count: r.count,
                pages: r.pages,
                invalid: r.invalid,
                problems: &r.problems,
                notes: &r.notes,
                failure: r.failure.as_deref(),
                finding_groups: groups,
                findings_more,
                tier_counts: {
                    let counts = crate::summary::finding_counts(&r.findings);
                    ["schema", "structure", "profile"]
                        .iter()
                        .filter_map(|tier| {
                            counts.get(*tier).map(|rules| {
                                format!(
                                    "{tier}: {}",
                                    plural(rules.values().sum::<u64>(), "finding")
                                )
                            })
                        })
                        .chain((r.findings_not_listed > 0).then(|| {
                            format!(
                                "{} more not listed",
                                plural(r.findings_not_listed, "finding")
                            )
                        }))
                        .collect::<Vec<_>>()
                        .join(" · ")
                },
                not_evaluated: r
                    .not_evaluated
                    .iter()
                    .map(|(key, n)| format!("{key} ({n}×)"))
                    .collect::<Vec<_>>()
                    .join(", "),
                profiles_not_checked: r
                    .profiles_not_checked
                    .iter()
                    .map(|(url, n)| format!("{url} ({})", plural(*n, "resource")))
                    .collect::<Vec<_>>()
                    .join(", "),
                must_support: r
                    .must_support
                    .values()
                    .map(|coverage| {
                        let rows: Vec<CoverageRow> = coverage
                            .elements
                            .iter()
                            .map(|(element, count)| CoverageRow {
                                element,
                                count: *count,
                                missing: *count == 0,
                            })
                            .collect();
                        CoverageView {
                            profile: &coverage.profile,
                            resources: coverage.resources,
                            present: rows.iter().filter(|r| !r.missing).count(),
                            total: rows.len(),
                            rows,
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}
