//! Running an [`Engine`] on tokio: its timers, a [`Transport`] to its peers, and the commands
//! of whoever holds its [`NodeHandle`] (the RPC, tests).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use super::{Engine, Output, Peer, Status, Timer, Topic};
use crate::mempool::Refusal;
use crate::store::{Head, Store};
use kinema_chain::execute::Rejection;
use kinema_chain::tx::{SignedTx, VerifiedTx};
use kinema_chain::{Error, Hash};

/// Messages a peer's inbox holds at most; more are dropped (consensus re-sends what matters).
pub const INBOX: usize = 4096;

/// How a node reaches its peers.
pub trait Transport: Send + 'static {
    /// Sends `bytes` to every peer following `topic`.
    fn broadcast(&mut self, topic: Topic, bytes: Vec<u8>);
    /// Sends `bytes` to `to`.
    fn send(&mut self, to: Peer, bytes: Vec<u8>);
    /// The next message from a peer; `None` once the transport is closed.
    fn recv(&mut self) -> impl Future<Output = Option<(Peer, Arc<[u8]>)>> + Send;
    /// Stops listening to `peer`, which sent what only a liar sends.
    fn penalize(&mut self, peer: Peer) {
        let _ = peer;
    }
}

type Inbox = mpsc::Sender<(Peer, Arc<[u8]>)>;

/// An in-process network: every member receives what any other broadcasts. The chain's
/// consensus tests and its single-validator benchmark run over one.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<HubInner>>,
}

#[derive(Debug, Default)]
struct HubInner {
    next: u64,
    members: BTreeMap<Peer, Inbox>,
}

impl Hub {
    /// A new, empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Joins the hub as a new peer.
    pub fn join(&self) -> Link {
        let (sender, inbox) = mpsc::channel(INBOX);
        let mut inner = self.lock();
        let peer = Peer(inner.next);
        inner.next += 1;
        inner.members.insert(peer, sender);
        Link { hub: self.clone(), peer, inbox }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        // A panic while holding this lock leaves nothing half-done: recover the data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deliver(&self, from: Peer, to: Option<Peer>, bytes: Vec<u8>) {
        let bytes: Arc<[u8]> = bytes.into();
        for (peer, inbox) in &self.lock().members {
            let wanted = match to {
                Some(to) => *peer == to,
                None => *peer != from,
            };
            if wanted {
                // A full inbox drops it: consensus re-sends what matters.
                let _ = inbox.try_send((from, bytes.clone()));
            }
        }
    }
}

/// A member's end of a [`Hub`]; dropping it leaves the hub.
#[derive(Debug)]
pub struct Link {
    hub: Hub,
    peer: Peer,
    inbox: mpsc::Receiver<(Peer, Arc<[u8]>)>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.hub.lock().members.remove(&self.peer);
    }
}

impl Transport for Link {
    /// Every member hears every topic.
    fn broadcast(&mut self, _topic: Topic, bytes: Vec<u8>) {
        self.hub.deliver(self.peer, None, bytes);
    }

    fn send(&mut self, to: Peer, bytes: Vec<u8>) {
        self.hub.deliver(self.peer, Some(to), bytes);
    }

    fn recv(&mut self) -> impl Future<Output = Option<(Peer, Arc<[u8]>)>> + Send {
        self.inbox.recv()
    }
}

#[derive(Debug)]
enum Command {
    Submit(Box<VerifiedTx>, oneshot::Sender<Result<Result<Hash, Refusal>, String>>),
    Status(oneshot::Sender<Result<Status, String>>),
}

/// A running node's task; stop it with [`NodeHandle::stop`]. It dereferences to a
/// [`NodeClient`].
#[derive(Debug)]
pub struct NodeHandle {
    client: NodeClient,
    /// `None` once [`NodeHandle::join`] saw it end.
    task: Option<JoinHandle<Result<(), Error>>>,
}

/// What talks to a running node: submit transactions, read its status and store, watch its
/// head. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeClient {
    commands: mpsc::Sender<Command>,
    store: Arc<Store>,
    head: watch::Receiver<Head>,
}

impl std::ops::Deref for NodeHandle {
    type Target = NodeClient;

    fn deref(&self) -> &NodeClient {
        &self.client
    }
}

fn stopped(e: impl std::fmt::Display) -> Error {
    Error::Node { what: "the node has stopped", detail: e.to_string() }
}

impl NodeHandle {
    /// Runs `engine` over `transport` on the current tokio runtime; `store` is the engine's
    /// store, read directly by `NodeHandle::store`'s users.
    pub fn spawn<E: Engine, T: Transport>(
        engine: E,
        transport: T,
        store: Arc<Store>,
    ) -> Result<Self, Error> {
        let head = store.head()?.ok_or_else(|| Error::Node {
            what: "starting a node",
            detail: "its store has no genesis block".into(),
        })?;
        let (head_tx, head_rx) = watch::channel(head);
        let (commands, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run(engine, transport, rx, head_tx));
        Ok(Self { client: NodeClient { commands, store, head: head_rx }, task: Some(task) })
    }

