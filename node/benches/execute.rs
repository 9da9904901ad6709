//! Transaction throughput on one node: `cargo bench -p kinema-chain --bench execute`.
//!
//! - `transfer`: checking and executing one signed transfer through the accounts contract in
//!   wasmtime (signature, nonce, fee, the call, the refund), against a state in memory;
//! - `block_of_1000_transfers`: the same for 1,000 transfers from 100 senders, then the state
//!   tree update and the durable commit of the block to the store.
//!
//! - `contract_transfer_native` / `contract_transfer_wasm_code`: the accounts contract's
//!   transfer alone, 100 calls per iteration, compiled natively against a state in memory and
//!   the same code run in wasmtime with fuel, the 100 calls in one instance, so the figure is
//!   the code with its host calls and metering (items/s against items/s: the speed ratio);
//! - `contract_transfer_wasm`: one transfer as the chain runs it, in a fresh instance;
//!   `empty_call_wasm`: what a fresh instance costs (a module that returns at once) — the
//!   difference between the two is the code, the rest is isolation.
//!
//! Transfers per second = 1 / `transfer_one`, or 1,000 / `block_of_1000_transfers`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use kinema_chain::block::{Block, Header, tx_root};
use kinema_chain::crypto::SecretKey;
use kinema_chain::execute::{Executor, Overlay, StateSource};
use kinema_chain::state::account_key;
use kinema_chain::tx::{Account, Call, SignedTx, Tx};
use kinema_chain::{Hash, encode};
use kinema_node::store::Store;

fn main() {
    divan::main();
}

const CHAIN: &str = "kinema-bench";

fn senders(n: u8) -> Vec<SecretKey> {
    (0..n).map(|i| SecretKey::from_seed([i; 32])).collect()
}

fn funded(keys: &[SecretKey], store: Option<Arc<Store>>, base: Option<u64>) -> Overlay {
    let mut state = Overlay::new(store.map(|s| s as Arc<dyn StateSource>), base);
    for k in keys {
        let account = Account { balance: u64::MAX / 4, ..Default::default() };
        state.set(account_key(&k.address()), Some(encode(&account)));
    }
    state
}

fn transfer(from: &SecretKey, nonce: u64) -> SignedTx {
    let to = SecretKey::from_seed([200; 32]).address();
    let call = Call::Transfer { to, amount: 1 };
    Tx { chain_id: CHAIN.into(), signer: from.public(), nonce, fee: 1_000_000, call }.sign(from)
}

#[divan::bench]
fn transfer_one(bencher: Bencher<'_, '_>) {
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let keys = senders(1);
    let tx = transfer(&keys[0], 0);
    bencher
        .with_inputs(|| funded(&keys, None, None))
        .bench_values(|state| ex.execute(state, black_box(&tx), 1).unwrap());
}

#[divan::bench(sample_count = 10)]
fn block_of_1000_transfers(bencher: Bencher<'_, '_>) {
    let ex = Executor::new(CHAIN, std::sync::Arc::new(kinema_node::wasm::Host::new().unwrap()));
    let keys = senders(100);
    let txs: Vec<SignedTx> =
        (0..1000).map(|i| transfer(&keys[i % 100], (i / 100) as u64)).collect();
    bencher
        .with_inputs(|| {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(Store::open(&dir.path().join("chain.redb")).unwrap());
            (dir, store)
        })
        .bench_values(|(dir, store)| {
            let mut state = funded(&keys, Some(store.clone()), None);
            for tx in &txs {
                let (receipt, next) = ex.execute(state, tx, 0).unwrap();
                assert!(receipt.unwrap().result.is_ok());
                state = next;
            }
            let pending = store.prepare(state.into_changes()).unwrap();
            let header = Header {
                chain_id: CHAIN.into(),
                height: 0,
                parent: Hash::ZERO,
                time_ms: 0,
                proposer: keys[0].address(),
                state_root: pending.root(),
                tx_root: tx_root(&txs),
                validator_set_hash: Hash::ZERO,
            };
            store.commit(pending, &Block { header, txs: txs.clone() }, None).unwrap();
            drop(dir);
        });
}

