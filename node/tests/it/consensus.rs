//! Validators deciding blocks with Malachite over an in-process network: they finalize, agree
//! on every state root, survive a crash, catch up, slash a double-signer, and let a double
//! spend through once.

use std::sync::Arc;
use std::time::Duration;

use kinema_chain::block::{Block, Certificate, CommitSignature, Validator, ValidatorSet, VoteKind};
use kinema_chain::crypto::{Domain, SecretKey};
use kinema_chain::epoch::{epoch_of, follow, validator_set_key};
use kinema_chain::gossip::Finalized;
use kinema_chain::tx::{Account, Call, Tx};
use kinema_chain::{Address, Hash, decode, encode};
use kinema_node::app::App;
use kinema_node::app::Genesis;
use kinema_node::consensus::clock::ManualClock;
use kinema_node::consensus::context::{BlockHash, Ctx, Height, Proposal, ValidatorAddress, Vote};
use kinema_node::consensus::node::{Hub, Link, NodeHandle, Transport};
use kinema_node::consensus::{
    Config, Engine, MalachiteEngine, Message, Output, Peer, Timer, Topic, start,
};
use kinema_node::store::Store;
use malachitebft_core_consensus::SignedConsensusMsg;
use malachitebft_core_types::{NilOrVal, Round, VoteType};
use tempfile::TempDir;

use crate::support::{CHAIN, FEE, key};

/// Whole tests wait at most this long for what they expect.
const PATIENCE: Duration = Duration::from_secs(60);

struct Net {
    dir: TempDir,
    hub: Hub,
    genesis: Genesis,
    keys: Vec<SecretKey>,
    nodes: Vec<Option<NodeHandle>>,
}

impl Net {
    /// `n` validators of power 100 each (none started) and a funded account, key(1).
    fn new(n: u8) -> Self {
        Self::with_epochs(n, 1000)
    }

    /// [`Net::new`] with epochs of `epoch_length` blocks.
    fn with_epochs(n: u8, epoch_length: u64) -> Self {
        let keys: Vec<SecretKey> = (0..n).map(|i| key(100 + i)).collect();
        let validators = ValidatorSet::new(
            keys.iter().map(|k| Validator { public_key: k.public(), power: 100 }).collect(),
        )
        .unwrap();
        let mut balances: Vec<(Address, u64)> =
            keys.iter().map(|k| (k.address(), 100 * FEE)).collect();
        balances.push((key(1).address(), 1_000 * FEE));
        let genesis =
            Genesis { chain_id: CHAIN.into(), time_ms: 0, balances, validators, epoch_length };
        let nodes = (0..n).map(|_| None).collect();
        Self { dir: tempfile::tempdir().unwrap(), hub: Hub::new(), genesis, keys, nodes }
    }

    fn start(&mut self, i: usize) {
        let path = self.dir.path().join(format!("validator-{i}.redb"));
        let mut config = Config::new(self.keys[i].clone());
        config.empty_block_interval = Duration::from_millis(50);
        config.step_timeout = Duration::from_millis(500);
        self.nodes[i] = Some(start(&path, &self.genesis, config, self.hub.join()).unwrap());
    }

    fn node(&self, i: usize) -> &NodeHandle {
        self.nodes[i].as_ref().expect("node is running")
    }

    fn running(&self) -> impl Iterator<Item = &NodeHandle> {
        self.nodes.iter().flatten()
    }

    async fn wait_all(&self, height: u64) {
        for node in self.running() {
            tokio::time::timeout(PATIENCE, node.wait_for(height))
                .await
                .unwrap_or_else(|_| panic!("no block {height} within {PATIENCE:?}"))
                .unwrap();
        }
    }

    fn account(&self, i: usize, address: &Address) -> Account {
        let store = self.node(i).store();
        let head = store.head().unwrap().unwrap();
        store.account(address, head.height).unwrap().0.unwrap_or_default()
    }

