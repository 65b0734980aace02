//! Streaming CARv1/CARv2 reader.

use std::io::{self, BufReader, Read};
use std::iter::FusedIterator;

use ipfs_kit_block::{Block, Bytes, Cid};

use crate::header::{CarHeader, CarV2Header, CARV2_PRAGMA};
use crate::{Error, Result};

/// Default bound on the dag-cbor header length (go-car's bound too).
pub const DEFAULT_MAX_HEADER_LEN: u64 = 32 << 20;
/// Default bound on the bytes of one block (go-car's default section bound).
pub const DEFAULT_MAX_BLOCK_LEN: u64 = 8 << 20;
/// Room a section may use for its CID on top of the block bound. A CID with a 64-byte digest and
/// ten-byte varints takes under 100 bytes.
pub const MAX_CID_LEN: u64 = 128;

/// Limits and leniencies of a [`CarReader`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderConfig {
    max_header_len: u64,
    max_block_len: u64,
    zero_length_section_as_eof: bool,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            max_header_len: DEFAULT_MAX_HEADER_LEN,
            max_block_len: DEFAULT_MAX_BLOCK_LEN,
            zero_length_section_as_eof: false,
        }
    }
}

impl ReaderConfig {
    /// Sets the largest accepted dag-cbor header, in bytes.
    pub fn with_max_header_len(mut self, len: u64) -> Self {
        self.max_header_len = len;
        self
    }

    /// Sets the largest accepted block, in bytes. Sections may be [`MAX_CID_LEN`] longer.
    pub fn with_max_block_len(mut self, len: u64) -> Self {
        self.max_block_len = len;
        self
    }

    /// Treats a zero-length section as the end of the CAR instead of an error. Some Filecoin
    /// tools pad CARs with zero bytes; go-car has the same option.
    pub fn with_zero_length_section_as_eof(mut self, yes: bool) -> Self {
        self.zero_length_section_as_eof = yes;
        self
    }

    /// The largest accepted dag-cbor header, in bytes.
    pub fn max_header_len(&self) -> u64 {
        self.max_header_len
    }

    /// The largest accepted block, in bytes.
    pub fn max_block_len(&self) -> u64 {
        self.max_block_len
    }

    /// Whether a zero-length section ends the CAR.
    pub fn zero_length_section_as_eof(&self) -> bool {
        self.zero_length_section_as_eof
    }
}

/// Whose length prefix is being read, so errors name the right part.
#[derive(Clone, Copy)]
enum Part {
    Header,
    Section,
}

impl Part {
    fn invalid(self, reason: String) -> Error {
        match self {
            Part::Header => Error::InvalidHeader(reason),
            Part::Section => Error::InvalidSection(reason),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Part::Header => "header",
            Part::Section => "section",
        }
    }
}

/// The input with the count of bytes consumed and, inside a CARv2, the end of the data payload.
struct Source<R> {
    inner: BufReader<R>,
    pos: u64,
    end: Option<u64>,
}

impl<R: Read> Source<R> {
    fn remaining(&self) -> Option<u64> {
        self.end.map(|end| end.saturating_sub(self.pos))
    }

