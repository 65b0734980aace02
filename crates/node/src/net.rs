//! The node online: starting the libp2p network from the config, the block store it reads and
//! writes, fetching missing blocks for the content operations, and the RPC network commands.
//!
//! Content operations are synchronous (they run on blocking threads); they reach the network
//! by spawning onto the daemon's runtime and waiting on a plain channel, which is safe from
//! any thread.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use ipfs_kit_block::{Block, Bytes, Cid};
use ipfs_kit_net::{Keypair, Multiaddr, Network, PeerId, RoutingMode};
use ipfs_kit_rpc::{
    Bandwidth, BootstrapEdit, NetworkApi, PingLine, PubsubMessage, RpcError, SwarmPeer,
};
use serde_json::{json, Value};

use crate::config::{Addresses, Network as NetConfig, PUBLIC_BOOTSTRAP};
use crate::provide::{self, Strategy};
use crate::{Error, Repo};

/// Checks the network settings: addresses parse, the routing type and durations are known.
pub(crate) fn validate(addresses: &Addresses, network: &NetConfig) -> Result<(), Error> {
    for a in addresses
        .swarm
        .iter()
        .chain(&addresses.announce)
        .chain(&network.bootstrap)
    {
        a.parse::<Multiaddr>()
            .map_err(|e| Error::Config(format!("bad multiaddr {a:?}: {e}")))?;
    }
    RoutingMode::parse(&network.routing)
        .map_err(|e| Error::Config(format!("network.routing: {e}")))?;
    ipfs_kit_ipns::parse_go_duration(&network.conn_grace_period).map_err(|_| {
        Error::Config(format!(
            "network.conn_grace_period: {:?} is not a duration such as 20s",
            network.conn_grace_period
        ))
    })?;
    Strategy::parse(&network.reprovider_strategy)
        .map_err(|e| Error::Config(format!("network.reprovider_strategy: {e}")))?;
    ipfs_kit_ipns::parse_go_duration(&network.reprovider_interval).map_err(|_| {
        Error::Config(format!(
            "network.reprovider_interval: {:?} is not a duration such as 22h (0 turns it off)",
            network.reprovider_interval
        ))
    })?;
    autonat_service(&network.autonat_service_mode)?;
    for r in &network.static_relays {
        let a: Multiaddr = r
            .parse()
            .map_err(|e| Error::Config(format!("network.static_relays: {r:?}: {e}")))?;
        if !matches!(a.iter().last(), Some(ipfs_kit_net::Protocol::P2p(_))) {
            return Err(Error::Config(format!(
                "network.static_relays: {r:?} must end in /p2p/<peer ID>"
            )));
        }
    }
    if network.conn_low_water > network.conn_high_water {
        return Err(Error::Config(
            "network.conn_low_water must not exceed network.conn_high_water".into(),
        ));
    }
    Ok(())
}

/// Kubo's `AutoNAT.ServiceMode`: whether this node dials others back for their probes.
fn autonat_service(mode: &str) -> Result<bool, Error> {
    match mode {
        "enabled" | "unset" | "" => Ok(true),
        "disabled" => Ok(false),
        other => Err(Error::Config(format!(
            "network.autonat_service_mode: unknown mode {other:?} (expected enabled or disabled)"
        ))),
    }
}

/// The node's libp2p key from the config's `identity.private_key`.
pub fn keypair(repo: &Repo) -> Result<Keypair, Error> {
    let b64 = repo.config().identity.private_key.clone();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| Error::Identity(format!("private key is not base64: {e}")))?;
    Keypair::from_protobuf_encoding(&bytes)
        .map_err(|e| Error::Identity(format!("private key: {e}")))
}

