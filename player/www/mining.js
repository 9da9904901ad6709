// Mining bandwidth in the player: the tab serves what it played to other viewers (the "mine
// bandwidth" switch, on by default, with an upload cap the user sets), pays in bandwidth
// tickets the viewers' browsers that deliver to it, and takes tickets for what it serves.
//
// Tickets are signed and taken under this browser's bandwidth key (a secret key's seed kept in
// localStorage, made on first use). It pays only once a wallet funds that key's ticket deposit
// (the app's "bandwidth" panel); with no funds it still plays and shares, and what it earns is
// held: winning tickets are kept here (localStorage, the newest HELD_MAX) until the app claims
// them into a wallet, which pays the fee (the key itself holds nothing to pay one with).
//
// Hooks: `data-testid="mine-bandwidth"` (the switch), `upload-cap` (MiB, empty: none), and on the
// player's stats element data-earned, data-tickets-taken, data-winners, data-paid,
// data-tickets-paid, data-tickets (on, or why not).

import { claimWinners } from "./kinema_wasm_node.js";

const HEX64 = /^[0-9a-f]{64}$/;
const HEX = /^[0-9a-f]+$/;
/// This browser's bandwidth key (a seed, 64 hex digits).
export const KEY = "kinema-bandwidth-key";
/// Winning tickets held for the key (a JSON array of hex `RedeemArgs`).
export const WINNERS = "kinema-bandwidth-winners";
const MINE = "kinema-mine-bandwidth";
const CAP = "kinema-upload-cap-mib";
/// Winning tickets held at most (they expire on chain within MAX_TICKET_LIFE blocks anyway).
const HELD_MAX = 256;
/// Winners the node holds before they are moved here (taking them renews its terms).
const TAKE_AT = 8;
const ACCOUNT_EVERY_MS = 2000;

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

// This browser's bandwidth key, made on first use.
export function bandwidthKey() {
  let key = localStorage.getItem(KEY);
  if (!HEX64.test(key ?? "")) {
    key = hex(crypto.getRandomValues(new Uint8Array(32)));
    localStorage.setItem(KEY, key);
  }
  return key;
}

// The winning tickets held here.
export function heldWinners() {
  try {
    const held = JSON.parse(localStorage.getItem(WINNERS) ?? "[]");
    return Array.isArray(held) ? held.filter((w) => typeof w === "string" && HEX.test(w)) : [];
  } catch {
    return [];
  }
}

function hold(winners) {
  if (winners.length === 0) return;
  const all = [...heldWinners(), ...winners];
  localStorage.setItem(WINNERS, JSON.stringify(all.slice(-HELD_MAX)));
}

// The winners held here, each with the key's claim for `claimFor` (an address) to redeem it:
// `[{ held, claimed }]`. They stay held until `forgetWinners` is told they were redeemed.
export function claimHeld(claimFor) {
  const held = heldWinners();
  const claimed = JSON.parse(claimWinners(bandwidthKey(), JSON.stringify(held), claimFor));
  return held.map((h, i) => ({ held: h, claimed: claimed[i] }));
}

// Drops `redeemed` (held hex strings) from what is held.
export function forgetWinners(redeemed) {
  const gone = new Set(redeemed);
  localStorage.setItem(WINNERS, JSON.stringify(heldWinners().filter((w) => !gone.has(w))));
}

// The switch and the cap, under the player; applied to the node now and on every change.
export function miningControls(node) {
  const box = document.createElement("div");
  box.className = "mining";
  const label = document.createElement("label");
  const mine = document.createElement("input");
  mine.type = "checkbox";
  mine.dataset.testid = "mine-bandwidth";
  mine.checked = localStorage.getItem(MINE) !== "0";
  label.append(mine, " mine bandwidth (serve what you watched to other viewers)");
  const capLabel = document.createElement("label");
  const cap = document.createElement("input");
  cap.type = "number";
  cap.min = "0";
  cap.step = "1";
  cap.placeholder = "no cap";
  cap.dataset.testid = "upload-cap";
  cap.value = localStorage.getItem(CAP) ?? "";
  capLabel.append(" upload cap ", cap, " MiB");
  box.append(label, capLabel);
  const apply = () => {
    const mib = Number(cap.value);
    const valid = cap.value === "" || (Number.isInteger(mib) && mib >= 0);
    cap.setCustomValidity(valid ? "" : "a whole number of MiB, or empty for none");
    localStorage.setItem(MINE, mine.checked ? "1" : "0");
    if (valid) localStorage.setItem(CAP, cap.value);
    node.setServing(mine.checked, valid && cap.value !== "" ? mib * 1024 * 1024 : 0);
  };
  mine.addEventListener("change", apply);
  cap.addEventListener("change", apply);
  apply();
  return box;
}

// Tickets on, on the relay's terms (its price, its chain, the genesis it names); `stats` shows
// what they did. Resolves to what the page may call: account() and takeWinners(claimFor).
export async function startTickets(node, status, stats) {
  const price = status.bandwidth_price_per_mib;
  if (!price || !status.chain_rpc || !status.genesis) {
    stats.tickets = "off: the relay names no bandwidth price, chain or genesis";
    stats.render();
    return null;
  }
  let address;
  try {
    address = await node.bandwidth(
      bandwidthKey(),
      crypto.getRandomValues(new Uint8Array(32)),
      price,
      status.chain_rpc,
      status.genesis,
    );
  } catch (e) {
    stats.tickets = `off: ${e.message ?? e}`;
    stats.render();
    return null;
  }
  stats.tickets = "on";
  // The node's winners, moved to what is held here.
  const take = () => hold(JSON.parse(node.takeWinners(undefined)));
  const show = () => {
    const account = JSON.parse(node.account());
    if (account.winners >= TAKE_AT) take();
    Object.assign(stats, {
      earned: account.credited,
      ticketsTaken: account.tickets_taken,
      winners: account.winners + heldWinners().length,
      paid: account.paid,
      ticketsPaid: account.tickets_paid,
    });
    stats.render();
    return account;
  };
  setInterval(show, ACCOUNT_EVERY_MS);
  addEventListener("pagehide", take);
  show();
  return {
    address,
    account: show,
    // Every winner (the node's moved here first), claimed for `claimFor`: see claimHeld.
    claim: (claimFor) => {
      take();
      return claimHeld(claimFor);
    },
    forget: forgetWinners,
  };
}
