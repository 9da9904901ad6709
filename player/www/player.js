// The Kinema player: hls.js (bundled beside this file, global `Hls`) fed by a loader that
// trusts nothing on the way. A video is named by its content id, the blake3 of its ladder's
// manifest.json: the manifest is fetched by that hash and checked against it, the playlists are
// written here from the manifest (never taken from the network), and every segment is fetched
// by its blake3 — from what this tab kept (store.js, checked again), through the wasm light
// node from the network (every 16 KiB group checked), the relay's blob API last (checked
// whole) — and handed to Media Source Extensions only once it checks out. A copy that does not
// is counted, dropped and fetched again.
//
// Embedding: `<kinema-player content="<id>"></kinema-player>` (or the page's link names it:
// `/watch/<id>` or `#content=<id>`) with `hls.min.js` and this module on the page. Hooks for tests and scripts:
// `data-testid="player"` on the <video>, `player-stats` (data-peer-bytes, data-relay-bytes,
// data-store-bytes, data-store-rejected, data-verified, data-rejected, data-ttff-ms, data-stalls,
// data-throttled, and mining.js's) and `player-error` (data-state:
// no-content, unverifiable, network).
import init, { blake3Hex } from "./kinema_wasm_node.js";
import { connectRelay } from "./relay.js";
import { BlobStore } from "./store.js";
import { miningControls, startTickets } from "./mining.js";

const HEX64 = /^[0-9a-f]{64}$/;
const NAME = /^[a-z0-9_-]{1,32}$/;
const CODECS = /^[A-Za-z0-9.]+(,[A-Za-z0-9.]+)*$/;
/// Copies of a segment tried before the player gives up on it.
const TRIES = 4;
/// Where the last measured bandwidth is kept, to start the next video from it.
const BANDWIDTH_KEY = "kinema-player-bandwidth";
/// Browsers of the same video a tab connects to at most.
const WANTED_BROWSERS = 4;
/// Times a tab dials another viewer at most (a connection that came up is not dialled again).
const DIALS = 3;
/// How often a tab tells the relay it still watches (it forgets after 30 s) and looks for more.
const SWARM_EVERY_MS = 3000;
/// How long a tab that hears of other viewers waits for a first connection before it plays.
const FIRST_BROWSER_MS = 2000;
/// How long a segment is waited for from browsers before the relay is asked, at most (a
/// second when little is buffered).
const BROWSER_WAIT_MS = 4000;
/// With more than this buffered ahead of the playhead, a segment no connected browser has yet
/// is asked of them again (they are fetching it too, a little ahead) rather than of the relay.
const PATIENT_AHEAD_S = 8;
/// How often, and how long at most, a segment is asked of browsers again.
const ASK_AGAIN_MS = 500;
const PATIENCE_MS = 8000;

class NoContent extends Error {}
class Unverifiable extends Error {}

// The manifest's fields the playlists are written from, checked: nothing in it can add a
// playlist line or name a file other than its blake3.
function checkManifest(manifest) {
  const renditions = manifest?.renditions;
  if (!Array.isArray(renditions) || renditions.length === 0) {
    throw new Unverifiable("the manifest lists no renditions");
  }
  for (const r of renditions) {
    const numbers = [r.width, r.height, r.bandwidth, r.average_bandwidth, r.frame_rate];
    if (!NAME.test(r.name) || !CODECS.test(r.codecs) || !numbers.every(Number.isFinite)) {
      throw new Unverifiable(`the manifest's rendition ${JSON.stringify(r.name)} is malformed`);
    }
    if (!Array.isArray(r.segments) || r.segments.length === 0) {
      throw new Unverifiable(`rendition ${r.name} has no segments`);
    }
    for (const s of r.segments) {
      if (!HEX64.test(s.blake3) || s.file !== `${s.blake3}.ts` || !(s.duration > 0) || !(s.bytes > 0)) {
        throw new Unverifiable(`rendition ${r.name} names a malformed segment`);
      }
    }
  }
  return manifest;
}

function masterPlaylist(manifest) {
  let text = "#EXTM3U\n#EXT-X-VERSION:3\n";
  for (const r of manifest.renditions) {
    text += `#EXT-X-STREAM-INF:BANDWIDTH=${r.bandwidth},AVERAGE-BANDWIDTH=${r.average_bandwidth},`;
    text += `RESOLUTION=${r.width}x${r.height},CODECS="${r.codecs}",FRAME-RATE=${r.frame_rate.toFixed(3)}\n`;
    text += `${r.name}/index.m3u8\n`;
  }
  return text;
}