    /// A client of the node.
    pub fn client(&self) -> NodeClient {
        self.client.clone()
    }

    /// Stops the node (as a crash would: nothing is flushed that was not already durable)
    /// and returns how it ended.
    pub async fn stop(self) -> Result<(), Error> {
        let Some(task) = self.task else { return Ok(()) };
        task.abort();
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(stopped(e)),
        }
    }

    /// Whether the node's task has ended (an error stopped it).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until the node's task ends by itself (an error stopped it).
    pub async fn join(&mut self) -> Result<(), Error> {
        let Some(task) = self.task.as_mut() else { return Ok(()) };
        let ended = task.await;
        self.task = None;
        match ended {
            Ok(result) => result,
            Err(e) => Err(stopped(e)),
        }
    }
}

impl NodeClient {
    /// The node's store (blocks, certificates, state and proofs).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Follows the node's committed head.
    pub fn head(&self) -> watch::Receiver<Head> {
        self.head.clone()
    }

    /// Admits a transaction (its canonical bytes) into the node's mempool and gossips it. The
    /// decoding and the signature check happen here, on the caller's task, not the node's.
    pub async fn submit(&self, bytes: Vec<u8>) -> Result<Result<Hash, Refusal>, Error> {
        let tx = match kinema_chain::decode::<SignedTx>(&bytes) {
            Ok(tx) => tx,
            Err(e) => return Ok(Err(Refusal::Malformed(e.to_string()))),
        };
        let Ok(tx) = VerifiedTx::new(tx) else {
            return Ok(Err(Refusal::Rejected(Rejection::BadSignature)));
        };
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Submit(Box::new(tx), reply)).await.map_err(stopped)?;
        answer.await.map_err(stopped)?.map_err(stopped)
    }

    /// Where the node stands.
    pub async fn status(&self) -> Result<Status, Error> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status(reply)).await.map_err(stopped)?;
        answer.await.map_err(stopped)?.map_err(stopped)
    }

    /// Waits until the node's head reaches `height`.
    pub async fn wait_for(&self, height: u64) -> Result<Head, Error> {
        let mut head = self.head.clone();
        let reached = head.wait_for(|h| h.height >= height).await.map_err(stopped)?;
        Ok(reached.clone())
    }
}

async fn run<E: Engine, T: Transport>(
    mut engine: E,
    mut transport: T,
    mut commands: mpsc::Receiver<Command>,
    head: watch::Sender<Head>,
) -> Result<(), Error> {
    let mut timers: HashMap<Timer, Instant> = HashMap::new();
    let outputs = engine.start();
    apply(outputs, &mut transport, &mut timers, &head)?;
    loop {
        let next = timers.values().min().copied();
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        tokio::select! {
            command = commands.recv() => match command {
                None => return Ok(()),
                Some(Command::Submit(tx, reply)) => {
                    let result = engine.submit(*tx);
                    let (answer, outputs) = match result {
                        Ok((answer, outputs)) => (Ok(answer), Ok(outputs)),
                        Err(e) => (Err(e.to_string()), Err(e)),
                    };
                    let _ = reply.send(answer);
                    apply(outputs, &mut transport, &mut timers, &head)?;
                }
                Some(Command::Status(reply)) => {
                    let _ = reply.send(engine.status().map_err(|e| e.to_string()));
                }
            },
            message = transport.recv() => {
                let Some((from, bytes)) = message else { return Ok(()) };
                let outputs = engine.on_message(from, &bytes);
                apply(outputs, &mut transport, &mut timers, &head)?;
            }
            () = tokio::time::sleep_until(next.unwrap_or(far)), if next.is_some() => {
                let now = Instant::now();
                let due: Vec<Timer> =
                    timers.iter().filter(|(_, at)| **at <= now).map(|(t, _)| *t).collect();
                for timer in due {
                    timers.remove(&timer);
                    let outputs = engine.on_timer(timer);
                    apply(outputs, &mut transport, &mut timers, &head)?;
                }
            }
        }
    }
}

fn apply<T: Transport>(
    outputs: Result<Vec<Output>, Error>,
    transport: &mut T,
    timers: &mut HashMap<Timer, Instant>,
    head: &watch::Sender<Head>,
) -> Result<(), Error> {
    let outputs = outputs.inspect_err(|e| warn!("the node stops: {e}"))?;
    for output in outputs {
        match output {
            Output::Broadcast(topic, bytes) => transport.broadcast(topic, bytes),
            Output::Send(to, bytes) => transport.send(to, bytes),
            Output::Penalize(peer) => transport.penalize(peer),
            Output::Schedule(timer, after) => {
                timers.insert(timer, Instant::now() + after);
            }
            Output::Cancel(timer) => {
                timers.remove(&timer);
            }
            Output::CancelAll => timers.retain(|timer, _| !timer.is_step()),
            Output::Committed(committed) => {
                head.send_replace(committed);
            }
        }
    }
    Ok(())
}
