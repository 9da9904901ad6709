// A js-libp2p node for a browser page (bundled by bundle.mjs): websockets to the relay, circuit
// relay v2 and @libp2p/webrtc (browser to browser), noise, yamux, identify and ping. The page
// drives it through `window.kinemaInterop`. No STUN server: peers on one machine meet on
// loopback.
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { webRTC } from "@libp2p/webrtc";
import { webSockets } from "@libp2p/websockets";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";

let node;
let privateKey;
let lies = 0;

const connections = () => node.getConnections().map((c) => c.remoteAddr.toString());

window.kinemaInterop = {
  // Starts the node; resolves to its peer id.
  async start() {
    privateKey = await generateKeyPair("Ed25519");
    node = await createLibp2p({
      privateKey,
      addresses: { listen: ["/p2p-circuit", "/webrtc"] },
      transports: [webSockets(), webRTC({ rtcConfiguration: { iceServers: [] } }), circuitRelayTransport()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Loopback and private addresses are what a test on one machine has.
      connectionGater: { denyDialMultiaddr: async () => false },
      services: { identify: identify(), ping: ping() },
    });
    return node.peerId.toString();
  },

  // Dials `address` (a `/p2p-circuit/webrtc/p2p/<peer>` one) and pings it; resolves to the
  // round trip and the addresses of the node's connections.
  async ping(address) {
    const rtt = await node.services.ping.ping(multiaddr(address));
    return { rtt, connections: connections() };
  },

  // Connects to the relay at `relay`, takes a reservation there and resolves to the node's
  // `/webrtc` address through it.
  async listenVia(relay) {
    await node.dial(multiaddr(relay));
    for (let i = 0; i < 200; i += 1) {
      const webrtc = node.getMultiaddrs().map(String).find((a) => a.includes("/p2p-circuit/webrtc"));
      if (webrtc) return webrtc;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no /webrtc address after 20 s: ${node.getMultiaddrs().map(String)}`);
  },

  connections,

  // Turns the node into a liar for `content`: it answers every Kinema segment request with
  // made-up data (a borsh `Found` of a random outboard and group, as a tampering tab would),
  // and tells the relay it watches `content`. Resolves to its `/webrtc` address.
  async lie(content) {
    const relay = (await (await fetch("/api/v1/status")).json()).browser_addresses.find((a) => a.includes("/ws/"));
    const address = await window.kinemaInterop.listenVia(relay);
    await node.handle("/kinema/segment/1", async (stream) => {
      let got = new Uint8Array(0);
      for await (const chunk of stream) {
        const bytes = chunk.subarray();
        const joined = new Uint8Array(got.length + bytes.length);
        joined.set(got);
        joined.set(bytes, got.length);
        got = joined;
        if (got.length >= 4 && got.length >= 4 + new DataView(got.buffer).getUint32(0)) break;
      }
      lies += 1;
      const random = (n) => crypto.getRandomValues(new Uint8Array(n));
      const le = (n) => new Uint8Array(new Uint32Array([n]).buffer);
      const outboard = random(64);
      const group = random(16 * 1024);
      const body = [new Uint8Array([1, 1]), le(outboard.length), outboard, le(1), le(group.length), group];
      const length = body.reduce((n, part) => n + part.length, 0);
      const framed = new Uint8Array(4 + length);
      new DataView(framed.buffer).setUint32(0, length);
      let at = 4;
      for (const part of body) {
        framed.set(part, at);
        at += part.length;
      }
      stream.send(framed);
      await stream.close();
    });
    // Joined as the relay asks: the statement signed with the node's identity key.
    const at = Date.now();
    const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    const id = Uint8Array.from(content.match(/../g), (h) => parseInt(h, 16));
    const time = new Uint8Array(8);
    new DataView(time.buffer).setBigUint64(0, BigInt(at), true);
    const parts = [new TextEncoder().encode("kinema/swarm/v1\0"), id, new Uint8Array([0]), time, new TextEncoder().encode(address)];
    const statement = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (statement.set(p, at), at + p.length), 0);
    const sig = hex(await privateKey.sign(statement));
    const joined = await fetch(`/api/v1/swarms/${content}?join=${encodeURIComponent(address)}&at=${at}&sig=${sig}`);
    if (!joined.ok) throw new Error(`joining the swarm: ${joined.status} ${await joined.text()}`);
    return address;
  },

  // How many segment requests the liar answered.
  lies: () => lies,
};
