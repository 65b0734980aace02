//! Providing: announcing to the DHT that this node has content, in batches.
//!
//! Kademlia stores a provider record on the K (20) peers closest to the key. Kubo's classic
//! provider finds them with one iterative lookup per key (a dozen or more round trips each), so
//! reproviding 100,000 keys takes hours. go-libp2p-kad-dht's accelerated client instead crawls
//! the whole DHT once, then computes each key's K closest peers locally and sends them
//! `ADD_PROVIDER` directly. We do the same with a crawl built from ordinary lookups:
//!
//! 1. **Explore the keyspace by prefix.** A region is the set of keys sharing a bit prefix. A
//!    lookup for a target inside region P returns the K peers closest to it; since every peer
//!    inside P is closer to the target than any peer outside, fewer than K of the results inside
//!    P means *every* peer of P has been seen. Otherwise P is split into its two halves and each
//!    is explored the same way. Starting from the empty prefix this finds every DHT server (the
//!    ones a lookup can find) with about 2N/K lookups for N servers: one lookup for a local
//!    network of a few nodes, where the per-key method would have made one per key.
//! 2. **Assign.** For each key, its K closest among the peers found (plus this node when it is
//!    a DHT server) are exactly the K closest in the network: the set of peers found contains
//!    every server, so no closer peer can be missing.
//! 3. **Send.** One stream per peer carries all of that peer's `ADD_PROVIDER` messages back to
//!    back (Kubo and rust-libp2p read several messages per stream), at most [`MAX_SENDERS`]
//!    peers at once.
//!
//! Both Kademlia instances are crawled, WAN then LAN: Kubo on a private network serves only
//! its LAN DHT. On the LAN instance, a key's record goes only to the peers among its K
//! closest there that are not among its K closest on the WAN (see [`Provider::assign`]), so a
//! network of ipfs-kit nodes, which keep one store behind both protocols, gets each record
//! once.
//!
//! The peer set found by a crawl is reused for [`SNAPSHOT_TTL`], so announcing newly added
//! content between reprovides costs no lookups at all (a reprovide always crawls afresh). A small batch with no fresh snapshot
//! uses libp2p's per-key `start_providing` instead (at most [`MAX_PER_KEY_QUERIES`] at once):
//! for a handful of keys, a crawl of a large network would cost more than it saves.
//!
//! Work arrives as jobs: `routing provide` (answered when done), reprovider batches, and newly
//! added blocks, which wait in a bounded, de-duplicated announce queue and go out together when
//! no other job runs and either enough of them are queued or the oldest has waited a second.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::AsyncWriteExt;
use ipfs_kit_block::dagpb::put_varint;
use ipfs_kit_block::Cid;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, RecordKey};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::records::Dht;
use crate::swarm::{Behaviour, KAD_LAN_PROTOCOL, KAD_PROTOCOL};
use crate::Error;

/// Kademlia's replication factor: providers are stored on this many closest peers.
pub const K: usize = 20;
/// Crawl lookups running at once.
const MAX_LOOKUPS: usize = 16;
/// Peers receiving `ADD_PROVIDER` streams at once.
const MAX_SENDERS: usize = 16;
/// Per-key provide queries running at once (small batches without a snapshot).
const MAX_PER_KEY_QUERIES: usize = 32;
/// A batch at least this large without a fresh snapshot is provided by a crawl.
const SWEEP_MIN_KEYS: usize = 64;
/// How long a crawl's peer set is trusted.
const SNAPSHOT_TTL: Duration = Duration::from_secs(10 * 60);
/// Newly added keys waiting to be announced; more are dropped (the reprovider covers them).
pub const ANNOUNCE_QUEUE: usize = 65_536;
/// Keys per announce job.
const ANNOUNCE_BATCH: usize = 16_384;
/// Fewer than [`SWEEP_MIN_KEYS`] new keys wait this long for company before they are
/// announced: blocks stored one batch at a time (a transfer in progress) would otherwise go out
/// as many small jobs, each a set of per-key lookups, instead of one crawl whose peer set
/// then serves every later announcement.
const ANNOUNCE_DELAY: Duration = Duration::from_secs(1);
/// Provide jobs queued at most; more are refused.
const MAX_JOBS: usize = 64;
/// Deepest prefix a crawl splits to. Below it a region is taken as seen (2^20 regions of K
/// peers is far more than any DHT has).
const MAX_DEPTH: u32 = 20;
/// Deepest prefix for which a target is searched at random when no key falls in the region
/// (about 2^depth hashes).
const MAX_RANDOM_DEPTH: u32 = 16;
/// Opening the stream to one peer (dialing included) may take this long.
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Figures for `stats provide` (Kubo's names in the RPC answer).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProvideStat {
    /// Keys provided since start.
    pub total_provides: u64,
    /// Time spent providing since start.
    pub total_duration: Duration,
    /// Keys in the last reprovide.
    pub last_reprovide_keys: u64,
    /// How long the last reprovide took.
    pub last_reprovide_duration: Duration,
    /// Newly added keys waiting to be announced.
    pub queued: usize,
    /// Newly added keys dropped because the announce queue was full.
    pub dropped: u64,
    /// Lookups made since start (crawl and per-key).
    pub lookups: u64,
    /// DHT servers seen by the last crawl.
    pub last_crawl_peers: usize,
}

