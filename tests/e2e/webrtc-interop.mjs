// A Kinema tab and a js-libp2p tab (@libp2p/webrtc, bundled from tests/interop) on one relay,
// in headless Chromium with loopback WebRTC: each listens on <relay>/p2p-circuit/webrtc, dials
// the other's address and pings it over the direct connection. Prints one JSON line.
//
//   node webrtc-interop.mjs <relay url> <js-libp2p bundle> [--liar <content id>]
//
// --liar then has the js-libp2p tab answer every segment request for that content with made-up
// data and join its swarm at the relay, and a viewer (a context of its own) play the content:
// the viewer must drop the liar and play on from the relay (result.viewer, result.lies).
//
// Env: CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 90000).
import { LOOPBACK_WEBRTC, launch, played } from "./chromium.mjs";

const [url, bundle, ...rest] = process.argv.slice(2);
const liar = rest.includes("--liar") ? rest[rest.indexOf("--liar") + 1] : null;
if (!url || !bundle) {
  console.error("usage: node webrtc-interop.mjs <relay url> <js-libp2p bundle>");
  process.exit(2);
}
const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 90000);
const browser = await launch(LOOPBACK_WEBRTC);
const errors = [];
// The step under way: what a failure names.
const result = { ok: true, step: "start", errors };
try {
  const page = async () => {
    const p = await browser.newPage();
    p.setDefaultTimeout(timeout);
    p.on("pageerror", (error) => errors.push(String(error)));
    return p;
  };
  // The Kinema tab listens.
  result.step = "kinema listens";
  const kinema = await page();
  await kinema.goto(`${url}/node.html?listen=1`);
  await kinema.waitForFunction(() => ["listening", "failed"].includes(document.querySelector('[data-testid="reach-result"]')?.dataset.state));
  const listening = await kinema.evaluate(() => document.querySelector('[data-testid="reach-result"]').textContent);
  if (listening.startsWith("failed")) throw new Error(listening);
  result.kinema = { address: listening };

  // The js-libp2p tab dials it over /webrtc and pings it.
  result.step = "js-libp2p dials the Kinema tab";
  const js = await page();
  await js.goto(`${url}/watch.html`);
  await js.addScriptTag({ path: bundle });
  result.js = { peer: await js.evaluate(() => window.kinemaInterop.start()) };
  result.jsPingsKinema = await js.evaluate((address) => window.kinemaInterop.ping(address), listening);

  // The other way: the js-libp2p tab listens through the relay, the Kinema tab dials and pings.
  result.step = "the Kinema tab dials js-libp2p";
  const status = await js.evaluate(async () => (await fetch("/api/v1/status")).json());
  const relay = status.browser_addresses.find((a) => a.includes("/ws/"));
  const jsAddress = await js.evaluate((relay) => window.kinemaInterop.listenVia(relay), relay);
  result.js.address = jsAddress;
  result.kinemaPingsJs = await kinema.evaluate(async (address) => {
    const ms = await window.kinema.node.ping(address);
    return { rtt: ms };
  }, jsAddress);
  result.jsConnections = await js.evaluate(() => window.kinemaInterop.connections());

  if (liar) {
    result.step = "a viewer meets a liar";
    result.liarAddress = await js.evaluate((content) => window.kinemaInterop.lie(content), liar);
    const viewer = await (await browser.newContext()).newPage();
    viewer.on("pageerror", (error) => errors.push(String(error)));
    await viewer.goto(`${url}/watch/${liar}#autoplay=1`);
    result.viewer = await played(viewer, timeout);
    result.lies = await js.evaluate(() => window.kinemaInterop.lies());
  }
} catch (error) {
  result.ok = false;
  errors.push(`${result.step}: ${error}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
