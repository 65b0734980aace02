//! The memory tier: an ARC cache of verified blocks in front of a [`Blockstore`].
//!
//! Only bytes known to hash to their CID enter the cache: blocks written (a [`Block`] is
//! checked or computed from its bytes when it is made) and blocks read from an inner store
//! that verifies its reads. So a hit is served with neither I/O nor hashing, and is as
//! trustworthy as a verified read.
//!
//! Deletes go through this store, which forgets each deleted block. A read racing a delete
//! must not put the block back: every delete bumps a counter after its inner delete and before
//! it forgets the blocks, and a read (or a commit) admits what it got only if the counter is
//! what it was before it touched the inner store, checked under the cache shard's lock (see
//! [`ArcCache::insert_if`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use ipfs_kit_block::{Block, Bytes, Cid, Multihash, IDENTITY};
use ipfs_kit_blockstore::{Blockstore, Error, StoreStats, WriteBatch};

use crate::arc::{self, ArcCache, Stats};

/// The block cache: multihash to block bytes, sized in bytes.
pub type BlockCache = ArcCache<Multihash<64>, Bytes>;

/// Settings of a [`CachedBlockstore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Cache capacity in bytes; 0 turns the cache off.
    pub capacity: u64,
    /// Whether the inner store verifies every block it reads (so reads may be cached).
    pub verified_reads: bool,
    /// The most bytes of one write batch admitted when it commits: its last blocks, up to this
    /// many bytes. Bounds the memory a large import holds until its commit, and how much of
    /// the cache one import can displace. 0 admits nothing on write.
    pub write_admission: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: 256 << 20,
            verified_reads: true,
            write_admission: 32 << 20,
        }
    }
}

impl CacheConfig {
    /// Sets [`CacheConfig::capacity`].
    pub fn with_capacity(mut self, bytes: u64) -> Self {
        self.capacity = bytes;
        self
    }

    /// Sets [`CacheConfig::verified_reads`].
    pub fn with_verified_reads(mut self, verified: bool) -> Self {
        self.verified_reads = verified;
        self
    }

    /// Sets [`CacheConfig::write_admission`].
    pub fn with_write_admission(mut self, bytes: u64) -> Self {
        self.write_admission = bytes;
        self
    }
}

/// A [`Blockstore`] with an ARC cache of verified blocks in front of `S`.
pub struct CachedBlockstore<S> {
    inner: S,
    cache: Option<BlockCache>,
    config: CacheConfig,
    /// Bumped by every delete, between its inner delete and its invalidation.
    deletes: AtomicU64,
}

impl<S: Blockstore> CachedBlockstore<S> {
    /// `inner` behind a cache of `config`.
    pub fn new(inner: S, config: CacheConfig) -> Self {
        let cache = (config.capacity > 0)
            .then(|| ArcCache::with_config(arc::Config::default().with_capacity(config.capacity)));
        CachedBlockstore {
            inner,
            cache,
            config,
            deletes: AtomicU64::new(0),
        }
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The cache, when it is on.
    pub fn cache(&self) -> Option<&BlockCache> {
        self.cache.as_ref()
    }

    /// The cache's counters, when it is on.
    pub fn cache_stats(&self) -> Option<Stats> {
        self.cache.as_ref().map(ArcCache::stats)
    }

    /// The block from the cache only: no I/O. A hit counts as one; a miss is not counted, as
    /// the caller is expected to go on to [`Blockstore::get`], which counts it.
    pub fn get_cached(&self, cid: &Cid) -> Option<Bytes> {
        self.cache.as_ref()?.get_uncounted_miss(cid.hash())
    }

    /// Forgets every cached block (after the inner store was changed behind this one's back).
    pub fn clear_cache(&self) {
        if let Some(c) = &self.cache {
            c.clear();
        }
    }

    fn cacheable(cache: &BlockCache, cid: &Cid, len: usize) -> bool {
        cid.hash().code() != IDENTITY && (len as u64) <= cache.max_entry()
    }
}

impl<S: Blockstore> Blockstore for CachedBlockstore<S> {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        let Some(cache) = &self.cache else {
            return self.inner.get(cid);
        };
        if let Some(b) = cache.get(cid.hash()) {
            self.inner.touch(cid);
            return Ok(Some(b));
        }
        let before = self.deletes.load(Ordering::SeqCst);
        let data = self.inner.get(cid)?;
        if let Some(d) = &data {
            if self.config.verified_reads && Self::cacheable(cache, cid, d.len()) {
                cache.insert_if(*cid.hash(), d.clone(), d.len() as u64, || {
                    self.deletes.load(Ordering::SeqCst) == before
                });
            }
        }
        Ok(data)
    }

