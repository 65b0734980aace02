//! Each tier's figures: reads that found a block there, missed or failed, the bytes they
//! returned, how long they took (a histogram of power-of-two buckets, from which percentiles
//! are read at bucket resolution), and the blocks and bytes moved in and out by migrations and
//! promotions. Counting is a few relaxed atomic adds per read: cheap beside any tier's I/O.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Latency buckets: bucket 0 holds reads under 1 µs, bucket `i` those in `[2^(i-1), 2^i)` µs,
/// the last everything from about 18 minutes up.
pub const BUCKETS: usize = 32;

/// A tier's live counters (see the module documentation).
#[derive(Debug, Default)]
pub struct TierCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    read_bytes: AtomicU64,
    moved_in_blocks: AtomicU64,
    moved_in_bytes: AtomicU64,
    moved_out_blocks: AtomicU64,
    latency: [AtomicU64; BUCKETS],
    latency_sum_us: AtomicU64,
}

/// A copy of a tier's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierFigures {
    /// Reads that found the block in this tier.
    pub hits: u64,
    /// Reads that asked this tier and did not find the block.
    pub misses: u64,
    /// Reads that failed (the tier unreachable, a corrupt block).
    pub errors: u64,
    /// Bytes the hits returned.
    pub read_bytes: u64,
    /// Blocks copied into this tier by migrations and promotions.
    pub moved_in_blocks: u64,
    /// Their bytes.
    pub moved_in_bytes: u64,
    /// Blocks deleted from this tier because a migration or promotion moved them elsewhere.
    pub moved_out_blocks: u64,
    /// Reads per latency bucket (see [`BUCKETS`]).
    pub latency: [u64; BUCKETS],
    /// All reads' time summed, in microseconds.
    pub latency_sum_us: u64,
}

/// The bucket of a read that took `elapsed`.
fn bucket(elapsed: Duration) -> usize {
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    ((u64::BITS - us.leading_zeros()) as usize).min(BUCKETS - 1)
}

/// The upper bound of bucket `i` (the last one's is nominal: it has none).
pub fn bucket_bound(i: usize) -> Duration {
    Duration::from_micros(1u64 << i.min(BUCKETS - 1))
}

impl TierCounters {
    /// Counts one read of this tier that took `elapsed`: `Ok(Some(n))` found `n` bytes,
    /// `Ok(None)` found nothing, `Err(())` failed.
    pub fn read(&self, elapsed: Duration, outcome: Result<Option<usize>, ()>) {
        match outcome {
            Ok(Some(n)) => {
                self.hits.fetch_add(1, Relaxed);
                self.read_bytes.fetch_add(n as u64, Relaxed);
            }
            Ok(None) => {
                self.misses.fetch_add(1, Relaxed);
            }
            Err(()) => {
                self.errors.fetch_add(1, Relaxed);
            }
        }
        self.latency[bucket(elapsed)].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }

    /// Counts `blocks` blocks of `bytes` bytes copied into this tier.
    pub fn moved_in(&self, blocks: u64, bytes: u64) {
        self.moved_in_blocks.fetch_add(blocks, Relaxed);
        self.moved_in_bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts `blocks` blocks deleted from this tier after a move.
    pub fn moved_out(&self, blocks: u64) {
        self.moved_out_blocks.fetch_add(blocks, Relaxed);
    }

    /// The counters now (each read on its own: a read in flight may show in one and not yet
    /// in another).
    pub fn figures(&self) -> TierFigures {
        TierFigures {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            errors: self.errors.load(Relaxed),
            read_bytes: self.read_bytes.load(Relaxed),
            moved_in_blocks: self.moved_in_blocks.load(Relaxed),
            moved_in_bytes: self.moved_in_bytes.load(Relaxed),
            moved_out_blocks: self.moved_out_blocks.load(Relaxed),
            latency: std::array::from_fn(|i| self.latency[i].load(Relaxed)),
            latency_sum_us: self.latency_sum_us.load(Relaxed),
        }
    }
}

impl TierFigures {
    /// Reads counted.
    pub fn reads(&self) -> u64 {
        self.latency.iter().sum()
    }

    /// The share of reads that found their block here, if there were any.
    pub fn hit_ratio(&self) -> Option<f64> {
        let asked = self.hits + self.misses + self.errors;
        (asked > 0).then(|| self.hits as f64 / asked as f64)
    }

    /// The latency under which a fraction `q` (0..=1) of reads finished, at bucket resolution
    /// (the upper bound of the bucket holding that read), if there were any reads.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let n = self.reads();
        if n == 0 {
            return None;
        }
        // The rank of the read sought, 1-based: at least the first, at most the last.
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(bucket_bound(i));
            }
        }
        Some(bucket_bound(BUCKETS - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_of_microseconds() {
        assert_eq!(bucket(Duration::ZERO), 0);
        assert_eq!(bucket(Duration::from_nanos(999)), 0);
        assert_eq!(bucket(Duration::from_micros(1)), 1);
        assert_eq!(bucket(Duration::from_micros(3)), 2);
        assert_eq!(bucket(Duration::from_micros(4)), 3);
        assert_eq!(bucket(Duration::from_secs(1)), 20);
        assert_eq!(bucket(Duration::from_secs(1 << 40)), BUCKETS - 1);
        // Every latency is under its bucket's bound and at least the previous bound.
        for us in [1u64, 2, 5, 100, 1023, 1024, 65_537] {
            let d = Duration::from_micros(us);
            let i = bucket(d);
            assert!(d < bucket_bound(i), "{us}");
            assert!(d >= bucket_bound(i - 1), "{us}");
        }
    }

    #[test]
    fn percentiles_and_ratios_follow_the_reads() {
        let c = TierCounters::default();
        assert_eq!(c.figures().percentile(0.5), None);
        assert_eq!(c.figures().hit_ratio(), None);
        // 90 fast hits, 9 slower misses, one slow failure.
        for _ in 0..90 {
            c.read(Duration::from_micros(10), Ok(Some(100)));
        }
        for _ in 0..9 {
            c.read(Duration::from_millis(2), Ok(None));
        }
        c.read(Duration::from_secs(1), Err(()));
        let f = c.figures();
        assert_eq!((f.hits, f.misses, f.errors, f.read_bytes), (90, 9, 1, 9000));
        assert_eq!(f.reads(), 100);
        assert_eq!(f.hit_ratio(), Some(0.9));
        assert_eq!(f.percentile(0.5), Some(Duration::from_micros(16)));
        assert_eq!(f.percentile(0.9), Some(Duration::from_micros(16)));
        assert_eq!(f.percentile(0.99), Some(Duration::from_micros(2048)));
        assert_eq!(f.percentile(1.0), Some(Duration::from_micros(1 << 20)));
        assert_eq!(f.percentile(0.0), Some(Duration::from_micros(16)));
        assert_eq!(f.latency_sum_us, 90 * 10 + 9 * 2000 + 1_000_000);
        c.moved_in(3, 300);
        c.moved_out(2);
        let f = c.figures();
        assert_eq!(
            (f.moved_in_blocks, f.moved_in_bytes, f.moved_out_blocks),
            (3, 300, 2)
        );
    }
}
