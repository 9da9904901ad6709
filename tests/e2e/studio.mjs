// The creator's whole path in the Kinema app, in headless Chromium (Debian's, through
// playwright-core): a wallet made and funded from the devnet's faucet, bandwidth tickets funded
// from it, a clip uploaded through the app, its job followed to done, the watch link opened and
// played to its end. Prints one
// JSON line: what each step saw, the player's stats and the page's errors; saves a screenshot
// of each step under <shots dir>.
//
//   node studio.mjs <relay url> <clip> <shots dir> [--drop-chunk] [--captions <vtt>]
//                   [--resume <clip of more than one chunk>] [--earnings <key file>,...]
//
// --drop-chunk loses the answer to the first chunk (a dropped connection): the app must find
// where the relay is and go on. --captions uploads a WebVTT file with the video; the player must
// show it. --resume first sends a larger clip and reloads the page while its second chunk is
// refused: once the wallet is unlocked again the app must resume from where the relay is, not
// from 0. --earnings imports each key file (a worker's, a verifier's) into a fresh browser
// and reads what the app says it earned. Env: CHROMIUM (default /usr/bin/chromium), E2E_TIMEOUT_MS (default 300000).
import { launch } from "./chromium.mjs";

const [url, clip, shots, ...rest] = process.argv.slice(2);
if (!url || !clip || !shots) {
  console.error("usage: node studio.mjs <relay url> <clip> <shots dir> [--drop-chunk] [--captions <vtt>] [--resume <clip>]");
  process.exit(2);
}
const timeout = Number(process.env.E2E_TIMEOUT_MS ?? 300000);
const browser = await launch(["--autoplay-policy=no-user-gesture-required"]);
const errors = [];
const result = { ok: true, steps: [], errors, dropped: 0 };
const id = (name) => `[data-testid="${name}"]`;
// A chunk of an upload: PUT /api/v1/uploads/<id>?offset=<n>.
const chunk = (url) => url.pathname.startsWith("/api/v1/uploads/") && url.searchParams.has("offset");
const option = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : null;
};
let page;
try {
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.setDefaultTimeout(60000);
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  const started = Date.now();
  const step = async (name, seen = {}) => {
    const ms = Date.now() - started;
    await page.screenshot({ path: `${shots}/${result.steps.length + 1}-${name}.png`, fullPage: true });
    result.steps.push({ name, ms, ...seen });
  };
  if (rest.includes("--drop-chunk")) {
    await page.route(chunk, async (route) => {
      if (result.dropped === 0) {
        result.dropped += 1;
        // The chunk reaches the relay; its answer is lost.
        await route.fetch();
        await route.abort("connectionreset");
        return;
      }
      await route.continue();
    });
  }

  await page.goto(url);
  const passphrase = "a passphrase of some length";
  await page.fill(id("wallet-passphrase"), passphrase);
  await page.fill(id("wallet-confirm"), passphrase);
  await page.click(id("wallet-create"));
  const address = (await page.textContent(id("wallet-address"))).trim();
  await step("wallet", { address });

  await page.click(id("wallet-faucet"));
  await page.waitForFunction((s) => Number(document.querySelector(s)?.dataset.balance) > 0, id("wallet-balance"));
  // The balance shown is proved from the genesis by the app's light client.
  await page.waitForFunction((s) => document.querySelector(s)?.dataset.checked === "true", id("wallet-balance"), { timeout: 30000 }).catch(() => {});
  await step("funded", {
    balance: await page.getAttribute(id("wallet-balance"), "data-balance"),
    checked: await page.getAttribute(id("wallet-balance"), "data-checked"),
    proof: await page.textContent(id("wallet-checked")),
  });

  // Bandwidth tickets: a deposit and a reserve funded from the wallet, read back proved.
  await page.fill(id("tickets-deposit"), "1000000000");
  await page.fill(id("tickets-reserve"), "500000000");
  await page.click(id("tickets-fund"));
  await page
    .waitForFunction((s) => document.querySelector(s)?.dataset.deposit === "1000000000", id("tickets-funds"), { timeout: 60000 })
    .catch(() => {});
  await step("tickets", await page.evaluate(() => {
    const funds = document.querySelector('[data-testid="tickets-funds"]');
    return {
      deposit: funds?.dataset.deposit ?? null,
      reserve: funds?.dataset.reserve ?? null,
      earned: document.querySelector('[data-testid="tickets-earned"]')?.dataset.amount ?? null,
      checked: document.querySelector('[data-testid="tickets-checked"]')?.textContent ?? null,
      message: document.querySelector('[data-testid="tickets-message"]')?.textContent ?? null,
    };
  }));

  for (const height of [720, 480, 360]) {
    await page.uncheck(id(`upload-rung-${height}`));
  }
  const resume = option("--resume");
  if (resume) {
    // Sent in chunks; a reload while the second is refused; unlocked again, the app resumes.
    const offsets = [];
    let reloaded = false;
    let refused;
    const refusing = new Promise((resolve) => (refused = resolve));
    const chunks = async (route) => {
      const offset = Number(new URL(route.request().url()).searchParams.get("offset"));
      if (!reloaded && offset > 0) {
        refused();
        await route.abort("connectionreset");
        return;
      }
      offsets.push({ offset, reloaded });
      await route.continue();
    };
    await page.route(chunk, chunks);
    await page.setInputFiles(id("upload-file"), resume);
    await refusing;
    reloaded = true;
    await page.reload();
    await page.fill(id("wallet-passphrase"), passphrase);
    await page.click(id("wallet-unlock"));
    await page.waitForFunction(
      (s) => ["ready", "failed"].includes(document.querySelector(s)?.dataset.stage),
      id("upload-progress"),
      { timeout },
    );
    await page.unroute(chunk, chunks);
    await step("resumed", { stage: await page.getAttribute(id("upload-progress"), "data-stage"), offsets });
  }
  const captions = option("--captions");
  if (captions) {
    await page.setInputFiles(id("upload-captions"), captions);
  }
  await page.setInputFiles(id("upload-file"), clip);
  await page.fill(id("upload-title"), "Bikes at the crossing");
  await page.fill(id("upload-tags"), "street, bikes");
  await page.waitForFunction(
    (s) => ["ready", "failed"].includes(document.querySelector(s)?.dataset.stage),
    id("upload-progress"),
    { timeout },
  );
  await step("uploaded", {
    stage: await page.getAttribute(id("upload-progress"), "data-stage"),
    percent: Number(await page.getAttribute(id("upload-progress"), "data-percent")),
    cost: await page.textContent(id("upload-cost")),
    message: await page.textContent(id("upload-message")),
  });

  await page.click(id("upload-submit"));
  await page.waitForSelector(id("job-state"));
  await page.waitForFunction(
    () => document.querySelector('td[data-state="accepted"]') || document.querySelector('[data-testid="job-state"]')?.dataset.state !== "open",
    null,
    { timeout },
  );
  await step("working", { cells: await page.locator("td[data-state]").count() });
  await page.waitForFunction(
    (s) => document.querySelector(s)?.dataset.state !== "open",
    id("job-state"),
    { timeout },
  );
  const state = await page.getAttribute(id("job-state"), "data-state");
  if (state === "done") {
    await page.waitForSelector(id("watch-link"), { timeout: 120000 });
  }
  await page.waitForFunction(() => document.querySelector('[data-testid="library-video"][data-state="published"]'), null, { timeout: 30000 }).catch(() => {});
  const href = state === "done" ? await page.getAttribute(id("watch-link"), "href") : null;
  await step("done", {
    state,
    href,
    message: await page.textContent(id("job-message")),
    library: await page.locator(id("library-video")).count(),
    published: await page.locator(`${id("library-video")}[data-state="published"]`).count(),
    thumbnail: await page
      .waitForFunction((s) => document.querySelector(s)?.naturalWidth, id("library-thumbnail"), { timeout: 10000 })
      .then((width) => width.jsonValue())
      .catch(() => 0),
    public: await page.locator(id("public-video")).count(),
  });

  if (href) {
    await page.goto(new URL(href, url).toString() + "#autoplay=1");
    await page.waitForFunction(
      () => document.querySelector('[data-testid="player"]')?.ended || document.querySelector('[data-testid="player-error"]')?.dataset.state,
      null,
      { timeout },
    );
    const seen = await page.evaluate(() => {
      const video = document.querySelector('[data-testid="player"]');
      const stats = document.querySelector('[data-testid="player-stats"]');
      const error = document.querySelector('[data-testid="player-error"]');
      const track = video?.textTracks?.[0];
      return {
        title: document.querySelector('[data-testid="player-title"]')?.textContent ?? null,
        captions: track ? { mode: track.mode, cues: track.cues?.length ?? 0 } : null,
        ended: Boolean(video?.ended),
        duration: video?.duration ?? null,
        stats: { ...(stats?.dataset ?? {}) },
        error: error?.dataset.state ? { state: error.dataset.state, text: error.textContent } : null,
      };
    });
    // The seek bar's preview: the sprite's tile of the moment hovered.
    seen.poster = await page.evaluate(() => document.querySelector('[data-testid="player"]')?.poster?.startsWith("blob:") ?? false);
    const scrub = page.locator(id("player-scrub"));
    if (await scrub.count()) {
      const box = await scrub.boundingBox();
      await page.mouse.move(box.x + box.width * 0.75, box.y + box.height / 2);
      seen.preview = await page.evaluate(() => {
        const tip = document.querySelector('[data-testid="player-preview"]');
        return { shown: !tip.hidden, tile: Number(tip.dataset.tile) };
      });
    }
    await step("played", seen);

    // Back in the app: the key the player made for this browser, funded from the wallet (the
    // wallet sends it the deposit and the fee, it funds itself), read back proved.
    await page.goto(url);
    await page.fill(id("wallet-passphrase"), passphrase);
    await page.click(id("wallet-unlock"));
    await page.waitForSelector(`${id("browser-key")}[data-address]`, { timeout: 60000 }).catch(() => {});
    await page.fill(id("browser-deposit"), "300000000");
    await page.click(id("browser-fund"));
    await page
      .waitForFunction((s) => document.querySelector(s)?.dataset.deposit === "300000000", id("browser-funds"), { timeout: 90000 })
      .catch(() => {});
    // The player's switch and cap, set from the app.
    await page.uncheck(id("app-mine-bandwidth"));
    await page.fill(id("app-upload-cap"), "64");
    await page.press(id("app-upload-cap"), "Tab");
    await step("browser", await page.evaluate(() => ({
      mine: localStorage.getItem("kinema-mine-bandwidth"),
      cap: localStorage.getItem("kinema-upload-cap-mib"),
      key: document.querySelector('[data-testid="browser-key"]')?.dataset.address ?? null,
      seed: localStorage.getItem("kinema-bandwidth-key"),
      deposit: document.querySelector('[data-testid="browser-funds"]')?.dataset.deposit ?? null,
      winners: document.querySelector('[data-testid="browser-winners"]')?.dataset.count ?? null,
      message: document.querySelector('[data-testid="tickets-message"]')?.textContent ?? null,
    })));
  }
  const earnings = option("--earnings");
  if (earnings) {
    const fs = await import("node:fs");
    result.earnings = [];
    for (const keyFile of earnings.split(",")) {
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
      const member = await context.newPage();
      member.on("pageerror", (error) => errors.push(String(error)));
      await member.goto(url);
      await member.click("summary");
      await member.fill(id("wallet-import-key"), fs.readFileSync(keyFile, "utf8"));
      await member.fill(id("wallet-passphrase"), "another long passphrase");
      await member.fill(id("wallet-confirm"), "another long passphrase");
      await member.click(id("wallet-import"));
      const address = (await member.textContent(id("wallet-address"))).trim();
      await member.waitForSelector(id("earnings"), { timeout: 60000 });
      // Read in the same poll that finds them settled: the list is read again (and briefly
      // gone) whenever the balance moves.
      const seen = await member
        .waitForFunction(() => {
          const total = document.querySelector('[data-testid="earnings"]');
          const jobs = document.querySelectorAll('[data-testid="earnings-job"]').length;
          const settled = total && (total.dataset.paid === "0" || jobs > 0);
          return settled && { paid: Number(total.dataset.paid), jobs };
        }, null, { timeout: 30000 })
        .then((found) => found.jsonValue());
      result.earnings.push({ address, ...seen });
      await member.screenshot({ path: `${shots}/${result.steps.length + 1}-earnings-${result.earnings.length}.png`, fullPage: true });
      await context.close();
    }
  }
} catch (error) {
  result.ok = false;
  errors.push(String(error));
  // What the page said when it failed.
  if (page) {
    result.failed = await page.evaluate(() =>
      Object.fromEntries([...document.querySelectorAll(".message, .problem")].map((e) => [e.dataset.testid, e.textContent])),
    ).catch(() => null);
    await page.screenshot({ path: `${shots}/failed.png`, fullPage: true }).catch(() => {});
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
