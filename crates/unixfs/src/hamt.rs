//! HAMT-sharded directories, built and read the way Kubo (boxo) does.
//!
//! Keys are hashed with the first 64 bits of murmur3-x64-128 (seed 0), consumed most significant
//! bit first, `log2(fanout)` bits per level. A slot holding one entry links to it under the name
//! `HEX(slot) + name`; a slot holding several becomes a sub-shard linked as `HEX(slot)`. Slots are
//! written in ascending order and the shard's data field carries the occupancy bitfield (big-endian,
//! leading zero bytes dropped). Building by insertion only, as an importer does, gives a canonical
//! tree: a sub-shard exists exactly where two or more names share a prefix of hash bits.

use ipfs_kit_block::dagpb::{PbLink, PbNode};
use ipfs_kit_block::Bytes;
use ipfs_kit_block::Cid;

use crate::pb::{Data, DataType};
use crate::Error;

/// Multicodec of the murmur3-x64-64 hash, as recorded in a shard's `hashType`.
pub const MURMUR3_X64_64: u64 = 0x22;

/// The first 64-bit half of MurmurHash3 x64 128 with seed 0.
pub fn murmur3_x64_64(key: &[u8]) -> u64 {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let fmix = |mut k: u64| {
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    };
    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = key.chunks_exact(16);
    for block in &mut blocks {
        let mut k1 = u64::from_le_bytes(block[..8].try_into().unwrap_or_default());
        let mut k2 = u64::from_le_bytes(block[8..].try_into().unwrap_or_default());
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, b) in tail.iter().enumerate() {
        if i < 8 {
            k1 |= u64::from(*b) << (8 * i);
        } else {
            k2 |= u64::from(*b) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = key.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1.wrapping_add(h2)
}

/// The slot of `name` at `depth` for a table of `2^bits` slots, or `None` when the 64 hash bits
/// are used up (only possible with a full hash collision).
pub fn slot(hash: u64, depth: usize, bits: u32) -> Option<usize> {
    let used = depth as u32 * bits;
    if used + bits > 64 {
        return None;
    }
    let shifted = hash << used;
    Some((shifted >> (64 - bits)) as usize)
}

/// Width of the hex slot prefix in link names for `fanout` (2 for 256).
pub fn pad_len(fanout: usize) -> usize {
    format!("{:X}", fanout.saturating_sub(1)).len()
}

/// One directory entry to place in a shard.
#[derive(Clone, Debug)]
pub struct ShardEntry {
    /// Entry name.
    pub name: String,
    /// Entry CID.
    pub cid: Cid,
    /// Cumulative size of the entry's DAG.
    pub tsize: u64,
}

/// A finished shard node: its encoded block and its cumulative size.
pub struct BuiltShard {
    /// The encoded dag-pb bytes.
    pub bytes: Vec<u8>,
    /// Block bytes plus the cumulative sizes of all links.
    pub tsize: u64,
}

/// Builds the shard tree for `entries`, calling `emit` for every node bottom-up (the root last)
/// and returning the CID of the root.
pub fn build(
    entries: Vec<ShardEntry>,
    fanout: usize,
    emit: &mut dyn FnMut(Vec<u8>) -> Result<Cid, Error>,
) -> Result<(Cid, u64), Error> {
    if !fanout.is_power_of_two() || !(8..=1024).contains(&fanout) {
        return Err(Error::Invalid(format!(
            "hamt fanout must be a power of two between 8 and 1024, got {fanout}"
        )));
    }
    let bits = fanout.trailing_zeros();
    let hashed = entries
        .into_iter()
        .map(|e| (murmur3_x64_64(e.name.as_bytes()), e))
        .collect();
    build_level(hashed, 0, fanout, bits, emit)
}

fn build_level(
    entries: Vec<(u64, ShardEntry)>,
    depth: usize,
    fanout: usize,
    bits: u32,
    emit: &mut dyn FnMut(Vec<u8>) -> Result<Cid, Error>,
) -> Result<(Cid, u64), Error> {
    let mut buckets: Vec<Vec<(u64, ShardEntry)>> = (0..fanout).map(|_| Vec::new()).collect();
    for (hash, e) in entries {
        let s = slot(hash, depth, bits)
            .ok_or_else(|| Error::Invalid(format!("hamt hash bits exhausted at {:?}", e.name)))?;
        buckets[s].push((hash, e));
    }
    let pad = pad_len(fanout);
    let mut bitfield = vec![0u8; fanout / 8];
    let mut links = Vec::new();
    let mut total = 0u64;
    for (i, mut bucket) in buckets.into_iter().enumerate() {
        if bucket.is_empty() {
            continue;
        }
        let byte = bitfield.len() - 1 - i / 8;
        bitfield[byte] |= 1 << (i % 8);
        let (name, cid, tsize) = if bucket.len() == 1 {
            let (_, e) = bucket.remove(0);
            (format!("{i:0pad$X}{}", e.name), e.cid, e.tsize)
        } else {
            let (cid, tsize) = build_level(bucket, depth + 1, fanout, bits, emit)?;
            (format!("{i:0pad$X}"), cid, tsize)
        };
        total += tsize;
        links.push(PbLink {
            cid,
            name: Some(name),
            tsize: Some(tsize),
        });
    }
    let first = bitfield
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bitfield.len());
    let mut data = Data::new(DataType::HamtShard);
    data.data = Some(Bytes::copy_from_slice(&bitfield[first..]));
    data.hash_type = Some(MURMUR3_X64_64);
    data.fanout = Some(fanout as u64);
    let node = PbNode {
        links,
        data: Some(Bytes::from(data.encode())),
    };
    let bytes = node.encode();
    let tsize = bytes.len() as u64 + total;
    let cid = emit(bytes)?;
    Ok((cid, tsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_reference_values() {
        // First half of the x64_128 digest of well-known inputs (seed 0).
        assert_eq!(murmur3_x64_64(b""), 0);
        assert_eq!(murmur3_x64_64(b"hello"), 0xcbd8_a7b3_41bd_9b02);
        assert_eq!(
            murmur3_x64_64(b"The quick brown fox jumps over the lazy dog"),
            0xe34b_bc7b_bc07_1b6c
        );
    }

    #[test]
    fn slots_consume_high_bits_first() {
        let h = 0xABCD_0000_0000_0000_u64;
        assert_eq!(slot(h, 0, 8), Some(0xAB));
        assert_eq!(slot(h, 1, 8), Some(0xCD));
        assert_eq!(slot(h, 8, 8), None);
        assert_eq!(pad_len(256), 2);
        assert_eq!(pad_len(16), 1);
    }
}

#[cfg(test)]
mod props {
    use std::collections::BTreeSet;

    use ipfs_kit_block::{codec, Block, Cid, HashAlg};
    use proptest::prelude::*;

    use super::*;

    fn cid_of(name: &str) -> Cid {
        *Block::encode(codec::RAW, HashAlg::Sha2_256, 1, name.as_bytes().to_vec()).cid()
    }

    fn build_all(names: &[String], fanout: usize) -> (Cid, Vec<(Cid, Vec<u8>)>) {
        let mut blocks = Vec::new();
        let entries = names
            .iter()
            .map(|n| ShardEntry {
                name: n.clone(),
                cid: cid_of(n),
                tsize: 1,
            })
            .collect();
        let (root, _) = build(entries, fanout, &mut |bytes| {
            let b = Block::encode(codec::DAG_PB, HashAlg::Sha2_256, 1, bytes);
            blocks.push((*b.cid(), b.data().to_vec()));
            Ok(*b.cid())
        })
        .unwrap();
        (root, blocks)
    }

    struct Blocks(Vec<(Cid, Vec<u8>)>);

    impl crate::BlockSource for Blocks {
        fn get(&self, cid: &Cid) -> Result<ipfs_kit_block::Bytes, crate::BoxError> {
            self.0
                .iter()
                .find(|(c, _)| c == cid)
                .map(|(_, d)| ipfs_kit_block::Bytes::from(d.clone()))
                .ok_or_else(|| "missing".into())
        }
    }

    proptest! {
        /// The tree depends only on the set of names; every name is listed once and found by
        /// its hash path; a name not in the set is not found.
        #[test]
        fn canonical_complete_and_findable(
            names in proptest::collection::btree_set("[a-zA-Z0-9._-]{1,12}", 1..300),
            bits in 3u32..=8,
        ) {
            let fanout = 1usize << bits;
            let names: Vec<String> = names.into_iter().collect();
            let (root, blocks) = build_all(&names, fanout);
            let mut reversed = names.clone();
            reversed.reverse();
            prop_assert_eq!(build_all(&reversed, fanout).0, root);
            let store = Blocks(blocks);
            let listed: BTreeSet<String> = crate::reader::list(&store, &root).unwrap().into_iter().map(|e| e.name).collect();
            prop_assert_eq!(listed, names.iter().cloned().collect::<BTreeSet<_>>());
            for n in names.iter().take(20) {
                prop_assert_eq!(crate::reader::lookup(&store, &root, n).unwrap(), Some(cid_of(n)));
            }
            prop_assert_eq!(crate::reader::lookup(&store, &root, "not-a-member/").unwrap(), None);
        }
    }
}
