//! onramp: a conformance harness and onboarding toolkit for the CMS Patient Access rule
//! (CMS-9115-F). See `README.md` for what it does and `../shared/DESIGN.md` for how.
//!
//! The library holds everything; the `onramp` binary only calls [`cli::main`].

pub mod access;
pub mod atomic;
pub mod browser;
pub mod checklist;
pub mod cli;
pub mod config;
pub mod console;
pub mod discovery;
pub mod evidence;
pub mod exit;
pub mod features;
pub mod fhir;
pub mod http;
pub mod id_token;
pub mod isolation;
pub mod oauth;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod scope;
pub mod search;
pub mod secret;
pub mod signin;
pub mod steps;
pub mod stop;
pub mod text;
pub mod validate;
