//! The UnixFS `Data` protobuf carried in the data field of dag-pb nodes.
//!
//! Fields are written in field-number order with proto2 semantics (only what is set), which is
//! what Kubo writes; `blocksizes` is written unpacked, as Kubo does, and read packed or unpacked.

use ipfs_kit_block::dagpb::{get_varint, put_varint};
use ipfs_kit_block::Bytes;

use crate::Error;

/// The UnixFS node types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    /// Raw bytes (legacy leaves).
    Raw = 0,
    /// A plain directory.
    Directory = 1,
    /// A file or a file chunk.
    File = 2,
    /// Metadata (unused).
    Metadata = 3,
    /// A symbolic link; the target is in `data`.
    Symlink = 4,
    /// A HAMT shard of a sharded directory.
    HamtShard = 5,
}

impl DataType {
    fn from_u64(v: u64) -> Result<Self, Error> {
        Ok(match v {
            0 => DataType::Raw,
            1 => DataType::Directory,
            2 => DataType::File,
            3 => DataType::Metadata,
            4 => DataType::Symlink,
            5 => DataType::HamtShard,
            other => return Err(Error::Invalid(format!("unknown unixfs type {other}"))),
        })
    }
}

/// A decoded UnixFS `Data` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    /// The node type.
    pub kind: DataType,
    /// File bytes, symlink target or HAMT bitfield.
    pub data: Option<Bytes>,
    /// Total file size of the subtree.
    pub filesize: Option<u64>,
    /// File sizes of each child, in link order.
    pub blocksizes: Vec<u64>,
    /// HAMT hash function (0x22 = murmur3-x64-64).
    pub hash_type: Option<u64>,
    /// HAMT fanout.
    pub fanout: Option<u64>,
    /// POSIX permission bits, when recorded.
    pub mode: Option<u32>,
    /// Modification time (seconds, nanoseconds), when recorded.
    pub mtime: Option<(i64, Option<u32>)>,
}

impl Data {
    /// A node of `kind` with nothing else set.
    pub fn new(kind: DataType) -> Self {
        Data {
            kind,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
            mode: None,
            mtime: None,
        }
    }