impl Repo {
    /// `bootstrap`: the list (`None`), or applies `edit` to `network.bootstrap` in one config
    /// update and answers the entries it added or removed.
    pub fn bootstrap(&self, edit: Option<BootstrapEdit>) -> Result<Vec<String>, Error> {
        let Some(edit) = edit else {
            return Ok(self.config().network.bootstrap.clone());
        };
        let add = match &edit {
            BootstrapEdit::Add(addrs) => addrs.clone(),
            BootstrapEdit::AddDefault => PUBLIC_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
            BootstrapEdit::Remove(_) | BootstrapEdit::RemoveAll => Vec::new(),
        };
        if let Some(a) = add
            .iter()
            .find(|a| !a.contains("/p2p/") && !a.contains("/ipfs/"))
        {
            return Err(Error::Invalid(format!(
                "invalid bootstrap address {a:?}: it must end in /p2p/<peer ID>"
            )));
        }
        let mut changed = Vec::new();
        self.update_config(|c| {
            let mut c = c.clone();
            let list = &mut c.network.bootstrap;
            match &edit {
                BootstrapEdit::Remove(addrs) => {
                    changed = list.iter().filter(|a| addrs.contains(a)).cloned().collect();
                    list.retain(|a| !addrs.contains(a));
                }
                BootstrapEdit::RemoveAll => changed = std::mem::take(list),
                BootstrapEdit::Add(_) | BootstrapEdit::AddDefault => {
                    for a in &add {
                        if !list.contains(a) {
                            list.push(a.clone());
                            changed.push(a.clone());
                        }
                    }
                }
            }
            Ok(c)
        })?;
        Ok(changed)
    }
}

/// What the daemon's command line changes in the network settings.
#[derive(Clone, Debug, Default)]
pub struct NetOverrides {
    /// Swarm listen addresses instead of `addresses.swarm`.
    pub swarm: Vec<String>,
    /// Turn pubsub on (`--enable-pubsub-experiment`).
    pub pubsub: bool,
    /// Routing type instead of `network.routing`.
    pub routing: Option<String>,
    /// IPNS over pubsub (`--enable-namesys-pubsub`; turns pubsub on too).
    pub namesys_pubsub: bool,
}

/// The block store the network reads and writes: the repo's, never the network fallback.
struct RepoStore(Arc<Repo>);

impl ipfs_kit_net::BlockStore for RepoStore {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, String> {
        self.0.blocks().get(cid).map_err(|e| e.to_string())
    }

    fn size(&self, cid: &Cid) -> Result<Option<u64>, String> {
        self.0.blocks().size(cid).map_err(|e| e.to_string())
    }

    fn put_many(&self, blocks: Vec<Block>) -> Result<(), String> {
        self.0.blocks().put_many(blocks).map_err(|e| e.to_string())
    }
}

/// The running network as the node uses it.
pub struct Online {
    net: Network,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) fetch_timeout: Duration,
    task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The resolve cache and IPNS over pubsub.
    pub(crate) names: crate::ipns::NameSys,
    /// The IPNS republisher, while it runs.
    republisher: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The repo served (weak: the repo holds this while online).
    repo: std::sync::Weak<Repo>,
    strategy: Strategy,
    reprovide_interval: Duration,
    /// Asks the reprovider to run now; dropping it stops the reprovider.
    reprovide: parking_lot::Mutex<Option<tokio::sync::mpsc::Sender<provide::Trigger>>>,
}

