//! The `onramp` binary: everything is in the library.

use std::process::ExitCode;

// Validation allocates a node per JSON value; mimalloc makes that markedly cheaper than the
// system allocator on multi-threaded runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    onramp::cli::main()
}
