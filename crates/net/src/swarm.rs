//! The composed behaviour and the swarm built from a [`Config`].

use std::time::Duration;

use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, identify, kad, mdns, noise, ping, tcp, yamux, StreamProtocol, Swarm};

use crate::records::SharedStore;
use crate::{Config, Error, RoutingMode};

/// Kubo's DHT protocol.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");
/// Kubo's LAN DHT protocol (the "dual" DHT's instance for private addresses).
pub const KAD_LAN_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/lan/kad/1.0.0");

/// Everything the node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub bitswap: ipfs_kit_bitswap::Behaviour,
    pub kad: Toggle<kad::Behaviour<SharedStore>>,
    /// The same DHT on Kubo's LAN protocol, over the same store (see `records`).
    pub kad_lan: Toggle<kad::Behaviour<SharedStore>>,
    pub gossipsub: Toggle<gossipsub::Behaviour>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
}

/// Gossipsub message ids as go-libp2p-pubsub computes them by default (`from || seqno`), so
/// IHAVE/IWANT gossip refers to the same messages on both sides.
fn message_id(msg: &gossipsub::Message) -> gossipsub::MessageId {
    let mut id = msg.source.map(|p| p.to_bytes()).unwrap_or_default();
    if let Some(seq) = msg.sequence_number {
        id.extend_from_slice(&seq.to_be_bytes());
    }
    gossipsub::MessageId::new(&id)
}

pub fn build(config: &Config) -> Result<Swarm<Behaviour>, Error> {
    let err = |e: &dyn std::fmt::Display| Error::Transport(e.to_string());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| err(&e))?
        .with_other_transport(|key| {
            use libp2p::core::Transport as _;
            libp2p::quic::tokio::Transport::new(libp2p::quic::Config::new(key))
                .map(|(peer, conn), _| (peer, crate::quic::Connection(conn)))
        })
        .map_err(|e| err(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let identify = identify::Behaviour::new(
                identify::Config::new("ipfs/0.1.0".into(), key.public())
                    .with_agent_version(config.agent_version.clone()),
            );
            let ping =
                ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15)));
            let store = SharedStore::new(peer_id);
            let make_kad = |protocol: StreamProtocol| {
                let mut cfg = kad::Config::new(protocol);
                cfg.set_query_timeout(Duration::from_secs(30));
                if config.bootstrap.is_empty() {
                    // A private node has nobody to bootstrap from; the routing table fills from
                    // the peers it is told about.
                    cfg.set_periodic_bootstrap_interval(None);
                }
                // Value records as Kubo keeps them: for at most 48 h (go-libp2p-kad-dht's
                // MaxRecordAge), never re-replicated or re-published by the DHT itself (the
                // IPNS republisher re-puts our own records), and corrected by the caller after
                // a lookup (see records::Followup) rather than cached blindly.
                cfg.set_record_ttl(Some(Duration::from_secs(48 * 3600)));
                cfg.set_replication_interval(None);
                cfg.set_publication_interval(None);
                cfg.set_caching(kad::Caching::Disabled);
                // A GET_VALUE answer carries a record of up to 10 KiB plus 20 closer peers:
                // more than rust-libp2p's 16 KiB default (go-libp2p-kad-dht reads up to 4 MiB).
                cfg.set_max_packet_size(64 << 10);
                let mut kad = kad::Behaviour::with_config(peer_id, store.clone(), cfg);
                kad.set_mode(match config.routing {
                    RoutingMode::Client => Some(kad::Mode::Client),
                    RoutingMode::Server => Some(kad::Mode::Server),
                    _ => None,
                });
                kad
            };
            let on = config.routing != RoutingMode::None;
            let kad = on.then(|| make_kad(KAD_PROTOCOL));
            let kad_lan = on.then(|| make_kad(KAD_LAN_PROTOCOL));
            let gossipsub = if config.pubsub {
                let cfg = gossipsub::ConfigBuilder::default()
                    .validation_mode(gossipsub::ValidationMode::Strict)
                    .message_id_fn(message_id)
                    .support_floodsub()
                    .max_transmit_size(1 << 20)
                    .build()
                    .map_err(|e| e.to_string())?;
                Some(gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    cfg,
                )?)
            } else {
                None
            };
            let mdns = if config.mdns {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    peer_id,
                )?)
            } else {
                None
            };
            Ok(Behaviour {
                identify,
                ping,
                bitswap: ipfs_kit_bitswap::Behaviour::new(
                    config.bitswap_server.max_outstanding_bytes / 2,
                ),
                kad: kad.into(),
                kad_lan: kad_lan.into(),
                gossipsub: gossipsub.into(),
                mdns: mdns.into(),
            })
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}
