// Reaching the relay that serves the page, shared by the light-node page and the player: its
// status, then a light node connected to it over the first transport that works.
import { LightNode } from "./kinema_wasm_node.js";

// The body of `url`, or an error naming it with the relay's answer.
export async function text(url) {
  const response = await fetch(url);
  const body = await response.text();
  if (!response.ok) {
    throw new Error(`${url}: ${response.status} ${body}`);
  }
  return body;
}

// A light node connected to this page's relay over `kinds` (websocket first: 1 MiB answers;
// then webrtc-direct: no TLS certificate needed, 15 KiB answers). Resolves to
// `{ node, via, status }`; throws with every transport's failure.
export async function connectRelay(kinds = ["websocket", "webrtc-direct"]) {
  const status = JSON.parse(await text("/api/v1/status"));
  const of = (kind) => (kind === "websocket" ? "/ws/" : `/${kind}/`);
  const candidates = kinds.flatMap((kind) =>
    status.browser_addresses.filter((a) => a.includes(of(kind))).map((a) => [kind, a]),
  );
  if (candidates.length === 0) {
    throw new Error(`the relay lists no ${kinds.join(" or ")} address`);
  }
  const failures = [];
  for (const [kind, address] of candidates) {
    try {
      return { node: await LightNode.connect(address, status.chain_id), via: kind, status };
    } catch (error) {
      failures.push(`${kind}: ${error.message ?? error}`);
    }
  }
  throw new Error(failures.join("; "));
}
