//! The relay end to end, on SQLite and on a real Postgres server: a ladder made by the media
//! engine from a corpus clip, held only by a native peer, played whole by ffmpeg through the
//! relay's HLS gateway; the REST API through its client, its OpenAPI document (pinned by a
//! snapshot) and `/metrics`; every kind of bad request refused with its status and reason;
//! what the relay fetches for others is held to its cache budget, what is published pinned.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use kinema_chain::crypto::SecretKey;
use kinema_media::ffmpeg::Ffmpeg;
use kinema_media::hls::Manifest;
use kinema_media::ladder;
use kinema_net::blobs::BlobStore;
use kinema_net::p2p::{self, P2pConfig};
use kinema_relay::api::WriteAuth;
use kinema_relay::{Config, Limits, Quotas, Relay, api};
use kinema_test_support::{corpus, wait_until, wait_until_async};
use serde_json::Value;

/// The account the tests write with (any account may, within the default quota).
pub(crate) fn writer() -> SecretKey {
    SecretKey::from_seed([201; 32])
}

/// The relay's operator.
pub(crate) fn operator() -> SecretKey {
    SecretKey::from_seed([202; 32])
}

pub(crate) async fn relay(dir: &Path, database_url: Option<String>, limits: Limits) -> Relay {
    kinema_relay::start(config(dir, database_url, limits)).await.unwrap()
}

/// A test relay's settings: on loopback, the operator's, default quotas and cache budget.
pub(crate) fn config(dir: &Path, database_url: Option<String>, limits: Limits) -> Config {
    Config {
        data_dir: dir.to_owned(),
        keypair: p2p::keypair_from_seed([77; 32]).unwrap(),
        http: "127.0.0.1:0".parse().unwrap(),
        listen: vec![
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            "/ip4/127.0.0.1/tcp/0/ws".parse().unwrap(),
        ],
        peers: Vec::new(),
        external: Vec::new(),
        webrtc_certificate: None,
        database_url,
        chain_id: "kinema-relay-test".into(),
        chain_rpc: None,
        genesis: None,
        bandwidth_price_per_mib: Some(1_000_000),
        assets: kinema_relay::Assets::None,
        limits,
        trusted_proxy: None,
        quotas: Quotas::default(),
        cache_budget: kinema_relay::CACHE_BUDGET,
        operator: Some(operator().address()),
        deny_list: None,
        ffmpeg: None,
        faucet: None,
    }
}

/// An HTTP answer: status, headers we look at, body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) authenticate: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn http(method: &str, url: &str, body: Option<&[u8]>, auth: Option<&str>) -> Answer {
    let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let response = match (method, body, auth) {
        ("GET", _, None) => agent.get(url).call(),
        ("GET", _, Some(auth)) => agent.get(url).header("authorization", auth).call(),
        ("DELETE", _, Some(auth)) => agent.delete(url).header("authorization", auth).call(),
        ("POST", Some(b), None) => agent.post(url).send(b),
        ("POST", Some(b), Some(auth)) => agent.post(url).header("authorization", auth).send(b),
        ("PUT", Some(b), None) => agent.put(url).send(b),
        ("PUT", Some(b), Some(auth)) => agent.put(url).header("authorization", auth).send(b),
        _ => panic!("{method}"),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (retry_after, authenticate) = (header("retry-after"), header("www-authenticate"));
    let body = response.body_mut().with_config().limit(256 << 20).read_to_vec().unwrap();
    Answer { status, retry_after, authenticate, body }
}

/// An unsigned request.
pub(crate) async fn call(method: &'static str, url: String, body: Option<Vec<u8>>) -> Answer {
    call_with(method, url, body, None).await
}

/// A request with `auth` as its Authorization header.
pub(crate) async fn call_with(
    method: &'static str,
    url: String,
    body: Option<Vec<u8>>,
    auth: Option<String>,
) -> Answer {
    tokio::task::spawn_blocking(move || http(method, &url, body.as_deref(), auth.as_deref()))
        .await
        .unwrap()
}

/// A request signed by `key` now.
pub(crate) async fn signed(
    key: &SecretKey,
    method: &'static str,
    url: String,
    body: Option<Vec<u8>>,
) -> Answer {
    let auth = sign(key, method, &url, body.as_deref().unwrap_or_default());
    call_with(method, url, body, Some(auth)).await
}