/// What a finished provide job did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProvideOutcome {
    /// Keys provided.
    pub keys: usize,
    /// Peers sent provider records.
    pub peers: usize,
    /// `ADD_PROVIDER` messages sent.
    pub messages: usize,
    /// Lookups made.
    pub lookups: usize,
    /// Peers that could not be reached.
    pub failed_peers: usize,
}

type Reply = oneshot::Sender<Result<ProvideOutcome, Error>>;

struct Job {
    keys: Vec<Cid>,
    reply: Option<Reply>,
    reprovide: bool,
}

/// A bit prefix of the Kademlia keyspace (SHA-256 of the key), at most 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Prefix {
    bits: u64,
    len: u32,
}

fn top64(h: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

impl Prefix {
    const ROOT: Prefix = Prefix { bits: 0, len: 0 };

    fn contains(&self, h: &[u8; 32]) -> bool {
        self.len == 0 || (top64(h) ^ self.bits) >> (64 - self.len) == 0
    }

    fn child(&self, bit: u64) -> Prefix {
        Prefix {
            bits: self.bits | (bit << (63 - self.len)),
            len: self.len + 1,
        }
    }
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut d = [0u8; 32];
    for i in 0..32 {
        d[i] = a[i] ^ b[i];
    }
    d
}

fn bit(h: &[u8; 32], i: usize) -> bool {
    h[i / 8] & (0x80 >> (i % 8)) != 0
}

/// The `k` peers of `sorted` (ordered by hashed ID) closest to `target`. The deepest prefix
/// region around the target that still holds `k` peers contains all of them: a peer sharing a
/// longer prefix with the target is closer than any peer sharing a shorter one.
fn closest(sorted: &[([u8; 32], PeerId)], target: &[u8; 32], k: usize) -> Vec<PeerId> {
    let (mut lo, mut hi) = (0, sorted.len());
    if hi > k {
        for i in 0..256 {
            let mid = lo + sorted[lo..hi].partition_point(|(h, _)| !bit(h, i));
            let (nlo, nhi) = if bit(target, i) { (mid, hi) } else { (lo, mid) };
            if nhi - nlo < k {
                break;
            }
            (lo, hi) = (nlo, nhi);
        }
    }
    let mut region: Vec<&([u8; 32], PeerId)> = sorted[lo..hi].iter().collect();
    region.sort_by_key(|(h, _)| xor(h, target));
    region.into_iter().take(k).map(|(_, p)| *p).collect()
}

/// The DHT servers a crawl found.
struct Snapshot {
    at: Instant,
    /// (hashed ID, peer), sorted.
    peers: Vec<([u8; 32], PeerId)>,
    addrs: HashMap<PeerId, Vec<Multiaddr>>,
}

struct Crawl {
    /// The instance crawled.
    dht: Dht,
    /// (hash, index into the job's keys), sorted: targets inside a region come from here.
    hashes: Vec<([u8; 32], usize)>,
    todo: VecDeque<Prefix>,
    inflight: HashMap<kad::QueryId, Prefix>,
    found: HashMap<PeerId, Vec<Multiaddr>>,
}

struct Send {
    queue: VecDeque<(PeerId, Dht, Vec<Vec<u8>>)>,
    running: usize,
}

enum Phase {
    PerKey {
        next: usize,
        inflight: HashSet<(Dht, kad::QueryId)>,
    },
    Crawl(Crawl),
    Send(Send),
}

struct Run {
    job: Job,
    started: Instant,
    phase: Phase,
    outcome: ProvideOutcome,
    /// The instances this run has crawled (WAN, LAN): each at most once, even when it found
    /// nobody.
    crawled: [bool; 2],
}

/// The provider, owned by the network's event loop.
pub(crate) struct Provider {
    control: libp2p_stream::Control,
    /// Crawl and send directly (else one lookup per key).
    accelerated: bool,
    local: PeerId,
    jobs: VecDeque<Job>,
    announce: VecDeque<Cid>,
    announce_set: HashSet<Cid>,
    /// When the oldest key now in `announce` was queued.
    announce_since: Option<Instant>,
    run: Option<Run>,
    /// The last crawl of each instance: WAN, LAN.
    snapshots: [Option<Snapshot>; 2],
    /// Sender tasks: (peer, messages sent or why not).
    pub(crate) senders: JoinSet<(PeerId, Result<usize, String>)>,
    stat: ProvideStat,
}

impl Provider {
    pub(crate) fn new(control: libp2p_stream::Control, local: PeerId, accelerated: bool) -> Self {
        Provider {
            control,
            accelerated,
            local,
            jobs: VecDeque::new(),
            announce: VecDeque::new(),
            announce_set: HashSet::new(),
            announce_since: None,
            run: None,
            snapshots: [None, None],
            senders: JoinSet::new(),
            stat: ProvideStat::default(),
        }
    }

    /// Queues a provide job; `reply` gets the outcome when it is done.
    pub(crate) fn submit(&mut self, keys: Vec<Cid>, reprovide: bool, reply: Option<Reply>) {
        if self.jobs.len() >= MAX_JOBS {
            if let Some(r) = reply {
                let _ = r.send(Err(Error::Routing(
                    "too many provide requests queued; try again later".into(),
                )));
            }
            return;
        }
        self.jobs.push_back(Job {
            keys,
            reply,
            reprovide,
        });
    }

    /// Queues newly added keys for announcement (coalesced; dropped beyond the bound).
    pub(crate) fn announce(&mut self, cids: Vec<Cid>) {
        for cid in cids {
            if self.announce_set.len() >= ANNOUNCE_QUEUE {
                self.stat.dropped += 1;
            } else if self.announce_set.insert(cid) {
                self.announce.push_back(cid);
                self.announce_since.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Whether the queued new keys should go out now (see [`ANNOUNCE_DELAY`]).
    fn announce_due(&self) -> bool {
        self.announce.len() >= SWEEP_MIN_KEYS
            || self
                .announce_since
                .is_some_and(|t| t.elapsed() >= ANNOUNCE_DELAY)
    }

    pub(crate) fn stat(&self) -> ProvideStat {
        ProvideStat {
            queued: self.announce.len(),
            ..self.stat
        }
    }

    /// Starts and advances work; call after every event.
    pub(crate) fn poll(&mut self, swarm: &mut Swarm<Behaviour>) {
        if self.run.is_none() {
            self.start_next(swarm);
        }
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if swarm.behaviour().kad.as_ref().is_none() {
            self.finish(Err(Error::Routing(
                "routing is disabled (Routing.Type none)".into(),
            )));
            return;
        }
        match &mut run.phase {
            Phase::PerKey { next, inflight } => {
                while inflight.len() < MAX_PER_KEY_QUERIES && *next < run.job.keys.len() {
                    let key = RecordKey::new(&run.job.keys[*next].hash().to_bytes());
                    *next += 1;
                    for dht in [Dht::Wan, Dht::Lan] {
                        let Some(kad) = instance(swarm, dht) else {
                            continue;
                        };
                        if let Ok(id) = kad.start_providing(key.clone()) {
                            inflight.insert((dht, id));
                            run.outcome.lookups += 1;
                            self.stat.lookups += 1;
                        }
                    }
                }
                if inflight.is_empty() && *next >= run.job.keys.len() {
                    let outcome = run.outcome;
                    self.finish(Ok(outcome));
                }
            }
            Phase::Crawl(crawl) => {
                let Some(kad) = instance(swarm, crawl.dht) else {
                    return;
                };
                while crawl.inflight.len() < MAX_LOOKUPS {
                    let Some(prefix) = crawl.todo.pop_front() else {
                        break;
                    };
                    let Some(target) = target_in(&prefix, &crawl.hashes, &run.job.keys) else {
                        // No target found for a deep, keyless region: what was seen stands.
                        continue;
                    };
                    let id = kad.get_closest_peers(target);
                    crawl.inflight.insert(id, prefix);
                    run.outcome.lookups += 1;
                    self.stat.lookups += 1;
                }
                if crawl.inflight.is_empty() && crawl.todo.is_empty() {
                    let found = std::mem::take(&mut crawl.found);
                    let server = kad.mode() == kad::Mode::Server;
                    let dht = crawl.dht;
                    self.snapshots[dht as usize] = Some(self.make_snapshot(found, server));
                    self.crawl_or_assign(swarm);
                }
            }
            Phase::Send(send) => {
                while send.running < MAX_SENDERS {
                    let Some((peer, dht, keys)) = send.queue.pop_front() else {
                        break;
                    };
                    send.running += 1;
                    if !swarm.is_connected(&peer) {
                        let addrs = self.snapshots[dht as usize]
                            .as_ref()
                            .and_then(|s| s.addrs.get(&peer).cloned())
                            .unwrap_or_default();
                        // A dial already under way or a failure is seen by the stream open.
                        let _ = swarm.dial(DialOpts::peer_id(peer).addresses(addrs).build());
                    }
                    let provider = provider_peer(self.local, swarm);
                    let control = self.control.clone();
                    let protocol = match dht {
                        Dht::Wan => KAD_PROTOCOL,
                        Dht::Lan => KAD_LAN_PROTOCOL,
                    };
                    self.senders.spawn(async move {
                        let result =
                            send_providers(control, peer, protocol, &provider, &keys).await;
                        (peer, result)
                    });
                }
                if send.running == 0 && send.queue.is_empty() {
                    let outcome = run.outcome;
                    self.finish(Ok(outcome));
                }
            }
        }
    }

    fn start_next(&mut self, swarm: &mut Swarm<Behaviour>) {
        let job = match self.jobs.pop_front() {
            Some(job) => job,
            None if !self.announce.is_empty() && self.announce_due() => {
                let n = self.announce.len().min(ANNOUNCE_BATCH);
                let keys: Vec<Cid> = self.announce.drain(..n).collect();
                for k in &keys {
                    self.announce_set.remove(k);
                }
                self.announce_since = (!self.announce.is_empty()).then(Instant::now);
                Job {
                    keys,
                    reply: None,
                    reprovide: false,
                }
            }
            None => return,
        };
        // Our own provider records answer lookups that reach this node, as Kubo's do.
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            for cid in &job.keys {
                let key = RecordKey::new(&cid.hash().to_bytes());
                let _ = kad.store_mut().add_provider(kad::ProviderRecord::new(
                    key,
                    self.local,
                    Vec::new(),
                ));
            }
        }
        // A reprovide re-places every record where the closest peers are now: it always
        // crawls afresh. Announcements in between reuse the last crawl.
        let fresh = self.accelerated && !job.reprovide && fresh(&self.snapshots[0]);
        let per_key = !self.accelerated || (!fresh && job.keys.len() < SWEEP_MIN_KEYS);
        if job.reprovide {
            self.snapshots = [None, None];
        }
        self.run = Some(Run {
            outcome: ProvideOutcome {
                keys: job.keys.len(),
                ..Default::default()
            },
            job,
            started: Instant::now(),
            phase: Phase::PerKey {
                next: 0,
                inflight: HashSet::new(),
            },
            crawled: [false; 2],
        });
        if !per_key {
            self.crawl_or_assign(swarm);
        }
    }

    /// Crawls the next instance whose snapshot is missing or stale, else assigns the keys.
    fn crawl_or_assign(&mut self, swarm: &mut Swarm<Behaviour>) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let next = [Dht::Wan, Dht::Lan].into_iter().find(|d| {
            let i = *d as usize;
            instance(swarm, *d).is_some() && !run.crawled[i] && !fresh(&self.snapshots[i])
        });
        let Some(dht) = next else {
            self.assign(swarm);
            return;
        };
        run.crawled[dht as usize] = true;
        let mut hashes: Vec<([u8; 32], usize)> = run
            .job
            .keys
            .iter()
            .enumerate()
            .map(|(i, c)| (hash(&c.hash().to_bytes()), i))
            .collect();
        hashes.sort_unstable();
        run.phase = Phase::Crawl(Crawl {
            dht,
            hashes,
            todo: VecDeque::from([Prefix::ROOT]),
            inflight: HashMap::new(),
            found: HashMap::new(),
        });
        self.poll(swarm);
    }

    fn make_snapshot(&mut self, found: HashMap<PeerId, Vec<Multiaddr>>, server: bool) -> Snapshot {
        let mut peers: Vec<([u8; 32], PeerId)> =
            found.keys().map(|p| (hash(&p.to_bytes()), *p)).collect();
        if server {
            peers.push((hash(&self.local.to_bytes()), self.local));
        }
        peers.sort_unstable();
        Snapshot {
            at: Instant::now(),
            peers,
            addrs: found,
        }
    }

    /// Computes each key's K closest peers from the snapshots and queues the streams.
    ///
    /// On the LAN instance a key's record goes only to those of its K closest that are not
    /// among its K closest on the WAN, which get it there: an ipfs-kit peer keeps one store
    /// for both protocols, so a record sent on either answers lookups on both, whereas a Kubo
    /// peer on a private network serves only its LAN DHT.
    fn assign(&mut self, swarm: &mut Swarm<Behaviour>) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let mut per_peer: HashMap<(PeerId, Dht), Vec<Vec<u8>>> = HashMap::new();
        let [wan, lan] = &self.snapshots;
        let closest_in = |snap: &Option<Snapshot>, key: &[u8]| -> Vec<PeerId> {
            snap.as_ref()
                .map(|s| closest(&s.peers, &hash(key), K))
                .unwrap_or_default()
        };
        for cid in &run.job.keys {
            let key = cid.hash().to_bytes();
            let on_wan = closest_in(wan, &key);
            let on_lan = closest_in(lan, &key);
            let lan_only = on_lan.into_iter().filter(|p| !on_wan.contains(p));
            let targets = on_wan
                .iter()
                .map(|p| (*p, Dht::Wan))
                .chain(lan_only.map(|p| (p, Dht::Lan)));
            for (p, dht) in targets {
                if p != self.local {
                    per_peer.entry((p, dht)).or_default().push(key.clone());
                }
            }
        }
        let seen: HashSet<PeerId> = wan
            .iter()
            .chain(lan.iter())
            .flat_map(|s| s.peers.iter().map(|(_, p)| *p))
            .filter(|p| *p != self.local)
            .collect();
        self.stat.last_crawl_peers = seen.len();
        run.outcome.peers = per_peer.len();
        run.phase = Phase::Send(Send {
            queue: per_peer
                .into_iter()
                .map(|((peer, dht), keys)| (peer, dht, keys))
                .collect(),
            running: 0,
        });
        self.poll(swarm);
    }

    /// Takes the result of a query this provider started on `dht`; false when it is not
    /// ours.
    pub(crate) fn on_query(
        &mut self,
        dht: Dht,
        id: kad::QueryId,
        result: &kad::QueryResult,
    ) -> bool {
        let Some(run) = self.run.as_mut() else {
            return false;
        };
        match (&mut run.phase, result) {
            (Phase::PerKey { inflight, .. }, kad::QueryResult::StartProviding(r)) => {
                if !inflight.remove(&(dht, id)) {
                    return false;
                }
                if r.is_ok() {
                    run.outcome.messages += 1;
                }
                true
            }
            (Phase::Crawl(crawl), kad::QueryResult::GetClosestPeers(r)) if crawl.dht == dht => {
                let Some(prefix) = crawl.inflight.remove(&id) else {
                    return false;
                };
                let peers = match r {
                    Ok(ok) => &ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                let mut inside = 0;
                for p in peers {
                    if prefix.contains(&hash(&p.peer_id.to_bytes())) {
                        inside += 1;
                    }
                    let addrs = crawl.found.entry(p.peer_id).or_default();
                    for a in &p.addrs {
                        if !addrs.contains(a) && addrs.len() < 8 {
                            addrs.push(a.clone());
                        }
                    }
                }
                if inside >= K && prefix.len < MAX_DEPTH {
                    crawl.todo.push_back(prefix.child(0));
                    crawl.todo.push_back(prefix.child(1));
                }
                true
            }
            _ => false,
        }
    }

    /// Takes a sender's report (`peer` unknown when its task panicked).
    pub(crate) fn on_sent(&mut self, peer: Option<PeerId>, result: Result<usize, String>) {
        let Some(run) = self.run.as_mut() else {
            return;
        };
        if let Phase::Send(send) = &mut run.phase {
            send.running = send.running.saturating_sub(1);
        }
        match result {
            Ok(n) => run.outcome.messages += n,
            Err(e) => {
                tracing::debug!("provide to {peer:?}: {e}");
                run.outcome.failed_peers += 1;
            }
        }
    }

    fn finish(&mut self, result: Result<ProvideOutcome, Error>) {
        let Some(run) = self.run.take() else {
            return;
        };
        let took = run.started.elapsed();
        if let Ok(o) = &result {
            self.stat.total_provides += o.keys as u64;
            self.stat.total_duration += took;
            if run.job.reprovide {
                self.stat.last_reprovide_keys = o.keys as u64;
                self.stat.last_reprovide_duration = took;
            }
            tracing::debug!(
                "provided {} keys to {} peers ({} messages, {} lookups, {} peers failed) in {took:?}",
                o.keys,
                o.peers,
                o.messages,
                o.lookups,
                o.failed_peers
            );
        }
        if let Some(reply) = run.job.reply {
            let _ = reply.send(result);
        }
    }
}

/// A lookup target inside `prefix`: one of the job's keys when one falls there, else a random
/// preimage whose hash does (affordable down to [`MAX_RANDOM_DEPTH`] bits).
fn target_in(prefix: &Prefix, hashes: &[([u8; 32], usize)], keys: &[Cid]) -> Option<Vec<u8>> {
    let first = hashes.partition_point(|(h, _)| {
        let v = top64(h);
        prefix.len > 0 && (v >> (64 - prefix.len)) < (prefix.bits >> (64 - prefix.len))
    });
    if let Some((h, i)) = hashes.get(first) {
        if prefix.contains(h) {
            return Some(keys[*i].hash().to_bytes());
        }
    }
    if prefix.len > MAX_RANDOM_DEPTH {
        return None;
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).ok()?;
    for n in 0u64..(1u64 << (prefix.len + 6)) {
        seed[..8].copy_from_slice(&n.to_be_bytes());
        if prefix.contains(&hash(&seed)) {
            return Some(seed.to_vec());
        }
    }
    None
}

/// This node as a provider record's peer: its ID and the addresses others can dial (the
/// confirmed external ones, else the listen addresses, as Kubo's host announces).
fn provider_peer(local: PeerId, swarm: &Swarm<Behaviour>) -> Vec<u8> {
    let mut addrs: Vec<Multiaddr> = swarm.external_addresses().cloned().collect();
    if addrs.is_empty() {
        addrs = swarm.listeners().cloned().collect();
    }
    let mut peer = Vec::new();
    put_bytes(&mut peer, 1, &local.to_bytes());
    for a in addrs.iter().take(8) {
        put_bytes(&mut peer, 2, &a.to_vec());
    }
    peer
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One length-prefixed Kademlia `Message { type: ADD_PROVIDER, key, providerPeers: [peer] }`,
/// as go-libp2p-kad-dht writes it.
fn encode_add_provider(out: &mut Vec<u8>, key: &[u8], peer: &[u8]) {
    let mut msg = Vec::with_capacity(key.len() + peer.len() + 8);
    put_varint(&mut msg, 1 << 3); // type
    put_varint(&mut msg, 2); // ADD_PROVIDER
    put_bytes(&mut msg, 2, key);
    put_bytes(&mut msg, 9, peer);
    put_varint(out, msg.len() as u64);
    out.extend_from_slice(&msg);
}

/// Whether a crawl's peer set can still be used.
fn fresh(snapshot: &Option<Snapshot>) -> bool {
    snapshot
        .as_ref()
        .is_some_and(|s| s.at.elapsed() < SNAPSHOT_TTL && !s.peers.is_empty())
}

/// The Kademlia instance `dht`, when it runs.
fn instance(swarm: &mut Swarm<Behaviour>, dht: Dht) -> Option<&mut crate::dht::Kad> {
    let b = swarm.behaviour_mut();
    match dht {
        Dht::Wan => b.kad.as_mut(),
        Dht::Lan => b.kad_lan.as_mut(),
    }
}

/// Sends every key's `ADD_PROVIDER` to `peer` on one stream of `protocol`. Nothing is
/// answered to `ADD_PROVIDER`, so a clean close after the last write is success.
async fn send_providers(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    protocol: libp2p::StreamProtocol,
    provider: &[u8],
    keys: &[Vec<u8>],
) -> Result<usize, String> {
    let stream = tokio::time::timeout(OPEN_TIMEOUT, control.open_stream(peer, protocol))
        .await
        .map_err(|_| "opening a stream timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let mut w = futures::io::BufWriter::with_capacity(64 << 10, stream);
    let mut buf = Vec::new();
    // A peer reading slower than 10 keys a second is given up on.
    let deadline = Duration::from_secs(30) + Duration::from_millis(100) * keys.len() as u32;
    let write = async {
        for key in keys {
            buf.clear();
            encode_add_provider(&mut buf, key, provider);
            w.write_all(&buf).await?;
        }
        w.close().await
    };
    tokio::time::timeout(deadline, write)
        .await
        .map_err(|_| "sending provider records timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_matches_a_full_sort() {
        let mut peers: Vec<([u8; 32], PeerId)> = (0..300)
            .map(|_| {
                let p = PeerId::random();
                (hash(&p.to_bytes()), p)
            })
            .collect();
        peers.sort_unstable();
        for i in 0..50u32 {
            let target = hash(&i.to_be_bytes());
            let mut all = peers.clone();
            all.sort_by_key(|(h, _)| xor(h, &target));
            let want: Vec<PeerId> = all.iter().take(K).map(|(_, p)| *p).collect();
            assert_eq!(closest(&peers, &target, K), want);
        }
        // Fewer peers than K: all of them.
        assert_eq!(closest(&peers[..5], &hash(b"x"), K).len(), 5);
    }

    #[test]
    fn prefixes_and_targets() {
        let root = Prefix::ROOT;
        let h = hash(b"key");
        assert!(root.contains(&h));
        let side = if bit(&h, 0) { 1 } else { 0 };
        assert!(root.child(side).contains(&h));
        assert!(!root.child(1 - side).contains(&h));
        let deep = root.child(1).child(0).child(1);
        let t = target_in(&deep, &[], &[]).unwrap();
        assert!(deep.contains(&hash(&t)));
    }

    #[test]
    fn add_provider_encoding_reads_back() {
        let mut out = Vec::new();
        encode_add_provider(&mut out, b"\x12\x20abc", b"\x0a\x01z");
        // length prefix, then type=2, key, providerPeers.
        assert_eq!(out[0] as usize, out.len() - 1);
        assert_eq!(&out[1..3], &[0x08, 0x02]);
        assert_eq!(&out[3..5], &[0x12, 5]);
        assert_eq!(out[10], 0x4a);
    }
}
