//! ARC, the Adaptive Replacement Cache of Megiddo and Modha ("ARC: A Self-Tuning, Low Overhead
//! Replacement Cache", FAST 2003), sized in bytes. No I/O.
//!
//! The cache keeps four lists, each ordered from most to least recently used:
//! - `T1`: resident entries seen once since they entered the cache (recency);
//! - `T2`: resident entries seen at least twice (frequency);
//! - `B1`, `B2`: ghosts of entries evicted from `T1` and `T2`: the key and size only.
//!
//! A miss on a key in `B1` means `T1` was too small, and the target size `p` of `T1` grows; a
//! miss on a key in `B2` shrinks it. Eviction takes from `T1` while it is above `p`, else from
//! `T2`. So the cache moves between recency and frequency as the workload asks, and a scan of
//! keys seen once only ever displaces `T1`.
//!
//! Sizes are bytes, not entries: with capacity `c` the invariants are
//! `|T1| + |T2| <= c`, `|T1| + |B1| <= c`, `|T1| + |T2| + |B1| + |B2| <= 2c` and `0 <= p <= c`,
//! where `|L|` is the sum of the sizes of `L`'s entries. The paper's rules are kept with unit
//! steps replaced by the size `s` of the entry at hand: a `B1` ghost hit adds
//! `max(s, s * |B2| / |B1|)` to `p`, a `B2` ghost hit takes `max(s, s * |B1| / |B2|)` from it, and
//! eviction runs until the new entry fits. An entry larger than `c` is never admitted.
//!
//! [`ArcCore`] is one cache for one thread (`&mut self`); [`ArcCache`] shards keys over several
//! `ArcCore`s, each behind a mutex, for concurrent use. Each shard adapts on its own, over its
//! share of the capacity.
//!
//! ```
//! use ipfs_kit_tiered::arc::ArcCache;
//! let cache: ArcCache<u64, &str> = ArcCache::new(1024);
//! assert_eq!(cache.get(&1), None);
//! cache.insert(1, "one", 100);
//! assert_eq!(cache.get(&1), Some("one"));
//! let stats = cache.stats();
//! assert_eq!((stats.hits, stats.misses, stats.resident_bytes), (1, 1, 100));
//! ```

use std::hash::{BuildHasher, Hash};

use parking_lot::Mutex;

use crate::lists::Lists;

/// The hasher of the shard selection and the per-shard maps: fast, and seeded per cache so
/// keys chosen by others (block digests) cannot be aimed at one bucket.
pub type DefaultHasher = foldhash::fast::RandomState;

const T1: usize = 0;
const T2: usize = 1;
const B1: usize = 2;
const B2: usize = 3;

fn resident(list: usize) -> bool {
    list == T1 || list == T2
}

/// Counters of a cache, and its state now. Counters only grow; [`ArcCache::stats`] sums shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lookups that found the key resident.
    pub hits: u64,
    /// Lookups that did not (ghost hits included: a ghost holds no value).
    pub misses: u64,
    /// Entries admitted.
    pub inserts: u64,
    /// Resident entries pushed out to make room (moved to a ghost list or dropped).
    pub evictions: u64,
    /// Entries refused because they are larger than the (shard's) capacity.
    pub rejected: u64,
    /// Entries removed by [`ArcCore::remove`] (invalidation).
    pub removals: u64,
    /// Bytes of resident entries (`|T1| + |T2|`).
    pub resident_bytes: u64,
    /// Resident entries.
    pub resident_entries: u64,
    /// Bytes remembered by ghost entries (`|B1| + |B2|`); no values are held for them.
    pub ghost_bytes: u64,
    /// Capacity in bytes.
    pub capacity: u64,
    /// The adaptive target for `|T1|`, in bytes (summed over shards).
    pub target_t1: u64,
}

/// One ARC cache of `capacity` bytes, for use by one thread at a time.
pub struct ArcCore<K, V, S = DefaultHasher> {
    capacity: u64,
    /// The target size of `T1` in bytes, `0 <= p <= capacity`.
    p: u64,
    lists: Lists<K, V, S, 4>,
    stats: Stats,
}

impl<K: Hash + Eq + Clone, V: Clone> ArcCore<K, V, DefaultHasher> {
    /// An empty cache of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Self::with_hasher(capacity, DefaultHasher::default())
    }
}

