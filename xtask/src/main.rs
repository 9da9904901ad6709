//! Kinema's build automation, plain cargo: `cargo xtask <command>`.
//!
//! - `devnet [kinema devnet options]`: installs ffmpeg and the wasm32 target if missing, builds
//!   `kinema` (release; its build script builds and embeds what browsers get) and runs `kinema
//!   devnet` (4 validators, 2 workers, 2 verifiers and a relay serving the creator app, data in
//!   `<target>/devnet` unless `--data-dir` says otherwise) until interrupted.
//! - `web`: builds `kinema`, whose build script writes what the relay serves to browsers (the
//!   creator app, the light node and its page, the player) into `<target>/web/`, and prints
//!   that directory (for `kinema relay --assets` while working on the pages).
//! - `demo [--clip FILE] [--out DIR]`: installs ffmpeg and the wasm32 target (the chain embeds
//!   its contracts built for it) if missing, builds `kinema` and runs the transcode ladder on a
//!   corpus clip.
//! - `test`: installs what the tests need (ffmpeg, the PostgreSQL server, Node and npm,
//!   chromium, rustfmt, clippy, the wasm32 target, wasm-bindgen-cli at the Cargo.lock version)
//!   if missing, then runs `cargo fmt --check`, `cargo clippy -D warnings` (the workspace, and
//!   kinema-chain, kinema-net, kinema-wasm-node, kinema-browser-app, the relay's API (no default
//!   features), kinema-media's picture math and the contracts for `wasm32-unknown-unknown`),
//!   the docs with warnings denied, `cargo test` over the workspace (building `kinema` builds
//!   the browsers' wasm, failing if it imports anything from `env`), and the light-client tests
//!   in wasm32 under Node.
//! - `bench ladder [--clip FILE]... [--preset P] [--runs N]`: `kinema media ladder` against one
//!   plain ffmpeg command producing the same renditions, printed as ratios.
//! - `bench verify [--runs N]`: CPU time of `kinema media verify` on a 2 s 720p segment against
//!   the CPU time of transcoding it, as ratios.
//! - `bench watermark [--clips NAME,...] [--trials N]`: every corpus clip marked with a random ID
//!   through a pirate's attacks (re-encodes, downscales, crop, frame rate, brightness, the
//!   ladder's 240p rung): exact IDs from 10 s excerpts, claims on unmarked copies, the score's
//!   spread over random-ID trials, PSNR/SSIM and the CPU of marking against a plain encode.
//! - `bench webrtc-flood [--datagrams N] [--sources K]`: a relay's memory and descriptors before
//!   and after N webrtc-direct handshakes begun and never finished, from K loopback addresses.
//! - `fuzz [--cases N]`: the property tests over every decoder of bytes from the network or a
//!   file (`fuzz_*` in kinema-chain, kinema-node, kinema-net, kinema-media and kinema-relay),
//!   N cases each (100,000 by default), with the time each crate's took.
//!
//! Cargo runs with `CARGO_TARGET_DIR` from the environment, or `~/.cache/kinema/target`, so a
//! fresh clone reuses what an earlier build on the machine compiled.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command line prints

mod bench;
mod flood;
mod market;
mod offload;
mod watermark;
#[path = "../../build-support/web_files.rs"]
mod web_files;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args.split_first().map_or(("", &[][..]), |(c, r)| (c.as_str(), r));
    match command {
        "devnet" => devnet(rest),
        "demo" => demo(rest),
        "test" => test(),
        "web" => web().map(|dir| println!("{}", dir.display())),
        "bench" => bench::run(rest),
        "fuzz" => fuzz(rest),
        _ => bail!(
            "usage: cargo xtask devnet [kinema devnet options] | web | demo [--clip FILE] [--out DIR] | test | bench ladder [--clip FILE]... [--preset P] [--runs N] | bench verify [--runs N] | bench watermark [--clips NAME,...] [--trials N] | fuzz [--cases N]"
        ),
    }
}

/// The workspace root: the one `cargo run` (`cargo xtask`) was started in. Read at run time:
/// clones sharing a target directory share one xtask binary, built in whichever came first.
pub(crate) fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// The shared corpus beside the workspace, found at run time (clones sharing a target directory
/// share one xtask binary, so no path is compiled in; the tests' locator is
/// kinema-test-support's).
pub(crate) fn corpus(name: &str) -> PathBuf {
    std::env::var_os("KINEMA_CORPUS")
        .map_or_else(|| root().join("../shared/corpus"), PathBuf::from)
        .join(name)
}

