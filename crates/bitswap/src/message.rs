//! The bitswap `Message` protobuf (see docs/bitswap.md for the schema) and its codec.
//!
//! Decoding verifies every block: a payload carries only a CID prefix, so the CID is computed by
//! hashing the data, and what comes out is always a block whose bytes match its CID.

use ipfs_kit_block::dagpb::{get_varint, put_varint};
use ipfs_kit_block::{codec, make_cid, Block, Bytes, Cid, HashAlg, Multihash, IDENTITY};

use crate::Error;

/// What a wantlist entry asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WantType {
    /// Send the block.
    Block,
    /// Say whether you have the block.
    Have,
}

/// One wantlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantEntry {
    /// The block wanted.
    pub cid: Cid,
    /// Higher first; Kubo counts down from 2^31-1 in request order.
    pub priority: i32,
    /// Withdraws an earlier want for `cid`.
    pub cancel: bool,
    /// Block or presence.
    pub want_type: WantType,
    /// Answer DONT_HAVE rather than staying silent when the block is missing.
    pub send_dont_have: bool,
}

impl WantEntry {
    /// A want (not a cancel) with Kubo's default priority.
    pub fn want(cid: Cid, want_type: WantType, send_dont_have: bool) -> Self {
        WantEntry {
            cid,
            priority: 1,
            cancel: false,
            want_type,
            send_dont_have,
        }
    }

    /// A cancel for `cid`.
    pub fn cancel(cid: Cid) -> Self {
        WantEntry {
            cid,
            priority: 0,
            cancel: true,
            want_type: WantType::Block,
            send_dont_have: false,
        }
    }
}

/// Whether a peer has a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    /// The peer has it.
    Have,
    /// The peer does not have it.
    DontHave,
}

/// One bitswap message. Empty parts are simply empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Wantlist changes (or the whole wantlist when `full`).
    pub wantlist: Vec<WantEntry>,
    /// The wantlist replaces the previous one.
    pub full: bool,
    /// Blocks, verified against their CIDs.
    pub blocks: Vec<Block>,
    /// HAVE / DONT_HAVE answers.
    pub presences: Vec<(Cid, Presence)>,
    /// Bytes the sender still has queued for us (informational).
    pub pending_bytes: i32,
}

/// The messages [`Message::split`] has filled, and the one it is filling.
struct Parts {
    done: Vec<Message>,
    current: Message,
    size: usize,
    limit: usize,
}

impl Parts {
    /// Starts a new message when `n` more bytes would take the current one past the limit.
    fn make_room(&mut self, n: usize) {
        if self.size + n > self.limit && self.size > 0 {
            self.done.push(std::mem::take(&mut self.current));
            self.size = 0;
        }
        self.size += n;
    }
}

/// At most what one block adds to an encoded message (1.0.0 sends the data alone, 1.1.0 and
/// 1.2.0 a CID prefix beside it; each field a tag and a varint length).
fn block_bound(block: &Block) -> usize {
    block.data().len() + block.cid().encoded_len() + 24
}

/// Which dialect to write: 1.0.0 has no presences, want types or CID prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `/ipfs/bitswap/1.0.0` and `/ipfs/bitswap`.
    V100,
    /// `/ipfs/bitswap/1.1.0`: CID prefixes, no presences.
    V110,
    /// `/ipfs/bitswap/1.2.0`.
    V120,
}

