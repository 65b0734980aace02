//! Tiered block storage for ipfs-kit. Today: the memory tier and the object storage tier.
//!
//! - [`arc`]: ARC (Megiddo and Modha's Adaptive Replacement Cache), sized in bytes, as a
//!   single-threaded core and a sharded cache for concurrent use, with hit, miss and eviction
//!   counters. Pure: no I/O, no runtime.
//! - [`CachedBlockstore`]: a [`Blockstore`](ipfs_kit_blockstore::Blockstore) with an ARC cache
//!   of verified blocks in front of another, so hot blocks are served without I/O or
//!   re-hashing; deletes through it invalidate.
//! - [`ObjectBlockstore`]: blocks in an S3-compatible bucket (`object_store`), every read
//!   re-verified; the layout is in `docs/tiered.md`.
//! - [`TieredBlockstore`]: the local store with colder tiers behind it (reads fall through,
//!   writes stay local) and verified, crash-safe moves between them.
//! - [`heat`]: how hot each block is (exponentially decayed access counts), which decides
//!   promotion to the local tier.
//! - [`sim`]: LRU and 2Q, synthetic traces and a replay driver, to measure ARC against them.
//!
//! See `docs/tiered.md` for the design and `docs/benchmarks.md` for the figures.
//!
//! ```
//! use ipfs_kit_block::{codec, Block, HashAlg};
//! use ipfs_kit_blockstore::{Blockstore, MemBlockstore};
//! use ipfs_kit_tiered::{CacheConfig, CachedBlockstore};
//! let store = CachedBlockstore::new(MemBlockstore::default(), CacheConfig::default());
//! let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"hot".to_vec());
//! store.put_many(vec![block.clone()]).unwrap();
//! assert_eq!(store.get(block.cid()).unwrap().as_deref(), Some(&b"hot"[..]));
//! assert_eq!(store.cache_stats().unwrap().hits, 1);
//! ```

pub mod arc;
mod cache;
pub mod counters;
pub mod heat;
mod lists;
pub mod moto;
mod object;
pub mod sim;
mod tiers;

pub use cache::{BlockCache, CacheConfig, CachedBlockstore};
pub use object::{key_of, ObjectBlockstore, ObjectConfig, MAX_BATCH_BYTES};
pub use tiers::{Moved, Progress, TieredBlockstore, Unavailable, LOCAL};