/// The accounts contract's transfer compiled natively, against a state in memory:
/// [`WARM_CALLS`] calls per iteration, as in `contract_transfer_wasm_code`.
#[divan::bench]
fn contract_transfer_native(bencher: Bencher<'_, '_>) {
    let args = kinema_contracts::accounts::TransferArgs { to: [2; 20], amount: 1 };
    let host = || kinema_contracts::MemoryHost {
        state: contract_state(),
        caller: [1; 20],
        height: 1,
        events: Vec::with_capacity(WARM_CALLS),
    };
    bencher.counter(ItemsCount::new(WARM_CALLS)).with_inputs(host).bench_local_values(
        |mut host| {
            for _ in 0..WARM_CALLS {
                kinema_contracts::accounts::transfer(&mut host, black_box(&args)).unwrap();
            }
            host
        },
    );
}

/// Calls in one instance per iteration of `contract_transfer_wasm_code`.
const WARM_CALLS: usize = 100;

/// The same transfer's code in wasmtime with fuel: [`WARM_CALLS`] calls in one instance.
#[divan::bench]
fn contract_transfer_wasm_code(bencher: Bencher<'_, '_>) {
    let host = kinema_node::wasm::Host::new().unwrap();
    let args = encode(&kinema_contracts::accounts::TransferArgs { to: [2; 20], amount: 1 });
    let call = transfer_call(&args);
    bencher.counter(ItemsCount::new(WARM_CALLS)).with_inputs(contract_state).bench_values(|view| {
        let (outcome, view) =
            host.call_in_one_instance(view, black_box(&call), WARM_CALLS).unwrap();
        assert!(outcome.result.is_ok());
        view
    });
}

/// One transfer as the chain runs it: a fresh instance, the host calls, the metering.
#[divan::bench]
fn contract_transfer_wasm(bencher: Bencher<'_, '_>) {
    let host = kinema_node::wasm::Host::new().unwrap();
    let args = encode(&kinema_contracts::accounts::TransferArgs { to: [2; 20], amount: 1 });
    let call = transfer_call(&args);
    bencher.counter(ItemsCount::new(1u32)).with_inputs(contract_state).bench_values(|view| {
        let (outcome, view) = host.call(view, black_box(&call)).unwrap();
        assert!(outcome.result.is_ok());
        view
    });
}

fn transfer_call(args: &[u8]) -> kinema_chain::contract::Call<'_> {
    kinema_chain::contract::Call {
        contract: "accounts",
        method: "transfer",
        args,
        caller: kinema_chain::Address([1; 20]),
        height: 1,
        fuel: 10_000_000,
    }
}

/// The fixed cost of a call in wasmtime: a fresh instance of a module whose one function
/// returns at once (what `contract_transfer_wasm` pays before the contract does anything).
#[divan::bench]
fn empty_call_wasm(bencher: Bencher<'_, '_>) {
    use kinema_chain::contract::Call;
    use kinema_node::wasm::Host;
    type View = std::collections::BTreeMap<Vec<u8>, Vec<u8>>;
    let mut host = Host::<View>::new().unwrap();
    let wat =
        br#"(module (memory (export "memory") 1) (func (export "run") (result i32) i32.const 0))"#;
    host.load("empty", wat).unwrap();
    let call = Call {
        contract: "empty",
        method: "run",
        args: &[],
        caller: kinema_chain::Address([1; 20]),
        height: 1,
        fuel: 10_000_000,
    };
    bencher.with_inputs(View::new).bench_values(|view| {
        let (outcome, view) = host.call(view, black_box(&call)).unwrap();
        assert!(outcome.result.is_ok());
        view
    });
}

fn contract_state() -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let account = Account { balance: 1_000_000, ..Default::default() };
    [(kinema_contracts::accounts::key(&[1; 20]), encode(&account))].into_iter().collect()
}
