//! The transcode market through the chain: calls by contract address and method, the block's
//! begin (its parent's hash in the state) and end (the jobs contract's timers), value that adds
//! up, and the heaviest end of a block within its fuel.

use std::sync::Arc;

use kinema_chain::contract::{Failure, StateView};
use kinema_chain::crypto::SecretKey;
use kinema_chain::execute::{END_BLOCK_FUEL, Executor, Overlay, Receipt, Rejection};
use kinema_chain::tx::{Call, Tx};
use kinema_chain::{Address, Hash, decode, encode, epoch};
use kinema_contracts::jobs::{
    self, BondArgs, Job, JobState, Ladder, Output, PostArgs, ResultArgs, Role, Rung, Slot, Stage,
    VerdictArgs,
};
use kinema_contracts::system::{ACCOUNTS, JOBS};

use crate::support::{CHAIN, FEE, funded};

/// A chain in memory driven block by block as a node drives it.
struct Chain {
    ex: Executor,
    state: Overlay,
    height: u64,
    nonces: std::collections::HashMap<Address, u64>,
    fees: u64,
}

fn key(n: u16) -> SecretKey {
    let mut seed = [9; 32];
    seed[..2].copy_from_slice(&n.to_le_bytes());
    SecretKey::from_seed(seed)
}

impl Chain {
    fn new(funded_keys: &[&SecretKey]) -> Self {
        let host = Arc::new(kinema_node::wasm::Host::new().unwrap());
        let state = funded(&funded_keys.iter().map(|k| (*k, 1_000_000_000)).collect::<Vec<_>>());
        let mut chain = Self {
            ex: Executor::new(CHAIN, host),
            state,
            height: 1,
            nonces: Default::default(),
            fees: 0,
        };
        chain.begin();
        chain
    }

    fn begin(&mut self) {
        let parent = Hash::of("test block", &(self.height - 1).to_le_bytes());
        self.ex.begin_block(&mut self.state, self.height, parent);
    }

    /// Ends the block and begins the next; the end's fuel.
    fn next_block(&mut self) -> u64 {
        let state = std::mem::replace(&mut self.state, Overlay::new(None, None));
        let (end, state) = self.ex.end_block(state, self.height).unwrap();
        assert_eq!(end.result, Ok(()), "the end of block {}", self.height);
        self.state = state;
        self.height += 1;
        self.begin();
        end.fuel_used
    }

    fn send(&mut self, from: &SecretKey, call: Call) -> Result<Receipt, Rejection> {
        let nonce = self.nonces.entry(from.address()).or_default();
        let tx =
            Tx { chain_id: CHAIN.into(), signer: from.public(), nonce: *nonce, fee: FEE, call }
                .sign(from);
        let state = std::mem::replace(&mut self.state, Overlay::new(None, None));
        let (receipt, state) = self.ex.execute(state, &tx, self.height).unwrap();
        self.state = state;
        if let Ok(r) = &receipt {
            *nonce += 1;
            self.fees += r.fee;
        }
        receipt
    }

    fn call(
        &mut self,
        from: &SecretKey,
        method: &str,
        args: &impl borsh::BorshSerialize,
    ) -> Receipt {
        let call =
            Call::Contract { contract: Address(JOBS), method: method.into(), args: encode(args) };
        self.send(from, call).unwrap()
    }

    fn get<T: borsh::BorshDeserialize>(&self, key: &[u8]) -> Option<T> {
        self.state.get(key).unwrap().map(|b| decode(&b).unwrap())
    }

    fn job(&self, id: u64) -> Job {
        self.get(&jobs::job_key(id)).unwrap()
    }

    fn slot(&self, id: u64, segment: u32) -> Slot {
        self.get(&jobs::slot_key(id, segment)).unwrap_or_default()
    }

    fn balance(&self, k: &SecretKey) -> u64 {
        self.state.account(&k.address()).unwrap().balance
    }

