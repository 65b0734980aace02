//! Content addressing for ipfs-kit: CIDs, verified [`Block`]s and the IPLD codecs.
//!
//! Everything here is pure: no I/O, no runtime. A [`Block`] can only be built from bytes that hash
//! to its CID (or by hashing the bytes), so code that holds a `Block` never has to wonder whether
//! the bytes are the ones the CID names.
//!
//! ```
//! use ipfs_kit_block::{Block, HashAlg, codec};
//! let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"hello".to_vec());
//! let again = Block::new(*block.cid(), block.data().clone()).unwrap();
//! assert_eq!(block, again);
//! ```

pub mod dagpb;
mod error;
pub mod ipld;

pub use bytes::Bytes;
pub use cid::Cid;
pub use error::Error;
pub use multihash::Multihash;

/// Multicodec codes of the IPLD codecs ipfs-kit reads and writes.
pub mod codec {
    /// Raw bytes.
    pub const RAW: u64 = 0x55;
    /// MerkleDAG protobuf, the codec of UnixFS nodes.
    pub const DAG_PB: u64 = 0x70;
    /// Deterministic CBOR with CID links (tag 42).
    pub const DAG_CBOR: u64 = 0x71;
    /// Deterministic JSON with `{"/": ...}` links.
    pub const DAG_JSON: u64 = 0x0129;
    /// Plain JSON (read as dag-json, written as JSON).
    pub const JSON: u64 = 0x0200;
    /// Plain CBOR.
    pub const CBOR: u64 = 0x51;

    /// The multicodec name of `code`, as Kubo prints it.
    pub fn name(code: u64) -> Option<&'static str> {
        Some(match code {
            RAW => "raw",
            DAG_PB => "dag-pb",
            DAG_CBOR => "dag-cbor",
            DAG_JSON => "dag-json",
            JSON => "json",
            CBOR => "cbor",
            _ => return None,
        })
    }

    /// The code of a codec named as Kubo's `--input-codec` / `--store-codec` / `--format` name it.
    pub fn from_name(name: &str) -> Option<u64> {
        Some(match name {
            "raw" => RAW,
            "dag-pb" | "protobuf" | "v0" => DAG_PB,
            "dag-cbor" | "cbor-ipld" => DAG_CBOR,
            "dag-json" => DAG_JSON,
            "json" => JSON,
            "cbor" => CBOR,
            _ => return None,
        })
    }
}

/// Multihash code of the identity "hash" (the digest is the data itself).
pub const IDENTITY: u64 = 0x00;
/// Multihash code of SHA2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of SHA2-512.
pub const SHA2_512: u64 = 0x13;
/// Multihash code of BLAKE3 (32-byte digests).
pub const BLAKE3: u64 = 0x1e;
/// Multihash code of BLAKE2b-256 (Filecoin's hash; read and verified, and accepted by `--hash`).
pub const BLAKE2B_256: u64 = 0xb220;

/// Hash functions ipfs-kit can address content with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum HashAlg {
    /// SHA2-256, Kubo's default.
    #[default]
    Sha2_256,
    /// BLAKE3 with a 32-byte digest.
    Blake3,
    /// BLAKE2b with a 32-byte digest.
    Blake2b256,
    /// SHA2-512 (64-byte digests), which Kubo accepts for `--hash`.
    Sha2_512,
}

impl HashAlg {
    /// The multihash code.
    pub fn code(self) -> u64 {
        match self {
            HashAlg::Sha2_256 => SHA2_256,
            HashAlg::Blake3 => BLAKE3,
            HashAlg::Blake2b256 => BLAKE2B_256,
            HashAlg::Sha2_512 => SHA2_512,
        }
    }

    /// The name Kubo uses on the command line (`--hash`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha2_256 => "sha2-256",
            HashAlg::Blake3 => "blake3",
            HashAlg::Blake2b256 => "blake2b-256",
            HashAlg::Sha2_512 => "sha2-512",
        }
    }

    /// Parses a `--hash` name.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "sha2-256" => Ok(HashAlg::Sha2_256),
            "blake3" => Ok(HashAlg::Blake3),
            "blake2b-256" => Ok(HashAlg::Blake2b256),
            "sha2-512" => Ok(HashAlg::Sha2_512),
            other => Err(Error::UnsupportedHashName(other.to_string())),
        }
    }

    /// The algorithm of a multihash code, if ipfs-kit can compute it.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            SHA2_256 => Some(HashAlg::Sha2_256),
            BLAKE3 => Some(HashAlg::Blake3),
            BLAKE2B_256 => Some(HashAlg::Blake2b256),
            SHA2_512 => Some(HashAlg::Sha2_512),
            _ => None,
        }
    }

    /// Hashes `data` into a multihash.
    pub fn digest(self, data: &[u8]) -> Multihash<64> {
        use sha2::Digest as _;
        let wrap = |code, digest: &[u8]| {
            // Every digest here is at most 64 bytes, which the multihash holds.
            Multihash::wrap(code, digest).unwrap_or_default()
        };
        match self {
            HashAlg::Sha2_256 => wrap(SHA2_256, &sha2::Sha256::digest(data)),
            HashAlg::Sha2_512 => wrap(SHA2_512, &sha2::Sha512::digest(data)),
            HashAlg::Blake3 => wrap(BLAKE3, blake3::hash(data).as_bytes()),
            HashAlg::Blake2b256 => wrap(
                BLAKE2B_256,
                &blake2::Blake2b::<blake2::digest::consts::U32>::digest(data),
            ),
        }
    }
}

