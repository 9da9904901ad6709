//! Builds what the relay serves to browsers and embeds it in `kinema`, so `kinema devnet` and
//! `kinema relay` serve the creator app (`/`), the player (`/watch/<content id>`) and the light
//! node's page (`/node.html`) with no files beside the binary:
//!
//! 1. a nested cargo builds kinema-wasm-node and kinema-browser-app for `wasm32-unknown-unknown`
//!    in the `wasm` profile, in `<target>/web-target` (its own target directory, so it never
//!    waits on the outer build's lock, and one for every profile of the outer build);
//! 2. wasm-bindgen's library writes their JavaScript glue; a module whose imports name `env`
//!    (something native leaked into the browser build) fails the build;
//! 3. each `.wasm` is renamed after its blake3 (`<name>.<16 hex>.wasm`, the glue rewritten to
//!    match), so the relay may tell browsers to keep it for good;
//! 4. the pages (`browser-app/www`, `wasm-node/www`, `player/www`) and hls.js
//!    (`player/vendor`) join them in `<target>/web/`, each file a browser downloads with a gzip
//!    and a brotli copy;
//! 5. `$OUT_DIR/web.rs` lists every file for `include_bytes!`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
#[path = "../build-support/nested_cargo.rs"]
mod nested_cargo;
#[path = "../build-support/web_files.rs"]
mod web_files;

use nested_cargo::nested_cargo;

const WASM: &str = "wasm32-unknown-unknown";
/// The wasm crates, by package and library name.
const CRATES: [(&str, &str); 2] =
    [("kinema-wasm-node", "kinema_wasm_node"), ("kinema-browser-app", "kinema_browser_app")];