    /// Balances, bonds, escrow and what jobs owe, burnt stake, and the fees paid.
    fn value(&self, keys: &[&SecretKey], jobs: u64) -> u64 {
        let balances: u64 = keys.iter().map(|k| self.balance(k)).sum();
        let pool: Vec<jobs::Member> = self.get(b"jobs/pool").unwrap_or_default();
        let bonds: u64 = pool.iter().map(|m| m.bond + m.unbonding).sum();
        let held: u64 = (0..jobs)
            .map(|id| {
                let job = self.job(id);
                job.escrow + job.owed.iter().map(|(_, a)| a).sum::<u64>()
            })
            .sum();
        let burnt: u64 = self.get(b"jobs/burnt").unwrap_or_default();
        balances + bonds + held + burnt + self.fees
    }
}

fn ladder() -> Ladder {
    Ladder {
        codec: "h264".into(),
        preset: "veryfast".into(),
        crf: 23,
        rungs: vec![Rung { name: "240p".into(), width: 426, height: 240, max_kbps: 500 }],
    }
}

fn post_args(segments: u32) -> PostArgs {
    PostArgs {
        source: [3; 32],
        segments,
        ladder: ladder(),
        price: 1_000,
        deadline: 5,
        verify_bps: jobs::DEFAULT_VERIFY_BPS,
    }
}

#[test]
fn a_job_runs_through_transactions_to_the_system_contracts_by_address_and_adds_up() {
    let creator = key(1);
    let workers = [key(2), key(3)];
    let verifiers = [key(4), key(5)];
    let everyone: Vec<&SecretKey> =
        [&creator].into_iter().chain(&workers).chain(&verifiers).collect();
    let mut chain = Chain::new(&everyone);
    for (k, role) in workers
        .iter()
        .map(|k| (k, Role::Worker))
        .chain(verifiers.iter().map(|k| (k, Role::Verifier)))
    {
        let r = chain.call(k, "bond", &BondArgs { role, amount: 1_000_000 });
        assert_eq!(r.result, Ok(()));
    }
    let before = chain.value(&everyone, 0);
    // A job of one record chunk: its last block's end hashes every segment's outputs.
    let segments = jobs::RECORD_CHUNK;
    let posted = chain.call(&creator, "post", &post_args(segments));
    assert_eq!(posted.result, Ok(()));
    let id: u64 = chain.get(&jobs::latest_key(&creator.address().0)).unwrap();
    let mut heaviest = 0;
    for _ in 0..100 {
        heaviest = heaviest.max(chain.next_block());
        for s in 0..segments {
            match chain.slot(id, s).stage {
                Stage::Assigned { worker, .. } => {
                    let k = workers.iter().find(|k| k.address().0 == worker).unwrap();
                    let outputs = vec![Output { hash: [s as u8; 32], size: 10_000 }];
                    let r = chain.call(k, "result", &ResultArgs { job: id, segment: s, outputs });
                    assert_eq!(r.result, Ok(()));
                }
                Stage::Checking { check, review, work } if check.votes.is_empty() => {
                    // The sample seed is the hash of the block that holds the result.
                    assert_eq!(review.seed, Hash::of("test block", &work.at.to_le_bytes()).0);
                    let k = verifiers.iter().find(|k| k.address().0 == check.verifiers[0]).unwrap();
                    let args =
                        VerdictArgs { job: id, segment: s, pass: true, reasons: String::new() };
                    assert_eq!(chain.call(k, "verdict", &args).result, Ok(()));
                }
                _ => {}
            }
        }
        if chain.job(id).state != JobState::Open {
            break;
        }
    }
    let job = chain.job(id);
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert_eq!(chain.get::<u64>(&jobs::ladder_key(&job.ladder.unwrap())), Some(id));
    println!(
        "end of block: at most {heaviest} fuel in a {segments}-segment job's life ({:.1} % of \
         END_BLOCK_FUEL)",
        100.0 * heaviest as f64 / END_BLOCK_FUEL as f64
    );
    assert!(heaviest < END_BLOCK_FUEL / 2, "{heaviest}");
    assert_eq!(chain.value(&everyone, 1), before);
    // Only the parent's hash of the last BLOCK_HASHES_KEPT blocks stays.
    let kept = kinema_contracts::block_hash_key(chain.height - 1);
    assert!(chain.state.get(&kept).unwrap().is_some());
}

