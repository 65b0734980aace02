//! IPLD data model conversions: decode any supported block into [`Ipld`], encode [`Ipld`] into any
//! supported codec, and list the links of a block without caring which codec it uses.

use std::collections::BTreeMap;

use bytes::Bytes;
use cid::Cid;
pub use ipld_core::ipld::Ipld;

use crate::dagpb::{PbLink, PbNode};
use crate::{codec, Error};

/// Decodes block bytes of `codec` into the IPLD data model.
///
/// dag-pb maps to its spec's data model form: `{"Data": bytes?, "Links": [{"Hash", "Name"?, "Tsize"?}]}`.
pub fn decode(codec: u64, data: &[u8]) -> Result<Ipld, Error> {
    match codec {
        codec::RAW => Ok(Ipld::Bytes(data.to_vec())),
        codec::DAG_PB => Ok(pb_to_ipld(&PbNode::decode(data)?)),
        codec::DAG_CBOR | codec::CBOR => {
            serde_ipld_dagcbor::from_slice(data).map_err(|e| Error::DagCbor(e.to_string()))
        }
        codec::DAG_JSON | codec::JSON => {
            serde_ipld_dagjson::from_slice(data).map_err(|e| Error::DagJson(e.to_string()))
        }
        other => Err(Error::UnsupportedCodec(other)),
    }
}

/// Encodes an IPLD value with `codec`.
pub fn encode(codec: u64, value: &Ipld) -> Result<Vec<u8>, Error> {
    match codec {
        codec::RAW => match value {
            Ipld::Bytes(b) => Ok(b.clone()),
            _ => Err(Error::Encode {
                codec: "raw",
                reason: "only bytes can be stored raw".into(),
            }),
        },
        codec::DAG_PB => Ok(ipld_to_pb(value)?.encode()),
        codec::DAG_CBOR => serde_ipld_dagcbor::to_vec(value).map_err(|e| Error::Encode {
            codec: "dag-cbor",
            reason: e.to_string(),
        }),
        codec::DAG_JSON => serde_ipld_dagjson::to_vec(value).map_err(|e| Error::Encode {
            codec: "dag-json",
            reason: e.to_string(),
        }),
        other => Err(Error::UnsupportedCodec(other)),
    }
}

/// Transcodes block bytes from one codec to another through the data model.
pub fn transcode(from: u64, to: u64, data: &[u8]) -> Result<Vec<u8>, Error> {
    // Always through the data model, so non-canonical input is normalised as Kubo's `dag put` does.
    encode(to, &decode(from, data)?)
}

/// The CIDs a block links to, in codec order (dag-pb link order, or a depth-first walk).
pub fn links(codec: u64, data: &[u8]) -> Result<Vec<Cid>, Error> {
    match codec {
        codec::RAW => Ok(Vec::new()),
        codec::DAG_PB => Ok(PbNode::decode_links(data)?
            .into_iter()
            .map(|l| l.cid)
            .collect()),
        codec::DAG_CBOR => {
            // A scan of the CBOR structure, not a full decode: GC and pinning must follow the
            // links of blocks other tools wrote, such as Filecoin's, whose strings are not
            // always valid UTF-8 (which a strict data-model decode rightly refuses).
            let mut out = Vec::new();
            let mut pos = 0;
            cbor_scan(data, &mut pos, 0, &mut out)?;
            if pos != data.len() {
                return Err(Error::DagCbor(
                    "trailing bytes after the top-level item".into(),
                ));
            }
            Ok(out)
        }
        _ => {
            let mut out = Vec::new();
            collect_links(&decode(codec, data)?, &mut out);
            Ok(out)
        }
    }
}

/// Deeper nesting than this is refused rather than risking the stack on hostile input.
const CBOR_MAX_DEPTH: usize = 256;

fn cbor_err(why: &str) -> Error {
    Error::DagCbor(why.to_string())
}

fn cbor_byte(d: &[u8], pos: &mut usize) -> Result<u8, Error> {
    let b = *d.get(*pos).ok_or_else(|| cbor_err("truncated"))?;
    *pos += 1;
    Ok(b)
}

