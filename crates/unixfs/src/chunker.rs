//! Chunkers: split a byte stream into the leaves of a file DAG.
//!
//! The chunker string uses Kubo's syntax (`size-N`, `rabin`, `rabin-AVG`, `rabin-MIN-AVG-MAX`,
//! `buzhash`), and the boundaries it picks are Kubo's, since they decide the CIDs.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use crate::Error;

mod buzhash;
mod rabin;

/// The largest chunk any chunker may produce (Kubo's limit: a block must fit a bitswap message).
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;
/// Kubo's default chunk size.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// A parsed chunker setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkerSpec {
    /// Fixed-size chunks of this many bytes.
    Size(usize),
    /// Rabin fingerprinting content-defined chunks.
    Rabin {
        /// Minimum chunk size.
        min: usize,
        /// Target average chunk size.
        avg: usize,
        /// Maximum chunk size.
        max: usize,
    },
    /// Buzhash content-defined chunks (Kubo's fixed parameters).
    Buzhash,
}

impl Default for ChunkerSpec {
    fn default() -> Self {
        ChunkerSpec::Size(DEFAULT_CHUNK_SIZE)
    }
}

impl fmt::Display for ChunkerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkerSpec::Size(n) => write!(f, "size-{n}"),
            ChunkerSpec::Rabin { min, avg, max } => write!(f, "rabin-{min}-{avg}-{max}"),
            ChunkerSpec::Buzhash => write!(f, "buzhash"),
        }
    }
}

fn chunker_err(s: &str, why: &str) -> Error {
    Error::Chunker(format!("{s:?}: {why}"))
}

fn parse_size(s: &str, part: &str) -> Result<usize, Error> {
    part.parse::<usize>()
        .map_err(|_| chunker_err(s, &format!("{part:?} is not a byte count")))
}

impl FromStr for ChunkerSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let check_max = |n: usize| {
            if n > MAX_CHUNK_SIZE {
                Err(chunker_err(
                    s,
                    &format!("chunk sizes may not exceed {MAX_CHUNK_SIZE} bytes"),
                ))
            } else {
                Ok(n)
            }
        };
        if s.is_empty() || s == "default" {
            return Ok(ChunkerSpec::default());
        }
        if let Some(n) = s.strip_prefix("size-") {
            let n = parse_size(s, n)?;
            if n == 0 {
                return Err(chunker_err(s, "chunk size must be greater than 0"));
            }
            return Ok(ChunkerSpec::Size(check_max(n)?));
        }
        if s == "buzhash" {
            return Ok(ChunkerSpec::Buzhash);
        }
        if s == "rabin" {
            return Ok(rabin_from_avg(DEFAULT_CHUNK_SIZE));
        }
        if let Some(rest) = s.strip_prefix("rabin-") {
            let parts: Vec<&str> = rest.split('-').collect();
            return match parts.as_slice() {
                [avg] => {
                    let avg = parse_size(s, avg)?;
                    check_max(avg + avg / 2)?;
                    if avg / 3 < 16 {
                        return Err(chunker_err(s, "rabin min (avg/3) must be at least 16"));
                    }
                    Ok(rabin_from_avg(avg))
                }
                [min, avg, max] => {
                    let (min, avg, max) = (
                        parse_size(s, min)?,
                        parse_size(s, avg)?,
                        check_max(parse_size(s, max)?)?,
                    );
                    if min < 16 {
                        return Err(chunker_err(s, "rabin min must be at least 16"));
                    }
                    if min >= avg {
                        return Err(chunker_err(s, "rabin-min must be smaller than rabin-avg"));
                    }
                    if avg >= max {
                        return Err(chunker_err(s, "rabin-avg must be smaller than rabin-max"));
                    }
                    Ok(ChunkerSpec::Rabin { min, avg, max })
                }
                _ => Err(chunker_err(
                    s,
                    "expected rabin, rabin-AVG or rabin-MIN-AVG-MAX",
                )),
            };
        }
        Err(chunker_err(
            s,
            "unrecognized chunker (expected size-N, rabin[-MIN-AVG-MAX] or buzhash)",
        ))
    }
}

/// Kubo's `rabin-AVG`: min = avg/3, max = avg + avg/2.
fn rabin_from_avg(avg: usize) -> ChunkerSpec {
    ChunkerSpec::Rabin {
        min: avg / 3,
        avg,
        max: avg + avg / 2,
    }
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Bytes reserved in front of every chunk, so that a leaf's protobuf header can be written in
/// place and the leaf block shares the chunk's allocation (no copy of the data).
pub const HEADROOM: usize = 16;

/// One chunk of a stream, with [`HEADROOM`] spare bytes in front of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    buf: Vec<u8>,
}

