//! The store: blocks and state committed together, proofs a light client checks, and a writer
//! killed mid-run that restarts exactly where it was.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use kinema_chain::block::{Block, Header};
use kinema_chain::crypto::SecretKey;
use kinema_chain::state::account_key;
use kinema_chain::tx::Account;
use kinema_chain::{Address, Hash, encode};
use kinema_node::store::{Head, Store};

fn address(i: u64) -> Address {
    SecretKey::from_seed([i as u8; 32]).address()
}

fn account(balance: u64) -> Account {
    Account { nonce: 0, balance, stake: 0, unbonding: Vec::new() }
}

/// Commits the next block with `changes` applied; returns the new head.
fn commit(store: &Store, changes: Vec<(Address, Option<Account>)>) -> Head {
    let head = store.head().unwrap();
    let pending = store
        .prepare(
            changes
                .into_iter()
                .map(|(a, acc)| (account_key(&a), acc.map(|x| encode(&x))))
                .collect(),
        )
        .unwrap();
    let header = Header {
        chain_id: "kinema-test".into(),
        height: pending.height(),
        parent: head.map_or(Hash::ZERO, |h| h.block),
        time_ms: 1_795_000_000_000 + pending.height(),
        proposer: address(0),
        state_root: pending.root(),
        tx_root: Hash::ZERO,
        validator_set_hash: Hash::ZERO,
    };
    store.commit(pending, &Block { header, txs: Vec::new() }, None).unwrap()
}

#[test]
fn accounts_are_proved_present_changed_and_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("chain.redb")).unwrap();
    assert_eq!(store.head().unwrap(), None);
    let genesis = commit(&store, (1..=3).map(|i| (address(i), Some(account(i * 100)))).collect());
    assert_eq!(genesis.height, 0);
    let one = commit(&store, vec![(address(1), Some(account(5))), (address(2), None)]);
    assert_eq!((one.height, store.block(1).unwrap().unwrap().header.parent), (1, genesis.block));

    let check = |i: u64, height: u64, root: Hash, expect: Option<u64>| {
        let (found, proof) = store.account(&address(i), height).unwrap();
        assert_eq!(found.as_ref().map(|a| a.balance), expect, "account {i} at {height}");
        proof.verify_account(root, &address(i), found.as_ref()).unwrap();
        // The same proof says nothing else.
        let other = Some(account(expect.unwrap_or(0) + 1));
        assert!(proof.verify_account(root, &address(i), other.as_ref()).is_err());
        assert!(proof.verify_account(Hash([7; 32]), &address(i), found.as_ref()).is_err());
    };
    check(1, 1, one.state_root, Some(5));
    check(2, 1, one.state_root, None); // deleted
    check(3, 1, one.state_root, Some(300)); // untouched
    check(9, 1, one.state_root, None); // never existed
    check(1, 0, genesis.state_root, Some(100)); // history
    check(2, 0, genesis.state_root, Some(200));
    assert_ne!(genesis.state_root, one.state_root);

    // Reopened, it is where it was.
    drop(store);
    let store = Store::open(&tmp.path().join("chain.redb")).unwrap();
    assert_eq!(store.head().unwrap(), Some(one));
}

#[test]
fn a_block_must_follow_the_head_and_carry_the_prepared_root() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("chain.redb")).unwrap();
    let genesis = commit(&store, vec![(address(1), Some(account(1)))]);
    let header = |height, parent, state_root| Header {
        chain_id: "kinema-test".into(),
        height,
        parent,
        time_ms: 0,
        proposer: address(0),
        state_root,
        tx_root: Hash::ZERO,
        validator_set_hash: Hash::ZERO,
    };
    let prepare =
        || store.prepare(vec![(account_key(&address(1)), Some(encode(&account(2))))]).unwrap();
    let refuse = |header: Header| {
        let pending = prepare();
        let err = store.commit(pending, &Block { header, txs: Vec::new() }, None).unwrap_err();
        err.to_string()
    };
    let root = prepare().root();
    assert!(refuse(header(1, Hash::ZERO, root)).contains("does not follow"));
    assert!(refuse(header(2, genesis.block, root)).contains("does not follow"));
    assert!(refuse(header(1, genesis.block, Hash::ZERO)).contains("not the prepared"));
    assert_eq!(store.head().unwrap(), Some(genesis));
}

/// What the writer sets at `height`: accounts 1..=10 hold `height * 100 + i`.
fn writer_changes(height: u64) -> Vec<(Address, Option<Account>)> {
    (1..=10).map(|i| (address(i), Some(account(height * 100 + i)))).collect()
}

