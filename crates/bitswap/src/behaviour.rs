//! The bitswap `NetworkBehaviour`: routes messages between the swarm's connections and the
//! owner (which runs the [`crate::client::Client`] and [`crate::server::Server`]), and keeps the
//! per-peer send-queue accounting the server's fairness relies on.

use std::collections::{HashMap, VecDeque};
use std::task::{Context, Poll, Waker};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::handler::{FromBehaviour, Handler, ToBehaviour};
use crate::message::Message;
use crate::Stats;

/// What the behaviour reports.
#[derive(Debug)]
pub enum Event {
    /// A message from `peer`.
    Message {
        /// The sender.
        peer: PeerId,
        /// The message (its blocks already verified against their CIDs).
        message: Message,
    },
    /// The first connection to a peer is up: it may speak bitswap.
    PeerConnected(PeerId),
    /// The last connection to a peer is gone, or it does not speak bitswap.
    PeerDisconnected(PeerId),
    /// The bytes queued for the peer fell below the drain threshold: it can take more.
    Drained(PeerId),
}

#[derive(Default)]
struct Peer {
    connections: Vec<ConnectionId>,
    /// Approximate bytes handed to the handler and not yet written.
    queued: usize,
    unsupported: bool,
}

/// The bitswap behaviour.
pub struct Behaviour {
    /// [`Event::Drained`] fires when a peer's queue falls below this many bytes.
    drain_threshold: usize,
    peers: HashMap<PeerId, Peer>,
    pending: VecDeque<ToSwarm<Event, FromBehaviour>>,
    stats: Stats,
    /// Woken when `send` queues work from outside the swarm's poll.
    waker: Option<Waker>,
}

impl Behaviour {
    /// A behaviour with no peers yet. `drain_threshold`: see [`Event::Drained`].
    pub fn new(drain_threshold: usize) -> Self {
        Behaviour {
            drain_threshold,
            peers: HashMap::new(),
            pending: VecDeque::new(),
            stats: Stats::default(),
            waker: None,
        }
    }

    /// Queues `message` for `peer` on one of its connections. Returns false (and drops the
    /// message) when the peer is not connected or does not speak bitswap.
    pub fn send(&mut self, peer: PeerId, message: Message) -> bool {
        if message.is_empty() {
            return true;
        }
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        let Some(&conn) = p.connections.first() else {
            return false;
        };
        if p.unsupported {
            return false;
        }
        // A message over the frame limit would be refused whole by the receiver.
        for part in message.split(crate::protocol::MAX_MESSAGE_SIZE) {
            p.queued += part.approx_size();
            self.stats.messages_sent += 1;
            for b in &part.blocks {
                self.stats.blocks_sent += 1;
                self.stats.data_sent += b.data().len() as u64;
            }
            self.pending.push_back(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(conn),
                event: FromBehaviour::Send(part),
            });
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        true
    }

    /// Bytes queued for `peer` and not yet written: the server waits while this is high.
    pub fn queued_bytes(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.queued)
    }

    /// Connected peers that may speak bitswap.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.unsupported && !p.connections.is_empty())
            .map(|(id, _)| id)
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Counts a block that arrived but was already had or no longer wanted.
    pub fn count_duplicate(&mut self, bytes: usize) {
        self.stats.dup_blocks_received += 1;
        self.stats.dup_data_received += bytes as u64;
    }

    fn connected(&mut self, peer: PeerId, conn: ConnectionId) {
        let p = self.peers.entry(peer).or_default();
        p.connections.push(conn);
        if p.connections.len() == 1 && !p.unsupported {
            self.pending
                .push_back(ToSwarm::GenerateEvent(Event::PeerConnected(peer)));
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        conn: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.connected(peer, conn);
        Ok(Handler::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        conn: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.connected(peer, conn);
        Ok(Handler::new())
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id,
            connection_id,
            ..
        }) = event
        {
            if let Some(p) = self.peers.get_mut(&peer_id) {
                p.connections.retain(|c| *c != connection_id);
                if p.connections.is_empty() {
                    let was_bitswap = !p.unsupported;
                    self.peers.remove(&peer_id);
                    if was_bitswap {
                        self.pending
                            .push_back(ToSwarm::GenerateEvent(Event::PeerDisconnected(peer_id)));
                    }
                }
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        _conn: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            ToBehaviour::Received(message) => {
                self.stats.messages_received += 1;
                for b in &message.blocks {
                    self.stats.blocks_received += 1;
                    self.stats.data_received += b.data().len() as u64;
                }
                self.pending
                    .push_back(ToSwarm::GenerateEvent(Event::Message { peer, message }));
            }
            ToBehaviour::Drained(bytes) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    let before = p.queued;
                    p.queued = p.queued.saturating_sub(bytes);
                    if before >= self.drain_threshold && p.queued < self.drain_threshold {
                        self.pending
                            .push_back(ToSwarm::GenerateEvent(Event::Drained(peer)));
                    }
                }
            }
            ToBehaviour::Unsupported => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    if !p.unsupported {
                        p.unsupported = true;
                        p.queued = 0;
                        self.pending
                            .push_back(ToSwarm::GenerateEvent(Event::PeerDisconnected(peer)));
                    }
                }
            }
            ToBehaviour::StreamError(e) => {
                tracing::debug!(%peer, "bitswap stream: {e}");
            }
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        match self.pending.pop_front() {
            Some(e) => Poll::Ready(e),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
