//! The one task that owns the swarm. It answers [`Command`]s, drives the bitswap client and
//! server, and keeps the peer bookkeeping `swarm peers`, `id` and the connection manager need.
//!
//! Block-store work never runs here: lookups for the bitswap server run on blocking threads (at
//! most [`MAX_LOOKUPS`] batches at once) and received blocks go to one writer thread that
//! commits them in batches. A verified block is handed to its waiters at once and kept in
//! memory until the writer reports it stored, so wants meanwhile are answered from there and
//! readers never wait for an fsync; `Settle` waits for the writer (a DAG fetch does, before
//! its caller records a pin). Past [`MAX_PENDING_BYTES`] of such blocks, waiters get theirs
//! only once stored again, which bounds the memory and slows fetching to the disk's pace.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipfs_kit_bitswap::client::Client;
use ipfs_kit_bitswap::server::{Found, Server, Task};
use ipfs_kit_bitswap::{Event as BitswapEvent, WantType};
use ipfs_kit_block::{Block, Cid};
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{autonat, gossipsub, identify, kad, mdns, ping, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::autorelay;
use crate::bandwidth::Bandwidth;
use crate::provide::Provider;
use crate::pubsub::{PubsubMessage, Subscribers};
use crate::records::{self, Dht, Followup, Op, Ops};
use crate::swarm::{self, Behaviour, BehaviourEvent, KAD_LAN_PROTOCOL, KAD_PROTOCOL};
use crate::values::{Offer, Values};
use crate::{BlockStore, Command, Config, Error, Reachability, RoutingMode};

/// Server lookup batches running at once.
const MAX_LOOKUPS: usize = 4;
/// Bytes of received, not yet stored blocks past which they are handed out only once stored.
const MAX_PENDING_BYTES: usize = 64 << 20;

/// Received-block batches queued for the writer thread.
const STORE_QUEUE: usize = 64;
/// Provider lookups running at once (wants nobody connected has).
const MAX_PROVIDER_QUERIES: usize = 8;

/// A connection to a peer, as `swarm peers` lists it.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The peer.
    pub peer: PeerId,
    /// The connection's remote address.
    pub addr: Multiaddr,
    /// Whether we dialed.
    pub outbound: bool,
    /// The last ping round trip.
    pub latency: Option<Duration>,
}

/// What identify told us about a peer.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Its public key (protobuf encoding).
    pub public_key: Vec<u8>,
    /// Its listen addresses.
    pub addrs: Vec<Multiaddr>,
    /// Its agent version.
    pub agent_version: String,
    /// Its protocol version.
    pub protocol_version: String,
    /// The protocols it speaks.
    pub protocols: Vec<String>,
}

/// `bitswap stat`.
#[derive(Clone, Debug, Default)]
pub struct BitswapStat {
    /// Counters since start.
    pub stats: ipfs_kit_bitswap::Stats,
    /// Our wantlist.
    pub wantlist: Vec<Cid>,
    /// Connected bitswap peers.
    pub peers: Vec<PeerId>,
    /// Newly stored keys waiting to be announced (Kubo's `ProvideBufLen`).
    pub provide_queue: usize,
}

/// A `Settle` call: the writer count to reach, the failures that do not count, the reply.
type Settle = (u64, u64, oneshot::Sender<Result<(), String>>);

enum Stored {
    Done(Vec<Block>),
    Failed(Vec<Cid>, String),
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    store: Arc<dyn BlockStore>,
    client: Client,
    server: Server,
    waiters: HashMap<Cid, Vec<oneshot::Sender<Result<Block, String>>>>,
    /// Received blocks waiting for room in the writer's queue (bounded by the client's
    /// windows: only wanted blocks get here).
    unstored: std::collections::VecDeque<Vec<Block>>,
    /// Received blocks the writer has not yet finished with, and their bytes.
    pending: HashMap<Cid, Block>,
    pending_bytes: usize,
    /// Blocks given to the writer so far, and how many of them it has finished (stored or
    /// failed): FIFO, so a count reached means every block before it is done.
    received_seq: u64,
    settled_seq: u64,
    /// Writer failures so far (read by [`crate::Network::store_mark`]), and the last one's
    /// message.
    store_failures: Arc<AtomicU64>,
    last_store_failure: String,
    /// `Settle` calls waiting for the writer.
    settles: Vec<Settle>,
    lookups: JoinSet<(PeerId, Vec<(Task, Found)>)>,
    store_tx: std::sync::mpsc::SyncSender<Vec<Block>>,
    stored_rx: mpsc::Receiver<Stored>,
    dials: HashMap<ConnectionId, (Multiaddr, oneshot::Sender<Result<PeerId, Error>>)>,
    connections: HashMap<PeerId, Vec<(ConnectionId, Multiaddr, bool, Instant)>>,
    latency: HashMap<PeerId, Duration>,
    identities: HashMap<PeerId, Identity>,
    /// Provider lookups on either DHT instance (each want or `routing findprovs` runs on both).
    provider_queries: HashMap<(Dht, kad::QueryId), ProviderQuery>,
    /// Record, closest-peer and find-peer lookups (see `records`).
    ops: Ops,
    subscribers: Subscribers,
    pubsub_seq: u64,
    /// The pubsub value store (IPNS over pubsub).
    values: Values,
    /// Streams the node opens and accepts itself (fetch).
    control: libp2p_stream::Control,
    config: Config,
    provider: Provider,
    bandwidth: Arc<Bandwidth>,
    reachability: Reachability,
    relays: autorelay::Relays,
}

