//! A cargo run from a build script (the chain's contracts, the browsers' wasm), shared by the
//! build scripts that include this file.

use std::process::Command;

/// The cargo that runs this build, with nothing the outer build set for itself (flags,
/// wrappers, its target and target directory, its jobserver): the nested build gets its own
/// `--target-dir`, so it never waits on the outer build's lock.
pub(crate) fn nested_cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MAKEFLAGS",
    ] {
        command.env_remove(var);
    }
    command
}
