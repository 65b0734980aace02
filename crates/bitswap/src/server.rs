//! The server side: a ledger per peer (its wantlist and what we exchanged), fair round-robin
//! scheduling of the work peers ask for, and Kubo's answers. No I/O: the owner takes batches of
//! [`Task`]s, looks the blocks up, and turns the results into messages with
//! [`Server::complete`].

use std::collections::{HashMap, HashSet, VecDeque};

use ipfs_kit_block::{Block, Cid};
use libp2p_identity::PeerId;

use crate::message::{Message, Presence, WantType};

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Wantlist entries kept per peer; more are ignored (boxo drops them too).
    pub max_peer_wants: usize,
    /// Tasks handed out per peer per turn.
    pub batch: usize,
    /// A peer whose unsent replies exceed this waits for its connection to drain.
    pub max_outstanding_bytes: usize,
    /// Block bytes per message (a message is at most 4 MiB on the wire; one block may exceed
    /// this and then travels alone).
    pub target_message_bytes: usize,
    /// A want-have for a block this small is answered with the block itself.
    pub max_block_size_replace_have: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_peer_wants: 8192,
            batch: 16,
            max_outstanding_bytes: 8 << 20,
            target_message_bytes: 1 << 20,
            max_block_size_replace_have: 1024,
        }
    }
}

/// One piece of work: answer `cid` for a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    /// The block asked about.
    pub cid: Cid,
    /// Block or presence.
    pub want_type: WantType,
    /// Whether "no" is to be said out loud.
    pub send_dont_have: bool,
}

/// What the owner found for a task.
#[derive(Clone, Debug)]
pub enum Found {
    /// The block (for want-block, or a small block for want-have).
    Block(Block),
    /// We have it; its size (for want-have).
    Size(u64),
    /// We do not have it.
    Missing,
}

/// Exchange counters of one peer, as `bitswap ledger` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Block bytes sent to the peer.
    pub bytes_sent: u64,
    /// Block bytes received from the peer.
    pub bytes_received: u64,
    /// Blocks sent.
    pub blocks_sent: u64,
    /// Blocks received.
    pub blocks_received: u64,
    /// Messages exchanged either way.
    pub exchanged: u64,
}

#[derive(Default)]
struct Ledger {
    wants: HashMap<Cid, (WantType, bool)>,
    pending: VecDeque<Cid>,
    pending_set: HashSet<Cid>,
    ready: bool,
    stats: LedgerStats,
}

/// The bitswap server state machine.
pub struct Server {
    config: ServerConfig,
    ledgers: HashMap<PeerId, Ledger>,
    /// Peers with pending work, served in turn.
    ready: VecDeque<PeerId>,
}