function mediaPlaylist(rendition) {
  const target = Math.ceil(Math.max(...rendition.segments.map((s) => s.duration)));
  let text = `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:${target}\n`;
  text += "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n";
  for (const s of rendition.segments) {
    text += `#EXTINF:${s.duration.toFixed(6)},\n${s.file}\n`;
  }
  return `${text}#EXT-X-ENDLIST\n`;
}

// Where the bytes come from and what they proved.
class Stats {
  constructor(element) {
    this.element = element;
    this.peerBytes = 0; // from other viewers' browsers
    this.servedBytes = 0; // to other viewers' browsers
    this.browsers = 0; // other viewers' browsers connected
    this.relayBytes = 0; // from relays and native peers
    this.storeBytes = 0; // from what this tab kept
    this.storeRejected = 0; // kept copies that no longer checked out
    this.verified = 0;
    this.rejected = 0;
    this.ttffMs = null;
    this.stalls = 0;
    this.throttled = 0; // answers of 429 (too many requests) from the relay
    this.tickets = "off"; // bandwidth tickets: on, or why not
    this.earned = 0; // tickets taken for what this tab served, their expected values added
    this.ticketsTaken = 0;
    this.winners = 0; // winning tickets held to be claimed
    this.paid = 0; // tickets this tab paid that the peers took, their expected values added
    this.ticketsPaid = 0;
    this.render();
  }

  render() {
    const e = this.element;
    const shown = ["peerBytes", "servedBytes", "browsers", "relayBytes", "storeBytes", "storeRejected", "verified",
      "rejected", "stalls", "throttled", "tickets", "earned", "ticketsTaken", "winners", "paid", "ticketsPaid"];
    for (const key of shown) e.dataset[key] = this[key];
    e.dataset.ttffMs = this.ttffMs ?? "";
    const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
    e.textContent =
      `segments verified ${this.verified}, rejected ${this.rejected} · ` +
      `${kib(this.relayBytes)} from relays and peers, ${kib(this.peerBytes)} from viewers, ` +
      `${kib(this.storeBytes)} kept here, ${kib(this.servedBytes)} served to ${this.browsers} viewers · ` +
      `first frame ${this.ttffMs === null ? "…" : `${this.ttffMs} ms`} · stalls ${this.stalls} · ` +
      (this.tickets === "on"
        ? `earned ${this.earned} in ${this.ticketsTaken} tickets (${this.winners} winners to claim), ` +
          `paid ${this.paid} in ${this.ticketsPaid}`
        : `tickets ${this.tickets}`);
  }
}

// Blobs by blake3, checked: what this tab kept first, then the light node, then the relay's
// blob API; what checks out is kept.
class Blobs {
  constructor(node, stats) {
    this.node = node;
    this.stats = stats;
    this.store = new BlobStore(blake3Hex);
  }

  // From the viewers' browsers this tab is connected to (every group checked; a liar is
  // dropped by the node and never asked again).
  // A browser that never answers must not stall playback: past `waitMs` the relay is asked
  // instead.
  async viaBrowsers(hash, waitMs) {
    if (!this.node || this.node.browserPeers() === 0) return null;
    const late = new Promise((resolve) => setTimeout(() => resolve(null), waitMs));
    try {
      return await Promise.race([this.node.fetchFromBrowsers(hash), late]);
    } catch {
      return null;
    }
  }

  // What checked out is offered to the other viewers.
  share(hash, bytes) {
    if (!this.sharing) return;
    try {
      this.node.keep(hash, bytes);
    } catch {
      // Refused only when the bytes are not the hash's: never the case here.
    }
  }

  async viaNode(hash) {
    if (!this.node) return null;
    try {
      // The light node checks every 16 KiB group against the hash as it arrives.
      return await this.node.fetchSegment(hash);
    } catch {
      return null;
    }
  }

  async viaRelay(hash) {
    let response;
    try {
      response = await fetch(`/api/v1/blobs/${hash}`);
    } catch {
      return null;
    }
    if (response.status === 404) {
      return { missing: true };
    }
    if (response.status === 429) this.stats.throttled += 1;
    if (!response.ok) return null;
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (blake3Hex(bytes) !== hash) {
      this.stats.rejected += 1;
      this.stats.render();
      return null;
    }
    return bytes;
  }

