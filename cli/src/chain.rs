//! `kinema chain` (devnet, status, balance, tickets) and `kinema tx` (transfer, stake, bond,
//! ticket funds): the chain from the command line, through a validator's RPC.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kinema_chain::rpc::{AccountReply, StateReply, StatusReply, SubmitReply, SubmitRequest};
use kinema_chain::tx::{Call, Tx};
use kinema_chain::{Address, encode};
use kinema_contracts::system::TICKETS;
use kinema_contracts::tickets;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::devnet::{self, Devnet};
use crate::relay::{RelaySetup, print_relay, start_relay};
use crate::wallet::load_key;

/// The fee `kinema tx` offers by default; what the call does not burn comes back.
const DEFAULT_FEE: u64 = 1_000_000;
/// How long `--wait` waits for a transaction to be committed.
const WAIT: Duration = Duration::from_secs(60);

/// The validators of a devnet.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// How many validators.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Where their keys and stores live; the funded key is written to <dir>/faucet.key.
    #[arg(long)]
    data_dir: PathBuf,
    /// Validator i serves its RPC on 127.0.0.1:<rpc-port + i>.
    #[arg(long, default_value_t = 26650)]
    rpc_port: u16,
    /// Validator i's libp2p node listens on 127.0.0.1:<p2p-port + i>.
    #[arg(long, default_value_t = 26700)]
    p2p_port: u16,
    /// Seconds between blocks when no transaction waits.
    #[arg(long, default_value_t = 1.0)]
    empty_block_interval: f64,
    /// Each validator keeps the state of only this many recent heights (and of every epoch
    /// boundary); default: every height's.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    keep_states: Option<u64>,
}

impl DevnetArgs {
    fn options(self) -> Result<devnet::Options> {
        let interval = self.empty_block_interval;
        if !(interval > 0.0 && interval <= 3600.0) {
            bail!("--empty-block-interval {interval}: expected 0 < seconds <= 3600");
        }
        Ok(devnet::Options {
            validators: self.validators,
            data_dir: self.data_dir,
            rpc_port: self.rpc_port,
            p2p_port: self.p2p_port,
            empty_block_interval: Duration::from_secs_f64(interval),
            keep_states: self.keep_states,
        })
    }
}