/// The pages' directories, in the workspace.
const PAGES: [&str; 4] = ["browser-app/www", "wasm-node/www", "player/www", "player/vendor"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("..");
    for watched in [
        "browser-app/src",
        "browser-app/js",
        "browser-app/Cargo.toml",
        "wasm-node/src",
        "wasm-node/Cargo.toml",
        "chain/src",
        "net/src",
        "contracts-wasm/src",
        "relay-server/src/api.rs",
        "relay-server/src/chain.rs",
        "relay-server/src/lib.rs",
        "chain/Cargo.toml",
        "net/Cargo.toml",
        "relay-server/Cargo.toml",
        "contracts-wasm/Cargo.toml",
        // The `wasm` profile and the workspace's versions.
        "Cargo.toml",
        "Cargo.lock",
    ]
    .iter()
    .chain(PAGES.iter())
    {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("build-support").display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let target = target_root(&out);
    let web = target.join("web");
    if let Err(e) = build(&root, &target.join("web-target"), &web) {
        fail(&e);
    }
    if let Err(e) = embed(&web, &out.join("web.rs")) {
        fail(&e);
    }
}

/// The outer build's target directory (the one holding `CACHEDIR.TAG`), or `out` itself.
fn target_root(out: &Path) -> PathBuf {
    out.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map_or_else(|| out.to_owned(), Path::to_owned)
}

fn build(root: &Path, target_dir: &Path, web: &Path) -> Result<(), String> {
    let mut command = nested_cargo();
    command.args(["build", "--locked", "--profile", "wasm", "--target", WASM]);
    for (package, _) in CRATES {
        command.args(["-p", package]);
    }
    command.arg("--manifest-path").arg(root.join("Cargo.toml")).arg("--target-dir").arg(target_dir);
    let status = command.status().map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {WASM} exited with {status}"));
    }
    let _ = std::fs::remove_dir_all(web);
    std::fs::create_dir_all(web).map_err(|e| format!("creating {}: {e}", web.display()))?;
    for (_, name) in CRATES {
        let wasm = target_dir.join(WASM).join("wasm").join(format!("{name}.wasm"));
        let bytes = std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
        let leaked: Vec<String> = imports(&bytes)?
            .into_iter()
            .filter(|(module, _)| module == "env")
            .map(|(module, field)| format!("{module}.{field}"))
            .collect();
        if !leaked.is_empty() {
            return Err(format!(
                "{name}.wasm imports {} from env: something native is linked into the browser build",
                leaked.join(", ")
            ));
        }
        wasm_bindgen_cli_support::Bindgen::new()
            .input_path(&wasm)
            .out_name(name)
            .typescript(false)
            .omit_default_module_path(false)
            .web(true)
            .and_then(|b| b.generate(web))
            .map_err(|e| format!("wasm-bindgen {}: {e}", wasm.display()))?;
        // Named after its hash, the glue rewritten to load that name.
        let plain = format!("{name}_bg.wasm");
        let bytes = std::fs::read(web.join(&plain)).map_err(|e| format!("{plain}: {e}"))?;
        let hashed = format!("{name}_bg.{}.wasm", &blake3::hash(&bytes).to_hex()[..16]);
        std::fs::rename(web.join(&plain), web.join(&hashed))
            .map_err(|e| format!("{plain}: {e}"))?;
        let glue = web.join(format!("{name}.js"));
        let js = std::fs::read_to_string(&glue).map_err(|e| format!("{}: {e}", glue.display()))?;
        let quoted = format!("'{plain}'");
        if js.matches(&quoted).count() != 1 {
            return Err(format!("{}: expected one {quoted} to rename", glue.display()));
        }
        std::fs::write(&glue, js.replace(&quoted, &format!("'{hashed}'")))
            .map_err(|e| format!("{}: {e}", glue.display()))?;
    }
    for dir in PAGES {
        let from = root.join(dir);
        for entry in std::fs::read_dir(&from).map_err(|e| format!("{}: {e}", from.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path.file_name().unwrap_or_default();
            std::fs::copy(&path, web.join(name)).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    for file in web_files::files(web)? {
        if !web_files::served(&file) {
            continue;
        }
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(&bytes).map_err(|e| e.to_string())?;
        let gzip = gzip.finish().map_err(|e| e.to_string())?;
        let mut brotli = Vec::new();
        let params =
            brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
        brotli::BrotliCompress(&mut bytes.as_slice(), &mut brotli, &params)
            .map_err(|e| e.to_string())?;
        for (suffix, compressed) in [("gz", gzip), ("br", brotli)] {
            let mut path = file.clone().into_os_string();
            path.push(".");
            path.push(suffix);
            std::fs::write(&path, compressed).map_err(|e| format!("{}: {e}", file.display()))?;
        }
    }
    Ok(())
}

/// Writes `web.rs`: `WEB`, every file of `web` but the compressed copies, each as its path
/// (`/`-separated), its bytes, its blake3 and its gzip and brotli copies where there are.
fn embed(web: &Path, rs: &Path) -> Result<(), String> {
    let mut text = String::from("&[\n");
    for file in web_files::files(web)? {
        if file.extension().is_some_and(|e| e == "gz" || e == "br") {
            continue;
        }
        let relative = file.strip_prefix(web).map_err(|e| e.to_string())?;
        let name: Vec<String> =
            relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let copy = |suffix: &str| {
            let mut path = file.clone().into_os_string();
            path.push(suffix);
            let path = PathBuf::from(path);
            if path.is_file() {
                format!("Some(include_bytes!({:?}))", path.display().to_string())
            } else {
                "None".into()
            }
        };
        let _ = writeln!(
            text,
            "    crate::web::File {{ path: {:?}, bytes: include_bytes!({:?}), blake3: {:?}, gzip: {}, brotli: {} }},",
            name.join("/"),
            file.display().to_string(),
            blake3::hash(&bytes).to_hex().as_str(),
            copy(".gz"),
            copy(".br"),
        );
    }
    text.push(']');
    std::fs::write(rs, text).map_err(|e| format!("{}: {e}", rs.display()))
}

/// Every import of the wasm module in `bytes`, as (module, name): just enough of the binary
/// format to find them.
fn imports(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != b"\0asm\x01\0\0\0" {
        return Err("not a WebAssembly module (version 1)".into());
    }
    let mut imports = Vec::new();
    while r.at < bytes.len() {
        let id = r.byte()?;
        let len = r.leb()? as usize;
        let section = r.take(len)?;
        if id != 2 {
            continue;
        }
        let mut s = Reader { bytes: section, at: 0 };
        for _ in 0..s.leb()? {
            let module = s.name()?;
            let name = s.name()?;
            match s.byte()? {
                0 => {
                    s.leb()?; // a function's type index
                }
                1 => {
                    s.byte()?; // a table's element type, then its limits
                    s.limits()?;
                }
                2 => s.limits()?,
                3 => {
                    s.byte()?; // a global's value type and mutability
                    s.byte()?;
                }
                4 => {
                    s.byte()?; // a tag's attribute and type index
                    s.leb()?;
                }
                kind => return Err(format!("import {module}.{name} of unknown kind {kind}")),
            }
            imports.push((module, name));
        }
    }
    Ok(imports)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("the module ends early at byte {}", self.at));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn leb(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a LEB128 number longer than 64 bits".into())
    }

    fn name(&mut self) -> Result<String, String> {
        let len = self.leb()? as usize;
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn limits(&mut self) -> Result<(), String> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 != 0 {
            self.leb()?;
        }
        Ok(())
    }
}

fn fail(detail: &str) -> ! {
    #[allow(clippy::print_stderr)] // a build script reports on stderr
    {
        eprintln!(
            "building what browsers get failed: {detail}\n(is the {WASM} target installed? \
             rustup target add {WASM})"
        );
    }
    std::process::exit(1)
}
