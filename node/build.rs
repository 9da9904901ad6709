//! Builds the system contracts (`contracts-wasm/`) for `wasm32-unknown-unknown`, so the chain
//! always embeds and runs the current contract code.
//!
//! A nested cargo builds them into this package's `OUT_DIR` (its own target directory, so it
//! never waits on the outer build's lock) with the workspace's `Cargo.lock`.

#[path = "../build-support/nested_cargo.rs"]
mod nested_cargo;

use std::path::PathBuf;

use nested_cargo::nested_cargo;

const WASM: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let contracts = manifest.join("../contracts-wasm");
    println!("cargo:rerun-if-changed={}", contracts.join("src").display());
    println!("cargo:rerun-if-changed={}", contracts.join("Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", manifest.join("../Cargo.lock").display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let target_dir = out.join("contracts-target");
    println!("cargo:rerun-if-changed={}", manifest.join("../build-support").display());
    let mut command = nested_cargo();
    command
        .args(["build", "--locked", "--release", "--lib", "-p", "kinema-contracts"])
        .args(["--features", "contract"])
        .args(["--target", WASM])
        .args(["--config", "profile.release.debug=false", "--config", "profile.release.strip=true"])
        // One codegen unit with LTO: borsh and the contract inline into each method.
        .args([
            "--config",
            "profile.release.lto=true",
            "--config",
            "profile.release.codegen-units=1",
        ])
        // A 32 KiB shadow stack instead of rustc's 1 MiB: every call instantiates the module,
        // and its memory is what instantiation and the reset after it pay for; stack, static
        // data and a small call's heap then fit the one initial 64 KiB page. The stack comes
        // first in memory, so overflowing it is an out-of-bounds trap.
        .args([
            "--config",
            r#"target.wasm32-unknown-unknown.rustflags=["-C", "link-arg=-zstack-size=32768"]"#,
        ])
        .arg("--manifest-path")
        .arg(manifest.join("../Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    let status = command.status();
    let built = target_dir.join(WASM).join("release/kinema_contracts.wasm");
    match status {
        Ok(s) if s.success() && built.is_file() => {}
        Ok(s) => fail(&format!("cargo exited with {s}")),
        Err(e) => fail(&e.to_string()),
    }
    if let Err(e) = std::fs::copy(&built, out.join("kinema_contracts.wasm")) {
        fail(&format!("copying {}: {e}", built.display()));
    }
}

fn fail(detail: &str) -> ! {
    #[allow(clippy::print_stderr)] // a build script reports on stderr
    {
        eprintln!(
            "building the system contracts for {WASM} failed ({detail}); is the target installed? \
             rustup target add {WASM}"
        );
    }
    std::process::exit(1)
}