    /// The store's copy: a bookkeeping walk neither disturbs the cache's recency nor fills it.
    fn peek(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        self.inner.peek(cid)
    }

    /// Passes on the blocks the cache does not hold.
    fn prefetch(&self, cids: &[Cid]) {
        match &self.cache {
            Some(cache) => {
                let missing: Vec<Cid> = cids
                    .iter()
                    .filter(|c| !cache.contains(c.hash()))
                    .copied()
                    .collect();
                self.inner.prefetch(&missing);
            }
            None => self.inner.prefetch(cids),
        }
    }

    fn has(&self, cid: &Cid) -> Result<bool, Error> {
        self.inner.has(cid)
    }

    fn size(&self, cid: &Cid) -> Result<Option<u64>, Error> {
        self.inner.size(cid)
    }

    fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, Error> {
        let inner = self.inner.begin()?;
        Ok(Box::new(CachedBatch {
            inner,
            store: self,
            pending: VecDeque::new(),
            pending_bytes: 0,
        }))
    }

    fn delete_many(&self, cids: &[Cid]) -> Result<u64, Error> {
        let result = self.inner.delete_many(cids);
        // Even a failed delete may have removed some blocks: forget them all.
        if let Some(cache) = &self.cache {
            self.deletes.fetch_add(1, Ordering::SeqCst);
            for cid in cids {
                cache.remove(cid.hash());
            }
        }
        result
    }

    fn list(&self) -> Result<Vec<Cid>, Error> {
        self.inner.list()
    }

    fn stats(&self) -> Result<StoreStats, Error> {
        self.inner.stats()
    }
}

/// A write batch that admits its blocks (the last `write_admission` bytes of them) to the
/// cache once it has committed.
struct CachedBatch<'a, S> {
    inner: Box<dyn WriteBatch + 'a>,
    store: &'a CachedBlockstore<S>,
    pending: VecDeque<(Multihash<64>, Bytes)>,
    pending_bytes: u64,
}