impl Chunk {
    /// A chunk holding a copy of `data`.
    pub fn from_slice(data: &[u8]) -> Self {
        let mut buf = Vec::with_capacity(HEADROOM + data.len() + 8);
        buf.resize(HEADROOM, 0);
        buf.extend_from_slice(data);
        Chunk { buf }
    }

    /// The chunk's bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[HEADROOM..]
    }

    /// The chunk's length.
    pub fn len(&self) -> usize {
        self.buf.len() - HEADROOM
    }

    /// Whether the chunk is empty (chunkers never produce one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer: `HEADROOM` spare bytes, then the data.
    pub(crate) fn into_buf(self) -> Vec<u8> {
        self.buf
    }
}

/// Read-ahead for content-defined chunkers, which must see up to `max` bytes to pick a cut.
#[derive(Default)]
struct Buffer {
    data: Vec<u8>,
    start: usize,
    eof: bool,
}

impl Buffer {
    /// The unconsumed bytes, topped up from `r` to `want` bytes unless the stream ended.
    fn fill(&mut self, r: &mut dyn Read, want: usize) -> io::Result<&[u8]> {
        if self.start > 0 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        if self.data.len() < want && !self.eof {
            let have = self.data.len();
            self.data.resize(want, 0);
            let got = read_full(r, &mut self.data[have..])?;
            self.data.truncate(have + got);
            self.eof = have + got < want;
        }
        let n = self.data.len().min(want);
        Ok(&self.data[..n])
    }

    /// Consumes and returns the next `n` bytes.
    fn take(&mut self, n: usize) -> Chunk {
        let out = Chunk::from_slice(&self.data[self.start..self.start + n]);
        self.start += n;
        out
    }
}

/// A running chunker over one stream.
pub enum Chunker {
    /// Fixed size.
    Size(usize),
    /// Rabin fingerprinting.
    Rabin(rabin::Rabin),
    /// Buzhash.
    Buzhash(buzhash::Buzhash),
}

impl Chunker {
    /// Starts a chunker for `spec`.
    pub fn new(spec: ChunkerSpec) -> Result<Self, Error> {
        Ok(match spec {
            ChunkerSpec::Size(n) => Chunker::Size(n),
            ChunkerSpec::Rabin { min, avg, max } => {
                Chunker::Rabin(rabin::Rabin::new(min, avg, max))
            }
            ChunkerSpec::Buzhash => Chunker::Buzhash(buzhash::Buzhash::new()),
        })
    }