pub(crate) fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| root().join("target"), PathBuf::from);
    home.join(".cache/kinema/target")
}

/// Runs cargo in the workspace root with the shared target directory.
pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    cargo_with(args, &[])
}

/// What `cmd` printed, or why it failed (its stderr).
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A long-running child (a devnet, a relay), killed when this is dropped, however the
/// benchmark ends.
pub(crate) struct Running(std::process::Child);

impl Running {
    /// Starts `cmd` with its output piped and returns once it printed a line containing
    /// `ready`; the rest of its output is read and dropped, so it never blocks on a full pipe.
    pub(crate) fn until(cmd: &mut Command, ready: &str) -> Result<Self> {
        use std::io::{BufRead, BufReader};
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let stdout = child.stdout.take().context("its output")?;
        let running = Running(child);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(line) => {
                    if line?.contains(ready) {
                        break;
                    }
                }
                None => bail!("{cmd:?} ended before it printed {ready:?}"),
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Ok(running)
    }

    /// Its process id.
    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// [`cargo`] with more environment variables.
fn cargo_with(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", target_dir())
        .envs(env.iter().copied())
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Whether `program` runs (asked for its version with `flag`).
fn on_path(program: &str, flag: &str) -> bool {
    Command::new(program).arg(flag).output().is_ok_and(|o| o.status.success())
}

/// Installs Debian's ffmpeg when `ffmpeg` or `ffprobe` is missing.
pub(crate) fn ensure_ffmpeg() -> Result<()> {
    if on_path("ffmpeg", "-version") && on_path("ffprobe", "-version") {
        return Ok(());
    }
    eprintln!("xtask: ffmpeg is missing; installing Debian's ffmpeg");
    apt_install(&["ffmpeg"])
}

/// Installs what the browser and interop tests run when missing: npm, Debian's chromium, and
/// the npm packages of `tests/interop` and `tests/e2e` (from their package-lock.json).
pub(crate) fn ensure_browser() -> Result<()> {
    if !on_path("npm", "--version") {
        eprintln!("xtask: npm is missing; installing Debian's npm");
        apt_install(&["npm"])?;
    }
    if !Path::new("/usr/bin/chromium").exists() {
        eprintln!("xtask: chromium is missing; installing Debian's chromium");
        apt_install(&["chromium"])?;
    }
    for dir in ["tests/interop", "tests/e2e"] {
        npm_ci(&root().join(dir))?;
    }
    Ok(())
}

/// Installs Debian's PostgreSQL server when missing: the relay's tests run it (a throwaway
/// server of their own, not the system's cluster).
fn ensure_postgres() -> Result<()> {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .is_ok_and(|versions| versions.flatten().any(|v| v.path().join("bin/initdb").exists()));
    if installed {
        return Ok(());
    }
    eprintln!("xtask: the PostgreSQL server is missing; installing Debian's postgresql");
    apt_install(&["postgresql"])
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let root_user = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    let sudo: &[&str] = if root_user { &[] } else { &["sudo"] };
    let run = |args: &[&str]| -> Result<()> {
        let mut all: Vec<&str> = sudo.to_vec();
        all.extend_from_slice(args);
        let status = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running {}", all.join(" ")))?;
        if !status.success() {
            bail!("{} failed ({status}); install {} by hand", all.join(" "), packages.join(" "));
        }
        Ok(())
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend_from_slice(packages);
    run(&install)
}

/// Adds rustfmt and clippy when the toolchain lacks them.
fn ensure_components() -> Result<()> {
    let has = |sub: &str| {
        Command::new("cargo").args([sub, "--version"]).output().is_ok_and(|o| o.status.success())
    };
    if has("fmt") && has("clippy") {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["component", "add", "rustfmt", "clippy"])
        .status()
        .context("running rustup to add rustfmt and clippy")?;
    if !status.success() {
        bail!("rustup component add rustfmt clippy failed ({status})");
    }
    Ok(())
}

/// Adds the `wasm32-unknown-unknown` standard library when it is missing.
pub(crate) fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup to list the installed targets")?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l == WASM) {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", WASM])
        .status()
        .context("running rustup to add the wasm32 target")?;
    if !status.success() {
        bail!("rustup target add {WASM} failed ({status})");
    }
    Ok(())
}

/// The browser's target.
const WASM: &str = "wasm32-unknown-unknown";

