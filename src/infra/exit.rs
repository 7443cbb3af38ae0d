//! Exit codes, the same for every command. The library decides them (a run's outcome, a
//! usage error); the binary only returns them.

/// Everything checked is conformant.
pub const OK: u8 = 0;
/// The target or the input is not conformant.
pub const FAILURES: u8 = 1;
/// The command line, a configuration file, the features or an input path is wrong.
pub const USAGE: u8 = 2;
/// The environment kept onramp from testing (browser, network, target unreachable, a report
/// that cannot be written).
pub const ENVIRONMENT: u8 = 3;
/// Stopped by Ctrl-C (128 + SIGINT); the report is still written, marked interrupted.
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (128 + 15), as CI runners and `timeout` stop a job; as for Ctrl-C.
pub const TERMINATED: u8 = 143;
/// Stopped by SIGHUP (128 + 1), a closed terminal; as for Ctrl-C.
pub const HUNG_UP: u8 = 129;
