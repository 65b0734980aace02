//! UnixFS for ipfs-kit: chunkers, DAG layouts, HAMT directories, import profiles, and readers.
//!
//! No I/O of its own: the importer reads from any [`std::io::Read`] and hands blocks to a
//! [`BlockSink`]; the readers fetch blocks from a [`BlockSource`]. With
//! [`ImportProfile::unixfs_v0_2015`] (the default) every CID is the one Kubo gives.
//!
//! ```
//! use ipfs_kit_unixfs::{Importer, ImportProfile};
//! let profile = ImportProfile::default();
//! let mut blocks = Vec::new();
//! let node = Importer::new(&profile, &mut blocks).file(&mut &b"hello world\n"[..]).unwrap();
//! assert_eq!(node.cid.to_string(), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
//! ```

pub mod chunker;
pub mod hamt;
pub mod importer;
pub mod pb;
pub mod profile;
pub mod reader;

use ipfs_kit_block::{Block, Bytes, Cid};

pub use chunker::ChunkerSpec;
pub use importer::{DirEntry, Importer, Node};
pub use profile::{DirShape, HamtEstimate, ImportProfile, Layout};
pub use reader::{FileReader, Kind, ListEntry, Stat};

/// Error a sink or source passes through the importer and readers untouched.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the importer puts the blocks it makes.
pub trait BlockSink {
    /// Stores one block. Called bottom-up: a block's children are always put before it.
    fn put(&mut self, block: Block) -> Result<(), BoxError>;
}

/// Collects blocks in memory (tests, small imports).
impl BlockSink for Vec<Block> {
    fn put(&mut self, block: Block) -> Result<(), BoxError> {
        self.push(block);
        Ok(())
    }
}

/// Discards blocks: for `--only-hash`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl BlockSink for NullSink {
    fn put(&mut self, _block: Block) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Where the readers get blocks from.
pub trait BlockSource {
    /// The bytes of the block named `cid`.
    fn get(&self, cid: &Cid) -> Result<Bytes, BoxError>;

    /// `cids` will be read next, in this order: a source with slow reads may start on them.
    /// A hint; does nothing by default.
    fn prefetch(&self, cids: &[Cid]) {
        let _ = cids;
    }
}

/// Errors of import and read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the input failed.
    #[error("read input: {0}")]
    Io(#[from] std::io::Error),
    /// A bad chunker string.
    #[error("invalid chunker {0}")]
    Chunker(String),
    /// Bad settings or a malformed DAG.
    #[error("{0}")]
    Invalid(String),
    /// The sink refused a block.
    #[error("store block: {0}")]
    Sink(#[source] BoxError),
    /// The source could not provide a block.
    #[error("{1}")]
    Source(Cid, #[source] BoxError),
    /// A path segment that does not exist.
    #[error("no link named {name:?} under {path}")]
    NoLink {
        /// The missing name.
        name: String,
        /// The path resolved so far.
        path: String,
    },
    /// A path that goes through something other than a directory.
    #[error("{0} is not a directory")]
    NotDirectory(Cid),
    /// A file read of a directory.
    #[error("this dag node is a directory: {0}")]
    IsDirectory(Cid),
    /// A file read of something that is not a file.
    #[error("{0} is not a unixfs file")]
    NotFile(Cid),
}
