//! The node's crash-safe store: blocks and the state tree in one redb database.
//!
//! A block and the tree nodes and values its transactions produced are written in one redb
//! transaction, committed durably (fsync) before [`Store::commit`] returns, so a node killed at
//! any moment reopens at the last block it committed, with exactly that block's state. Heights
//! are the tree's versions; the genesis block is height 0.
//!
//! Beside them: each block's commit [`Certificate`] (written with the block), and the consensus
//! write-ahead log of the height being decided, so a validator that restarts mid-height replays
//! what it saw and signed instead of signing something else.

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use redb::{Database, ReadOnlyTable, ReadableTable, ReadableTableMetadata, TableDefinition};

use borsh::BorshDeserialize;

use kinema_chain::block::{Block, Certificate, Header, ValidatorSet};
use kinema_chain::epoch;
use kinema_chain::state::{Blake3, Proof, account_key, key_hash};
use kinema_chain::tx::Account;
use kinema_chain::{Address, Error, Hash};

/// Tree nodes: borsh `NodeKey` → borsh `Node`.
const NODES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("nodes");
/// Values: key hash ‖ big-endian version → borsh `Option<Vec<u8>>` (`None`: deleted).
const VALUES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("values");
/// Blocks by height.
const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
/// Commit certificates by height.
const CERTIFICATES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("certificates");
/// The consensus write-ahead log: height, sequence → entry.
const WAL: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("wal");
/// The head.
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
/// Tree nodes a later version replaced: big-endian version it was replaced at ‖ borsh
/// `NodeKey`.
const STALE: TableDefinition<'_, &[u8], ()> = TableDefinition::new("stale");
/// The layout this version writes. 1: before block parts carried their proposer's signature (a
/// write-ahead log of format 1 cannot be read); 2: since.
pub const FORMAT: u64 = 2;

/// Stale nodes a commit deletes at most (the rest wait for the next commits).
const PRUNE_BATCH: usize = 20_000;

/// The last committed block.
#[derive(Debug, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Head {
    /// Its height.
    pub height: u64,
    /// Its header's hash.
    pub block: Hash,
    /// The state root after it.
    pub state_root: Hash,
}

/// State changes whose root is known, waiting for their block.
#[derive(Debug)]
pub struct Pending {
    height: u64,
    root: Hash,
    batch: TreeUpdateBatch,
}

impl Pending {
    /// The state root the block's header must carry.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The height the changes belong to.
    pub fn height(&self) -> u64 {
        self.height
    }
}

/// Blocks and state on disk.
///
/// Every version of the state stays readable unless [`Store::keep_states`] sets how many
/// recent ones to keep: each commit then deletes the tree nodes and values that only older
/// versions used, except those of epoch boundaries (multiples of the epoch length), whose
/// validator sets light clients prove from genesis on. Blocks and certificates are always kept.
#[derive(Debug)]
pub struct Store {
    db: Database,
    /// Versions kept besides the boundaries; 0 keeps every one.
    keep: AtomicU64,
    /// Below this height only epoch boundaries can be read.
    pruned: AtomicU64,
    /// Blocks per epoch, once read (the genesis fixes it).
    epoch_length: OnceLock<u64>,
}

/// Turns a redb or tree error into a store error saying what was being done.
fn failed<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Store { what, detail: e.to_string() }
}

impl kinema_chain::execute::StateSource for Store {
    fn get(&self, key: &[u8], version: u64) -> Result<Option<Vec<u8>>, Error> {
        Store::get(self, key, version)
    }
}