impl Message {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.wantlist.is_empty()
            && !self.full
            && self.blocks.is_empty()
            && self.presences.is_empty()
    }

    /// Splits into messages that each encode to at most `limit` bytes (in any dialect), in
    /// order: wants first, then presences, then blocks, so a receiver applies them as it would
    /// the whole. Only the first part carries `full`: the later ones add to the wantlist it
    /// set. A single block bigger than `limit` still travels alone (and the receiver refuses
    /// it, as it would anyway). Bitswap blocks are at most 2 MiB and the frame limit is
    /// 4 MiB, so this only splits what a careless caller built too big.
    pub fn split(self, limit: usize) -> Vec<Message> {
        if self.size_bound() <= limit {
            return vec![self];
        }
        let mut parts = Parts {
            done: Vec::new(),
            current: Message {
                full: self.full,
                pending_bytes: self.pending_bytes,
                ..Message::default()
            },
            size: 0,
            limit,
        };
        for entry in self.wantlist {
            parts.make_room(entry.cid.encoded_len() + 16);
            parts.current.wantlist.push(entry);
        }
        for (cid, presence) in self.presences {
            parts.make_room(cid.encoded_len() + 8);
            parts.current.presences.push((cid, presence));
        }
        for block in self.blocks {
            parts.make_room(block_bound(&block));
            parts.current.blocks.push(block);
        }
        parts.done.push(parts.current);
        parts.done
    }

    /// An upper bound of the encoded size: a block costs its data, its CID prefix and a few
    /// tags and varints; a want or presence its CID and as much again at most in fields.
    fn size_bound(&self) -> usize {
        self.blocks.iter().map(block_bound).sum::<usize>()
            + self
                .wantlist
                .iter()
                .map(|e| e.cid.encoded_len() + 16)
                .sum::<usize>()
            + self
                .presences
                .iter()
                .map(|(c, _)| c.encoded_len() + 8)
                .sum::<usize>()
            + 16
    }

    /// Approximate encoded size, for queue accounting.
    pub fn approx_size(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.data().len() + 16)
            .sum::<usize>()
            + (self.wantlist.len() + self.presences.len()) * 48
    }

    /// Encodes for `dialect`. Parts a dialect cannot carry are left out (1.0.0 and 1.1.0 get
    /// no presences; 1.0.0 gets only CIDv0 blocks and block wants).
    pub fn encode(&self, dialect: Dialect) -> Vec<u8> {
        let encoded = self.encode_parts(dialect);
        let mut out = Vec::with_capacity(encoded.len);
        for part in &encoded.parts {
            out.extend_from_slice(part);
        }
        out
    }

    /// Encodes for `dialect` as a sequence of parts whose concatenation is [`Message::encode`]:
    /// block data appear as the blocks' own [`Bytes`], so a writer sends them without copying
    /// them into a frame first (they are the bulk of what a server sends).
    pub fn encode_parts(&self, dialect: Dialect) -> Encoded {
        let mut enc = Encoded::default();
        let mut out = Vec::new();
        if !self.wantlist.is_empty() || self.full {
            let mut wl = Vec::new();
            for e in &self.wantlist {
                if dialect == Dialect::V100 && e.want_type == WantType::Have {
                    continue;
                }
                let mut entry = Vec::with_capacity(48);
                put_field_bytes(&mut entry, 1, &e.cid.to_bytes());
                if e.priority != 0 {
                    put_field_varint(&mut entry, 2, e.priority as i64 as u64);
                }
                if e.cancel {
                    put_field_varint(&mut entry, 3, 1);
                }
                if dialect == Dialect::V120 {
                    if e.want_type == WantType::Have {
                        put_field_varint(&mut entry, 4, 1);
                    }
                    if e.send_dont_have {
                        put_field_varint(&mut entry, 5, 1);
                    }
                }
                put_field_bytes(&mut wl, 1, &entry);
            }
            if self.full {
                put_field_varint(&mut wl, 2, 1);
            }
            put_field_bytes(&mut out, 1, &wl);
        }
        for b in &self.blocks {
            let data = b.data();
            if dialect == Dialect::V100 {
                if b.cid().version() == cid::Version::V0 {
                    put_field_head(&mut out, 2, data.len());
                    enc.push(std::mem::take(&mut out));
                    enc.push_data(data.clone());
                }
                continue;
            }
            let prefix = prefix(b.cid());
            let mut head = Vec::with_capacity(prefix.len() + 12);
            put_field_bytes(&mut head, 1, &prefix);
            put_field_head(&mut head, 2, data.len());
            put_field_head(&mut out, 3, head.len() + data.len());
            out.extend_from_slice(&head);
            enc.push(std::mem::take(&mut out));
            enc.push_data(data.clone());
        }
        if dialect == Dialect::V120 {
            for (cid, presence) in &self.presences {
                let mut p = Vec::with_capacity(48);
                put_field_bytes(&mut p, 1, &cid.to_bytes());
                if *presence == Presence::DontHave {
                    put_field_varint(&mut p, 2, 1);
                }
                put_field_bytes(&mut out, 4, &p);
            }
        }
        if self.pending_bytes != 0 {
            put_field_varint(&mut out, 5, self.pending_bytes as i64 as u64);
        }
        enc.push(out);
        enc
    }

    /// Decodes a message. Blocks are hashed to compute their CIDs; a block whose prefix names a
    /// hash function we do not have is an error (its sender cannot have meant us to trust it).
    pub fn decode(buf: &[u8]) -> Result<Message, Error> {
        Self::decode_shared(&Bytes::copy_from_slice(buf))
    }

    /// [`Message::decode`] of bytes already shared: block data are slices of `buf`, not copies.
    pub fn decode_shared(buf: &Bytes) -> Result<Message, Error> {
        let mut msg = Message::default();
        let mut r = Reader::new(buf);
        while let Some((field, value)) = r.next()? {
            msg.decode_field(field, value.shared(buf))?;
        }
        Ok(msg)
    }

    /// Applies one top-level field, for decoders that read a message field by field (each
    /// length-delimited field in a buffer of its own, so a kept block holds no more memory than
    /// its own field's).
    pub fn decode_field(&mut self, field: u64, value: Field) -> Result<(), Error> {
        match (field, value) {
            (1, Field::Bytes(wl)) => decode_wantlist(&wl, self),
            (2, Field::Bytes(data)) => {
                self.blocks
                    .push(Block::encode(codec::DAG_PB, HashAlg::Sha2_256, 0, data));
                Ok(())
            }
            (3, Field::Bytes(block)) => {
                self.blocks.push(decode_payload(&block)?);
                Ok(())
            }
            (4, Field::Bytes(p)) => {
                self.presences.push(decode_presence(&p)?);
                Ok(())
            }
            (5, Field::Varint(v)) => {
                self.pending_bytes = v as i32;
                Ok(())
            }
            (1..=5, _) => Err(Error::Decode("wrong wire type for a known field")),
            _ => Ok(()),
        }
    }
}

