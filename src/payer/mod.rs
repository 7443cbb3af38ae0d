//! The payer-protocol client: what an app does against a payer, and how each answer is
//! judged. HTTP with its timeouts and caps ([`http`]), OAuth 2.0 and SMART ([`oauth`],
//! [`scope`], [`id_token`]), the discovery documents ([`discovery`]), FHIR reads and
//! searches ([`fhir`], [`search`]), token introspection ([`introspection`]), the judgements
//! on what came back ([`access`],
//! [`isolation`]), and the member's sign-in as the features spell it ([`recipe`]). A judgement says no with
//! a [`failure::StepFailure`]: whose fault, and why.
//!
//! Nothing here knows about a run, a step or a report: each function takes what it needs
//! and returns a typed answer, so unit tests reach every judgement without a browser.

pub mod access;
pub mod clinical;
pub mod discovery;
pub mod failure;
pub mod fhir;
pub mod http;
pub mod id_token;
pub mod introspection;
pub mod isolation;
pub mod oauth;
pub mod public;
pub mod recipe;
pub mod scope;
pub mod search;
