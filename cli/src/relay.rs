//! `kinema relay` (run a relay server), `kinema publish` (put a ladder on a relay), and the relay
//! of `kinema devnet`.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use kinema_chain::Address;
use kinema_media::hls::Manifest;
use kinema_net::p2p;
use kinema_relay::{Config, Limits, Quotas, Relay, api};
use libp2p::Multiaddr;

use crate::node::load_or_create_key;
use crate::wallet::load_key;

/// `kinema relay`.
#[derive(Debug, Args)]
pub(crate) struct RelayCommand {
    /// Where its identity, blob store and SQLite index live.
    #[arg(long)]
    data_dir: PathBuf,
    /// Where its HTTP server (app, API, HLS gateway, metrics) listens.
    #[arg(long, default_value = "0.0.0.0:26600")]
    http: SocketAddr,
    /// Where its libp2p node listens: TCP, websocket (browsers), QUIC and webrtc-direct
    /// (browsers).
    #[arg(
        long,
        default_values = [
            "/ip4/0.0.0.0/tcp/26900",
            "/ip4/0.0.0.0/tcp/26901/ws",
            "/ip4/0.0.0.0/udp/26900/quic-v1",
            "/ip4/0.0.0.0/udp/26901/webrtc-direct",
        ]
    )]
    listen: Vec<Multiaddr>,
    /// Peers to dial (validators, storage nodes, other relays).
    #[arg(long)]
    peer: Vec<Multiaddr>,
    /// Addresses others reach it on, when not its listen addresses (behind NAT or a proxy).
    #[arg(long)]
    external: Vec<Multiaddr>,
    /// Its index: postgres://user:password@host/db; default SQLite in <data-dir>/relay.db.
    #[arg(long)]
    database_url: Option<String>,
    /// Serve this directory's files at / instead of the app, player and light-node page built
    /// into kinema (for working on them: `cargo xtask web` writes one).
    #[arg(long)]
    assets: Option<PathBuf>,
    /// The chain it belongs to.
    #[arg(long, default_value = crate::devnet::CHAIN_ID)]
    chain_id: String,
    /// A chain node's RPC browsers may read finalized headers from.
    #[arg(long)]
    chain_rpc: Option<String>,
    /// The hash of the chain's genesis block (as `kinema devnet` prints it): told to browsers,
    /// whose app checks what the chain RPC says from it.
    #[arg(long)]
    genesis: Option<kinema_chain::Hash>,
    /// What viewers pay the peers that deliver to them, per MiB, in bandwidth tickets (told
    /// to browsers; none by default).
    #[arg(long)]
    bandwidth_price: Option<u64>,
    /// Largest blob upload in MiB.
    #[arg(long, default_value_t = 64)]
    max_upload_mib: usize,
    /// Requests per second each client may make (five seconds' worth at once).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// The address of a reverse proxy in front of the HTTP server: its requests are held to
    /// the rate of the client its X-Forwarded-For names (the header is ignored from others).
    #[arg(long)]
    trusted_proxy: Option<IpAddr>,
    /// MiB any account's uploads and publications may hold (0: only --account-quota accounts
    /// may write).
    #[arg(long, default_value_t = 1024)]
    quota_mib: u64,
    /// An account with its own quota: <address>=<MiB> (repeat for more).
    #[arg(long, value_parser = parse_account_quota)]
    account_quota: Vec<(Address, u64)>,
    /// GiB of disk the blobs fetched for others (not pinned by a publication) may take.
    #[arg(long, default_value_t = 10)]
    cache_gib: u64,
    /// The operator's account: it signs changes to the deny list at /api/v1/admin/denied.
    #[arg(long)]
    operator: Option<Address>,
    /// A file of content ids or blob names to refuse (451): one per line, then its reason.
    #[arg(long)]
    deny_list: Option<PathBuf>,
}

/// Reads `--account-quota <address>=<MiB>`.
fn parse_account_quota(text: &str) -> std::result::Result<(Address, u64), String> {
    let (address, mib) =
        text.split_once('=').ok_or_else(|| format!("{text:?}: expected <address>=<MiB>"))?;
    let address = address.parse().map_err(|e| format!("{address:?}: {e}"))?;
    let mib: u64 = mib.parse().map_err(|e| format!("{mib:?}: {e}"))?;
    let bytes = mib.checked_mul(1 << 20).ok_or_else(|| format!("{mib} MiB is too large"))?;
    Ok((address, bytes))
}

/// What a relay of `kinema devnet` or `kinema relay` is given.
pub(crate) struct RelaySetup {
    pub(crate) data_dir: PathBuf,
    pub(crate) http: SocketAddr,
    pub(crate) listen: Vec<Multiaddr>,
    pub(crate) peers: Vec<Multiaddr>,
    pub(crate) external: Vec<Multiaddr>,
    pub(crate) database_url: Option<String>,
    pub(crate) assets: Option<PathBuf>,
    pub(crate) chain_id: String,
    pub(crate) chain_rpc: Option<String>,
    pub(crate) genesis: Option<kinema_chain::Hash>,
    pub(crate) bandwidth_price_per_mib: Option<u64>,
    pub(crate) limits: Limits,
    pub(crate) trusted_proxy: Option<IpAddr>,
    pub(crate) quotas: Quotas,
    pub(crate) cache_budget: u64,
    pub(crate) operator: Option<Address>,
    pub(crate) deny_list: Option<PathBuf>,
    /// A devnet's faucet key: the relay gives browsers funds from it.
    pub(crate) faucet: Option<kinema_chain::crypto::SecretKey>,
}