  // The blob, checked; `counted` segments add to the verified count. `ahead()` is how many
  // seconds are buffered: with little, browsers get a second to answer before the relay is
  // asked; with more, up to BROWSER_WAIT_MS, and past PATIENT_AHEAD_S a segment no browser has
  // yet is asked of them again for a while.
  async get(hash, { counted = true, ahead = () => 0 } = {}) {
    const kept = await this.store.get(hash);
    this.stats.storeRejected = this.store.rejected;
    if (kept) {
      // Not handed to the light node: it reads the store itself when another viewer asks.
      this.stats.storeBytes += kept.length;
      if (counted) this.stats.verified += 1;
      this.stats.render();
      return kept;
    }
    const waitMs = () => Math.min(BROWSER_WAIT_MS, Math.max(1000, (ahead() - 2) * 1000));
    let fromBrowsers = await this.viaBrowsers(hash, waitMs());
    const patience = performance.now() + PATIENCE_MS;
    while (!fromBrowsers && this.node?.browserPeers() > 0 && ahead() >= PATIENT_AHEAD_S && performance.now() < patience) {
      await new Promise((resolve) => setTimeout(resolve, ASK_AGAIN_MS));
      fromBrowsers = await this.viaBrowsers(hash, waitMs());
    }
    if (fromBrowsers) {
      this.stats.peerBytes += fromBrowsers.length;
      if (counted) this.stats.verified += 1;
      this.stats.render();
      this.share(hash, fromBrowsers);
      this.store.put(hash, fromBrowsers).catch(() => {});
      return fromBrowsers;
    }
    let missing = 0;
    for (let attempt = 0; attempt < TRIES; attempt += 1) {
      const bytes = (await this.viaNode(hash)) ?? (await this.viaRelay(hash));
      if (bytes instanceof Uint8Array) {
        this.stats.relayBytes += bytes.length;
        if (counted) this.stats.verified += 1;
        this.stats.render();
        this.store.put(hash, bytes).catch(() => {});
        this.share(hash, bytes);
        return bytes;
      }
      if (bytes?.missing) missing += 1;
    }
    if (missing === TRIES) throw new NoContent(`nobody has ${hash}`);
    throw new Error(`no copy of ${hash} checked out in ${TRIES} tries`);
  }
}

// What hls.js asks for, answered from the checked manifest and blobs.
class Source {
  constructor(content, manifest, blobs, video) {
    this.base = `${location.origin}/hls/${content}/`;
    this.manifest = manifest;
    this.blobs = blobs;
    this.video = video;
    this.renditions = new Map(manifest.renditions.map((r) => [r.name, r]));
  }

  // Seconds buffered ahead of the playhead.
  ahead() {
    const { buffered, currentTime } = this.video;
    for (let i = 0; i < buffered.length; i += 1) {
      if (buffered.start(i) <= currentTime + 0.1 && currentTime <= buffered.end(i)) {
        return buffered.end(i) - currentTime;
      }
    }
    return 0;
  }

  get masterUrl() {
    return `${this.base}master.m3u8`;
  }

  async load(url) {
    if (!url.startsWith(this.base)) throw new Error(`${url} is not this video's`);
    const path = url.slice(this.base.length).split("?")[0];
    if (path === "master.m3u8") return masterPlaylist(this.manifest);
    const [name, file] = path.split("/");
    const rendition = this.renditions.get(name);
    if (!rendition) throw new Error(`no rendition ${name}`);
    if (file === "index.m3u8") return mediaPlaylist(rendition);
    const segment = rendition.segments.find((s) => s.file === file);
    if (!segment) throw new Error(`${file} is not a segment of ${name}`);
    const bytes = await this.blobs.get(segment.blake3, { ahead: () => this.ahead() });
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }
}

