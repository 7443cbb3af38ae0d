//! The `onramp` binary: everything is in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    onramp::cli::main()
}