/// Starts a relay, its libp2p identity kept in `<data-dir>/p2p.key` and its webrtc-direct
/// certificate in `<data-dir>/webrtc.pem`.
pub(crate) async fn start_relay(setup: RelaySetup) -> Result<Relay> {
    std::fs::create_dir_all(&setup.data_dir)
        .with_context(|| format!("{}: cannot create", setup.data_dir.display()))?;
    let seed = load_or_create_key(&setup.data_dir.join("p2p.key"))?.seed();
    let pem_path = setup.data_dir.join("webrtc.pem");
    let pem = match std::fs::read_to_string(&pem_path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pem = p2p::webrtc_certificate()?;
            // It holds the certificate's private key: readable by its owner only.
            let tmp = setup.data_dir.join(".webrtc.pem.tmp");
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut file| file.write_all(pem.as_bytes()))
                .and_then(|()| std::fs::rename(&tmp, &pem_path))
                .with_context(|| format!("{}: cannot write", pem_path.display()))?;
            pem
        }
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", pem_path.display())),
    };
    if let Some(assets) = &setup.assets
        && !assets.join("index.html").is_file()
    {
        bail!("--assets {}: no index.html there", assets.display());
    }
    kinema_relay::start(Config {
        keypair: p2p::keypair_from_seed(seed)?,
        data_dir: setup.data_dir,
        http: setup.http,
        listen: setup.listen,
        peers: setup.peers,
        external: setup.external,
        webrtc_certificate: Some(pem),
        database_url: setup.database_url,
        chain_id: setup.chain_id,
        chain_rpc: setup.chain_rpc,
        genesis: setup.genesis,
        bandwidth_price_per_mib: setup.bandwidth_price_per_mib,
        assets: match setup.assets {
            Some(dir) => kinema_relay::Assets::Dir(dir),
            None => kinema_relay::Assets::Embedded(crate::web::FILES),
        },
        limits: setup.limits,
        trusted_proxy: setup.trusted_proxy,
        quotas: setup.quotas,
        cache_budget: setup.cache_budget,
        operator: setup.operator,
        deny_list: setup.deny_list,
        ffmpeg: None,
        faucet: setup.faucet,
    })
    .await
}

/// Prints where a relay is.
pub(crate) fn print_relay(relay: &Relay) {
    let url = relay.url();
    say!("relay {}", relay.p2p.peer_id());
    say!("  http    {url}  (status {url}/api/v1/status, metrics {url}/metrics)");
    for address in relay.p2p.addresses() {
        let browser = address.iter().any(|p| ["ws", "webrtc-direct"].contains(&p.tag()));
        let kind = if browser { "browser" } else { "p2p" };
        say!("  {kind:<7} {address}");
    }
}

pub(crate) fn run(command: RelayCommand) -> Result<()> {
    if command.listen.is_empty() {
        bail!("--listen: give at least one address");
    }
    if !command.rate.is_finite() || command.rate <= 0.0 || command.rate > f64::from(u32::MAX) {
        bail!("--rate {}: expected a positive number of requests per second", command.rate);
    }
    let limits = Limits {
        max_upload: command.max_upload_mib << 20,
        requests_per_second: command.rate,
        burst: (command.rate * 5.0).ceil().min(f64::from(u32::MAX)) as u32,
        ..Limits::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut relay = start_relay(RelaySetup {
            data_dir: command.data_dir,
            http: command.http,
            listen: command.listen,
            peers: command.peer,
            external: command.external,
            database_url: command.database_url,
            assets: command.assets,
            chain_id: command.chain_id,
            chain_rpc: command.chain_rpc,
            genesis: command.genesis,
            bandwidth_price_per_mib: command.bandwidth_price,
            limits,
            trusted_proxy: command.trusted_proxy,
            quotas: Quotas {
                default: command.quota_mib.saturating_mul(1 << 20),
                accounts: command.account_quota.into_iter().collect(),
            },
            cache_budget: command.cache_gib.saturating_mul(1 << 30),
            operator: command.operator,
            deny_list: command.deny_list,
            faucet: None,
        })
        .await?;
        print_relay(&relay);
        tokio::select! {
            signal = crate::stop_requested() => signal.map(|by| say!("stopping ({by})")),
            () = relay.wait() => bail!("the relay's HTTP server stopped"),
        }
    })
}

/// `kinema publish`.
#[derive(Debug, Args)]
pub(crate) struct PublishCommand {
    /// A ladder's directory, as `kinema media ladder` wrote it.
    ladder: PathBuf,
    /// The relay's HTTP base URL.
    #[arg(long, default_value = "http://127.0.0.1:26600")]
    relay: String,
    /// The key file of the account that signs the uploads (they count against its quota on
    /// the relay); a devnet's faucet.key will do there.
    #[arg(long)]
    key: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Reads a ladder's manifest.
fn read_ladder(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a ladder's manifest", path.display()))
}

pub(crate) fn publish(command: PublishCommand) -> Result<()> {
    let manifest = read_ladder(&command.ladder)?;
    let key = load_key(&command.key).context("--key")?;
    let relay = api::Client::new(&command.relay).with_key(key);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let segments: usize = manifest.renditions.iter().map(|r| r.segments.len()).sum();
    let added = runtime.block_on(async {
        let id = kinema_node::market::upload::publish(&relay, &command.ladder, &manifest).await?;
        anyhow::Ok(relay.content(&id).await?)
    })?;
    if command.json {
        say!("{}", serde_json::to_string(&added)?);
        return Ok(());
    }
    say!("content {}", added.id);
    say!("  {segments} segments of {} renditions on {}", manifest.renditions.len(), relay.base());
    say!("  play {}", relay.url(&added.hls));
    say!("  watch {}", relay.url(&format!("/watch/{}", added.id)));
    Ok(())
}