impl<K: Hash + Eq + Clone, V: Clone, S: BuildHasher> ArcCore<K, V, S> {
    /// An empty cache of `capacity` bytes whose map hashes with `hasher`.
    pub fn with_hasher(capacity: u64, hasher: S) -> Self {
        ArcCore {
            capacity,
            p: 0,
            lists: Lists::with_hasher(hasher),
            stats: Stats::default(),
        }
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes held by resident entries.
    pub fn resident_bytes(&self) -> u64 {
        self.lists.bytes(T1) + self.lists.bytes(T2)
    }

    /// Number of resident entries.
    pub fn len(&self) -> usize {
        self.lists.len(T1) + self.lists.len(T2)
    }

    /// Whether no entry is resident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The adaptive target size of `T1`, in bytes.
    pub fn target_t1(&self) -> u64 {
        self.p
    }

    /// The counters and the state now.
    pub fn stats(&self) -> Stats {
        Stats {
            resident_bytes: self.resident_bytes(),
            resident_entries: self.len() as u64,
            ghost_bytes: self.lists.bytes(B1) + self.lists.bytes(B2),
            capacity: self.capacity,
            target_t1: self.p,
            ..self.stats
        }
    }

    /// Looks `key` up. A hit returns a clone of the value and marks the entry as frequently
    /// used (it moves to the front of `T2`); a miss changes nothing but the counter.
    pub fn get(&mut self, key: &K) -> Option<V> {
        let found = self
            .lists
            .find(key)
            .filter(|id| resident(self.lists.list(*id)));
        let Some(id) = found else {
            self.stats.misses += 1;
            return None;
        };
        self.stats.hits += 1;
        self.lists.move_front(id, T2);
        self.lists.value(id).cloned()
    }

    /// [`ArcCore::get`], except that a miss is not counted: for a first look that is followed,
    /// on a miss, by a counted one.
    pub fn get_uncounted_miss(&mut self, key: &K) -> Option<V> {
        let id = self
            .lists
            .find(key)
            .filter(|id| resident(self.lists.list(*id)))?;
        self.stats.hits += 1;
        self.lists.move_front(id, T2);
        self.lists.value(id).cloned()
    }

    /// Whether `key` is resident, without counting a lookup or changing any order.
    pub fn contains(&self, key: &K) -> bool {
        self.lists
            .find(key)
            .is_some_and(|id| resident(self.lists.list(id)))
    }

    /// Admits `value` of `size` bytes under `key`, usually after a [`ArcCore::get`] missed.
    /// Returns whether it is resident afterwards: `false` only when `size` is larger than the
    /// capacity.
    ///
    /// A key already resident with the same size keeps its place and takes the new value; one
    /// with another size is removed and admitted afresh. A key remembered in a ghost list
    /// adapts the target `p` and enters `T2`; any other key enters `T1`.
    pub fn insert(&mut self, key: K, value: V, size: u64) -> bool {
        if size > self.capacity {
            self.stats.rejected += 1;
            return false;
        }
        // The ghost lists' sizes before a ghost hit takes its key off one of them.
        let (b1, b2) = (self.lists.bytes(B1), self.lists.bytes(B2));
        let mut ghost = None;
        if let Some(id) = self.lists.find(&key) {
            let list = self.lists.list(id);
            if resident(list) && self.lists.size(id) == size {
                self.lists.set_value(id, value);
                return true;
            }
            self.lists.remove(id);
            ghost = (!resident(list)).then_some(list);
        }
        let c = self.capacity;
        let into = match ghost {
            Some(B1) => {
                self.p = c.min(self.p.saturating_add(step(size, b2, b1)));
                self.replace(size, false);
                T2
            }
            Some(_) => {
                self.p = self.p.saturating_sub(step(size, b1, b2));
                self.replace(size, true);
                T2
            }
            None => {
                if self.lists.bytes(T1) + self.lists.bytes(B1) + size > c {
                    // L1 = T1 + B1 is full: forget the oldest ghosts of B1, and if T1 alone
                    // leaves no room, drop T1's oldest entries outright (the paper's case IV.A).
                    while self.lists.bytes(T1) + self.lists.bytes(B1) + size > c
                        && self.lists.remove_lru(B1)
                    {}
                    while self.lists.bytes(T1) + size > c && self.lists.remove_lru(T1) {
                        self.stats.evictions += 1;
                    }
                } else {
                    while self.total() + size > 2 * c && self.lists.remove_lru(B2) {}
                }
                self.replace(size, false);
                T1
            }
        };
        self.lists.push(into, key, Some(value), size);
        self.trim_ghosts();
        self.stats.inserts += 1;
        true
    }

    /// Forgets `key` (resident or ghost). Returns whether it was resident.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(id) = self.lists.find(key) else {
            return false;
        };
        let was = resident(self.lists.list(id));
        self.lists.remove(id);
        if was {
            self.stats.removals += 1;
        }
        was
    }

    /// Forgets every entry and ghost, and resets `p`; the counters stay.
    pub fn clear(&mut self) {
        self.lists.clear();
        self.p = 0;
    }

    fn total(&self) -> u64 {
        (0..4).map(|l| self.lists.bytes(l)).sum()
    }

    /// The paper's REPLACE, repeated until an entry of `size` bytes fits beside `T1` and `T2`:
    /// demote the oldest of `T1` to `B1` while `T1` is over its target (or `T2` is empty), else
    /// the oldest of `T2` to `B2`.
    fn replace(&mut self, size: u64, hit_in_b2: bool) {
        while self.resident_bytes() + size > self.capacity {
            let t1 = self.lists.bytes(T1);
            let from_t1 = self.lists.len(T1) > 0
                && (t1 > self.p || (hit_in_b2 && t1 == self.p) || self.lists.len(T2) == 0);
            let moved = if from_t1 {
                self.lists.demote_lru(T1, B1)
            } else {
                self.lists.demote_lru(T2, B2)
            };
            if !moved {
                break;
            }
            self.stats.evictions += 1;
        }
    }

    /// Restores `|T1| + |B1| <= c` and `total <= 2c` by forgetting the oldest ghosts, after an
    /// insert whose size differs from the ghost it replaced. `T1 + B1 + T2 <= 2c` always holds
    /// (`T1 + B1 <= c` and `T2 <= c`), so `B2` has what the second loop needs.
    fn trim_ghosts(&mut self) {
        let c = self.capacity;
        while self.lists.bytes(T1) + self.lists.bytes(B1) > c && self.lists.remove_lru(B1) {}
        while self.total() > 2 * c && self.lists.remove_lru(B2) {}
    }

    /// The keys of each list, most recently used first: `[T1, T2, B1, B2]`. For tests.
    #[doc(hidden)]
    pub fn lists(&self) -> [Vec<K>; 4] {
        [T1, T2, B1, B2].map(|l| self.lists.keys(l))
    }

    /// Checks every invariant and the lists' bookkeeping; panics naming the broken one. For
    /// tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let c = self.capacity;
        let b = |l| self.lists.bytes(l);
        assert!(b(T1) + b(T2) <= c, "|T1| + |T2| > c");
        assert!(b(T1) + b(B1) <= c, "|T1| + |B1| > c");
        assert!(self.total() <= 2 * c, "total > 2c");
        assert!(self.p <= c, "p > c");
        self.lists.check(resident);
    }
}

