//! The block cache's and the storage tiers' figures as Prometheus metrics
//! (`ipfs_kit_block_cache_*`, `ipfs_kit_tier_*`), read from their own counters at each scrape.

use std::sync::atomic::AtomicU64;

use ipfs_kit_tiered::counters::TierFigures;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// Makes the counter `c` read `v` (a copy of a count kept elsewhere, which only grows).
fn copy_count(c: &Counter, v: u64) {
    c.inc_by(v.saturating_sub(c.get()));
}

/// Sets the gauge `g` to the count `v`, saturating.
pub(crate) fn set_gauge(g: &Gauge, v: impl TryInto<i64>) {
    g.set(v.try_into().unwrap_or(i64::MAX));
}

/// The exported metrics, each a copy of one of the cache's counters.
#[derive(Clone, Default)]
pub(crate) struct CacheMetrics {
    hits: Counter,
    misses: Counter,
    inserts: Counter,
    evictions: Counter,
    removals: Counter,
    resident: Gauge,
    capacity: Gauge,
    /// Scrapes copy counters one at a time, so two at once would add a delta twice.
    update: std::sync::Arc<parking_lot::Mutex<()>>,
}

impl CacheMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register("hits", "Block reads served from memory", self.hits.clone());
        r.register(
            "misses",
            "Block reads that went to the store",
            self.misses.clone(),
        );
        r.register(
            "inserts",
            "Verified blocks admitted to the cache",
            self.inserts.clone(),
        );
        r.register(
            "evictions",
            "Blocks evicted to make room",
            self.evictions.clone(),
        );
        r.register(
            "removals",
            "Cached blocks dropped because they were deleted",
            self.removals.clone(),
        );
        r.register_with_unit(
            "size",
            "Bytes of blocks held in the cache",
            Unit::Bytes,
            self.resident.clone(),
        );
        r.register_with_unit(
            "capacity",
            "Capacity of the cache (0: off)",
            Unit::Bytes,
            self.capacity.clone(),
        );
    }

    /// Copies the cache's figures (all zero when the cache is off).
    pub(crate) fn update(&self, stats: Option<ipfs_kit_tiered::arc::Stats>) {
        let s = stats.unwrap_or_default();
        let _one = self.update.lock();
        for (c, v) in [
            (&self.hits, s.hits),
            (&self.misses, s.misses),
            (&self.inserts, s.inserts),
            (&self.evictions, s.evictions),
            (&self.removals, s.removals),
        ] {
            copy_count(c, v);
        }
        set_gauge(&self.resident, s.resident_bytes);
        set_gauge(&self.capacity, s.capacity);
    }
}

/// A metric's tier label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabel {
    tier: String,
}

/// A tier read's outcome label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadLabel {
    tier: String,
    outcome: &'static str,
}

/// A latency quantile's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabel {
    tier: String,
    quantile: &'static str,
}

/// Each storage tier's figures (`ipfs_kit_tier_*`, labelled by tier), copied from the tiers'
/// own counters at each scrape (see [`ipfs_kit_tiered::counters`]).
#[derive(Clone, Default)]
pub(crate) struct TierMetrics {
    reads: Family<ReadLabel, Counter>,
    read_bytes: Family<TierLabel, Counter>,
    latency: Family<QuantileLabel, Gauge<f64, AtomicU64>>,
    moved_in_blocks: Family<TierLabel, Counter>,
    moved_in_bytes: Family<TierLabel, Counter>,
    moved_out_blocks: Family<TierLabel, Counter>,
    update: std::sync::Arc<parking_lot::Mutex<()>>,
}

/// The latency quantiles exported, with their labels.
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

impl TierMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "reads",
            "Block reads that asked the tier, by outcome (hit, miss, error)",
            self.reads.clone(),
        );
        r.register_with_unit(
            "read",
            "Bytes returned by reads that hit the tier",
            Unit::Bytes,
            self.read_bytes.clone(),
        );
        r.register_with_unit(
            "read_latency",
            "Read latency quantiles since the start (upper bounds of power-of-two buckets)",
            Unit::Seconds,
            self.latency.clone(),
        );
        r.register(
            "moved_in_blocks",
            "Blocks moved into the tier by migrations and promotions",
            self.moved_in_blocks.clone(),
        );
        r.register_with_unit(
            "moved_in",
            "Bytes moved into the tier by migrations and promotions",
            Unit::Bytes,
            self.moved_in_bytes.clone(),
        );
        r.register(
            "moved_out_blocks",
            "Blocks moved out of the tier",
            self.moved_out_blocks.clone(),
        );
    }

    /// Copies every tier's figures.
    pub(crate) fn update(&self, tiers: &[(String, TierFigures)]) {
        let _one = self.update.lock();
        for (name, f) in tiers {
            let tier = TierLabel { tier: name.clone() };
            for (outcome, v) in [("hit", f.hits), ("miss", f.misses), ("error", f.errors)] {
                copy_count(
                    &self.reads.get_or_create(&ReadLabel {
                        tier: name.clone(),
                        outcome,
                    }),
                    v,
                );
            }
            copy_count(&self.read_bytes.get_or_create(&tier), f.read_bytes);
            copy_count(
                &self.moved_in_blocks.get_or_create(&tier),
                f.moved_in_blocks,
            );
            copy_count(&self.moved_in_bytes.get_or_create(&tier), f.moved_in_bytes);
            copy_count(
                &self.moved_out_blocks.get_or_create(&tier),
                f.moved_out_blocks,
            );
            for (q, quantile) in QUANTILES {
                if let Some(d) = f.percentile(q) {
                    self.latency
                        .get_or_create(&QuantileLabel {
                            tier: name.clone(),
                            quantile,
                        })
                        .set(d.as_secs_f64());
                }
            }
        }
    }
}
