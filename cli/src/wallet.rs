//! `kinema wallet`: keys.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use kinema_chain::crypto::SecretKey;

#[derive(Debug, Subcommand)]
pub(crate) enum WalletCommand {
    /// Create a key, write it to a new file (readable by its owner only) and print its address.
    New {
        /// The key file to create; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the address of a key file.
    Address {
        /// The key file.
        key: PathBuf,
    },
}

pub(crate) fn run(command: WalletCommand) -> Result<()> {
    match command {
        WalletCommand::New { out } => {
            let key = new_key()?;
            write_key(&out, &key)?;
            say!("{}", key.address());
            Ok(())
        }
        WalletCommand::Address { key } => {
            say!("{}", load_key(&key)?.address());
            Ok(())
        }
    }
}

/// A key drawn from the system's randomness.
pub(crate) fn new_key() -> Result<SecretKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| anyhow::anyhow!("drawing a key from the system's randomness: {e}"))?;
    Ok(SecretKey::from_seed(seed))
}

/// Writes `key` to a new file at `path`, readable by its owner only; an existing file is
/// never overwritten.
pub(crate) fn write_key(path: &Path, key: &SecretKey) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{}: cannot create the key file", path.display()))?;
    file.write_all(key.to_key_file().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{}: cannot write the key file", path.display()))
}

/// Reads a key file.
pub(crate) fn load_key(path: &Path) -> Result<SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the key file", path.display()))?;
    SecretKey::from_key_file(&text).with_context(|| format!("{}", path.display()))
}