/// A message encoded as parts (see [`Message::encode_parts`]).
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    /// The parts, in order; small protobuf framing and whole block data alternate.
    pub parts: Vec<Bytes>,
    /// Total length of the parts.
    pub len: usize,
}

impl Encoded {
    fn push(&mut self, part: Vec<u8>) {
        if !part.is_empty() {
            self.len += part.len();
            self.parts.push(Bytes::from(part));
        }
    }

    fn push_data(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.len += data.len();
            self.parts.push(data);
        }
    }
}

/// The value of one top-level protobuf field, as [`Message::decode_field`] takes it.
#[derive(Clone, Debug)]
pub enum Field {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 2.
    Bytes(Bytes),
    /// Wire types 1 and 5 (no field of the schema has them; skipped).
    Fixed,
}

/// The CID prefix bitswap 1.1+ sends with a block: version, codec, hash code, digest length.
pub fn prefix(cid: &Cid) -> Vec<u8> {
    let mut p = Vec::with_capacity(8);
    put_varint(&mut p, cid.version() as u64);
    put_varint(&mut p, cid.codec());
    put_varint(&mut p, cid.hash().code());
    put_varint(&mut p, u64::from(cid.hash().size()));
    p
}

fn decode_wantlist(buf: &[u8], msg: &mut Message) -> Result<(), Error> {
    let mut r = Reader::new(buf);
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Value::Bytes(entry)) => msg.wantlist.push(decode_entry(entry)?),
            (2, Value::Varint(v)) => msg.full = v != 0,
            (1 | 2, _) => return Err(Error::Decode("wrong wire type in wantlist")),
            _ => {}
        }
    }
    Ok(())
}