/// The paper's adaptation step `max(1, other / this)`, scaled by the entry's size: the bigger
/// the opposite ghost list is beside this one, the faster `p` moves.
fn step(size: u64, other: u64, this: u64) -> u64 {
    let scaled = u128::from(size) * u128::from(other) / u128::from(this.max(1));
    u64::try_from(scaled).unwrap_or(u64::MAX).max(size)
}

/// A shard on its own cache line, so two cores locking neighbouring shards do not share one.
#[repr(align(128))]
struct Shard<K, V, S>(Mutex<ArcCore<K, V, S>>);

/// An ARC cache for concurrent use: keys are spread over shards by hash, each an [`ArcCore`]
/// with an equal share of the capacity behind its own mutex. Every method takes `&self`.
pub struct ArcCache<K, V, S = DefaultHasher> {
    shards: Box<[Shard<K, V, S>]>,
    hasher: S,
    capacity: u64,
}

/// Settings of an [`ArcCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Total capacity in bytes, split evenly between the shards.
    pub capacity: u64,
    /// Most shards; fewer are used when a shard would get less than [`Config::min_shard`].
    /// Rounded down to a power of two, at most 1024.
    pub shards: usize,
    /// Least capacity of one shard: the largest entry a shard admits is its capacity, so this
    /// bounds the largest cacheable entry from below.
    pub min_shard: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            capacity: 256 << 20,
            shards: 16,
            min_shard: 16 << 20,
        }
    }
}

