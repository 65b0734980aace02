/// Errors of the block crate: bad CIDs, bad hashes and undecodable blocks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A string that is not a CID.
    #[error("invalid cid {0:?}: {1}")]
    InvalidCid(String, String),
    /// A multihash function ipfs-kit cannot compute.
    #[error("unsupported multihash code 0x{0:x}")]
    UnsupportedHash(u64),
    /// A `--hash` name ipfs-kit does not know.
    #[error("unknown hash function {0:?} (supported: sha2-256, sha2-512, blake3, blake2b-256)")]
    UnsupportedHashName(String),
    /// A codec ipfs-kit cannot decode or encode.
    #[error("unsupported codec 0x{0:x}")]
    UnsupportedCodec(u64),
    /// Bytes that do not hash to the CID that names them.
    #[error("block data does not match its cid")]
    HashMismatch,
    /// A dag-pb block that breaks the dag-pb spec.
    #[error("invalid dag-pb: {0}")]
    DagPb(String),
    /// A dag-cbor block that does not decode.
    #[error("invalid dag-cbor: {0}")]
    DagCbor(String),
    /// A dag-json document that does not decode.
    #[error("invalid dag-json: {0}")]
    DagJson(String),
    /// Data that cannot be represented in the target codec.
    #[error("cannot encode as {codec}: {reason}")]
    Encode {
        /// The target codec's name.
        codec: &'static str,
        /// Why not.
        reason: String,
    },
}
