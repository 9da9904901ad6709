// N viewers' tabs (each a browser context of its own: nothing kept between them) join one video
// a second apart and play it through, in headless Chromium with loopback WebRTC. Prints one
// JSON line: each tab's player stats (data-testid="player-stats") and whether it ended.
//
//   node offload.mjs <relay url> <content id> [--tabs N] [--no-share] [--keys FILE --claim-for ADDRESS]
//
// --no-share opens the watch links with #share=0 (every tab from the relay: the baseline).
// --keys names a JSON array of bandwidth keys (seeds, 64 hex digits), one per tab, set as the
// tab's before it loads; once every tab ended and their tickets settled, each tab's winning
// tickets are claimed for --claim-for and listed in its `winners`.
// Env: CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (per tab, default 300000).
import { readFileSync } from "node:fs";
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
const keys = option("--keys") ? JSON.parse(readFileSync(option("--keys"), "utf8")) : [];
const claimFor = option("--claim-for");
/// How long tickets may take to settle once every tab ended.
const SETTLE_MS = 20000;
const share = !rest.includes("--no-share");
const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 300000);
const browser = await launch(["--autoplay-policy=no-user-gesture-required", ...LOOPBACK_WEBRTC]);
const errors = [];
const result = { ok: true, share, tabs: [], errors };
try {
  const pages = [];
  for (let i = 0; i < tabs; i += 1) {
    const context = await browser.newContext();
    if (keys[i]) {
      await context.addInitScript((key) => localStorage.setItem("kinema-bandwidth-key", key), keys[i]);
    }
    const page = await context.newPage();
    page.on("pageerror", (error) => errors.push(`tab ${i}: ${error}`));
    await page.goto(`${url}/watch/${content}#autoplay=1${share ? "" : "&share=0"}`);
    pages.push(page);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  result.tabs = await Promise.all(pages.map((page) => played(page, timeout)));
  if (share && claimFor) {
    // Tickets on their way settle: what the viewers counted as taken is what the servers took.
    const accounts = () =>
      Promise.all(pages.map((page) => page.evaluate(() => document.querySelector("kinema-player").bandwidth?.account() ?? null)));
    const until = Date.now() + SETTLE_MS;
    let settled = false;
    while (!settled && Date.now() < until) {
      const all = await accounts();
      const paid = all.reduce((n, a) => n + (a?.tickets_paid ?? 0), 0);
      const taken = all.reduce((n, a) => n + (a?.tickets_taken ?? 0), 0);
      settled = paid === taken;
      if (!settled) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    result.settled = settled;
    for (const [i, page] of pages.entries()) {
      const [account, claimed] = await page.evaluate((address) => {
        const bandwidth = document.querySelector("kinema-player").bandwidth;
        if (!bandwidth) return [null, []];
        const account = bandwidth.account();
        return [account, bandwidth.claim(address).map((w) => w.claimed)];
      }, claimFor);
      result.tabs[i].account = account;
      result.tabs[i].winners = claimed;
    }
  }
} catch (error) {
  result.ok = false;
  errors.push(String(error));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