impl<S: Blockstore> WriteBatch for CachedBatch<'_, S> {
    fn put(&mut self, block: Block) -> Result<(), Error> {
        let limit = self.store.config.write_admission;
        if let Some(cache) = &self.store.cache {
            let len = block.data().len();
            if limit > 0 && CachedBlockstore::<S>::cacheable(cache, block.cid(), len) {
                self.pending
                    .push_back((*block.cid().hash(), block.data().clone()));
                self.pending_bytes += len as u64;
                while self.pending_bytes > limit {
                    match self.pending.pop_front() {
                        Some((_, b)) => self.pending_bytes -= b.len() as u64,
                        None => break,
                    }
                }
            }
        }
        self.inner.put(block)
    }

    fn commit(self: Box<Self>) -> Result<(), Error> {
        let CachedBatch {
            inner,
            store,
            pending,
            ..
        } = *self;
        let before = store.deletes.load(Ordering::SeqCst);
        inner.commit()?;
        if let Some(cache) = &store.cache {
            for (mh, data) in pending {
                let len = data.len() as u64;
                cache.insert_if(mh, data, len, || {
                    store.deletes.load(Ordering::SeqCst) == before
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ipfs_kit_block::{codec, HashAlg};
    use ipfs_kit_blockstore::{conformance, FsBlockstore, FsConfig, MemBlockstore};

    use super::*;

    fn block(i: u32, len: usize) -> Block {
        let mut data = vec![0u8; len];
        data[..4].copy_from_slice(&i.to_le_bytes());
        Block::encode(codec::RAW, HashAlg::Sha2_256, 1, data)
    }

    #[test]
    fn passes_the_blockstore_conformance_suite() {
        conformance::run(&CachedBlockstore::new(
            MemBlockstore::default(),
            CacheConfig::default(),
        ));
        conformance::run(&CachedBlockstore::new(
            MemBlockstore::default(),
            CacheConfig::default().with_write_admission(0),
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = FsBlockstore::open(dir.path(), FsConfig::default()).expect("open");
        conformance::run(&CachedBlockstore::new(fs, CacheConfig::default()));
    }

    #[test]
    fn a_hit_needs_no_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = FsBlockstore::open(dir.path(), FsConfig::default()).expect("open");
        let store = CachedBlockstore::new(fs, CacheConfig::default().with_write_admission(0));
        let b = block(1, 1000);
        store.put_many(vec![b.clone()]).expect("put");
        assert_eq!(
            store.cache_stats().map(|s| s.inserts),
            Some(0),
            "no write admission"
        );
        assert_eq!(store.get(b.cid()).expect("get").as_ref(), Some(b.data()));
        // The bytes on disk go bad; the verified copy in memory is still served.
        for e in std::fs::read_dir(dir.path().join("segments")).expect("segments") {
            let p = e.expect("entry").path();
            let mut bytes = std::fs::read(&p).expect("read");
            let n = bytes.len();
            bytes[n - 1] ^= 0xff;
            std::fs::write(&p, bytes).expect("write");
        }
        assert_eq!(store.get(b.cid()).expect("get").as_ref(), Some(b.data()));
        let s = store.cache_stats().expect("stats");
        assert_eq!((s.hits, s.misses, s.inserts), (1, 1, 1));
        // Without the cache, the inner store finds the corruption.
        store.clear_cache();
        assert!(matches!(store.get(b.cid()), Err(Error::Corrupt(_))));
    }

    #[test]
    fn unverified_reads_are_not_cached_but_writes_are() {
        let store = CachedBlockstore::new(
            MemBlockstore::default(),
            CacheConfig::default().with_verified_reads(false),
        );
        let (a, b) = (block(1, 100), block(2, 100));
        store.inner().put_many(vec![a.clone()]).expect("put inner");
        store.get(a.cid()).expect("get");
        store.get(a.cid()).expect("get");
        assert_eq!(
            store.cache_stats().map(|s| (s.hits, s.inserts)),
            Some((0, 0))
        );
        store.put_many(vec![b.clone()]).expect("put");
        assert_eq!(store.get_cached(b.cid()).as_ref(), Some(b.data()));
        assert_eq!(store.get_cached(a.cid()), None);
        let s = store.cache_stats().expect("stats");
        assert_eq!((s.hits, s.misses), (1, 2), "get_cached counts no miss");
    }

    #[test]
    fn deletes_invalidate() {
        let store = CachedBlockstore::new(MemBlockstore::default(), CacheConfig::default());
        let b = block(1, 100);
        store.put_many(vec![b.clone()]).expect("put");
        assert!(store.get_cached(b.cid()).is_some());
        assert_eq!(store.delete_many(&[*b.cid()]).expect("delete"), 1);
        assert_eq!(store.get_cached(b.cid()), None);
        assert_eq!(store.get(b.cid()).expect("get"), None);
        assert_eq!(store.cache_stats().map(|s| s.removals), Some(1));
    }

    #[test]
    fn an_abandoned_batch_admits_nothing() {
        let store = CachedBlockstore::new(MemBlockstore::default(), CacheConfig::default());
        let b = block(1, 100);
        {
            let mut batch = store.begin().expect("begin");
            batch.put(b.clone()).expect("put");
        }
        assert_eq!(store.get_cached(b.cid()), None);
    }

    #[test]
    fn write_admission_keeps_the_end_of_a_large_batch() {
        let store = CachedBlockstore::new(
            MemBlockstore::default(),
            CacheConfig::default().with_write_admission(3000),
        );
        let blocks: Vec<Block> = (0..10).map(|i| block(i, 1000)).collect();
        store.put_many(blocks.clone()).expect("put");
        let cached: Vec<bool> = blocks
            .iter()
            .map(|b| store.get_cached(b.cid()).is_some())
            .collect();
        assert_eq!(cached.iter().filter(|c| **c).count(), 3);
        assert!(cached[7] && cached[8] && cached[9]);
    }

    #[test]
    fn off_when_the_capacity_is_zero() {
        let store = CachedBlockstore::new(
            MemBlockstore::default(),
            CacheConfig::default().with_capacity(0),
        );
        let b = block(1, 100);
        store.put_many(vec![b.clone()]).expect("put");
        assert_eq!(store.get(b.cid()).expect("get").as_ref(), Some(b.data()));
        assert!(store.cache_stats().is_none() && store.get_cached(b.cid()).is_none());
    }

    #[test]
    fn reads_racing_deletes_never_leave_a_deleted_block_cached() {
        let store = CachedBlockstore::new(
            MemBlockstore::default(),
            CacheConfig::default().with_write_admission(0),
        );
        let blocks: Vec<Block> = (0..64).map(|i| block(i, 64)).collect();
        for round in 0..50 {
            store.put_many(blocks.clone()).expect("put");
            std::thread::scope(|s| {
                s.spawn(|| {
                    for b in &blocks {
                        store.get(b.cid()).expect("get");
                    }
                });
                let cids: Vec<Cid> = blocks.iter().map(|b| *b.cid()).collect();
                store.delete_many(&cids).expect("delete");
            });
            for b in &blocks {
                assert_eq!(store.get_cached(b.cid()), None, "round {round}");
            }
        }
    }
}