/// Reads the argument of an item head whose additional information is `info`.
fn cbor_arg(d: &[u8], pos: &mut usize, info: u8) -> Result<u64, Error> {
    let n = match info {
        0..=23 => return Ok(u64::from(info)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => {
            return Err(cbor_err(
                "indefinite lengths and reserved values are not dag-cbor",
            ))
        }
    };
    let mut v = 0u64;
    for _ in 0..n {
        v = (v << 8) | u64::from(cbor_byte(d, pos)?);
    }
    Ok(v)
}

fn cbor_take<'a>(d: &'a [u8], pos: &mut usize, len: u64) -> Result<&'a [u8], Error> {
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .filter(|e| *e <= d.len())
        .ok_or_else(|| cbor_err("truncated"))?;
    let s = &d[*pos..end];
    *pos = end;
    Ok(s)
}

/// Skips one CBOR item, collecting the CIDs of tag-42 links inside it.
fn cbor_scan(d: &[u8], pos: &mut usize, depth: usize, out: &mut Vec<Cid>) -> Result<(), Error> {
    if depth > CBOR_MAX_DEPTH {
        return Err(cbor_err("nested too deeply"));
    }
    let head = cbor_byte(d, pos)?;
    let (major, info) = (head >> 5, head & 0x1f);
    let arg = cbor_arg(d, pos, info)?;
    match major {
        0 | 1 | 7 => Ok(()),
        2 | 3 => cbor_take(d, pos, arg).map(|_| ()),
        4 | 5 => {
            let items = if major == 5 {
                arg.checked_mul(2)
            } else {
                Some(arg)
            }
            .ok_or_else(|| cbor_err("length overflow"))?;
            for _ in 0..items {
                cbor_scan(d, pos, depth + 1, out)?;
            }
            Ok(())
        }
        _ if arg == 42 => {
            let head = cbor_byte(d, pos)?;
            if head >> 5 != 2 {
                return Err(cbor_err("tag 42 must wrap a byte string"));
            }
            let len = cbor_arg(d, pos, head & 0x1f)?;
            let bytes = cbor_take(d, pos, len)?;
            match bytes.split_first() {
                Some((0, cid)) => {
                    out.push(Cid::try_from(cid).map_err(|e| cbor_err(&format!("bad link: {e}")))?);
                    Ok(())
                }
                _ => Err(cbor_err(
                    "a link must start with the identity multibase prefix 0x00",
                )),
            }
        }
        _ => cbor_scan(d, pos, depth + 1, out),
    }
}

fn collect_links(value: &Ipld, out: &mut Vec<Cid>) {
    match value {
        Ipld::Link(cid) => out.push(*cid),
        Ipld::List(items) => items.iter().for_each(|v| collect_links(v, out)),
        Ipld::Map(map) => map.values().for_each(|v| collect_links(v, out)),
        _ => {}
    }
}

/// The data model form of a dag-pb node.
pub fn pb_to_ipld(node: &PbNode) -> Ipld {
    let mut map = BTreeMap::new();
    if let Some(data) = &node.data {
        map.insert("Data".to_string(), Ipld::Bytes(data.to_vec()));
    }
    let links = node
        .links
        .iter()
        .map(|l| {
            let mut m = BTreeMap::new();
            m.insert("Hash".to_string(), Ipld::Link(l.cid));
            if let Some(name) = &l.name {
                m.insert("Name".to_string(), Ipld::String(name.clone()));
            }
            if let Some(t) = l.tsize {
                m.insert("Tsize".to_string(), Ipld::Integer(i128::from(t)));
            }
            Ipld::Map(m)
        })
        .collect();
    map.insert("Links".to_string(), Ipld::List(links));
    Ipld::Map(map)
}

fn pb_err(reason: &str) -> Error {
    Error::Encode {
        codec: "dag-pb",
        reason: reason.to_string(),
    }
}

/// Builds a dag-pb node from its data model form, rejecting anything the spec does not allow.
pub fn ipld_to_pb(value: &Ipld) -> Result<PbNode, Error> {
    let Ipld::Map(map) = value else {
        return Err(pb_err("a dag-pb node must be a map"));
    };
    if let Some(key) = map.keys().find(|k| *k != "Data" && *k != "Links") {
        return Err(pb_err(&format!("unexpected field {key:?}")));
    }
    let data = match map.get("Data") {
        None => None,
        Some(Ipld::Bytes(b)) => Some(Bytes::from(b.clone())),
        Some(_) => return Err(pb_err("Data must be bytes")),
    };
    let links = match map.get("Links") {
        None => Vec::new(),
        Some(Ipld::List(items)) => items.iter().map(ipld_to_link).collect::<Result<_, _>>()?,
        Some(_) => return Err(pb_err("Links must be a list")),
    };
    Ok(PbNode { links, data })
}