    /// Every running node holds the same blocks up to `height`, each with a certificate
    /// that verifies under its epoch's validators.
    fn assert_agree(&self, height: u64) {
        let first = self.running().next().unwrap().store();
        for h in 1..=height {
            let block = first.block(h).unwrap().unwrap();
            let validators = first.validators_at(h).unwrap();
            for node in self.running() {
                let other = node.store().block(h).unwrap().unwrap();
                assert_eq!(other.header, block.header, "height {h}");
                let certificate = node.store().certificate(h).unwrap().unwrap();
                certificate.verify(&block.header, &validators).unwrap();
            }
        }
    }
}

fn transfer(from: &SecretKey, nonce: u64, to: Address, amount: u64) -> Vec<u8> {
    let call = Call::Transfer { to, amount };
    encode(&Tx { chain_id: CHAIN.into(), signer: from.public(), nonce, fee: FEE, call }.sign(from))
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    kinema_test_support::wait_until_async(what, PATIENCE, || std::future::ready(done())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_finalize_blocks_and_agree_on_every_state_root() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_all(2).await;
    let to = key(2).address();
    let hash = net.node(0).submit(transfer(&key(1), 0, to, 777)).await.unwrap().unwrap();
    assert_ne!(hash, Hash::ZERO);
    until("the transfer reaching every validator", || {
        (0..4).all(|i| net.account(i, &to).balance == 777)
    })
    .await;
    let height = net.node(0).store().head().unwrap().unwrap().height;
    net.wait_all(height).await;
    net.assert_agree(height);
    // Proposers are drawn by stake: with equal stakes, more than one proposed.
    let store = net.node(1).store();
    let proposers: std::collections::BTreeSet<Address> =
        (1..=height).map(|h| store.block(h).unwrap().unwrap().header.proposer).collect();
    assert!(proposers.len() > 1 || height < 4, "{proposers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_validator_restarts_and_catches_up() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_all(2).await;
    net.nodes[3].take().unwrap().stop().await.unwrap();
    let before = net.node(0).store().head().unwrap().unwrap().height;
    // Three of four (75 % of the stake) go on without it.
    net.wait_all(before + 4).await;
    let to = key(3).address();
    net.node(1).submit(transfer(&key(1), 0, to, 5)).await.unwrap().unwrap();
    until("a transfer without validator 3", || net.account(0, &to).balance == 5).await;

    net.start(3);
    let target = net.node(0).store().head().unwrap().unwrap().height + 2;
    net.wait_all(target).await;
    net.assert_agree(target);
    assert_eq!(net.account(3, &to).balance, 5);
}

/// Four validators, three of them running past block 1; the fourth's key, for a test to
/// misbehave with, and a link onto their network.
async fn three_and_a_cheat() -> (Net, SecretKey, Link) {
    let mut net = Net::new(4);
    for i in 0..3 {
        net.start(i);
    }
    net.wait_all(1).await;
    let cheat = net.keys[3].clone();
    let link = net.hub.join();
    (net, cheat, link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_signing_validator_is_slashed() {
    // Validator 3 does not run honestly: it signs two prevotes for every coming height.
    let (net, cheat, mut link) = three_and_a_cheat().await;
    let ctx = Ctx::new(CHAIN);
    let now = net.node(0).store().head().unwrap().unwrap().height;
    for height in now + 1..now + 4 {
        for block in [b"one", b"two"] {
            let vote = Vote {
                height: Height(height),
                round: Round::new(0),
                kind: VoteType::Prevote,
                block: NilOrVal::Val(Hash::of("a block that does not exist", block)),
                validator: ValidatorAddress(cheat.address()),
            };
            let signed = ctx.sign_vote(vote, &cheat);
            link.broadcast(
                Topic::Consensus,
                encode(&Message::Consensus(SignedConsensusMsg::Vote(signed))),
            );
        }
    }
    until("the double-signer losing stake", || {
        (0..3).all(|i| net.account(i, &cheat.address()).stake < 100)
    })
    .await;
    // 5 % per offence, once per offence (each of up to three heights is one): several
    // validators report each one, the chain punishes it once.
    let height = net.node(0).store().head().unwrap().unwrap().height;
    net.wait_all(height + 4).await;
    let stake = net.account(0, &cheat.address()).stake;
    assert!((85..=95).contains(&stake), "stake {stake} after at most three offences");
    net.assert_agree(height + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_proposing_validator_is_slashed() {
    // Validator 3 does not run honestly: whenever a round is its to propose, it proposes two
    // different blocks.
    let (net, cheat, mut link) = three_and_a_cheat().await;
    let ctx = Ctx::new(CHAIN);
    let mut proposed = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while (0..3).any(|i| net.account(i, &cheat.address()).stake == 100) {
        assert!(tokio::time::Instant::now() < deadline, "the double-proposer kept its stake");
        let status = net.node(0).status().await.unwrap();
        let (height, round) = (status.consensus_height, status.round);
        let set = net.node(0).store().validators_at(height).unwrap();
        let ours = set.validators().iter().position(|v| v.public_key == cheat.public());
        if status.height + 1 == height
            && Some(set.proposer_index(status.block, height, round)) == ours
            && proposed.insert((height, round))
        {
            for block in [b"one", b"two"] {
                let proposal = Proposal {
                    height: Height(height),
                    round: Round::new(round),
                    block: BlockHash(Hash::of("a block that does not exist", block)),
                    pol_round: Round::Nil,
                    proposer: ValidatorAddress(cheat.address()),
                };
                let signed = ctx.sign_proposal(proposal, &cheat);
                link.broadcast(
                    Topic::Consensus,
                    encode(&Message::Consensus(SignedConsensusMsg::Proposal(signed))),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // 5 % per offence, once per offence: each round it proposed twice in is one (more than one
    // may have gone by before the first punishment landed).
    let height = net.node(0).store().head().unwrap().unwrap().height;
    net.wait_all(height + 2).await;
    let least = (0..proposed.len()).fold(100u64, |stake, _| stake - stake * 500 / 10_000);
    let stake = net.account(0, &cheat.address()).stake;
    assert!(
        (least..100).contains(&stake),
        "stake {stake} after at most {} offences",
        proposed.len()
    );
    net.assert_agree(height + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_spend_resolves_to_exactly_one_transfer() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_all(1).await;
    // Two transfers of (nearly) everything key(1) has, with the same nonce, to two validators.
    let spender = key(1);
    let all = net.account(0, &spender.address()).balance - FEE;
    let (a, b) = (key(4).address(), key(5).address());
    // Submitted at once to two validators; whichever mempool hears of the other first refuses
    // the second (its nonce is taken), otherwise both wait in different mempools.
    let (first, second) = tokio::join!(
        net.node(0).submit(transfer(&spender, 0, a, all)),
        net.node(2).submit(transfer(&spender, 0, b, all)),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(first.is_ok() || second.is_ok(), "{first:?} {second:?}");
    for refused in [&first, &second].into_iter().filter_map(|r| r.as_ref().err()) {
        let why = refused.to_string();
        assert!(why.contains("nonce") || why.contains("balance"), "{why}");
    }
    until("one of the transfers committing", || net.account(0, &spender.address()).nonce == 1)
        .await;
    let height = net.node(0).store().head().unwrap().unwrap().height + 2;
    net.wait_all(height).await;
    for i in 0..4 {
        let (got_a, got_b) = (net.account(i, &a).balance, net.account(i, &b).balance);
        assert_eq!(got_a + got_b, all, "validator {i}: {got_a} + {got_b}");
        assert!(got_a == 0 || got_b == 0, "validator {i}: both transfers went through");
    }
    net.assert_agree(height);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staking_joins_the_next_epochs_validators_and_a_light_client_follows() {
    const EPOCH: u64 = 4;
    let mut net = Net::with_epochs(4, EPOCH);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_all(1).await;
    let staker = key(1);
    let call = Call::Stake { amount: 50 };
    let tx = Tx { chain_id: CHAIN.into(), signer: staker.public(), nonce: 0, fee: FEE, call };
    net.node(0).submit(encode(&tx.sign(&staker))).await.unwrap().unwrap();
    until("the stake committing", || net.account(0, &staker.address()).stake == 50).await;
    let staked_at = net.node(0).store().head().unwrap().unwrap().height;
    // The epoch after the one it staked in has it as a validator of power 50 (it runs no node:
    // the others hold 400 of 450).
    let joined = (epoch_of(staked_at, EPOCH) + 1) * EPOCH + 1;
    net.wait_all(joined + 1).await;
    let store = net.node(2).store();
    let set = store.validators_at(joined).unwrap();
    assert_eq!(set.get(&staker.address()).map(|v| v.power), Some(50));
    assert!(store.validators_at(staked_at).unwrap().get(&staker.address()).is_none());
    assert_eq!(store.block(joined).unwrap().unwrap().header.validator_set_hash, set.hash());
    net.assert_agree(joined + 1);

    // A light client that trusts the genesis set follows it epoch by epoch.
    let mut trusted = net.genesis.validators.clone();
    for boundary in (EPOCH..joined).step_by(EPOCH as usize) {
        let header = store.block(boundary).unwrap().unwrap().header;
        let certificate = store.certificate(boundary).unwrap().unwrap();
        let key = validator_set_key(epoch_of(boundary, EPOCH) + 1);
        let (value, proof) = store.get_with_proof(&key, boundary).unwrap();
        let next: ValidatorSet = decode(&value.unwrap()).unwrap();
        // A set the state does not hold is refused.
        let forged = ValidatorSet::new(vec![Validator { public_key: key_of(9), power: 1 }]);
        let refused = follow(&header, &certificate, &trusted, EPOCH, forged.unwrap(), &proof);
        assert!(refused.is_err());
        trusted = follow(&header, &certificate, &trusted, EPOCH, next, &proof).unwrap();
    }
    assert_eq!(trusted, set);
    let header = store.block(joined).unwrap().unwrap().header;
    store.certificate(joined).unwrap().unwrap().verify(&header, &trusted).unwrap();
}

fn key_of(seed: u8) -> kinema_chain::PublicKey {
    key(seed).public()
}

/// The non-step timers an engine scheduled (the sync timer among them).
fn other_timers(outputs: &[Output]) -> Vec<Timer> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Schedule(timer, _) if !timer.is_step() => Some(*timer),
            _ => None,
        })
        .collect()
}

/// The block requests among `outputs`: (peer, first height).
fn requests(outputs: &[Output]) -> Vec<(Peer, u64)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(peer, bytes) => match decode::<Message>(bytes) {
                Ok(Message::SyncRequest { height }) => Some((*peer, height)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A chain of at least `height` blocks from one validator, then stopped; its app (for an
/// engine that only serves blocks).
async fn a_stopped_chain(height: u64) -> (Net, App) {
    let mut net = Net::new(1);
    net.start(0);
    net.wait_all(height).await;
    net.nodes[0].take().unwrap().stop().await.unwrap();
    let path = net.dir.path().join("validator-0.redb");
    let app = App::open(&path, &net.genesis, 1000).unwrap();
    (net, app)
}

/// A new node of `net`'s chain, started, on a clock the test moves: the engine, its store,
/// the clock, and its non-step timers (to tick it by hand).
fn a_new_node(net: &Net) -> (MalachiteEngine, Arc<Store>, Arc<ManualClock>, Vec<Timer>) {
    let app = App::open(&net.dir.path().join("new.redb"), &net.genesis, 1000).unwrap();
    let store = app.store().clone();
    let clock = Arc::new(ManualClock::new());
    let config = Config { clock: clock.clone(), ..Config::new(key(93)) };
    let mut node = MalachiteEngine::new(app, config).unwrap();
    let timers = other_timers(&node.start().unwrap());
    (node, store, clock, timers)
}

/// Expires `timers` on `node`; the block requests it makes.
fn tick(node: &mut MalachiteEngine, timers: &[Timer]) -> Vec<(Peer, u64)> {
    let mut outputs = Vec::new();
    for timer in timers {
        outputs.extend(node.on_timer(*timer).unwrap());
    }
    requests(&outputs)
}

/// The announcement of `store`'s block `height` with its certificate.
fn announcement(store: &Store, height: u64) -> Vec<u8> {
    let header = store.block(height).unwrap().unwrap().header;
    let certificate = store.certificate(height).unwrap().unwrap();
    encode(&Message::Finalized(Finalized { header, certificate }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_far_behind_syncs_in_batches_and_passes_over_a_silent_peer() {
    // A chain of 100 blocks; its engine only serves blocks.
    let (net, server_app) = a_stopped_chain(100).await;
    let store = server_app.store().clone();
    let head = store.head().unwrap().unwrap().height;
    let mut server = MalachiteEngine::new(server_app, Config::new(net.keys[0].clone())).unwrap();

    // A new node hears the head announced by a peer that never answers (1) and by the server
    // (2); it asks 1 first, in turn.
    let (mut node, synced, clock, timers) = a_new_node(&net);
    let finalized = announcement(&store, head);
    let (silent, server_peer) = (Peer(1), Peer(2));
    node.on_message(silent, &finalized).unwrap();
    node.on_message(server_peer, &finalized).unwrap();
    assert_eq!(tick(&mut node, &timers), [(silent, 1)]);
    assert_eq!(tick(&mut node, &timers), [], "asked again before its patience ran out");
    // Unanswered for two seconds: the next peer in turn.
    clock.advance(Duration::from_millis(2100));
    assert_eq!(tick(&mut node, &timers), [(server_peer, 1)]);

    // Each answer carries up to 64 blocks; the next request follows it at once.
    let mut asked = 1;
    let mut answers = 0;
    while node.status().unwrap().height < head {
        let request = encode(&Message::SyncRequest { height: asked });
        let outputs = server.on_message(Peer(9), &request).unwrap();
        let [Output::Send(Peer(9), reply)] = outputs.as_slice() else {
            panic!("no single answer to a request for block {asked}")
        };
        let Ok(Message::SyncResponse { blocks }) = decode::<Message>(reply) else {
            panic!("not a sync answer")
        };
        assert_eq!(blocks.len() as u64, (head - asked + 1).min(64));
        let outputs = node.on_message(server_peer, reply).unwrap();
        let committed = outputs.iter().filter(|o| matches!(o, Output::Committed(_))).count();
        assert_eq!(committed, blocks.len());
        // Synced blocks are not announced again: the validators that decided them did.
        assert!(!outputs.iter().any(|o| matches!(o, Output::Broadcast(Topic::Headers, _))));
        asked += blocks.len() as u64;
        answers += 1;
        if asked <= head {
            assert_eq!(requests(&outputs), [(server_peer, asked)]);
        }
    }
    assert_eq!(answers, head.div_ceil(64));
    assert_eq!(node.status().unwrap().height, head);
    for h in [1, head / 2, head] {
        let block = store.block(h).unwrap().unwrap();
        assert_eq!(synced.block(h).unwrap().unwrap().header, block.header);
        synced
            .certificate(h)
            .unwrap()
            .unwrap()
            .verify(&block.header, &net.genesis.validators)
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_answer_with_a_bad_certificate_is_refused_and_its_peer_passed_over() {
    let (net, app) = a_stopped_chain(3).await;
    let store = app.store().clone();
    let head = store.head().unwrap().unwrap().height;
    let chain: Vec<(Block, Certificate)> = (1..=head)
        .map(|h| (store.block(h).unwrap().unwrap(), store.certificate(h).unwrap().unwrap()))
        .collect();
    // Four peers announce the real head (certified) and answer with the real chain, its first
    // block's certificate forged each its own way.
    let forged = |forge: &dyn Fn(&mut Block, &mut Certificate)| {
        let mut blocks = chain.clone();
        let (block, certificate) = &mut blocks[0];
        forge(block, certificate);
        encode(&Message::SyncResponse { blocks })
    };
    let outsider = key(94);
    let lies = [
        // The validator's signature with a bit flipped.
        forged(&|_, c| c.signatures[0].signature.0[0] ^= 1),
        // No signature at all.
        forged(&|_, c| c.signatures.clear()),
        // Another block than the one certified, with the real block's certificate.
        forged(&|b, _| b.header.time_ms += 1),
        // The block's precommit, signed by someone who is not a validator.
        forged(&|_, c| {
            let precommit = encode(&kinema_chain::block::Vote {
                chain_id: CHAIN.into(),
                height: c.height,
                round: c.round,
                kind: VoteKind::Precommit,
                block: Some(c.block),
            });
            let signature = outsider.sign(Domain::Vote, &precommit);
            c.signatures = vec![CommitSignature { validator: outsider.address(), signature }];
        }),
    ];
    let liars: Vec<Peer> = (1..=lies.len() as u64).map(Peer).collect();
    let honest = Peer(lies.len() as u64 + 1);

    let (mut node, synced, clock, timers) = a_new_node(&net);
    let finalized = announcement(&store, head);
    for peer in liars.iter().chain([&honest]) {
        node.on_message(*peer, &finalized).unwrap();
    }
    assert_eq!(tick(&mut node, &timers), [(liars[0], 1)]);
    for (i, (liar, lie)) in liars.iter().zip(&lies).enumerate() {
        let outputs = node.on_message(*liar, lie).unwrap();
        // Refused: nothing of the answer is taken, not even the blocks after the forged one.
        assert!(!outputs.iter().any(|o| matches!(o, Output::Committed(_))), "lie {i} taken");
        assert_eq!(node.status().unwrap().height, 0, "lie {i}");
        assert!(synced.block(1).unwrap().is_none(), "lie {i}");
        // Its peer is penalized and passed over at once: the next in turn is asked for the same
        // height, without waiting out the liar's patience.
        assert!(outputs.iter().any(|o| matches!(o, Output::Penalize(p) if p == liar)), "lie {i}");
        let next = liars.get(i + 1).unwrap_or(&honest);
        assert_eq!(requests(&outputs), [(*next, 1)], "after lie {i}");
    }
    // The honest peer is slow: it is asked again, not a liar.
    assert_eq!(tick(&mut node, &timers), []);
    clock.advance(Duration::from_millis(2100));
    assert_eq!(tick(&mut node, &timers), [(honest, 1)]);

    // Its answer is taken whole.
    let outputs =
        node.on_message(honest, &encode(&Message::SyncResponse { blocks: chain })).unwrap();
    let committed = outputs.iter().filter(|o| matches!(o, Output::Committed(_))).count();
    assert_eq!(committed as u64, head);
    assert!(!outputs.iter().any(|o| matches!(o, Output::Penalize(_))));
    assert_eq!(node.status().unwrap().height, head);
    for h in 1..=head {
        let block = store.block(h).unwrap().unwrap();
        assert_eq!(synced.block(h).unwrap().unwrap().header, block.header);
        assert_eq!(synced.certificate(h).unwrap(), store.certificate(h).unwrap());
    }
}

#[test]
fn a_headers_topic_message_is_the_finalized_tag_then_the_header() {
    use kinema_chain::gossip::FINALIZED_TAG;
    let header = crate::support::header();
    let certificate =
        Certificate { height: 7, round: 0, block: header.hash(), signatures: Vec::new() };
    let finalized = Finalized { header, certificate };
    let message = Message::Finalized(finalized.clone());
    assert_eq!(message.topic(), Topic::Headers);
    let bytes = encode(&message);
    assert_eq!(bytes[0], FINALIZED_TAG);
    assert_eq!(Finalized::from_gossip(&bytes), Some(finalized));
    let call = Call::Transfer { to: key(2).address(), amount: 250 };
    let transfer = Tx { chain_id: CHAIN.into(), signer: key(1).public(), nonce: 0, fee: FEE, call };
    let tx = Message::Tx(encode(&transfer.sign(&key(1))));
    assert_eq!(tx.topic(), Topic::Transactions);
    assert_eq!(Finalized::from_gossip(&encode(&tx)), None);
    assert_eq!(Finalized::from_gossip(&bytes[..bytes.len() - 1]), None);
    assert_eq!(Topic::Headers.name("kinema-devnet"), "/kinema/kinema-devnet/headers/1");
    // What peers of another version must still read.
    insta::assert_snapshot!("message_finalized", hex::encode(&bytes));
    insta::assert_snapshot!("message_tx", hex::encode(encode(&tx)));
    insta::assert_snapshot!(
        "message_sync_request",
        hex::encode(encode(&Message::SyncRequest { height: 7 }))
    );
}
