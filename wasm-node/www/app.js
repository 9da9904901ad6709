// The light-node page: connects to the relay that serves it, fetches segments through the
// network with every group verified, and follows the chain's finalized headers. What it learns
// it shows in the elements marked with data-testid; `window.kinema` exposes the node and the
// light client to other scripts (the player).
import init, { LightClient } from "./kinema_wasm_node.js";
import { connectRelay, text as json } from "./relay.js";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

function show(id, state, text) {
  const element = $(id);
  element.dataset.state = state;
  element.textContent = text;
}

async function fetchSegment(node, hash) {
  show("segment-result", "fetching", `fetching ${hash}…`);
  const started = performance.now();
  try {
    const bytes = await node.fetchSegment(hash);
    const ms = Math.round(performance.now() - started);
    show("segment-result", "verified", `verified ${bytes.length} bytes of ${hash} in ${ms} ms`);
    return bytes;
  } catch (error) {
    show("segment-result", "failed", `failed: ${error.message ?? error}`);
    return null;
  }
}

// The genesis this page trusts: the one the link names (`#genesis=<hash>`, as `kinema devnet`
// prints it), never one the relay or the RPC offers. Without it nothing of the chain is
// verified.
function trustedGenesis() {
  const hash = new URLSearchParams(location.hash.slice(1)).get("genesis");
  return hash && /^(0x)?[0-9a-fA-F]{64}$/.test(hash) ? hash : null;
}

// The light client of the chain whose genesis block hashes to `genesis`: the RPC's genesis block
// and genesis validator set are checked against it, so a relay or an RPC that lies about them
// is caught here.
async function lightClient(rpc, genesis) {
  const block = await json(`${rpc}/api/v1/blocks/0`);
  const set = await json(`${rpc}/api/v1/validator-sets/0`);
  const client = new LightClient(block, set, genesis);
  show("trust", "verified", `trusting genesis ${client.genesis()} of chain ${client.chainId()}`);
  return client;
}

// Moves `client` to the epoch of block `height`: each epoch's set is taken from the chain RPC
// only on the certificate of the last block of the epoch before and a state proof.
async function followTo(client, rpc, height) {
  const length = client.epochLength();
  while (height > (client.epoch() + 1) * length) {
    const last = (client.epoch() + 1) * length;
    const block = await json(`${rpc}/api/v1/blocks/${last}`);
    const next = await json(`${rpc}/api/v1/validator-sets/${client.epoch() + 1}`);
    client.followEpoch(block, next);
  }
}

// Verifies block `height` as the chain RPC gives it (`?block=<height>`).
async function verifyBlock(client, rpc, height) {
  try {
    await followTo(client, rpc, height);
    const block = JSON.parse(client.verifyBlock(await json(`${rpc}/api/v1/blocks/${height}`)));
    show(
      "block-result",
      "verified",
      `block ${block.height} ${block.hash} certified by ${block.signed_power} of ${block.total_power} power (epoch ${client.epoch()}), from the RPC`,
    );
  } catch (error) {
    show("block-result", "failed", `not verified: ${error.message ?? error}`);
  }
}

// Follows the chain's finalized headers heard over gossip (validators publish one per block,
// the relay forwards them): each is shown only once its certificate holds more than 2/3 of its
// epoch's power and it is of the trusted chain.
async function followHeaders(node, client, rpc) {
  for (;;) {
    const heard = await node.nextHeader();
    try {
      await followTo(client, rpc, JSON.parse(heard).header.height);
      const header = JSON.parse(client.verifyHeader(heard));
      show(
        "header-result",
        "verified",
        `block ${header.height} ${header.hash} certified by ${header.signed_power} of ${header.total_power} power (epoch ${client.epoch()}), heard over gossip`,
      );
    } catch (error) {
      show("header-result", "failed", `not verified: ${error.message ?? error}`);
    }
  }
}

// Makes `node` reachable from other browsers (a reservation at the relay, signaling through
// it), and has a second node of this page (a key of its own) open a direct WebRTC connection to
// it and ping it there.
// With `segment`, the first node keeps it and the second fetches it from the first over that
// connection, every group checked.
async function reach(node, kinds, segment) {
  show("reach-result", "connecting", "asking the relay for a reservation…");
  const address = await node.listen();
  show("reach-result", "connecting", `reachable at ${address}; a second node dials it…`);
  const { node: other } = await connectRelay(kinds);
  const ms = await other.ping(address);
  show(
    "reach-result",
    "verified",
    `reachable at ${address}: ${other.peerId()} pinged it over a direct WebRTC connection in ${ms.toFixed(1)} ms`,
  );
  if (!segment) return;
  node.keep(segment, await node.fetchSegment(segment));
  await other.connectBrowser(address);
  const bytes = await other.fetchFromBrowsers(segment);
  show(
    "browser-fetch",
    "verified",
    `verified ${bytes.length} bytes of ${segment} from a browser (${other.browserPeers()} connected, ${node.servedBytes()} bytes served)`,
  );
}

async function main() {
  await init();
  window.kinema = {};
  const params = new URLSearchParams(location.search);
  // ?transport=websocket or ?transport=webrtc-direct tries only that one.
  const kinds = params.has("transport") ? [params.get("transport")] : undefined;
  let node;
  let via;
  let status;
  try {
    ({ node, via, status } = await connectRelay(kinds));
  } catch (error) {
    show("relay-status", "failed", `failed: ${error.message ?? error}`);
    return;
  }
  window.kinema.node = node;
  show("relay-status", "connected", `connected over ${via} to ${node.relayPeerId()} as ${node.peerId()}`);
  document.getElementById("fetch").addEventListener("submit", (event) => {
    event.preventDefault();
    fetchSegment(node, document.getElementById("segment").value.trim());
  });
  if (params.has("listen")) {
    // Only listen: another tab (or another libp2p) dials the address shown.
    node.listen().then(
      (address) => show("reach-result", "listening", address),
      (error) => show("reach-result", "failed", `failed: ${error.message ?? error}`),
    );
  }
  if (params.has("reach")) {
    reach(node, kinds, params.get("segment")).catch((error) => {
      show("reach-result", "failed", `failed: ${error.message ?? error}`);
      show("browser-fetch", "failed", `failed: ${error.message ?? error}`);
    });
  }
  const wanted = params.get("segment");
  if (wanted) {
    document.getElementById("segment").value = wanted;
    fetchSegment(node, wanted);
  }
  const rpc = params.get("rpc") ?? status.chain_rpc;
  const genesis = trustedGenesis();
  if (rpc && !genesis) {
    show("trust", "failed", "not verified: no genesis in the link (#genesis=<hash>), so nothing of the chain can be checked");
  }
  if (rpc && genesis) {
    let client;
    try {
      client = await lightClient(rpc, genesis);
    } catch (error) {
      show("trust", "failed", `not verified: ${error.message ?? error}`);
      return;
    }
    window.kinema.client = client;
    show("header-result", "waiting", "waiting for a finalized header over gossip…");
    if (params.has("block")) {
      verifyBlock(client, rpc, Number(params.get("block")));
    }
    followHeaders(node, client, rpc).catch((error) =>
      show("header-result", "failed", `not verified: ${error.message ?? error}`),
    );
  }
}

main().catch((error) => show("relay-status", "failed", `failed: ${error.message ?? error}`));