/// Starts the network for `repo` and attaches it, so content operations fetch what is missing.
pub async fn start(repo: &Arc<Repo>, overrides: &NetOverrides) -> Result<Arc<Online>, Error> {
    let cfg = repo.config();
    let parse = |list: &[String]| -> Result<Vec<Multiaddr>, Error> {
        list.iter()
            .map(|a| {
                a.parse()
                    .map_err(|e| Error::Config(format!("bad multiaddr {a:?}: {e}")))
            })
            .collect()
    };
    let mut config = ipfs_kit_net::Config::new(keypair(repo)?);
    config.listen = parse(if overrides.swarm.is_empty() {
        &cfg.addresses.swarm
    } else {
        &overrides.swarm
    })?;
    config.announce = parse(&cfg.addresses.announce)?;
    config.bootstrap = parse(&cfg.network.bootstrap)?;
    config.mdns = cfg.network.mdns;
    let namesys_pubsub = cfg.ipns.use_pubsub || overrides.namesys_pubsub;
    config.pubsub = cfg.network.pubsub || overrides.pubsub || namesys_pubsub;
    let routing = overrides.routing.as_deref().unwrap_or(&cfg.network.routing);
    config.routing = RoutingMode::parse(routing).map_err(|e| Error::Config(e.to_string()))?;
    config.conn_low_water = cfg.network.conn_low_water;
    config.conn_high_water = cfg.network.conn_high_water;
    config.conn_grace = ipfs_kit_ipns::parse_go_duration(&cfg.network.conn_grace_period)
        .map_err(|_| Error::Config("network.conn_grace_period".into()))?;
    config.relay_client = cfg.network.relay_client;
    config.static_relays = parse(&cfg.network.static_relays)?;
    config.relay_service = cfg.network.relay_service;
    config.hole_punching = cfg.network.hole_punching;
    config.autonat_service = autonat_service(&cfg.network.autonat_service_mode)?;
    config.accelerated_provide = cfg.network.accelerated_dht_client;
    let strategy = Strategy::parse(&cfg.network.reprovider_strategy)?;
    let reprovide_interval = ipfs_kit_ipns::parse_go_duration(&cfg.network.reprovider_interval)
        .map_err(|_| Error::Config("network.reprovider_interval".into()))?;
    let routing_on = config.routing != RoutingMode::None;
    let (net, task) = Network::start(config, Arc::new(RepoStore(repo.clone()))).await?;
    let (trigger_tx, trigger_rx) = tokio::sync::mpsc::channel(4);
    if routing_on {
        provide::spawn(
            repo.clone(),
            net.clone(),
            strategy,
            reprovide_interval,
            trigger_rx,
        );
        if strategy == Strategy::All {
            repo.blocks.set_network(Some(net.clone()));
        }
    }
    let online = Arc::new(Online {
        net,
        runtime: tokio::runtime::Handle::current(),
        fetch_timeout: Duration::from_secs(cfg.network.fetch_timeout_secs.max(1)),
        task: parking_lot::Mutex::new(Some(task)),
        names: crate::ipns::NameSys::new(&cfg.ipns, namesys_pubsub),
        republisher: parking_lot::Mutex::new(None),
        repo: Arc::downgrade(repo),
        strategy,
        reprovide_interval,
        reprovide: parking_lot::Mutex::new(routing_on.then_some(trigger_tx)),
    });
    *repo.online.write() = Some(online.clone());
    if namesys_pubsub {
        let weak = Arc::downgrade(repo);
        tokio::task::spawn_blocking(move || {
            if let Some(r) = weak.upgrade() {
                if let Err(e) = r.serve_own_names_over_pubsub() {
                    tracing::warn!("IPNS over pubsub: {e}");
                }
            }
        });
    }
    let period = ipfs_kit_ipns::parse_go_duration(&cfg.ipns.republish_period)
        .map_err(|_| Error::Config("ipns.republish_period".into()))?;
    let lifetime = ipfs_kit_ipns::parse_go_duration(&cfg.ipns.record_lifetime)
        .map_err(|_| Error::Config("ipns.record_lifetime".into()))?;
    if !period.is_zero() {
        *online.republisher.lock() = Some(tokio::spawn(republish_loop(
            Arc::downgrade(repo),
            period,
            lifetime,
        )));
    }
    Ok(online)
}

