//! Cache simulation: the policies ARC is measured against (LRU and 2Q, byte-sized like it and
//! built on the same lists), the traces of the comparison, and a replay driver. Used by the
//! benchmarks and tests; nothing on a read path uses this module.
//!
//! ```
//! use ipfs_kit_tiered::arc::ArcCore;
//! use ipfs_kit_tiered::sim::{replay, Lru, Trace};
//! let trace = Trace::zipf(1_000, 0.9, 20_000, 1);
//! let capacity = trace.capacity_for(0.1);
//! let arc = replay(&mut ArcCore::<u64, ()>::new(capacity), &trace);
//! let lru = replay(&mut Lru::new(capacity), &trace);
//! assert!(arc.hit_ratio() >= lru.hit_ratio());
//! ```

use std::hash::BuildHasher;

use parking_lot::Mutex;

use crate::arc::{ArcCache, ArcCore, DefaultHasher};
use crate::lists::Lists;

/// A byte-sized cache policy over `u64` keys, as the simulations drive it.
pub trait Policy {
    /// The policy's short name (`ARC`, `LRU`, `2Q`).
    fn name(&self) -> &'static str;
    /// Looks `key` up; `true` on a hit.
    fn get(&mut self, key: u64) -> bool;
    /// Admits `key` of `size` bytes after a miss.
    fn insert(&mut self, key: u64, size: u64);
}

impl<S: BuildHasher> Policy for ArcCore<u64, (), S> {
    fn name(&self) -> &'static str {
        "ARC"
    }

    fn get(&mut self, key: u64) -> bool {
        ArcCore::get(self, &key).is_some()
    }

    fn insert(&mut self, key: u64, size: u64) {
        ArcCore::insert(self, key, (), size);
    }
}

/// Least recently used, in bytes: evicts from the cold end until the new entry fits.
pub struct Lru {
    capacity: u64,
    lists: Lists<u64, (), DefaultHasher, 1>,
}

impl Lru {
    /// An empty LRU cache of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Lru {
            capacity,
            lists: Lists::with_hasher(DefaultHasher::default()),
        }
    }
}

impl Policy for Lru {
    fn name(&self) -> &'static str {
        "LRU"
    }

    fn get(&mut self, key: u64) -> bool {
        match self.lists.find(&key) {
            Some(id) => {
                self.lists.move_front(id, 0);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: u64, size: u64) {
        if size > self.capacity || self.lists.find(&key).is_some() {
            return;
        }
        while self.lists.bytes(0) + size > self.capacity && self.lists.remove_lru(0) {}
        self.lists.push(0, key, Some(()), size);
    }
}

const A1IN: usize = 0;
const AM: usize = 1;
const A1OUT: usize = 2;

/// The full 2Q of Johnson and Shasha (VLDB 1994), in bytes: new keys enter the FIFO `A1in`
/// (a quarter of the capacity); keys pushed out of it are remembered in the ghost FIFO
/// `A1out` (half the capacity's worth of keys); a miss on a remembered key enters the LRU `Am`.
pub struct TwoQ {
    capacity: u64,
    k_in: u64,
    k_out: u64,
    lists: Lists<u64, (), DefaultHasher, 3>,
}

impl TwoQ {
    /// An empty 2Q cache of `capacity` bytes with the paper's tuning (`Kin` 25 %, `Kout` 50 %).
    pub fn new(capacity: u64) -> Self {
        TwoQ {
            capacity,
            k_in: capacity / 4,
            k_out: capacity / 2,
            lists: Lists::with_hasher(DefaultHasher::default()),
        }
    }

    fn reclaim(&mut self, size: u64) {
        while self.lists.bytes(A1IN) + self.lists.bytes(AM) + size > self.capacity {
            if self.lists.bytes(A1IN) > self.k_in || self.lists.len(AM) == 0 {
                if !self.lists.demote_lru(A1IN, A1OUT) {
                    break;
                }
                while self.lists.bytes(A1OUT) > self.k_out && self.lists.remove_lru(A1OUT) {}
            } else if !self.lists.remove_lru(AM) {
                break;
            }
        }
    }
}

impl Policy for TwoQ {
    fn name(&self) -> &'static str {
        "2Q"
    }

    fn get(&mut self, key: u64) -> bool {
        match self.lists.find(&key) {
            Some(id) if self.lists.list(id) == AM => {
                self.lists.move_front(id, AM);
                true
            }
            // A1in is a FIFO: a hit there does not reorder it.
            Some(id) => self.lists.list(id) == A1IN,
            None => false,
        }
    }

    fn insert(&mut self, key: u64, size: u64) {
        if size > self.capacity {
            return;
        }
        let into = match self.lists.find(&key) {
            Some(id) if self.lists.list(id) == A1OUT => {
                self.lists.remove(id);
                AM
            }
            Some(_) => return,
            None => A1IN,
        };
        self.reclaim(size);
        self.lists.push(into, key, Some(()), size);
    }
}