/// `key`'s Authorization header for a `method` request to `url` carrying `body`, now.
pub(crate) fn sign(key: &SecretKey, method: &str, url: &str, body: &[u8]) -> String {
    let path = &url[url.find("/api/").or_else(|| url.find("/hls/")).unwrap()..];
    WriteAuth::sign(key, method, path, body, api::now_ms()).header()
}

/// A request announcing a `size`-byte body and waiting to be told to send it (`Expect:
/// 100-continue`), as a client uploading something large does: the answer comes before it.
/// Signed by `key` (over a body it never sends) when given.
pub(crate) async fn oversized(
    at: std::net::SocketAddr,
    method: &str,
    path: &str,
    size: usize,
    key: Option<&SecretKey>,
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    let auth = key.map_or(String::new(), |key| {
        format!(
            "Authorization: {}\r\n",
            WriteAuth::sign(key, method, path, b"", api::now_ms()).header()
        )
    });
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: kinema\r\nContent-Length: {size}\r\n{auth}\
         Expect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let authenticate =
        text.lines().find_map(|l| l.strip_prefix("www-authenticate: ")).map(str::to_owned);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).as_bytes().to_vec();
    Answer { status, retry_after: None, authenticate, body }
}

/// A ladder of the first seconds of a corpus clip, made once for every test in this binary.
pub(crate) fn ladder() -> &'static (tempfile::TempDir, Manifest) {
    static LADDER: std::sync::OnceLock<(tempfile::TempDir, Manifest)> = std::sync::OnceLock::new();
    LADDER.get_or_init(|| {
        let ff = Ffmpeg::locate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ladder");
        let config = ladder::Config {
            heights: vec![240, 144],
            workers: 2,
            encode: kinema_media::transcode::EncodeSettings {
                preset: "veryfast".into(),
                ..Default::default()
            },
            ..ladder::Config::default()
        };
        let manifest = ladder::run(&ff, &corpus("bikes.mp4"), &out, &config, &mut |_| {}).unwrap();
        (dir, manifest)
    })
}

/// Parses OpenMetrics text strictly: every sample's family is declared with a TYPE (a
/// counter's samples end in `_total`), names and labels are well formed, values are numbers, and
/// the text ends with `# EOF`. Returns the samples.
fn parse_metrics(text: &str) -> Vec<(String, f64)> {
    let mut typed = std::collections::HashMap::new();
    let mut samples = Vec::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    let (body, end) = text.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(end, "# EOF", "{text}");
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(name_ok(name) && ["counter", "gauge"].contains(&kind), "{line}");
            typed.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap();
                for label in labels.split(',') {
                    let (key, quoted) = label.split_once('=').unwrap();
                    assert!(name_ok(key), "{line}");
                    assert!(quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'));
                }
                name
            }
            None => series,
        };
        let family = match name.strip_suffix("_total") {
            Some(family) if typed.get(family).is_some_and(|k| k == "counter") => family,
            _ => name,
        };
        assert!(typed.contains_key(family), "{name} has no TYPE");
        samples.push((series.to_owned(), value));
    }
    samples
}