/// The child process of `a_killed_writer_restarts_where_it_was`: commits blocks until killed,
/// printing each height once it is durable.
#[test]
#[ignore = "a child process of a_killed_writer_restarts_where_it_was, run by it"]
fn writer_child() {
    let path = std::env::var_os("KINEMA_TEST_STORE").expect("KINEMA_TEST_STORE names the store");
    let store = Store::open(Path::new(&path)).unwrap();
    loop {
        let height = store.head().unwrap().map_or(0, |h| h.height + 1);
        let head = commit(&store, writer_changes(height));
        println!("committed {}", head.height);
    }
}

#[test]
fn a_killed_writer_restarts_where_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("chain.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "store::writer_child", "--nocapture", "--test-threads", "1"])
        .env("KINEMA_TEST_STORE", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0;
    while last < 25 {
        let line = lines.next().expect("the writer stopped early").unwrap();
        if let Some(h) = line.strip_prefix("committed ") {
            last = h.parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL, wherever the writer is
    child.wait().unwrap();

    let store = Store::open(&path).unwrap();
    let head = store.head().unwrap().unwrap();
    assert!(head.height >= last, "head {} is behind the reported {last}", head.height);
    // Every block is there and chained; the state is exactly the head's.
    let mut parent = Hash::ZERO;
    for height in 0..=head.height {
        let block = store.block(height).unwrap().unwrap();
        assert_eq!(block.header.parent, parent, "block {height}");
        parent = block.header.hash();
    }
    assert_eq!(parent, head.block);
    assert_eq!(store.block(head.height + 1).unwrap(), None);
    for (address, expected) in writer_changes(head.height) {
        let (found, proof) = store.account(&address, head.height).unwrap();
        assert_eq!(found, expected);
        proof.verify_account(head.state_root, &address, found.as_ref()).unwrap();
    }
    // And it goes on from there.
    let next = commit(&store, writer_changes(head.height + 1));
    assert_eq!(next.height, head.height + 1);
}

#[test]
/// The light client's wasm32 test (kinema-chain's `tests/light.rs`) checks proofs from this
/// fixture; the store must still make exactly these.
fn the_light_client_fixture_is_what_the_store_makes() {
    use kinema_chain::block::Block;
    use kinema_chain::state::account_key;
    use kinema_node::store::Store;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("chain.redb")).unwrap();
    let changes = (1..=3u8)
        .map(|i| {
            let account = Account { balance: u64::from(i) * 1_000, nonce: 2, ..Default::default() };
            (account_key(&SecretKey::from_seed([i; 32]).address()), Some(encode(&account)))
        })
        .collect();
    let pending = store.prepare(changes).unwrap();
    let header = Header {
        chain_id: "kinema-light".into(),
        height: 0,
        parent: Hash::ZERO,
        time_ms: 0,
        proposer: SecretKey::from_seed([1; 32]).address(),
        state_root: pending.root(),
        tx_root: Hash::ZERO,
        validator_set_hash: Hash::ZERO,
    };
    let head = store.commit(pending, &Block { header, txs: Vec::new() }, None).unwrap();
    let entries = [2, 9]
        .map(|seed| SecretKey::from_seed([seed; 32]).address())
        .into_iter()
        .map(|a| {
            let (account, proof) = store.account(&a, 0).unwrap();
            (a, account, proof)
        })
        .collect::<Vec<_>>();
    let made = encode(&(head.state_root, entries));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../chain/tests/fixtures/account-proofs.bin");
    if std::env::var_os("KINEMA_UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &made).unwrap();
    }
    assert!(
        made == include_bytes!("../../../chain/tests/fixtures/account-proofs.bin"),
        "{} is out of date: run this test with KINEMA_UPDATE_FIXTURES=1",
        path.display()
    );
}

#[test]
fn a_store_of_an_older_format_is_upgraded_or_refused_with_what_to_do() {
    use redb::{Database, TableDefinition};
    const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let set_format = |format: Option<u64>| {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            match format {
                Some(f) => meta.insert("format", encode(&f).as_slice()).unwrap(),
                None => meta.remove("format").unwrap(),
            };
        }
        txn.commit().unwrap();
    };
    {
        let store = Store::open(&path).unwrap();
        commit(&store, vec![(address(1), Some(account(5)))]);
        store.wal_append(1, b"an entry of the older layout").unwrap();
    }
    // Written before the format was recorded, with a write-ahead log this version cannot read:
    // refused, saying what to do.
    set_format(None);
    let refused = Store::open(&path).unwrap_err().to_string();
    assert!(refused.contains("older kinema") && refused.contains("height 1"), "{refused}");
    // A newer format is refused too.
    set_format(Some(kinema_node::store::FORMAT + 1));
    let refused = Store::open(&path).unwrap_err().to_string();
    assert!(refused.contains("newer kinema"), "{refused}");
    // An older store with no write-ahead log pending is upgraded in place.
    set_format(None);
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(TableDefinition::<'_, (u64, u64), &[u8]>::new("wal"))
            .unwrap()
            .retain(|_, _| false)
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.head().unwrap().unwrap().height, 0);
}
