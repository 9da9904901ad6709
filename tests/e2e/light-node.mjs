// Opens a page of the light node in headless Chromium (Debian's, through playwright-core) and
// waits until the elements named on the command line have settled (`data-state` "verified",
// "connected" or "failed"); prints one JSON line: each element's state and text, and the page's errors.
//
//   node light-node.mjs <url> <data-testid>...
//
// Env: CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 90000).
import { LOOPBACK_WEBRTC, launch } from "./chromium.mjs";

const [url, ...ids] = process.argv.slice(2);
if (!url || ids.length === 0) {
  console.error("usage: node light-node.mjs <url> <data-testid>...");
  process.exit(2);
}
const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 90000);
const browser = await launch(LOOPBACK_WEBRTC);
const errors = [];
const result = { ok: true, elements: {}, errors };
try {
  const page = await browser.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url);
  for (const id of ids) {
    const selector = `[data-testid="${id}"]`;
    try {
      await page.waitForFunction(
        (s) => ["verified", "connected", "failed"].includes(document.querySelector(s)?.dataset.state),
        selector,
        { timeout },
      );
    } catch (error) {
      result.ok = false;
      errors.push(`${id} did not settle: ${error.message}`);
    }
    const element = page.locator(selector);
    result.elements[id] = {
      state: await element.getAttribute("data-state"),
      text: await element.textContent(),
    };
  }
} catch (error) {
  result.ok = false;
  errors.push(String(error));
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
