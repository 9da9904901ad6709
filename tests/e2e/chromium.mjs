// Debian's Chromium, headless, with the flags that work on this kind of machine, for every
// end-to-end script. Env: CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";

/// Flags for browser-to-browser WebRTC on one machine: loopback candidates, not hidden behind
/// mDNS names (no traffic goes to any other address).
export const LOOPBACK_WEBRTC = ["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"];

/// Waits (at most `timeout` ms) until the player on `page` has played its video to the end or
/// shown an error, and returns what it says: `{ended, duration, stats, error}`.
export async function played(page, timeout) {
  await page.waitForFunction(
    () => {
      const video = document.querySelector('[data-testid="player"]');
      const error = document.querySelector('[data-testid="player-error"]');
      return video?.ended || error?.dataset.state;
    },
    null,
    { timeout },
  );
  return page.evaluate(() => {
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
}

export function launch(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extra,
    ],
  });
}