/// `kinema devnet`: a whole local network.
#[derive(Debug, Args)]
pub(crate) struct NetworkArgs {
    #[command(flatten)]
    chain: DevnetArgs,
    /// The relay's HTTP server (app, API, HLS gateway) listens on 127.0.0.1:<http-port>.
    #[arg(long, default_value_t = 26600)]
    http_port: u16,
    /// The relay's libp2p node listens on 127.0.0.1:<relay-port> (TCP and QUIC) and
    /// <relay-port + 1> (websocket and webrtc-direct, for browsers).
    #[arg(long, default_value_t = 26900)]
    relay_port: u16,
    /// Serve this directory's files at / instead of the app, player and light-node page built
    /// into kinema (for working on them: `cargo xtask web` writes one).
    #[arg(long)]
    assets: Option<PathBuf>,
    /// Market workers to run, each funded and bonded (keys in <data-dir>/worker-<i>/).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Market verifiers to run, each funded and bonded (keys in <data-dir>/verifier-<i>/).
    #[arg(long, default_value_t = 2)]
    verifiers: usize,
    /// What the relay asks viewers to pay per MiB their browsers deliver to each other, in
    /// bandwidth tickets (0: no tickets).
    #[arg(long, default_value_t = devnet::BANDWIDTH_PRICE)]
    bandwidth_price: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Run N validators on this machine until interrupted (resumes from --data-dir).
    Devnet(DevnetArgs),
    /// A validator's view: heights, state root, validators.
    Status {
        /// The validator's RPC, e.g. http://127.0.0.1:26650.
        #[arg(long)]
        rpc: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// An account's balance, nonce and stake.
    Balance {
        /// The validator's RPC.
        #[arg(long)]
        rpc: String,
        /// The account (40 hex characters, 0x allowed).
        address: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// An account's bandwidth-ticket funds (as a viewer) and what tickets paid it (as a peer).
    Tickets {
        /// The validator's RPC.
        #[arg(long)]
        rpc: String,
        /// The account (40 hex characters, 0x allowed).
        address: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TxCommand {
    /// Send coins.
    Transfer {
        #[command(flatten)]
        common: TxOptions,
        /// The recipient (40 hex characters, 0x allowed).
        #[arg(long)]
        to: String,
        /// How much.
        #[arg(long)]
        amount: u64,
    },
    /// Lock coins as stake.
    Stake {
        #[command(flatten)]
        common: TxOptions,
        /// How much.
        #[arg(long)]
        amount: u64,
    },
    /// Bond coins to the market as a worker or a verifier.
    Bond {
        #[command(flatten)]
        common: TxOptions,
        /// worker or verifier (an account keeps the role it first bonded with).
        #[arg(long)]
        role: String,
        /// How much.
        #[arg(long)]
        amount: u64,
    },
    /// Add to the deposit and reserve that pay the peers delivering to you (bandwidth
    /// tickets); funding again cancels an unlock.
    FundTickets {
        #[command(flatten)]
        common: TxOptions,
        /// Added to the deposit winning tickets are paid from.
        #[arg(long, default_value_t = 0)]
        deposit: u64,
        /// Added to the reserve that makes up what the deposit cannot cover.
        #[arg(long, default_value_t = 0)]
        reserve: u64,
    },
    /// Start taking the ticket funds back: withdrawable after the unlock period.
    UnlockTickets {
        #[command(flatten)]
        common: TxOptions,
    },
    /// Take unlocked ticket funds back into the balance.
    WithdrawTickets {
        #[command(flatten)]
        common: TxOptions,
    },
    /// Redeem winning bandwidth tickets: one transaction each, in order. Each pays its
    /// recipient, or the signer when it carries the recipient's claim for it (a browser's
    /// winnings, claimed into this wallet).
    RedeemTickets {
        #[command(flatten)]
        common: TxOptions,
        /// A JSON array of winners, each the hex of a borsh `RedeemArgs` (as the player's
        /// `bandwidth.claim(address)` gives them).
        #[arg(long)]
        winners: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct TxOptions {
    /// The validator's RPC.
    #[arg(long)]
    rpc: String,
    /// The signer's key file.
    #[arg(long)]
    key: PathBuf,
    /// The most fuel the call may burn; the rest is refunded.
    #[arg(long, default_value_t = DEFAULT_FEE)]
    fee: u64,
    /// Wait until the transaction is committed.
    #[arg(long)]
    wait: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// A validator's RPC.
struct Rpc {
    base: String,
    agent: ureq::Agent,
}

impl Rpc {
    fn new(base: &str) -> Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            bail!("--rpc {base:?}: expected an http:// URL such as http://127.0.0.1:26650");
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Self { base, agent })
    }

    fn answer<T: DeserializeOwned>(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T> {
        let mut response = response.with_context(|| format!("{url}: no answer"))?;
        let status = response.status();
        let body: serde_json::Value =
            response.body_mut().read_json().with_context(|| format!("{url}: not JSON"))?;
        if !status.is_success() {
            let why = body.get("error").and_then(|e| e.as_str()).unwrap_or("no reason given");
            bail!("{url}: {status}: {why}");
        }
        serde_json::from_value(body).with_context(|| format!("{url}: unexpected answer"))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.get(&url).call();
        self.answer(&url, response)
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.post(&url).send_json(body);
        self.answer(&url, response)
    }

    fn status(&self) -> Result<StatusReply> {
        self.get("/api/v1/status")
    }

    fn account(&self, address: &Address) -> Result<AccountReply> {
        self.get(&format!("/api/v1/accounts/{address}"))
    }

    /// What a state key holds, decoded as its contract stored it.
    fn read<T: borsh::BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>> {
        let path = format!("/api/v1/state/{}", hex::encode(key));
        let reply: StateReply = self.get(&path)?;
        reply
            .value
            .map(|value| {
                let bytes = hex::decode(&value).with_context(|| format!("{path}: not hex"))?;
                kinema_chain::decode(&bytes).with_context(|| format!("{path}: unexpected value"))
            })
            .transpose()
    }
}

/// `kinema chain tickets`: an account's ticket funds and earnings.
#[derive(Serialize)]
struct TicketsReport {
    address: Address,
    /// As a viewer: its deposit, reserve and unlock height, if it funded tickets.
    funds: Option<tickets::Sender>,
    /// As a peer: the tickets redeemed to it and their face values, added.
    earned: tickets::Earned,
}

fn tickets_call(method: &str, args: Vec<u8>) -> Call {
    Call::Contract { contract: Address(TICKETS), method: method.into(), args }
}

fn parse_address(text: &str, what: &str) -> Result<Address> {
    text.parse().with_context(|| format!("{what} {text:?}"))
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    say!("{}", serde_json::to_string(value)?);
    Ok(())
}

pub(crate) fn run(command: ChainCommand) -> Result<()> {
    match command {
        ChainCommand::Devnet(args) => run_devnet(&args.options()?, None),
        ChainCommand::Status { rpc, json } => {
            let status = Rpc::new(&rpc)?.status()?;
            if json {
                return print_json(&status);
            }
            say!("chain      {}", status.chain_id);
            say!("height     {} (final)", status.height);
            say!("block      {}", status.block);
            say!("state root {}", status.state_root);
            say!("deciding   height {} round {}", status.consensus_height, status.round);
            say!("mempool    {} transactions", status.pending_transactions);
            say!("validators {}", status.validators.len());
            for v in &status.validators {
                say!("  {}  power {}", v.address, v.power);
            }
            Ok(())
        }
        ChainCommand::Balance { rpc, address, json } => {
            let address = parse_address(&address, "address")?;
            let account = Rpc::new(&rpc)?.account(&address)?;
            if json {
                return print_json(&account);
            }
            say!("address {}", account.address);
            say!("balance {}", account.balance);
            say!("stake   {}", account.stake);
            say!("nonce   {}", account.nonce);
            say!("height  {}", account.height);
            Ok(())
        }
        ChainCommand::Tickets { rpc, address, json } => {
            let address = parse_address(&address, "address")?;
            let rpc = Rpc::new(&rpc)?;
            let report = TicketsReport {
                address,
                funds: rpc.read(&tickets::sender_key(&address.0))?,
                earned: rpc.read(&tickets::earned_key(&address.0))?.unwrap_or_default(),
            };
            if json {
                return print_json(&report);
            }
            say!("address  {}", report.address);
            match &report.funds {
                None => say!("funds    none"),
                Some(f) => {
                    say!("deposit  {}", f.deposit);
                    say!("reserve  {}", f.reserve);
                    if let Some(at) = f.unlocks_at {
                        say!("unlocks  at height {at}");
                    }
                }
            }
            say!("earned   {} in {} tickets", report.earned.amount, report.earned.tickets);
            Ok(())
        }
    }
}

/// `kinema devnet`: the validators, and a relay that dials them.
pub(crate) fn run_network(args: NetworkArgs) -> Result<()> {
    let options = args.chain.options()?;
    let ip = [127, 0, 0, 1];
    let port = |offset: u16| {
        args.relay_port.checked_add(offset).context("--relay-port + 1 goes past port 65535")
    };
    let relay = RelaySetup {
        data_dir: options.data_dir.join("relay"),
        http: SocketAddr::from((ip, args.http_port)),
        listen: vec![
            format!("/ip4/127.0.0.1/tcp/{}", port(0)?).parse()?,
            format!("/ip4/127.0.0.1/tcp/{}/ws", port(1)?).parse()?,
            format!("/ip4/127.0.0.1/udp/{}/quic-v1", port(0)?).parse()?,
            format!("/ip4/127.0.0.1/udp/{}/webrtc-direct", port(1)?).parse()?,
        ],
        peers: Vec::new(),
        external: Vec::new(),
        database_url: None,
        assets: args.assets,
        chain_id: devnet::CHAIN_ID.into(),
        chain_rpc: None,
        genesis: None,
        bandwidth_price_per_mib: (args.bandwidth_price > 0).then_some(args.bandwidth_price),
        limits: kinema_relay::Limits::default(),
        trusted_proxy: None,
        quotas: kinema_relay::Quotas::default(),
        cache_budget: kinema_relay::CACHE_BUDGET,
        operator: None,
        deny_list: None,
        faucet: None,
    };
    let members = crate::market::member_keys(&options.data_dir, (args.workers, args.verifiers))?;
    run_devnet(&options, Some((relay, members)))
}

fn run_devnet(
    options: &devnet::Options,
    relay: Option<(RelaySetup, Vec<crate::market::MemberKey>)>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut devnet = Devnet::start(options).await?;
        let rpc = devnet.rpc().next().map(|rpc| format!("http://{rpc}")).context("no validator")?;
        let (relay, members) = match relay {
            Some((mut setup, members)) => {
                setup.peers = devnet.p2p_addresses().cloned().collect();
                // The faucet publishes (a generous quota) and is the relay's operator; the
                // workers publish renditions.
                setup.quotas.accounts.insert(devnet.faucet(), devnet::FAUCET_QUOTA);
                for (_, key, _) in &members {
                    setup.quotas.accounts.insert(key.address(), devnet::FAUCET_QUOTA);
                }
                setup.operator = Some(devnet.faucet());
                setup.chain_rpc = Some(rpc.clone());
                setup.genesis = Some(devnet.genesis().context("reading the genesis block")?);
                setup.faucet =
                    Some(crate::wallet::load_key(&options.data_dir.join("faucet.key"))?);
                (Some(start_relay(setup).await.context("the relay")?), members)
            }
            None => (None, Vec::new()),
        };
        say!(
            "devnet: {} validators of chain {}, data in {}",
            devnet.addresses().len(),
            devnet::CHAIN_ID,
            options.data_dir.display()
        );
        let nodes = devnet.rpc().zip(devnet.addresses()).zip(devnet.p2p_addresses());
        for (i, ((rpc, address), p2p)) in nodes.enumerate() {
            say!("  validator {i}  {address}  rpc http://{rpc}  p2p {p2p}");
        }
        say!(
            "faucet: {} ({}, balance {} at genesis)",
            options.data_dir.join("faucet.key").display(),
            devnet.faucet(),
            devnet::FAUCET_BALANCE
        );
        // What light clients trust: the genesis block's hash, given to them in the link.
        let genesis = devnet.genesis().context("reading the genesis block")?;
        say!("genesis {genesis}");
        let mut market = None;
        if let Some(relay) = &relay {
            print_relay(relay);
            say!("  creator app     {}/", relay.url());
            say!("  light node page {}/node.html#genesis={genesis}", relay.url());
            say!("  player          {}/watch/<content id>", relay.url());
            for (role, key, _) in &members {
                say!("  {} {}", crate::market::role_label(*role), key.address());
            }
            let faucet = crate::wallet::load_key(&options.data_dir.join("faucet.key"))?;
            market = Some(
                crate::market::Members::start(members, faucet, &rpc, &relay.url())
                    .await
                    .context("the market's workers and verifiers")?,
            );
            say!(
                "  upload a clip: kinema upload <clip> --relay {} --key {} --wait",
                relay.url(),
                options.data_dir.join("faucet.key").display()
            );
            say!(
                "  publish a ladder: kinema publish <ladder dir> --relay {} --key {}",
                relay.url(),
                options.data_dir.join("faucet.key").display()
            );
        }
        say!("Ctrl-C stops it; run the same command again to resume.");
        let mut head = devnet.node(0).head();
        let mut last_print = Instant::now();
        let outcome = loop {
            tokio::select! {
                signal = crate::stop_requested() => break signal.map(|by| say!("stopping ({by})")),
                failed = devnet.failed() => break failed.and(Err(anyhow::anyhow!("a validator stopped"))),
                changed = head.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    if last_print.elapsed() >= Duration::from_secs(10) {
                        let h = head.borrow().clone();
                        say!("height {}  state root {}", h.height, h.state_root);
                        last_print = Instant::now();
                    }
                }
            }
        };
        if let Some(market) = market {
            market.stop().await?;
        }
        drop(relay);
        devnet.stop().await?;
        outcome
    })
}

/// The winners in `path`: a JSON array of hex borsh `RedeemArgs`.
fn read_winners(path: &std::path::Path) -> Result<Vec<tickets::RedeemArgs>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let winners: Vec<String> = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON array of hex strings", path.display()))?;
    winners
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let bytes = hex::decode(w.trim())
                .with_context(|| format!("{}: winner {i} is not hex", path.display()))?;
            kinema_chain::decode(&bytes)
                .with_context(|| format!("{}: winner {i} is not a redemption", path.display()))
        })
        .collect()
}