fn decode_entry(buf: &[u8]) -> Result<WantEntry, Error> {
    let mut r = Reader::new(buf);
    let mut cid = None;
    let mut entry = WantEntry::want(Cid::default(), WantType::Block, false);
    entry.priority = 0;
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => {
                cid = Some(Cid::try_from(b).map_err(|_| Error::Decode("bad CID in wantlist"))?)
            }
            (2, Value::Varint(v)) => entry.priority = v as i32,
            (3, Value::Varint(v)) => entry.cancel = v != 0,
            (4, Value::Varint(v)) => {
                entry.want_type = if v == 1 {
                    WantType::Have
                } else {
                    WantType::Block
                }
            }
            (5, Value::Varint(v)) => entry.send_dont_have = v != 0,
            (1..=5, _) => return Err(Error::Decode("wrong wire type in wantlist entry")),
            _ => {}
        }
    }
    entry.cid = cid.ok_or(Error::Decode("wantlist entry without a CID"))?;
    Ok(entry)
}

fn decode_payload(buf: &Bytes) -> Result<Block, Error> {
    let mut r = Reader::new(buf);
    let (mut prefix, mut data) = (None, None);
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => prefix = Some(b),
            (2, Value::Bytes(b)) => data = Some(b),
            (1 | 2, _) => return Err(Error::Decode("wrong wire type in block")),
            _ => {}
        }
    }
    let prefix = prefix.ok_or(Error::Decode("block without a prefix"))?;
    let data = data.map_or_else(Bytes::new, |d| buf.slice_ref(d));
    let mut pos = 0;
    let mut next = || get_varint(prefix, &mut pos).map_err(|_| Error::Decode("bad CID prefix"));
    let (version, codec, code, len) = (next()?, next()?, next()?, next()?);
    let mh = if code == IDENTITY {
        if len != data.len() as u64 {
            return Err(Error::Decode(
                "identity prefix length differs from the data",
            ));
        }
        Multihash::wrap(IDENTITY, &data).map_err(|_| Error::Decode("identity block too long"))?
    } else {
        let alg = HashAlg::from_code(code).ok_or(Error::UnsupportedHash(code))?;
        let mh = alg.digest(&data);
        if u64::from(mh.size()) != len {
            return Err(Error::Decode("truncated digests are not supported"));
        }
        mh
    };
    let version = match version {
        0 if codec == codec::DAG_PB => 0,
        1 => 1,
        _ => return Err(Error::Decode("bad CID version in prefix")),
    };
    let cid = make_cid(version, codec, mh);
    Ok(Block::new_unchecked(cid, data))
}

fn decode_presence(buf: &[u8]) -> Result<(Cid, Presence), Error> {
    let mut r = Reader::new(buf);
    let (mut cid, mut presence) = (None, Presence::Have);
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Value::Bytes(b)) => {
                cid = Some(Cid::try_from(b).map_err(|_| Error::Decode("bad CID in presence"))?)
            }
            (2, Value::Varint(v)) => {
                presence = if v == 1 {
                    Presence::DontHave
                } else {
                    Presence::Have
                }
            }
            (1 | 2, _) => return Err(Error::Decode("wrong wire type in presence")),
            _ => {}
        }
    }
    Ok((
        cid.ok_or(Error::Decode("presence without a CID"))?,
        presence,
    ))
}

fn put_field_varint(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_field_head(out, field, bytes.len());
    out.extend_from_slice(bytes);
}

