// The creator app's keeping in the browser: the wallet's seed in IndexedDB, encrypted with a
// key derived from the passphrase (WebCrypto: PBKDF2-SHA-256, 310,000 rounds, AES-256-GCM), and
// the file of an upload under way, so a reload resumes it.

const DB = "kinema";
const STORE = "keep";
const ROUNDS = 310000;

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, act) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = act(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

const get = (key) => run("readonly", (s) => s.get(key));
const put = (key, value) => run("readwrite", (s) => s.put(value, key));
const remove = (key) => run("readwrite", (s) => s.delete(key));

async function derive(passphrase, salt) {
  const material = await crypto.subtle.importKey(
    "raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: ROUNDS },
    material, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** 32 random bytes from the browser's CSPRNG. */
export function randomSeed() {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** Keeps `seed` encrypted under `passphrase`, with its `address` in the clear. */
export async function saveWallet(address, seed, passphrase) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await derive(passphrase, salt);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, seed));
  await put("wallet", { address, salt, iv, sealed, rounds: ROUNDS });
}

/** The kept wallet's address, or null. */
export async function walletAddress() {
  const wallet = await get("wallet");
  return wallet ? wallet.address : null;
}

/** The kept wallet's seed; throws "wrong passphrase" when it does not open. */
export async function openWallet(passphrase) {
  const wallet = await get("wallet");
  if (!wallet) throw new Error("no wallet is kept in this browser");
  const key = await derive(passphrase, wallet.salt);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: wallet.iv }, key, wallet.sealed));
  } catch {
    throw new Error("wrong passphrase");
  }
}

/** Forgets the kept wallet. */
export async function forgetWallet() {
  await remove("wallet");
}

/** Keeps the file of the upload under way, with what the form said of it. */
export async function keepUpload(file, form) {
  await put("upload", { file, form });
}

/** The upload under way ({file, form}), or null. */
export async function keptUpload() {
  return (await get("upload")) ?? null;
}

/** Forgets the upload under way. */
export async function forgetUpload() {
  await remove("upload");
}

/** Bytes `start`..`end` of `file`. */
export async function slice(file, start, end) {
  return new Uint8Array(await file.slice(start, end).arrayBuffer());
}

/** Waits `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
