//! How hot each block is: a count of accesses that decays exponentially with their age.
//!
//! A block's heat is the sum, over its accesses, of `2^(-age / half_life)`: an access now counts
//! 1, one a half-life ago 1/2, two half-lives ago 1/4. It is kept as one number and the time it
//! was last brought up to date, `(h, t)`; an access at `now` makes it
//! `h · 2^(-(now - t) / half_life) + 1`. So heat measures frequency (every access adds) and
//! recency (old accesses fade) at once, and a block read four times within a few hours has a
//! heat near 4 whatever its size. The half-life is 24 hours by default
//! (`tiering.heat_half_life`). See docs/tiered.md.
//!
//! Entries are keyed by a 64-bit hash of the multihash (a collision only merges two blocks'
//! heat) and bounded: past [`Heat::capacity`] entries, the coldest half is forgotten.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Entries kept by default (about 24 MiB at most).
pub const DEFAULT_CAPACITY: usize = 1 << 20;
/// The default half-life of an access's weight.
pub const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(24 * 3600);

/// Heat per block.
pub struct Heat {
    entries: Mutex<HashMap<u64, (f32, u32)>>,
    half_life: f64,
    capacity: usize,
    hasher: foldhash::fast::FixedState,
}

impl Default for Heat {
    fn default() -> Self {
        Heat::new(DEFAULT_HALF_LIFE, DEFAULT_CAPACITY)
    }
}

/// Seconds since the Unix epoch, as heat timestamps count them.
pub fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

impl Heat {
    /// Heat with `half_life` (at least a second), keeping at most `capacity` entries.
    pub fn new(half_life: Duration, capacity: usize) -> Self {
        Heat {
            entries: Mutex::new(HashMap::new()),
            half_life: half_life.as_secs_f64().max(1.0),
            capacity: capacity.max(2),
            hasher: foldhash::fast::FixedState::with_seed(0x6865_6174),
        }
    }

    /// The most entries kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn key(&self, mh: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(mh);
        h.finish()
    }

    fn decayed(&self, (h, t): (f32, u32), now: u32) -> f64 {
        let age = f64::from(now.saturating_sub(t));
        f64::from(h) * (-age / self.half_life).exp2()
    }

    /// Counts one access to the block with multihash bytes `mh` at `now`; its new heat.
    pub fn record(&self, mh: &[u8], now: u32) -> f64 {
        let key = self.key(mh);
        let mut entries = self.entries.lock();
        let heat = entries.get(&key).map_or(0.0, |e| self.decayed(*e, now)) + 1.0;
        entries.insert(key, (heat as f32, now));
        if entries.len() > self.capacity {
            self.forget_coldest(&mut entries, now);
        }
        heat
    }

    /// The heat of `mh` at `now` (0 for a block never seen, or forgotten).
    pub fn get(&self, mh: &[u8], now: u32) -> f64 {
        let key = self.key(mh);
        self.entries
            .lock()
            .get(&key)
            .map_or(0.0, |e| self.decayed(*e, now))
    }

    /// Entries tracked now.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the colder half of the entries.
    fn forget_coldest(&self, entries: &mut HashMap<u64, (f32, u32)>, now: u32) {
        let mut heats: Vec<f64> = entries.values().map(|e| self.decayed(*e, now)).collect();
        let mid = heats.len() / 2;
        heats.select_nth_unstable_by(mid, f64::total_cmp);
        let cut = heats[mid];
        entries.retain(|_, e| self.decayed(*e, now) > cut);
    }

    /// Every entry, 16 bytes each (key, heat, time; little-endian), to persist.
    pub fn snapshot(&self) -> Vec<u8> {
        let entries = self.entries.lock();
        let mut out = Vec::with_capacity(entries.len() * 16);
        for (k, (h, t)) in entries.iter() {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&h.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
        }
        out
    }

    /// Adds the entries of a [`Heat::snapshot`] (a trailing partial entry, or heat that is not
    /// a finite non-negative number, is skipped), up to the capacity.
    pub fn restore(&self, snapshot: &[u8]) {
        let mut entries = self.entries.lock();
        for e in snapshot.chunks_exact(16) {
            if entries.len() >= self.capacity {
                break;
            }
            let k = u64::from_le_bytes(e[..8].try_into().unwrap_or_default());
            let h = f32::from_le_bytes(e[8..12].try_into().unwrap_or_default());
            let t = u32::from_le_bytes(e[12..].try_into().unwrap_or_default());
            if h.is_finite() && h >= 0.0 {
                entries.insert(k, (h, t));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: u32 = 24 * 3600;

    #[test]
    fn an_access_counts_one_and_halves_every_half_life() {
        let heat = Heat::default();
        let t0 = 1_000_000;
        assert_eq!(heat.record(b"a", t0), 1.0);
        assert!((heat.get(b"a", t0 + DAY) - 0.5).abs() < 1e-6);
        assert!((heat.get(b"a", t0 + 2 * DAY) - 0.25).abs() < 1e-6);
        // Four reads in an hour: close to 4.
        for i in 1..4 {
            heat.record(b"a", t0 + i * 1200);
        }
        let h = heat.get(b"a", t0 + 3600);
        assert!(h > 3.9 && h <= 4.0, "{h}");
        assert_eq!(heat.get(b"never", t0), 0.0);
    }

    #[test]
    fn snapshots_restore_the_same_heat_and_bad_bytes_are_skipped() {
        let heat = Heat::default();
        heat.record(b"x", 100);
        heat.record(b"x", 200);
        heat.record(b"y", 300);
        let mut snap = heat.snapshot();
        let back = Heat::default();
        snap.extend_from_slice(&[1, 2, 3]);
        back.restore(&snap);
        assert_eq!(back.len(), 2);
        assert_eq!(back.get(b"x", 400), heat.get(b"x", 400));
        let mut nan = [0u8; 16];
        nan[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        back.restore(&nan);
        assert_eq!(back.len(), 2);
    }

    proptest! {
        /// Against a model that keeps every access time: heat is the sum of the decayed
        /// weights, never negative, and the entry count stays within the capacity.
        #[test]
        fn heat_is_the_sum_of_decayed_accesses(
            steps in proptest::collection::vec((0u8..8, 0u32..(3 * DAY)), 1..200)
        ) {
            let heat = Heat::new(Duration::from_secs(u64::from(DAY)), 1 << 20);
            let mut model: HashMap<u8, Vec<u32>> = HashMap::new();
            let mut now = 1_000_000u32;
            for (block, dt) in steps {
                now += dt;
                heat.record(&[block], now);
                model.entry(block).or_default().push(now);
            }
            for (block, times) in &model {
                let want: f64 = times
                    .iter()
                    .map(|t| (-f64::from(now - t) / f64::from(DAY)).exp2())
                    .sum();
                let got = heat.get(&[*block], now);
                prop_assert!(got >= 0.0);
                prop_assert!((got - want).abs() <= 1e-4 * want.max(1.0), "{got} vs {want}");
            }
        }

        #[test]
        fn entries_stay_within_the_capacity(n in 1usize..500) {
            let heat = Heat::new(DEFAULT_HALF_LIFE, 64);
            for i in 0..n {
                heat.record(&(i as u64).to_le_bytes(), 1000 + i as u32);
            }
            prop_assert!(heat.len() <= 64);
        }
    }
}
