//! Bitswap 1.2.0 (`/ipfs/bitswap/1.2.0`, reading 1.1.0 and 1.0.0 too) as Kubo speaks it.
//!
//! - [`message`]: the wire `Message` and its codec; decoded blocks are verified (their CIDs are
//!   computed from their bytes).
//! - [`Behaviour`] and [`Handler`] (feature `swarm`, on by default): the libp2p side. The
//!   behaviour delivers messages as [`Event`]s and sends what its owner gives it.
//! - [`client::Client`] and [`server::Server`]: what to ask whom, and what to answer in which
//!   order, as I/O-free state machines. The owner (the node's network task) drives them and does
//!   the block-store reads, so the swarm never blocks on disk.
//!
//! The design, the wire schema and the strategies are in docs/bitswap.md.
//!
//! ```
//! use ipfs_kit_bitswap::client::{Client, ClientConfig};
//! use ipfs_kit_bitswap::message::WantType;
//! use ipfs_kit_block::{codec, Block, HashAlg};
//! use libp2p_identity::PeerId;
//! use std::time::Instant;
//!
//! let mut client = Client::new(ClientConfig::default());
//! let peer = PeerId::random();
//! client.peer_connected(peer, Instant::now());
//! let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, &b"hello"[..]);
//! client.want(*block.cid(), Instant::now()).unwrap();
//! let out = client.take_outbox();
//! assert_eq!(out[0].1.wantlist[0].want_type, WantType::Block);
//! ```

pub mod client;
pub mod message;
pub mod server;

#[cfg(feature = "swarm")]
mod behaviour;
#[cfg(feature = "swarm")]
mod handler;
#[cfg(feature = "swarm")]
pub mod protocol;

#[cfg(feature = "swarm")]
pub use behaviour::{Behaviour, Event};
#[cfg(feature = "swarm")]
pub use handler::Handler;
pub use message::{Message, Presence, WantEntry, WantType};

/// Errors of bitswap.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message that is not valid bitswap protobuf.
    #[error("malformed bitswap message: {0}")]
    Decode(&'static str),
    /// A block whose CID prefix names a hash function we do not support.
    #[error("block uses unsupported hash function 0x{0:x}")]
    UnsupportedHash(u64),
    /// The wantlist is full.
    #[error("too many blocks wanted at once (limit {0})")]
    TooManyWants(usize),
}

/// Counters since start, as `bitswap stat` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages received.
    pub messages_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Blocks received (wanted or not).
    pub blocks_received: u64,
    /// Block bytes received.
    pub data_received: u64,
    /// Blocks sent.
    pub blocks_sent: u64,
    /// Block bytes sent.
    pub data_sent: u64,
    /// Blocks received that we already had or no longer wanted.
    pub dup_blocks_received: u64,
    /// Their bytes.
    pub dup_data_received: u64,
}
