//! Kubo's rabin chunker: a Rabin fingerprint of a 16-byte window over GF(2) modulo a fixed
//! degree-53 polynomial; a chunk ends at the first length from `min` on where the fingerprint's
//! low `log2(avg)` bits are zero, or at `max`.

use std::io::{self, Read};

use super::Buffer;

/// The irreducible polynomial Kubo's rabin chunker uses.
const POLY: u64 = 0x003D_F305_DFB2_A805;
const DEGREE: u32 = 53;
const WINDOW: usize = 16;

/// The residue of `x` modulo [`POLY`] (carry-less).
fn poly_mod(mut x: u128) -> u64 {
    let p = u128::from(POLY);
    while x != 0 && 127 - x.leading_zeros() >= DEGREE {
        let shift = 127 - x.leading_zeros() - DEGREE;
        x ^= p << shift;
    }
    x as u64
}

/// A rabin chunker over one stream.
pub struct Rabin {
    params: Params,
    buf: Buffer,
}

struct Params {
    min: usize,
    max: usize,
    mask: u64,
    /// `out[b]` = b * x^(8 * (WINDOW - 1)) mod P: the weight of the byte leaving the window.
    out: Box<[u64; 256]>,
    /// `reduce[i]` clears the 8 bits shifted above the degree and adds their residue.
    reduce: Box<[u64; 256]>,
}

impl Rabin {
    /// A chunker with the given sizes (`min >= 16` and `min <= avg <= max` are checked by the
    /// chunker string parser).
    pub fn new(min: usize, avg: usize, max: usize) -> Self {
        let bits = usize::BITS - 1 - avg.max(1).leading_zeros();
        let mut out = Box::new([0u64; 256]);
        let mut reduce = Box::new([0u64; 256]);
        for b in 0..256u64 {
            out[b as usize] = poly_mod(u128::from(b) << (8 * (WINDOW - 1)));
            reduce[b as usize] = poly_mod(u128::from(b) << DEGREE) | (b << DEGREE);
        }
        Rabin {
            params: Params {
                min: min.max(WINDOW),
                max,
                mask: (1u64 << bits) - 1,
                out,
                reduce,
            },
            buf: Buffer::default(),
        }
    }

    /// The next chunk, or `None` at the end.
    pub fn next_chunk(&mut self, r: &mut dyn Read) -> io::Result<Option<super::Chunk>> {
        let data = self.buf.fill(r, self.params.max)?;
        if data.is_empty() {
            return Ok(None);
        }
        let cut = self.params.cut_point(data);
        Ok(Some(self.buf.take(cut)))
    }
}

impl Params {
    fn push(&self, d: u64, byte: u8) -> u64 {
        ((d << 8) | u64::from(byte)) ^ self.reduce[(d >> (DEGREE - 8)) as usize]
    }

    /// Length of the first chunk of `data` (which holds at most `max` bytes).
    fn cut_point(&self, data: &[u8]) -> usize {
        if data.len() <= self.min {
            return data.len();
        }
        let mut d = 0u64;
        for b in &data[self.min - WINDOW..self.min] {
            d = self.push(d, *b);
        }
        let mut len = self.min;
        loop {
            if len >= self.max || d & self.mask == 0 {
                return len;
            }
            if len >= data.len() {
                return data.len();
            }
            d ^= self.out[usize::from(data[len - WINDOW])];
            d = self.push(d, data[len]);
            len += 1;
        }
    }
}
