//! A client of the chain RPC (kinema-node's `rpc`) for the programs that are not validators:
//! the market's workers, verifiers and uploaders, the relay (its chain events and faucet) and
//! the browser app. JSON over HTTP with reqwest (the browser's `fetch` on wasm32); every error
//! names the request and carries the node's reason.

#[cfg(not(target_arch = "wasm32"))]
use std::time::Duration;

use borsh::BorshDeserialize;
use kinema_chain::crypto::SecretKey;
use kinema_chain::light::LightClient;
use kinema_chain::rpc::{
    AccountReply, BlockReply, ErrorReply, JobReply, StateReply, StatusReply, SubmitReply,
    SubmitRequest, ValidatorSetReply,
};
use kinema_chain::tx::{Call, Tx};
use kinema_chain::{Address, Hash, encode};
use serde::de::DeserializeOwned;

/// Answers not ready within this are given up.
#[cfg(not(target_arch = "wasm32"))]
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer (no connection, a bad URL, a timeout).
    #[error("{url}: no answer: {why}")]
    Send {
        /// What was asked.
        url: String,
        /// Why.
        why: String,
    },
    /// The node refused, with its reason.
    #[error("{url}: {status}: {error}")]
    Refused {
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The node's reason.
        error: String,
    },
    /// The answer is not what the RPC says it is.
    #[error("{url}: unexpected answer: {why}")]
    Decode {
        /// What was asked.
        url: String,
        /// Why.
        why: String,
    },
}

/// A chain node's RPC.
#[derive(Debug, Clone)]
pub struct ChainClient {
    base: String,
    http: reqwest::Client,
}

impl ChainClient {
    /// The RPC at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(ClientError::Send {
                url: base,
                why: "expected an http:// URL such as http://127.0.0.1:26650".into(),
            });
        }
        #[cfg(not(target_arch = "wasm32"))]
        let builder = reqwest::Client::builder().timeout(TIMEOUT);
        // In a browser, `fetch` has its own.
        #[cfg(target_arch = "wasm32")]
        let builder = reqwest::Client::builder();
        let http = builder.build().map_err(|e| ClientError::Send {
            url: base.clone(),
            why: format!("no HTTP client: {e}"),
        })?;
        Ok(Self { base, http })
    }

    /// The RPC's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn request<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let failed = |e: reqwest::Error| ClientError::Send { url: url.clone(), why: e.to_string() };
        let request = match body {
            Some(body) => {
                self.http.post(&url).header("content-type", "application/json").body(body)
            }
            None => self.http.get(&url),
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(failed)?;
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorReply>(&bytes)
                .map(|r| r.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(ClientError::Refused { url, status: status.as_u16(), error });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { url, why: e.to_string() })
    }

    /// `GET /api/v1/status`.
    pub async fn status(&self) -> Result<StatusReply, ClientError> {
        self.request("/api/v1/status", None).await
    }

    /// `GET /api/v1/accounts/{address}`.
    pub async fn account(&self, address: &Address) -> Result<AccountReply, ClientError> {
        self.request(&format!("/api/v1/accounts/{address}"), None).await
    }

    /// `GET /api/v1/blocks/{height}`: a block with its certificate.
    pub async fn block(&self, height: u64) -> Result<BlockReply, ClientError> {
        self.request(&format!("/api/v1/blocks/{height}"), None).await
    }

    /// `GET /api/v1/validator-sets/{epoch}`: an epoch's validators with their state proof.
    pub async fn validator_set(&self, epoch: u64) -> Result<ValidatorSetReply, ClientError> {
        self.request(&format!("/api/v1/validator-sets/{epoch}"), None).await
    }

    /// `GET /api/v1/jobs/{id}`.
    pub async fn job(&self, id: u64) -> Result<JobReply, ClientError> {
        self.request(&format!("/api/v1/jobs/{id}"), None).await
    }

    /// `GET /api/v1/state/{key}`: what state key `key` holds at the head, with its proof
    /// (unchecked: `StateReply::check` against a verified root).
    pub async fn state(&self, key: &[u8]) -> Result<StateReply, ClientError> {
        self.request(&format!("/api/v1/state/{}", hex::encode(key)), None).await
    }

    /// What state key `key` holds at the head, decoded as a contract stored it.
    pub async fn read<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, ClientError> {
        let path = format!("/api/v1/state/{}", hex::encode(key));
        let reply = self.state(key).await?;
        let url = format!("{}{path}", self.base);
        let decode = |why: String| ClientError::Decode { url: url.clone(), why };
        reply
            .value
            .map(|value| {
                let bytes = hex::decode(value).map_err(|e| decode(e.to_string()))?;
                kinema_chain::decode(&bytes).map_err(|e| decode(e.to_string()))
            })
            .transpose()
    }

    /// A light client of the chain whose genesis block hashes to `genesis` (a hash the user
    /// trusts, never the RPC's word).
    pub async fn light_client(&self, genesis: Hash) -> Result<LightClient, String> {
        let block = self.block(0).await.map_err(|e| e.to_string())?;
        let set = self.validator_set(0).await.map_err(|e| e.to_string())?;
        LightClient::new(&block, set, genesis).map_err(|e| format!("the genesis: {e}"))
    }

    /// The state root of the block at `height`, as `client` verified it: `client` is moved to
    /// the epoch of that height first (each next set on the certificate of the epoch's last
    /// block and a state proof).
    pub async fn verified_root(
        &self,
        client: &mut LightClient,
        height: u64,
    ) -> Result<Hash, String> {
        let length = client.epoch_length();
        while height > (client.epoch() + 1) * length {
            let last =
                self.block((client.epoch() + 1) * length).await.map_err(|e| e.to_string())?;
            let next = self.validator_set(client.epoch() + 1).await.map_err(|e| e.to_string())?;
            client
                .follow_epoch(&last, next)
                .map_err(|e| format!("following the validators: {e}"))?;
        }
        let block = self.block(height).await.map_err(|e| e.to_string())?;
        let verified = client.verify_block(&block).map_err(|e| format!("block {height}: {e}"))?;
        Ok(verified.state_root)
    }

    /// What state key `key` holds at the head, checked: its proof must show it under the
    /// root `client` verified for the reply's height. The value's bytes (a contract's borsh)
    /// and that height.
    pub async fn read_proved(
        &self,
        client: &mut LightClient,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, u64), String> {
        let reply = self.state(key).await.map_err(|e| e.to_string())?;
        let root = self.verified_root(client, reply.height).await?;
        let value = reply.check(key, &root).map_err(|e| format!("state {}: {e}", reply.key))?;
        Ok((value, reply.height))
    }

    /// `POST /api/v1/txs`.
    pub async fn submit(
        &self,
        tx: &kinema_chain::tx::SignedTx,
    ) -> Result<SubmitReply, ClientError> {
        let request = SubmitRequest { tx: hex::encode(encode(tx)) };
        let body = serde_json::to_vec(&request).map_err(|e| ClientError::Decode {
            url: format!("{}/api/v1/txs", self.base),
            why: e.to_string(),
        })?;
        self.request("/api/v1/txs", Some(body)).await
    }
}