impl Store {
    /// Opens the store at `path`, creating it when it does not exist.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let create = || -> anyhow::Result<Database> {
            let db = Database::create(path)?;
            let txn = db.begin_write()?;
            // The format: a store that is new gets this version's; an older one is upgraded
            // below or refused; a newer one is refused.
            let found = {
                let meta = txn.open_table(META)?;
                let format = meta.get("format")?.map(|b| b.value().to_vec());
                let blocks = txn.open_table(BLOCKS)?;
                match format {
                    Some(bytes) => kinema_chain::decode::<u64>(&bytes)?,
                    None if blocks.is_empty()? => FORMAT,
                    None => 1,
                }
            };
            if found > FORMAT {
                anyhow::bail!(
                    "it was written by a newer kinema (store format {found}; this one reads up \
                     to {FORMAT}): run that version or a later one"
                );
            }
            if found < FORMAT {
                let wal = txn.open_table(WAL)?;
                if let Some(entry) = wal.first()? {
                    let height = entry.0.value().0;
                    anyhow::bail!(
                        "it was written by an older kinema (store format {found}) and holds a \
                         consensus write-ahead log for height {height}, which this version \
                         cannot read: run the version that wrote it until it has committed \
                         height {height}, then this one (it upgrades the store by itself)"
                    );
                }
            }
            txn.open_table(META)?.insert("format", kinema_chain::encode(&FORMAT).as_slice())?;
            for table in [NODES, VALUES] {
                txn.open_table(table)?;
            }
            txn.open_table(META)?;
            for table in [BLOCKS, CERTIFICATES] {
                txn.open_table(table)?;
            }
            txn.open_table(WAL)?;
            txn.open_table(STALE)?;
            txn.commit()?;
            Ok(db)
        };
        let db = create().map_err(|e| Error::Store {
            what: "opening the chain store",
            detail: format!("{}: {e}", path.display()),
        })?;
        let store = Self {
            db,
            keep: AtomicU64::new(0),
            pruned: AtomicU64::new(0),
            epoch_length: OnceLock::new(),
        };
        let pruned = store.meta("pruned")?.map(|bytes| kinema_chain::decode(&bytes)).transpose()?;
        store.pruned.store(pruned.unwrap_or(0), Ordering::Relaxed);
        Ok(store)
    }

    /// The metadata under `name`.
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let what = "reading the store's metadata";
        let txn = self.db.begin_read().map_err(failed(what))?;
        let meta = txn.open_table(META).map_err(failed(what))?;
        Ok(meta.get(name).map_err(failed(what))?.map(|bytes| bytes.value().to_vec()))
    }

    /// The last committed block, or `None` before genesis.
    pub fn head(&self) -> Result<Option<Head>, Error> {
        self.meta("head")?.map(|bytes| kinema_chain::decode(&bytes)).transpose()
    }

    /// The row at `height` of a table keyed by height, decoded by `decode`.
    fn by_height<T>(
        &self,
        table: TableDefinition<'_, u64, &[u8]>,
        height: u64,
        what: &'static str,
        decode: impl FnOnce(&[u8]) -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        let txn = self.db.begin_read().map_err(failed(what))?;
        let rows = txn.open_table(table).map_err(failed(what))?;
        let Some(bytes) = rows.get(height).map_err(failed(what))? else {
            return Ok(None);
        };
        decode(bytes.value()).map(Some)
    }

    /// Keeps the state of the last `versions` heights (and of every epoch boundary); `None`
    /// keeps every height's. Takes effect from the next commit.
    pub fn keep_states(&self, versions: Option<u64>) {
        self.keep.store(versions.map_or(0, |v| v.max(1)), Ordering::Relaxed);
    }

    /// Tree nodes stored, of every version kept.
    pub fn state_nodes(&self) -> Result<u64, Error> {
        let what = "counting the state tree's nodes";
        let txn = self.db.begin_read().map_err(failed(what))?;
        let nodes = txn.open_table(NODES).map_err(failed(what))?;
        nodes.len().map_err(failed(what))
    }

    /// The height below which only epoch boundaries' states can be read (0: none pruned).
    pub fn pruned_below(&self) -> u64 {
        self.pruned.load(Ordering::Relaxed)
    }

    /// An error unless the state after block `height` is still stored.
    fn readable(&self, height: u64) -> Result<(), Error> {
        let pruned = self.pruned_below();
        if height >= pruned || height.is_multiple_of(self.epoch_length()?) {
            return Ok(());
        }
        Err(Error::Store {
            what: "reading the state",
            detail: format!(
                "the state after block {height} was pruned: this node keeps heights from \
                 {pruned} on and epoch boundaries"
            ),
        })
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, Error> {
        self.by_height(BLOCKS, height, "reading a block", kinema_chain::decode)
    }

    /// The header of the block at `height` (its transactions are not decoded).
    pub fn header(&self, height: u64) -> Result<Option<Header>, Error> {
        self.by_height(BLOCKS, height, "reading a header", |mut bytes| {
            // A block's encoding starts with its header's.
            Header::deserialize(&mut bytes).map_err(|e| Error::BadEncoding {
                what: "a stored block's header",
                why: e.to_string(),
            })
        })
    }

    /// The certificate that finalized the block at `height` (none for genesis).
    pub fn certificate(&self, height: u64) -> Result<Option<Certificate>, Error> {
        self.by_height(CERTIFICATES, height, "reading a certificate", kinema_chain::decode)
    }

    /// Blocks per epoch, as the genesis state set it (read once).
    pub fn epoch_length(&self) -> Result<u64, Error> {
        if let Some(length) = self.epoch_length.get() {
            return Ok(*length);
        }
        let head = self.head()?.map_or(0, |h| h.height);
        let length = self.get(epoch::EPOCH_LENGTH_KEY, head)?.ok_or_else(|| Error::Store {
            what: "reading the epoch length",
            detail: "the state has none (no genesis block?)".into(),
        })?;
        let length: u64 = kinema_chain::decode(&length)?;
        Ok(*self.epoch_length.get_or_init(|| length))
    }

    /// The validators of the epoch of block `height`, as the state at the head records them
    /// (known up to the epoch after the head's).
    pub fn validators_at(&self, height: u64) -> Result<ValidatorSet, Error> {
        let head = self.head()?.ok_or_else(|| Error::Store {
            what: "reading the validators",
            detail: "the store has no genesis block".into(),
        })?;
        let missing = |what: String| Error::Store { what: "reading the validators", detail: what };
        let e = epoch::epoch_of(height, self.epoch_length()?);
        let set = self.get(&epoch::validator_set_key(e), head.height)?.ok_or_else(|| {
            missing(format!("no validator set for epoch {e} (block {height}) yet"))
        })?;
        kinema_chain::decode(&set)
    }

    /// Appends `entry` to the write-ahead log of `height`, durably.
    pub fn wal_append(&self, height: u64, entry: &[u8]) -> Result<(), Error> {
        let write = || -> anyhow::Result<()> {
            let txn = self.db.begin_write()?;
            {
                let mut wal = txn.open_table(WAL)?;
                let next = match wal.range((height, 0)..=(height, u64::MAX))?.next_back() {
                    Some(last) => last?.0.value().1 + 1,
                    None => 0,
                };
                wal.insert((height, next), entry)?;
            }
            txn.commit()?;
            Ok(())
        };
        write().map_err(failed("appending to the write-ahead log"))
    }

    /// The write-ahead log of `height`, in order.
    pub fn wal(&self, height: u64) -> Result<Vec<Vec<u8>>, Error> {
        let read = || -> anyhow::Result<Vec<Vec<u8>>> {
            let txn = self.db.begin_read()?;
            let wal = txn.open_table(WAL)?;
            let mut out = Vec::new();
            for entry in wal.range((height, 0)..=(height, u64::MAX))? {
                out.push(entry?.1.value().to_vec());
            }
            Ok(out)
        };
        read().map_err(failed("reading the write-ahead log"))
    }

    /// What `key` holds after the block at `height`.
    pub fn get(&self, key: &[u8], height: u64) -> Result<Option<Vec<u8>>, Error> {
        self.readable(height)?;
        let reader = self.reader("reading the state")?;
        JellyfishMerkleTree::<_, Blake3>::new(&reader)
            .get(key_hash(key), height)
            .map_err(failed("reading the state"))
    }

    /// What `key` holds after the block at `height`, with its proof against that block's state
    /// root.
    pub fn get_with_proof(
        &self,
        key: &[u8],
        height: u64,
    ) -> Result<(Option<Vec<u8>>, Proof), Error> {
        self.readable(height)?;
        let reader = self.reader("reading the state")?;
        let tree = JellyfishMerkleTree::<_, Blake3>::new(&reader);
        let (value, proof) =
            tree.get_with_proof(key_hash(key), height).map_err(failed("reading the state"))?;
        Ok((value, Proof::new(proof)))
    }

    /// `address`'s account after the block at `height`, with its proof.
    pub fn account(
        &self,
        address: &Address,
        height: u64,
    ) -> Result<(Option<Account>, Proof), Error> {
        let (value, proof) = self.get_with_proof(&account_key(address), height)?;
        let account = value.as_deref().map(kinema_chain::decode::<Account>).transpose()?;
        Ok((account, proof))
    }

    /// The state root after `changes` (`None` deletes a key) on top of the head, for the block
    /// at the next height (0 before genesis). Nothing is written.
    pub fn prepare(&self, changes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<Pending, Error> {
        let height = self.head()?.map_or(0, |h| h.height + 1);
        let reader = self.reader("updating the state tree")?;
        let tree = JellyfishMerkleTree::<_, Blake3>::new(&reader);
        let set = changes.into_iter().map(|(k, v)| (key_hash(&k), v));
        let (root, batch) =
            tree.put_value_set(set, height).map_err(failed("updating the state tree"))?;
        Ok(Pending { height, root: Hash(root.0), batch })
    }

    /// Writes `block`, its certificate and its prepared state changes in one durable
    /// transaction, and drops the write-ahead log below the next height; the head moves to it.
    /// The block must sit on the head and carry the prepared root.
    pub fn commit(
        &self,
        pending: Pending,
        block: &Block,
        certificate: Option<&Certificate>,
    ) -> Result<Head, Error> {
        let header = &block.header;
        let expected = self.head()?.map_or((0, Hash::ZERO), |h| (h.height + 1, h.block));
        if (header.height, header.parent) != expected || pending.height != header.height {
            return Err(Error::Store {
                what: "committing a block",
                detail: format!(
                    "block {} with parent {} does not follow the head (next height {}, parent {})",
                    header.height, header.parent, expected.0, expected.1
                ),
            });
        }
        if header.state_root != pending.root {
            return Err(Error::Store {
                what: "committing a block",
                detail: format!(
                    "its state root {} is not the prepared {}",
                    header.state_root, pending.root
                ),
            });
        }
        let head = Head { height: header.height, block: header.hash(), state_root: pending.root };
        let keep = self.keep.load(Ordering::Relaxed);
        let horizon = (keep > 0 && head.height > keep).then(|| head.height - keep);
        let epoch = match horizon {
            Some(_) => self.epoch_length()?,
            None => 0,
        };
        let write = || -> anyhow::Result<()> {
            let txn = self.db.begin_write()?;
            {
                let mut nodes = txn.open_table(NODES)?;
                for (key, node) in pending.batch.node_batch.nodes() {
                    nodes.insert(
                        kinema_chain::encode(key).as_slice(),
                        kinema_chain::encode(node).as_slice(),
                    )?;
                }
                let mut values = txn.open_table(VALUES)?;
                for ((version, key), value) in pending.batch.node_batch.values() {
                    let key = value_key(*key, *version);
                    values.insert(key.as_slice(), kinema_chain::encode(value).as_slice())?;
                }
                txn.open_table(BLOCKS)?
                    .insert(header.height, kinema_chain::encode(block).as_slice())?;
                if let Some(certificate) = certificate {
                    let bytes = kinema_chain::encode(certificate);
                    txn.open_table(CERTIFICATES)?.insert(header.height, bytes.as_slice())?;
                }
                let mut wal = txn.open_table(WAL)?;
                wal.retain_in(..=(header.height, u64::MAX), |_, _| false)?;
                let mut stale = txn.open_table(STALE)?;
                for index in &pending.batch.stale_node_index_batch {
                    let key = stale_key(index.stale_since_version, &index.node_key);
                    stale.insert(key.as_slice(), ())?;
                }
                let mut meta = txn.open_table(META)?;
                meta.insert("head", kinema_chain::encode(&head).as_slice())?;
                if let Some(horizon) = horizon {
                    // Heights below the horizon may lose nodes now (all of them once the
                    // backlog of stale nodes is through): none is read any more.
                    prune(&mut stale, &mut nodes, &mut values, horizon, epoch)?;
                    meta.insert("pruned", kinema_chain::encode(&horizon).as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        };
        write().map_err(failed("committing a block"))?;
        if let Some(horizon) = horizon {
            self.pruned.fetch_max(horizon, Ordering::Relaxed);
        }
        Ok(head)
    }

    /// The tree's view of the committed data: one read transaction, so one consistent snapshot,
    /// for a whole tree operation.
    fn reader(&self, what: &'static str) -> Result<Reader, Error> {
        let open = || -> anyhow::Result<Reader> {
            let txn = self.db.begin_read()?;
            Ok(Reader { nodes: txn.open_table(NODES)?, values: txn.open_table(VALUES)? })
        };
        open().map_err(failed(what))
    }
}

fn stale_key(since: Version, node: &NodeKey) -> Vec<u8> {
    let mut key = since.to_be_bytes().to_vec();
    key.extend_from_slice(&kinema_chain::encode(node));
    key
}

/// Deletes up to [`PRUNE_BATCH`] of the tree nodes that went stale at or below `horizon`, and
/// the values only they read, except what an epoch boundary's tree (every `epoch` heights) still
/// uses.
fn prune(
    stale: &mut redb::Table<'_, &'static [u8], ()>,
    nodes: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    values: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    horizon: u64,
    epoch: u64,
) -> anyhow::Result<()> {
    // Whether a boundary B with from <= B < to exists.
    let boundary_in = |from: u64, to: u64| to > from && (to - 1) / epoch * epoch >= from;
    let end = (horizon + 1).to_be_bytes();
    let batch = stale
        .range(..end.as_slice())?
        .take(PRUNE_BATCH)
        .map(|entry| entry.map(|(key, _)| key.value().to_vec()))
        .collect::<Result<Vec<_>, _>>()?;
    for key in &batch {
        stale.remove(key.as_slice())?;
        let since = u64::from_be_bytes(key[..8].try_into()?);
        let node_key: NodeKey = borsh::from_slice(&key[8..])?;
        let created = node_key.version();
        if boundary_in(created, since) {
            continue;
        }
        let leaf = match nodes.remove(kinema_chain::encode(&node_key).as_slice())? {
            Some(bytes) => match borsh::from_slice::<Node>(bytes.value())? {
                Node::Leaf(leaf) => Some(leaf.key_hash()),
                _ => None,
            },
            None => None,
        };
        // The value the leaf read (the newest at or below its version) goes too once a newer
        // one serves every version kept.
        if let Some(hash) = leaf {
            let used = values
                .range(value_key(hash, 0).as_slice()..=value_key(hash, created).as_slice())?
                .next_back()
                .transpose()?
                .map(|(k, _)| version_of(k.value()));
            let Some(used) = used else { continue };
            let next = values
                .range(value_key(hash, used + 1).as_slice()..=value_key(hash, u64::MAX).as_slice())?
                .next()
                .transpose()?
                .map(|(k, _)| version_of(k.value()));
            if let Some(next) = next
                && next <= horizon
                && !boundary_in(used, next)
            {
                values.remove(value_key(hash, used).as_slice())?;
            }
        }
    }
    Ok(())
}

/// The version in a [`value_key`].
fn version_of(key: &[u8]) -> u64 {
    let mut version = [0; 8];
    version.copy_from_slice(&key[32..40]);
    u64::from_be_bytes(version)
}

fn value_key(key: KeyHash, version: Version) -> [u8; 40] {
    let mut out = [0; 40];
    out[..32].copy_from_slice(&key.0);
    out[32..].copy_from_slice(&version.to_be_bytes());
    out
}

/// The tree's view of the committed data ([`Store::reader`]).
struct Reader {
    nodes: ReadOnlyTable<&'static [u8], &'static [u8]>,
    values: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl TreeReader for Reader {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let node = self.nodes.get(kinema_chain::encode(node_key).as_slice())?;
        Ok(match node {
            Some(bytes) => Some(borsh::from_slice(bytes.value())?),
            None => None,
        })
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let (low, high) = (value_key(key_hash, 0), value_key(key_hash, max_version));
        let newest =
            self.values.range(low.as_slice()..=high.as_slice())?.next_back().transpose()?;
        Ok(match newest {
            Some((_, bytes)) => borsh::from_slice::<Option<OwnedValue>>(bytes.value())?,
            None => None,
        })
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's chunked restore asks for this; Kinema's store never restores that way.
        anyhow::bail!("the chain store does not support restoring the tree from chunks")
    }
}
