//! libp2p's Kademlia behaviour, with one event held back: a new listen address while no peer
//! is connected makes libp2p schedule a bootstrap ("the network interfaces may just have come
//! up"), which with an empty routing table can only fail, warning "Failed to trigger bootstrap:
//! No known peers" at every start of a private node. That trigger is withheld while the routing
//! table is empty; bootstrapping still runs when peers arrive (libp2p triggers it for each new
//! routing table entry) and periodically when bootstrap peers are configured.

use std::ops::{Deref, DerefMut};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::kad;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::records::SharedStore;

/// The node's Kademlia behaviour (see the module docs for what it changes).
pub struct Kad(pub kad::Behaviour<SharedStore>);

impl Deref for Kad {
    type Target = kad::Behaviour<SharedStore>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Kad {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Kad {
    fn routing_table_empty(&mut self) -> bool {
        self.0.kbuckets().all(|b| b.num_entries() == 0)
    }
}

impl NetworkBehaviour for Kad {
    type ConnectionHandler = <kad::Behaviour<SharedStore> as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = kad::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.0.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if matches!(event, FromSwarm::NewListenAddr(_)) && self.routing_table_empty() {
            return;
        }
        self.0.on_swarm_event(event)
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.0
            .on_connection_handler_event(peer_id, connection_id, event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<kad::Event, THandlerInEvent<Self>>> {
        self.0.poll(cx)
    }
}