    /// One byte, or `None` at the end of the input or of the CARv2 payload.
    fn byte(&mut self) -> Result<Option<u8>> {
        if self.remaining() == Some(0) {
            return Ok(None);
        }
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    self.pos += 1;
                    return Ok(Some(b[0]));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// An unsigned LEB128 varint, or `None` if the input ends cleanly before its first byte.
    /// Non-minimal encodings are accepted, as go-car accepts them.
    fn varint(&mut self, part: Part) -> Result<Option<u64>> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..10 {
            let Some(byte) = self.byte()? else {
                if i == 0 {
                    return Ok(None);
                }
                return Err(self.cut_short(format!(
                    "the {} length at offset {start} is cut short",
                    part.name()
                )));
            };
            if i == 9 && byte > 1 {
                break;
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(part.invalid(format!(
            "the {} length at offset {start} overflows 64 bits",
            part.name()
        )))
    }

    /// Exactly `len` bytes (already bounded by the caller).
    fn bytes(&mut self, len: u64, what: &str) -> Result<Vec<u8>> {
        let start = self.pos;
        if let Some(rem) = self.remaining() {
            if len > rem {
                return Err(Error::Truncated(format!(
                    "the {what} at offset {start} needs {len} bytes but the car v2 data payload \
                     ends after {rem}"
                )));
            }
        }
        // Grow as bytes arrive rather than trusting the length up front.
        let mut buf = Vec::with_capacity(len.min(64 << 10) as usize);
        (&mut self.inner).take(len).read_to_end(&mut buf)?;
        self.pos += buf.len() as u64;
        if (buf.len() as u64) < len {
            return Err(Error::Truncated(format!(
                "the {what} at offset {start} needs {len} bytes but the input ends after {}",
                buf.len()
            )));
        }
        Ok(buf)
    }

    fn skip(&mut self, len: u64, what: &str) -> Result<()> {
        let start = self.pos;
        let got = io::copy(&mut (&mut self.inner).take(len), &mut io::sink())?;
        self.pos += got;
        if got < len {
            return Err(Error::Truncated(format!(
                "the {what} at offset {start} needs {len} bytes but the input ends after {got}"
            )));
        }
        Ok(())
    }

    fn cut_short(&self, what: String) -> Error {
        match self.end {
            Some(end) if self.pos == end => Error::Truncated(format!(
                "{what} by the end of the car v2 data payload at offset {end}"
            )),
            _ => Error::Truncated(what),
        }
    }

    /// A length-prefixed dag-cbor header block.
    fn header_bytes(&mut self, config: &ReaderConfig) -> Result<Vec<u8>> {
        let start = self.pos;
        let Some(len) = self.varint(Part::Header)? else {
            return Err(self.cut_short(format!("no header at offset {start}: the input is empty")));
        };
        if len == 0 {
            return Err(Error::InvalidHeader("the header length is zero".into()));
        }
        if len > config.max_header_len {
            return Err(Error::TooLarge {
                what: "car header",
                len,
                limit: config.max_header_len,
            });
        }
        self.bytes(len, "header")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Reading,
    Done,
    Failed,
}

/// Reads a CARv1 or CARv2 from a stream, one section at a time.
///
/// The input is read forward only, through an internal [`BufReader`], so files, pipes and stdin
/// all work and there is no need to buffer the input first. For a CARv2 the reader skips to the
/// data offset, stops at the end of the data payload and never reads the index.
///
/// Unrecoverable errors (see [`Error::is_recoverable`]) stop the reader: later calls return
/// [`Error::Stopped`]. As an [`Iterator`] it yields verified blocks and ends after the first
/// unrecoverable error.
pub struct CarReader<R> {
    src: Source<R>,
    config: ReaderConfig,
    header: CarHeader,
    v2: Option<CarV2Header>,
    state: State,
}

impl<R: Read> CarReader<R> {
    /// Reads the header of a CARv1 or CARv2 with the default [`ReaderConfig`].
    pub fn new(reader: R) -> Result<Self> {
        Self::with_config(reader, ReaderConfig::default())
    }

    /// Reads the header of a CARv1 or CARv2 with `config`.
    pub fn with_config(reader: R, config: ReaderConfig) -> Result<Self> {
        let mut src = Source {
            inner: BufReader::new(reader),
            pos: 0,
            end: None,
        };
        let first = src.header_bytes(&config)?;
        let mut v2 = None;
        let header = if first[..] == CARV2_PRAGMA[1..] {
            let raw = src.bytes(CarV2Header::LEN as u64, "car v2 header")?;
            let mut fixed = [0u8; CarV2Header::LEN];
            fixed.copy_from_slice(&raw);
            let h = CarV2Header::decode(&fixed);
            let body_start = src.pos;
            if h.data_offset < body_start {
                return Err(Error::InvalidHeader(format!(
                    "the car v2 data offset {} points inside the car v2 header",
                    h.data_offset
                )));
            }
            let end = h.data_offset.checked_add(h.data_size).ok_or_else(|| {
                Error::InvalidHeader("the car v2 data offset plus data size overflows".into())
            })?;
            src.skip(h.data_offset - body_start, "padding before the car v2 data")?;
            src.end = Some(end);
            v2 = Some(h);
            let inner = src.header_bytes(&config)?;
            CarHeader::decode(&inner)?
        } else {
            CarHeader::decode(&first)?
        };
        Ok(CarReader {
            src,
            config,
            header,
            v2,
            state: State::Reading,
        })
    }

    /// The container version: 1 for a CARv1, 2 for a CARv2.
    pub fn version(&self) -> u64 {
        if self.v2.is_some() {
            2
        } else {
            1
        }
    }

    /// The root CIDs of the (inner) CARv1 header.
    pub fn roots(&self) -> &[Cid] {
        &self.header.roots
    }

    /// The (inner) CARv1 header.
    pub fn header(&self) -> &CarHeader {
        &self.header
    }

    /// The CARv2 header, if the input is a CARv2.
    pub fn v2_header(&self) -> Option<&CarV2Header> {
        self.v2.as_ref()
    }

    /// The configuration in use.
    pub fn config(&self) -> &ReaderConfig {
        &self.config
    }

    /// How many bytes of the input have been consumed (from the first byte of the CAR).
    pub fn bytes_read(&self) -> u64 {
        self.src.pos
    }

    /// The next section's CID and bytes, without checking that the bytes hash to the CID.
    /// `Ok(None)` at the end of the CAR.
    ///
    /// For blocks whose hash function ipfs-kit cannot compute, or when the caller verifies
    /// later; everything else should use [`CarReader::next_block`].
    pub fn next_raw(&mut self) -> Result<Option<(Cid, Bytes)>> {
        match self.state {
            State::Reading => {}
            State::Done => return Ok(None),
            State::Failed => return Err(Error::Stopped),
        }
        let result = self.read_section();
        match &result {
            Ok(None) => self.state = State::Done,
            Err(e) if !e.is_recoverable() => self.state = State::Failed,
            _ => {}
        }
        result
    }

    /// The next block, verified against its CID. `Ok(None)` at the end of the CAR.
    ///
    /// A block that fails verification gives [`Error::HashMismatch`] or
    /// [`Error::UnsupportedHash`] naming its CID; the reader then stays usable and the next call
    /// reads the following section.
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        let Some((cid, data)) = self.next_raw()? else {
            return Ok(None);
        };
        match Block::new(cid, data) {
            Ok(block) => Ok(Some(block)),
            Err(ipfs_kit_block::Error::HashMismatch) => Err(Error::HashMismatch(cid)),
            Err(ipfs_kit_block::Error::UnsupportedHash(code)) => {
                Err(Error::UnsupportedHash { cid, code })
            }
            // Block::new reports nothing else today; keep any future error tied to the CID.
            Err(e) => Err(Error::InvalidSection(format!("block {cid}: {e}"))),
        }
    }

    fn read_section(&mut self) -> Result<Option<(Cid, Bytes)>> {
        let start = self.src.pos;
        let Some(len) = self.src.varint(Part::Section)? else {
            if let Some(end) = self.src.end {
                if self.src.pos < end {
                    return Err(Error::Truncated(format!(
                        "the input ends at offset {}, before the end of the car v2 data payload \
                         at offset {end}",
                        self.src.pos
                    )));
                }
            }
            return Ok(None);
        };
        if len == 0 {
            if self.config.zero_length_section_as_eof {
                return Ok(None);
            }
            return Err(Error::InvalidSection(format!(
                "zero-length section at offset {start}"
            )));
        }
        let limit = self.config.max_block_len.saturating_add(MAX_CID_LEN);
        if len > limit {
            return Err(Error::TooLarge {
                what: "car section",
                len,
                limit,
            });
        }
        let buf = self.src.bytes(len, "section")?;
        let mut rest = &buf[..];
        let cid = Cid::read_bytes(&mut rest).map_err(|e| {
            Error::InvalidSection(format!(
                "the section at offset {start} does not start with a valid cid: {e}"
            ))
        })?;
        let data_len = rest.len();
        if data_len as u64 > self.config.max_block_len {
            return Err(Error::TooLarge {
                what: "block",
                len: data_len as u64,
                limit: self.config.max_block_len,
            });
        }
        let cid_len = buf.len() - data_len;
        let data = Bytes::from(buf).slice(cid_len..);
        Ok(Some((cid, data)))
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<Block>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state != State::Reading {
            return None;
        }
        self.next_block().transpose()
    }
}

impl<R: Read> FusedIterator for CarReader<R> {}

impl<R> std::fmt::Debug for CarReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarReader")
            .field("header", &self.header)
            .field("v2", &self.v2)
            .field("pos", &self.src.pos)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CarWriter;
    use ipfs_kit_block::dagpb::put_varint;
    use ipfs_kit_block::{codec, HashAlg, Multihash, IDENTITY};
    use proptest::prelude::*;

    fn raw(data: &[u8]) -> Block {
        Block::encode(codec::RAW, HashAlg::Sha2_256, 1, data.to_vec())
    }

    fn identity(data: &[u8]) -> Block {
        let mh = Multihash::<64>::wrap(IDENTITY, data).unwrap();
        Block::new(Cid::new_v1(codec::RAW, mh), data.to_vec()).unwrap()
    }

    fn sample_blocks() -> Vec<Block> {
        vec![
            raw(b"first block"),
            Block::encode(codec::DAG_PB, HashAlg::Sha2_256, 0, b"\x0a\x02hi".to_vec()),
            Block::encode(codec::DAG_CBOR, HashAlg::Blake3, 1, vec![0xa0]),
            raw(b""),
            identity(b"inline"),
        ]
    }

    fn write_car(roots: &[Cid], blocks: &[Block]) -> Vec<u8> {
        let mut w = CarWriter::new(Vec::new(), roots).unwrap();
        for b in blocks {
            w.write_block(b).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<(CarReader<&[u8]>, Vec<Block>)> {
        let mut r = CarReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(b) = r.next_block()? {
            out.push(b);
        }
        Ok((r, out))
    }

    /// A CARv2 around `v1`: pragma, header, `pad` zero bytes, the payload, then index-like junk.
    fn wrap_v2(v1: &[u8], pad: usize, trailing: &[u8]) -> Vec<u8> {
        let data_offset = (CARV2_PRAGMA.len() + CarV2Header::LEN + pad) as u64;
        let mut out = CARV2_PRAGMA.to_vec();
        let mut chars = [0u8; 16];
        chars[7] = 0x80;
        out.extend_from_slice(&chars);
        out.extend_from_slice(&data_offset.to_le_bytes());
        out.extend_from_slice(&(v1.len() as u64).to_le_bytes());
        let index_offset = if trailing.is_empty() {
            0
        } else {
            data_offset + v1.len() as u64 + 3
        };
        out.extend_from_slice(&index_offset.to_le_bytes());
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend_from_slice(v1);
        if !trailing.is_empty() {
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(trailing);
        }
        out
    }

    /// Offsets of every section boundary (end of header, end of each section) of a CARv1.
    fn boundaries(car: &[u8]) -> Vec<usize> {
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < car.len() {
            let len = ipfs_kit_block::dagpb::get_varint(car, &mut pos).unwrap();
            pos += len as usize;
            out.push(pos);
        }
        out
    }

    #[test]
    fn round_trip() {
        let blocks = sample_blocks();
        let roots = [*blocks[0].cid(), *blocks[1].cid()];
        let car = write_car(&roots, &blocks);
        let (r, back) = read_all(&car).unwrap();
        assert_eq!(r.version(), 1);
        assert_eq!(r.roots(), &roots);
        assert!(r.v2_header().is_none());
        assert_eq!(r.bytes_read(), car.len() as u64);
        assert_eq!(back, blocks);
        // The dag-pb block went through as a CIDv0 (the bare 0x12 0x20 multihash).
        assert_eq!(back[1].cid().to_bytes()[..2], [0x12, 0x20]);
    }

    #[test]
    fn empty_roots_and_no_blocks() {
        let car = write_car(&[], &[]);
        let (r, back) = read_all(&car).unwrap();
        assert!(r.roots().is_empty());
        assert!(back.is_empty());
    }

    #[test]
    fn iterator_and_raw_agree() {
        let blocks = sample_blocks();
        let car = write_car(&[*blocks[0].cid()], &blocks);
        let via_iter: Vec<Block> = CarReader::new(&car[..])
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(via_iter, blocks);
        let mut r = CarReader::new(&car[..]).unwrap();
        let mut raws = Vec::new();
        while let Some((cid, data)) = r.next_raw().unwrap() {
            raws.push((cid, data));
        }
        let expect: Vec<_> = blocks.into_iter().map(Block::into_parts).collect();
        assert_eq!(raws, expect);
        assert!(r.next_raw().unwrap().is_none());
    }

    #[test]
    fn reads_v2_with_padding_and_index() {
        let blocks = sample_blocks();
        let roots = [*blocks[2].cid()];
        let v1 = write_car(&roots, &blocks);
        for (pad, trailing) in [(0, &b""[..]), (13, &b"\x80\x08index bytes"[..])] {
            let car = wrap_v2(&v1, pad, trailing);
            let (r, back) = read_all(&car).unwrap();
            assert_eq!(r.version(), 2);
            assert_eq!(r.roots(), &roots);
            assert_eq!(back, blocks);
            let h = r.v2_header().unwrap();
            assert_eq!(h.data_size, v1.len() as u64);
            assert_eq!(h.data_offset, 51 + pad as u64);
            assert_eq!(h.characteristics[7], 0x80);
            // It stops at the end of the payload and never touches the index.
            assert_eq!(r.bytes_read(), h.data_offset + h.data_size);
        }
    }

    #[test]
    fn v2_payload_shorter_than_declared_is_truncated() {
        let v1 = write_car(&[], &sample_blocks());
        let mut car = wrap_v2(&v1, 0, b"");
        // Declare one byte more than the payload has.
        car[11 + 24..11 + 32].copy_from_slice(&(v1.len() as u64 + 1).to_le_bytes());
        let err = read_all(&car).unwrap_err();
        assert!(matches!(err, Error::Truncated(_)), "{err}");
        // Declare one byte less: the last section crosses the payload end.
        car[11 + 24..11 + 32].copy_from_slice(&(v1.len() as u64 - 1).to_le_bytes());
        let err = read_all(&car).unwrap_err();
        assert!(matches!(err, Error::Truncated(_)), "{err}");
        assert!(err.to_string().contains("car v2 data payload"), "{err}");
    }

    #[test]
    fn v2_bad_offsets_are_rejected() {
        let v1 = write_car(&[], &[]);
        let mut car = wrap_v2(&v1, 0, b"");
        car[11 + 16..11 + 24].copy_from_slice(&50u64.to_le_bytes());
        let err = CarReader::new(&car[..]).unwrap_err();
        assert!(matches!(err, Error::InvalidHeader(_)), "{err}");
        car[11 + 16..11 + 24].copy_from_slice(&51u64.to_le_bytes());
        car[11 + 24..11 + 32].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = CarReader::new(&car[..]).unwrap_err();
        assert!(matches!(err, Error::InvalidHeader(_)), "{err}");
        // A CARv2 nested in a CARv2 is not a CARv1 payload.
        let nested = wrap_v2(&wrap_v2(&v1, 0, b""), 0, b"");
        let err = CarReader::new(&nested[..]).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion(2)), "{err}");
        // Zero data size: not even a header.
        let mut car = wrap_v2(&v1, 0, b"");
        car[11 + 24..11 + 32].copy_from_slice(&0u64.to_le_bytes());
        let err = CarReader::new(&car[..]).unwrap_err();
        assert!(matches!(err, Error::Truncated(_)), "{err}");
    }

    #[test]
    fn every_truncation_of_a_v1_errors_unless_at_a_section_boundary() {
        let blocks = sample_blocks();
        let car = write_car(&[*blocks[0].cid()], &blocks);
        let bounds = boundaries(&car);
        for cut in 0..car.len() {
            match read_all(&car[..cut]) {
                Err(e) => {
                    assert!(
                        !bounds.contains(&cut),
                        "cut {cut} at a boundary failed: {e}"
                    );
                    assert!(
                        matches!(e, Error::Truncated(_)),
                        "cut {cut}: expected truncation, got {e}"
                    );
                    assert!(e.to_string().starts_with("truncated car: "), "{e}");
                }
                Ok((_, got)) => {
                    // A CARv1 has no length: a cut between sections is a shorter valid CAR.
                    let at = bounds.iter().position(|b| *b == cut);
                    assert!(at.is_some(), "cut {cut} read without error");
                    assert_eq!(got[..], blocks[..at.unwrap_or(0)]);
                }
            }
        }
    }

    #[test]
    fn every_truncation_of_a_v2_payload_errors() {
        let blocks = sample_blocks();
        let v1 = write_car(&[*blocks[0].cid()], &blocks);
        let car = wrap_v2(&v1, 5, b"\x80\x08trailing index");
        let data_end = 51 + 5 + v1.len();
        for cut in 0..data_end {
            let err = read_all(&car[..cut]).unwrap_err();
            assert!(matches!(err, Error::Truncated(_)), "cut {cut}: {err}");
        }
        // Cutting into the index does not matter: it is never read.
        for cut in data_end..=car.len() {
            assert_eq!(read_all(&car[..cut]).unwrap().1, blocks);
        }
    }

    #[test]
    fn tampered_block_is_a_hash_mismatch_and_reading_goes_on() {
        let blocks = vec![raw(b"aaaa"), raw(b"bbbb"), identity(b"cccc")];
        let mut car = write_car(&[], &blocks);
        // The last byte of the first block's data.
        let first_end = boundaries(&car)[1];
        car[first_end - 1] ^= 1;
        let mut r = CarReader::new(&car[..]).unwrap();
        match r.next_block() {
            Err(Error::HashMismatch(cid)) => assert_eq!(cid, *blocks[0].cid()),
            other => panic!("expected a hash mismatch, got {other:?}"),
        }
        assert_eq!(r.next_block().unwrap().as_ref(), Some(&blocks[1]));
        assert_eq!(r.next_block().unwrap().as_ref(), Some(&blocks[2]));
        assert!(r.next_block().unwrap().is_none());

        // An identity CID whose data differs from its digest also mismatches.
        let mut car = write_car(&[], &blocks[2..]);
        let last = car.len() - 1;
        car[last] ^= 1;
        assert!(matches!(
            read_all(&car),
            Err(Error::HashMismatch(cid)) if cid == *blocks[2].cid()
        ));
    }

    #[test]
    fn unsupported_hash_reads_raw() {
        // keccak-256: a hash function ipfs-kit does not compute.
        const KECCAK_256: u64 = 0x1b;
        assert!(HashAlg::from_code(KECCAK_256).is_none());
        let mh = Multihash::<64>::wrap(KECCAK_256, &[7u8; 32]).unwrap();
        let cid = Cid::new_v1(codec::DAG_CBOR, mh);
        let mut w = CarWriter::new(Vec::new(), &[cid]).unwrap();
        w.write(&cid, &[0xa0]).unwrap();
        let car = w.finish().unwrap();
        let mut r = CarReader::new(&car[..]).unwrap();
        let err = r.next_block().unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedHash { code: KECCAK_256, cid: c } if c == cid),
            "{err}"
        );
        assert!(err.is_recoverable());
        assert!(r.next_block().unwrap().is_none());
        let mut r = CarReader::new(&car[..]).unwrap();
        assert_eq!(
            r.next_raw().unwrap(),
            Some((cid, Bytes::from_static(&[0xa0])))
        );
    }

    fn car_with_section(section: &[u8]) -> Vec<u8> {
        let mut car = write_car(&[], &[]);
        put_varint(&mut car, section.len() as u64);
        car.extend_from_slice(section);
        car
    }

    #[test]
    fn bad_sections() {
        let mut zero = write_car(&[], &[raw(b"x")]);
        zero.push(0);
        let y = write_car(&[], &[raw(b"y")]);
        zero.extend_from_slice(&y[boundaries(&y)[0]..]);
        let err = read_all(&zero).unwrap_err();
        assert!(matches!(err, Error::InvalidSection(_)), "{err}");
        assert!(err.to_string().contains("zero-length section"), "{err}");
        // After a fatal error the reader is stopped.
        let mut r = CarReader::new(&zero[..]).unwrap();
        r.next_block().unwrap();
        assert!(r.next_block().is_err());
        assert!(matches!(r.next_block(), Err(Error::Stopped)));
        let mut r = CarReader::new(&zero[..]).unwrap();
        assert!(r.nth(1).unwrap().is_err());
        assert!(r.next().is_none());

        let lenient = ReaderConfig::default().with_zero_length_section_as_eof(true);
        let mut zero_padded = zero.clone();
        zero_padded.extend_from_slice(&[0; 10]);
        let mut r = CarReader::with_config(&zero_padded[..], lenient).unwrap();
        assert_eq!(r.next_block().unwrap(), Some(raw(b"x")));
        assert!(r.next_block().unwrap().is_none());

        // Not a CID.
        let err = read_all(&car_with_section(&[0x05, 0x00, 0x01])).unwrap_err();
        assert!(matches!(err, Error::InvalidSection(_)), "{err}");
        // A CIDv0 prefix cut short inside the section.
        let err = read_all(&car_with_section(&[0x12, 0x20, 1, 2, 3])).unwrap_err();
        assert!(matches!(err, Error::InvalidSection(_)), "{err}");
        // Explicit version 0 is not allowed.
        let err = read_all(&car_with_section(&[0x00, 0x70, 0x12, 0x00])).unwrap_err();
        assert!(matches!(err, Error::InvalidSection(_)), "{err}");
        // A length varint that never ends.
        let mut car = write_car(&[], &[]);
        car.extend_from_slice(&[0xff; 11]);
        let err = read_all(&car).unwrap_err();
        assert!(matches!(err, Error::InvalidSection(_)), "{err}");
    }

    #[test]
    fn lengths_are_bounded() {
        let mut car = write_car(&[], &[]);
        put_varint(&mut car, u64::MAX);
        let err = read_all(&car).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    what: "car section",
                    ..
                }
            ),
            "{err}"
        );

        let config = ReaderConfig::default().with_max_block_len(4);
        let car = write_car(&[], &[raw(b"1234"), raw(b"12345")]);
        let mut r = CarReader::with_config(&car[..], config.clone()).unwrap();
        assert!(r.next_block().unwrap().is_some());
        let err = r.next_block().unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    what: "block",
                    len: 5,
                    limit: 4
                }
            ),
            "{err}"
        );
        // A section longer than block + cid room is refused before reading it.
        let big = write_car(&[], &[raw(&[0u8; 200])]);
        let err = read_all_with(&big, config).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    what: "car section",
                    ..
                }
            ),
            "{err}"
        );

        let mut header = Vec::new();
        put_varint(&mut header, DEFAULT_MAX_HEADER_LEN + 1);
        let err = CarReader::new(&header[..]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    what: "car header",
                    ..
                }
            ),
            "{err}"
        );
        let small = ReaderConfig::default().with_max_header_len(8);
        let car = write_car(&[*raw(b"x").cid()], &[]);
        assert!(CarReader::with_config(&car[..], small).is_err());
    }

    fn read_all_with(bytes: &[u8], config: ReaderConfig) -> Result<Vec<Block>> {
        CarReader::with_config(bytes, config)?.collect()
    }

    #[test]
    fn bad_headers() {
        let err = CarReader::new(&[][..]).unwrap_err();
        assert!(matches!(err, Error::Truncated(_)), "{err}");
        let err = CarReader::new(&[0x00][..]).unwrap_err();
        assert!(matches!(err, Error::InvalidHeader(_)), "{err}");
        let err = CarReader::new(&[0x02, 0xa0, 0x00][..]).unwrap_err();
        assert!(matches!(err, Error::InvalidHeader(_)), "{err}");
        // The bare pragma with nothing after it.
        let err = CarReader::new(&CARV2_PRAGMA[..]).unwrap_err();
        assert!(matches!(err, Error::Truncated(_)), "{err}");
        // A version 2 header that is not the exact pragma.
        let mut h = CarHeader::new(vec![]);
        h.version = 2;
        let mut car = Vec::new();
        let enc = h.encode();
        put_varint(&mut car, enc.len() as u64);
        car.extend_from_slice(&enc);
        let err = CarReader::new(&car[..]).unwrap_err();
        assert!(matches!(err, Error::UnsupportedVersion(2)), "{err}");
    }

    /// A reader that hands out one byte per call, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn reads_from_a_trickling_stream() {
        let blocks = sample_blocks();
        let car = wrap_v2(&write_car(&[], &blocks), 3, b"junk");
        let r = CarReader::new(Trickle(&car)).unwrap();
        assert_eq!(r.collect::<Result<Vec<_>>>().unwrap(), blocks);
    }

    fn arb_block() -> impl Strategy<Value = Block> {
        (
            proptest::collection::vec(any::<u8>(), 0..2048),
            prop_oneof![Just(codec::RAW), Just(codec::DAG_PB), Just(codec::DAG_CBOR)],
            prop_oneof![Just(HashAlg::Sha2_256), Just(HashAlg::Blake3)],
            0u8..2,
            any::<bool>(),
        )
            .prop_map(|(data, codec, hash, version, inline)| {
                if inline && data.len() <= 64 {
                    identity(&data)
                } else {
                    Block::encode(codec, hash, version, data)
                }
            })
    }

    proptest! {
        #[test]
        fn random_blocks_round_trip(
            blocks in proptest::collection::vec(arb_block(), 0..12),
            nroots in 0usize..3,
            v2 in any::<bool>(),
        ) {
            let roots: Vec<Cid> = blocks.iter().take(nroots).map(|b| *b.cid()).collect();
            let mut car = write_car(&roots, &blocks);
            if v2 {
                car = wrap_v2(&car, 7, b"idx");
            }
            let (r, back) = read_all(&car).unwrap();
            prop_assert_eq!(r.roots(), &roots[..]);
            prop_assert_eq!(back, blocks);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(r) = CarReader::new(&bytes[..]) {
                for item in r {
                    let _ = item;
                }
            }
        }

        #[test]
        fn mutated_cars_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            v2 in any::<bool>(),
        ) {
            let mut car = write_car(&[*raw(b"r").cid()], &sample_blocks());
            if v2 {
                car = wrap_v2(&car, 2, b"i");
            }
            for (at, byte) in flips {
                let i = at.index(car.len());
                car[i] = byte;
            }
            if let Ok(mut r) = CarReader::new(&car[..]) {
                while let Ok(Some(_)) = r.next_raw() {}
            }
        }
    }
}