/// Installs Node (Debian's) and the wasm-bindgen test runner at the version in Cargo.lock when
/// missing: the light-client tests run in wasm32 under Node.
fn ensure_wasm_test_runner() -> Result<()> {
    if !on_path("node", "--version") {
        eprintln!("xtask: node is missing; installing Debian's nodejs");
        apt_install(&["nodejs"])?;
    }
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let version = lock
        .split("[[package]]")
        .find_map(|p| {
            let mut lines = p.lines().map(str::trim);
            let name = lines.find(|l| l.starts_with("name = "))?;
            if name != "name = \"wasm-bindgen\"" {
                return None;
            }
            let version = lines.find(|l| l.starts_with("version = "))?;
            Some(version.trim_start_matches("version = ").trim_matches('"').to_owned())
        })
        .context("Cargo.lock has no wasm-bindgen")?;
    let installed = Command::new("wasm-bindgen-test-runner")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&version));
    if installed {
        return Ok(());
    }
    eprintln!("xtask: installing wasm-bindgen-cli {version} (the version in Cargo.lock)");
    let status = Command::new("cargo")
        .args(["install", "wasm-bindgen-cli", "--locked", "--version", &version])
        .status()
        .context("running cargo install wasm-bindgen-cli")?;
    if !status.success() {
        bail!("cargo install wasm-bindgen-cli --version {version} failed ({status})");
    }
    Ok(())
}