enum ProviderQuery {
    /// A want nobody connected has: dial whoever provides it.
    Want,
    /// `routing findprovs`, whose lookups on both instances share what they found, so each
    /// provider is sent once.
    Caller {
        limit: usize,
        found: Arc<std::sync::Mutex<HashSet<PeerId>>>,
        reply: mpsc::Sender<PeerInfo>,
    },
}

impl EventLoop {
    pub(crate) async fn new(
        config: Config,
        store: Arc<dyn BlockStore>,
        commands: mpsc::Receiver<Command>,
        bandwidth: Arc<Bandwidth>,
    ) -> Result<Self, Error> {
        let mut swarm = swarm::build(&config, bandwidth.clone())?;
        let provider = Provider::new(
            swarm.behaviour().stream.new_control(),
            *swarm.local_peer_id(),
            config.accelerated_provide,
        );
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| Error::Transport(format!("listen on {addr}: {e}")))?;
        }
        for addr in &config.announce {
            swarm.add_external_address(addr.clone());
        }
        let (store_tx, store_rx) = std::sync::mpsc::sync_channel::<Vec<Block>>(STORE_QUEUE);
        let (stored_tx, stored_rx) = mpsc::channel(STORE_QUEUE);
        let writer_store = store.clone();
        std::thread::Builder::new()
            .name("bitswap-store".into())
            .spawn(move || store_writer(writer_store, store_rx, stored_tx))
            .map_err(|e| Error::Transport(format!("start the block writer: {e}")))?;
        let control = swarm.behaviour().stream.new_control();
        let mut event_loop = EventLoop {
            client: Client::new(config.bitswap_client.clone()),
            server: Server::new(config.bitswap_server.clone()),
            swarm,
            commands,
            store,
            waiters: HashMap::new(),
            unstored: std::collections::VecDeque::new(),
            pending: HashMap::new(),
            pending_bytes: 0,
            received_seq: 0,
            settled_seq: 0,
            store_failures: Arc::new(AtomicU64::new(0)),
            last_store_failure: String::new(),
            settles: Vec::new(),
            lookups: JoinSet::new(),
            store_tx,
            stored_rx,
            dials: HashMap::new(),
            connections: HashMap::new(),
            latency: HashMap::new(),
            identities: HashMap::new(),
            provider_queries: HashMap::new(),
            ops: Ops::default(),
            subscribers: Subscribers::default(),
            pubsub_seq: 0,
            values: Values::default(),
            control,
            config,
            provider,
            bandwidth,
            reachability: Reachability::Unknown,
            relays: autorelay::Relays::default(),
        };
        // Wait until every listener is bound, so the addresses are known when start returns.
        let mut pending = event_loop.config.listen.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while pending > 0 {
            match tokio::time::timeout_at(deadline, event_loop.swarm.select_next_some()).await {
                Ok(SwarmEvent::NewListenAddr { address, .. }) => {
                    tracing::info!("swarm listening on {address}");
                    pending -= 1;
                }
                Ok(SwarmEvent::ListenerError { error, .. }) => {
                    return Err(Error::Transport(format!("listen: {error}")))
                }
                Ok(SwarmEvent::ListenerClosed { reason, .. }) => {
                    return Err(Error::Transport(format!("listener closed: {reason:?}")))
                }
                Ok(other) => event_loop.on_swarm_event(other),
                Err(_) => return Err(Error::Transport("listeners did not start in 10 s".into())),
            }
        }
        // Provider records carry the provider's external addresses, and go-libp2p-kad-dht
        // (Kubo) drops a provider record without any. With routing set explicitly and nothing
        // to announce, the listen addresses are what peers can reach (a private network);
        // "auto" leaves it to address discovery, since a confirmed external address would
        // also make it a DHT server.
        if event_loop.config.announce.is_empty()
            && matches!(
                event_loop.config.routing,
                RoutingMode::Server | RoutingMode::Client
            )
        {
            let listen: Vec<Multiaddr> = event_loop.swarm.listeners().cloned().collect();
            for addr in listen {
                event_loop.swarm.add_external_address(addr);
            }
        }
        for addr in event_loop.config.bootstrap.clone() {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                let b = event_loop.swarm.behaviour_mut();
                for kad in [b.kad.as_mut(), b.kad_lan.as_mut()].into_iter().flatten() {
                    kad.add_address(&peer, addr.clone());
                }
            }
            if let Err(e) = event_loop.swarm.dial(addr.clone()) {
                tracing::warn!("bootstrap dial {addr}: {e}");
            }
        }
        Ok(event_loop)
    }

    /// The writer's failure count, shared with the [`crate::Network`] handle.
    pub(crate) fn store_failures(&self) -> Arc<AtomicU64> {
        self.store_failures.clone()
    }

    /// A handle for opening streams of our own (ping).
    pub(crate) fn stream_control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    /// The pubsub value store, shared with the [`crate::Network`] handle.
    pub(crate) fn values(&self) -> Values {
        self.values.clone()
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.on_command(cmd),
                },
                Some(stored) = self.stored_rx.recv() => self.on_stored(stored),
                Some(done) = self.lookups.join_next(), if !self.lookups.is_empty() => {
                    if let Ok((peer, results)) = done {
                        for msg in self.server.complete(peer, results) {
                            self.swarm.behaviour_mut().bitswap.send(peer, msg);
                        }
                    }
                }
                Some(sent) = self.provider.senders.join_next(), if !self.provider.senders.is_empty() => {
                    match sent {
                        Ok((peer, result)) => self.provider.on_sent(Some(peer), result),
                        Err(e) => self.provider.on_sent(None, Err(e.to_string())),
                    }
                }
                _ = tick.tick() => self.on_tick(),
            }
            self.provider.poll(&mut self.swarm);
            self.flush_store();
            self.flush_client();
            self.pump_server();
        }
        tracing::info!("network stopped");
    }

    /// Hands received blocks to the writer thread as its queue has room; what does not fit
    /// waits here (the writer's next report wakes the loop to try again).
    fn flush_store(&mut self) {
        while let Some(batch) = self.unstored.pop_front() {
            match self.store_tx.try_send(batch) {
                Ok(()) => {}
                Err(std::sync::mpsc::TrySendError::Full(batch)) => {
                    self.unstored.push_front(batch);
                    break;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(batch)) => {
                    let cids = batch.iter().map(|b| *b.cid()).collect();
                    self.on_stored(Stored::Failed(cids, "the block writer stopped".into()));
                }
            }
        }
    }

    fn flush_client(&mut self) {
        for (peer, msg) in self.client.take_outbox() {
            self.swarm.behaviour_mut().bitswap.send(peer, msg);
        }
    }

    fn pump_server(&mut self) {
        let limit = self.server.config().max_outstanding_bytes;
        while self.lookups.len() < MAX_LOOKUPS {
            let bitswap = &self.swarm.behaviour().bitswap;
            let Some((peer, tasks)) = self.server.next_batch(|p| bitswap.queued_bytes(p) < limit)
            else {
                break;
            };
            let store = self.store.clone();
            let replace = self.server.config().max_block_size_replace_have as u64;
            self.lookups.spawn_blocking(move || {
                let results = tasks
                    .into_iter()
                    .map(|t| {
                        let found = lookup(&*store, &t, replace);
                        (t, found)
                    })
                    .collect();
                (peer, results)
            });
        }
    }

    fn on_tick(&mut self) {
        self.bandwidth.tick();
        let lost = self.client.tick(Instant::now());
        let running = self
            .provider_queries
            .values()
            .filter(|q| matches!(q, ProviderQuery::Want))
            .count();
        // Each want is looked up on both instances: a want costs up to two queries.
        for cid in lost
            .into_iter()
            .take(MAX_PROVIDER_QUERIES.saturating_sub(running) / 2)
        {
            self.find_providers(&cid, || ProviderQuery::Want);
        }
        self.trim_connections();
        let local = *self.swarm.local_peer_id();
        if let Some(gs) = self.swarm.behaviour_mut().gossipsub.as_mut() {
            self.subscribers.prune(gs, &self.values);
            self.subscribers
                .rebroadcast(gs, local, &mut self.pubsub_seq, &self.values);
        }
        self.waiters.retain(|_, w| {
            w.retain(|tx| !tx.is_closed());
            !w.is_empty()
        });
    }

    /// The connection manager: above the high-water mark, close the least recently opened
    /// connections outside their grace period until the low-water mark is reached.
    fn trim_connections(&mut self) {
        let (low, high) = (self.config.conn_low_water, self.config.conn_high_water);
        if self.connections.len() <= high {
            return;
        }
        let now = Instant::now();
        let mut candidates: Vec<(Instant, PeerId)> = self
            .connections
            .iter()
            .filter_map(|(p, conns)| {
                let newest = conns.iter().map(|c| c.3).max()?;
                (now.duration_since(newest) >= self.config.conn_grace).then_some((newest, *p))
            })
            .collect();
        candidates.sort();
        let excess = self.connections.len().saturating_sub(low);
        for (_, peer) in candidates.into_iter().take(excess) {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Takes in verified blocks: waiters get them now unless too many are waiting for the
    /// writer already, and the writer gets them as its queue has room.
    fn on_received(&mut self, blocks: Vec<Block>) {
        for block in &blocks {
            let early = self.pending_bytes < MAX_PENDING_BYTES;
            if self.pending.insert(*block.cid(), block.clone()).is_none() {
                self.pending_bytes += block.data().len();
            }
            if early {
                for w in self.waiters.remove(block.cid()).unwrap_or_default() {
                    let _ = w.send(Ok(block.clone()));
                }
            }
        }
        self.received_seq += blocks.len() as u64;
        self.unstored.push_back(blocks);
        self.flush_store();
    }

    fn unpend(&mut self, cid: &Cid) {
        if let Some(b) = self.pending.remove(cid) {
            self.pending_bytes -= b.data().len();
        }
    }

    fn on_stored(&mut self, stored: Stored) {
        let finished = match stored {
            Stored::Done(blocks) => {
                let cids: Vec<Cid> = blocks.iter().map(|b| *b.cid()).collect();
                for block in blocks {
                    // Waiters left are those not served early.
                    if let Some(waiters) = self.waiters.remove(block.cid()) {
                        for w in waiters {
                            let _ = w.send(Ok(block.clone()));
                        }
                    }
                    self.unpend(block.cid());
                }
                self.server.blocks_added(&cids);
                cids.len()
            }
            Stored::Failed(cids, e) => {
                tracing::error!("storing {} received blocks failed: {e}", cids.len());
                for cid in &cids {
                    for w in self.waiters.remove(cid).unwrap_or_default() {
                        let _ = w.send(Err(format!("storing the block failed: {e}")));
                    }
                    self.unpend(cid);
                }
                self.store_failures.fetch_add(1, Ordering::Relaxed);
                self.last_store_failure = e;
                cids.len()
            }
        };
        self.settled_seq += finished as u64;
        let settled = self.settled_seq;
        let (done, waiting) = std::mem::take(&mut self.settles)
            .into_iter()
            .partition(|(target, _, _)| *target <= settled);
        self.settles = waiting;
        for (_, since, reply) in done {
            let _ = reply.send(self.settle_result(since));
        }
    }

    /// The answer to a `Settle` that counts writer failures after the first `since`.
    fn settle_result(&self, since: u64) -> Result<(), String> {
        if self.store_failures.load(Ordering::Relaxed) > since {
            Err(format!(
                "storing received blocks failed: {}",
                self.last_store_failure
            ))
        } else {
            Ok(())
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect { addr, reply } => {
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                    // Kubo answers success for a peer already connected.
                    if self.connections.contains_key(&peer) {
                        let _ = reply.send(Ok(peer));
                        return;
                    }
                }
                let opts = match addr.iter().last() {
                    Some(Protocol::P2p(peer)) => DialOpts::peer_id(peer)
                        .addresses(vec![addr.clone()])
                        .build(),
                    _ => opts,
                };
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (addr, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(Error::Dial {
                            addr: addr.to_string(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::Disconnect { peer, reply } => {
                let _ = reply.send(self.swarm.disconnect_peer_id(peer).is_ok());
            }
            Command::Peers(reply) => {
                // One entry per connection, as Kubo lists them: a peer reached through a
                // relay and then directly (DCUtR) shows both until the relayed one closes.
                let mut peers: Vec<PeerInfo> = self
                    .connections
                    .iter()
                    .flat_map(|(peer, conns)| {
                        conns.iter().map(|(_, addr, outbound, _)| PeerInfo {
                            peer: *peer,
                            addr: addr.clone(),
                            outbound: *outbound,
                            latency: self.latency.get(peer).copied(),
                        })
                    })
                    .collect();
                // Stable: each peer's connections stay in the order they were made.
                peers.sort_by_key(|p| p.peer);
                let _ = reply.send(peers);
            }
            Command::Addrs(reply) => {
                let listen: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                let mut announced: Vec<Multiaddr> =
                    self.swarm.external_addresses().cloned().collect();
                if announced.is_empty() {
                    announced = listen.clone();
                }
                let _ = reply.send((listen, announced));
            }
            Command::Listen { addr, reply } => {
                let _ = reply.send(
                    self.swarm
                        .listen_on(addr.clone())
                        .map(|_| ())
                        .map_err(|e| Error::Transport(format!("listen on {addr}: {e}"))),
                );
            }
            Command::KnownAddrs(reply) => {
                let mut known: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
                for (peer, conns) in &self.connections {
                    known
                        .entry(*peer)
                        .or_default()
                        .extend(conns.iter().map(|c| c.1.clone()));
                }
                for (peer, id) in &self.identities {
                    let addrs = known.entry(*peer).or_default();
                    for a in &id.addrs {
                        if !addrs.contains(a) {
                            addrs.push(a.clone());
                        }
                    }
                }
                let _ = reply.send(known.into_iter().collect());
            }
            Command::PeerIdentity { peer, reply } => {
                let _ = reply.send(self.identities.get(&peer).cloned());
            }
            Command::Settle { since, reply } => {
                if self.settled_seq >= self.received_seq {
                    let _ = reply.send(self.settle_result(since));
                } else {
                    self.settles.push((self.received_seq, since, reply));
                }
            }
            Command::Want { cid, reply } => {
                // Received, not yet stored: no need to ask anyone.
                if let Some(block) = self.pending.get(&cid) {
                    let _ = reply.send(Ok(block.clone()));
                    return;
                }
                match self.client.want(cid, Instant::now()) {
                    Ok(()) => self.waiters.entry(cid).or_default().push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
            }
            Command::Unwant(cid) => {
                if let Some(w) = self.waiters.get_mut(&cid) {
                    let before = w.len();
                    w.retain(|tx| !tx.is_closed());
                    for _ in w.len()..before {
                        self.client.cancel(&cid);
                    }
                    if w.is_empty() {
                        self.waiters.remove(&cid);
                    }
                }
            }
            Command::BitswapStat(reply) => {
                let bitswap = &self.swarm.behaviour().bitswap;
                let mut peers: Vec<PeerId> = bitswap.peers().copied().collect();
                peers.sort();
                let _ = reply.send(BitswapStat {
                    stats: *bitswap.stats(),
                    wantlist: self.client.wantlist(),
                    peers,
                    provide_queue: self.provider.stat().queued,
                });
            }
            Command::Wantlist { peer, reply } => {
                let _ = reply.send(match peer {
                    Some(p) => self.server.wantlist(&p),
                    None => self.client.wantlist(),
                });
            }
            Command::Ledger { peer, reply } => {
                let _ = reply.send(self.server.ledger(&peer));
            }
            Command::Pubsub(cmd) => {
                let cx = crate::pubsub::Context {
                    local: *self.swarm.local_peer_id(),
                    gossip: self.swarm.behaviour_mut().gossipsub.as_mut(),
                    seq: &mut self.pubsub_seq,
                    values: &self.values,
                    control: &self.control,
                };
                self.subscribers.handle(cx, cmd);
            }
            Command::FindProviders { cid, limit, reply } => {
                // Without a DHT the receiver simply ends empty.
                let found = Arc::default();
                self.find_providers(&cid, || ProviderQuery::Caller {
                    limit,
                    found: Arc::clone(&found),
                    reply: reply.clone(),
                });
            }
            Command::Provide {
                cids,
                reprovide,
                reply,
            } => {
                if self.swarm.behaviour().kad.as_ref().is_none() {
                    let _ = reply.send(Err(Error::Routing(
                        "routing is disabled (Routing.Type none)".into(),
                    )));
                } else if !reprovide && self.connections.is_empty() {
                    let _ = reply.send(Err(Error::Routing(
                        "cannot provide, no connected peers".into(),
                    )));
                } else {
                    self.provider.submit(cids, reprovide, Some(reply));
                }
            }
            Command::Announce(cids) => {
                if self.swarm.behaviour().kad.as_ref().is_some() {
                    self.provider.announce(cids);
                }
            }
            Command::ProvideStat(reply) => {
                let _ = reply.send(self.provider.stat());
            }
            Command::DhtStore(reply) => {
                let stat = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .as_mut()
                    .map(|k| k.store_mut().stat());
                let _ = reply.send(stat.unwrap_or_default());
            }
            Command::Reachability(reply) => {
                let _ = reply.send(self.reachability.clone());
            }
            Command::Protocols(reply) => {
                let _ = reply.send(self.local_protocols());
            }
            Command::FindPeer { peer, reply } => {
                let known: Vec<Multiaddr> = self
                    .connections
                    .get(&peer)
                    .map(|c| c.iter().map(|c| c.1.clone()).collect())
                    .unwrap_or_default();
                if !known.is_empty() {
                    let _ = reply.send(Ok(known));
                    return;
                }
                let queries = self.both(|kad| kad.get_closest_peers(peer));
                self.start_op(
                    Op::FindPeer {
                        peer,
                        reply: Some(reply),
                    },
                    queries,
                );
            }
            Command::GetRecord { key, reply } => {
                if let Err(e) = records::parse_key(&key) {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                let rkey = kad::RecordKey::new(&key);
                let queries = self.both(|kad| kad.get_record(rkey.clone()));
                let op = Op::Get {
                    key,
                    best: None,
                    stale: Vec::new(),
                    reply,
                };
                self.start_op(op, queries);
            }
            Command::PutRecord { key, value, reply } => {
                let b = self.swarm.behaviour_mut();
                // The store takes what it refuses silently (see `SharedStore::put`): check
                // first, so an invalid or outdated record is the caller's error.
                let checked = match b.kad.as_mut() {
                    Some(k) => k.store_mut().check(&key, &value),
                    None => records::validate(&key, &value, std::time::SystemTime::now()),
                };
                if let Err(e) = checked {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                let record = kad::Record::new(kad::RecordKey::new(&key), value);
                let mut queries = Vec::new();
                for (dht, kad) in [(Dht::Wan, b.kad.as_mut()), (Dht::Lan, b.kad_lan.as_mut())] {
                    let Some(kad) = kad else { continue };
                    if let Ok(id) = kad.put_record(record.clone(), kad::Quorum::One) {
                        queries.push((dht, id));
                    }
                }
                if queries.is_empty() {
                    let _ = reply.send(Err(Error::Routing(
                        "routing is disabled (Routing.Type none)".into(),
                    )));
                    return;
                }
                let op = Op::Put {
                    stored: false,
                    error: None,
                    reply,
                };
                self.start_op(op, queries);
            }
            Command::ClosestPeers { key, reply } => {
                let queries = self.both(|kad| kad.get_closest_peers(key.clone()));
                let op = Op::Closest {
                    target: key,
                    peers: Vec::new(),
                    reply,
                };
                self.start_op(op, queries);
            }
            Command::Shutdown => {}
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let (mut addr, outbound) = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => (address.clone(), true),
                    ConnectedPoint::Listener { send_back_addr, .. } => {
                        (send_back_addr.clone(), false)
                    }
                };
                // Kubo lists transport addresses; the peer ID is reported beside them.
                if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
                    addr.pop();
                }
                self.connections.entry(peer_id).or_default().push((
                    connection_id,
                    addr,
                    outbound,
                    Instant::now(),
                ));
                if let Some((_, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                ..
            } => {
                if let Some(conns) = self.connections.get_mut(&peer_id) {
                    conns.retain(|c| c.0 != connection_id);
                    if conns.is_empty() {
                        self.connections.remove(&peer_id);
                        self.latency.remove(&peer_id);
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some((addr, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(Error::Dial {
                        addr: addr.to_string(),
                        reason: error.to_string(),
                    }));
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!("swarm listening on {address}");
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if self.relays.closed(listener_id) => {
                // (`closed` forgets the listener; only a relay circuit of ours gets here.)
                tracing::info!("relay listener closed ({reason:?}): looking for another");
                self.autorelay();
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Bitswap(e) => self.on_bitswap(e),
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                let b = self.swarm.behaviour_mut();
                for (protocol, kad) in [
                    (KAD_PROTOCOL, b.kad.as_mut()),
                    (KAD_LAN_PROTOCOL, b.kad_lan.as_mut()),
                ] {
                    if let Some(kad) = kad.filter(|_| info.protocols.contains(&protocol)) {
                        for addr in &info.listen_addrs {
                            kad.add_address(&peer_id, addr.clone());
                        }
                    }
                }
                self.identities.insert(
                    peer_id,
                    Identity {
                        public_key: info.public_key.encode_protobuf(),
                        addrs: info.listen_addrs,
                        agent_version: info.agent_version,
                        protocol_version: info.protocol_version,
                        protocols: info.protocols.iter().map(|p| p.to_string()).collect(),
                    },
                );
                // Bound the cache of identities to peers we are or were recently connected to.
                if self.identities.len() > 4 * self.config.conn_high_water.max(64) {
                    let connected = &self.connections;
                    self.identities.retain(|p, _| connected.contains_key(p));
                }
                if info
                    .protocols
                    .iter()
                    .any(|p| p.as_ref() == autorelay::HOP_PROTOCOL)
                {
                    self.autorelay();
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                self.latency.insert(peer, rtt);
            }
            BehaviourEvent::Kad(e) => self.on_kad(e),
            BehaviourEvent::KadLan(e) => self.on_kad_lan(e),
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { new, .. }) => {
                self.on_reachability(new)
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                // Messages on a followed record topic pass only when they improve on the
                // value held (go-libp2p-pubsub-router's validator); the rest pass as they are.
                let topic = message.topic.as_str();
                let verdict = match self.values.offer(topic, &message.data) {
                    None | Some(Offer::Better) => gossipsub::MessageAcceptance::Accept,
                    Some(Offer::Invalid(e)) => {
                        tracing::debug!(%propagation_source, topic, "invalid record: {e}");
                        gossipsub::MessageAcceptance::Reject
                    }
                    Some(Offer::Same | Offer::Worse) => gossipsub::MessageAcceptance::Ignore,
                };
                let accepted = matches!(verdict, gossipsub::MessageAcceptance::Accept);
                if let Some(gs) = self.swarm.behaviour_mut().gossipsub.as_mut() {
                    gs.report_message_validation_result(&message_id, &propagation_source, verdict);
                }
                if let (true, Some(from)) = (accepted, message.source) {
                    self.subscribers.deliver(PubsubMessage {
                        from,
                        data: message.data,
                        seqno: message
                            .sequence_number
                            .map(|s| s.to_be_bytes().to_vec())
                            .unwrap_or_default(),
                        topic: message.topic.into_string(),
                    });
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic, .. }) => {
                // A peer joining a followed record topic is asked for its value.
                if let Some(key) = self.values.key_of(topic.as_str()) {
                    let (values, control) = (self.values.clone(), self.control.clone());
                    tokio::spawn(
                        async move { values.fetch_from(control, key, vec![peer_id]).await },
                    );
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if !self.connections.contains_key(&peer) {
                        let _ = self
                            .swarm
                            .dial(DialOpts::peer_id(peer).addresses(vec![addr]).build());
                    }
                }
            }
            _ => {}
        }
    }

    fn on_bitswap(&mut self, event: BitswapEvent) {
        let now = Instant::now();
        match event {
            BitswapEvent::PeerConnected(peer) => self.client.peer_connected(peer, now),
            BitswapEvent::PeerDisconnected(peer) => {
                self.client.peer_disconnected(&peer, now);
                self.server.peer_disconnected(&peer);
            }
            BitswapEvent::Drained(_) => {}
            BitswapEvent::Message { peer, message } => {
                self.server.on_message(peer, &message);
                let received = self.client.on_message(peer, &message, now);
                for b in &received.unwanted {
                    self.swarm
                        .behaviour_mut()
                        .bitswap
                        .count_duplicate(b.data().len());
                }
                if !received.blocks.is_empty() {
                    self.on_received(received.blocks);
                }
            }
        }
    }

    /// Runs `f` on each DHT instance there is; the queries it started.
    fn both(
        &mut self,
        mut f: impl FnMut(&mut kad::Behaviour<records::SharedStore>) -> kad::QueryId,
    ) -> Vec<(Dht, kad::QueryId)> {
        let b = self.swarm.behaviour_mut();
        [(Dht::Wan, b.kad.as_mut()), (Dht::Lan, b.kad_lan.as_mut())]
            .into_iter()
            .filter_map(|(dht, kad)| kad.map(|k| (dht, f(k))))
            .collect()
    }

    fn finish_query(&mut self, dht: Dht, id: kad::QueryId) {
        let b = self.swarm.behaviour_mut();
        let kad = match dht {
            Dht::Wan => b.kad.as_mut(),
            Dht::Lan => b.kad_lan.as_mut(),
        };
        if let Some(mut q) = kad.and_then(|k| k.query_mut(&id)) {
            q.finish();
        }
    }

    /// Registers a lookup served by `queries`, or refuses it when too many are running.
    fn start_op(&mut self, op: Op, queries: Vec<(Dht, kad::QueryId)>) {
        if !self.ops.has_room() {
            for (dht, id) in queries {
                self.finish_query(dht, id);
            }
            records::refuse(op);
            return;
        }
        let follow = self.ops.start(op, queries);
        self.follow_up(follow);
    }

    fn follow_up(&mut self, follow: Option<Followup>) {
        let Some(Followup::Correct(record, peers)) = follow else {
            return;
        };
        let b = self.swarm.behaviour_mut();
        for kad in [b.kad.as_mut(), b.kad_lan.as_mut()].into_iter().flatten() {
            kad.put_record_to(record.clone(), peers.clone().into_iter(), kad::Quorum::One);
        }
    }

    /// Events of the LAN instance: lookups shared with the WAN one, batched providing,
    /// provider lookups.
    fn on_kad_lan(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        if self.ops.owns(Dht::Lan, id) {
            let follow = self.ops.progress(Dht::Lan, id, result, step.last);
            self.follow_up(follow);
            return;
        }
        if self.provider.on_query(Dht::Lan, id, &result) {
            return;
        }
        self.on_providers(Dht::Lan, id, result, step.last);
    }

    /// One address we know for `p` (connected, else announced), or the empty address.
    fn known_addr(&self, p: &PeerId) -> Multiaddr {
        self.connections
            .get(p)
            .and_then(|c| c.first().map(|c| c.1.clone()))
            .or_else(|| {
                self.identities
                    .get(p)
                    .and_then(|i| i.addrs.first().cloned())
            })
            .unwrap_or_else(Multiaddr::empty)
    }

    /// Events of the WAN instance: lookups (see `records`), batched providing, provider
    /// lookups.
    fn on_kad(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        if self.ops.owns(Dht::Wan, id) {
            let follow = self.ops.progress(Dht::Wan, id, result, step.last);
            self.follow_up(follow);
            return;
        }
        if self.provider.on_query(Dht::Wan, id, &result) {
            return;
        }
        self.on_providers(Dht::Wan, id, result, step.last);
    }

    /// Starts a provider lookup for `cid` on each DHT instance that runs.
    fn find_providers(&mut self, cid: &Cid, query: impl Fn() -> ProviderQuery) {
        let key = kad::RecordKey::new(&cid.hash().to_bytes());
        let b = self.swarm.behaviour_mut();
        for (dht, kad) in [(Dht::Wan, b.kad.as_mut()), (Dht::Lan, b.kad_lan.as_mut())] {
            if let Some(kad) = kad {
                let id = kad.get_providers(key.clone());
                self.provider_queries.insert((dht, id), query());
            }
        }
    }

    /// Progress of a provider lookup: a want's providers are dialed, a caller's are sent on
    /// (up to its limit, which ends the lookup).
    fn on_providers(&mut self, dht: Dht, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        if let kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
            providers,
            ..
        })) = result
        {
            let local = *self.swarm.local_peer_id();
            let addrs: Vec<(PeerId, Multiaddr)> = providers
                .into_iter()
                .filter(|p| *p != local)
                .map(|p| (p, self.known_addr(&p)))
                .collect();
            let mut done = false;
            match self.provider_queries.get_mut(&(dht, id)) {
                Some(ProviderQuery::Want) => {
                    for (p, _) in addrs {
                        if !self.connections.contains_key(&p) {
                            let _ = self.swarm.dial(DialOpts::peer_id(p).build());
                        }
                    }
                }
                Some(ProviderQuery::Caller {
                    limit,
                    found,
                    reply,
                }) => {
                    let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
                    for (peer, addr) in addrs {
                        if found.len() >= *limit {
                            break;
                        }
                        if found.insert(peer) {
                            let _ = reply.try_send(PeerInfo {
                                peer,
                                addr,
                                outbound: false,
                                latency: None,
                            });
                        }
                    }
                    done = found.len() >= *limit;
                }
                None => {}
            }
            if done {
                self.finish_query(dht, id);
            }
        }
        // A provider query's last step (found enough or not) ends it.
        if last {
            self.provider_queries.remove(&(dht, id));
        }
    }
}

impl EventLoop {
    /// AutoNAT's verdict. An unreachable node with a relay client listens through relays, so
    /// that others can reach it (and DCUtR can then try a direct connection).
    fn on_reachability(&mut self, status: autonat::NatStatus) {
        self.reachability = match status {
            autonat::NatStatus::Public(a) => Reachability::Public(a),
            autonat::NatStatus::Private => Reachability::Private,
            autonat::NatStatus::Unknown => Reachability::Unknown,
        };
        tracing::info!("reachability: {:?}", self.reachability);
        self.autorelay();
    }

    /// Listens through the relays [`autorelay::Relays`] picks, when the node is unreachable.
    fn autorelay(&mut self) {
        if self.reachability != Reachability::Private || !self.config.relay_client {
            return;
        }
        let hops = self
            .identities
            .iter()
            .filter(|(_, id)| id.protocols.iter().any(|p| p == autorelay::HOP_PROTOCOL))
            .filter_map(|(peer, _)| {
                let (_, addr, _, _) = self.connections.get(peer)?.first()?;
                Some((*peer, addr.clone()))
            })
            .collect();
        for circuit in self.relays.wanted(&self.config.static_relays, hops) {
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    tracing::info!("listening through relay {circuit}");
                    self.relays.listening(id, &circuit);
                }
                Err(e) => tracing::warn!("listen through relay {circuit}: {e}"),
            }
        }
    }

    /// The protocols this node answers on now, as identify announces them: the DHT only in
    /// server mode, the others as their behaviours are enabled.
    fn local_protocols(&self) -> Vec<String> {
        let b = self.swarm.behaviour();
        let mut list: Vec<String> = [
            "/ipfs/id/1.0.0",
            "/ipfs/id/push/1.0.0",
            "/ipfs/ping/1.0.0",
            "/ipfs/bitswap",
            "/ipfs/bitswap/1.0.0",
            "/ipfs/bitswap/1.1.0",
            "/ipfs/bitswap/1.2.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if b.kad
            .as_ref()
            .is_some_and(|k| k.mode() == kad::Mode::Server)
        {
            list.push(KAD_PROTOCOL.to_string());
        }
        if b.gossipsub.is_enabled() {
            for p in [
                "/meshsub/1.0.0",
                "/meshsub/1.1.0",
                "/meshsub/1.2.0",
                "/meshsub/1.3.0",
                "/floodsub/1.0.0",
            ] {
                list.push(p.into());
            }
        }
        if b.autonat.is_enabled() {
            list.push("/libp2p/autonat/1.0.0".into());
        }
        if b.relay.is_enabled() {
            list.push("/libp2p/circuit/relay/0.2.0/hop".into());
        }
        if b.relay_client.is_enabled() {
            list.push("/libp2p/circuit/relay/0.2.0/stop".into());
        }
        if b.dcutr.is_enabled() {
            list.push("/libp2p/dcutr".into());
        }
        list.sort();
        list
    }
}

fn lookup(store: &dyn BlockStore, task: &Task, replace_have: u64) -> Found {
    let get = |cid: &Cid| match store.get(cid) {
        Ok(Some(data)) => Found::Block(Block::new_unchecked(*cid, data)),
        Ok(None) => Found::Missing,
        Err(e) => {
            tracing::warn!("bitswap server: read {cid}: {e}");
            Found::Missing
        }
    };
    match task.want_type {
        WantType::Block => get(&task.cid),
        WantType::Have => match store.size(&task.cid) {
            Ok(Some(size)) if size <= replace_have => get(&task.cid),
            Ok(Some(size)) => Found::Size(size),
            Ok(None) => Found::Missing,
            Err(e) => {
                tracing::warn!("bitswap server: stat {}: {e}", task.cid);
                Found::Missing
            }
        },
    }
}

/// The writer thread: commits received blocks in batches (whatever is queued when it gets to
/// it) and reports each batch back once it is stored.
fn store_writer(
    store: Arc<dyn BlockStore>,
    rx: std::sync::mpsc::Receiver<Vec<Block>>,
    done: mpsc::Sender<Stored>,
) {
    while let Ok(mut batch) = rx.recv() {
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let report = match store.put_many(batch.clone()) {
            Ok(()) => Stored::Done(batch),
            Err(e) => Stored::Failed(batch.iter().map(|b| *b.cid()).collect(), e),
        };
        if done.blocking_send(report).is_err() {
            break;
        }
    }
}
