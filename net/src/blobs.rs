//! The blob store: content-addressed segments on disk, named by their blake3 hash, each with
//! its [`Outboard`] so any 16 KiB group can be served with what verifies it.
//!
//! `<dir>/<hash>` holds the bytes and `<dir>/<hash>.outboard` the outboard. Both are written to
//! temporary files, synced and renamed into place (the outboard last), so a blob is either
//! whole or absent after a crash; a temporary file left by one is removed on the next open.
//! Data that does not hash to the name it is stored under is refused.
//!
//! A blob is either **pinned** (`<dir>/<hash>.pin` exists: published content, what a job
//! accepted, what this node uploaded) or **cached** (fetched for someone). Opened with a cache
//! budget ([`BlobStore::with_cache_budget`]), the store keeps the cached blobs' bytes within it,
//! evicting the least recently used first; pinned blobs are never evicted. Opened without one
//! ([`BlobStore::open`]) it keeps everything.

use kinema_chain::Hash;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::verified::{GROUP, Mismatch, Outboard, OutboardBuilder, groups};

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A file operation failed.
    #[error("{path}: {why}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The reason.
        why: std::io::Error,
    },
    /// The data is not what its name says.
    #[error("blob {name}: {why}")]
    Mismatch {
        /// The name it came under.
        name: Hash,
        /// How it differs.
        why: Mismatch,
    },
    /// Data offered under a name is other data.
    #[error("data offered as blob {name} hashes to {found}")]
    WrongHash {
        /// The name it came under.
        name: Hash,
        /// Its hash.
        found: Hash,
    },
    /// The store has no blob of that name.
    #[error("no blob {0}")]
    Missing(Hash),
    /// A group past the blob's end was asked for.
    #[error("blob {name} has {groups} groups, not {index}")]
    NoSuchGroup {
        /// The blob.
        name: Hash,
        /// Its groups.
        groups: usize,
        /// The group asked for.
        index: usize,
    },
}

/// Blobs in a directory.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    /// The cached blobs, when their bytes are held to a budget.
    cache: Option<Mutex<Cache>>,
}

/// The cached (unpinned) blobs of a store with a budget, least recently used first.
#[derive(Debug, Default)]
struct Cache {
    budget: u64,
    /// Bytes on disk of the blobs below (data and outboard).
    used: u64,
    /// Each cached blob's bytes and last use.
    blobs: HashMap<Hash, (u64, u64)>,
    /// Cached blobs by last use.
    by_use: BTreeMap<u64, Hash>,
    /// The clock of uses.
    uses: u64,
}

impl Cache {
    fn touch(&mut self, name: &Hash) {
        self.uses += 1;
        let now = self.uses;
        if let Some((_, used)) = self.blobs.get_mut(name) {
            self.by_use.remove(used);
            *used = now;
            self.by_use.insert(now, *name);
        }
    }

    /// Counts `name` as used now, or (`oldest`) as used before every other.
    fn add(&mut self, name: Hash, bytes: u64, oldest: bool) {
        if self.blobs.contains_key(&name) {
            return self.touch(&name);
        }
        let first = self.by_use.first_key_value().map(|(used, _)| *used);
        let used = match first {
            Some(first) if oldest && first > 0 => first - 1,
            _ => {
                self.uses += 1;
                self.uses
            }
        };
        self.blobs.insert(name, (bytes, used));
        self.by_use.insert(used, name);
        self.used += bytes;
    }

    fn forget(&mut self, name: &Hash) {
        if let Some((bytes, used)) = self.blobs.remove(name) {
            self.by_use.remove(&used);
            self.used -= bytes;
        }
    }