impl Config {
    /// Sets [`Config::capacity`].
    pub fn with_capacity(mut self, bytes: u64) -> Self {
        self.capacity = bytes;
        self
    }

    /// Sets [`Config::shards`] (at least 1).
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// Sets [`Config::min_shard`].
    pub fn with_min_shard(mut self, bytes: u64) -> Self {
        self.min_shard = bytes;
        self
    }

    /// The number of shards these settings give: a power of two, at least 1.
    pub fn shard_count(&self) -> usize {
        let by_size = (self.capacity / self.min_shard.max(1)).max(1);
        let n = (self.shards.clamp(1, 1024) as u64).min(by_size);
        1 << (63 - n.leading_zeros())
    }
}

impl<K: Hash + Eq + Clone, V: Clone> ArcCache<K, V, DefaultHasher> {
    /// A cache of `capacity` bytes with the default sharding ([`Config::default`]).
    pub fn new(capacity: u64) -> Self {
        Self::with_config(Config::default().with_capacity(capacity))
    }

    /// A cache with `config`.
    pub fn with_config(config: Config) -> Self {
        Self::with_config_and_hasher(config, DefaultHasher::default())
    }
}

impl<K: Hash + Eq + Clone, V: Clone, S: BuildHasher + Clone> ArcCache<K, V, S> {
    /// A cache with `config` whose shard choice and maps hash with `hasher`.
    pub fn with_config_and_hasher(config: Config, hasher: S) -> Self {
        let n = config.shard_count();
        let per = config.capacity / n as u64;
        let shards = (0..n)
            .map(|_| Shard(Mutex::new(ArcCore::with_hasher(per, hasher.clone()))))
            .collect();
        ArcCache {
            shards,
            hasher,
            capacity: per * n as u64,
        }
    }

    fn shard(&self, key: &K) -> &Mutex<ArcCore<K, V, S>> {
        // The shard's map hashes the key again with the same hasher, and its table uses the low
        // bits (bucket) and the top 7 (tag): take the shard from bits 32 and up, which it
        // leaves alone, so keys in one shard still spread over its whole table.
        let h = self.hasher.hash_one(key);
        let i = (h >> 32) as usize & (self.shards.len() - 1);
        &self.shards[i].0
    }

    /// The capacity in bytes (the shards' capacities summed).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The largest entry admitted: one shard's capacity.
    pub fn max_entry(&self) -> u64 {
        self.capacity / self.shards.len() as u64
    }

    /// Looks `key` up; see [`ArcCore::get`].
    pub fn get(&self, key: &K) -> Option<V> {
        self.shard(key).lock().get(key)
    }

    /// Looks `key` up without counting a miss; see [`ArcCore::get_uncounted_miss`].
    pub fn get_uncounted_miss(&self, key: &K) -> Option<V> {
        self.shard(key).lock().get_uncounted_miss(key)
    }

    /// Whether `key` is resident, without counting a lookup.
    pub fn contains(&self, key: &K) -> bool {
        self.shard(key).lock().contains(key)
    }

    /// Admits `value` of `size` bytes; see [`ArcCore::insert`].
    pub fn insert(&self, key: K, value: V, size: u64) -> bool {
        self.shard(&key).lock().insert(key, value, size)
    }

    /// Admits `value` as [`ArcCache::insert`] does, if `admit` (called under the shard's lock)
    /// says so. Lets a caller make its check and the insert one step with respect to
    /// [`ArcCache::remove`] of the same key: a remove that runs after the insert undoes it, one
    /// that ran before is seen by `admit`.
    pub fn insert_if(&self, key: K, value: V, size: u64, admit: impl FnOnce() -> bool) -> bool {
        let mut shard = self.shard(&key).lock();
        admit() && shard.insert(key, value, size)
    }

    /// Forgets `key`; see [`ArcCore::remove`].
    pub fn remove(&self, key: &K) -> bool {
        self.shard(key).lock().remove(key)
    }

