//! The dag-pb codec, written to the letter of the IPLD dag-pb spec.
//!
//! Hand-written rather than generated: the format is two tiny messages, and the spec demands a
//! strictness generated protobuf decoders do not give (fields in canonical order, no unknown or
//! repeated fields, links before data). Encoding is byte-identical to Kubo's: links first (each
//! `Hash`, `Name`, `Tsize` in that order, each only when present), then `Data` when present.

use bytes::Bytes;
use cid::Cid;

use crate::Error;

/// One link of a dag-pb node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PbLink {
    /// The linked block.
    pub cid: Cid,
    /// The link name; Kubo writes an empty name for file chunks and always writes it.
    pub name: Option<String>,
    /// Cumulative size of the linked DAG (block bytes of the whole subgraph).
    pub tsize: Option<u64>,
}

/// A dag-pb node: links and an optional opaque data field (UnixFS puts its protobuf there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PbNode {
    /// Links, in stored order.
    pub links: Vec<PbLink>,
    /// The data field.
    pub data: Option<Bytes>,
}

/// Appends `v` as a protobuf varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes `v` takes as a varint.
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a varint from `buf` at `*pos`, advancing `*pos`.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, Error> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = *buf
            .get(*pos)
            .ok_or_else(|| Error::DagPb("truncated varint".into()))?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return Err(Error::DagPb("varint overflows 64 bits".into()));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::DagPb("varint too long".into()))
}

/// A protobuf field's value as [`for_each_field`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PbValue<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 2 (bytes, strings, embedded messages).
    Bytes(&'a [u8]),
}

/// Calls `f` with every varint and length-delimited field of the protobuf message `buf`, in
/// order, by proto3's reading rules: fixed-width fields are skipped, field number 0 and groups
/// (deprecated wire types 3 and 4) are refused. For the other protobuf messages IPFS speaks
/// (IPNS records, keys, libp2p's fetch protocol); dag-pb itself is read more strictly. `bad`
/// turns why the message is malformed into the caller's error.
pub fn for_each_field<'a, E>(
    buf: &'a [u8],
    bad: impl Fn(String) -> E,
    f: &mut dyn FnMut(u64, PbValue<'a>) -> Result<(), E>,
) -> Result<(), E> {
    let skip = |pos: usize, n: usize| pos.checked_add(n).filter(|end| *end <= buf.len());
    let mut pos = 0;
    while pos < buf.len() {
        let key = get_varint(buf, &mut pos).map_err(|e| bad(e.to_string()))?;
        let field = key >> 3;
        if field == 0 {
            return Err(bad("field number 0".into()));
        }
        match key & 7 {
            0 => {
                let v = get_varint(buf, &mut pos).map_err(|e| bad(e.to_string()))?;
                f(field, PbValue::Varint(v))?;
            }
            2 => {
                let len = get_varint(buf, &mut pos).map_err(|e| bad(e.to_string()))?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| skip(pos, l))
                    .ok_or_else(|| bad("truncated field".into()))?;
                f(field, PbValue::Bytes(&buf[pos..end]))?;
                pos = end;
            }
            1 => pos = skip(pos, 8).ok_or_else(|| bad("truncated field".into()))?,
            5 => pos = skip(pos, 4).ok_or_else(|| bad("truncated field".into()))?,
            w => return Err(bad(format!("unsupported wire type {w}"))),
        }
    }
    Ok(())
}

fn get_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], Error> {
    let len = get_varint(buf, pos)?;
    let len = usize::try_from(len).map_err(|_| Error::DagPb("length overflow".into()))?;
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= buf.len())
        .ok_or_else(|| Error::DagPb("truncated length-delimited field".into()))?;
    let bytes = &buf[*pos..end];
    *pos = end;
    Ok(bytes)
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl PbLink {
    fn encoded_len(&self) -> usize {
        let hash = self.cid.encoded_len();
        let mut n = 1 + varint_len(hash as u64) + hash;
        if let Some(name) = &self.name {
            n += 1 + varint_len(name.len() as u64) + name.len();
        }
        if let Some(t) = self.tsize {
            n += 1 + varint_len(t);
        }
        n
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        put_bytes(out, 1, &self.cid.to_bytes());
        if let Some(name) = &self.name {
            put_bytes(out, 2, name.as_bytes());
        }
        if let Some(t) = self.tsize {
            put_varint(out, 3 << 3);
            put_varint(out, t);
        }
    }

    fn decode(buf: &[u8]) -> Result<Self, Error> {
        let mut pos = 0;
        let mut last = 0;
        let mut cid = None;
        let mut name = None;
        let mut tsize = None;
        while pos < buf.len() {
            let key = get_varint(buf, &mut pos)?;
            let (field, wire) = (key >> 3, key & 7);
            if field <= last {
                return Err(Error::DagPb(format!(
                    "link field {field} out of order or repeated"
                )));
            }
            last = field;
            match (field, wire) {
                (1, 2) => {
                    let bytes = get_bytes(buf, &mut pos)?;
                    cid = Some(
                        Cid::try_from(bytes)
                            .map_err(|e| Error::DagPb(format!("bad link hash: {e}")))?,
                    );
                }
                (2, 2) => {
                    let bytes = get_bytes(buf, &mut pos)?;
                    name = Some(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| Error::DagPb("link name is not utf-8".into()))?,
                    );
                }
                (3, 0) => tsize = Some(get_varint(buf, &mut pos)?),
                _ => {
                    return Err(Error::DagPb(format!(
                        "unexpected link field {field} wire type {wire}"
                    )))
                }
            }
        }
        let cid = cid.ok_or_else(|| Error::DagPb("link without hash".into()))?;
        Ok(PbLink { cid, name, tsize })
    }
}