    /// The blobs to evict to be within the budget, least recently used first (forgotten).
    fn over_budget(&mut self) -> Vec<Hash> {
        let mut evicted = Vec::new();
        while self.used > self.budget
            && let Some((_, name)) = self.by_use.pop_first()
        {
            if let Some((bytes, _)) = self.blobs.remove(&name) {
                self.used -= bytes;
            }
            evicted.push(name);
        }
        evicted
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BlobError + '_ {
    move |why| BlobError::Io { path: path.to_owned(), why }
}

/// Names the temporary files of this process's writers.
static PARTIALS: AtomicU64 = AtomicU64::new(0);

/// A blob being written from pieces ([`BlobStore::writer`]); its temporary file is removed
/// unless the blob is put in place ([`BlobStore::commit`]).
#[derive(Debug)]
pub struct BlobWriter {
    partial: PathBuf,
    file: Option<fs::File>,
    outboard: OutboardBuilder,
}

/// A blob written whole to its temporary file and named ([`BlobWriter::finish`]), not yet in
/// the store; dropped, its file is removed.
#[derive(Debug)]
pub struct Written {
    partial: Option<PathBuf>,
    name: Hash,
    outboard: Outboard,
}

impl BlobWriter {
    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        let Some(file) = self.file.as_mut() else {
            let why = std::io::Error::other("written to after a failed write");
            return Err(BlobError::Io { path: self.partial.clone(), why });
        };
        if let Err(why) = file.write_all(bytes) {
            self.file = None;
            return Err(BlobError::Io { path: self.partial.clone(), why });
        }
        self.outboard.update(bytes);
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.outboard.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.outboard.is_empty()
    }

