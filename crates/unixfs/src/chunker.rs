//! Chunkers: split a byte stream into the leaves of a file DAG.
//!
//! The chunker string uses Kubo's syntax (`size-N`, `rabin`, `rabin-AVG`, `rabin-MIN-AVG-MAX`,
//! `buzhash`), and the boundaries it picks are Kubo's, since they decide the CIDs.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use crate::Error;

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
                    let avg = check_max(parse_size(s, avg)?)?;
                    if avg < 4 {
                        return Err(chunker_err(s, "average size must be at least 4"));
                    }
                    Ok(rabin_from_avg(avg))
                }
                [min, avg, max] => {
                    let (min, avg, max) = (
                        parse_size(s, min)?,
                        parse_size(s, avg)?,
                        check_max(parse_size(s, max)?)?,
                    );
                    if !(min <= avg && avg <= max) {
                        return Err(chunker_err(s, "sizes must satisfy min <= avg <= max"));
                    }
                    if min < 16 {
                        return Err(chunker_err(s, "rabin minimum must be at least 16 bytes"));
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

/// A running chunker over one stream.
pub enum Chunker {
    /// Fixed size.
    Size(usize),
}

impl Chunker {
    /// Starts a chunker for `spec`.
    pub fn new(spec: ChunkerSpec) -> Result<Self, Error> {
        match spec {
            ChunkerSpec::Size(n) => Ok(Chunker::Size(n)),
            other => Err(Error::Chunker(format!(
                "{other}: content-defined chunkers are not supported yet"
            ))),
        }
    }

    /// The next chunk, or `None` at the end of the stream. Never returns an empty chunk.
    pub fn next_chunk(&mut self, r: &mut dyn Read) -> io::Result<Option<Vec<u8>>> {
        match self {
            Chunker::Size(n) => {
                let mut buf = vec![0u8; *n];
                let got = read_full(r, &mut buf)?;
                if got == 0 {
                    return Ok(None);
                }
                buf.truncate(got);
                Ok(Some(buf))
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
