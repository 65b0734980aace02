//! The few protobuf pieces IPNS needs: varint and length-delimited fields, written in field order
//! and read with proto3's rules (unknown fields skipped, the last of a repeated scalar wins).

use ipfs_kit_block::dagpb::put_varint;

use crate::Error;

/// A field value as read from the wire.
pub(crate) use ipfs_kit_block::dagpb::PbValue as Value;

pub(crate) fn put_uint(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Calls `f` with every varint and length-delimited field of `buf`, in order (see
/// [`ipfs_kit_block::dagpb::for_each_field`]); a malformed message is an invalid `what`.
pub(crate) fn for_each_field<'a>(
    buf: &'a [u8],
    what: &str,
    f: &mut dyn FnMut(u64, Value<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    ipfs_kit_block::dagpb::for_each_field(
        buf,
        |why| Error::InvalidRecord(format!("{what}: {why}")),
        f,
    )
}
