//! DHT value records as Kubo's DHT keeps them: only the `/ipns/` and `/pk/` namespaces, each
//! with its validator (boxo's `ipns.Validator` and the public-key validator), in one bounded
//! store that both Kademlia instances share.
//!
//! Invariant: nothing reaches the store or leaves it without passing [`validate`] at that
//! moment. An inbound `PUT_VALUE` is refused (its stream reset, as go-libp2p-kad-dht answers
//! an error) when the record is invalid or worse than the one held; a stored record that has
//! since expired (IPNS end of life) is dropped when read instead of being served.
//!
//! The two instances: Kubo runs a "dual" DHT, `/ipfs/kad/1.0.0` for the public network and
//! `/ipfs/lan/kad/1.0.0` for peers on private addresses, and only the LAN one takes loopback and
//! private peers into its routing table. So ipfs-kit speaks both, with one store behind them,
//! and asks both in every lookup it makes; see docs/network.md.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

pub use ipfs_kit_ipns::validator::{
    parse_key, select, validate, RecordError, RecordKind, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
use libp2p::kad::store::{self, MemoryStoreConfig, RecordStore};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

use crate::store::Store;
use crate::Error;

/// Most value records the store holds (providers are counted apart).
pub const MAX_RECORDS: usize = 1024;

/// The binary key a textual one names: `/ipns/<peer ID or name>` or `/pk/<peer ID>` (what
/// `routing get|put` take; Kubo's `escapeDhtKey`).
pub fn key_from_text(text: &str) -> Result<Vec<u8>, Error> {
    ipfs_kit_ipns::validator::key_from_text(text)
        .map_err(|_| Error::Invalid("invalid key: expected /ipns/<name> or /pk/<peer ID>".into()))
}

/// The record store both Kademlia instances use: the compact provider [`Store`] (its value
/// records a bounded `MemoryStore`) behind a lock, with every value record validated on the
/// way in and on the way out. Provider records pass through unchanged. The lock is only ever taken on the network task, so it never waits.
#[derive(Clone)]
pub struct SharedStore(Arc<Mutex<Store>>);

impl SharedStore {
    pub(crate) fn new(local: PeerId) -> Self {
        let config = MemoryStoreConfig {
            max_records: MAX_RECORDS,
            max_value_bytes: MAX_VALUE_BYTES,
            ..Default::default()
        };
        SharedStore(Arc::new(Mutex::new(Store::with_record_config(
            local, config,
        ))))
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic elsewhere while holding the lock leaves the map itself intact.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many value records are held.
    pub fn record_count(&self) -> usize {
        self.lock().records().count()
    }

    /// Whether a record `value` for `key` would be kept: valid, and better than the one held.
    pub fn check(&self, key: &[u8], value: &[u8]) -> Result<(), RecordError> {
        validate(key, value, SystemTime::now())?;
        if let Some(old) = self.lock().get(&RecordKey::new(&key)) {
            if select(key, &[value, old.value.as_slice()]) != Some(0) {
                return Err(RecordError::Outdated);
            }
        }
        Ok(())
    }

    /// What the store holds now.
    pub fn stat(&self) -> DhtStoreStat {
        let inner = self.lock();
        DhtStoreStat {
            records: inner.records().count(),
            remote_providers: inner.remote_providers(),
            provided_keys: inner.provided_keys(),
        }
    }
}

/// The DHT store's contents, against its bounds ([`MAX_RECORDS`] value records, 1,000,000
/// provider records from other peers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhtStoreStat {
    /// Value records (IPNS records, public keys).
    pub records: usize,
    /// Provider records from other peers.
    pub remote_providers: usize,
    /// Keys this node provides.
    pub provided_keys: usize,
}

impl RecordStore for SharedStore {
    type RecordsIter<'a> = std::vec::IntoIter<Cow<'a, Record>>;
    type ProvidedIter<'a> = std::vec::IntoIter<Cow<'a, ProviderRecord>>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        let mut inner = self.lock();
        let record = inner.get(k)?.into_owned();
        if validate(record.key.as_ref(), &record.value, SystemTime::now()).is_err() {
            inner.remove(k);
            return None;
        }
        Some(Cow::Owned(record))
    }

    /// Keeps `r` when it is valid and better than the record held, and there is room; drops
    /// it otherwise, *without an error*. libp2p-kad 0.49 answers a failed put from a peer by
    /// closing the inbound stream, but drops the stream's waker as it does: the stream is
    /// never polled again, so the putter waits for an answer until it gives up, and its
    /// connection keeps the dead stream among the 32 inbound streams it may have (past them,
    /// the peer's new DHT streams are dropped). The putter is echoed its record instead, as
    /// for an accepted one; our own puts check first ([`SharedStore::check`]).
    fn put(&mut self, r: Record) -> store::Result<()> {
        let refused = self
            .check(r.key.as_ref(), &r.value)
            .map_err(|e| e.to_string())
            .and_then(|()| self.lock().put(r).map_err(|e| e.to_string()));
        if let Err(e) = refused {
            tracing::debug!("DHT record not stored: {e}");
        }
        Ok(())
    }

    fn remove(&mut self, k: &RecordKey) {
        self.lock().remove(k)
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        let inner = self.lock();
        let now = SystemTime::now();
        inner
            .records()
            .filter(|r| validate(r.key.as_ref(), &r.value, now).is_ok())
            .map(|r| Cow::Owned(r.into_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> store::Result<()> {
        self.lock().add_provider(record)
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.lock().providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.lock()
            .provided()
            .map(|r| Cow::Owned(r.into_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        self.lock().remove_provider(k, p)
    }
}

/// Which of the two Kademlia instances a query runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Dht {
    /// `/ipfs/kad/1.0.0`.
    Wan,
    /// `/ipfs/lan/kad/1.0.0`.
    Lan,
}

/// A peer with its addresses, as a lookup found it.
pub type FoundPeer = (PeerId, Vec<Multiaddr>);

/// One caller's operation, run on one or both instances.
pub(crate) enum Op {
    /// `routing get`: the best valid value, and who answered with a worse one.
    Get {
        key: Vec<u8>,
        best: Option<(Vec<u8>, Option<PeerId>)>,
        /// Peers that sent a valid value other than the best; they get the best afterwards.
        stale: Vec<(PeerId, Vec<u8>)>,
        reply: oneshot::Sender<Result<Vec<u8>, Error>>,
    },
    /// `routing put`: succeeds when any instance stored the record at a peer.
    Put {
        stored: bool,
        error: Option<String>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// `dht query`: the closest peers to a key, merged.
    Closest {
        target: Vec<u8>,
        peers: Vec<FoundPeer>,
        reply: oneshot::Sender<Result<Vec<FoundPeer>, Error>>,
    },
    /// `routing findpeer`: answered as soon as an instance finds the peer.
    FindPeer {
        peer: PeerId,
        reply: Option<oneshot::Sender<Result<Vec<Multiaddr>, Error>>>,
    },
}

/// Operations in flight at most: each holds a waiting caller; more are refused.
pub const MAX_OPS: usize = 256;
/// Peers a stale-record correction is sent to at most.
const MAX_CORRECTIONS: usize = 16;
/// Closest peers `dht query` answers with (Kademlia's k).
pub const CLOSEST: usize = 20;

/// What an operation's end asks the event loop to do.
pub(crate) enum Followup {
    /// Send the best record to peers that had a stale one (Kubo does the same after a get).
    Correct(Record, Vec<PeerId>),
}

/// The operations in flight, by the Kademlia queries that serve them.
#[derive(Default)]
pub(crate) struct Ops {
    queries: HashMap<(Dht, libp2p::kad::QueryId), u64>,
    ops: HashMap<u64, (Op, u8)>,
    next: u64,
}

impl Ops {
    /// Whether `op` can start; otherwise its caller is answered with an error and dropped.
    pub(crate) fn has_room(&self) -> bool {
        self.ops.len() < MAX_OPS
    }

    /// Registers `op` served by `queries` (one per instance). With no query at all the op
    /// ends at once (no DHT).
    pub(crate) fn start(
        &mut self,
        op: Op,
        queries: Vec<(Dht, libp2p::kad::QueryId)>,
    ) -> Option<Followup> {
        if queries.is_empty() {
            return finish(op);
        }
        let id = self.next;
        self.next += 1;
        for q in &queries {
            self.queries.insert(*q, id);
        }
        self.ops.insert(id, (op, queries.len() as u8));
        None
    }

    /// Whether this query serves an operation here.
    pub(crate) fn owns(&self, dht: Dht, id: libp2p::kad::QueryId) -> bool {
        self.queries.contains_key(&(dht, id))
    }

    /// Feeds a query's progress to its operation; on its last step, and once every query of
    /// the operation has ended, the operation answers its caller.
    pub(crate) fn progress(
        &mut self,
        dht: Dht,
        id: libp2p::kad::QueryId,
        result: libp2p::kad::QueryResult,
        last: bool,
    ) -> Option<Followup> {
        use libp2p::kad::{GetRecordOk, QueryResult};
        let op_id = *self.queries.get(&(dht, id))?;
        let (op, _) = self.ops.get_mut(&op_id)?;
        match (op, result) {
            (
                Op::Get {
                    key, best, stale, ..
                },
                QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(found))),
            ) => {
                let value = found.record.value;
                if found.record.key.as_ref() == key.as_slice()
                    && validate(key, &value, SystemTime::now()).is_ok()
                {
                    match best {
                        None => *best = Some((value, found.peer)),
                        Some((b, bpeer)) if *b != value => {
                            if select(key, &[b.as_slice(), value.as_slice()]) == Some(1) {
                                let old = std::mem::replace(b, value);
                                if let Some(p) = bpeer.take() {
                                    stale.push((p, old));
                                }
                                *bpeer = found.peer;
                            } else if let Some(p) = found.peer {
                                stale.push((p, value));
                            }
                        }
                        Some(_) => {}
                    }
                    stale.truncate(MAX_CORRECTIONS);
                } else if let Some(p) = found.peer {
                    tracing::debug!(%p, "dropped an invalid record from a peer");
                }
            }
            (Op::Put { stored, error, .. }, QueryResult::PutRecord(r)) => match r {
                Ok(_) => *stored = true,
                Err(e) => *error = Some(e.to_string()),
            },
            (Op::Closest { target, peers, .. }, QueryResult::GetClosestPeers(Ok(ok))) => {
                let found = ok
                    .peers
                    .into_iter()
                    .map(|p| (p.peer_id, transport(p.addrs)));
                merge_closest(target, peers, found);
            }
            (Op::FindPeer { peer, reply }, QueryResult::GetClosestPeers(Ok(ok))) => {
                if let Some(found) = ok.peers.into_iter().find(|p| p.peer_id == *peer) {
                    if !found.addrs.is_empty() {
                        if let Some(r) = reply.take() {
                            let _ = r.send(Ok(transport(found.addrs)));
                        }
                    }
                }
            }
            _ => {}
        }
        if !last {
            return None;
        }
        self.queries.remove(&(dht, id));
        let (_, pending) = self.ops.get_mut(&op_id)?;
        *pending = pending.saturating_sub(1);
        if *pending > 0 {
            return None;
        }
        let (op, _) = self.ops.remove(&op_id)?;
        finish(op)
    }
}

/// The transport part of each address (without `/p2p/<id>`), as Kubo lists a peer's.
fn transport(addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
    let mut out: Vec<Multiaddr> = Vec::with_capacity(addrs.len());
    for mut a in addrs {
        if matches!(a.iter().last(), Some(libp2p::multiaddr::Protocol::P2p(_))) {
            a.pop();
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Keeps the [`CLOSEST`] peers nearest `target` (XOR distance of the Kademlia keys).
fn merge_closest(target: &[u8], peers: &mut Vec<FoundPeer>, more: impl Iterator<Item = FoundPeer>) {
    for (p, addrs) in more {
        match peers.iter_mut().find(|(q, _)| *q == p) {
            Some((_, known)) => {
                for a in addrs {
                    if !known.contains(&a) {
                        known.push(a);
                    }
                }
            }
            None => peers.push((p, addrs)),
        }
    }
    let target = libp2p::kad::KBucketKey::new(target.to_vec());
    peers.sort_by_key(|(p, _)| target.distance(&libp2p::kad::KBucketKey::from(*p)));
    peers.truncate(CLOSEST);
}

/// Answers the caller of an operation that could not start (too many in flight).
pub(crate) fn refuse(op: Op) {
    let busy = || {
        Error::Routing(format!(
            "too many routing lookups in flight (limit {MAX_OPS})"
        ))
    };
    match op {
        Op::Get { reply, .. } => drop(reply.send(Err(busy()))),
        Op::Put { reply, .. } => drop(reply.send(Err(busy()))),
        Op::Closest { reply, .. } => drop(reply.send(Err(busy()))),
        Op::FindPeer { reply, .. } => {
            if let Some(r) = reply {
                let _ = r.send(Err(busy()));
            }
        }
    }
}

fn finish(op: Op) -> Option<Followup> {
    match op {
        Op::Get {
            key,
            best,
            stale,
            reply,
        } => match best {
            Some((value, _)) => {
                let _ = reply.send(Ok(value.clone()));
                let peers: Vec<PeerId> = stale.into_iter().map(|(p, _)| p).collect();
                (!peers.is_empty())
                    .then(|| Followup::Correct(Record::new(RecordKey::new(&key), value), peers))
            }
            None => {
                let _ = reply.send(Err(Error::Routing("routing: not found".into())));
                None
            }
        },
        Op::Put {
            stored,
            error,
            reply,
        } => {
            let _ = reply.send(if stored {
                Ok(())
            } else {
                Err(Error::Routing(error.unwrap_or_else(|| {
                    "failed to find any peer in table".to_string()
                })))
            });
            None
        }
        Op::Closest { peers, reply, .. } => {
            let _ = reply.send(if peers.is_empty() {
                Err(Error::Routing("failed to find any peer in table".into()))
            } else {
                Ok(peers)
            });
            None
        }
        Op::FindPeer { reply, .. } => {
            if let Some(r) = reply {
                let _ = r.send(Err(Error::Routing("routing: not found".into())));
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfs_kit_ipns::{Keypair, Record as IpnsRecord, RecordOptions};
    use std::time::Duration;

    fn record(key: &Keypair, seq: u64, valid_secs: u64, value: &[u8]) -> Vec<u8> {
        IpnsRecord::create(
            key,
            value,
            &RecordOptions {
                sequence: seq,
                validity: SystemTime::UNIX_EPOCH + Duration::from_secs(valid_secs),
                ttl: Duration::from_secs(60),
                v1_compat: true,
            },
        )
        .unwrap()
        .encode()
    }
    #[test]
    fn the_store_refuses_invalid_and_outdated_records() {
        let key = Keypair::from_seed(&[9; 32]);
        let k = RecordKey::new(&key.public().peer_id().to_name().routing_key());
        let far = SystemTime::now() + Duration::from_secs(3600);
        let secs = far
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut store = SharedStore::new(PeerId::random());
        let r2 = Record::new(k.clone(), record(&key, 2, secs, b"/ipfs/two"));
        let r1 = Record::new(k.clone(), record(&key, 1, secs, b"/ipfs/one"));
        store.put(r2.clone()).unwrap();
        assert!(matches!(
            store.check(k.as_ref(), &r1.value),
            Err(RecordError::Outdated)
        ));
        store.put(r1).unwrap();
        assert_eq!(
            store.get(&k).unwrap().value,
            r2.value,
            "older sequence refused"
        );
        store.put(r2.clone()).unwrap();
        let r3 = Record::new(k.clone(), record(&key, 3, secs, b"/ipfs/three"));
        store.put(r3.clone()).unwrap();
        assert_eq!(store.get(&k).unwrap().value, r3.value);
        assert!(store.check(k.as_ref(), b"junk").is_err());
        store.put(Record::new(k.clone(), b"junk".to_vec())).unwrap();
        assert!(store.check(b"/v/x", b"x").is_err());
        store
            .put(Record::new(RecordKey::new(b"/v/x"), b"x".to_vec()))
            .unwrap();
        assert_eq!(store.get(&k).unwrap().value, r3.value);
        assert_eq!(store.record_count(), 1);
        // A record whose end of life has passed is neither served nor listed.
        let other = Keypair::from_seed(&[8; 32]);
        let k2 = RecordKey::new(&other.public().peer_id().to_name().routing_key());
        let soon = SystemTime::now() + Duration::from_secs(2);
        let soon = soon
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        store
            .0
            .lock()
            .unwrap()
            .put(Record::new(
                k2.clone(),
                record(&other, 1, soon - 10, b"/ipfs/x"),
            ))
            .unwrap();
        assert!(store.get(&k2).is_none());
        assert_eq!(store.records().count(), 1);
    }

    #[test]
    fn the_store_is_bounded() {
        let mut store = SharedStore::new(PeerId::random());
        let far = (SystemTime::now() + Duration::from_secs(3600))
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for i in 0..(MAX_RECORDS + 5) as u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let key = Keypair::from_seed(&seed);
            let k = RecordKey::new(&key.public().peer_id().to_name().routing_key());
            store
                .put(Record::new(k, record(&key, 0, far, b"/ipfs/bafkqaaa")))
                .unwrap();
        }
        assert_eq!(store.record_count(), MAX_RECORDS);
    }
}