    /// Forgets everything (the counters stay).
    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.0.lock().clear();
        }
    }

    /// The counters and state summed over the shards (each shard read in turn, so a sum taken
    /// under load is approximate).
    pub fn stats(&self) -> Stats {
        self.shards.iter().fold(Stats::default(), |a, s| {
            let b = s.0.lock().stats();
            Stats {
                hits: a.hits + b.hits,
                misses: a.misses + b.misses,
                inserts: a.inserts + b.inserts,
                evictions: a.evictions + b.evictions,
                rejected: a.rejected + b.rejected,
                removals: a.removals + b.removals,
                resident_bytes: a.resident_bytes + b.resident_bytes,
                resident_entries: a.resident_entries + b.resident_entries,
                ghost_bytes: a.ghost_bytes + b.ghost_bytes,
                capacity: a.capacity + b.capacity,
                target_t1: a.target_t1 + b.target_t1,
            }
        })
    }

    /// Checks every shard's invariants; for tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        for s in self.shards.iter() {
            s.0.lock().check_invariants();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hits_misses_and_counters() {
        let mut c: ArcCore<u32, u32> = ArcCore::new(100);
        assert_eq!(c.get(&1), None);
        assert!(c.insert(1, 10, 40));
        assert_eq!(c.get(&1), Some(10));
        assert_eq!(c.lists()[1], vec![1], "a hit moves the entry to T2");
        let s = c.stats();
        assert_eq!(
            (s.hits, s.misses, s.inserts, s.resident_bytes),
            (1, 1, 1, 40)
        );
        c.check_invariants();
    }

    #[test]
    fn entries_larger_than_the_capacity_are_refused() {
        let mut c: ArcCore<u32, ()> = ArcCore::new(100);
        assert!(!c.insert(1, (), 101));
        assert!(c.insert(2, (), 100));
        assert_eq!(c.stats().rejected, 1);
        assert!(c.contains(&2) && !c.contains(&1));
        let mut empty: ArcCore<u32, ()> = ArcCore::new(0);
        assert!(!empty.insert(1, (), 1));
        assert!(empty.insert(2, (), 0), "a zero-byte entry fits anywhere");
    }

    #[test]
    fn a_scan_does_not_displace_the_frequent_set() {
        let mut c: ArcCore<u32, ()> = ArcCore::new(100);
        // Ten hot keys, each seen twice: they sit in T2.
        for k in 0..5 {
            c.insert(k, (), 10);
            c.get(&k);
        }
        // A scan of 100 keys seen once each.
        for k in 1000..1100 {
            if c.get(&k).is_none() {
                c.insert(k, (), 10);
            }
        }
        for k in 0..5 {
            assert!(c.contains(&k), "hot key {k} was scanned out");
        }
        c.check_invariants();
    }

    #[test]
    fn ghost_hits_move_the_target() {
        let mut c: ArcCore<u32, ()> = ArcCore::new(40);
        for k in [1, 2] {
            c.insert(k, (), 10);
            c.get(&k);
        }
        c.insert(3, (), 10);
        c.insert(4, (), 10);
        c.insert(5, (), 10);
        assert_eq!(c.lists(), [vec![5, 4], vec![2, 1], vec![3], vec![]]);
        c.insert(3, (), 10);
        assert_eq!(c.target_t1(), 10, "a B1 hit grows p by one entry");
        assert_eq!(c.lists(), [vec![5], vec![3, 2, 1], vec![4], vec![]]);
        c.insert(6, (), 10);
        assert_eq!(c.lists(), [vec![6, 5], vec![3, 2], vec![4], vec![1]]);
        c.insert(1, (), 10);
        assert_eq!(c.target_t1(), 0, "a B2 hit shrinks p");
        assert_eq!(c.lists(), [vec![6], vec![1, 3, 2], vec![5, 4], vec![]]);
        c.check_invariants();
    }

    #[test]
    fn a_full_t1_without_ghosts_drops_its_oldest() {
        let mut c: ArcCore<u32, ()> = ArcCore::new(40);
        for k in 0..5 {
            c.insert(k, (), 10);
        }
        assert_eq!(c.lists(), [vec![4, 3, 2, 1], vec![], vec![], vec![]]);
        assert_eq!(c.stats().evictions, 1);
    }

    #[test]
    fn remove_forgets_residents_and_ghosts() {
        let mut c: ArcCore<u32, ()> = ArcCore::new(20);
        c.insert(1, (), 10);
        c.insert(2, (), 10);
        c.insert(3, (), 10);
        assert!(!c.remove(&1), "1 was a ghost");
        assert!(c.remove(&2));
        assert_eq!(c.get(&2), None);
        assert_eq!(c.stats().removals, 1);
        c.clear();
        assert!(c.is_empty());
        c.check_invariants();
    }

    #[test]
    fn a_reinsert_with_another_size_is_a_fresh_entry() {
        let mut c: ArcCore<u32, u8> = ArcCore::new(100);
        c.insert(1, 1, 10);
        c.insert(1, 2, 10);
        assert_eq!(c.stats().resident_bytes, 10);
        c.insert(1, 3, 30);
        assert_eq!((c.stats().resident_bytes, c.get(&1)), (30, Some(3)));
        c.check_invariants();
    }

    #[test]
    fn shard_counts() {
        let d = Config::default();
        assert_eq!(d.shard_count(), 16);
        assert_eq!(d.with_capacity(64 << 20).shard_count(), 4);
        assert_eq!(d.with_capacity(1).shard_count(), 1);
        assert_eq!(d.with_capacity(1 << 40).with_shards(12).shard_count(), 8);
        let c: ArcCache<u64, ()> = ArcCache::with_config(d.with_capacity(100 << 20));
        assert_eq!(c.shards(), 4);
        assert_eq!(c.max_entry(), 25 << 20);
    }

    #[test]
    fn concurrent_use_keeps_the_invariants() {
        let cache: ArcCache<u64, u64> =
            ArcCache::with_config(Config::default().with_capacity(4000).with_min_shard(500));
        assert_eq!(cache.shards(), 8);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let cache = &cache;
                s.spawn(move || {
                    let mut x = t;
                    for _ in 0..20_000 {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let k = (x >> 33) % 300;
                        match cache.get(&k) {
                            Some(v) => assert_eq!(v, k * 7),
                            None => {
                                cache.insert(k, k * 7, 10 + k % 50);
                            }
                        }
                        if k % 97 == 0 {
                            cache.remove(&k);
                        }
                    }
                });
            }
        });
        cache.check_invariants();
        let s = cache.stats();
        assert_eq!(s.hits + s.misses, 80_000);
        assert!(s.resident_bytes <= s.capacity && s.capacity == 4000);
    }

    /// The same algorithm written as plainly as possible: lists as `VecDeque`s (front = most
    /// recent), found by linear search.
    #[derive(Default)]
    struct Model {
        c: u64,
        p: u64,
        /// T1, T2, B1, B2 of (key, size).
        l: [VecDeque<(u8, u64)>; 4],
        values: HashMap<u8, u16>,
    }

    impl Model {
        fn bytes(&self, i: usize) -> u64 {
            self.l[i].iter().map(|e| e.1).sum()
        }

        fn find(&self, k: u8) -> Option<(usize, usize)> {
            (0..4).find_map(|i| self.l[i].iter().position(|e| e.0 == k).map(|j| (i, j)))
        }

        fn get(&mut self, k: u8) -> Option<u16> {
            match self.find(k) {
                Some((i, j)) if i < 2 => {
                    let e = self.l[i].remove(j).expect("entry");
                    self.l[1].push_front(e);
                    self.values.get(&k).copied()
                }
                _ => None,
            }
        }

        /// Moves the oldest of T1 or T2 to the front of its ghost list.
        fn demote(&mut self, from: usize) {
            let e = self.l[from].pop_back().expect("non-empty");
            self.values.remove(&e.0);
            self.l[from + 2].push_front(e);
        }

        fn replace(&mut self, s: u64, in_b2: bool) {
            while self.bytes(0) + self.bytes(1) + s > self.c {
                let t1 = self.bytes(0);
                if !self.l[0].is_empty()
                    && (t1 > self.p || (in_b2 && t1 == self.p) || self.l[1].is_empty())
                {
                    self.demote(0);
                } else {
                    self.demote(1);
                }
            }
        }

        fn drop_lru(&mut self, i: usize) -> bool {
            match self.l[i].pop_back() {
                Some(e) => {
                    if i < 2 {
                        self.values.remove(&e.0);
                    }
                    true
                }
                None => false,
            }
        }

        fn total(&self) -> u64 {
            (0..4).map(|i| self.bytes(i)).sum()
        }

        fn insert(&mut self, k: u8, v: u16, s: u64) -> bool {
            if s > self.c {
                return false;
            }
            let (b1, b2) = (self.bytes(2), self.bytes(3));
            let mut ghost = None;
            if let Some((i, j)) = self.find(k) {
                if i < 2 && self.l[i][j].1 == s {
                    self.values.insert(k, v);
                    return true;
                }
                self.l[i].remove(j);
                self.values.remove(&k);
                ghost = (i >= 2).then_some(i);
            }
            let c = self.c;
            let into = match ghost {
                Some(2) => {
                    let step = (u128::from(s) * u128::from(b2) / u128::from(b1.max(1))) as u64;
                    self.p = c.min(self.p + step.max(s));
                    self.replace(s, false);
                    1
                }
                Some(_) => {
                    let step = (u128::from(s) * u128::from(b1) / u128::from(b2.max(1))) as u64;
                    self.p = self.p.saturating_sub(step.max(s));
                    self.replace(s, true);
                    1
                }
                None => {
                    if self.bytes(0) + self.bytes(2) + s > c {
                        while self.bytes(0) + self.bytes(2) + s > c && self.drop_lru(2) {}
                        while self.bytes(0) + s > c && self.drop_lru(0) {}
                    } else {
                        while self.total() + s > 2 * c && self.drop_lru(3) {}
                    }
                    self.replace(s, false);
                    0
                }
            };
            self.l[into].push_front((k, s));
            self.values.insert(k, v);
            while self.bytes(0) + self.bytes(2) > c && self.drop_lru(2) {}
            while self.total() > 2 * c && self.drop_lru(3) {}
            true
        }

        fn remove(&mut self, k: u8) -> bool {
            match self.find(k) {
                Some((i, j)) => {
                    self.l[i].remove(j);
                    self.values.remove(&k);
                    i < 2
                }
                None => false,
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Get(u8),
        /// Key, value, size.
        Insert(u8, u16, u64),
        /// A request as a cache front sees it: get, then insert on a miss (size from the key).
        Request(u8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0u8..24).prop_map(Op::Get),
            2 => (0u8..24, any::<u16>(), 0u64..40).prop_map(|(k, v, s)| Op::Insert(k, v, s)),
            6 => (0u8..24).prop_map(Op::Request),
            1 => (0u8..24).prop_map(Op::Remove),
        ]
    }

    fn size_of(k: u8) -> u64 {
        u64::from(k % 5) * 7 + 3
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every operation gives the model's answer, leaves the same lists in the same order,
        /// and keeps the invariants; a hit returns the value last inserted for that key, so it
        /// is only ever reported for a key present.
        #[test]
        fn matches_the_model(capacity in 0u64..120, ops in prop::collection::vec(op(), 1..300)) {
            let mut arc: ArcCore<u8, u16> = ArcCore::new(capacity);
            let mut model = Model { c: capacity, ..Model::default() };
            // What was last inserted under each key and not removed since.
            let mut present: HashMap<u8, u16> = HashMap::new();
            for op in ops {
                match op {
                    Op::Get(k) => {
                        let got = arc.get(&k);
                        prop_assert_eq!(got, model.get(k));
                        if let Some(v) = got {
                            prop_assert_eq!(present.get(&k), Some(&v));
                        }
                    }
                    Op::Insert(k, v, s) => {
                        let admitted = arc.insert(k, v, s);
                        prop_assert_eq!(admitted, model.insert(k, v, s));
                        prop_assert_eq!(admitted, s <= capacity);
                        if admitted {
                            present.insert(k, v);
                            prop_assert!(arc.contains(&k), "a fresh insert is resident");
                        }
                    }
                    Op::Request(k) => {
                        let got = arc.get(&k);
                        prop_assert_eq!(got, model.get(k));
                        match got {
                            Some(v) => prop_assert_eq!(present.get(&k), Some(&v)),
                            None => {
                                let v = u16::from(k) * 3;
                                let s = size_of(k);
                                prop_assert_eq!(arc.insert(k, v, s), model.insert(k, v, s));
                                if s <= capacity {
                                    present.insert(k, v);
                                }
                            }
                        }
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(arc.remove(&k), model.remove(k));
                        present.remove(&k);
                        prop_assert!(!arc.contains(&k));
                    }
                }
                arc.check_invariants();
                prop_assert_eq!(arc.target_t1(), model.p);
                let lists = arc.lists();
                for (i, l) in lists.iter().enumerate() {
                    let want: Vec<u8> = model.l[i].iter().map(|e| e.0).collect();
                    prop_assert_eq!(l, &want, "list {}", i);
                }
            }
        }
    }
}