/// The key and length of a length-delimited field whose bytes follow separately.
fn put_field_head(out: &mut Vec<u8>, field: u64, len: usize) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, len as u64);
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl Value<'_> {
    /// As a [`Field`], its bytes a slice of `buf` (which they must lie in).
    fn shared(self, buf: &Bytes) -> Field {
        match self {
            Value::Varint(v) => Field::Varint(v),
            Value::Bytes(b) => Field::Bytes(buf.slice_ref(b)),
            Value::Fixed => Field::Fixed,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, Error> {
        get_varint(self.buf, &mut self.pos).map_err(|_| Error::Decode("bad varint"))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], Error> {
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.pos.checked_add(len))
            .filter(|end| *end <= self.buf.len())
            .ok_or(Error::Decode("truncated field"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn next(&mut self) -> Result<Option<(u64, Value<'a>)>, Error> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(Error::Decode("field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err(Error::Decode("unsupported wire type")),
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(data: &[u8], version: u8, codec: u64) -> Block {
        Block::encode(codec, HashAlg::Sha2_256, version, data.to_vec())
    }

    #[test]
    fn round_trip_all_parts() {
        let b0 = block(b"\x0a\x02\x08\x01", 0, codec::DAG_PB);
        let b1 = block(b"raw bytes", 1, codec::RAW);
        let msg = Message {
            wantlist: vec![
                WantEntry::want(*b1.cid(), WantType::Have, true),
                WantEntry::cancel(*b0.cid()),
            ],
            full: true,
            blocks: vec![b0, b1.clone()],
            presences: vec![(*b1.cid(), Presence::DontHave), (*b1.cid(), Presence::Have)],
            pending_bytes: 12,
        };
        assert_eq!(Message::decode(&msg.encode(Dialect::V120)).unwrap(), msg);
    }

    #[test]
    fn legacy_dialect_drops_what_it_cannot_carry() {
        let b0 = block(b"\x0a\x02\x08\x01", 0, codec::DAG_PB);
        let b1 = block(b"raw bytes", 1, codec::RAW);
        let msg = Message {
            wantlist: vec![WantEntry::want(*b1.cid(), WantType::Have, true)],
            blocks: vec![b0.clone(), b1],
            presences: vec![(*b0.cid(), Presence::Have)],
            ..Default::default()
        };
        let back = Message::decode(&msg.encode(Dialect::V100)).unwrap();
        assert_eq!(back.blocks, vec![b0]);
        assert!(back.presences.is_empty());
        // An empty wantlist submessage is still sent (it was non-empty before filtering).
        assert!(back.wantlist.is_empty());
    }

    #[test]
    fn blocks_are_named_by_their_bytes() {
        // A payload whose prefix claims sha2-256/raw gets the CID of its real bytes.
        let b = block(b"abc", 1, codec::RAW);
        let mut msg = Message {
            blocks: vec![b.clone()],
            ..Default::default()
        };
        let mut bytes = msg.encode(Dialect::V120);
        let n = bytes.len();
        bytes[n - 1] = b'x'; // "abx"
        let back = Message::decode(&bytes).unwrap();
        assert_ne!(back.blocks[0].cid(), b.cid());
        assert_eq!(
            back.blocks[0],
            Block::new(*back.blocks[0].cid(), &b"abx"[..]).unwrap()
        );
        msg.blocks.clear();
        assert!(msg.is_empty());
    }

    #[test]
    fn known_kubo_bytes_decode() {
        // A want-have with send-dont-have for bafkqaaa (identity, empty), as boxo writes it.
        let cid = Cid::try_from("bafkqaaa").unwrap();
        let mut entry = Vec::new();
        put_field_bytes(&mut entry, 1, &cid.to_bytes());
        put_field_varint(&mut entry, 2, 2147483647);
        put_field_varint(&mut entry, 4, 1);
        put_field_varint(&mut entry, 5, 1);
        let mut wl = Vec::new();
        put_field_bytes(&mut wl, 1, &entry);
        let mut bytes = Vec::new();
        put_field_bytes(&mut bytes, 1, &wl);
        let msg = Message::decode(&bytes).unwrap();
        assert_eq!(
            msg.wantlist,
            vec![WantEntry {
                cid,
                priority: i32::MAX,
                cancel: false,
                want_type: WantType::Have,
                send_dont_have: true
            }]
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            &[0x0a, 0x05, 0x01][..],   // truncated wantlist
            &[0x1a, 0x02, 0x0a, 0x00], // block with an empty prefix
            &[0x07],                   // wire type 7
            &[0x00, 0x00],             // field 0
            &[0x0a, 0x02, 0x0a, 0x00], // entry without a CID
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?}");
        }
        // An unknown hash function in a prefix.
        let mut prefix = Vec::new();
        for v in [1, 0x55, 0x99, 32] {
            put_varint(&mut prefix, v);
        }
        let mut block = Vec::new();
        put_field_bytes(&mut block, 1, &prefix);
        put_field_bytes(&mut block, 2, b"x");
        let mut bytes = Vec::new();
        put_field_bytes(&mut bytes, 3, &block);
        assert!(matches!(
            Message::decode(&bytes),
            Err(Error::UnsupportedHash(0x99))
        ));
    }

    proptest! {
        #[test]
        fn encode_decode_is_identity(
            wants in proptest::collection::vec((any::<[u8; 8]>(), any::<i32>(), any::<bool>(), any::<bool>(), any::<bool>()), 0..8),
            blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4),
            presences in proptest::collection::vec((any::<[u8; 8]>(), any::<bool>()), 0..4),
            full in any::<bool>(),
            pending in any::<i32>(),
        ) {
            let cid = |seed: &[u8]| *block(seed, 1, codec::RAW).cid();
            let msg = Message {
                wantlist: wants.iter().map(|(s, p, c, h, d)| WantEntry {
                    cid: cid(s),
                    priority: *p,
                    cancel: *c,
                    want_type: if *h { WantType::Have } else { WantType::Block },
                    send_dont_have: *d,
                }).collect(),
                full,
                blocks: blocks.iter().map(|d| block(d, 1, codec::RAW)).collect(),
                presences: presences.iter().map(|(s, h)| (cid(s), if *h { Presence::Have } else { Presence::DontHave })).collect(),
                pending_bytes: pending,
            };
            prop_assert_eq!(Message::decode(&msg.encode(Dialect::V120)).unwrap(), msg);
        }

        #[test]
        fn split_parts_fit_and_add_up_to_the_whole(
            wants in proptest::collection::vec(any::<[u8; 8]>(), 0..40),
            blocks in proptest::collection::vec(0usize..600, 0..12),
            presences in proptest::collection::vec(any::<[u8; 8]>(), 0..40),
            full in any::<bool>(),
            limit in 64usize..2048,
        ) {
            let cid = |seed: &[u8]| *block(seed, 1, codec::RAW).cid();
            let msg = Message {
                wantlist: wants.iter().map(|s| WantEntry::want(cid(s), WantType::Have, true)).collect(),
                full,
                blocks: blocks.iter().enumerate().map(|(i, n)| {
                    let mut data = vec![i as u8; *n];
                    data.extend_from_slice(&i.to_le_bytes());
                    block(&data, 1, codec::RAW)
                }).collect(),
                presences: presences.iter().map(|s| (cid(s), Presence::DontHave)).collect(),
                pending_bytes: 0,
            };
            let parts = msg.clone().split(limit);
            let mut joined = Message { full, ..Message::default() };
            for (i, part) in parts.iter().enumerate() {
                prop_assert_eq!(part.full, full && i == 0);
                let len = part.encode(Dialect::V120).len();
                let one_block = part.blocks.len() == 1 && part.wantlist.is_empty() && part.presences.is_empty();
                prop_assert!(len <= limit || one_block, "part {} of {} bytes over {}", i, len, limit);
                joined.wantlist.extend(part.wantlist.iter().cloned());
                joined.presences.extend(part.presences.iter().cloned());
                joined.blocks.extend(part.blocks.iter().cloned());
            }
            prop_assert_eq!(joined, msg);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Message::decode(&bytes);
        }
    }
}