/// An account that sends transactions through a [`ChainClient`], keeping track of its nonces.
#[derive(Debug)]
pub struct Signer {
    client: ChainClient,
    key: SecretKey,
    chain_id: String,
    /// The nonce of the next transaction, once known.
    next: Option<u64>,
}

impl Signer {
    /// Sends as `key` on the chain `client` reaches.
    pub async fn new(client: ChainClient, key: SecretKey) -> Result<Self, ClientError> {
        let chain_id = client.status().await?.chain_id;
        Ok(Self { client, key, chain_id, next: None })
    }

    /// The signer's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The client it sends through.
    pub fn client(&self) -> &ChainClient {
        &self.client
    }

    /// Signs `call` with `fee` at the next nonce and submits it. A nonce the node refuses (a
    /// transaction of this account sent elsewhere, or one that never made it) is read again
    /// from the chain and the transaction sent once more.
    pub async fn send(&mut self, call: Call, fee: u64) -> Result<SubmitReply, ClientError> {
        for attempt in 0..2 {
            let nonce = match self.next {
                Some(n) if attempt == 0 => n,
                _ => self.client.account(&self.key.address()).await?.nonce,
            };
            let tx = Tx {
                chain_id: self.chain_id.clone(),
                signer: self.key.public(),
                nonce,
                fee,
                call: call.clone(),
            };
            match self.client.submit(&tx.sign(&self.key)).await {
                Ok(reply) => {
                    self.next = Some(nonce + 1);
                    return Ok(reply);
                }
                Err(ClientError::Refused { error, .. })
                    if attempt == 0 && error.contains("nonce") =>
                {
                    self.next = None;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// Whether the transaction `reply` names is committed (its sender's nonce is past it).
    pub async fn committed(&self, reply: &SubmitReply) -> Result<bool, ClientError> {
        self.client.committed(reply).await
    }
}

impl ChainClient {
    /// Whether the transaction `reply` names is committed (its sender's nonce is past it).
    pub async fn committed(&self, reply: &SubmitReply) -> Result<bool, ClientError> {
        Ok(self.account(&reply.sender).await?.nonce > reply.nonce)
    }

    /// Waits until the transaction `reply` names is committed, or [`COMMIT_WAIT`] passes.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn wait_committed(&self, reply: &SubmitReply) -> Result<(), ClientError> {
        let started = std::time::Instant::now();
        while !self.committed(reply).await? {
            if started.elapsed() > COMMIT_WAIT {
                return Err(ClientError::Send {
                    url: format!("{}/api/v1/accounts/{}", self.base, reply.sender),
                    why: format!("transaction {} was not committed in {COMMIT_WAIT:?}", reply.hash),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

/// How long [`ChainClient::wait_committed`] waits.
#[cfg(not(target_arch = "wasm32"))]
pub const COMMIT_WAIT: Duration = Duration::from_secs(120);