    /// The next chunk, or `None` at the end of the stream. Never returns an empty chunk.
    pub fn next_chunk(&mut self, r: &mut dyn Read) -> io::Result<Option<Chunk>> {
        match self {
            Chunker::Rabin(c) => c.next_chunk(r),
            Chunker::Buzhash(c) => c.next_chunk(r),
            Chunker::Size(n) => {
                // Room for the leaf trailer too, so finishing the leaf never reallocates; `vec!`
                // of zeros is a zeroed allocation, not a fill loop.
                let mut buf = vec![0u8; HEADROOM + *n + 8];
                let got = read_full(r, &mut buf[HEADROOM..HEADROOM + *n])?;
                if got == 0 {
                    return Ok(None);
                }
                buf.truncate(HEADROOM + got);
                Ok(Some(Chunk { buf }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubo_strings() {
        assert_eq!(
            "size-1000".parse::<ChunkerSpec>().unwrap(),
            ChunkerSpec::Size(1000)
        );
        assert_eq!(
            "".parse::<ChunkerSpec>().unwrap(),
            ChunkerSpec::Size(262144)
        );
        assert_eq!(
            "buzhash".parse::<ChunkerSpec>().unwrap(),
            ChunkerSpec::Buzhash
        );
        assert_eq!(
            "rabin-16-32-64".parse::<ChunkerSpec>().unwrap(),
            ChunkerSpec::Rabin {
                min: 16,
                avg: 32,
                max: 64
            }
        );
        for bad in [
            "size-0",
            "size-x",
            "size-2000000",
            "rabin-1-2",
            "rabin-64-32-16",
            "foo",
            "rabin-1-2-3",
        ] {
            assert!(bad.parse::<ChunkerSpec>().is_err(), "{bad}");
        }
    }

    /// The input of the reference vectors: an LCG's top byte, as the research harness made it.
    fn lcg(n: usize) -> Vec<u8> {
        let mut x: u64 = 1;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect()
    }

    fn sizes(spec: &str, data: &[u8]) -> Vec<usize> {
        let mut c = Chunker::new(spec.parse().unwrap()).unwrap();
        let mut r = data;
        let mut out = vec![];
        while let Some(chunk) = c.next_chunk(&mut r).unwrap() {
            out.push(chunk.len());
        }
        out
    }

    /// Chunk sizes produced by boxo's own chunker code (compiled with Go) on the same input.
    #[test]
    fn content_defined_chunkers_match_boxo() {
        let data = lcg(4 << 20);
        assert_eq!(
            sizes("buzhash", &data),
            [
                155739, 211123, 169579, 266407, 257669, 152829, 211587, 179311, 317109, 163720,
                524288, 222448, 243497, 294111, 524288, 233450, 67149
            ]
        );
        assert_eq!(
            sizes("rabin", &data),
            [
                184165, 114656, 196300, 393216, 151973, 126728, 120823, 344646, 145122, 393216,
                181240, 393216, 389002, 187980, 244319, 355414, 87891, 184397
            ]
        );
        assert_eq!(
            sizes("rabin-262144-524288-1048576", &data),
            [513487, 530510, 1048576, 1048576, 425453, 627702]
        );
        assert_eq!(
            sizes("rabin-16-32-64", &data[..2000]),
            [
                64, 64, 46, 27, 48, 50, 23, 64, 29, 26, 64, 64, 25, 33, 25, 41, 26, 20, 29, 42, 28,
                18, 23, 23, 30, 26, 40, 42, 33, 37, 63, 27, 64, 64, 21, 64, 64, 64, 58, 22, 64, 27,
                20, 32, 64, 18, 32, 59, 27, 28, 8
            ]
        );
        assert_eq!(
            sizes("rabin-512-1024-2048", &data[..65536]),
            [
                627, 1467, 1141, 809, 626, 1521, 682, 1170, 1026, 1776, 875, 1395, 594, 1564, 2048,
                1141, 1712, 1187, 998, 1517, 976, 1806, 624, 855, 604, 723, 662, 724, 1401, 1651,
                2048, 2048, 609, 1563, 656, 525, 2048, 2048, 1084, 1497, 520, 707, 1420, 1465,
                1580, 818, 2048, 791, 628, 1045, 581, 606, 732, 2048, 771, 1748
            ]
        );
    }

    proptest::proptest! {
        /// Any chunker, any input: chunks are non-empty, within the chunker's bounds (the last
        /// may be short), and concatenate back to the input.
        #[test]
        fn chunks_cover_input_within_bounds(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20_000),
            which in 0usize..3,
        ) {
            let (spec, min, max) = match which {
                0 => ("size-1000", 1000, 1000),
                1 => ("rabin-64-256-1024", 64, 1024),
                _ => ("rabin-16-32-64", 16, 64),
            };
            let mut c = Chunker::new(spec.parse().unwrap()).unwrap();
            let mut r = &data[..];
            let mut joined = Vec::new();
            let mut sizes = Vec::new();
            while let Some(chunk) = c.next_chunk(&mut r).unwrap() {
                proptest::prop_assert!(!chunk.is_empty());
                sizes.push(chunk.len());
                joined.extend_from_slice(chunk.data());
            }
            proptest::prop_assert_eq!(&joined, &data);
            let last = sizes.pop();
            proptest::prop_assert!(sizes.iter().all(|s| *s >= min && *s <= max), "{:?}", sizes);
            proptest::prop_assert!(last.is_none_or(|l| l <= max));
        }
    }

    #[test]
    fn buzhash_covers_input() {
        let data = lcg(3 << 20);
        let mut c = Chunker::new(ChunkerSpec::Buzhash).unwrap();
        let mut r = &data[..];
        let mut joined = Vec::new();
        while let Some(chunk) = c.next_chunk(&mut r).unwrap() {
            assert!(chunk.len() <= 512 << 10);
            joined.extend_from_slice(chunk.data());
        }
        assert!(joined == data);
    }

    #[test]
    fn size_chunker_boundaries() {
        for len in [0usize, 1, 999, 1000, 1001, 5000] {
            let data = vec![7u8; len];
            let mut c = Chunker::new(ChunkerSpec::Size(1000)).unwrap();
            let mut r = &data[..];
            let mut sizes = vec![];
            while let Some(chunk) = c.next_chunk(&mut r).unwrap() {
                sizes.push(chunk.len());
            }
            assert_eq!(sizes.iter().sum::<usize>(), len);
            assert!(sizes.iter().all(|s| *s > 0 && *s <= 1000));
            assert!(sizes.iter().rev().skip(1).all(|s| *s == 1000));
        }
    }
}
