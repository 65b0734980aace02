//! The ipfs-kit libp2p node: swarm assembly (TCP, QUIC-v1, Noise, Yamux; identify, ping,
//! Kademlia, gossipsub, mDNS, bitswap) and a [`Network`] handle whose methods talk to one event
//! loop task that owns the swarm.
//!
//! The node is private by default: it listens where told, dials only what it is told (config,
//! `swarm connect`, providers found through the DHT of peers it already knows), has no bootstrap
//! peers and no mDNS unless configured.
//!
//! Blocks come and go through a [`BlockStore`] the owner supplies; every block received is
//! verified against its CID before it is stored or handed to anyone (see docs/bitswap.md).

mod autorelay;
mod bandwidth;
mod dag;
mod dht;
mod event_loop;
mod fetch;
mod ping;
mod provide;
mod pubsub;
mod quic;
pub mod records;
mod store;
mod swarm;
mod values;

use std::sync::Arc;
use std::time::Duration;

use ipfs_kit_block::{Block, Bytes, Cid};
pub use libp2p::identity::Keypair;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

pub use bandwidth::{Bandwidth, BandwidthStat};
pub use dag::FetchStats;
pub use event_loop::{BitswapStat, PeerInfo};
pub use ping::PingEvent;
pub use provide::{ProvideOutcome, ProvideStat, ANNOUNCE_QUEUE};
pub use pubsub::{PubsubMessage, Subscription};
pub use records::{FoundPeer, RecordError};
pub use values::{record_topic, MAX_FOLLOWED};

/// Errors of the network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network task has stopped.
    #[error("the network is shut down")]
    Shutdown,
    /// A listen address could not be bound or the transport could not be built.
    #[error("{0}")]
    Transport(String),
    /// Dialing failed.
    #[error("failure: dial {addr}: {reason}")]
    Dial {
        /// The address dialed.
        addr: String,
        /// Why it failed.
        reason: String,
    },
    /// Nobody gave us the block in time.
    #[error("block {0} was not found on the network in time")]
    NotFound(Cid),
    /// Bad input: an address, a topic, a key.
    #[error("{0}")]
    Invalid(String),
    /// A DHT or pubsub operation failed.
    #[error("{0}")]
    Routing(String),
    /// The block store failed.
    #[error("block store: {0}")]
    Store(String),
    /// Bitswap refused (too many wants).
    #[error(transparent)]
    Bitswap(#[from] ipfs_kit_bitswap::Error),
    /// A block could not be decoded while walking a DAG.
    #[error(transparent)]
    Block(#[from] ipfs_kit_block::Error),
    /// A DHT record that does not validate for its key.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// How the node takes part in the Kademlia DHT (Kubo's `Routing.Type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RoutingMode {
    /// Server when the node has a confirmed public address, client otherwise (`dht`, "auto").
    #[default]
    Auto,
    /// Query only (`dhtclient`).
    Client,
    /// Answer queries too (`dhtserver`).
    Server,
    /// No DHT (`none`).
    None,
}

impl RoutingMode {
    /// Parses Kubo's names: `dht`/`auto`, `dhtclient`/`autoclient`, `dhtserver`, `none`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "dht" | "auto" | "" => RoutingMode::Auto,
            "dhtclient" | "autoclient" => RoutingMode::Client,
            "dhtserver" => RoutingMode::Server,
            "none" => RoutingMode::None,
            other => {
                return Err(Error::Invalid(format!(
                    "unknown routing type {other:?} (expected dht, dhtclient, dhtserver or none)"
                )))
            }
        })
    }
}

