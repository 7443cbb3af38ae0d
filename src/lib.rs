//! onramp: a conformance harness and onboarding toolkit for the CMS Patient Access rule
//! (CMS-9115-F). See `README.md` for what it does and `../shared/DESIGN.md` for how.
//!
//! The library holds everything; the `onramp` binary only calls [`cli::main`].

pub mod app;
pub mod browser;
pub mod checklist;
pub mod cli;
pub mod config;
pub mod evidence;
pub mod features;
pub mod infra;
pub mod payer;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod steps;
pub mod summary;
pub mod validate;
