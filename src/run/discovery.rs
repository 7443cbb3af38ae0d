//! The discovery documents of the target, fetched once per run and shared: the SMART
//! configuration and the CapabilityStatement (judged by [`crate::discovery`]), and what the
//! CapabilityStatement says about searching each type (which decides whether the run
//! searches a type or reads it by reference).

use tokio::sync::OnceCell;

use super::context::RunContext;
use crate::discovery::{Fetched, ServerCapability};
use crate::http::Request;

/// The discovery documents, each fetched on first use.
#[derive(Debug, Default)]
pub struct Discovery {
    smart: OnceCell<Fetched>,
    metadata: OnceCell<Fetched>,
    jwks: OnceCell<Fetched>,
}

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
            Err(error) => fetched.problem = Some(error.to_string()),
        }
        fetched
    }

    /// `{fhir_base}/.well-known/smart-configuration`.
    pub async fn smart_configuration(&self) -> &Fetched {
        self.discovery
            .smart
            .get_or_init(|| {
                self.fetch(
                    "Discovery: SMART configuration",
                    ".well-known/smart-configuration",
                    "application/json",
                )
            })
            .await
    }

    /// `{fhir_base}/metadata`.
    pub async fn capability_statement(&self) -> &Fetched {
        self.discovery
            .metadata
            .get_or_init(|| {
                self.fetch(
                    "Discovery: CapabilityStatement",
                    "metadata",
                    "application/fhir+json",
                )
            })
            .await
    }

    /// The JSON Web Key Set at the SMART configuration's `jwks_uri`.
    pub async fn jwks(&self) -> &Fetched {
        self.discovery
            .jwks
            .get_or_init(|| async {
                let uri = self
                    .smart_configuration()
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
            .await
    }

    /// What the CapabilityStatement says, when there is one to read.
    pub async fn server_capability(&self) -> Option<ServerCapability> {
        let fetched = self.capability_statement().await;
        let statement = fetched.object("the CapabilityStatement").ok()?;
        Some(ServerCapability::read(statement))
    }
}
