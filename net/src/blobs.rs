//! The blob store: content-addressed segments on disk, named by their blake3 hash, each with
//! its [`Outboard`] so any 16 KiB group can be served with what verifies it.
//!
//! `<dir>/<hash>` holds the bytes and `<dir>/<hash>.outboard` the outboard. Both are written to
//! temporary files, synced and renamed into place (the outboard last), so a blob is either
//! whole or absent after a crash; a temporary file left by one is removed on the next open.
//! Data that does not hash to the name it is stored under is refused.

use kinema_chain::Hash;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::verified::{GROUP, Mismatch, Outboard, groups};

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
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BlobError + '_ {
    move |why| BlobError::Io { path: path.to_owned(), why }
}

impl BlobStore {
    /// Opens (creating) the store in `dir`, removing what an interrupted write left.
    pub fn open(dir: &Path) -> Result<Self, BlobError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        for entry in fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().is_some_and(|e| e == "partial") {
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(Self { dir: dir.to_owned() })
    }

    fn data_path(&self, name: &Hash) -> PathBuf {
        self.dir.join(name.to_string())
    }

    fn outboard_path(&self, name: &Hash) -> PathBuf {
        self.dir.join(format!("{name}.outboard"))
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), BlobError> {
        let partial = path.with_extension("partial");
        let mut file = fs::File::create(&partial).map_err(io(&partial))?;
        file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io(&partial))?;
        fs::rename(&partial, path).map_err(io(path))
    }

    /// Stores `data` and returns its name.
    pub fn put(&self, data: &[u8]) -> Result<Hash, BlobError> {
        let (name, outboard) = Outboard::compute(data);
        if !self.has(&name) {
            self.write(&self.data_path(&name), data)?;
            self.write(&self.outboard_path(&name), &outboard.to_bytes())?;
        }
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

    /// Whether the store holds `name` whole.
    pub fn has(&self, name: &Hash) -> bool {
        self.outboard_path(name).exists()
    }

    /// The blob `name`, whole.
    pub fn get(&self, name: &Hash) -> Result<Vec<u8>, BlobError> {
        if !self.has(name) {
            return Err(BlobError::Missing(*name));
        }
        let path = self.data_path(name);
        fs::read(&path).map_err(io(&path))
    }

    /// The outboard of `name`, checked against it.
    pub fn outboard(&self, name: &Hash) -> Result<Outboard, BlobError> {
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
