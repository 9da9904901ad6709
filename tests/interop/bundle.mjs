// Bundles browser.mjs (js-libp2p for a browser page) into one script:
//   node bundle.mjs <out.js>
import { build } from "esbuild";

const out = process.argv[2];
if (!out) {
  console.error("usage: node bundle.mjs <out.js>");
  process.exit(2);
}
await build({
  entryPoints: [new URL("./browser.mjs", import.meta.url).pathname],
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "es2022",
  outfile: out,
  logLevel: "warning",
});