    /// Syncs what was written and names it.
    pub fn finish(mut self) -> Result<Written, BlobError> {
        let failed = |why| BlobError::Io { path: self.partial.clone(), why };
        let Some(file) = self.file.take() else {
            return Err(failed(std::io::Error::other("a write to it failed")));
        };
        file.sync_all().map_err(failed)?;
        let outboard = std::mem::replace(&mut self.outboard, Outboard::builder());
        let (name, outboard) = outboard.finish();
        let partial = std::mem::take(&mut self.partial);
        Ok(Written { partial: Some(partial), name, outboard })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.partial.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

impl Written {
    /// The blob's name: the blake3 of what was written.
    pub fn name(&self) -> Hash {
        self.name
    }

    /// Its length.
    pub fn len(&self) -> u64 {
        self.outboard.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.outboard.is_empty()
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if let Some(partial) = &self.partial {
            let _ = fs::remove_file(partial);
        }
    }
}

impl BlobStore {
    /// Opens (creating) the store in `dir`, removing what an interrupted write left; it keeps
    /// every blob.
    pub fn open(dir: &Path) -> Result<Self, BlobError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().is_some_and(|e| e == "partial") {
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(Self { dir: dir.to_owned(), cache: None })
    }

    /// Opens the store in `dir` as [`BlobStore::open`] does, holding the blobs that are not
    /// pinned to `budget` bytes on disk (evicting the least recently used, oldest files first
    /// after a restart).
    pub fn with_cache_budget(dir: &Path, budget: u64) -> Result<Self, BlobError> {
        let mut store = Self::open(dir)?;
        let mut cached = Vec::new();
        for name in store.list()? {
            if store.is_pinned(&name) {
                continue;
            }
            let (bytes, modified) = store.on_disk(&name)?;
            cached.push((modified, name, bytes));
        }
        cached.sort();
        // Uses count up from far above 0, so an unpinned blob can be counted older than all.
        let mut cache = Cache { budget, uses: 1 << 40, ..Cache::default() };
        for (_, name, bytes) in cached {
            cache.add(name, bytes, false);
        }
        let evicted = cache.over_budget();
        store.cache = Some(Mutex::new(cache));
        for name in evicted {
            store.delete(&name)?;
        }
        Ok(store)
    }

    fn data_path(&self, name: &Hash) -> PathBuf {
        self.dir.join(name.to_string())
    }

    fn outboard_path(&self, name: &Hash) -> PathBuf {
        self.dir.join(format!("{name}.outboard"))
    }

    /// The bytes `name` takes on disk (data and outboard), and when its data was written.
    fn on_disk(&self, name: &Hash) -> Result<(u64, std::time::SystemTime), BlobError> {
        let (data, outboard) = (self.data_path(name), self.outboard_path(name));
        let meta = fs::metadata(&data).map_err(io(&data))?;
        let bytes = meta.len() + fs::metadata(&outboard).map_err(io(&outboard))?.len();
        Ok((bytes, meta.modified().unwrap_or(std::time::UNIX_EPOCH)))
    }

    fn pin_path(&self, name: &Hash) -> PathBuf {
        self.dir.join(format!("{name}.pin"))
    }

    /// A temporary file of this store's, removed on the next open if left.
    fn partial_path(&self) -> PathBuf {
        let n = PARTIALS.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{}-{n}.partial", std::process::id()))
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), BlobError> {
        let partial = self.partial_path();
        let written = fs::File::create(&partial)
            .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
            .map_err(io(&partial))
            .and_then(|()| fs::rename(&partial, path).map_err(io(path)));
        if written.is_err() {
            let _ = fs::remove_file(&partial);
        }
        written
    }

    fn cache(&self) -> Option<std::sync::MutexGuard<'_, Cache>> {
        self.cache.as_ref().map(|c| c.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Counts a blob just stored (or, `oldest`, just unpinned) in the cache unless it is
    /// pinned, and evicts what is over budget.
    fn stored(&self, name: Hash, bytes: u64, oldest: bool) -> Result<(), BlobError> {
        let evicted = match self.cache() {
            Some(mut cache) if !self.is_pinned(&name) => {
                cache.add(name, bytes, oldest);
                cache.over_budget()
            }
            _ => return Ok(()),
        };
        for name in evicted {
            self.delete(&name)?;
        }
        Ok(())
    }

    /// Stores `data` (cached, unless it was pinned) and returns its name.
    pub fn put(&self, data: &[u8]) -> Result<Hash, BlobError> {
        let (name, outboard) = Outboard::compute(data);
        let outboard = outboard.to_bytes();
        if !self.has(&name) {
            self.write(&self.data_path(&name), data)?;
            self.write(&self.outboard_path(&name), &outboard)?;
        }
        self.stored(name, (data.len() + outboard.len()) as u64, false)?;
        Ok(name)
    }

    /// Stores `data` under `name`, refusing it unless it hashes to that name.
    pub fn put_as(&self, name: Hash, data: &[u8]) -> Result<(), BlobError> {
        let found = Hash::digest(data);
        if found != name {
            return Err(BlobError::WrongHash { name, found });
        }
        self.put(data).map(|_| ())
    }

    /// A writer of a blob that arrives in pieces (an upload), hashed as it is written.
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        let partial = self.partial_path();
        let file = fs::File::create(&partial).map_err(io(&partial))?;
        Ok(BlobWriter { partial, file: Some(file), outboard: Outboard::builder() })
    }

    /// Puts a written blob in place, pinned when `pin`; its name must be `expected` when
    /// given. A blob already held stays as it is (pinned if asked).
    pub fn commit(
        &self,
        mut written: Written,
        expected: Option<Hash>,
        pin: bool,
    ) -> Result<Hash, BlobError> {
        let name = written.name;
        if let Some(expected) = expected
            && expected != name
        {
            return Err(BlobError::WrongHash { name: expected, found: name });
        }
        let outboard = written.outboard.to_bytes();
        if pin {
            self.pin(&name)?;
        }
        if !self.has(&name) {
            let partial = written.partial.take().unwrap_or_default();
            let data = self.data_path(&name);
            fs::rename(&partial, &data).map_err(io(&data))?;
            self.write(&self.outboard_path(&name), &outboard)?;
        }
        self.stored(name, written.len() + outboard.len() as u64, false)?;
        Ok(name)
    }

    /// Pins `name` (held or not yet): it is never evicted until unpinned.
    pub fn pin(&self, name: &Hash) -> Result<(), BlobError> {
        let path = self.pin_path(name);
        if !path.exists() {
            self.write(&path, b"")?;
        }
        if let Some(mut cache) = self.cache() {
            cache.forget(name);
        }
        Ok(())
    }

    /// Unpins `name`: it becomes the first cached blob to evict (at once when over budget).
    pub fn unpin(&self, name: &Hash) -> Result<(), BlobError> {
        let path = self.pin_path(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
            _ => {}
        }
        if self.cache.is_some() && self.has(name) {
            self.stored(*name, self.on_disk(name)?.0, true)?;
        }
        Ok(())
    }

    /// Whether `name` is pinned.
    pub fn is_pinned(&self, name: &Hash) -> bool {
        self.pin_path(name).exists()
    }

    /// Removes `name` (and its pin) from the store.
    pub fn remove(&self, name: &Hash) -> Result<(), BlobError> {
        if let Some(mut cache) = self.cache() {
            cache.forget(name);
        }
        self.delete(name)?;
        let pin = self.pin_path(name);
        match fs::remove_file(&pin) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&pin)(e)),
            _ => Ok(()),
        }
    }

    /// Deletes `name`'s files, the outboard first (so it is absent, not half there).
    fn delete(&self, name: &Hash) -> Result<(), BlobError> {
        for path in [self.outboard_path(name), self.data_path(name)] {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// The bytes on disk of the cached blobs, and the budget they are held to (`None`: the
    /// store keeps everything).
    pub fn cache_use(&self) -> Option<(u64, u64)> {
        self.cache().map(|cache| (cache.used, cache.budget))
    }

    /// Whether the store holds `name` whole.
    pub fn has(&self, name: &Hash) -> bool {
        self.outboard_path(name).exists()
    }

    /// The blob `name`, whole (a use, for the cache's order).
    pub fn get(&self, name: &Hash) -> Result<Vec<u8>, BlobError> {
        if !self.has(name) {
            return Err(BlobError::Missing(*name));
        }
        if let Some(mut cache) = self.cache() {
            cache.touch(name);
        }
        let path = self.data_path(name);
        fs::read(&path).map_err(|why| match why.kind() {
            // Evicted or removed since.
            std::io::ErrorKind::NotFound => BlobError::Missing(*name),
            _ => BlobError::Io { path: path.clone(), why },
        })
    }

    /// The outboard of `name`, checked against it (a use, for the cache's order: what is
    /// served is read through it).
    pub fn outboard(&self, name: &Hash) -> Result<Outboard, BlobError> {
        if let Some(mut cache) = self.cache() {
            cache.touch(name);
        }
        let path = self.outboard_path(name);
        let bytes = fs::read(&path).map_err(|why| match why.kind() {
            std::io::ErrorKind::NotFound => BlobError::Missing(*name),
            _ => BlobError::Io { path: path.clone(), why },
        })?;
        Outboard::from_bytes(*name, &bytes).map_err(|why| BlobError::Mismatch { name: *name, why })
    }

    /// Group `index` of `name`: what a peer serves, and the receiver checks with the outboard.
    pub fn group(&self, name: &Hash, index: usize) -> Result<Vec<u8>, BlobError> {
        let outboard = self.outboard(name)?;
        let mut read = self.groups(name, &outboard, index..index + 1)?;
        Ok(read.pop().unwrap_or_default())
    }

    /// Groups `range` of `name` (whose `outboard` the caller read), in one read of the file.
    pub fn groups(
        &self,
        name: &Hash,
        outboard: &Outboard,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<Vec<u8>>, BlobError> {
        let count = groups(outboard.len());
        if range.end > count || range.start >= range.end {
            let index = range.end.max(range.start + 1) - 1;
            return Err(BlobError::NoSuchGroup { name: *name, groups: count, index });
        }
        let start = (range.start * GROUP) as u64;
        let end = ((range.end * GROUP) as u64).min(outboard.len());
        let path = self.data_path(name);
        let mut file = fs::File::open(&path).map_err(io(&path))?;
        let mut bytes = vec![0; (end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(io(&path))?;
        if bytes.is_empty() {
            // The one group of an empty blob.
            return Ok(vec![Vec::new()]);
        }
        Ok(bytes.chunks(GROUP).map(<[u8]>::to_vec).collect())
    }

    /// The names of the blobs held whole.
    pub fn list(&self) -> Result<Vec<Hash>, BlobError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            if path.extension().is_some_and(|e| e == "outboard")
                && let Some(name) =
                    path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok())
            {
                names.push(name);
            }
        }
        names.sort_by_key(|n: &Hash| *n.as_bytes());
        Ok(names)
    }
}