/// Network settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's identity.
    pub keypair: Keypair,
    /// Addresses to listen on (`/ip4/…/tcp/…`, `/ip4/…/udp/…/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Addresses announced instead of the listen addresses, when set.
    pub announce: Vec<Multiaddr>,
    /// Peers dialed at start (`/…/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Local-network discovery.
    pub mdns: bool,
    /// DHT participation.
    pub routing: RoutingMode,
    /// Gossipsub pubsub.
    pub pubsub: bool,
    /// Connection manager: trim down to this many peers…
    pub conn_low_water: usize,
    /// …when more than this many are connected…
    pub conn_high_water: usize,
    /// …sparing connections younger than this.
    pub conn_grace: Duration,
    /// Bitswap client settings.
    pub bitswap_client: ipfs_kit_bitswap::client::ClientConfig,
    /// Bitswap server settings.
    pub bitswap_server: ipfs_kit_bitswap::server::ServerConfig,
    /// The agent version identify announces.
    pub agent_version: String,
    /// Circuit relay v2 client: dial and listen through relays (Kubo's
    /// `Swarm.RelayClient.Enabled`).
    pub relay_client: bool,
    /// Relays to listen through once AutoNAT finds the node unreachable (Kubo's
    /// `Swarm.RelayClient.StaticRelays`), as `/…/p2p/<relay>` addresses. Without any, the
    /// node listens through connected peers that offer to relay (autorelay).
    pub static_relays: Vec<Multiaddr>,
    /// Act as a relay for others (Kubo's `Swarm.RelayService.Enabled`).
    pub relay_service: bool,
    /// Upgrade relayed connections to direct ones (DCUtR; Kubo's `Swarm.EnableHolePunching`).
    pub hole_punching: bool,
    /// Dial peers back for their AutoNAT probes (Kubo's `AutoNAT.ServiceMode` "enabled"); the
    /// client side, which learns this node's reachability, always runs.
    pub autonat_service: bool,
    /// Provide batches with a crawl of the DHT and direct `ADD_PROVIDER`s (see
    /// docs/network.md, "Providing"; Kubo's `Routing.AcceleratedDHTClient` in spirit); off:
    /// one lookup per key, as Kubo's default provider does.
    pub accelerated_provide: bool,
    /// AutoNAT considers only public IP addresses, as go-libp2p does. Turned off only to test
    /// reachability on private networks (loopback, network namespaces).
    pub autonat_only_global: bool,
}

/// What AutoNAT concluded about this node's reachability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// Not known yet (too few probes).
    Unknown,
    /// Peers could dial this address back.
    Public(Multiaddr),
    /// Peers could not dial back: behind a NAT or firewall.
    Private,
}

impl Config {
    /// Defaults around `keypair`: loopback TCP and QUIC on free ports, private (no bootstrap,
    /// no mDNS), DHT auto, pubsub off.
    pub fn new(keypair: Keypair) -> Self {
        Config {
            keypair,
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".parse().expect("literal address"),
                "/ip4/127.0.0.1/udp/0/quic-v1"
                    .parse()
                    .expect("literal address"),
            ],
            announce: Vec::new(),
            bootstrap: Vec::new(),
            mdns: false,
            routing: RoutingMode::Auto,
            pubsub: false,
            conn_low_water: 32,
            conn_high_water: 96,
            conn_grace: Duration::from_secs(20),
            bitswap_client: Default::default(),
            bitswap_server: Default::default(),
            agent_version: format!("ipfs-kit/{}", env!("CARGO_PKG_VERSION")),
            relay_client: true,
            static_relays: Vec::new(),
            relay_service: false,
            hole_punching: true,
            autonat_service: true,
            autonat_only_global: true,
            accelerated_provide: true,
        }
    }
}

/// Where the network reads and writes blocks. Implementations must be cheap to call from a
/// blocking thread; the network never calls them on its event loop.
pub trait BlockStore: Send + Sync + 'static {
    /// The block's bytes, when stored.
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, String>;
    /// The block's size, when stored.
    fn size(&self, cid: &Cid) -> Result<Option<u64>, String>;
    /// Stores verified blocks (durably, before returning).
    fn put_many(&self, blocks: Vec<Block>) -> Result<(), String>;
}

