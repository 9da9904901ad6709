// Plays a video in the Kinema player in headless Chromium (Debian's, through playwright-core)
// to its end and prints one JSON line: whether it ended, the player's stats (its
// data-testid="player-stats" attributes), its error state and text, and the page's errors.
//
//   node player.mjs <watch url> [--no-peers] [--tamper <segment blake3>] [--screenshot <png>]
//                   [--replay] [--second [--second-key <seed>]]
//
// --no-peers hides the relay's browser addresses from the page, so every blob comes through
// the relay's blob API; --tamper flips a byte of the first answer for that blob there (a lying
// relay or middlebox). --replay then reloads the page and plays it again from what the tab kept
// (result.replay), flips a byte of every blob kept in IndexedDB, and plays it a third time
// (result.corrupted: each kept copy must be refused and fetched anew). --second has a second
// viewer (a browser context of its own: nothing kept) play it while the first tab is still
// open (result.second: what it took from the first tab), after the replay when there is one
// (the first tab then serves from IndexedDB); with --second-key (a funded
// bandwidth key's seed) it pays the first tab in tickets, and once the tickets settled,
// result.firstAccount and result.secondAccount are the two tabs' ticket accounts. Env: CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 90000).
import { LOOPBACK_WEBRTC, launch, played } from "./chromium.mjs";

const [url, ...rest] = process.argv.slice(2);
if (!url) {
  console.error("usage: node player.mjs <url> [--no-peers] [--tamper <hash>] [--screenshot <png>]");
  process.exit(2);
}
const option = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : null;
};
const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 90000);
// Viewers' tabs reach each other over loopback WebRTC on one machine.
const browser = await launch(["--autoplay-policy=no-user-gesture-required", ...LOOPBACK_WEBRTC]);
const errors = [];
const result = { ok: true, ended: false, stats: {}, error: null, errors, tampered: 0 };
try {
  const page = await browser.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  if (rest.includes("--no-peers")) {
    await page.route("**/api/v1/status", async (route) => {
      const response = await route.fetch();
      const status = await response.json();
      status.browser_addresses = [];
      await route.fulfill({ response, json: status });
    });
  }
  const tamper = option("--tamper");
  if (tamper) {
    await page.route(`**/api/v1/blobs/${tamper}`, async (route) => {
      const response = await route.fetch();
      const body = Buffer.from(await response.body());
      if (result.tampered === 0 && body.length > 0) {
        body[body.length >> 1] ^= 0xff;
      }
      result.tampered += 1;
      await route.fulfill({ response, body });
    });
  }
  await page.goto(url);
  Object.assign(result, await played(page, timeout));
  // The second viewer (see --second).
  const secondViewer = async () => {
    if (rest.includes("--second")) {
      const context = await browser.newContext();
      const key = option("--second-key");
      if (key) {
        await context.addInitScript((seed) => localStorage.setItem("kinema-bandwidth-key", seed), key);
      }
      const second = await context.newPage();
      second.on("pageerror", (error) => errors.push(String(error)));
      await second.goto(url);
      result.second = await played(second, timeout);
      result.firstServed = await page.evaluate(() => document.querySelector('[data-testid="player-stats"]')?.dataset.servedBytes ?? null);
      if (key) {
        // The tickets on their way settle: what the second counted as taken, the first took.
        const account = (tab) => tab.evaluate(() => document.querySelector("kinema-player").bandwidth?.account() ?? null);
        const until = Date.now() + 20000;
        do {
          result.firstAccount = await account(page);
          result.secondAccount = await account(second);
          if (result.firstAccount?.tickets_taken === result.secondAccount?.tickets_paid) break;
          await new Promise((resolve) => setTimeout(resolve, 250));
        } while (Date.now() < until);
      }
    }
  };
  if (rest.includes("--replay")) {
    await page.reload();
    result.replay = await played(page, timeout);
    // Played from what the tab kept, the first tab holds the segments in IndexedDB alone:
    // what it serves the second viewer it reads from there.
    await secondViewer();
    result.flipped = await page.evaluate(async () => {
      const db = await new Promise((resolve, reject) => {
        const req = indexedDB.open("kinema-blobs");
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const store = db.transaction("blobs", "readwrite").objectStore("blobs");
      let flipped = 0;
      await new Promise((resolve, reject) => {
        const req = store.openCursor();
        req.onerror = () => reject(req.error);
        req.onsuccess = () => {
          const cursor = req.result;
          if (!cursor) return resolve();
          const bytes = new Uint8Array(cursor.value.bytes);
          bytes[bytes.length >> 1] ^= 0xff;
          cursor.update({ hash: cursor.value.hash, bytes });
          flipped += 1;
          cursor.continue();
        };
      });
      db.close();
      return flipped;
    });
    await page.reload();
    result.corrupted = await played(page, timeout);
  }
  if (!rest.includes("--replay")) await secondViewer();
  const shot = option("--screenshot");
  if (shot) {
    await page.screenshot({ path: shot, fullPage: true });
  }
} catch (error) {
  result.ok = false;
  errors.push(String(error));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
