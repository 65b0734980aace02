//! IPNS for ipfs-kit: keys, names and records, with no I/O.
//!
//! - [`Keypair`] / [`PublicKey`]: Ed25519 and RSA keys in libp2p's `PrivateKey` / `PublicKey`
//!   protobuf encodings (what Kubo's keystore files and `key export` hold), plus PKCS#8 PEM.
//! - [`PeerId`] and [`Name`]: the multihash of a public key, printed as a base58 peer ID
//!   (`12D3KooW...` for Ed25519, `Qm...` for RSA) or as an IPNS name (CIDv1, codec libp2p-key,
//!   base36: `k51...`, `k2k4r8...`).
//! - [`Record`]: the IPNS record (`IpnsEntry` protobuf) with the V2 signature over
//!   `"ipns-signature:" + dag-cbor data`, optionally with the V1 fields Kubo still writes
//!   (`--v1compat`), and the public key when the name does not inline it (RSA);
//!   [`Record::verify`] applies the spec's checks.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use ipfs_kit_ipns::{Keypair, Record, RecordOptions};
//! let key = Keypair::generate().unwrap();
//! let name = key.public().peer_id().to_name();
//! let now = SystemTime::now();
//! let record = Record::create(&key, b"/ipfs/bafkqaaa", &RecordOptions {
//!     sequence: 1,
//!     validity: now + Duration::from_secs(3600),
//!     ttl: Duration::from_secs(300),
//!     v1_compat: true,
//! }).unwrap();
//! let parsed = Record::decode(&record.encode()).unwrap();
//! parsed.verify(&name, now).unwrap();
//! assert_eq!(parsed.value(), b"/ipfs/bafkqaaa");
//! assert!(name.to_string().starts_with("k51"));
//! ```

mod keys;
mod pb;
mod record;
mod time;
pub mod validator;

pub use keys::{
    KeyType, Keypair, Name, PeerId, PublicKey, KEY_TYPE_ED25519, KEY_TYPE_RSA, LIBP2P_KEY,
    RSA_DEFAULT_BITS, RSA_MAX_BITS, RSA_MIN_BITS,
};
pub use record::{Record, RecordOptions, MAX_RECORD_SIZE};
pub use time::{format_rfc3339, parse_go_duration, parse_rfc3339};

/// Errors of keys, names and records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bytes that are not a valid key encoding.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A key type ipfs-kit cannot use (only Ed25519 and RSA keys sign and verify here).
    #[error("unsupported key type {0} (only ed25519 and rsa are supported)")]
    UnsupportedKeyType(u64),
    /// A key type name `key gen` does not know (Kubo's words).
    #[error("unrecognized key type: {0}")]
    UnrecognizedKeyType(String),
    /// An RSA key under 2048 bits, generated or read (go-libp2p's words).
    #[error("rsa keys must be >= 2048 bits to be useful")]
    RsaKeyTooSmall,
    /// An RSA key over 8192 bits, generated or read (go-libp2p's words).
    #[error("rsa keys must be <= 8192 bits")]
    RsaKeyTooBig,
    /// A string that is not a peer ID or IPNS name.
    #[error("invalid IPNS name {0:?}: {1}")]
    InvalidName(String, String),
    /// Bytes that are not an IPNS record.
    #[error("invalid IPNS record: {0}")]
    InvalidRecord(String),
    /// A record larger than [`MAX_RECORD_SIZE`].
    #[error("IPNS record is {0} bytes, over the 10 KiB limit")]
    RecordTooLarge(usize),
    /// A record whose V2 signature does not verify.
    #[error("IPNS record signature is invalid")]
    BadSignature,
    /// A record whose validity has passed.
    #[error("IPNS record has expired (valid until {0})")]
    Expired(String),
    /// A record signed by a key other than the name's.
    #[error("IPNS record's public key does not match the name {0}")]
    WrongKey(String),
    /// A timestamp that is not RFC 3339.
    #[error("invalid RFC 3339 time {0:?}")]
    InvalidTime(String),
    /// A duration that is not in Go's syntax.
    #[error("time: invalid duration {0:?}")]
    InvalidDuration(String),
    /// The OS random source failed.
    #[error("random source: {0}")]
    Random(String),
}