fn test() -> Result<()> {
    ensure_ffmpeg()?;
    ensure_postgres()?;
    ensure_browser()?;
    ensure_components()?;
    ensure_wasm_target()?;
    ensure_wasm_test_runner()?;
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
    // What the browser links (the light node; the relay's API, its types and client; the media
    // engine's picture math and watermark reader) must keep building for the browser, and the
    // contracts must pass the lints as the module the chain runs.
    for package in [
        &["-p", "kinema-chain"][..],
        &["-p", "kinema-net"],
        &["-p", "kinema-relay", "--no-default-features"],
        &["-p", "kinema-wasm-node"],
        &["-p", "kinema-browser-app"],
        &["-p", "kinema-media"],
        &["-p", "kinema-contracts", "--features", "contract"],
    ] {
        let mut args = vec!["clippy"];
        args.extend(package);
        args.extend(["--target", WASM, "--locked", "--", "-D", "warnings"]);
        cargo(&args)?;
    }
    // Every crate's docs build without a broken link.
    cargo_with(
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // The browser tests serve the app, the light node and the player; built here, not again
    // by the tests.
    let web = web()?;
    let web = web.to_str().context("the target directory is not UTF-8")?;
    let mut totals =
        cargo_test(&["test", "--workspace", "--locked", "--no-fail-fast"], &[("KINEMA_WEB", web)])?;
    // The light client's checks again, in wasm32 under Node, as the browser will run them.
    let runner = [("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner")];
    let wasm = ["test", "-p", "kinema-chain", "--test", "light", "--target", WASM, "--locked"];
    totals.add_totals(&cargo_test(&wasm, &runner)?);
    println!(
        "xtask: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    Ok(())
}

/// Runs `cargo test` with `env`, passing its output through, and sums the results of every
/// test binary.
fn cargo_test(args: &[&str], env: &[(&str, &str)]) -> Result<TestTotals> {
    use std::io::{BufRead, BufReader};
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut child = Command::new(cargo)
        .args(args)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", target_dir())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let stdout = child.stdout.take().context("cargo test has no stdout")?;
    let mut totals = TestTotals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        totals.add(&line);
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() {
        println!(
            "xtask: {} passed, {} failed, {} skipped",
            totals.passed, totals.failed, totals.ignored
        );
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(totals)
}

/// Sums cargo's `test result: ok. 3 passed; 0 failed; 1 ignored; ...` lines.
#[derive(Debug, Default, PartialEq)]
struct TestTotals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTotals {
    fn add_totals(&mut self, other: &TestTotals) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }

    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else { return };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Crates with property tests over decoders (`fuzz_*`), run at `--cases` cases each.
const FUZZED: [&str; 5] =
    ["kinema-chain", "kinema-node", "kinema-net", "kinema-media", "kinema-relay"];

fn fuzz(args: &[String]) -> Result<()> {
    let cases = match args {
        [] => 100_000,
        [flag, n] if flag == "--cases" => n.parse().with_context(|| format!("--cases {n:?}"))?,
        _ => bail!("usage: cargo xtask fuzz [--cases N]"),
    };
    ensure_ffmpeg()?;
    let cases_text = cases.to_string();
    let mut report = Vec::new();
    for package in FUZZED {
        let started = std::time::Instant::now();
        let totals = cargo_test(
            &["test", "-p", package, "--locked", "fuzz_"],
            &[("PROPTEST_CASES", &cases_text)],
        )?;
        report.push((package, totals.passed, started.elapsed()));
    }
    println!("xtask: {cases} cases per property");
    for (package, properties, took) in report {
        println!("  {package}: properties {properties}, {:.1} s", took.as_secs_f64());
    }
    Ok(())
}

fn devnet(args: &[String]) -> Result<()> {
    // The devnet's market workers and verifiers, and its relay's cuts, run ffmpeg; kinema's
    // build makes the contracts and what browsers get for wasm32.
    ensure_ffmpeg()?;
    ensure_wasm_target()?;
    cargo(&["build", "--release", "--locked", "-p", "kinema-cli"])?;
    let kinema = target_dir().join("release/kinema");
    let mut command = Command::new(&kinema);
    command.arg("devnet").args(args);
    if !args.iter().any(|a| a == "--data-dir") {
        command.arg("--data-dir").arg(target_dir().join("devnet"));
    }
    let status = command.status().with_context(|| format!("running {}", kinema.display()))?;
    if !status.success() {
        bail!("kinema devnet ended with {status}");
    }
    Ok(())
}

/// Builds `kinema`, whose build script builds what the relay serves to browsers (the creator
/// app, the light node and its page, the player, each file with its gzip and brotli copies)
/// into `<target>/web/` and embeds it, and returns that directory.
pub(crate) fn web() -> Result<PathBuf> {
    ensure_wasm_target()?;
    cargo(&["build", "--locked", "-p", "kinema-cli"])?;
    Ok(target_dir().join("web"))
}

/// Every file under `dir` a browser downloads (`.wasm`, `.js`, `.html`, `.css`), the
/// wasm-bindgen snippets' included.
pub(crate) fn served_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let all = web_files::files(dir).map_err(anyhow::Error::msg)?;
    Ok(all.into_iter().filter(|f| web_files::served(f)).collect())
}

/// `npm ci` in `dir` unless its packages are installed (npm itself installed when missing).
fn npm_ci(dir: &Path) -> Result<()> {
    if dir.join("node_modules").is_dir() {
        return Ok(());
    }
    if !on_path("npm", "--version") {
        eprintln!("xtask: npm is missing; installing Debian's npm");
        apt_install(&["npm"])?;
    }
    eprintln!("xtask: npm ci in {}", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .context("running npm ci")?;
    if !status.success() {
        bail!("npm ci in {} failed ({status})", dir.display());
    }
    Ok(())
}

fn demo(args: &[String]) -> Result<()> {
    let mut clip = corpus("trailer_bbb.mp4");
    let mut out = target_dir().join("demo");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = PathBuf::from(it.next().with_context(|| format!("{arg} needs a value"))?);
        match arg.as_str() {
            "--clip" => clip = value,
            "--out" => out = value,
            other => bail!("unknown demo option {other}"),
        }
    }
    ensure_ffmpeg()?;
    ensure_wasm_target()?;
    cargo(&["build", "--release", "--locked", "-p", "kinema-cli"])?;
    let stem =
        clip.file_stem().map_or_else(|| "ladder".into(), |s| s.to_string_lossy().into_owned());
    let out = out.join(stem);
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .with_context(|| format!("removing the last demo {}", out.display()))?;
    }
    let kinema = target_dir().join("release/kinema");
    let status = Command::new(&kinema)
        .args(["media", "ladder"])
        .arg(&clip)
        .arg("--out")
        .arg(&out)
        .status()
        .with_context(|| format!("running {}", kinema.display()))?;
    if !status.success() {
        bail!("the ladder of {} failed ({status})", clip.display());
    }
    println!("\nplay it:  ffplay {}", out.join("master.m3u8").display());
    println!("inspect:  {}", out.join("manifest.json").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TestTotals;

    #[test]
    fn test_result_lines_are_summed() {
        let mut totals = TestTotals::default();
        totals.add("test result: ok. 22 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.04s");
        totals.add("test result: FAILED. 13 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 116.94s");
        totals.add("running 3 tests");
        assert_eq!(totals, TestTotals { passed: 35, failed: 1, ignored: 2 });
    }
}
