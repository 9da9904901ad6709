// N viewers' tabs (each a browser context of its own: nothing kept between them) join one video
// a second apart and play it through, in headless Chromium with loopback WebRTC. Prints one
// JSON line: each tab's player stats (data-testid="player-stats") and whether it ended.
//
//   node offload.mjs <relay url> <content id> [--tabs N] [--no-share]
//
// --no-share opens the watch links with #share=0 (every tab from the relay: the baseline).
// Env: CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (per tab, default 300000).
import { LOOPBACK_WEBRTC, launch, played } from "./chromium.mjs";

const [url, content, ...rest] = process.argv.slice(2);
if (!url || !content) {
  console.error("usage: node offload.mjs <relay url> <content id> [--tabs N] [--no-share]");
  process.exit(2);
}
const option = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : null;
};
const tabs = Number(option("--tabs") ?? 4);
const share = !rest.includes("--no-share");
const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 300000);
const browser = await launch(["--autoplay-policy=no-user-gesture-required", ...LOOPBACK_WEBRTC]);
const errors = [];
const result = { ok: true, share, tabs: [], errors };
try {
  const pages = [];
  for (let i = 0; i < tabs; i += 1) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => errors.push(`tab ${i}: ${error}`));
    await page.goto(`${url}/watch/${content}#autoplay=1${share ? "" : "&share=0"}`);
    pages.push(page);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  result.tabs = await Promise.all(pages.map((page) => played(page, timeout)));
} catch (error) {
  result.ok = false;
  errors.push(String(error));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