fn ipld_to_link(value: &Ipld) -> Result<PbLink, Error> {
    let Ipld::Map(m) = value else {
        return Err(pb_err("a link must be a map"));
    };
    if let Some(key) = m
        .keys()
        .find(|k| !matches!(k.as_str(), "Hash" | "Name" | "Tsize"))
    {
        return Err(pb_err(&format!("unexpected link field {key:?}")));
    }
    let cid = match m.get("Hash") {
        Some(Ipld::Link(c)) => *c,
        _ => return Err(pb_err("link Hash must be a cid")),
    };
    let name = match m.get("Name") {
        None => None,
        Some(Ipld::String(s)) => Some(s.clone()),
        Some(_) => return Err(pb_err("link Name must be a string")),
    };
    let tsize = match m.get("Tsize") {
        None => None,
        Some(Ipld::Integer(i)) => {
            Some(u64::try_from(*i).map_err(|_| pb_err("link Tsize out of range"))?)
        }
        Some(_) => return Err(pb_err("link Tsize must be an integer")),
    };
    Ok(PbLink { cid, name, tsize })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_ipld() -> impl Strategy<Value = Ipld> {
        let leaf = prop_oneof![
            Just(Ipld::Null),
            any::<bool>().prop_map(Ipld::Bool),
            any::<i64>().prop_map(|i| Ipld::Integer(i128::from(i))),
            ".{0,12}".prop_map(Ipld::String),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(Ipld::Bytes),
            any::<u8>().prop_map(|b| Ipld::Link(
                *crate::Block::encode(codec::RAW, crate::HashAlg::Sha2_256, 1, vec![b]).cid()
            )),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Ipld::List),
                proptest::collection::btree_map("[a-z]{0,6}", inner, 0..4).prop_map(Ipld::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn cbor_and_json_round_trip(value in arb_ipld()) {
            for c in [codec::DAG_CBOR, codec::DAG_JSON] {
                let bytes = encode(c, &value).unwrap();
                prop_assert_eq!(&decode(c, &bytes).unwrap(), &value);
            }
        }
    }

    proptest! {
        /// The link scanner finds exactly the links a full decode finds, and never panics.
        #[test]
        fn cbor_scan_agrees_with_decode(value in arb_ipld()) {
            let bytes = encode(codec::DAG_CBOR, &value).unwrap();
            let mut expected = Vec::new();
            collect_links(&value, &mut expected);
            let mut got = links(codec::DAG_CBOR, &bytes).unwrap();
            expected.sort();
            got.sort();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn cbor_scan_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = links(codec::DAG_CBOR, &bytes);
        }
    }

    #[test]
    fn cbor_scan_tolerates_invalid_utf8_strings() {
        let cid = *crate::Block::encode(codec::RAW, crate::HashAlg::Sha2_256, 1, vec![9]).cid();
        let mut link = vec![0x00];
        link.extend_from_slice(&cid.to_bytes());
        // [ "\xff", 42(h'00 <cid>') ]
        let mut data = vec![0x82, 0x61, 0xff, 0xd8, 0x2a, 0x58, link.len() as u8];
        data.extend_from_slice(&link);
        assert!(decode(codec::DAG_CBOR, &data).is_err());
        assert_eq!(links(codec::DAG_CBOR, &data).unwrap(), vec![cid]);
        assert!(links(codec::DAG_CBOR, &data[..data.len() - 1]).is_err());
    }

    #[test]
    fn dag_pb_model_round_trip() {
        let cid = *crate::Block::encode(codec::RAW, crate::HashAlg::Sha2_256, 1, vec![1]).cid();
        let node = PbNode {
            links: vec![PbLink {
                cid,
                name: Some("a".into()),
                tsize: Some(3),
            }],
            data: Some(Bytes::from_static(b"\x08\x01")),
        };
        let model = pb_to_ipld(&node);
        assert_eq!(ipld_to_pb(&model).unwrap(), node);
        assert_eq!(links(codec::DAG_PB, &node.encode()).unwrap(), vec![cid]);
    }
}