/// The relay's whole behaviour on the database at `database_url` (SQLite when `None`).
async fn relay_behaviour(database_url: Option<String>) {
    let (ladder_dir, manifest) = ladder();
    let out = ladder_dir.path().join("ladder");
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();

    // A native peer holds the ladder: every segment and the manifest.
    let store = Arc::new(BlobStore::open(dirs[0].path()).unwrap());
    let manifest_bytes = std::fs::read(out.join("manifest.json")).unwrap();
    let id = store.put(&manifest_bytes).unwrap();
    for rendition in &manifest.renditions {
        for segment in &rendition.segments {
            let bytes =
                std::fs::read(out.join(&rendition.rendition.name).join(&segment.file)).unwrap();
            assert_eq!(store.put(&bytes).unwrap(), segment.blake3);
        }
    }
    let relay = relay(dirs[1].path(), database_url, Limits::default()).await;
    let base = relay.url();
    let client = api::Client::new(&base).with_key(writer());
    let status = client.status().await.unwrap();
    assert_eq!(status.peer_id, relay.p2p.peer_id().to_string());
    let browser = &status.browser_addresses;
    assert!(browser.iter().all(|a| a.contains("/ws/p2p/")) && !browser.is_empty(), "{status:?}");
    assert_eq!(status.chain_id, "kinema-relay-test");
    assert_eq!(status.bandwidth_price_per_mib, Some(1_000_000));
    assert_eq!(status.chain_rpc, None);
    let tcp = status.addresses.iter().find(|a| !a.contains("/ws")).unwrap().parse().unwrap();
    let (peer, _link) = p2p::start(P2pConfig {
        peers: vec![tcp],
        blobs: Some(store),
        ..P2pConfig::new(p2p::keypair_from_seed([78; 32]).unwrap())
    })
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), peer.connected_to(1)).await.unwrap();

    // The content is added by its manifest alone; the relay holds none of its segments.
    let added = client.add_content(manifest_bytes.clone()).await.unwrap();
    assert_eq!(added.id.0, *id.as_bytes());
    assert_eq!(added.renditions, ["240p", "144p"]);
    let master = client.url(&added.hls);
    assert_eq!(client.content_list().await.unwrap().content, std::slice::from_ref(&added));
    assert_eq!(client.content(&added.id).await.unwrap(), added);

    // ffmpeg reads every rendition whole through the gateway, which fetches each segment from
    // the peer, verified; the playlists are the ladder's own.
    let index = call("GET", format!("{base}/hls/{id}/240p/index.m3u8"), None).await;
    assert_eq!(index.body, std::fs::read(out.join("240p/index.m3u8")).unwrap());
    let master_text = call("GET", master.clone(), None).await.body;
    assert_eq!(master_text, std::fs::read(out.join("master.m3u8")).unwrap());
    let ff = Ffmpeg::locate().unwrap();
    let read = tokio::task::spawn_blocking(move || {
        ff.ffmpeg().args(["-v", "error", "-i", &master, "-map", "0", "-f", "null", "-"]).output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
    assert!(read.stderr.is_empty(), "{}", String::from_utf8_lossy(&read.stderr));
    let relay_store = BlobStore::open(&dirs[1].path().join("blobs")).unwrap();
    for segment in manifest.renditions.iter().flat_map(|r| &r.segments) {
        assert!(relay_store.has(&segment.blake3), "segment {} not served", segment.file);
    }

    // The peer index (written every 2 s) knows the native peer.
    let native = peer.peer_id().to_string();
    let indexed = || async {
        let peers = client.peers().await.unwrap().peers;
        peers.into_iter().find(|p| p.peer_id == native)
    };
    wait_until_async("the peer indexed", Duration::from_secs(10), || async {
        indexed().await.is_some()
    })
    .await;
    let entry = indexed().await.unwrap();
    assert!(entry.connected);
    assert_eq!(entry.agent.as_deref(), Some(kinema_net::p2p::AGENT));

    // A blob uploaded by hash is served back; the document and the metrics are well formed.
    let blob = b"a segment uploaded over HTTP".to_vec();
    let name = kinema_chain::Hash::digest(&blob);
    let stored = client.put_blob(&name, blob.clone()).await.unwrap();
    assert_eq!((stored.blake3, stored.bytes), (name, blob.len() as u64));
    assert_eq!(client.blob(&name).await.unwrap(), blob);
    let document = call("GET", format!("{base}/api/v1/openapi.json"), None).await.json();
    kinema_test_support::check_openapi(&document);
    assert_eq!(document, serde_json::to_value(kinema_relay::routes::openapi_document()).unwrap());
    let metrics = call("GET", format!("{base}/metrics"), None).await;
    let samples = parse_metrics(std::str::from_utf8(&metrics.body).unwrap());
    let value = |series: &str| samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
    assert!(value("kinema_relay_fetched_blobs_total").unwrap() >= 8.0, "{samples:?}");
    assert_eq!(value("kinema_relay_content"), Some(1.0));
    assert!(value("kinema_relay_http_requests_total{route=\"hls\",status=\"200\"}").unwrap() > 8.0);
    assert!(value("kinema_relay_served_bytes_total").unwrap() > 0.0);
    assert_eq!(call("GET", format!("{base}/healthz"), None).await.status, 200);

    // A relay that is not there: the client names what it asked.
    let nowhere = api::Client::new("http://127.0.0.1:9").status().await.unwrap_err().to_string();
    assert!(nowhere.starts_with("GET http://127.0.0.1:9/api/v1/status: "), "{nowhere}");

    // Bad requests: each refused with its status and a reason.
    let refused = |answer: Answer, status: u16, reason: &str| {
        assert_eq!(answer.status, status, "{}", String::from_utf8_lossy(&answer.body));
        let why = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(why.contains(reason), "{why:?} does not say {reason:?}");
    };
    let huge_name = kinema_chain::Hash::digest(b"whatever: the body is never sent");
    let key = writer();
    let path = format!("/api/v1/blobs/{huge_name}");
    refused(
        oversized(relay.http, "PUT", &path, (64 << 20) + 1, Some(&key)).await,
        413,
        "over the 67108864-byte limit",
    );
    // Signed as the name, the body is other bytes.
    let other = call_with(
        "PUT",
        format!("{base}/api/v1/blobs/{name}"),
        Some(b"other".to_vec()),
        Some(sign(&key, "PUT", &format!("{base}/api/v1/blobs/{name}"), &blob)),
    );
    refused(other.await, 401, "the signature covers");
    refused(
        signed(&key, "PUT", format!("{base}/api/v1/blobs/xyz"), Some(blob)).await,
        400,
        "64 hex digits",
    );
    refused(
        signed(&key, "POST", format!("{base}/api/v1/content"), Some(b"{not json".to_vec())).await,
        400,
        "manifest.json",
    );
    let mut renamed: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    renamed["renditions"][0]["segments"][0]["file"] = "../../etc/passwd".into();
    let renamed = serde_json::to_vec(&renamed).unwrap();
    refused(
        signed(&key, "POST", format!("{base}/api/v1/content"), Some(renamed)).await,
        422,
        "not named by its blake3",
    );
    refused(
        oversized(relay.http, "POST", "/api/v1/content", (1 << 20) + 1, Some(&key)).await,
        413,
        "over the 1048576-byte limit",
    );
    let unknown = client.content(&name).await.unwrap_err();
    assert!(
        matches!(&unknown, api::Error::Refused { status: 404, error, .. } if error.contains("no content")),
        "{unknown}"
    );
    refused(call("GET", format!("{base}/hls/{id}/240p/nothing.ts"), None).await, 404, "has no");
    refused(call("GET", format!("{base}/api/v1/nothing"), None).await, 404, "openapi.json");
    refused(
        signed(&key, "PUT", format!("{base}/api/v1/status"), Some(Vec::new())).await,
        405,
        "PUT /api/v1/status",
    );
    refused(
        call("GET", format!("{base}/hls/not-a-hash/master.m3u8"), None).await,
        400,
        "64 hex digits",
    );
}

#[test]
fn the_openapi_document_is_pinned() {
    let document = serde_json::to_value(kinema_relay::routes::openapi_document()).unwrap();
    kinema_test_support::check_openapi(&document);
    let mut pinned = document;
    pinned["info"]["version"] = "[version]".into();
    insta::assert_snapshot!("relay_openapi", serde_json::to_string_pretty(&pinned).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_on_sqlite() {
    relay_behaviour(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_on_postgres() {
    let server = Postgres::start();
    relay_behaviour(Some(server.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_are_told_to_wait() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { requests_per_second: 1.0, burst: 3, ..Limits::default() };
    let relay = relay(dir.path(), None, limits).await;
    let url = format!("{}/healthz", relay.url());
    for _ in 0..3 {
        assert_eq!(call("GET", url.clone(), None).await.status, 200);
    }
    let limited = call("GET", url.clone(), None).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.retry_after.as_deref(), Some("1"));
    assert!(limited.json()["error"].as_str().unwrap().contains("1 per second"));
    // A client that waits as it is told is served again.
    let wait: u64 = limited.retry_after.unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(call("GET", url.clone(), None).await.status, 200);
    // The refusals are counted (the metrics are rate-limited too: asked until answered).
    let metrics = std::sync::Mutex::new(Vec::new());
    wait_until_async("the metrics answered", Duration::from_secs(10), || async {
        let answer = call("GET", format!("{}/metrics", relay.url()), None).await;
        *metrics.lock().unwrap() = answer.body;
        answer.status == 200
    })
    .await;
    let metrics = metrics.into_inner().unwrap();
    let samples = parse_metrics(std::str::from_utf8(&metrics).unwrap());
    let value = |series: &str| samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
    assert!(value("kinema_relay_http_rate_limited_total").unwrap() >= 1.0, "{samples:?}");
    let limited = "kinema_relay_http_requests_total{route=\"healthz\",status=\"429\"}";
    assert_eq!(value(limited), Some(1.0), "{samples:?}");
}

/// A throwaway Postgres server (Debian's `postgresql` package) in a temporary directory, run as
/// the `postgres` user when the tests run as root; stopped when dropped.
struct Postgres {
    child: Child,
    port: u16,
    stop: Command,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions.flatten().map(|v| v.path().join("bin")).find(|b| b.join("initdb").exists())
            })
            .expect("no Postgres server: install Debian's postgresql (cargo xtask test does)");
        let root = Command::new("id").arg("-u").output().unwrap().stdout.starts_with(b"0\n");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let as_postgres = |program: PathBuf| {
            if root {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            } else {
                Command::new(program)
            }
        };
        if root {
            let chown = Command::new("chown").arg("-R").arg("postgres").arg(dir.path()).status();
            assert!(chown.unwrap().success());
        }
        let init = as_postgres(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = as_postgres(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stop = as_postgres(bin.join("pg_ctl"));
        stop.args(["stop", "-m", "immediate", "-D"]).arg(&data);
        let server = Self { child, port, stop, _dir: dir };
        // Up once it accepts logins, which pg_isready tells.
        wait_until("Postgres accepting logins", Duration::from_secs(30), || {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
                .status();
            ready.unwrap().success()
        });
        server
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop.output();
        let _ = self.child.wait();
    }
}

/// The page's files go out compressed, from the `<file>.br` or `<file>.gz` beside them, to a
/// client that takes brotli or gzip, and plain to one that takes neither; nothing outside the
/// directory is served. Files built into the program go out the same way; every answer has an
/// ETag that a revalidation is answered 304 to, and a file named by its hash may be kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_go_out_precompressed_to_clients_that_take_it() {
    let tmp = tempfile::tempdir().unwrap();
    let assets = tmp.path().join("assets");
    std::fs::create_dir(&assets).unwrap();
    let script = "console.log('kinema');\n".repeat(200);
    std::fs::write(assets.join("app.js"), &script).unwrap();
    let zipped = b"\x1f\x8b pretend gzip".to_vec();
    std::fs::write(assets.join("app.js.gz"), &zipped).unwrap();
    let brotli = b"pretend brotli".to_vec();
    std::fs::write(assets.join("app.js.br"), &brotli).unwrap();
    let mut config = config(&tmp.path().join("relay"), None, Limits::default());
    config.assets = kinema_relay::Assets::Dir(assets);
    let relay = kinema_relay::start(config).await.unwrap();
    let get =
        |path: &'static str, encoding: Option<&'static str>| get_at(relay.http, path, encoding, "");
    let (head, body) = get("/app.js", Some("gzip, br")).await;
    assert!(
        head.contains("content-encoding: br") && head.contains("vary: accept-encoding"),
        "{head}"
    );
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert_eq!(body, brotli);
    let (head, body) = get("/app.js", Some("gzip, br;q=0")).await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(body, zipped);
    let (head, body) = get("/app.js", Some("gzip;q=0")).await;
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(body, script.as_bytes());
    let (head, body) = get("/app.js", None).await;
    assert!(
        !head.contains("content-encoding") && head.contains("cache-control: no-cache"),
        "{head}"
    );
    assert_eq!(body, script.as_bytes());
    let etag = format!("etag: \"{}\"", kinema_chain::Hash::digest(script.as_bytes()));
    assert!(head.contains(&etag), "{head}");
    let (head, _) = get("/../relay/relay.db", Some("gzip")).await;
    assert!(head.starts_with("http/1.1 400") || head.starts_with("http/1.1 404"), "{head}");

    static FILES: &[kinema_relay::StaticFile] = &[
        kinema_relay::StaticFile {
            path: "index.html",
            bytes: b"<!doctype html><title>app</title>",
            blake3: "aa",
            gzip: None,
            brotli: None,
        },
        kinema_relay::StaticFile {
            path: "app_bg.0123456789abcdef.wasm",
            bytes: b"\0asm\x01\0\0\0",
            blake3: "bb",
            gzip: Some(b"\x1f\x8b pretend gzip"),
            brotli: None,
        },
    ];
    let embedded = kinema_relay::start(kinema_relay::Config {
        assets: kinema_relay::Assets::Embedded(FILES),
        ..crate::relay::config(&tmp.path().join("relay2"), None, Limits::default())
    })
    .await
    .unwrap();
    let (head, body) = get_at(embedded.http, "/", Some("gzip, br"), "").await;
    assert!(head.starts_with("http/1.1 200") && head.contains("etag: \"aa\""), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    assert_eq!(body, FILES[0].bytes);
    let (head, body) = get_at(embedded.http, "/", None, "If-None-Match: \"aa\"\r\n").await;
    assert!(head.starts_with("http/1.1 304"), "{head}");
    assert!(body.is_empty());
    let wasm = "/app_bg.0123456789abcdef.wasm";
    let (head, body) = get_at(embedded.http, wasm, Some("gzip"), "").await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("etag: \"bb-gzip\""), "{head}");
    assert!(head.contains("cache-control: public, max-age=31536000, immutable"), "{head}");
    assert!(head.contains("content-type: application/wasm"), "{head}");
    assert_eq!(body, FILES[1].gzip.unwrap());
    let (head, _) = get_at(embedded.http, "/nothing.js", None, "").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
}

/// `GET path` from the relay at `at`, with `Accept-Encoding: encoding` and `extra` header
/// lines: the answer's head (lowercase) and body.
async fn get_at(
    at: std::net::SocketAddr,
    path: &str,
    encoding: Option<&str>,
    extra: &str,
) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: kinema\r\nConnection: close\r\n{extra}");
    if let Some(encoding) = encoding {
        request += &format!("Accept-Encoding: {encoding}\r\n");
    }
    stream.write_all(format!("{request}\r\n").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_lowercase();
    (head, answer[split + 4..].to_vec())
}

/// A content's swarm takes a tab only from the tab itself, and only while it is connected:
/// unsigned, signed by another key, or from a peer that is not there, a join is refused; a
/// leave signed by another key takes nobody out.
#[tokio::test]
async fn only_a_connected_tab_joins_a_swarm_and_only_it_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay(dir.path(), None, Limits::default()).await;
    let relay_id = relay.p2p.peer_id();
    let at =
        relay.p2p.listening().await.into_iter().find(|a| !a.to_string().contains("/ws")).unwrap();
    let key = p2p::keypair_from_seed([91; 32]).unwrap();
    let (tab, _link) =
        p2p::start(P2pConfig { peers: vec![at.clone()], ..P2pConfig::new(key.clone()) }).unwrap();
    tokio::time::timeout(Duration::from_secs(20), tab.connected_to(1)).await.unwrap();
    let absent = p2p::keypair_from_seed([92; 32]).unwrap();
    let content = kinema_chain::Hash([5; 32]);
    let address_of =
        |peer: libp2p::PeerId| format!("{at}/p2p/{relay_id}/p2p-circuit/webrtc/p2p/{peer}");
    let url = |field: &str, address: &str, signer: &libp2p::identity::Keypair| {
        let now = api::now_ms();
        let statement = api::swarm_statement(&content, field == "leave", address, now);
        let sig = hex::encode(signer.sign(&statement).unwrap());
        let address = address.replace('/', "%2F");
        format!("{}/api/v1/swarms/{content}?{field}={address}&at={now}&sig={sig}", relay.url())
    };
    let mine = address_of(tab.peer_id());
    let theirs = address_of(absent.public().to_peer_id());

    let unsigned =
        format!("{}/api/v1/swarms/{content}?join={}", relay.url(), mine.replace('/', "%2F"));
    assert_eq!(call("GET", unsigned, None).await.status, 400);
    assert_eq!(call("GET", url("join", &mine, &absent), None).await.status, 403, "another key");
    let answer = call("GET", url("join", &theirs, &absent), None).await;
    assert_eq!(answer.status, 403, "not connected: {}", String::from_utf8_lossy(&answer.body));
    assert_eq!(call("GET", url("join", &mine, &key), None).await.status, 200);
    assert_eq!(call("GET", url("leave", &mine, &absent), None).await.status, 403);
    let heard = call("GET", format!("{}/api/v1/swarms/{content}", relay.url()), None).await;
    assert_eq!(heard.json()["peers"], serde_json::json!([mine]));
    assert_eq!(call("GET", url("leave", &mine, &key), None).await.status, 200);
    let heard = call("GET", format!("{}/api/v1/swarms/{content}", relay.url()), None).await;
    assert_eq!(heard.json()["peers"], serde_json::json!([]));
}