#[test]
fn calls_to_no_contract_and_to_what_only_the_chain_may_do_are_refused() {
    let alice = key(1);
    let mut chain = Chain::new(&[&alice]);
    let nowhere =
        Call::Contract { contract: Address([7; 20]), method: "post".into(), args: vec![] };
    let Err(Rejection::Unsupported(why)) = chain.send(&alice, nowhere) else { panic!() };
    assert!(why.contains("no contract lives at") && why.contains("jobs at"), "{why}");
    let tick = chain.call(&alice, "tick", &());
    assert!(
        matches!(tick.result, Err(Failure::Refused(ref why)) if why.contains("only the chain"))
    );
    let slash = Call::Contract {
        contract: Address(ACCOUNTS),
        method: "slash".into(),
        args: encode(&kinema_contracts::accounts::SlashArgs { offender: [1; 20], bps: 10_000 }),
    };
    let slashed = chain.send(&alice, slash).unwrap();
    assert!(
        matches!(slashed.result, Err(Failure::Refused(ref why)) if why.contains("only the chain"))
    );
    let missing = chain.call(&alice, "mint", &());
    assert_eq!(missing.result, Err(Failure::NoSuchMethod("jobs.mint".into())));
    // A stake through its address makes a validator candidate as the Stake call does.
    let stake = Call::Contract {
        contract: Address(ACCOUNTS),
        method: "stake".into(),
        args: encode(&500u64),
    };
    assert_eq!(chain.send(&alice, stake).unwrap().result, Ok(()));
    let stakers: Vec<(Address, kinema_chain::PublicKey)> = chain.get(epoch::STAKERS_KEY).unwrap();
    assert_eq!(stakers, vec![(alice.address(), alice.public())]);
    // A job whose escrow the creator cannot cover is refused and nothing moves.
    let mut dear = post_args(100);
    dear.price = 100_000_000;
    let balance = chain.balance(&alice);
    let refused = chain.call(&alice, "post", &dear);
    assert!(matches!(refused.result, Err(Failure::Refused(ref why)) if why.contains("escrow")));
    assert_eq!(chain.balance(&alice), balance - refused.fee);
}

#[test]
fn the_heaviest_end_of_a_block_stays_within_its_fuel() {
    // A full pool, and 64 jobs posted in one block: the next block's end draws 64 x 16 workers,
    // a whole block's work.
    let members: Vec<SecretKey> = (0..jobs::MAX_POOL as u16).map(|n| key(100 + n)).collect();
    let creators: Vec<SecretKey> =
        (0..(jobs::WORK_PER_BLOCK / jobs::ASSIGN_BATCH) as u16).map(|n| key(1000 + n)).collect();
    let everyone: Vec<&SecretKey> = members.iter().chain(&creators).collect();
    let mut chain = Chain::new(&everyone);
    for (i, m) in members.iter().enumerate() {
        let role = if i % 4 == 0 { Role::Verifier } else { Role::Worker };
        let r = chain.call(m, "bond", &BondArgs { role, amount: jobs::MIN_BOND + i as u64 });
        assert_eq!(r.result, Ok(()));
    }
    let full =
        chain.call(&creators[0], "bond", &BondArgs { role: Role::Worker, amount: jobs::MIN_BOND });
    assert!(
        matches!(full.result, Err(Failure::Refused(ref why)) if why.contains("members already"))
    );
    chain.next_block();
    for c in &creators {
        assert_eq!(chain.call(c, "post", &post_args(jobs::MAX_SEGMENTS)).result, Ok(()));
    }
    let quiet = chain.next_block();
    let heaviest = chain.next_block();
    let assigned = (0..creators.len() as u64)
        .flat_map(|id| (0..jobs::ASSIGN_BATCH).map(move |s| (id, s)))
        .filter(|(id, s)| matches!(chain.slot(*id, *s).stage, Stage::Assigned { .. }))
        .count();
    // Every draw ran; those past the workers' room found nobody and wait to be drawn again.
    let workers = members.len() - members.len().div_ceil(4);
    let room = workers * jobs::MAX_TASKS as usize;
    assert_eq!(assigned, room.min(jobs::WORK_PER_BLOCK as usize));
    println!(
        "end of block: {quiet} fuel with nothing due, {heaviest} drawing {assigned} workers \
         from {} members ({:.1} % of END_BLOCK_FUEL)",
        jobs::MAX_POOL,
        100.0 * heaviest as f64 / END_BLOCK_FUEL as f64
    );
    assert!(heaviest < END_BLOCK_FUEL / 2, "{heaviest}");
}