/// Re-puts the node's IPNS records every `period`, the first time a minute after start (or
/// after `period`, when shorter), as Kubo's republisher. Holds the repo weakly: the loop ends
/// with it.
async fn republish_loop(repo: std::sync::Weak<Repo>, period: Duration, lifetime: Duration) {
    tokio::time::sleep(period.min(Duration::from_secs(60))).await;
    loop {
        let Some(r) = repo.upgrade() else { return };
        match tokio::task::spawn_blocking(move || r.republish(lifetime)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!("republished {n} IPNS records"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("IPNS republish: {e}"),
            Err(e) => tracing::warn!("IPNS republish: {e}"),
        }
        tokio::time::sleep(period).await;
    }
}

impl Online {
    /// The network handle.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Stops the network (connections close) and detaches it from `repo`.
    pub async fn stop(&self, repo: &Repo) {
        *repo.online.write() = None;
        if let Some(t) = self.republisher.lock().take() {
            t.abort();
        }
        repo.blocks.set_network(None);
        self.reprovide.lock().take();
        self.net.shutdown().await;
        let task = self.task.lock().take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// Announces what was just pinned, when the strategy provides pins rather than every
    /// block (those were announced as they were stored). Never waits.
    pub(crate) fn pinned(&self, repo: &Repo, roots: &[Cid]) {
        if self.reprovide.lock().is_some() {
            self.net
                .announce(provide::pinned_keys(repo, self.strategy, roots));
        }
    }

    /// Runs `fut` on the daemon's runtime and waits for it from this (blocking) thread.
    pub(crate) fn wait<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| Error::Network("the network stopped".into()))
    }

    /// How long a fetch may wait: `network.fetch_timeout_secs`, cut to just before the
    /// deadline of the API request being served (so the command can still report the timeout
    /// in its own output, as Kubo's commands report their context's), if it has one.
    pub(crate) fn timeout(&self) -> Result<Duration, Error> {
        let Some(deadline) = ipfs_kit_rpc::call_deadline() else {
            return Ok(self.fetch_timeout);
        };
        let left = deadline
            .saturating_duration_since(std::time::Instant::now())
            .saturating_sub(Duration::from_millis(100));
        if left.is_zero() {
            return Err(Error::Network("context deadline exceeded".into()));
        }
        Ok(left.min(self.fetch_timeout))
    }

    /// One block from the network (verified on arrival; stored right after, see
    /// [`Online::settle`]).
    pub(crate) fn fetch_block(&self, cid: &Cid) -> Result<Bytes, Error> {
        let (net, cid, timeout) = (self.net.clone(), *cid, self.timeout()?);
        let block = self.wait(async move { net.get_block(cid, timeout).await })??;
        Ok(block.into_parts().1)
    }

    /// Where the block writer is now (see [`Online::settle`]).
    pub(crate) fn store_mark(&self) -> ipfs_kit_net::StoreMark {
        self.net.store_mark()
    }

    /// Waits until every block fetched so far is stored, failing if the writer lost any since
    /// `since`: before anything durable (a pin) comes to depend on them.
    pub(crate) fn settle(&self, since: ipfs_kit_net::StoreMark) -> Result<(), Error> {
        let net = self.net.clone();
        Ok(self.wait(async move { net.settle(since).await })??)
    }

    /// Fetches the whole DAG under `root` and waits for it.
    pub(crate) fn fetch_dag(&self, root: &Cid) -> Result<ipfs_kit_net::FetchStats, Error> {
        let (net, root, timeout) = (self.net.clone(), *root, self.timeout()?);
        // Under a request deadline the whole walk must end by then, not each block.
        let whole = ipfs_kit_rpc::call_deadline().map(|_| timeout);
        self.wait(async move {
            match whole {
                Some(t) => tokio::time::timeout(t, net.fetch_dag(root, timeout))
                    .await
                    .unwrap_or(Err(ipfs_kit_net::Error::NotFound(root))),
                None => net.fetch_dag(root, timeout).await,
            }
        })?
        .map_err(Error::from)
    }

    /// Starts fetching the DAG under `root` in the background; the fetch stops when the
    /// returned guard is dropped (the reader finished or went away).
    pub(crate) fn prefetch(&self, root: &Cid) -> Prefetch {
        let (net, root, timeout) = (self.net.clone(), *root, self.fetch_timeout);
        Prefetch(Some(self.runtime.spawn(async move {
            if let Err(e) = net.fetch_dag(root, timeout).await {
                tracing::debug!("prefetch of {root}: {e}");
            }
        })))
    }

    /// Runs a network call made by `f` and waits for it, for the RPC commands.
    fn ask<T, F>(&self, f: impl FnOnce(Network) -> F) -> Result<T, RpcError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, ipfs_kit_net::Error>> + Send + 'static,
    {
        let fut = f(self.net.clone());
        self.wait(fut)
            .map_err(rpc_err)?
            .map_err(|e| RpcError::normal(e.to_string()))
    }

    /// `id` for this node: its announced addresses, the protocols the swarm answers on now,
    /// and the agent version identify announces.
    pub(crate) fn id_info(&self) -> Result<Value, Error> {
        let net = self.net.clone();
        let (announced, protocols) = self.wait(async move {
            Ok::<_, ipfs_kit_net::Error>((net.addrs().await?.1, net.protocols().await?))
        })??;
        let peer = self.net.peer_id();
        Ok(json!({
            "ID": peer.to_string(),
            "PublicKey": base64::engine::general_purpose::STANDARD
                .encode(self.net.public_key().encode_protobuf()),
            "Addresses": announced.iter().map(|a| format!("{a}/p2p/{peer}")).collect::<Vec<_>>(),
            "AgentVersion": format!("ipfs-kit/{}", env!("CARGO_PKG_VERSION")),
            "ProtocolVersion": "ipfs/0.1.0",
            "Protocols": protocols,
        }))
    }
}

