// What this tab played, kept by blake3: in memory (the last MEMORY_BYTES) and in IndexedDB
// (what fits the budget: DISK_BYTES at most, and no more than a quarter of the origin's
// quota), so a replay, a seek back or the next visit fetches nothing it already checked.
// These are the bytes a tab offers other viewers once browsers deliver to each other.
//
// Nothing read back is trusted: a blob from IndexedDB is checked against its hash again (any
// script of the origin, or a broken disk, could have changed it), and one that does not match
// is deleted and fetched anew. The oldest stored go first when the budget is reached; the
// budget is counted from the database itself before each write, so tabs of one origin writing
// at once still keep to it.

/// Bytes kept in memory at most.
export const MEMORY_BYTES = 64 << 20;
/// Bytes kept in IndexedDB at most.
export const DISK_BYTES = 512 << 20;
/// The largest blob kept (a segment is far smaller; a manifest too).
const LARGEST = 32 << 20;
const DB = "kinema-blobs";
// `blobs`: { hash, bytes }; `sizes`: { hash, size, stored } (small: counted on every write).
const BLOBS = "blobs";
const SIZES = "sizes";

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("aborted"));
  });
}

async function open() {
  if (!globalThis.indexedDB) return null;
  const req = indexedDB.open(DB, 1);
  req.onupgradeneeded = () => {
    const db = req.result;
    db.createObjectStore(BLOBS, { keyPath: "hash" });
    db.createObjectStore(SIZES, { keyPath: "hash" });
  };
  return request(req);
}

async function budget() {
  try {
    const { quota } = await navigator.storage.estimate();
    if (quota > 0) return Math.min(DISK_BYTES, Math.floor(quota / 4));
  } catch {
    // No estimate: the default budget.
  }
  return DISK_BYTES;
}

export class BlobStore {
  // `check(bytes)` is the blob's blake3 in hex.
  constructor(check) {
    this.check = check;
    this.memory = new Map(); // hash → bytes, oldest first
    this.memoryBytes = 0;
    this.rejected = 0; // copies read back that did not check out
    this.ready = Promise.all([open().catch(() => null), budget()]).then(([db, bytes]) => {
      this.db = db;
      this.budget = bytes;
    });
  }

  remember(hash, bytes) {
    if (this.memory.has(hash)) return;
    this.memory.set(hash, bytes);
    this.memoryBytes += bytes.length;
    for (const [old, kept] of this.memory) {
      if (this.memoryBytes <= MEMORY_BYTES) break;
      this.memory.delete(old);
      this.memoryBytes -= kept.length;
    }
  }

  // The blob, checked, or null when this tab does not hold a good copy.
  async get(hash) {
    const kept = this.memory.get(hash);
    if (kept) return kept;
    await this.ready;
    if (!this.db) return null;
    try {
      const record = await request(this.db.transaction(BLOBS).objectStore(BLOBS).get(hash));
      if (!record) return null;
      const bytes = new Uint8Array(record.bytes);
      if (this.check(bytes) !== hash) {
        this.rejected += 1;
        await this.forget([hash]);
        return null;
      }
      this.remember(hash, bytes);
      return bytes;
    } catch {
      return null;
    }
  }

  async forget(hashes) {
    const tx = this.db.transaction([BLOBS, SIZES], "readwrite");
    for (const hash of hashes) {
      tx.objectStore(BLOBS).delete(hash);
      tx.objectStore(SIZES).delete(hash);
    }
    await done(tx);
  }

  // Keeps a blob that checked out; what does not fit the budget is dropped, oldest first.
  async put(hash, bytes) {
    if (bytes.length > LARGEST) return;
    this.remember(hash, bytes);
    await this.ready;
    if (!this.db || bytes.length > this.budget) return;
    try {
      const sizes = await request(this.db.transaction(SIZES).objectStore(SIZES).getAll());
      if (sizes.some((s) => s.hash === hash)) return;
      sizes.sort((a, b) => a.stored - b.stored);
      let total = sizes.reduce((sum, s) => sum + s.size, 0);
      const evicted = [];
      for (const s of sizes) {
        if (total + bytes.length <= this.budget) break;
        evicted.push(s.hash);
        total -= s.size;
      }
      if (evicted.length) await this.forget(evicted);
      const tx = this.db.transaction([BLOBS, SIZES], "readwrite");
      tx.objectStore(BLOBS).put({ hash, bytes });
      tx.objectStore(SIZES).put({ hash, size: bytes.length, stored: Date.now() });
      await done(tx);
    } catch {
      // Over the origin's quota or no storage: kept in memory only.
    }
  }
}