impl PbNode {
    /// Serialises the node in canonical form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for link in &self.links {
            put_varint(&mut out, (2 << 3) | 2);
            put_varint(&mut out, link.encoded_len() as u64);
            link.encode_into(&mut out);
        }
        if let Some(data) = &self.data {
            put_bytes(&mut out, 1, data);
        }
        out
    }

    /// Exact size of [`PbNode::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        let links: usize = self
            .links
            .iter()
            .map(|l| {
                let n = l.encoded_len();
                1 + varint_len(n as u64) + n
            })
            .sum();
        let data = self
            .data
            .as_ref()
            .map_or(0, |d| 1 + varint_len(d.len() as u64) + d.len());
        links + data
    }

    /// Decodes a dag-pb block strictly: only the two known fields, links before data, each link's
    /// fields in order, no duplicates.
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        Self::decode_with(buf, &|s| Bytes::copy_from_slice(s))
    }

    /// Like [`PbNode::decode`], with the data field sharing `buf`'s memory instead of a copy.
    pub fn decode_bytes(buf: &Bytes) -> Result<Self, Error> {
        Self::decode_with(buf, &|s| buf.slice_ref(s))
    }

    /// The links of a dag-pb block, validated as strictly as [`PbNode::decode`] but without
    /// copying the data field (a file leaf's whole content) that link walks never look at.
    pub fn decode_links(buf: &[u8]) -> Result<Vec<PbLink>, Error> {
        Ok(Self::decode_with(buf, &|_| Bytes::new())?.links)
    }

    fn decode_with(buf: &[u8], share: &dyn Fn(&[u8]) -> Bytes) -> Result<Self, Error> {
        let mut pos = 0;
        let mut node = PbNode::default();
        while pos < buf.len() {
            let key = get_varint(buf, &mut pos)?;
            match (key >> 3, key & 7) {
                (2, 2) => {
                    if node.data.is_some() {
                        return Err(Error::DagPb("links after data".into()));
                    }
                    node.links.push(PbLink::decode(get_bytes(buf, &mut pos)?)?);
                }
                (1, 2) => {
                    if node.data.is_some() {
                        return Err(Error::DagPb("repeated data field".into()));
                    }
                    node.data = Some(share(get_bytes(buf, &mut pos)?));
                }
                (field, wire) => {
                    return Err(Error::DagPb(format!(
                        "unexpected node field {field} wire type {wire}"
                    )))
                }
            }
        }
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cid_from(seed: u8) -> Cid {
        crate::Block::encode(crate::codec::RAW, crate::HashAlg::Sha2_256, 1, vec![seed])
            .cid()
            .to_owned()
    }

    proptest! {
        #[test]
        fn round_trip(
            links in proptest::collection::vec((any::<u8>(), proptest::option::of(".{0,8}"), proptest::option::of(any::<u64>())), 0..6),
            data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        ) {
            let node = PbNode {
                links: links.into_iter().map(|(s, name, tsize)| PbLink { cid: cid_from(s), name, tsize }).collect(),
                data: data.map(Bytes::from),
            };
            let enc = node.encode();
            prop_assert_eq!(enc.len(), node.encoded_len());
            prop_assert_eq!(PbNode::decode(&enc).unwrap(), node);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = PbNode::decode(&bytes);
        }
    }

    #[test]
    fn rejects_data_before_links() {
        let node = PbNode {
            links: vec![PbLink {
                cid: cid_from(1),
                name: None,
                tsize: None,
            }],
            data: Some(Bytes::from_static(b"x")),
        };
        let enc = node.encode();
        let link_len = enc.len() - 3;
        let mut swapped = enc[link_len..].to_vec();
        swapped.extend_from_slice(&enc[..link_len]);
        assert!(PbNode::decode(&swapped).is_err());
        assert!(PbNode::decode(&[0x18, 0x01]).is_err());
    }

    #[test]
    fn varint_len_matches() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            let mut out = vec![];
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos).unwrap(), v);
        }
    }
}
