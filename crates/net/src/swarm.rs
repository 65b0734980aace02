//! The composed behaviour and the swarm built from a [`Config`].

use std::sync::Arc;
use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, Transport as _};
use libp2p::core::upgrade::Version;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    autonat, dcutr, gossipsub, identify, kad, mdns, noise, ping, relay, tcp, yamux, PeerId,
    StreamProtocol, Swarm,
};

use crate::bandwidth::{Bandwidth, Counted};
use crate::dht::Kad;
use crate::records::SharedStore;
use crate::{Config, Error, RoutingMode};

/// Kubo's DHT protocol.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/kad/1.0.0");
/// Kubo's LAN DHT protocol (the "dual" DHT's instance for private addresses).
pub const KAD_LAN_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/lan/kad/1.0.0");
/// libp2p's ping protocol, which `ping` speaks on its own streams.
pub const PING_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");

/// Everything the node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub bitswap: ipfs_kit_bitswap::Behaviour,
    pub kad: Toggle<Kad>,
    /// The same DHT on Kubo's LAN protocol, over the same store (see `records`).
    pub kad_lan: Toggle<Kad>,
    pub gossipsub: Toggle<gossipsub::Behaviour>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Outbound streams the node writes itself: batched `ADD_PROVIDER`, on-demand pings.
    pub stream: libp2p_stream::Behaviour,
    pub autonat: Toggle<autonat::Behaviour>,
    pub relay_client: Toggle<relay::client::Behaviour>,
    pub relay: Toggle<relay::Behaviour>,
    pub dcutr: Toggle<dcutr::Behaviour>,
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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TCP (Noise, Yamux) and QUIC-v1.
fn direct(key: &libp2p::identity::Keypair) -> Result<Boxed<(PeerId, StreamMuxerBox)>, BoxError> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let quic = libp2p::quic::tokio::Transport::new(libp2p::quic::Config::new(key))
        .map(|(peer, conn), _| (peer, StreamMuxerBox::new(crate::quic::Connection(conn))));
    Ok(tcp
        .or_transport(quic)
        .map(|either, _| either.into_inner())
        .boxed())
}

/// The direct transports behind DNS resolution (`/dns*` addresses, such as the public
/// bootstrap list's `/dnsaddr`, with the system's resolver), circuits through relays when the
/// relay client is on, and every connection's muxer wrapped so `stats bw` counts its streams.
fn transport(
    key: &libp2p::identity::Keypair,
    relay: Option<relay::client::Transport>,
    bandwidth: Arc<Bandwidth>,
) -> Result<Boxed<(PeerId, Counted)>, BoxError> {
    let mut transport = match libp2p::dns::tokio::Transport::system(direct(key)?) {
        Ok(dns) => dns.boxed(),
        Err(e) => {
            tracing::debug!("no DNS resolution for /dns addresses: {e}");
            direct(key)?
        }
    };
    if let Some(relay) = relay {
        // The relay first: it declines other addresses at once, whereas the DNS transport
        // takes every address and fails later on ones it cannot dial.
        let relayed = relay
            .upgrade(Version::V1Lazy)
            .authenticate(noise::Config::new(key)?)
            .multiplex(yamux::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
        transport = relayed
            .or_transport(transport)
            .map(|either, _| either.into_inner())
            .boxed();
    }
    Ok(transport
        .map(move |(peer, muxer), _| (peer, bandwidth.wrap(peer, muxer)))
        .boxed())
}

pub fn build(config: &Config, bandwidth: Arc<Bandwidth>) -> Result<Swarm<Behaviour>, Error> {
    let err = |e: &dyn std::fmt::Display| Error::Transport(e.to_string());
    let local = config.keypair.public().to_peer_id();
    let (relay_transport, relay_client) = match config.relay_client {
        true => {
            let (t, b) = relay::client::new(local);
            (Some(t), Some(b))
        }
        false => (None, None),
    };
    let swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_other_transport(|key| transport(key, relay_transport, bandwidth))
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
                // Kubo's reprovide interval is ours to run (crate::provide): libp2p's own
                // republishing would provide every key again with one lookup each.
                cfg.set_provider_publication_interval(None);
                // Kubo's provider record lifetime.
                cfg.set_provider_record_ttl(Some(Duration::from_secs(48 * 3600)));
                // Periodic bootstrap runs only with somewhere to start from (see crate::dht for
                // the other trigger). A node that meets peers later (swarm connect) bootstraps
                // as they enter its routing table.
                if config.bootstrap.is_empty() {
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
                Kad(kad)
            };
            let on = config.routing != RoutingMode::None;
            let kad = on.then(|| make_kad(KAD_PROTOCOL));
            let kad_lan = on.then(|| make_kad(KAD_LAN_PROTOCOL));
            let gossipsub = if config.pubsub {
                let cfg = gossipsub::ConfigBuilder::default()
                    .validation_mode(gossipsub::ValidationMode::Strict)
                    // Every message waits for our verdict before it is forwarded: record
                    // topics are checked against the pubsub value store (see event_loop).
                    .validate_messages()
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
            let autonat = {
                let mut cfg = autonat::Config {
                    only_global_ips: config.autonat_only_global,
                    ..Default::default()
                };
                if !config.autonat_service {
                    // Kubo's AutoNAT.ServiceMode "disabled": ask others, dial back for nobody.
                    cfg.throttle_clients_global_max = 0;
                    cfg.throttle_clients_peer_max = 0;
                }
                Some(autonat::Behaviour::new(peer_id, cfg))
            };
            let relay = config
                .relay_service
                .then(|| relay::Behaviour::new(peer_id, relay::Config::default()));
            let dcutr = (config.relay_client && config.hole_punching)
                .then(|| dcutr::Behaviour::new(peer_id));
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
                stream: libp2p_stream::Behaviour::new(),
                autonat: autonat.into(),
                relay_client: relay_client.into(),
                relay: relay.into(),
                dcutr: dcutr.into(),
            })
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    Ok(swarm)
}
