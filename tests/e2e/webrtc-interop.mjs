// A Kinema tab and a js-libp2p tab (@libp2p/webrtc, bundled from tests/interop) on one relay,
// in headless Chromium with loopback WebRTC: each listens on <relay>/p2p-circuit/webrtc, dials
// the other's address and pings it over the direct connection. Prints one JSON line.
//
//   node webrtc-interop.mjs <relay url> <js-libp2p bundle>
//
// Env: CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 60000).
import { launch } from "./chromium.mjs";

const [url, bundle] = process.argv.slice(2);
if (!url || !bundle) {
  console.error("usage: node webrtc-interop.mjs <relay url> <js-libp2p bundle>");
  process.exit(2);
}
const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 60000);
const browser = await launch(["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"]);
const errors = [];
const result = { ok: true, errors };
try {
  const page = async () => {
    const p = await browser.newPage();
    p.setDefaultTimeout(timeout);
    p.on("pageerror", (error) => errors.push(String(error)));
    return p;
  };
  // The Kinema tab listens.
  const kinema = await page();
  await kinema.goto(`${url}/node.html?listen=1`);
  await kinema.waitForFunction(() => ["listening", "failed"].includes(document.querySelector('[data-testid="reach-result"]')?.dataset.state));
  const listening = await kinema.evaluate(() => document.querySelector('[data-testid="reach-result"]').textContent);
  result.kinema = { address: listening };

  // The js-libp2p tab dials it over /webrtc and pings it.
  const js = await page();
  await js.goto(`${url}/watch.html`);
  await js.addScriptTag({ path: bundle });
  result.js = { peer: await js.evaluate(() => window.kinemaInterop.start()) };
  result.jsPingsKinema = await js.evaluate((address) => window.kinemaInterop.ping(address), listening);

  // The other way: the js-libp2p tab listens through the relay, the Kinema tab dials and pings.
  const status = await js.evaluate(async () => (await fetch("/api/v1/status")).json());
  const relay = status.browser_addresses.find((a) => a.includes("/ws/"));
  const jsAddress = await js.evaluate((relay) => window.kinemaInterop.listenVia(relay), relay);
  result.js.address = jsAddress;
  result.kinemaPingsJs = await kinema.evaluate(async (address) => {
    const ms = await window.kinema.node.ping(address);
    return { rtt: ms };
  }, jsAddress);
  result.jsConnections = await js.evaluate(() => window.kinemaInterop.connections());
} catch (error) {
  result.ok = false;
  errors.push(String(error));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
