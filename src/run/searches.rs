//! The searches of a run: each required type read once (every page, validated as it
//! arrives) and shared by every check that needs it, with a progress spinner on a terminal.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::context::RunContext;
use crate::payer::fhir::{Paging, SearchFailure, SearchResult};

/// The most pages [`RunContext::search_query`] reads.
pub const QUERY_PAGE_CAP: usize = 20;

impl RunContext {
    /// The search for `kind`, run once with the run's access token and shared (not
    /// copied: a member may have 100,000 claims).
    pub async fn search(&self, kind: &str) -> Arc<SearchResult> {
        let cell = self.searches.cell(kind).await;
        let made = cell.get_or_init(|| async { Arc::new(self.run_search(kind).await) });
        Arc::clone(made.await)
    }

    async fn run_search(&self, kind: &str) -> SearchResult {
        let token = match self.access_token().await {
            Ok(token) => token,
            Err(failure) => return not_read(kind, failure),
        };
        // A type the server does not search is read by the references to it (CARIN
        // requires only read of Organization, Practitioner and Patient).
        if let Some(capability) = self.server_capability().await
            && capability.resources.contains_key(kind)
            && !capability.searches(kind)
        {
            return Box::pin(self.read_by_reference(kind, &token)).await;
        }
        let clinical = self.target.clinical_resources.iter().any(|k| k == kind);
        // A clinical type US Core does not search by patient (Medication) is read by the
        // references to it in the member's clinical data.
        if clinical && !crate::payer::clinical::searched_by_patient(kind) {
            return Box::pin(self.read_by_reference(kind, &token)).await;
        }
        let query = if clinical {
            match self.clinical_query(kind).await {
                Ok(query) => query,
                Err(failure) => return not_read(kind, failure),
            }
        } else {
            Vec::new()
        };
        let bar = self.searches.progress_bar(kind);
        let started = std::time::Instant::now();
        let paging = Paging {
            page_size: self.target.page_size,
            page_cap: self.target.page_cap,
        };
        let result = crate::payer::fhir::search_with(
            &self.http,
            &self.endpoints.fhir_base,
            kind,
            &query,
            Some(&token),
            paging,
            &self.validator,
            |pages, resources, findings| {
                let rate = resources as f64 / started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{pages} page{}, {resources} resources ({rate:.0}/s), {findings} finding{}",
                    if pages == 1 { "" } else { "s" },
                    if findings == 1 { "" } else { "s" }
                ));
            },
        )
        .await;
        bar.finish_and_clear();
        result
    }

    /// The search that reads every `kind` of the member's as US Core requires it
    /// ([`crate::payer::clinical::first_query`]), said in the evidence.
    async fn clinical_query(
        &self,
        kind: &str,
    ) -> Result<Vec<(String, String)>, super::StepFailure> {
        use crate::payer::clinical;
        let patient = Box::pin(self.patient_id()).await.ok_or_else(|| {
            super::StepFailure::blocked(format!(
                "whose {kind} to read is unknown: the token response named no patient and the Patient search did not return exactly one"
            ))
        })?;
        let query = match clinical::first_query(kind, &patient) {
            Some(query) => {
                let codes: Vec<&str> = query.iter().map(|(c, _)| c.as_str()).collect();
                self.recorder.note(
                    kind,
                    &format!(
                        "read with {kind}?{}, a search US Core {}'s CapabilityStatement makes SHALL",
                        codes.join("&"),
                        clinical::version()
                    ),
                );
                query
            }
            None => {
                self.recorder.note(
                    kind,
                    &format!(
                        "read with {kind}?patient: US Core {} makes no search of {kind} SHALL that onramp can fill in before it has the member's data",
                        clinical::version()
                    ),
                );
                vec![("patient".to_owned(), format!("Patient/{patient}"))]
            }
        };
        Ok(query)
    }

    /// `kind` read one by one, by the references to it in the member's searchable types.
    async fn read_by_reference(
        &self,
        kind: &str,
        token: &crate::infra::secret::Secret,
    ) -> SearchResult {
        let capability = self.server_capability().await.unwrap_or_default();
        let mut ids: Vec<String> = Vec::new();
        // A clinical type is referenced by the clinical data (a MedicationRequest's
        // medicationReference), a claims type by the claims.
        let sources = if self.target.clinical_resources.iter().any(|k| k == kind) {
            &self.target.clinical_resources
        } else {
            &self.target.required_resources
        };
        for source in sources {
            if source == kind || !capability.searches(source) {
                continue;
            }
            for resource in &Box::pin(self.search(source)).await.resources {
                for reference in &resource.references {
                    if let Some((target, id)) = crate::payer::access::reference_target(reference)
                        && target == kind
                        && !ids.contains(&id)
                    {
                        ids.push(id);
                    }
                }
            }
        }
        let why = if sources == &self.target.clinical_resources {
            format!("US Core searches {kind} by no patient")
        } else {
            format!("the CapabilityStatement offers no search-type for {kind}")
        };
        self.recorder.note(
            kind,
            &format!(
                "{why}: its {} resources referenced by the member's data were read one by one",
                ids.len()
            ),
        );
        crate::payer::fhir::read_each(
            &self.http,
            &self.endpoints.fhir_base,
            kind,
            &ids,
            token,
            &self.validator,
        )
        .await
    }

    /// A search of `kind` with `query`, with the run's token: every page's Bundle, following
    /// `next` links (at most [`QUERY_PAGE_CAP`] pages). Unlike [`RunContext::search`] it is
    /// not shared, and a page that is no searchset Bundle ends it with a failure.
    pub async fn search_query(
        &self,
        kind: &str,
        query: &[(&str, &str)],
        context: &str,
    ) -> Result<Vec<serde_json::Value>, super::StepFailure> {
        let token = self.access_token().await?;
        let (pages, _) = self
            .query_pages(
                &self.endpoints.fhir_base,
                Some(&token),
                kind,
                query,
                context,
            )
            .await?;
        Ok(pages)
    }

    /// Every page's Bundle of a search of `kind` with `query` at `base` (with `token`, if
    /// any), following `next` links for at most [`QUERY_PAGE_CAP`] pages; and whether the
    /// search was read to its end.
    pub async fn query_pages(
        &self,
        base: &url::Url,
        token: Option<&crate::infra::secret::Secret>,
        kind: &str,
        query: &[(&str, &str)],
        context: &str,
    ) -> Result<(Vec<serde_json::Value>, bool), super::StepFailure> {
        use super::StepFailure;
        let mut url =
            url::Url::parse(&format!("{}/{kind}", base.as_str().trim_end_matches('/')))
                .map_err(|e| StepFailure::usage(format!("the FHIR base makes no URL: {e}")))?;
        url.query_pairs_mut().extend_pairs(query);
        let mut pages = Vec::new();
        let mut next = Some(url.to_string());
        while let Some(at) = next.take() {
            if pages.len() == QUERY_PAGE_CAP {
                self.recorder.note(
                    context,
                    &format!("only the first {QUERY_PAGE_CAP} pages were read"),
                );
                return Ok((pages, false));
            }
            let mut request =
                crate::payer::http::Request::get(&at).header("Accept", "application/fhir+json");
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {}", token.expose()));
            }
            let response = self
                .http
                .send_with_retries(context, &request)
                .await
                .map_err(|e| StepFailure::from_http(&e))?;
            if response.status != 200 {
                let reason = crate::payer::http::operation_outcome_text(&response.body)
                    .map(|t| format!(": {t}"))
                    .unwrap_or_default();
                return Err(StepFailure::conformance(format!(
                    "GET {at} answered {}{reason}",
                    response.status
                )));
            }
            let bundle: serde_json::Value =
                serde_json::from_slice(&response.body).map_err(|e| {
                    StepFailure::conformance(format!("GET {at}: the answer is not JSON ({e})"))
                })?;
            if bundle.get("resourceType").and_then(|t| t.as_str()) != Some("Bundle") {
                return Err(StepFailure::conformance(format!(
                    "GET {at} answered no Bundle (FHIR R4 Search §3.1.1.2.1: a searchset Bundle)"
                )));
            }
            next = bundle
                .get("link")
                .and_then(|l| l.as_array())
                .and_then(|links| {
                    links
                        .iter()
                        .find(|l| l.get("relation").and_then(|r| r.as_str()) == Some("next"))
                })
                .and_then(|l| l.get("url").and_then(|u| u.as_str()))
                .map(|link| crate::payer::fhir::follow(base, &at, link))
                .transpose()
                .map_err(|refused| StepFailure::conformance(format!("GET {at}: {refused}")))?;
            pages.push(bundle);
        }
        Ok((pages, true))
    }

    /// Every required type's search, keyed by type, and the clinical types' searches
    /// already made (what a Medication read by reference is referenced from).
    pub async fn searches(&self) -> BTreeMap<String, Arc<SearchResult>> {
        let mut all = BTreeMap::new();
        for kind in &self.target.required_resources {
            all.insert(kind.clone(), self.search(kind).await);
        }
        for made in self.searches.made(&self.target.clinical_resources).await {
            all.insert(made.kind.clone(), made);
        }
        all
    }
}

/// A search whose premise failed (no token, no patient, no such API): that failure, nothing
/// read.
pub(super) fn not_read(kind: &str, failure: super::StepFailure) -> SearchResult {
    SearchResult {
        kind: kind.to_owned(),
        failure: Some(SearchFailure {
            kind: failure.kind,
            message: failure.message,
        }),
        ..SearchResult::default()
    }
}