pub(crate) enum Command {
    Connect {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, Error>>,
    },
    Disconnect {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Addrs(oneshot::Sender<(Vec<Multiaddr>, Vec<Multiaddr>)>),
    Listen {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    KnownAddrs(oneshot::Sender<Vec<(PeerId, Vec<Multiaddr>)>>),
    PeerIdentity {
        peer: PeerId,
        reply: oneshot::Sender<Option<event_loop::Identity>>,
    },
    Want {
        cid: Cid,
        reply: oneshot::Sender<Result<Block, String>>,
    },
    Unwant(Cid),
    /// Answered once every block received so far is stored, with the last store error if
    /// the writer failed more than `since` times in all.
    Settle {
        since: u64,
        reply: oneshot::Sender<Result<(), String>>,
    },
    BitswapStat(oneshot::Sender<BitswapStat>),
    Wantlist {
        peer: Option<PeerId>,
        reply: oneshot::Sender<Vec<Cid>>,
    },
    Ledger {
        peer: PeerId,
        reply: oneshot::Sender<ipfs_kit_bitswap::server::LedgerStats>,
    },
    Pubsub(pubsub::Command),
    FindProviders {
        cid: Cid,
        limit: usize,
        reply: mpsc::Sender<PeerInfo>,
    },
    Provide {
        cids: Vec<Cid>,
        reprovide: bool,
        reply: oneshot::Sender<Result<ProvideOutcome, Error>>,
    },
    Announce(Vec<Cid>),
    ProvideStat(oneshot::Sender<ProvideStat>),
    DhtStore(oneshot::Sender<records::DhtStoreStat>),
    Reachability(oneshot::Sender<Reachability>),
    Protocols(oneshot::Sender<Vec<String>>),
    FindPeer {
        peer: PeerId,
        reply: oneshot::Sender<Result<Vec<Multiaddr>, Error>>,
    },
    GetRecord {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, Error>>,
    },
    PutRecord {
        key: Vec<u8>,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    ClosestPeers {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<FoundPeer>, Error>>,
    },
    Shutdown,
}

/// A handle on the running network. Cheap to clone; every method is a message to the event
/// loop and back.
#[derive(Clone)]
pub struct Network {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    public_key: libp2p::identity::PublicKey,
    store: Arc<dyn BlockStore>,
    bandwidth: Arc<Bandwidth>,
    control: libp2p_stream::Control,
    store_failures: Arc<std::sync::atomic::AtomicU64>,
    values: values::Values,
}

/// A point in the block writer's history, from [`Network::store_mark`]: [`Network::settle`]
/// reports the writer's failures after it.
#[derive(Clone, Copy, Debug)]
pub struct StoreMark(u64);

/// Commands queued to the event loop at most; senders wait beyond this.
const COMMAND_QUEUE: usize = 1024;

impl Network {
    /// Builds the swarm, starts listening and dialing the bootstrap peers, and spawns the event
    /// loop on the current tokio runtime.
    pub async fn start(
        config: Config,
        store: Arc<dyn BlockStore>,
    ) -> Result<(Network, tokio::task::JoinHandle<()>), Error> {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let peer_id = config.keypair.public().to_peer_id();
        let public_key = config.keypair.public();
        let bandwidth = Arc::new(Bandwidth::default());
        let event_loop =
            event_loop::EventLoop::new(config, store.clone(), rx, bandwidth.clone()).await?;
        let control = event_loop.stream_control();
        let store_failures = event_loop.store_failures();
        let values = event_loop.values();
        let task = tokio::spawn(event_loop.run());
        Ok((
            Network {
                tx,
                peer_id,
                public_key,
                store,
                bandwidth,
                control,
                store_failures,
                values,
            },
            task,
        ))
    }

    /// This node's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// This node's public key.
    pub fn public_key(&self) -> &libp2p::identity::PublicKey {
        &self.public_key
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Dials `addr` (which may end in `/p2p/<id>`) and waits for the connection.
    pub async fn connect(&self, addr: Multiaddr) -> Result<PeerId, Error> {
        self.ask(|reply| Command::Connect { addr, reply }).await?
    }

    /// Closes every connection to `peer`; false when there was none.
    pub async fn disconnect(&self, peer: PeerId) -> Result<bool, Error> {
        self.ask(|reply| Command::Disconnect { peer, reply }).await
    }

    /// Open connections, a peer's in the order they were made (Kubo's `swarm peers`).
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.ask(Command::Peers).await
    }

    /// (listen addresses, addresses announced to others).
    pub async fn addrs(&self) -> Result<(Vec<Multiaddr>, Vec<Multiaddr>), Error> {
        self.ask(Command::Addrs).await
    }

    /// Starts listening on `addr` as well (a relay circuit, `/…/p2p/<relay>/p2p-circuit`,
    /// listens once the relay grants a reservation: watch [`Network::addrs`]).
    pub async fn listen_on(&self, addr: Multiaddr) -> Result<(), Error> {
        self.ask(|reply| Command::Listen { addr, reply }).await?
    }

    /// Every peer we know addresses for (connected or learnt).
    pub async fn known_addrs(&self) -> Result<Vec<(PeerId, Vec<Multiaddr>)>, Error> {
        self.ask(Command::KnownAddrs).await
    }

    /// What identify told us about `peer`.
    pub async fn peer_identity(&self, peer: PeerId) -> Result<Option<Identity>, Error> {
        self.ask(|reply| Command::PeerIdentity { peer, reply })
            .await
    }

    /// Fetches one block from the network (waits until some peer sends it, or `timeout`).
    /// The block is verified before it is returned, and stored right after, by the writer
    /// thread: a reader does not wait for the fsync'd commit. [`Network::settle`] waits for
    /// it, and wants for a block between its arrival and its commit are answered from
    /// memory.
    pub async fn get_block(&self, cid: Cid, timeout: Duration) -> Result<Block, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Want { cid, reply })
            .await
            .map_err(|_| Error::Shutdown)?;
        // Withdraws the want however this future ends (answer, timeout or being dropped).
        struct Unwant(mpsc::Sender<Command>, Cid);
        impl Drop for Unwant {
            fn drop(&mut self) {
                let _ = self.0.try_send(Command::Unwant(self.1));
            }
        }
        let _unwant = Unwant(self.tx.clone(), cid);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(block))) => Ok(block),
            Ok(Ok(Err(e))) => Err(Error::Store(e)),
            Ok(Err(_)) => Err(Error::Shutdown),
            Err(_) => Err(Error::NotFound(cid)),
        }
    }

    /// Fetches every block of the DAG under `root` that the store lacks, many at once; see
    /// [`FetchStats`]. `timeout` bounds the wait for any one block. Returns once every block
    /// fetched is stored, so a pin recorded afterwards never points at a missing block.
    pub async fn fetch_dag(&self, root: Cid, timeout: Duration) -> Result<FetchStats, Error> {
        dag::fetch(self, root, timeout).await
    }

    /// Where the block writer is now: take one before fetching blocks that must end up
    /// stored, and hand it to [`Network::settle`] after.
    pub fn store_mark(&self) -> StoreMark {
        StoreMark(
            self.store_failures
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Waits until every block received so far is stored. Fails, naming the last failure, if
    /// the writer failed to store anything since `since`: a block fetched after the mark may
    /// be among what was lost.
    pub async fn settle(&self, since: StoreMark) -> Result<(), Error> {
        self.ask(|reply| Command::Settle {
            since: since.0,
            reply,
        })
        .await?
        .map_err(Error::Store)
    }

    /// Bitswap counters and peers.
    pub async fn bitswap_stat(&self) -> Result<BitswapStat, Error> {
        self.ask(Command::BitswapStat).await
    }

    /// Our wantlist, or what `peer` wants from us.
    pub async fn wantlist(&self, peer: Option<PeerId>) -> Result<Vec<Cid>, Error> {
        self.ask(|reply| Command::Wantlist { peer, reply }).await
    }

    /// The bitswap ledger with `peer`.
    pub async fn ledger(
        &self,
        peer: PeerId,
    ) -> Result<ipfs_kit_bitswap::server::LedgerStats, Error> {
        self.ask(|reply| Command::Ledger { peer, reply }).await
    }

    /// Finds up to `limit` providers of `cid` through the DHT; they arrive on the receiver as
    /// they are found.
    pub async fn find_providers(
        &self,
        cid: Cid,
        limit: usize,
    ) -> Result<mpsc::Receiver<PeerInfo>, Error> {
        let (reply, rx) = mpsc::channel(limit.clamp(1, 64));
        self.tx
            .send(Command::FindProviders { cid, limit, reply })
            .await
            .map_err(|_| Error::Shutdown)?;
        Ok(rx)
    }

    /// Announces provider records for `cids` to the DHT and waits until they are sent (see
    /// docs/network.md, "Providing"). Fails when no peer is connected, as Kubo's does.
    pub async fn provide(&self, cids: Vec<Cid>) -> Result<ProvideOutcome, Error> {
        self.ask(|reply| Command::Provide {
            cids,
            reprovide: false,
            reply,
        })
        .await?
    }

    /// [`Network::provide`] for the reprovider: counted as a reprovide in [`ProvideStat`],
    /// and no error when no peer is connected (there is simply nobody to tell).
    pub async fn reprovide(&self, cids: Vec<Cid>) -> Result<ProvideOutcome, Error> {
        self.ask(|reply| Command::Provide {
            cids,
            reprovide: true,
            reply,
        })
        .await?
    }

    /// Queues newly added content for announcement, without waiting. Keys beyond the
    /// announce queue's bound are dropped (the reprovider covers them), never blocking the
    /// caller.
    pub fn announce(&self, cids: Vec<Cid>) {
        if !cids.is_empty() {
            let _ = self.tx.try_send(Command::Announce(cids));
        }
    }

    /// Providing figures (`stats provide`).
    pub async fn provide_stat(&self) -> Result<ProvideStat, Error> {
        self.ask(Command::ProvideStat).await
    }

    /// What the DHT store (behind both instances) holds; empty without a DHT.
    pub async fn dht_store_stat(&self) -> Result<records::DhtStoreStat, Error> {
        self.ask(Command::DhtStore).await
    }

    /// What AutoNAT concluded about this node's reachability.
    pub async fn reachability(&self) -> Result<Reachability, Error> {
        self.ask(Command::Reachability).await
    }

    /// The protocols this node answers on now (what identify tells peers).
    pub async fn protocols(&self) -> Result<Vec<String>, Error> {
        self.ask(Command::Protocols).await
    }

    /// Bytes in and out, overall, by protocol and by peer.
    pub fn bandwidth(&self) -> &Bandwidth {
        &self.bandwidth
    }

    /// Pings `peer` `count` times, a second apart, over libp2p's ping protocol; the events
    /// arrive on the receiver as Kubo's `ping` reports them (see [`PingEvent`]), and an `Err`
    /// last when the ping as a whole failed.
    pub fn ping(&self, peer: PeerId, count: usize) -> mpsc::Receiver<Result<PingEvent, String>> {
        ping::start(self.clone(), peer, count)
    }

    /// Finds addresses of `peer` (known ones, else through the DHT).
    pub async fn find_peer(&self, peer: PeerId) -> Result<Vec<Multiaddr>, Error> {
        self.ask(|reply| Command::FindPeer { peer, reply }).await?
    }

    /// The best valid value stored in the DHT under `key` (a binary `/ipns/…` or `/pk/…` key,
    /// see [`records::key_from_text`]), from this node's store and both DHT instances. Values
    /// that do not validate are dropped wherever they come from; peers that answered with a
    /// stale value are sent the best one afterwards.
    pub async fn get_record(&self, key: Vec<u8>) -> Result<Vec<u8>, Error> {
        self.ask(|reply| Command::GetRecord { key, reply }).await?
    }

    /// Validates `value` for `key`, stores it here and puts it to the closest peers of both
    /// DHT instances. Fails when the record is invalid, worse than the one held here, or no
    /// peer took it.
    pub async fn put_record(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), Error> {
        self.ask(|reply| Command::PutRecord { key, value, reply })
            .await?
    }

    /// The (up to 20) peers closest to `key` in the DHT, nearest first (`dht query`).
    pub async fn closest_peers(&self, key: Vec<u8>) -> Result<Vec<FoundPeer>, Error> {
        self.ask(|reply| Command::ClosestPeers { key, reply })
            .await?
    }

    /// Publishes `data` on `topic` (Kubo semantics: succeeds with no subscribers too).
    pub async fn publish(&self, topic: String, data: Vec<u8>) -> Result<(), Error> {
        self.ask(|reply| Command::Pubsub(pubsub::Command::Publish { topic, data, reply }))
            .await?
    }

    /// Subscribes to `topic`; messages arrive until the subscription is dropped.
    pub async fn subscribe(&self, topic: String) -> Result<Subscription, Error> {
        let (tx, rx) = mpsc::channel(pubsub::SUBSCRIPTION_QUEUE);
        self.ask(|reply| {
            Command::Pubsub(pubsub::Command::Subscribe {
                topic: topic.clone(),
                tx,
                reply,
            })
        })
        .await??;
        Ok(Subscription::new(topic, rx))
    }

    /// Topics this node is subscribed to.
    pub async fn pubsub_topics(&self) -> Result<Vec<String>, Error> {
        self.ask(|reply| Command::Pubsub(pubsub::Command::Topics(reply)))
            .await
    }

    /// Peers we exchange pubsub messages with, on `topic` or on any.
    pub async fn pubsub_peers(&self, topic: Option<String>) -> Result<Vec<PeerId>, Error> {
        self.ask(|reply| Command::Pubsub(pubsub::Command::Peers { topic, reply }))
            .await
    }

    /// Follows the record `key` over pubsub (IPNS over pubsub, as go-libp2p-pubsub-router):
    /// subscribes to [`record_topic`]`(key)`, keeps the best valid value heard there or
    /// fetched from its peers, and serves it to peers over `/libp2p/fetch/0.0.1`. The first
    /// call returns once the topic's current peers were asked (each for up to 10 s).
    pub async fn follow_value(&self, key: Vec<u8>) -> Result<(), Error> {
        self.ask(|reply| Command::Pubsub(pubsub::Command::Follow { key, reply }))
            .await?
    }

    /// Stops following `key`; false when it was not followed.
    pub async fn unfollow_value(&self, key: Vec<u8>) -> Result<bool, Error> {
        self.ask(|reply| Command::Pubsub(pubsub::Command::Unfollow { key, reply }))
            .await
    }

    /// Follows `key`, keeps `value` when it is the best held and publishes it. Fails when
    /// the value is not a valid record for the key; an older value than the one held is
    /// kept back, as Go does.
    pub async fn put_value_pubsub(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), Error> {
        self.ask(|reply| Command::Pubsub(pubsub::Command::PutValue { key, value, reply }))
            .await?
    }

    /// The best valid value held for a followed `key`.
    pub fn pubsub_value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.values.get(key)
    }

    /// The record keys followed over pubsub, sorted.
    pub async fn followed_values(&self) -> Result<Vec<Vec<u8>>, Error> {
        self.ask(|reply| Command::Pubsub(pubsub::Command::FollowedKeys(reply)))
            .await
    }

    /// Stops the event loop (connections close).
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }

    pub(crate) fn store(&self) -> &Arc<dyn BlockStore> {
        &self.store
    }
}

pub use event_loop::Identity;