// An hls.js loader over a Source.
function loaderFor(source) {
  return class KinemaLoader {
    constructor() {
      this.context = null;
      this.aborted = false;
      this.stats = {
        aborted: false,
        loaded: 0,
        retry: 0,
        total: 0,
        chunkCount: 0,
        bwEstimate: 0,
        loading: { start: 0, first: 0, end: 0 },
        parsing: { start: 0, end: 0 },
        buffering: { start: 0, first: 0, end: 0 },
      };
    }

    load(context, _config, callbacks) {
      this.context = context;
      const stats = this.stats;
      stats.loading.start = performance.now();
      source.load(context.url).then(
        (data) => {
          if (this.aborted) return;
          stats.loading.first = stats.loading.end = performance.now();
          stats.loaded = stats.total = typeof data === "string" ? data.length : data.byteLength;
          callbacks.onSuccess({ url: context.url, data }, stats, context, null);
        },
        (error) => {
          if (this.aborted) return;
          callbacks.onError({ code: 0, text: String(error.message ?? error) }, context, null, stats);
        },
      );
    }

    abort() {
      this.aborted = true;
      this.stats.aborted = true;
    }

    destroy() {
      this.aborted = true;
    }

    getCacheAge() {
      return null;
    }

    getResponseHeader() {
      return null;
    }
  };
}

function contentOf(element) {
  const fromPath = location.pathname.match(/^\/watch\/([0-9a-fA-F]{64})$/)?.[1];
  const id =
    element.getAttribute("content") ??
    fromPath ??
    new URLSearchParams(location.hash.slice(1)).get("content");
  return id?.toLowerCase() ?? null;
}

