//! Streaming CARv1 writer.

use std::io::{BufWriter, Write};

use ipfs_kit_block::dagpb::put_varint;
use ipfs_kit_block::{Block, Cid};

use crate::header::CarHeader;
use crate::{Error, Result};

/// Writes a CARv1: the header on creation, then one section per [`CarWriter::write`].
///
/// Output goes through an internal [`BufWriter`]; call [`CarWriter::finish`] to flush it and get
/// the writer back. Dropping the writer without `finish` may lose the buffered tail and any write
/// error. The writer does not verify blocks: callers hand it bytes they already trust (a
/// [`Block`] is verified by construction).
pub struct CarWriter<W: Write> {
    out: BufWriter<W>,
    written: u64,
    scratch: Vec<u8>,
}

impl<W: Write> CarWriter<W> {
    /// Starts a CARv1 with `roots` (which may be empty) and writes its header.
    pub fn new(writer: W, roots: &[Cid]) -> Result<Self> {
        let mut w = CarWriter {
            out: BufWriter::new(writer),
            written: 0,
            scratch: Vec::with_capacity(128),
        };
        let header = CarHeader::new(roots.to_vec()).encode();
        w.put_prefixed(&[&header])?;
        Ok(w)
    }

    /// Appends a section holding `data` under `cid`.
    pub fn write(&mut self, cid: &Cid, data: &[u8]) -> Result<()> {
        let cid_bytes = cid.to_bytes();
        self.put_prefixed(&[&cid_bytes, data])
    }

    /// Appends a section holding `block`.
    pub fn write_block(&mut self, block: &Block) -> Result<()> {
        self.write(block.cid(), block.data())
    }

    /// How many bytes of CAR have been written so far (buffered or not).
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Flushes everything and returns the underlying writer.
    pub fn finish(self) -> Result<W> {
        let mut inner = self
            .out
            .into_inner()
            .map_err(|e| Error::Io(e.into_error()))?;
        inner.flush()?;
        Ok(inner)
    }

    /// Writes `varint(total length) | parts...`.
    fn put_prefixed(&mut self, parts: &[&[u8]]) -> Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.scratch.clear();
        put_varint(&mut self.scratch, len as u64);
        self.out.write_all(&self.scratch)?;
        for part in parts {
            self.out.write_all(part)?;
        }
        self.written += (self.scratch.len() + len) as u64;
        Ok(())
    }
}

impl<W: Write> std::fmt::Debug for CarWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarWriter")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfs_kit_block::{codec, HashAlg};
    use std::io;

    #[test]
    fn layout_is_varint_header_then_sections() {
        let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"abc".to_vec());
        let mut w = CarWriter::new(Vec::new(), &[*block.cid()]).unwrap();
        let header_len = w.bytes_written();
        w.write_block(&block).unwrap();
        let total = w.bytes_written();
        let car = w.finish().unwrap();
        assert_eq!(car.len() as u64, total);

        let header = CarHeader::new(vec![*block.cid()]).encode();
        assert_eq!(car[0] as usize, header.len());
        assert_eq!(&car[1..1 + header.len()], &header[..]);
        assert_eq!(header_len as usize, 1 + header.len());

        let section = &car[header_len as usize..];
        let cid_bytes = block.cid().to_bytes();
        assert_eq!(section[0] as usize, cid_bytes.len() + 3);
        assert_eq!(&section[1..1 + cid_bytes.len()], &cid_bytes[..]);
        assert_eq!(&section[1 + cid_bytes.len()..], b"abc");
    }

    #[test]
    fn long_sections_use_multi_byte_varints() {
        let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, vec![9u8; 300]);
        let mut w = CarWriter::new(Vec::new(), &[]).unwrap();
        let start = w.bytes_written() as usize;
        w.write_block(&block).unwrap();
        let car = w.finish().unwrap();
        let mut pos = start;
        let len = ipfs_kit_block::dagpb::get_varint(&car, &mut pos).unwrap();
        assert_eq!(pos - start, 2);
        assert_eq!(len as usize, 36 + 300);
    }

    #[derive(Debug)]
    struct Failing;

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::other("disk full"))
        }
    }

    #[test]
    fn write_errors_surface_on_finish() {
        let w = CarWriter::new(Failing, &[]).unwrap();
        let err = w.finish().unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err}");
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
