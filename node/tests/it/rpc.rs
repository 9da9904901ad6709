//! The RPC over real HTTP: what it answers, its OpenAPI document (pinned by a snapshot), and
//! the 4xx it gives bad requests, each with a reason.

use std::net::SocketAddr;
use std::time::Duration;

use kinema_chain::block::{Validator, ValidatorSet};
use kinema_chain::state::Proof;
use kinema_chain::tx::{Account, Call, Tx};
use kinema_chain::{Address, Hash, decode, encode};
use kinema_contracts::jobs::{self, Ladder, PostArgs, Rung};
use kinema_contracts::system::JOBS;
use kinema_node::app::Genesis;
use kinema_node::consensus::node::{Hub, NodeHandle};
use kinema_node::consensus::{Config, start};
use kinema_node::rpc;
use kinema_test_support::eventually;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{CHAIN, FEE, key};

/// One HTTP/1.1 exchange: the status and the JSON body.
async fn http(at: SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: kinema\r\nConnection: close\r\n");
    if let Some(body) = body {
        request += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    if let Some(body) = body {
        // A server may answer (413) before reading all of an oversized body.
        let _ = stream.write_all(body).await;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())))
}

/// A request and what it must get: method, path, body, status, a phrase of the reason.
type Case<'a> = (&'a str, &'a str, Option<Vec<u8>>, u16, &'a str);

async fn node() -> (tempfile::TempDir, NodeHandle, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let validator = key(100);
    let set =
        ValidatorSet::new(vec![Validator { public_key: validator.public(), power: 10 }]).unwrap();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        time_ms: 0,
        balances: vec![(key(1).address(), 100 * FEE)],
        validators: set,
        epoch_length: 1000,
    };
    let mut config = Config::new(validator);
    config.empty_block_interval = Duration::from_millis(50);
    let path = dir.path().join("chain.redb");
    let node = start(&path, &genesis, config, Hub::new().join()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let router = rpc::router(node.client(), CHAIN);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (dir, node, at)
}

fn tx(nonce: u64, amount: u64) -> Tx {
    let call = Call::Transfer { to: key(2).address(), amount };
    Tx { chain_id: CHAIN.into(), signer: key(1).public(), nonce, fee: FEE, call }
}

