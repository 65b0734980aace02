//! Autorelay: which relays a node that AutoNAT found unreachable listens through.
//!
//! As go-libp2p's autorelay (which Kubo runs): the configured static relays when there are any,
//! all of them; otherwise up to [`DESIRED_RELAYS`] connected peers that announce the relay v2
//! hop protocol. A relay whose circuit listener closes (the relay left, or refused the
//! reservation) is replaced by the next candidate, and not asked again for [`RETRY_AFTER`], so a
//! refusing peer is not asked in a loop.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// The relay v2 protocol a relay serves reservations on.
pub const HOP_PROTOCOL: &str = "/libp2p/circuit/relay/0.2.0/hop";
/// Relays found among peers that a node listens through at once (go-libp2p's default).
pub const DESIRED_RELAYS: usize = 2;
/// How long a relay whose listener closed is passed over.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// The relays a node listens through, and those lately lost.
#[derive(Default)]
pub struct Relays {
    listeners: HashMap<ListenerId, PeerId>,
    lost: HashMap<PeerId, Instant>,
}

impl Relays {
    /// Circuit addresses (`…/p2p/<relay>/p2p-circuit`) to listen on now, given the static
    /// relays (`/…/p2p/<relay>`) and the connected peers that serve hop, each with an address
    /// it was reached at. Call [`Relays::listening`] for each listener then made.
    pub fn wanted(
        &mut self,
        statics: &[Multiaddr],
        hops: Vec<(PeerId, Multiaddr)>,
    ) -> Vec<Multiaddr> {
        let now = Instant::now();
        self.lost
            .retain(|_, at| now.duration_since(*at) < RETRY_AFTER);
        let (candidates, want): (Vec<(PeerId, Multiaddr)>, usize) = if statics.is_empty() {
            let hops = hops
                .into_iter()
                .filter(|(_, a)| !a.iter().any(|p| p == Protocol::P2pCircuit))
                .map(|(peer, a)| (peer, a.with_p2p(peer).unwrap_or_else(|a| a)))
                .collect();
            (hops, DESIRED_RELAYS)
        } else {
            let statics = statics
                .iter()
                .filter_map(|a| match a.iter().last() {
                    Some(Protocol::P2p(peer)) => Some((peer, a.clone())),
                    _ => None,
                })
                .collect();
            (statics, usize::MAX)
        };
        let mut free = want.saturating_sub(self.listeners.len());
        let mut out: Vec<(PeerId, Multiaddr)> = Vec::new();
        for (peer, addr) in candidates {
            if free == 0 {
                break;
            }
            let busy = self.listeners.values().any(|p| *p == peer)
                || self.lost.contains_key(&peer)
                || out.iter().any(|(p, _)| *p == peer);
            if !busy {
                out.push((peer, addr.with(Protocol::P2pCircuit)));
                free -= 1;
            }
        }
        out.into_iter().map(|(_, a)| a).collect()
    }

    /// A circuit listener now runs on `addr` (as returned by [`Relays::wanted`]).
    pub fn listening(&mut self, id: ListenerId, addr: &Multiaddr) {
        if let Some(relay) = relay_of(addr) {
            self.listeners.insert(id, relay);
        }
    }

    /// Listener `id` closed; whether it was one of ours (then look for a replacement).
    pub fn closed(&mut self, id: ListenerId) -> bool {
        match self.listeners.remove(&id) {
            Some(relay) => {
                self.lost.insert(relay, Instant::now());
                true
            }
            None => false,
        }
    }
}

/// The relay of a circuit address: the peer ID before `/p2p-circuit`.
fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(peer: PeerId, port: u16) -> (PeerId, Multiaddr) {
        (peer, format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap())
    }

    #[test]
    fn at_most_two_found_relays_and_a_lost_one_is_replaced_but_not_retried() {
        let mut r = Relays::default();
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let hops = || {
            peers
                .iter()
                .enumerate()
                .map(|(i, p)| addr(*p, 4000 + i as u16))
                .collect()
        };
        let first = r.wanted(&[], hops());
        assert_eq!(first.len(), DESIRED_RELAYS);
        let ids: Vec<ListenerId> = first
            .iter()
            .map(|a| {
                let id = ListenerId::next();
                r.listening(id, a);
                id
            })
            .collect();
        assert!(r.wanted(&[], hops()).is_empty(), "two relays are enough");
        assert!(r.closed(ids[0]));
        let lost = relay_of(&first[0]).unwrap();
        let next = r.wanted(&[], hops());
        assert_eq!(next.len(), 1);
        assert_ne!(
            relay_of(&next[0]),
            Some(lost),
            "a lost relay is not asked again at once"
        );
        assert!(next[0].to_string().ends_with("/p2p-circuit"));
        assert!(!r.closed(ListenerId::next()), "not one of ours");
    }

    #[test]
    fn static_relays_are_all_used_and_found_ones_ignored() {
        let mut r = Relays::default();
        let statics: Vec<Multiaddr> = (0..3)
            .map(|i| {
                let (p, a) = addr(PeerId::random(), 5000 + i);
                a.with(Protocol::P2p(p))
            })
            .collect();
        let found = vec![addr(PeerId::random(), 6000)];
        let want = r.wanted(&statics, found);
        assert_eq!(want.len(), 3);
        for (w, s) in want.iter().zip(&statics) {
            assert_eq!(*w, s.clone().with(Protocol::P2pCircuit));
        }
    }

    #[test]
    fn relayed_addresses_are_not_relays() {
        let mut r = Relays::default();
        let relay = PeerId::random();
        let via: Multiaddr = format!("/ip4/10.0.0.1/tcp/1/p2p/{}/p2p-circuit", PeerId::random())
            .parse()
            .unwrap();
        assert!(r.wanted(&[], vec![(relay, via)]).is_empty());
    }
}