/// A policy made safe for several threads as [`ArcCache`] is: keys spread over shards by hash,
/// each shard a policy with its share of the capacity behind a mutex.
pub struct Sharded<P> {
    shards: Box<[Mutex<P>]>,
    hasher: DefaultHasher,
}

impl<P: Policy> Sharded<P> {
    /// `shards` (a power of two) policies made by `make` from each one's capacity.
    pub fn new(capacity: u64, shards: usize, make: impl Fn(u64) -> P) -> Self {
        let n = shards.max(1).next_power_of_two();
        Sharded {
            shards: (0..n)
                .map(|_| Mutex::new(make(capacity / n as u64)))
                .collect(),
            hasher: DefaultHasher::default(),
        }
    }

    fn shard(&self, key: u64) -> &Mutex<P> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h >> 32) as usize & (self.shards.len() - 1)]
    }
}

/// A cache that several threads drive at once: one request is a lookup, then an insert on a
/// miss. Implemented by [`ArcCache`] and [`Sharded`] for the concurrent benchmarks.
pub trait Concurrent: Sync {
    /// One request for `key` of `size` bytes; `true` on a hit.
    fn request(&self, key: u64, size: u64) -> bool;
}

impl<P: Policy + Send> Concurrent for Sharded<P> {
    fn request(&self, key: u64, size: u64) -> bool {
        let mut shard = self.shard(key).lock();
        if shard.get(key) {
            return true;
        }
        shard.insert(key, size);
        false
    }
}

impl Concurrent for ArcCache<u64, ()> {
    fn request(&self, key: u64, size: u64) -> bool {
        if self.get(&key).is_some() {
            return true;
        }
        self.insert(key, (), size);
        false
    }
}

