// Plays a video in the Kinema player in headless Chromium (Debian's, through playwright-core)
// to its end and prints one JSON line: whether it ended, the player's stats (its
// data-testid="player-stats" attributes), its error state and text, and the page's errors.
//
//   node player.mjs <watch url> [--no-peers] [--tamper <segment blake3>] [--screenshot <png>]
//
// --no-peers hides the relay's browser addresses from the page, so every blob comes through
// the relay's blob API; --tamper flips a byte of the first answer for that blob there (a lying
// relay or middlebox). Env: CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 90000).
import { launch } from "./chromium.mjs";

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
const browser = await launch(["--autoplay-policy=no-user-gesture-required"]);
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
  await page.waitForFunction(
    () => {
      const video = document.querySelector('[data-testid="player"]');
      const error = document.querySelector('[data-testid="player-error"]');
      return video?.ended || error?.dataset.state;
    },
    null,
    { timeout },
  );
  const seen = await page.evaluate(() => {
    const video = document.querySelector('[data-testid="player"]');
    const stats = document.querySelector('[data-testid="player-stats"]');
    const error = document.querySelector('[data-testid="player-error"]');
    return {
      ended: Boolean(video?.ended),
      duration: video?.duration ?? null,
      stats: { ...(stats?.dataset ?? {}) },
      error: error?.dataset.state ? { state: error.dataset.state, text: error.textContent } : null,
    };
  });
  Object.assign(result, seen);
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
