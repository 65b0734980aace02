//! The few protobuf pieces IPNS needs: varint and length-delimited fields, written in field order
//! and read with proto3's rules (unknown fields skipped, the last of a repeated scalar wins).

use ipfs_kit_block::dagpb::{get_varint, put_varint};

use crate::Error;

/// A field value as read from the wire.
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

pub(crate) fn put_uint(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Calls `f` with every known-wire-type field of `buf`, in order. Fixed-width fields are skipped;
/// groups (deprecated wire types 3 and 4) are refused.
pub(crate) fn for_each_field<'a>(
    buf: &'a [u8],
    what: &str,
    f: &mut dyn FnMut(u64, Value<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    let bad = |why: String| Error::InvalidRecord(format!("{what}: {why}"));
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
                f(field, Value::Varint(v))?;
            }
            2 => {
                let len = get_varint(buf, &mut pos).map_err(|e| bad(e.to_string()))?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|end| *end <= buf.len())
                    .ok_or_else(|| bad("truncated field".into()))?;
                f(field, Value::Bytes(&buf[pos..end]))?;
                pos = end;
            }
            1 => pos = skip(buf, pos, 8).ok_or_else(|| bad("truncated field".into()))?,
            5 => pos = skip(buf, pos, 4).ok_or_else(|| bad("truncated field".into()))?,
            w => return Err(bad(format!("unsupported wire type {w}"))),
        }
    }
    Ok(())
}

fn skip(buf: &[u8], pos: usize, n: usize) -> Option<usize> {
    pos.checked_add(n).filter(|end| *end <= buf.len())
}
