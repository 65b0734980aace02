//! Block storage for ipfs-kit.
//!
//! [`Blockstore`] is the one trait every store implements; [`conformance::run`] is the suite
//! every implementation must pass. Two implementations live here:
//! - [`FsBlockstore`]: the durable on-disk store: append-only segment files indexed in redb, with
//!   one group commit (one fdatasync plus one index commit) per write batch. See
//!   `docs/storage.md` for the layout, the invariants and what a crash can leave behind.
//! - [`MemBlockstore`]: everything in memory, for tests and ephemeral nodes.
//!
//! Blocks are keyed by multihash, as in Kubo: the same bytes stored under a CIDv0 and read under
//! a CIDv1 (or another codec) are the same block.
//!
//! ```
//! use ipfs_kit_block::{codec, Block, HashAlg};
//! use ipfs_kit_blockstore::{Blockstore, MemBlockstore};
//! let store = MemBlockstore::default();
//! let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"hi".to_vec());
//! store.put_many(vec![block.clone()]).unwrap();
//! assert_eq!(store.get(block.cid()).unwrap().as_deref(), Some(&b"hi"[..]));
//! ```

pub mod conformance;
mod fs;
mod mem;

use ipfs_kit_block::{Block, Bytes, Cid};

pub use fs::{FsBlockstore, FsConfig};
pub use mem::MemBlockstore;

/// Errors of block stores.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a store file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("block index: {0}")]
    Index(String),
    /// Another process has the store open.
    #[error("the block store at {0} is in use by another process")]
    Locked(String),
    /// Stored bytes no longer hash to their CID.
    #[error("block {0} is corrupt: its bytes do not match its hash")]
    Corrupt(Cid),
    /// A storage tier (object storage, a remote) failed or could not be reached.
    #[error("the {tier} tier: {message}")]
    Tier {
        /// The tier's name (`s3`).
        tier: String,
        /// What went wrong.
        message: String,
    },
    /// A write batch holds more than the store keeps before its commit.
    #[error("a write batch of this store holds at most {limit} bytes")]
    BatchFull {
        /// The limit.
        limit: usize,
    },
    /// A block larger than the store accepts.
    #[error("block of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The block size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Summary figures of a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Number of distinct blocks.
    pub blocks: u64,
    /// Bytes of block data held (live blocks only).
    pub block_bytes: u64,
    /// Bytes the store takes on its medium, garbage not yet reclaimed included.
    pub disk_bytes: u64,
}

/// A write batch: blocks put into it become visible, all together and durably, on
/// [`WriteBatch::commit`]; dropping it uncommitted discards them.
pub trait WriteBatch {
    /// Adds one block. Its bytes may be written out at once; they become readable only on commit.
    fn put(&mut self, block: Block) -> Result<(), Error>;
    /// Makes every block of the batch durable and visible (one group commit).
    fn commit(self: Box<Self>) -> Result<(), Error>;
}

/// A content-addressed block store.
///
/// Reads may run on any number of threads alongside one writing batch. Implementations must pass
/// [`conformance::run`].
pub trait Blockstore: Send + Sync {
    /// The bytes of the block with `cid`'s multihash, if stored.
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, Error>;
    /// Whether a block with `cid`'s multihash is stored.
    fn has(&self, cid: &Cid) -> Result<bool, Error>;
    /// The size of the stored block, if stored.
    fn size(&self, cid: &Cid) -> Result<Option<u64>, Error>;
    /// Starts a write batch. Batches are serialised: a second `begin` waits for the first to end.
    fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, Error>;
    /// Removes blocks; returns how many were present. Durable when it returns.
    fn delete_many(&self, cids: &[Cid]) -> Result<u64, Error>;
    /// Every stored block's CID (as it was first stored).
    fn list(&self) -> Result<Vec<Cid>, Error>;
    /// Summary figures.
    fn stats(&self) -> Result<StoreStats, Error>;

    /// Reads a block for bookkeeping (the walks of garbage collection and pin checks): like
    /// [`Blockstore::get`], but not an access, so a store that tracks heat or caches reads
    /// leaves both alone.
    fn peek(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        self.get(cid)
    }

    /// A read of `cid` was served by a cache in front of this store: a store that tracks how
    /// hot its blocks are counts it as an access. Does nothing by default.
    fn touch(&self, cid: &Cid) {
        let _ = cid;
    }

    /// `cids` are about to be read, in this order: a store with slow reads (object storage)
    /// may start fetching them now, so that the reads that follow find them. Only a hint:
    /// it fails silently and does nothing by default.
    fn prefetch(&self, cids: &[Cid]) {
        let _ = cids;
    }

    /// Puts blocks in one batch.
    fn put_many(&self, blocks: Vec<Block>) -> Result<(), Error> {
        let mut batch = self.begin()?;
        for b in blocks {
            batch.put(b)?;
        }
        batch.commit()
    }
}
