//! The `kinema` command line.
//!
//! ```text
//! kinema devnet --data-dir devnet/
//! kinema media probe clip.mp4 --json
//! kinema media ladder clip.mp4 --out ladder/ --renditions 720p,480p,360p
//! kinema wallet new --out me.key
//! kinema chain devnet --validators 4 --data-dir devnet/
//! kinema chain status --rpc http://127.0.0.1:26650 --json
//! kinema tx transfer --rpc http://127.0.0.1:26650 --key devnet/faucet.key --to <address> --amount 5 --wait
//! kinema publish ladder/ --relay http://127.0.0.1:26600
//! kinema upload clip.mp4 --relay http://127.0.0.1:26600 --key devnet/faucet.key --wait
//! kinema job status --rpc http://127.0.0.1:26650 0
//! kinema worker --relay http://127.0.0.1:26600 --key worker.key
//! kinema relay --data-dir relay/ --peer /ip4/203.0.113.5/tcp/26900/p2p/<peer id>
//! ```
//!
//! Errors print as one line on stderr, `kinema: error: ...`, naming the input, and the exit
//! status is 1 (2 for a malformed command line).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command line prints

/// `println!` that ends the process quietly when the reader has gone away (`kinema ... | head`)
/// instead of panicking on the broken pipe.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("kinema: error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }};
}

mod chain;
mod devnet;
mod market;
mod media;
mod node;
mod relay;
mod wallet;

/// What the relay serves to browsers, built by `build.rs` and embedded.
mod web {
    pub(crate) use kinema_relay::StaticFile as File;

    /// The creator app (`index.html`), the player (`watch.html`), the light node's page
    /// (`node.html`), their wasm, scripts and hls.js.
    pub(crate) static FILES: &[File] = include!(concat!(env!("OUT_DIR"), "/web.rs"));
}

/// Waits for a request to stop: Ctrl-C (SIGINT) or SIGTERM (what `kill`, systemd and container
/// runtimes send). Services stop the same way on either, cleanly.
pub(crate) async fn stop_requested() -> anyhow::Result<&'static str> {
    use anyhow::Context as _;
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C").map(|()| "Ctrl-C"),
        _ = term.recv() => Ok("SIGTERM"),
    }
}

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Kinema: a decentralized video network.
#[derive(Debug, Parser)]
#[command(name = "kinema", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole network on this machine until interrupted: validators and a relay (resumes
    /// from --data-dir).
    Devnet(chain::NetworkArgs),
    /// Media tools: probe, transcode ladders, hardware detection.
    #[command(subcommand)]
    Media(media::MediaCommand),
    /// Keys: create one, show its address.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// The chain: run a local devnet, read a validator's status and accounts.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// Sign and submit transactions.
    #[command(subcommand)]
    Tx(chain::TxCommand),
    /// Run one chain node (a validator, or a full node following the chain) in this process.
    Node(node::NodeCommand),
    /// Run a relay: the HTTP app and API, the HLS gateway, libp2p for browsers and peers.
    Relay(relay::RelayCommand),
    /// Put a ladder (its segments and manifest) on a relay.
    Publish(relay::PublishCommand),
    /// Cut a clip, put its source on a relay and pay the market to transcode it.
    Upload(market::UploadArgs),
    /// The market's jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Transcode what the market assigns this account (bonded as a worker).
    Worker(market::RoleArgs),
    /// Check what the market draws this account for (bonded as a verifier).
    Verifier(market::RoleArgs),
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// A job and every segment x rendition in its latest state.
    Status(market::JobStatusArgs),
    /// Put a done job's ladder on a relay (its manifest built from the accepted results) and,
    /// as its creator, record its content id on the chain (what `upload --wait` does).
    Publish(market::JobPublishArgs),
    /// Cancel an open job of yours: accepted work is paid, the rest of the escrow returns.
    Cancel(market::JobCancelArgs),
}

/// Parses the command line, runs it and turns the outcome into an exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Media(cmd) => media::run(cmd),
        Command::Wallet(cmd) => wallet::run(cmd),
        Command::Chain(cmd) => chain::run(cmd),
        Command::Tx(cmd) => chain::run_tx(cmd),
        Command::Node(cmd) => node::run(cmd),
        Command::Devnet(args) => chain::run_network(args),
        Command::Relay(cmd) => relay::run(cmd),
        Command::Publish(cmd) => relay::publish(cmd),
        Command::Upload(args) => market::run_upload(args),
        Command::Job(JobCommand::Status(args)) => market::run_job_status(args),
        Command::Job(JobCommand::Publish(args)) => market::run_job_publish(args),
        Command::Job(JobCommand::Cancel(args)) => market::run_job_cancel(args),
        Command::Worker(args) => market::run_worker(args),
        Command::Verifier(args) => market::run_verifier(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("kinema: error: {line}");
            ExitCode::FAILURE
        }
    }
}
