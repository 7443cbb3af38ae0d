//! The discovery documents of the target, fetched once per run and shared: the SMART
//! configuration and the CapabilityStatement (judged by [`crate::payer::discovery`]), and what the
//! CapabilityStatement says about searching each type (which decides whether the run
//! searches a type or reads it by reference).
//!
//! A document that got no usable answer (no connection, no answer in time, the payer
//! unavailable) fails the first step that reads it as "could not test"; every later step
//! that needs it is skipped, naming why: the payer is never judged on an answer it did not
//! give.

use super::StepFailure;
use super::context::RunContext;
use crate::payer::discovery::{Fetched, ServerCapability};
use crate::payer::http::Request;

impl RunContext {
    async fn fetch(&self, context: &str, path: &str, accept: &str) -> Fetched {
        let url = format!(
            "{}/{path}",
            self.endpoints.fhir_base.as_str().trim_end_matches('/')
        );
        self.fetch_url(context, url, accept).await
    }

    async fn fetch_url(&self, context: &str, url: String, accept: &str) -> Fetched {
        let mut fetched = Fetched {
            url: url.clone(),
            ..Fetched::default()
        };
        match self
            .http
            .send_with_retries(context, &Request::get(&url).header("Accept", accept))
            .await
        {
            Ok(response) => {
                fetched.status = Some(response.status);
                fetched.content_type = response.header("content-type").map(str::to_owned);
                match serde_json::from_slice(&response.body) {
                    Ok(json) => fetched.json = Some(json),
                    Err(e) if response.status == 200 => {
                        fetched.problem = Some(format!("the answer is not JSON: {e}"));
                    }
                    Err(_) => {}
                }
            }
            Err(error) => fetched.failure = Some(error),
        }
        fetched
    }

    /// `{fhir_base}/.well-known/smart-configuration`, fetched once.
    async fn smart_fetched(&self) -> &Fetched {
        self.discovery
            .smart
            .fetched
            .get_or_init(|| {
                self.fetch(
                    "Discovery: SMART configuration",
                    ".well-known/smart-configuration",
                    "application/json",
                )
            })
            .await
    }

    /// `{fhir_base}/metadata`, fetched once.
    async fn metadata_fetched(&self) -> &Fetched {
        self.discovery
            .metadata
            .fetched
            .get_or_init(|| {
                self.fetch(
                    "Discovery: CapabilityStatement",
                    "metadata",
                    "application/fhir+json",
                )
            })
            .await
    }

    /// The SMART configuration as the server answered it, or why there is no answer to
    /// judge (see the module's doc).
    pub async fn smart_configuration(&self) -> Result<&Fetched, StepFailure> {
        let fetched = self.smart_fetched().await;
        self.discovery
            .smart
            .answered("the SMART configuration", fetched)?;
        Ok(fetched)
    }

    /// The CapabilityStatement as the server answered it, or why there is no answer to
    /// judge.
    pub async fn capability_statement(&self) -> Result<&Fetched, StepFailure> {
        let fetched = self.metadata_fetched().await;
        self.discovery
            .metadata
            .answered("the CapabilityStatement", fetched)?;
        Ok(fetched)
    }

    /// The JSON Web Key Set at the SMART configuration's `jwks_uri`, or why there is no
    /// answer to judge.
    pub async fn jwks(&self) -> Result<&Fetched, StepFailure> {
        let fetched = self
            .discovery
            .jwks
            .fetched
            .get_or_init(|| async {
                let uri = self
                    .smart_fetched()
                    .await
                    .object("the SMART configuration")
                    .ok()
                    .and_then(|c| c.get("jwks_uri")?.as_str().map(str::to_owned));
                match uri {
                    Some(uri) => {
                        self.fetch_url("Discovery: JSON Web Key Set", uri, "application/json")
                            .await
                    }
                    None => Fetched {
                        problem: Some("the SMART configuration names no jwks_uri".into()),
                        ..Fetched::default()
                    },
                }
            })
            .await;
        self.discovery
            .jwks
            .answered("the JSON Web Key Set", fetched)?;
        Ok(fetched)
    }

    /// What the CapabilityStatement says, when there is one to read.
    pub async fn server_capability(&self) -> Option<ServerCapability> {
        let fetched = self.metadata_fetched().await;
        let statement = fetched.object("the CapabilityStatement").ok()?;
        Some(ServerCapability::read(statement))
    }

    /// The SMART configuration's JSON object, if the server answered with one.
    pub async fn smart_object(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.smart_fetched()
            .await
            .object("the SMART configuration")
            .ok()
    }
}