/// The calls a command sends, one transaction each.
fn calls(command: TxCommand) -> Result<(TxOptions, Vec<Call>)> {
    Ok(match command {
        TxCommand::Transfer { common, to, amount } => {
            let to = parse_address(&to, "--to")?;
            (common, vec![Call::Transfer { to, amount }])
        }
        TxCommand::Stake { common, amount } => (common, vec![Call::Stake { amount }]),
        TxCommand::Bond { common, role, amount } => {
            (common, vec![crate::market::bond_call(&role, amount)?])
        }
        TxCommand::FundTickets { common, deposit, reserve } => {
            let args = encode(&tickets::FundArgs { deposit, reserve });
            (common, vec![tickets_call("fund", args)])
        }
        TxCommand::UnlockTickets { common } => (common, vec![tickets_call("unlock", encode(&()))]),
        TxCommand::WithdrawTickets { common } => {
            (common, vec![tickets_call("withdraw", encode(&()))])
        }
        TxCommand::RedeemTickets { common, winners } => {
            let winners = read_winners(&winners)?;
            if winners.is_empty() {
                bail!("--winners: no winner to redeem");
            }
            (common, winners.iter().map(|w| tickets_call("redeem", encode(w))).collect())
        }
    })
}

pub(crate) fn run_tx(command: TxCommand) -> Result<()> {
    let (common, calls) = calls(command)?;
    let key = load_key(&common.key)?;
    let rpc = Rpc::new(&common.rpc)?;
    let chain_id = rpc.status()?.chain_id;
    let first = rpc.account(&key.address())?.nonce;
    let count = calls.len();
    let mut reply = None;
    for (nonce, call) in (first..).zip(calls) {
        let tx =
            Tx { chain_id: chain_id.clone(), signer: key.public(), nonce, fee: common.fee, call }
                .sign(&key);
        let request = SubmitRequest { tx: hex::encode(encode(&tx)) };
        reply = Some(rpc.post::<_, SubmitReply>("/api/v1/txs", &request)?);
    }
    let reply = reply.context("no transaction")?;
    let mut height = None;
    if common.wait {
        let started = Instant::now();
        loop {
            let account = rpc.account(&reply.sender)?;
            if account.nonce > reply.nonce {
                height = Some(account.height);
                break;
            }
            if started.elapsed() > WAIT {
                bail!("transaction {} not committed after {WAIT:?}", reply.hash);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if common.json {
        let mut out = serde_json::json!({
            "hash": reply.hash, "sender": reply.sender, "nonce": reply.nonce,
        });
        if count > 1 {
            out["count"] = count.into();
        }
        if let Some(h) = height {
            out["height"] = h.into();
        }
        return print_json(&out);
    }
    let what = if count > 1 { format!("{count} transactions, the last") } else { String::new() };
    match height {
        Some(h) => say!("{what} {} committed by height {h}", reply.hash),
        None => say!("{what} {} submitted", reply.hash),
    }
    Ok(())
}
