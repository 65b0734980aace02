//! The block cache's figures as Prometheus metrics (`ipfs_kit_block_cache_*`), read from the
//! cache's own counters at each scrape.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

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
            c.inc_by(v.saturating_sub(c.get()));
        }
        self.resident
            .set(i64::try_from(s.resident_bytes).unwrap_or(i64::MAX));
        self.capacity
            .set(i64::try_from(s.capacity).unwrap_or(i64::MAX));
    }
}