/// splitmix64: a small, fast, seedable generator, enough for synthetic traces.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A float uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// splitmix64's finaliser: a bijection on `u64` that scatters neighbouring inputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The size of the block named `key` in every trace, from its hash: a quarter are 4 KiB (small
/// files, directory nodes), an eighth 64 KiB, the rest 256 KiB (file leaves), so the caches
/// are compared on the mix of sizes a block cache sees, about 169 KiB on average.
pub fn size_of(key: u64) -> u64 {
    match mix(key ^ 0x5bd1_e995) % 8 {
        0 | 1 => 4 << 10,
        2 => 64 << 10,
        _ => 256 << 10,
    }
}

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^skew`.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, skew: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for r in 0..n {
            sum += 1.0 / ((r + 1) as f64).powf(skew);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        self.cdf
            .partition_point(|c| *c < u)
            .min(self.cdf.len().saturating_sub(1))
    }
}

/// The key of popularity rank `rank` in key space `space`: ranks are scattered over keys so
/// that popularity and [`size_of`] are unrelated.
fn key_of(space: u64, rank: usize) -> u64 {
    mix((space << 40) ^ rank as u64)
}

/// A sequence of requests for keys, with the number of distinct keys it touches.
#[derive(Clone, Debug)]
pub struct Trace {
    /// What the trace is, for tables (`zipf 0.8`, `loop 1.5x`).
    pub name: String,
    /// The keys requested, in order.
    pub requests: Vec<u64>,
    /// Distinct keys and their total size, to size caches relative to the trace.
    pub universe: (usize, u64),
}

impl Trace {
    fn new(name: String, requests: Vec<u64>) -> Self {
        let mut keys = requests.clone();
        keys.sort_unstable();
        keys.dedup();
        let bytes = keys.iter().map(|k| size_of(*k)).sum();
        Trace {
            name,
            requests,
            universe: (keys.len(), bytes),
        }
    }

    /// A cache capacity of `fraction` of the bytes of all distinct keys.
    pub fn capacity_for(&self, fraction: f64) -> u64 {
        (self.universe.1 as f64 * fraction) as u64
    }

    /// `len` requests drawn from `keys` keys with Zipf popularity of exponent `skew`.
    pub fn zipf(keys: usize, skew: f64, len: usize, seed: u64) -> Self {
        let z = Zipf::new(keys, skew);
        let mut rng = Rng::new(seed);
        let requests = (0..len).map(|_| key_of(1, z.sample(&mut rng))).collect();
        Trace::new(format!("zipf {skew}"), requests)
    }

    /// `len` requests cycling through the smallest set of keys whose bytes exceed `capacity`
    /// times `factor`: every key is requested again only after the whole loop, which LRU
    /// always has just evicted.
    pub fn looping(capacity: u64, factor: f64, len: usize) -> Self {
        let target = (capacity as f64 * factor) as u64;
        let mut keys = Vec::new();
        let mut bytes = 0;
        while bytes <= target {
            let k = key_of(2, keys.len());
            bytes += size_of(k);
            keys.push(k);
        }
        let requests = (0..len).map(|i| keys[i % keys.len()]).collect();
        Trace::new(format!("loop {factor}x"), requests)
    }

    /// A Zipf workload over `keys` keys (exponent `skew`) into which a scan of keys never
    /// seen again is mixed: after every `hot_run` Zipf requests come `scan_run` scan keys.
    pub fn scan_in_zipf(
        keys: usize,
        skew: f64,
        len: usize,
        hot_run: usize,
        scan_run: usize,
        seed: u64,
    ) -> Self {
        let z = Zipf::new(keys, skew);
        let mut rng = Rng::new(seed);
        let mut next_scan = 0;
        let mut requests = Vec::with_capacity(len);
        while requests.len() < len {
            for _ in 0..hot_run {
                requests.push(key_of(3, z.sample(&mut rng)));
            }
            for _ in 0..scan_run {
                requests.push(key_of(4, next_scan));
                next_scan += 1;
            }
        }
        requests.truncate(len);
        let share = scan_run as f64 / (hot_run + scan_run) as f64;
        Trace::new(
            format!("zipf {skew} + {:.0}% scan", share * 100.0),
            requests,
        )
    }

    /// Zipf requests (exponent `skew`) over a working set of `window` keys that moves by half
    /// its width every `len / phases` requests: yesterday's hot keys cool while new ones heat.
    pub fn shifting(window: usize, skew: f64, len: usize, phases: usize, seed: u64) -> Self {
        let z = Zipf::new(window, skew);
        let mut rng = Rng::new(seed);
        let per = (len / phases.max(1)).max(1);
        let requests = (0..len)
            .map(|i| {
                let base = (i / per) * window / 2;
                key_of(5, base + z.sample(&mut rng))
            })
            .collect();
        Trace::new(format!("shifting zipf {skew}"), requests)
    }
}

/// What a replay measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Requests replayed.
    pub requests: u64,
    /// Requests that hit.
    pub hits: u64,
    /// Bytes requested.
    pub bytes: u64,
    /// Bytes served from the cache.
    pub hit_bytes: u64,
}

impl Outcome {
    /// Hits per request.
    pub fn hit_ratio(&self) -> f64 {
        self.hits as f64 / self.requests.max(1) as f64
    }

    /// Bytes served from the cache per byte requested.
    pub fn byte_hit_ratio(&self) -> f64 {
        self.hit_bytes as f64 / self.bytes.max(1) as f64
    }
}

/// Replays `trace` through `policy` (a lookup per request, an insert after each miss).
pub fn replay(policy: &mut dyn Policy, trace: &Trace) -> Outcome {
    let mut out = Outcome::default();
    for &key in &trace.requests {
        let size = size_of(key);
        out.requests += 1;
        out.bytes += size;
        if policy.get(key) {
            out.hits += 1;
            out.hit_bytes += size;
        } else {
            policy.insert(key, size);
        }
    }
    out
}

/// The traces of the comparison in docs/benchmarks.md, each with the cache capacity it is
/// replayed at: Zipf at four skews, a loop 1.5 times the cache, a 25 % scan mixed into Zipf,
/// and a working set that shifts by half every quarter of the trace. Each works over 20,000
/// keys at a time with a cache of a tenth of their bytes (the loop: two thirds of its keys'
/// bytes). `scale` multiplies the request counts (1.0: 200,000 each).
pub fn standard_traces(scale: f64) -> Vec<(Trace, u64)> {
    let len = ((200_000.0 * scale) as usize).max(1_000);
    let keys = 20_000;
    let mut out = Vec::new();
    for (i, skew) in [0.6, 0.8, 1.0, 1.2].into_iter().enumerate() {
        let t = Trace::zipf(keys, skew, len, 10 + i as u64);
        out.push((t, 0));
    }
    // A tenth of the bytes of the 20,000 keys (the Zipf traces touch fewer keys than that at
    // high skews, so their own universe would give them smaller caches).
    let capacity = (0..keys).map(|r| size_of(key_of(1, r))).sum::<u64>() / 10;
    for t in &mut out {
        t.1 = capacity;
    }
    out.push((Trace::looping(capacity, 1.5, len), capacity));
    out.push((Trace::scan_in_zipf(keys, 0.8, len, 300, 100, 20), capacity));
    out.push((Trace::shifting(keys, 0.8, len, 4, 30), capacity));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_least_recent() {
        let mut lru = Lru::new(30);
        for k in [1, 2, 3] {
            lru.insert(k, 10);
        }
        assert!(lru.get(1));
        lru.insert(4, 10);
        assert!(!lru.get(2), "2 was the least recent");
        assert!(lru.get(1) && lru.get(3) && lru.get(4));
        lru.lists.check(|_| true);
    }

    #[test]
    fn two_q_promotes_only_keys_seen_after_eviction() {
        let mut q = TwoQ::new(40);
        q.insert(1, 10);
        assert!(q.get(1), "a hit in A1in");
        // A1in holds four entries; A1out remembers two (20 bytes).
        for k in 2..6 {
            q.insert(k, 10);
        }
        assert!(!q.get(1), "1 went through A1in into A1out");
        q.insert(1, 10);
        assert_eq!(q.lists.list(q.lists.find(&1).expect("1")), AM);
        for k in 6..10 {
            q.insert(k, 10);
        }
        assert!(
            q.get(1),
            "Am is not displaced by new keys while A1in is over Kin"
        );
        assert_eq!(q.lists.find(&2), None, "2 was forgotten by A1out");
        q.lists.check(|l| l != A1OUT);
        assert!(q.lists.bytes(A1IN) + q.lists.bytes(AM) <= 40);
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let z = Zipf::new(100, 1.0);
        let mut rng = Rng::new(7);
        let mut counts = [0u32; 100];
        for _ in 0..20_000 {
            counts[z.sample(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[9] && counts[9] > counts[99]);
    }

    #[test]
    fn traces_have_the_shape_they_claim() {
        let t = Trace::looping(1 << 20, 1.5, 1_000);
        assert!(t.universe.1 > 3 << 19);
        assert_eq!(t.requests[0], t.requests[t.universe.0]);
        let s = Trace::scan_in_zipf(100, 0.8, 1_000, 3, 1, 1);
        assert_eq!(s.requests.len(), 1_000);
        let w = Trace::shifting(100, 0.8, 1_000, 4, 1);
        assert!(w.universe.0 > 100, "the working set moved");
    }

    /// The claim of docs/benchmarks.md: ARC hits at least as often as LRU on every standard
    /// trace (at full length: shorter shifting traces are all transitions, where ARC pays a
    /// second miss for each newly hot key).
    #[test]
    fn arc_is_at_least_lru_on_every_trace() {
        for (trace, capacity) in standard_traces(1.0) {
            let arc = replay(&mut ArcCore::<u64, ()>::new(capacity), &trace);
            let lru = replay(&mut Lru::new(capacity), &trace);
            assert!(
                arc.hit_ratio() >= lru.hit_ratio(),
                "{}: ARC {:.4} < LRU {:.4}",
                trace.name,
                arc.hit_ratio(),
                lru.hit_ratio()
            );
        }
    }
}