impl From<ipfs_kit_net::Error> for Error {
    /// A block nobody sent in time is "not found", as offline; anything else is the network's.
    fn from(e: ipfs_kit_net::Error) -> Self {
        match e {
            ipfs_kit_net::Error::NotFound(cid) => Error::NotFound(cid),
            e => Error::Network(e.to_string()),
        }
    }
}

/// A background DAG fetch, cancelled when dropped.
pub(crate) struct Prefetch(Option<tokio::task::JoinHandle<()>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

fn rpc_err(e: Error) -> RpcError {
    RpcError::normal(e.to_string())
}

fn parse_peer(s: &str) -> Result<PeerId, RpcError> {
    s.parse()
        .map_err(|_| RpcError::normal(format!("invalid peer ID {s:?}")))
}

/// The peer a multiaddr ends with (`…/p2p/<id>`), or a bare peer ID.
fn peer_of(s: &str) -> Result<PeerId, RpcError> {
    if let Ok(p) = s.parse::<PeerId>() {
        return Ok(p);
    }
    let addr: Multiaddr = s
        .parse()
        .map_err(|e| RpcError::normal(format!("invalid multiaddr {s:?}: {e}")))?;
    match addr.iter().last() {
        Some(ipfs_kit_net::Protocol::P2p(p)) => Ok(p),
        _ => Err(RpcError::normal(format!(
            "{s:?} does not name a peer (it must end in /p2p/<peer ID>)"
        ))),
    }
}

impl NetworkApi for Online {
    fn connect(&self, addr: &str) -> Result<String, RpcError> {
        let addr: Multiaddr = addr
            .parse()
            .map_err(|e| RpcError::normal(format!("invalid multiaddr {addr:?}: {e}")))?;
        let peer = self.ask(|n| async move { n.connect(addr).await })?;
        Ok(peer.to_string())
    }

    fn disconnect(&self, addr: &str) -> Result<String, RpcError> {
        let peer = peer_of(addr)?;
        if !self.ask(move |n| async move { n.disconnect(peer).await })? {
            return Err(RpcError::normal(format!("not connected to {peer}")));
        }
        Ok(peer.to_string())
    }

    fn peers(&self) -> Result<Vec<SwarmPeer>, RpcError> {
        Ok(self
            .ask(|n| async move { n.peers().await })?
            .into_iter()
            .map(|p| SwarmPeer {
                peer: p.peer.to_string(),
                addr: p.addr.to_string(),
                outbound: p.outbound,
                latency: p.latency,
            })
            .collect())
    }

    fn known_addrs(&self) -> Result<BTreeMap<String, Vec<String>>, RpcError> {
        Ok(self
            .ask(|n| async move { n.known_addrs().await })?
            .into_iter()
            .map(|(p, a)| (p.to_string(), a.iter().map(|a| a.to_string()).collect()))
            .collect())
    }

    fn local_addrs(&self) -> Result<(Vec<String>, Vec<String>), RpcError> {
        let (l, a) = self.ask(|n| async move { n.addrs().await })?;
        let s = |v: Vec<Multiaddr>| v.iter().map(|a| a.to_string()).collect();
        Ok((s(l), s(a)))
    }

    fn peer_id_info(&self, peer: &str) -> Result<Value, RpcError> {
        let p = parse_peer(peer)?;
        if p == self.net.peer_id() {
            return self.id_info().map_err(rpc_err);
        }
        let id = self
            .ask(move |n| async move { n.peer_identity(p).await })?
            .ok_or_else(|| {
                RpcError::normal(format!(
                    "no identify information for {p} (connect to it first)"
                ))
            })?;
        Ok(json!({
            "ID": p.to_string(),
            "PublicKey": base64::engine::general_purpose::STANDARD.encode(&id.public_key),
            "Addresses": id.addrs.iter().map(|a| format!("{a}/p2p/{p}")).collect::<Vec<_>>(),
            "AgentVersion": id.agent_version,
            "ProtocolVersion": id.protocol_version,
            "Protocols": id.protocols,
        }))
    }

    fn bitswap_stat(&self) -> Result<Value, RpcError> {
        let s = self.ask(|n| async move { n.bitswap_stat().await })?;
        Ok(json!({
            "ProvideBufLen": s.provide_queue,
            "Wantlist": s.wantlist.iter().map(|c| json!({ "/": c.to_string() })).collect::<Vec<_>>(),
            "Peers": s.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "BlocksReceived": s.stats.blocks_received,
            "DataReceived": s.stats.data_received,
            "BlocksSent": s.stats.blocks_sent,
            "DataSent": s.stats.data_sent,
            "DupBlksReceived": s.stats.dup_blocks_received,
            "DupDataReceived": s.stats.dup_data_received,
            "MessagesReceived": s.stats.messages_received,
        }))
    }

    fn wantlist(&self, peer: Option<&str>) -> Result<Vec<String>, RpcError> {
        let peer = peer.map(parse_peer).transpose()?;
        Ok(self
            .ask(move |n| async move { n.wantlist(peer).await })?
            .iter()
            .map(|c| c.to_string())
            .collect())
    }

    fn ledger(&self, peer: &str) -> Result<Value, RpcError> {
        let p = parse_peer(peer)?;
        let l = self.ask(move |n| async move { n.ledger(p).await })?;
        // Kubo's debt ratio: what we sent over what we received, plus one.
        let value = l.bytes_sent as f64 / (l.bytes_received as f64 + 1.0);
        Ok(json!({
            "Peer": p.to_string(),
            "Value": value,
            "Sent": l.bytes_sent,
            "Recv": l.bytes_received,
            "Exchanged": l.exchanged,
        }))
    }

    fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), RpcError> {
        let topic = topic.to_string();
        self.ask(move |n| async move { n.publish(topic, data).await })
    }

    fn subscribe(
        &self,
        topic: &str,
        emit: &mut dyn FnMut(Option<PubsubMessage>) -> io::Result<()>,
    ) -> Result<(), RpcError> {
        let topic = topic.to_string();
        let mut sub = self.ask(move |n| async move { n.subscribe(topic).await })?;
        if emit(None).is_err() {
            return Ok(());
        }
        loop {
            // Wake up now and then to notice a client that went away while nothing arrived:
            // an empty write fails once the response channel is closed.
            let next = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(5), sub.next()).await });
            let msg = match next {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(_) if emit(None).is_err() => return Ok(()),
                Err(_) => continue,
            };
            let sent = emit(Some(PubsubMessage {
                from: msg.from.to_string(),
                data: msg.data,
                seqno: msg.seqno,
                topic: msg.topic,
            }));
            if sent.is_err() {
                return Ok(());
            }
        }
    }

    fn topics(&self) -> Result<Vec<String>, RpcError> {
        self.ask(|n| async move { n.pubsub_topics().await })
    }

    fn pubsub_peers(&self, topic: Option<&str>) -> Result<Vec<String>, RpcError> {
        let topic = topic.map(str::to_string);
        Ok(self
            .ask(move |n| async move { n.pubsub_peers(topic).await })?
            .iter()
            .map(|p| p.to_string())
            .collect())
    }

    fn find_providers(
        &self,
        cid: &str,
        limit: usize,
        emit: &mut dyn FnMut(String, Vec<String>) -> io::Result<()>,
    ) -> Result<(), RpcError> {
        let cid = ipfs_kit_block::parse_cid(cid).map_err(|e| RpcError::normal(e.to_string()))?;
        let mut rx = self.ask(move |n| async move { n.find_providers(cid, limit).await })?;
        // Both DHT instances (WAN and LAN protocol) may name the same provider.
        let mut seen = std::collections::HashSet::new();
        while let Some(p) = self.runtime.block_on(rx.recv()) {
            if !seen.insert(p.peer) || seen.len() > limit {
                continue;
            }
            let addrs = if p.addr.is_empty() {
                Vec::new()
            } else {
                vec![p.addr.to_string()]
            };
            if emit(p.peer.to_string(), addrs).is_err() {
                break;
            }
        }
        Ok(())
    }

    fn find_peer(&self, peer: &str) -> Result<Vec<String>, RpcError> {
        let p = parse_peer(peer)?;
        Ok(self
            .ask(move |n| async move { n.find_peer(p).await })?
            .iter()
            .map(|a| a.to_string())
            .collect())
    }

    fn provide(&self, cids: &[String], recursive: bool) -> Result<usize, RpcError> {
        let repo = self.repo_for_provide()?;
        // Kubo checks for peers before it looks at the keys.
        if self.ask(|n| async move { n.peers().await })?.is_empty() {
            return Err(RpcError::normal("cannot provide, no connected peers"));
        }
        let mut keys = Vec::new();
        for c in cids {
            let cid = ipfs_kit_block::parse_cid(c).map_err(|e| RpcError::normal(e.to_string()))?;
            // Kubo provides only what it has.
            if !repo
                .blocks()
                .has(&cid)
                .map_err(|e| RpcError::normal(e.to_string()))?
            {
                return Err(RpcError::normal(format!(
                    "block {cid} not found locally, cannot provide"
                )));
            }
            if recursive {
                let mut seen = std::collections::HashSet::new();
                ipfs_kit_pin::walk_dag(repo.blocks(), &cid, &mut seen, &mut |c| keys.push(*c))
                    .map_err(|e| RpcError::normal(e.to_string()))?;
            } else {
                keys.push(cid);
            }
        }
        Ok(self
            .ask(move |n| async move { n.provide(keys).await })?
            .keys)
    }

    fn get_value(&self, key: &str) -> Result<Vec<u8>, RpcError> {
        let key = ipfs_kit_net::records::key_from_text(key)
            .map_err(|e| RpcError::normal(e.to_string()))?;
        let timeout = self.timeout().map_err(rpc_err)?;
        self.ask(move |n| async move {
            tokio::time::timeout(timeout, n.get_record(key))
                .await
                .unwrap_or_else(|_| Err(ipfs_kit_net::Error::Routing("routing: not found".into())))
        })
    }

    fn put_value(&self, key: &str, value: Vec<u8>) -> Result<String, RpcError> {
        let bin = ipfs_kit_net::records::key_from_text(key)
            .map_err(|e| RpcError::normal(e.to_string()))?;
        let peer = match ipfs_kit_net::records::parse_key(&bin) {
            Ok(ipfs_kit_net::records::RecordKind::Ipns(name)) => name.peer_id().to_string(),
            Ok(ipfs_kit_net::records::RecordKind::PublicKey(p)) => p.to_string(),
            Err(e) => return Err(RpcError::normal(e.to_string())),
        };
        let timeout = self.timeout().map_err(rpc_err)?;
        self.ask(move |n| async move {
            tokio::time::timeout(timeout, n.put_record(bin, value))
                .await
                .unwrap_or_else(|_| Err(ipfs_kit_net::Error::Routing("put timed out".into())))
        })?;
        Ok(peer)
    }

    fn closest_peers(&self, peer: &str) -> Result<Vec<(String, Vec<String>)>, RpcError> {
        let p = parse_peer(peer)?;
        Ok(self
            .ask(move |n| async move { n.closest_peers(p.to_bytes()).await })?
            .into_iter()
            .map(|(p, addrs)| (p.to_string(), addrs.iter().map(|a| a.to_string()).collect()))
            .collect())
    }

    fn reprovide(&self) -> Result<(), RpcError> {
        if self.reprovide_interval.is_zero() {
            return Err(RpcError::normal(
                "invalid configuration: Reprovider.Interval is set to '0'",
            ));
        }
        let trigger = self
            .reprovide
            .lock()
            .clone()
            .ok_or_else(|| RpcError::normal("routing is disabled (Routing.Type none)"))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wait(async move {
            trigger
                .send(tx)
                .await
                .map_err(|_| Error::Network("the reprovider stopped".into()))?;
            rx.await
                .map_err(|_| Error::Network("the reprovider stopped".into()))?
        })
        .map_err(rpc_err)?
        .map_err(rpc_err)?;
        Ok(())
    }

    fn provide_stat(&self) -> Result<Value, RpcError> {
        let s = self.ask(|n| async move { n.provide_stat().await })?;
        let avg = if s.total_provides == 0 {
            0
        } else {
            (s.total_duration.as_nanos() / u128::from(s.total_provides)) as u64
        };
        Ok(json!({
            "TotalProvides": s.total_provides,
            "AvgProvideDuration": avg,
            "LastReprovideDuration": s.last_reprovide_duration.as_nanos() as u64,
            "LastReprovideBatchSize": s.last_reprovide_keys,
        }))
    }

    fn bandwidth(&self, protocol: Option<&str>, peer: Option<&str>) -> Result<Bandwidth, RpcError> {
        let bw = self.net.bandwidth();
        let s = match (protocol, peer) {
            (Some(p), _) => bw.protocol(p),
            (None, Some(p)) => bw.peer(&parse_peer(p)?),
            (None, None) => bw.total(),
        };
        Ok(Bandwidth {
            total_in: s.total_in,
            total_out: s.total_out,
            rate_in: s.rate_in,
            rate_out: s.rate_out,
        })
    }

    fn ping(
        &self,
        peer: &str,
        count: usize,
        emit: &mut dyn FnMut(PingLine) -> io::Result<()>,
    ) -> Result<(), RpcError> {
        let p = peer_of(peer)?;
        if p == self.net.peer_id() {
            return Err(RpcError::normal("error: can't ping self"));
        }
        // A multiaddr names where to find the peer.
        if let Ok(addr) = peer.parse::<Multiaddr>() {
            self.ask(move |n| async move { n.connect(addr).await })?;
        }
        let mut rx = self.net.ping(p, count);
        while let Some(item) = self.runtime.block_on(rx.recv()) {
            let e = item.map_err(RpcError::normal)?;
            let line = PingLine {
                success: e.success,
                time_ns: e.time.as_nanos() as u64,
                text: e.text,
            };
            if emit(line).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}

impl Online {
    /// The repo this node serves (providing reads what it stores).
    fn repo_for_provide(&self) -> Result<Arc<Repo>, RpcError> {
        self.repo
            .upgrade()
            .ok_or_else(|| RpcError::normal("the node is shutting down"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_edits_the_config_and_answers_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path(), crate::InitOptions::default()).unwrap();
        let peer =
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEbVBxPj33sFXuFNn4PrD27ygaqLxfNSYghu8q52y7xYh";
        assert!(
            repo.bootstrap(None).unwrap().is_empty(),
            "private by default"
        );
        let add = |a: &str| repo.bootstrap(Some(BootstrapEdit::Add(vec![a.to_string()])));
        assert_eq!(add(peer).unwrap(), vec![peer.to_string()]);
        assert!(add(peer).unwrap().is_empty(), "already listed");
        assert!(matches!(
            add("/ip4/127.0.0.1/tcp/1"),
            Err(Error::Invalid(_))
        ));
        assert_eq!(repo.bootstrap(None).unwrap(), vec![peer.to_string()]);
        let defaults = repo.bootstrap(Some(BootstrapEdit::AddDefault)).unwrap();
        assert_eq!(defaults.len(), PUBLIC_BOOTSTRAP.len());
        let removed = repo
            .bootstrap(Some(BootstrapEdit::Remove(vec![peer.to_string()])))
            .unwrap();
        assert_eq!(removed, vec![peer.to_string()]);
        assert_eq!(
            repo.bootstrap(Some(BootstrapEdit::RemoveAll)).unwrap(),
            defaults
        );
        // Written through: a reopened repo sees the empty list.
        drop(repo);
        assert!(Repo::open(dir.path())
            .unwrap()
            .bootstrap(None)
            .unwrap()
            .is_empty());
    }
}
