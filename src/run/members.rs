//! The target's members, for the `@isolation` checks. The first member is the run's own
//! (its grant is the [`super::session::Session`]'s and its searches the run's); every other
//! member signs in once, in the same browser, and gets a grant and searches of its own.
//! Then each member's token asks for the others' resources ([`Way`]) and every answer is
//! kept as a [`Probe`] for the checks and the report.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::StepFailure;
use super::context::RunContext;
use super::records::Probe;
use super::session::Grant;
use crate::payer::fhir::{Paging, SearchFailure, SearchResult};
use crate::payer::isolation::{Owner, Way};

impl RunContext {
    /// How the report names member `index`.
    pub fn member_label(&self, index: usize) -> String {
        self.target
            .members
            .get(index)
            .map_or_else(|| format!("member {}", index + 1), |m| m.label.clone())
    }

    /// The grant of member `index`: the run's for 0, else one sign-in and exchange of their
    /// own, made once.
    pub async fn member_grant(&self, index: usize) -> Result<Arc<Grant>, StepFailure> {
        if index == 0 {
            return self.grant().await;
        }
        let cell = Arc::clone(self.members.grants.lock().await.entry(index).or_default());
        if let Some(Err(failure)) = cell.get() {
            return Err(StepFailure::premise(
                &format!("no token for {}", self.member_label(index)),
                failure,
            ));
        }
        cell.get_or_init(|| async {
            let context = format!("Sign-in of {}", self.member_label(index));
            let authorized = self
                .sign_in_as(&context, self.oauth.start(), false, index)
                .await?;
            let answer = self.exchange(&authorized, true).await?;
            if answer.tokens.is_none() {
                return Err(StepFailure::conformance(format!(
                    "{}'s code exchange gave no tokens: {}",
                    self.member_label(index),
                    answer.problem.as_deref().unwrap_or("no answer")
                )));
            }
            Ok(Arc::new(Grant::new(answer, self.target.scope())))
        })
        .await
        .clone()
    }

    /// Member `index`'s Patient id: their token response's `patient`, else the one Patient
    /// their Patient search returns.
    pub async fn member_patient(&self, index: usize) -> Option<String> {
        if index == 0 {
            return self.patient_id().await;
        }
        if let Some(patient) = self.member_grant(index).await.ok()?.patient() {
            return Some(patient);
        }
        match self
            .member_search(index, "Patient")
            .await
            .resources
            .as_slice()
        {
            [only] => only.id.clone(),
            _ => None,
        }
    }

    /// Member `index`'s search of `kind` with their own token, every page, made once (the
    /// run's own for member 0).
    pub async fn member_search(&self, index: usize, kind: &str) -> Arc<SearchResult> {
        if index == 0 {
            return self.search(kind).await;
        }
        let cell = Arc::clone(
            self.members
                .searches
                .lock()
                .await
                .entry((index, kind.to_owned()))
                .or_default(),
        );
        let made = cell.get_or_init(|| async {
            let failed = |failure: StepFailure| SearchResult {
                kind: kind.to_owned(),
                failure: Some(SearchFailure {
                    kind: failure.kind,
                    message: failure.message,
                }),
                ..SearchResult::default()
            };
            let token = match self.member_token(index).await {
                Ok(token) => token,
                Err(failure) => return Arc::new(failed(failure)),
            };
            let paging = Paging {
                page_size: self.target.page_size,
                page_cap: self.target.page_cap,
            };
            Arc::new(
                crate::payer::fhir::search(
                    &self.http,
                    &self.endpoints.fhir_base,
                    kind,
                    &token,
                    paging,
                    &self.validator,
                    |_, _, _| {},
                )
                .await,
            )
        });
        Arc::clone(made.await)
    }

    /// A live access token of member `index`.
    pub async fn member_token(
        &self,
        index: usize,
    ) -> Result<crate::infra::secret::Secret, StepFailure> {
        self.member_grant(index)
            .await?
            .access_token(&self.oauth, &self.recorder)
            .await
    }

    /// The ids of member `index`'s own `kind` resources (their Patient, or those naming
    /// them), from their search.
    pub async fn member_owned(&self, index: usize, kind: &str, patient: &str) -> BTreeSet<String> {
        let member = ("Patient".to_owned(), patient.to_owned());
        self.member_search(index, kind)
            .await
            .resources
            .iter()
            .filter(|r| {
                if &*r.kind == "Patient" {
                    r.id.as_deref() == Some(patient)
                } else {
                    r.owners.iter().any(|o| {
                        crate::payer::access::reference_target(o).as_ref() == Some(&member)
                    })
                }
            })
            .filter_map(|r| r.id.clone())
            .collect()
    }

    /// Ask with member `reader`'s token for `path` (`Type/id` or `Type?query`), and record
    /// what came back of member `owner`'s.
    pub async fn probe(
        &self,
        reader: usize,
        owner: Owner<'_>,
        owner_index: usize,
        way: Way,
        path: &str,
    ) -> Result<Probe, StepFailure> {
        let token = self.member_token(reader).await?;
        let context = format!(
            "Isolation: {}'s token asks for {}'s {}",
            self.member_label(reader),
            self.member_label(owner_index),
            owner.kind
        );
        let url = format!(
            "{}/{path}",
            self.endpoints.fhir_base.as_str().trim_end_matches('/')
        );
        let answer = crate::payer::fhir::read(
            &self.http,
            &self.endpoints.fhir_base,
            path,
            Some(&token),
            &context,
        )
        .await;
        let (status, leaked, verdict) = match answer {
            // No answer is no verdict: onramp could not test (or the host failed earlier).
            Err(error) => return Err(StepFailure::from_http(&error)),
            Ok(response) => {
                let body: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
                let leaked = match (&body, response.status) {
                    (Some(body), 200..=299) => crate::payer::isolation::leaked(body, owner),
                    _ => Vec::new(),
                };
                let verdict = match response.status {
                    _ if !leaked.is_empty() => format!("served {}", leaked.join(", ")),
                    401 | 403 => format!("refused ({})", response.status),
                    404 | 410 => format!("not found ({})", response.status),
                    400..=499 => format!("refused ({})", response.status),
                    200..=299 => match body.as_ref().and_then(|b| b.get("resourceType")) {
                        Some(serde_json::Value::String(kind)) if kind == "Bundle" => {
                            "none of theirs".to_owned()
                        }
                        Some(serde_json::Value::String(kind)) => format!("a {kind}, not theirs"),
                        _ => "an answer that is no FHIR resource".to_owned(),
                    },
                    other => format!("answered {other}"),
                };
                (Some(response.status), leaked, verdict)
            }
        };
        let probe = Probe {
            reader,
            owner: owner_index,
            kind: owner.kind.to_owned(),
            way,
            url: self.recorder.redact(&url),
            status,
            leaked,
            verdict,
        };
        self.members.record(probe.clone());
        Ok(probe)
    }
}
