//! The CARv1 header (dag-cbor) and the fixed-size CARv2 header.

use ipfs_kit_block::ipld::{self, Ipld};
use ipfs_kit_block::{codec, Cid};

use crate::{Error, Result};

/// The first 11 bytes of every CARv2: `varint(10)` then the dag-cbor map `{"version": 2}`.
///
/// It is a valid CARv1 header prefix, so CARv1-only readers reject a CARv2 as an unsupported
/// version instead of misreading it.
pub const CARV2_PRAGMA: [u8; 11] = [
    0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02,
];

/// The header of a CARv1 (also the header of the CARv1 payload inside a CARv2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarHeader {
    /// The format version; 1 for every header this crate accepts.
    pub version: u64,
    /// The root CIDs, in header order. May be empty: go-car v2 and js-car write such CARs.
    pub roots: Vec<Cid>,
}

impl CarHeader {
    /// A version 1 header with `roots`.
    pub fn new(roots: Vec<Cid>) -> Self {
        CarHeader { version: 1, roots }
    }

    /// The dag-cbor bytes of the header (without the length prefix).
    ///
    /// Encoded by hand in dag-cbor's canonical form (keys shortest first, so `roots` before
    /// `version`), which is what go-car and js-car write, so this cannot fail.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.roots.len() * 40);
        cbor_head(&mut out, 5, 2);
        cbor_text(&mut out, "roots");
        cbor_head(&mut out, 4, self.roots.len() as u64);
        for root in &self.roots {
            let bytes = root.to_bytes();
            // Tag 42 wraps a byte string of the multibase identity prefix 0x00 plus the CID.
            out.extend_from_slice(&[0xd8, 0x2a]);
            cbor_head(&mut out, 2, bytes.len() as u64 + 1);
            out.push(0x00);
            out.extend_from_slice(&bytes);
        }
        cbor_text(&mut out, "version");
        cbor_head(&mut out, 0, self.version);
        out
    }

    /// Parses the dag-cbor bytes of a CARv1 header.
    ///
    /// The version is checked before the roots, so a CARv2 pragma (which has no roots) reads as
    /// [`Error::UnsupportedVersion`]. Unknown extra keys are ignored, as go-car and js-car do.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let value = ipld::decode(codec::DAG_CBOR, bytes)
            .map_err(|e| Error::InvalidHeader(e.to_string()))?;
        let Ipld::Map(map) = value else {
            return Err(Error::InvalidHeader("the header is not a map".into()));
        };
        let version = match map.get("version") {
            Some(Ipld::Integer(v)) => {
                u64::try_from(*v).map_err(|_| Error::InvalidHeader(format!("version {v}")))?
            }
            Some(_) => return Err(Error::InvalidHeader("version is not an integer".into())),
            None => return Err(Error::InvalidHeader("missing version".into())),
        };
        if version != 1 {
            return Err(Error::UnsupportedVersion(version));
        }
        let roots = match map.get("roots") {
            Some(Ipld::List(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Ipld::Link(cid) => Ok(*cid),
                    _ => Err(Error::InvalidHeader(format!("roots[{i}] is not a cid"))),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(Error::InvalidHeader("roots is not a list".into())),
            None => return Err(Error::InvalidHeader("missing roots".into())),
        };
        Ok(CarHeader { version, roots })
    }
}

fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if n < 24 {
        out.push(major | n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend_from_slice(&[major | 24, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(major | 25);
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(major | 26);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn cbor_text(out: &mut Vec<u8>, s: &str) {
    cbor_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The 40 bytes that follow [`CARV2_PRAGMA`]. Offsets count from the first byte of the pragma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CarV2Header {
    /// The 128-bit characteristics bitfield, as stored.
    pub characteristics: [u8; 16],
    /// Where the CARv1 payload starts.
    pub data_offset: u64,
    /// How many bytes the CARv1 payload has.
    pub data_size: u64,
    /// Where the index starts, or 0 when there is none.
    pub index_offset: u64,
}

impl CarV2Header {
    /// The encoded size of the header.
    pub const LEN: usize = 40;

    /// Parses the 40 header bytes (all fields little-endian).
    pub fn decode(bytes: &[u8; Self::LEN]) -> Self {
        let mut characteristics = [0u8; 16];
        characteristics.copy_from_slice(&bytes[..16]);
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        CarV2Header {
            characteristics,
            data_offset: u64_at(16),
            data_size: u64_at(24),
            index_offset: u64_at(32),
        }
    }

    /// The 40 header bytes.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..16].copy_from_slice(&self.characteristics);
        out[16..24].copy_from_slice(&self.data_offset.to_le_bytes());
        out[24..32].copy_from_slice(&self.data_size.to_le_bytes());
        out[32..].copy_from_slice(&self.index_offset.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfs_kit_block::{Block, HashAlg};
    use std::collections::BTreeMap;

    fn cid(n: u8) -> Cid {
        *Block::encode(codec::RAW, HashAlg::Sha2_256, 1, vec![n]).cid()
    }

    #[test]
    fn encode_matches_the_generic_dag_cbor_encoder() {
        for roots in [vec![], vec![cid(1)], vec![cid(1), cid(2), cid(3)]] {
            let header = CarHeader::new(roots.clone());
            let mut map = BTreeMap::new();
            map.insert(
                "roots".to_string(),
                Ipld::List(roots.into_iter().map(Ipld::Link).collect()),
            );
            map.insert("version".to_string(), Ipld::Integer(1));
            let generic = ipld::encode(codec::DAG_CBOR, &Ipld::Map(map)).unwrap();
            assert_eq!(header.encode(), generic);
            assert_eq!(CarHeader::decode(&generic).unwrap(), header);
        }
    }

    #[test]
    fn many_roots_use_long_array_heads() {
        let roots: Vec<Cid> = (0..=255).map(cid).collect();
        let header = CarHeader::new(roots);
        assert_eq!(CarHeader::decode(&header.encode()).unwrap(), header);
    }

    #[test]
    fn pragma_decodes_as_version_two() {
        assert!(matches!(
            CarHeader::decode(&CARV2_PRAGMA[1..]),
            Err(Error::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn rejects_malformed_headers() {
        let enc = |pairs: Vec<(&str, Ipld)>| {
            let map = pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>();
            ipld::encode(codec::DAG_CBOR, &Ipld::Map(map)).unwrap()
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0xff], "invalid dag-cbor"),
            (vec![], "invalid dag-cbor"),
            (
                ipld::encode(codec::DAG_CBOR, &Ipld::Integer(1)).unwrap(),
                "not a map",
            ),
            (enc(vec![("roots", Ipld::List(vec![]))]), "missing version"),
            (
                enc(vec![
                    ("roots", Ipld::List(vec![])),
                    ("version", Ipld::String("1".into())),
                ]),
                "version is not an integer",
            ),
            (enc(vec![("version", Ipld::Integer(1))]), "missing roots"),
            (
                enc(vec![("roots", Ipld::Null), ("version", Ipld::Integer(1))]),
                "roots is not a list",
            ),
            (
                enc(vec![
                    (
                        "roots",
                        Ipld::List(vec![Ipld::Link(cid(1)), Ipld::Bytes(vec![1])]),
                    ),
                    ("version", Ipld::Integer(1)),
                ]),
                "roots[1] is not a cid",
            ),
        ];
        for (bytes, want) in cases {
            let err = CarHeader::decode(&bytes).unwrap_err();
            assert!(matches!(err, Error::InvalidHeader(_)), "{err}");
            assert!(err.to_string().contains(want), "{err} lacks {want}");
        }
        let v3 = enc(vec![
            ("roots", Ipld::List(vec![])),
            ("version", Ipld::Integer(3)),
        ]);
        assert!(matches!(
            CarHeader::decode(&v3),
            Err(Error::UnsupportedVersion(3))
        ));
        let mut trailing = CarHeader::new(vec![cid(1)]).encode();
        trailing.push(0);
        assert!(CarHeader::decode(&trailing).is_err());
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let mut map = BTreeMap::new();
        map.insert("roots".to_string(), Ipld::List(vec![Ipld::Link(cid(7))]));
        map.insert("version".to_string(), Ipld::Integer(1));
        map.insert("note".to_string(), Ipld::String("x".into()));
        let bytes = ipld::encode(codec::DAG_CBOR, &Ipld::Map(map)).unwrap();
        assert_eq!(CarHeader::decode(&bytes).unwrap().roots, vec![cid(7)]);
    }

    #[test]
    fn v2_header_round_trip() {
        let h = CarV2Header {
            characteristics: [0x80; 16],
            data_offset: 51,
            data_size: 0x0102_0304_0506_0708,
            index_offset: u64::MAX,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[16..24], &[51, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(CarV2Header::decode(&bytes), h);
    }
}