impl Server {
    /// A server with no ledgers.
    pub fn new(config: ServerConfig) -> Self {
        Server {
            config,
            ledgers: HashMap::new(),
            ready: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Applies the wantlist half of a message (and counts its blocks as received).
    pub fn on_message(&mut self, peer: PeerId, msg: &Message) {
        let max = self.config.max_peer_wants;
        let ledger = self.ledgers.entry(peer).or_default();
        ledger.stats.exchanged += 1;
        for b in &msg.blocks {
            ledger.stats.blocks_received += 1;
            ledger.stats.bytes_received += b.data().len() as u64;
        }
        if msg.full {
            ledger.wants.clear();
        }
        for e in &msg.wantlist {
            if e.cancel {
                ledger.wants.remove(&e.cid);
                continue;
            }
            let full = ledger.wants.len() >= max;
            match ledger.wants.get_mut(&e.cid) {
                Some(w) => {
                    // A want-block supersedes a want-have, never the reverse.
                    if e.want_type == WantType::Block {
                        w.0 = WantType::Block;
                    }
                    w.1 |= e.send_dont_have;
                }
                None if full => continue,
                None => {
                    ledger.wants.insert(e.cid, (e.want_type, e.send_dont_have));
                }
            }
            if ledger.pending_set.insert(e.cid) {
                ledger.pending.push_back(e.cid);
            }
        }
        // Pending entries whose want went away are skipped when taken.
        if !ledger.pending.is_empty() && !ledger.ready {
            ledger.ready = true;
            self.ready.push_back(peer);
        }
    }

    /// Blocks we just got: peers waiting for them (want-block without send-dont-have, or wants
    /// that arrived before the block) get them now.
    pub fn blocks_added(&mut self, cids: &[Cid]) {
        for (peer, ledger) in self.ledgers.iter_mut() {
            for cid in cids {
                if ledger.wants.contains_key(cid) && ledger.pending_set.insert(*cid) {
                    ledger.pending.push_back(*cid);
                }
            }
            if !ledger.pending.is_empty() && !ledger.ready {
                ledger.ready = true;
                self.ready.push_back(*peer);
            }
        }
    }

    /// The peer is gone; so is its ledger.
    pub fn peer_disconnected(&mut self, peer: &PeerId) {
        self.ledgers.remove(peer);
        self.ready.retain(|p| p != peer);
    }

    /// The next batch of work, from the next peer in turn whose connection can take more
    /// (`can_send`). `None` when no peer has work it can be sent now.
    pub fn next_batch(
        &mut self,
        can_send: impl Fn(&PeerId) -> bool,
    ) -> Option<(PeerId, Vec<Task>)> {
        for _ in 0..self.ready.len() {
            let peer = self.ready.pop_front()?;
            let Some(ledger) = self.ledgers.get_mut(&peer) else {
                continue;
            };
            if !can_send(&peer) {
                self.ready.push_back(peer);
                continue;
            }
            let mut tasks = Vec::new();
            while tasks.len() < self.config.batch {
                let Some(cid) = ledger.pending.pop_front() else {
                    break;
                };
                ledger.pending_set.remove(&cid);
                if let Some(&(want_type, send_dont_have)) = ledger.wants.get(&cid) {
                    tasks.push(Task {
                        cid,
                        want_type,
                        send_dont_have,
                    });
                }
            }
            if ledger.pending.is_empty() {
                ledger.ready = false;
            } else {
                self.ready.push_back(peer);
            }
            if !tasks.is_empty() {
                return Some((peer, tasks));
            }
        }
        None
    }

    /// Turns looked-up tasks into messages for `peer` (each under the target size), updating
    /// its ledger: answered wants leave the wantlist; a want-block without send-dont-have for a
    /// block we lack stays until the block arrives.
    pub fn complete(&mut self, peer: PeerId, results: Vec<(Task, Found)>) -> Vec<Message> {
        let Some(ledger) = self.ledgers.get_mut(&peer) else {
            return Vec::new();
        };
        let mut messages = vec![Message::default()];
        let mut bytes = 0usize;
        for (task, found) in results {
            // The want may have been cancelled while we looked.
            let Some(&(want_type, sdh)) = ledger.wants.get(&task.cid) else {
                continue;
            };
            let send_block = |block: Block, messages: &mut Vec<Message>, bytes: &mut usize| {
                let len = block.data().len();
                if *bytes > 0 && *bytes + len > self.config.target_message_bytes {
                    messages.push(Message::default());
                    *bytes = 0;
                }
                *bytes += len;
                if let Some(m) = messages.last_mut() {
                    m.blocks.push(block);
                }
            };
            let answered = match (want_type, found) {
                (WantType::Block, Found::Block(b)) => {
                    ledger.stats.blocks_sent += 1;
                    ledger.stats.bytes_sent += b.data().len() as u64;
                    send_block(b, &mut messages, &mut bytes);
                    true
                }
                (WantType::Have, Found::Block(b))
                    if b.data().len() <= self.config.max_block_size_replace_have =>
                {
                    ledger.stats.blocks_sent += 1;
                    ledger.stats.bytes_sent += b.data().len() as u64;
                    send_block(b, &mut messages, &mut bytes);
                    true
                }
                (WantType::Have, Found::Block(_) | Found::Size(_)) => {
                    if let Some(m) = messages.last_mut() {
                        m.presences.push((task.cid, Presence::Have));
                    }
                    true
                }
                // Asked for the block, but the owner only checked presence: ask again.
                (WantType::Block, Found::Size(_)) => {
                    if ledger.pending_set.insert(task.cid) {
                        ledger.pending.push_back(task.cid);
                    }
                    false
                }
                (_, Found::Missing) if sdh => {
                    if let Some(m) = messages.last_mut() {
                        m.presences.push((task.cid, Presence::DontHave));
                    }
                    true
                }
                (_, Found::Missing) => false,
            };
            if answered {
                ledger.wants.remove(&task.cid);
            }
        }
        if !ledger.pending.is_empty() && !ledger.ready {
            ledger.ready = true;
            self.ready.push_back(peer);
        }
        messages.retain(|m| !m.is_empty());
        ledger.stats.exchanged += messages.len() as u64;
        messages
    }

    /// What `peer` wants from us now.
    pub fn wantlist(&self, peer: &PeerId) -> Vec<Cid> {
        self.ledgers
            .get(peer)
            .map(|l| l.wants.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The ledger counters of `peer`.
    pub fn ledger(&self, peer: &PeerId) -> LedgerStats {
        self.ledgers.get(peer).map(|l| l.stats).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::WantEntry;
    use ipfs_kit_block::{codec, HashAlg};

    fn block(i: u32, len: usize) -> Block {
        let mut data = vec![0u8; len];
        data[..4].copy_from_slice(&i.to_le_bytes());
        Block::encode(codec::RAW, HashAlg::Sha2_256, 1, data)
    }

    fn wants(entries: Vec<WantEntry>) -> Message {
        Message {
            wantlist: entries,
            ..Default::default()
        }
    }

    #[test]
    fn answers_as_kubo_does() {
        let p = PeerId::random();
        let mut s = Server::new(ServerConfig::default());
        let (big, small, gone) = (block(1, 4096), block(2, 100), block(3, 10));
        s.on_message(
            p,
            &wants(vec![
                WantEntry::want(*big.cid(), WantType::Block, false),
                WantEntry::want(*small.cid(), WantType::Have, true),
                WantEntry::want(*gone.cid(), WantType::Block, true),
                WantEntry::want(*big.cid(), WantType::Have, false),
            ]),
        );
        let (peer, tasks) = s.next_batch(|_| true).unwrap();
        assert_eq!((peer, tasks.len()), (p, 3));
        let results = tasks
            .into_iter()
            .map(|t| {
                let found = if t.cid == *big.cid() {
                    Found::Block(big.clone())
                } else if t.cid == *small.cid() {
                    Found::Block(small.clone())
                } else {
                    Found::Missing
                };
                (t, found)
            })
            .collect();
        let msgs = s.complete(p, results);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].blocks, vec![big, small]);
        assert_eq!(msgs[0].presences, vec![(*gone.cid(), Presence::DontHave)]);
        assert!(s.wantlist(&p).is_empty());
        assert_eq!(s.ledger(&p).blocks_sent, 2);
    }

    #[test]
    fn a_silent_want_waits_for_the_block() {
        let p = PeerId::random();
        let mut s = Server::new(ServerConfig::default());
        let b = block(1, 10);
        s.on_message(
            p,
            &wants(vec![WantEntry::want(*b.cid(), WantType::Block, false)]),
        );
        let (_, tasks) = s.next_batch(|_| true).unwrap();
        let msgs = s.complete(p, vec![(tasks[0], Found::Missing)]);
        assert!(msgs.is_empty());
        assert_eq!(s.wantlist(&p), vec![*b.cid()]);
        assert!(s.next_batch(|_| true).is_none());
        s.blocks_added(&[*b.cid()]);
        let (_, tasks) = s.next_batch(|_| true).unwrap();
        assert_eq!(tasks[0].cid, *b.cid());
    }

    #[test]
    fn cancel_and_full_wantlists() {
        let p = PeerId::random();
        let mut s = Server::new(ServerConfig::default());
        let (a, b) = (block(1, 10), block(2, 10));
        s.on_message(
            p,
            &wants(vec![WantEntry::want(*a.cid(), WantType::Block, false)]),
        );
        s.on_message(p, &wants(vec![WantEntry::cancel(*a.cid())]));
        assert!(s.next_batch(|_| true).is_none());
        s.on_message(
            p,
            &wants(vec![WantEntry::want(*a.cid(), WantType::Block, false)]),
        );
        let mut full = wants(vec![WantEntry::want(*b.cid(), WantType::Have, false)]);
        full.full = true;
        s.on_message(p, &full);
        assert_eq!(s.wantlist(&p), vec![*b.cid()]);
    }

    #[test]
    fn peers_take_turns_and_busy_peers_wait() {
        let (p, q) = (PeerId::random(), PeerId::random());
        let mut s = Server::new(ServerConfig {
            batch: 2,
            ..Default::default()
        });
        let entries = |base: u32| {
            (0..6)
                .map(|i| WantEntry::want(*block(base + i, 10).cid(), WantType::Block, true))
                .collect()
        };
        s.on_message(p, &wants(entries(0)));
        s.on_message(q, &wants(entries(100)));
        let order: Vec<PeerId> = (0..4).map(|_| s.next_batch(|_| true).unwrap().0).collect();
        assert_eq!(order, vec![p, q, p, q]);
        // p's connection is full: only q is served.
        assert_eq!(s.next_batch(|x| *x != p).unwrap().0, q);
        assert!(s.next_batch(|x| *x != p).is_none());
        assert_eq!(s.next_batch(|_| true).unwrap().0, p);
    }

    #[test]
    fn wantlists_are_bounded_and_messages_split() {
        let p = PeerId::random();
        let mut s = Server::new(ServerConfig {
            max_peer_wants: 3,
            batch: 10,
            target_message_bytes: 5000,
            ..Default::default()
        });
        let blocks: Vec<Block> = (0..5).map(|i| block(i, 3000)).collect();
        s.on_message(
            p,
            &wants(
                blocks
                    .iter()
                    .map(|b| WantEntry::want(*b.cid(), WantType::Block, false))
                    .collect(),
            ),
        );
        assert_eq!(s.wantlist(&p).len(), 3);
        let (_, tasks) = s.next_batch(|_| true).unwrap();
        assert_eq!(tasks.len(), 3);
        let results = tasks
            .into_iter()
            .map(|t| {
                let b = blocks.iter().find(|b| *b.cid() == t.cid).unwrap().clone();
                (t, Found::Block(b))
            })
            .collect();
        let msgs = s.complete(p, results);
        assert_eq!(
            msgs.iter().map(|m| m.blocks.len()).collect::<Vec<_>>(),
            vec![1, 1, 1]
        );
    }
}
