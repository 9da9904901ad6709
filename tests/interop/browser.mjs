// A js-libp2p node for a browser page (bundled by bundle.mjs): websockets to the relay, circuit
// relay v2 and @libp2p/webrtc (browser to browser), noise, yamux, identify and ping. The page
// drives it through `window.kinemaInterop`. No STUN server: peers on one machine meet on
// loopback.
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { webRTC } from "@libp2p/webrtc";
import { webSockets } from "@libp2p/websockets";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";

let node;

const connections = () => node.getConnections().map((c) => c.remoteAddr.toString());

window.kinemaInterop = {
  // Starts the node; resolves to its peer id.
  async start() {
    node = await createLibp2p({
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
};