fn submit_body(bytes: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "tx": hex::encode(bytes) })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpc_answers_and_refuses_with_reasons() {
    let (_dir, node, at) = node().await;
    node.wait_for(1).await.unwrap();

    let (code, status) = http(at, "GET", "/api/v1/status", None).await;
    assert_eq!(code, 200, "{status}");
    for field in ["height", "finalized_height", "state_root", "validators", "chain_id"] {
        assert!(status.get(field).is_some(), "no {field}: {status}");
    }

    // A transfer goes through; the account comes with a proof against the state root.
    let signed = tx(0, 1234).sign(&key(1));
    let (code, reply) = http(at, "POST", "/api/v1/txs", Some(&submit_body(&encode(&signed)))).await;
    assert_eq!(code, 200, "{reply}");
    assert_eq!(reply["hash"], signed.hash().to_string());
    let to = key(2).address();
    let account = eventually("the transfer's balance", Duration::from_secs(60), || async {
        let (code, account) = http(at, "GET", &format!("/api/v1/accounts/0x{to}"), None).await;
        assert_eq!(code, 200, "{account}");
        (account["balance"] == 1234).then_some(account)
    })
    .await;
    let proof: Proof = decode(&hex::decode(account["proof"].as_str().unwrap()).unwrap()).unwrap();
    let root: Hash = account["state_root"].as_str().unwrap().parse().unwrap();
    let expected = Account { balance: 1234, ..Default::default() };
    proof.verify_account(root, &to, Some(&expected)).unwrap();
    let stranger: Address = key(77).address();
    let (_, nobody) = http(at, "GET", &format!("/api/v1/accounts/{stranger}"), None).await;
    assert_eq!(nobody["exists"], false);
    let proof: Proof = decode(&hex::decode(nobody["proof"].as_str().unwrap()).unwrap()).unwrap();
    let root: Hash = nobody["state_root"].as_str().unwrap().parse().unwrap();
    proof.verify_account(root, &stranger, None).unwrap();
    // What a light client checks of a reply: against the root it verified, exactly as sent.
    let reply: kinema_chain::rpc::AccountReply = serde_json::from_value(account.clone()).unwrap();
    reply.check(&root).unwrap();
    let lie = |change: &dyn Fn(&mut kinema_chain::rpc::AccountReply)| {
        let mut lied = reply.clone();
        change(&mut lied);
        lied.check(&root).unwrap_err().to_string()
    };
    assert!(lie(&|r| r.balance += 1).contains("proof"));
    assert!(lie(&|r| r.nonce += 1).contains("proof"));
    assert!(lie(&|r| r.exists = false).contains("proof"));
    assert!(lie(&|r| r.state_root = Hash([7; 32])).contains("state root"));
    assert!(reply.check(&Hash([7; 32])).unwrap_err().to_string().contains("state root"));

    // Blocks come with certificates.
    let (code, block) = http(at, "GET", "/api/v1/blocks/1", None).await;
    assert_eq!(code, 200, "{block}");
    assert!(block["certificate"]["signatures"].as_array().is_some_and(|s| s.len() == 1));

    // Epoch 0's validators, with a proof against the genesis state.
    let (code, set) = http(at, "GET", "/api/v1/validator-sets/0", None).await;
    assert_eq!(code, 200, "{set}");
    assert_eq!(set["validators"].as_array().map(Vec::len), Some(1));
    let (code, later) = http(at, "GET", "/api/v1/validator-sets/5", None).await;
    assert_eq!(code, 404, "{later}");

    // A market job, and the contract's state read raw with its proof.
    let ladder = Ladder {
        codec: "h264".into(),
        preset: "veryfast".into(),
        crf: 23,
        rungs: vec![Rung { name: "240p".into(), width: 426, height: 240, max_kbps: 400 }],
    };
    let args = PostArgs {
        source: [4; 32],
        segments: 2,
        ladder,
        price: 100,
        deadline: 10,
        verify_bps: 2_000,
    };
    let call =
        Call::Contract { contract: Address(JOBS), method: "post".into(), args: encode(&args) };
    let post = Tx { chain_id: CHAIN.into(), signer: key(1).public(), nonce: 1, fee: FEE, call };
    let (code, reply) =
        http(at, "POST", "/api/v1/txs", Some(&submit_body(&encode(&post.sign(&key(1)))))).await;
    assert_eq!(code, 200, "{reply}");
    let job = eventually("the job", Duration::from_secs(60), || async {
        let (code, job) = http(at, "GET", "/api/v1/jobs/0", None).await;
        (code == 200).then_some(job)
    })
    .await;
    assert_eq!(job["state"], "open", "{job}");
    assert_eq!(job["results"].as_array().map(Vec::len), Some(2), "{job}");
    assert_eq!(job["results"][0]["state"], "queued", "{job}");
    let latest = jobs::latest_key(&key(1).address().0);
    let (code, state) =
        http(at, "GET", &format!("/api/v1/state/{}", hex::encode(&latest)), None).await;
    assert_eq!(code, 200, "{state}");
    let value = hex::decode(state["value"].as_str().unwrap()).unwrap();
    assert_eq!(decode::<u64>(&value).unwrap(), 0);
    let proof: Proof = decode(&hex::decode(state["proof"].as_str().unwrap()).unwrap()).unwrap();
    let root: Hash = state["state_root"].as_str().unwrap().parse().unwrap();
    proof.verify(root, &latest, Some(&value)).unwrap();
    // The same check as a light client makes of any state reply, and the lies it catches.
    let reply: kinema_chain::rpc::StateReply = serde_json::from_value(state.clone()).unwrap();
    assert_eq!(reply.check(&latest, &root).unwrap(), Some(value.clone()));
    let lie = |change: &dyn Fn(&mut kinema_chain::rpc::StateReply)| {
        let mut lied = reply.clone();
        change(&mut lied);
        lied.check(&latest, &root).unwrap_err().to_string()
    };
    assert!(lie(&|r| r.value = Some("01".repeat(8))).contains("proof"));
    assert!(lie(&|r| r.value = None).contains("proof"));
    assert!(lie(&|r| r.key = "00".into()).contains("key"));
    assert!(reply.check(b"jobs/other", &root).unwrap_err().to_string().contains("key"));
    assert!(reply.check(&latest, &Hash([7; 32])).unwrap_err().to_string().contains("state root"));

    // Bad requests: each a 4xx whose JSON says what is wrong.
    let too_long = format!("/api/v1/state/{}", "ab".repeat(rpc::MAX_KEY + 1));
    let mut forged = tx(2, 5).sign(&key(1));
    forged.tx.fee += 1;
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/api/v1/accounts/zz", None, 400, "not a valid address"),
        ("GET", "/api/v1/blocks/abc", None, 400, "not a block height"),
        ("GET", "/api/v1/blocks/999999", None, 404, "no block at height 999999"),
        ("GET", "/api/v1/nothing", None, 404, "no such endpoint"),
        ("GET", "/api/v1/jobs/abc", None, 400, "not a job number"),
        ("GET", "/api/v1/jobs/99", None, 404, "no job 99"),
        ("GET", "/api/v1/state/zz", None, 400, "not hex"),
        ("GET", &too_long, None, 400, "over 256"),
        ("POST", "/api/v1/txs", Some(b"{not json".to_vec()), 400, ""),
        ("POST", "/api/v1/txs", Some(br#"{"tx": "xyz"}"#.to_vec()), 400, "not hex"),
        ("POST", "/api/v1/txs", Some(submit_body(b"\x01\x02")), 422, "malformed transaction"),
        ("POST", "/api/v1/txs", Some(submit_body(&encode(&forged))), 422, "signature"),
        (
            "POST",
            "/api/v1/txs",
            Some(submit_body(&encode(&tx(7, 5).sign(&key(1))))),
            422,
            "nonce 7",
        ),
        (
            "POST",
            "/api/v1/txs",
            Some(submit_body(&encode(&tx(2, 1 << 60).sign(&key(1))))),
            422,
            "balance",
        ),
        ("POST", "/api/v1/txs", Some(vec![b' '; rpc::MAX_BODY + 1]), 413, ""),
    ];
    for (method, path, body, expected, reason) in cases {
        let (code, answer) = http(at, method, path, body.as_deref()).await;
        assert_eq!(code, expected, "{method} {path}: {answer}");
        let text = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_else(|| answer.as_str().unwrap_or_default());
        assert!(!text.is_empty(), "{method} {path}: no reason");
        assert!(text.contains(reason), "{method} {path}: {text:?} does not say {reason:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_endpoint_and_resolves() {
    let (_dir, _node, at) = node().await;
    let (code, doc) = http(at, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(code, 200);
    assert_eq!(doc, serde_json::to_value(rpc::openapi_document()).unwrap());
    // What clients rely on, pinned; the crate's version aside.
    let mut pinned = doc.clone();
    pinned["info"]["version"] = "[version]".into();
    insta::assert_snapshot!("rpc_openapi", serde_json::to_string_pretty(&pinned).unwrap());
    kinema_test_support::check_openapi(&doc);
    for path in [
        "/api/v1/status",
        "/api/v1/accounts/{address}",
        "/api/v1/blocks/{height}",
        "/api/v1/validator-sets/{epoch}",
        "/api/v1/txs",
        "/api/v1/openapi.json",
    ] {
        let item = doc["paths"][path].as_object().unwrap_or_else(|| panic!("{path} undocumented"));
        for (_, operation) in item {
            assert!(operation["responses"]["200"].is_object(), "{path}");
        }
    }
}
