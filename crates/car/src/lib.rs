//! CAR (content addressable archive) files for ipfs-kit: CARv1 reading and writing, CARv2 reading.
//!
//! A CARv1 is a length-prefixed dag-cbor header (`{"roots": [cid...], "version": 1}`) followed by
//! sections, each `varint(len) | cid bytes | block bytes`. A CARv2 wraps a CARv1 payload between a
//! fixed 11-byte pragma plus a 40-byte header and an optional index; [`CarReader`] reads both,
//! streaming from any [`Read`](std::io::Read) (a pipe or stdin works: it never seeks), and ignores
//! a CARv2 index. [`CarWriter`] writes CARv1.
//!
//! The reader treats its input as hostile: every length is bounded ([`ReaderConfig`]), a cut-short
//! input gives [`Error::Truncated`], and [`CarReader::next_block`] only hands out blocks whose bytes
//! hash to their CID.
//!
//! ```
//! use ipfs_kit_block::{codec, Block, HashAlg};
//! use ipfs_kit_car::{CarReader, CarWriter};
//!
//! let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"hello".to_vec());
//! let mut writer = CarWriter::new(Vec::new(), &[*block.cid()])?;
//! writer.write_block(&block)?;
//! let car: Vec<u8> = writer.finish()?;
//!
//! let mut reader = CarReader::new(&car[..])?;
//! assert_eq!(reader.version(), 1);
//! assert_eq!(reader.roots(), &[*block.cid()]);
//! assert_eq!(reader.next_block()?, Some(block));
//! assert_eq!(reader.next_block()?, None);
//! # Ok::<(), ipfs_kit_car::Error>(())
//! ```

// Tests may unwrap; the library build (which clippy also checks) may not.

mod header;
mod reader;
mod writer;

use ipfs_kit_block::Cid;

pub use header::{CarHeader, CarV2Header, CARV2_PRAGMA};
pub use reader::{
    CarReader, ReaderConfig, DEFAULT_MAX_BLOCK_LEN, DEFAULT_MAX_HEADER_LEN, MAX_CID_LEN,
};
pub use writer::CarWriter;

/// Errors of CAR reading and writing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input ends in the middle of the header or of a section (or, in a CARv2, before the
    /// declared end of the data payload).
    #[error("truncated car: {0}")]
    Truncated(String),
    /// A header that is not a CAR header: bad dag-cbor, missing or mistyped fields, an impossible
    /// CARv2 layout.
    #[error("invalid car header: {0}")]
    InvalidHeader(String),
    /// A section that cannot be split into a CID and block bytes.
    #[error("invalid car section: {0}")]
    InvalidSection(String),
    /// A block whose bytes do not hash to the CID it was stored under.
    #[error("block {0} does not match its cid")]
    HashMismatch(Cid),
    /// A block addressed with a hash function ipfs-kit cannot compute, so it cannot be verified.
    /// [`CarReader::next_raw`] reads such blocks without verifying them.
    #[error("cannot verify block {cid}: unsupported multihash code 0x{code:x}")]
    UnsupportedHash {
        /// The block's CID.
        cid: Cid,
        /// The multihash code.
        code: u64,
    },
    /// A CAR version other than 1 (or 2 for the outer header of a CARv2).
    #[error("unsupported car version {0}")]
    UnsupportedVersion(u64),
    /// A length prefix larger than the reader allows.
    #[error("{what} of {len} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What the length measures ("car header", "car section" or "block").
        what: &'static str,
        /// The length found.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The reader already failed on an earlier, unrecoverable error.
    #[error("car reader stopped after an earlier error")]
    Stopped,
    /// Reading or writing the underlying stream failed.
    #[error("car i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether a [`CarReader`] can go on after this error.
    ///
    /// True for errors about one block's content ([`Error::HashMismatch`],
    /// [`Error::UnsupportedHash`]): the section was read in full and the next call moves on to the
    /// next one. Any other error leaves the stream at an unknown position, so the reader stops.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, Error::HashMismatch(_) | Error::UnsupportedHash { .. })
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_without_period() {
        let cid = *ipfs_kit_block::Block::encode(
            ipfs_kit_block::codec::RAW,
            ipfs_kit_block::HashAlg::Sha2_256,
            1,
            b"x".to_vec(),
        )
        .cid();
        let errors = [
            Error::Truncated("section at offset 3 needs 9 bytes".into()),
            Error::InvalidHeader("x".into()),
            Error::InvalidSection("x".into()),
            Error::HashMismatch(cid),
            Error::UnsupportedHash { cid, code: 0x1b },
            Error::UnsupportedVersion(3),
            Error::TooLarge {
                what: "block",
                len: 9,
                limit: 8,
            },
            Error::Stopped,
            Error::Io(std::io::Error::other("boom")),
        ];
        for e in errors {
            let s = e.to_string();
            assert!(!s.ends_with('.'), "{s}");
            assert!(s.starts_with(|c: char| !c.is_uppercase()), "{s}");
        }
        assert!(Error::HashMismatch(cid)
            .to_string()
            .contains(&cid.to_string()));
        assert!(Error::HashMismatch(cid).is_recoverable());
        assert!(!Error::Stopped.is_recoverable());
    }
}