    /// Serialises the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.data.as_ref().map_or(0, |d| d.len()));
        put_varint(&mut out, 1 << 3);
        put_varint(&mut out, self.kind as u64);
        if let Some(d) = &self.data {
            put_varint(&mut out, (2 << 3) | 2);
            put_varint(&mut out, d.len() as u64);
            out.extend_from_slice(d);
        }
        if let Some(s) = self.filesize {
            put_varint(&mut out, 3 << 3);
            put_varint(&mut out, s);
        }
        for b in &self.blocksizes {
            put_varint(&mut out, 4 << 3);
            put_varint(&mut out, *b);
        }
        if let Some(h) = self.hash_type {
            put_varint(&mut out, 5 << 3);
            put_varint(&mut out, h);
        }
        if let Some(f) = self.fanout {
            put_varint(&mut out, 6 << 3);
            put_varint(&mut out, f);
        }
        if let Some(m) = self.mode {
            put_varint(&mut out, 7 << 3);
            put_varint(&mut out, u64::from(m));
        }
        if let Some((secs, nanos)) = self.mtime {
            let mut t = Vec::new();
            put_varint(&mut t, 1 << 3);
            put_varint(&mut t, secs as u64);
            if let Some(n) = nanos {
                put_varint(&mut t, (2 << 3) | 5);
                t.extend_from_slice(&n.to_le_bytes());
            }
            put_varint(&mut out, (8 << 3) | 2);
            put_varint(&mut out, t.len() as u64);
            out.extend_from_slice(&t);
        }
        out
    }

    /// Decodes a message, rejecting wire-type mismatches and a missing type.
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        Self::decode_with(buf, &|s| Bytes::copy_from_slice(s))
    }

    /// Like [`Data::decode`], with the data field sharing `buf`'s memory instead of a copy.
    pub fn decode_bytes(buf: &Bytes) -> Result<Self, Error> {
        Self::decode_with(buf, &|s| buf.slice_ref(s))
    }

    fn decode_with(buf: &[u8], share: &dyn Fn(&[u8]) -> Bytes) -> Result<Self, Error> {
        let bad = |e: ipfs_kit_block::Error| Error::Invalid(format!("unixfs data: {e}"));
        let mut pos = 0;
        let mut kind = None;
        let mut out = Data::new(DataType::Raw);
        while pos < buf.len() {
            let key = get_varint(buf, &mut pos).map_err(bad)?;
            match (key >> 3, key & 7) {
                (1, 0) => kind = Some(DataType::from_u64(get_varint(buf, &mut pos).map_err(bad)?)?),
                (2, 2) => out.data = Some(share(take(buf, &mut pos)?)),
                (3, 0) => out.filesize = Some(get_varint(buf, &mut pos).map_err(bad)?),
                (4, 0) => out.blocksizes.push(get_varint(buf, &mut pos).map_err(bad)?),
                (4, 2) => {
                    let packed = take(buf, &mut pos)?;
                    let mut p = 0;
                    while p < packed.len() {
                        out.blocksizes
                            .push(get_varint(packed, &mut p).map_err(bad)?);
                    }
                }
                (5, 0) => out.hash_type = Some(get_varint(buf, &mut pos).map_err(bad)?),
                (6, 0) => out.fanout = Some(get_varint(buf, &mut pos).map_err(bad)?),
                (7, 0) => out.mode = Some(get_varint(buf, &mut pos).map_err(bad)? as u32),
                (8, 2) => out.mtime = Some(decode_time(take(buf, &mut pos)?)?),
                (f, w) => {
                    return Err(Error::Invalid(format!(
                        "unixfs data: unexpected field {f} wire type {w}"
                    )))
                }
            }
        }
        out.kind = kind.ok_or_else(|| Error::Invalid("unixfs data without a type".into()))?;
        Ok(out)
    }

    /// The file size this node stands for: `filesize` if set, else the length of its data.
    pub fn file_size(&self) -> u64 {
        self.filesize
            .unwrap_or_else(|| self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

fn take<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], Error> {
    let len = get_varint(buf, pos).map_err(|e| Error::Invalid(format!("unixfs data: {e}")))?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .filter(|e| *e <= buf.len())
        .ok_or_else(|| Error::Invalid("unixfs data: truncated field".into()))?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(s)
}

fn decode_time(buf: &[u8]) -> Result<(i64, Option<u32>), Error> {
    let bad = |e: ipfs_kit_block::Error| Error::Invalid(format!("unixfs mtime: {e}"));
    let mut pos = 0;
    let mut secs = 0i64;
    let mut nanos = None;
    while pos < buf.len() {
        let key = get_varint(buf, &mut pos).map_err(bad)?;
        match (key >> 3, key & 7) {
            (1, 0) => secs = get_varint(buf, &mut pos).map_err(bad)? as i64,
            (2, 5) => {
                let b = buf
                    .get(pos..pos + 4)
                    .ok_or_else(|| Error::Invalid("unixfs mtime: truncated".into()))?;
                nanos = Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                pos += 4;
            }
            (f, w) => {
                return Err(Error::Invalid(format!(
                    "unixfs mtime: unexpected field {f} wire type {w}"
                )))
            }
        }
    }
    Ok((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kubo_bytes() {
        let mut d = Data::new(DataType::File);
        d.data = Some(Bytes::from_static(&[0x16]));
        d.filesize = Some(1);
        assert_eq!(d.encode(), [0x08, 0x02, 0x12, 0x01, 0x16, 0x18, 0x01]);
        let mut empty = Data::new(DataType::File);
        empty.filesize = Some(0);
        assert_eq!(empty.encode(), [0x08, 0x02, 0x18, 0x00]);
    }

    proptest! {
        #[test]
        fn round_trip(kind in 0u64..6, data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
                      filesize in proptest::option::of(any::<u64>()), blocksizes in proptest::collection::vec(any::<u64>(), 0..5),
                      fanout in proptest::option::of(any::<u64>()), mode in proptest::option::of(any::<u32>()),
                      mtime in proptest::option::of((any::<i64>(), proptest::option::of(any::<u32>())))) {
            let mut d = Data::new(DataType::from_u64(kind).unwrap());
            d.data = data.map(Bytes::from);
            d.filesize = filesize;
            d.blocksizes = blocksizes;
            d.fanout = fanout;
            d.mode = mode;
            d.mtime = mtime;
            prop_assert_eq!(Data::decode(&d.encode()).unwrap(), d);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Data::decode(&bytes);
        }
    }
}