function keyboard(video) {
  video.addEventListener("keydown", (event) => {
    const actions = {
      " ": () => (video.paused ? video.play() : video.pause()),
      k: () => (video.paused ? video.play() : video.pause()),
      ArrowLeft: () => (video.currentTime = Math.max(0, video.currentTime - 5)),
      ArrowRight: () => (video.currentTime = Math.min(video.duration || 0, video.currentTime + 5)),
      m: () => (video.muted = !video.muted),
      f: () => (document.fullscreenElement ? document.exitFullscreen() : video.requestFullscreen()),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
}

class KinemaPlayer extends HTMLElement {
  async connectedCallback() {
    const video = document.createElement("video");
    video.dataset.testid = "player";
    video.controls = true;
    video.playsInline = true;
    video.tabIndex = 0;
    const stats = document.createElement("div");
    stats.className = "stats";
    stats.dataset.testid = "player-stats";
    const error = document.createElement("div");
    error.className = "error";
    error.dataset.testid = "player-error";
    this.append(error, video, stats);
    this.stats = new Stats(stats);
    keyboard(video);
    const fail = (state, text) => {
      error.dataset.state = state;
      error.textContent = text;
    };
    try {
      await this.start(video, fail);
    } catch (e) {
      if (e instanceof NoContent) fail("no-content", `No such content: ${e.message}`);
      else if (e instanceof Unverifiable) fail("unverifiable", `Nothing verifiable: ${e.message}`);
      else fail("network", `Network down: ${e.message ?? e}`);
    }
  }

  // What the creator told of the video (title, description, captions). It is the relay's word,
  // not the content id's; the captions are a blob checked against the hash the relay names.
  // Reachable from other browsers through the relay, this tab tells the relay it watches
  // `content` and connects to other viewers it hears of (at most WANTED_BROWSERS), again every
  // SWARM_EVERY_MS; when there are some, it waits a moment for the first before it plays (played
  // at once, a tab fetches its first several segments from the relay before any browser is
  // connected: `cargo xtask bench offload` measured the share from browsers fall from 0.74 to
  // 0.56 with 4 tabs).
  async joinSwarm(node, content) {
    let address;
    try {
      address = await node.listen();
    } catch {
      return; // not reachable: it still plays, and fetches from whom it can
    }
    const showSharing = () => {
      this.stats.browsers = node.browserPeers();
      this.stats.servedBytes = node.servedBytes();
      this.stats.render();
    };
    // Dials to each viewer heard of: one that failed is tried again next round, up to DIALS.
    const dials = new Map();
    // The relay takes a join or a leave only signed by the tab it names.
    const said = (leave) => {
      const at = Date.now();
      const sig = node.signSwarm(content, leave, address, at);
      return `${leave ? "leave" : "join"}=${encodeURIComponent(address)}&at=${at}&sig=${sig}`;
    };
    const round = async () => {
      const url = `/api/v1/swarms/${content}?${said(false)}`;
      const swarm = await fetch(url)
        .then((r) => {
          if (r.status === 429) this.stats.throttled += 1;
          return r.ok ? r.json() : { peers: [] };
        })
        .catch(() => ({ peers: [] }));
      if (dials.size > 1024) dials.clear(); // a long session's churn: forget, dial again
      for (const peer of swarm.peers) {
        if (node.browserPeers() >= WANTED_BROWSERS) break;
        const dialled = dials.get(peer) ?? { tries: 0, pending: false };
        if (dialled.pending || dialled.tries >= DIALS) continue;
        dials.set(peer, { tries: dialled.tries + 1, pending: true });
        node.connectBrowser(peer).then(
          () => dials.set(peer, { tries: DIALS, pending: false }),
          () => dials.set(peer, { tries: dialled.tries + 1, pending: false }),
        );
      }
      showSharing();
      return swarm.peers.length;
    };
    const others = await round();
    this.swarmTimer = setInterval(round, SWARM_EVERY_MS);
    // Closing or reloading: the relay stops naming this tab at once.
    addEventListener("pagehide", () => {
      const url = `/api/v1/swarms/${content}?${said(true)}`;
      fetch(url, { keepalive: true }).catch(() => {});
    });
    setInterval(showSharing, 1000);
    if (others > 0) {
      const until = performance.now() + FIRST_BROWSER_MS;
      while (node.browserPeers() === 0 && performance.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async describe(content, video, blobs) {
    let told;
    try {
      const response = await fetch(`/api/v1/videos?content=${content}`);
      if (!response.ok) return;
      [told] = (await response.json()).videos ?? [];
    } catch {
      return;
    }
    if (!told) return;
    const title = document.createElement("h2");
    title.dataset.testid = "player-title";
    title.textContent = String(told.title ?? "");
    const description = document.createElement("p");
    description.textContent = String(told.description ?? "");
    this.prepend(title, description);
    // A blob the relay names, checked, as a URL for the page.
    const picture = async (hash, type) =>
      URL.createObjectURL(new Blob([await blobs.get(hash, { counted: false })], { type }));
    if (typeof told.poster === "string" && HEX64.test(told.poster) && !video.poster) {
      try {
        video.poster = await picture(told.poster, "image/jpeg");
      } catch {
        // No poster that checks out: the first frame shows when it plays.
      }
    }
    const preview = told.preview;
    if (preview && typeof preview.sprite === "string" && HEX64.test(preview.sprite)) {
      try {
        this.scrubber(video, preview, await picture(preview.sprite, "image/jpeg"));
      } catch {
        // No sprite that checks out: the native controls still seek.
      }
    }
    if (typeof told.captions === "string" && HEX64.test(told.captions)) {
      try {
        const bytes = await blobs.get(told.captions, { counted: false });
        const track = document.createElement("track");
        track.kind = "captions";
        track.label = "Captions";
        track.srclang = "und";
        track.default = true;
        track.src = URL.createObjectURL(new Blob([bytes], { type: "text/vtt" }));
        track.dataset.testid = "player-captions";
        video.append(track);
      } catch {
        // No captions that check out: the video plays without them.
      }
    }
  }

  // A seek bar under the video whose hover shows the sprite's tile of that moment
  // (`data-testid="player-preview"`, its `data-tile`); moving it seeks.
  scrubber(video, preview, sprite) {
    const number = (v) => (Number.isFinite(v) && v > 0 ? v : 0);
    const [every, columns, count] = [number(preview.every_ms), number(preview.columns), number(preview.count)];
    const [width, height] = [number(preview.width), number(preview.height)];
    if (!every || !columns || !count || !width || !height) return;
    const bar = document.createElement("input");
    bar.type = "range";
    bar.min = "0";
    bar.max = "1000";
    bar.value = "0";
    bar.className = "scrub";
    bar.dataset.testid = "player-scrub";
    bar.setAttribute("aria-label", "seek");
    const tip = document.createElement("div");
    tip.className = "preview";
    tip.dataset.testid = "player-preview";
    tip.hidden = true;
    Object.assign(tip.style, {
      width: `${width}px`,
      height: `${height}px`,
      backgroundImage: `url(${sprite})`,
      backgroundRepeat: "no-repeat",
    });
    const at = (event) => {
      const box = bar.getBoundingClientRect();
      return Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    };
    bar.addEventListener("pointermove", (event) => {
      const share = at(event);
      const seconds = share * (video.duration || 0);
      const tile = Math.min(count - 1, Math.floor((seconds * 1000) / every));
      tip.style.backgroundPosition = `-${(tile % columns) * width}px -${Math.floor(tile / columns) * height}px`;
      tip.style.left = `${Math.min(bar.clientWidth - width, Math.max(0, share * bar.clientWidth - width / 2))}px`;
      tip.dataset.tile = String(tile);
      tip.hidden = false;
    });
    bar.addEventListener("pointerleave", () => (tip.hidden = true));
    bar.addEventListener("input", () => {
      if (video.duration) video.currentTime = (Number(bar.value) / 1000) * video.duration;
    });
    video.addEventListener("timeupdate", () => {
      if (video.duration) bar.value = String(Math.round((video.currentTime / video.duration) * 1000));
    });
    // The tip floats above the bar: showing it moves nothing under the pointer.
    const scrubber = document.createElement("div");
    scrubber.className = "scrubber";
    scrubber.append(tip, bar);
    video.after(scrubber);
  }

  async start(video, fail) {
    const content = contentOf(this);
    if (!content || !HEX64.test(content)) {
      throw new NoContent("no content id (64 hex digits) in the element or the link");
    }
    await init();
    // From the network first; without a light node the relay's blob API still serves, checked.
    let node = null;
    let status = null;
    try {
      ({ node, status } = await connectRelay());
    } catch {
      node = null;
    }
    const blobs = new Blobs(node, this.stats);
    const bytes = await blobs.get(content, { counted: false });
    let manifest;
    try {
      manifest = checkManifest(JSON.parse(new TextDecoder().decode(bytes)));
    } catch (e) {
      throw e instanceof Unverifiable ? e : new Unverifiable(`the manifest is not JSON: ${e.message}`);
    }
    if (!window.Hls?.isSupported()) {
      throw new Error("this browser has no Media Source Extensions");
    }
    this.describe(content, video, blobs);
    // Sharing with the other viewers is on unless the link says `#share=0`.
    const params = new URLSearchParams(location.hash.slice(1));
    if (node && params.get("share") !== "0") {
      // What checks out is kept to serve (what came from the network in memory, the rest
      // read from this tab's store when asked); the switch says whether it is served.
      blobs.sharing = true;
      blobs.share(content, bytes);
      node.serveFrom((hash) => (HEX64.test(hash) ? blobs.store.get(hash) : null));
      this.append(miningControls(node));
      await this.joinSwarm(node, content);
      // Paid bandwidth, when the relay names its terms (the page, or a script, reaches it as
      // `element.bandwidth`); playback does not wait for it.
      startTickets(node, status, this.stats).then((bandwidth) => {
        this.bandwidth = bandwidth;
      });
    }
    const source = new Source(content, manifest, blobs, video);
    const saved = Number(localStorage.getItem(BANDWIDTH_KEY));
    const hls = new window.Hls({
      loader: loaderFor(source),
      capLevelToPlayerSize: true,
      abrEwmaDefaultEstimate: saved > 0 ? saved : 1_000_000,
      fragLoadPolicy: {
        default: {
          maxTimeToFirstByteMs: 20_000,
          maxLoadTimeMs: 60_000,
          timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
          errorRetry: { maxNumRetry: 3, retryDelayMs: 500, maxRetryDelayMs: 4000 },
        },
      },
    });
    this.hls = hls;
    const stats = this.stats;
    let started = false;
    video.addEventListener("playing", () => {
      if (!started) {
        started = true;
        stats.ttffMs = Math.round(performance.now());
        stats.render();
      }
    });
    video.addEventListener("waiting", () => {
      if (started && !video.seeking && !video.ended) {
        stats.stalls += 1;
        stats.render();
      }
    });
    hls.on(window.Hls.Events.FRAG_LOADED, () => {
      if (hls.bandwidthEstimate > 0) localStorage.setItem(BANDWIDTH_KEY, String(Math.round(hls.bandwidthEstimate)));
    });
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) fail("network", `Network down: ${data.details}: ${data.error?.message ?? ""}`);
    });
    hls.loadSource(source.masterUrl);
    hls.attachMedia(video);
    if (this.hasAttribute("autoplay") || params.get("autoplay") === "1") {
      video.muted = true;
      video.play().catch(() => {});
    }
  }
}

customElements.define("kinema-player", KinemaPlayer);