/// Recomputes the multihash of `data` with the function `expected` names and tells whether they
/// agree. Identity multihashes compare the data itself.
pub fn verify_multihash(expected: &Multihash<64>, data: &[u8]) -> Result<(), Error> {
    if expected.code() == IDENTITY {
        return if expected.digest() == data {
            Ok(())
        } else {
            Err(Error::HashMismatch)
        };
    }
    let alg = HashAlg::from_code(expected.code()).ok_or(Error::UnsupportedHash(expected.code()))?;
    // Truncated digests are not something any implementation writes; refuse them.
    let full = if alg == HashAlg::Sha2_512 { 64 } else { 32 };
    if usize::from(expected.size()) != full {
        return Err(Error::UnsupportedHash(expected.code()));
    }
    if alg.digest(data).digest() == expected.digest() {
        Ok(())
    } else {
        Err(Error::HashMismatch)
    }
}

/// Builds a CID of `version` (0 or 1). A CIDv0 must be dag-pb and sha2-256; asking for one
/// otherwise gives the CIDv1 Kubo would give.
pub fn make_cid(version: u8, codec: u64, mh: Multihash<64>) -> Cid {
    if version == 0 && codec == codec::DAG_PB && mh.code() == SHA2_256 {
        if let Ok(cid) = Cid::new_v0(mh) {
            return cid;
        }
    }
    Cid::new_v1(codec, mh)
}

/// Parses a CID string (CIDv0 base58 or multibase CIDv1) with a clear error.
pub fn parse_cid(s: &str) -> Result<Cid, Error> {
    let s = s.trim();
    Cid::try_from(s).map_err(|e| Error::InvalidCid(s.to_string(), e.to_string()))
}

/// A block: bytes together with the CID that names them, verified on construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    cid: Cid,
    data: Bytes,
}

impl Block {
    /// Wraps `data` named by `cid`, checking that the bytes hash to the CID.
    pub fn new(cid: Cid, data: impl Into<Bytes>) -> Result<Self, Error> {
        let data = data.into();
        verify_multihash(cid.hash(), &data)?;
        Ok(Block { cid, data })
    }

    /// Wraps bytes whose CID the caller has just computed from them (no re-hash).
    ///
    /// Only for code that produced `cid` from exactly these bytes, such as an encoder or a store
    /// that verified them on the way in.
    pub fn new_unchecked(cid: Cid, data: impl Into<Bytes>) -> Self {
        Block {
            cid,
            data: data.into(),
        }
    }

    /// Hashes `data` and names it with a CID of `version`, `codec` and `hash`.
    pub fn encode(codec: u64, hash: HashAlg, version: u8, data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let cid = make_cid(version, codec, hash.digest(&data));
        Block { cid, data }
    }

    /// The CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Splits the block into its CID and bytes.
    pub fn into_parts(self) -> (Cid, Bytes) {
        (self.cid, self.data)
    }

    /// The CIDs this block links to, in the order the codec stores them.
    pub fn links(&self) -> Result<Vec<Cid>, Error> {
        ipld::links(self.cid.codec(), &self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha2_512_digests_are_whole() {
        // SHA-512 of the empty string starts cf83e135 and ends 3e; the multihash keeps all 64 bytes.
        let mh = HashAlg::Sha2_512.digest(b"");
        assert_eq!((mh.code(), mh.digest().len()), (SHA2_512, 64));
        assert_eq!(&mh.digest()[..4], &[0xcf, 0x83, 0xe1, 0x35]);
        assert_eq!(mh.digest()[63], 0x3e);
        assert_eq!(HashAlg::from_name("sha2-512").unwrap(), HashAlg::Sha2_512);
        assert!(verify_multihash(&mh, b"").is_ok());
    }

    #[test]
    fn hello_world_cids_match_kubo() {
        let pb = dagpb::PbNode {
            links: vec![],
            data: Some(Bytes::from_static(&[
                0x08, 0x02, 0x12, 0x0c, b'h', b'e', b'l', b'l', b'o', b' ', b'w', b'o', b'r', b'l',
                b'd', b'\n', 0x18, 0x0c,
            ])),
        };
        let block = Block::encode(codec::DAG_PB, HashAlg::Sha2_256, 0, pb.encode());
        assert_eq!(
            block.cid().to_string(),
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
        );
        let raw = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, Vec::new());
        assert_eq!(
            raw.cid().to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn new_rejects_wrong_bytes() {
        let block = Block::encode(codec::RAW, HashAlg::Blake3, 1, b"abc".to_vec());
        assert!(Block::new(*block.cid(), b"abd".to_vec()).is_err());
        assert!(Block::new(*block.cid(), b"abc".to_vec()).is_ok());
    }

    #[test]
    fn v0_falls_back_to_v1_for_raw() {
        let b = Block::encode(codec::RAW, HashAlg::Sha2_256, 0, b"x".to_vec());
        assert_eq!(b.cid().version(), cid::Version::V1);
    }

    #[test]
    fn parse_cid_reports_input() {
        let err = parse_cid("notacid").unwrap_err().to_string();
        assert!(err.contains("notacid"), "{err}");
    }
}
