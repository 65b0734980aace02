//! `get` as a tar stream, the way Kubo's RPC API sends it.
//!
//! Plain USTAR headers with whole-second mtimes, so the first entry's data starts at byte 512:
//! every tar reader accepts that, and clients check for it. A PAX extended header is written
//! only for an entry that USTAR cannot describe (a path or link target too long for its fields,
//! a size past 8 GiB), never by default as Go's writer does when times carry nanoseconds.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use ipfs_kit_block::Cid;
use ipfs_kit_unixfs::reader::{self, FileReader};
use ipfs_kit_unixfs::Kind;

use crate::{Error, IpfsPath, Repo};

const BLOCK: usize = 512;
/// The largest size the 11 octal digits of a USTAR size field hold.
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// One entry's header fields.
struct Header<'a> {
    path: &'a str,
    kind: u8,
    size: u64,
    mode: u32,
    mtime: u64,
    link: &'a str,
}

impl Repo {
    /// Writes the file, directory or symlink at `path` to `out` as a tar stream. The root entry
    /// is named after the path's last segment (the CID for a bare CID), as Kubo names it.
    pub fn get_tar(&self, path: &str, out: &mut dyn Write) -> Result<(), Error> {
        let p: IpfsPath = path.parse()?;
        let name = p
            .segments
            .last()
            .cloned()
            .unwrap_or_else(|| p.root.to_string());
        let cid = self.resolve(path)?;
        let _prefetch = self.prefetch(&cid);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.tar_node(&cid, &name, now, out)?;
        out.write_all(&[0; 2 * BLOCK])
            .map_err(|e| Error::io("write tar", e))
    }

    fn tar_node(&self, cid: &Cid, path: &str, now: u64, out: &mut dyn Write) -> Result<(), Error> {
        let stat = reader::stat(self, cid)?;
        let mtime = stat
            .mtime
            .and_then(|(s, _)| u64::try_from(s).ok())
            .unwrap_or(now);
        let default_mode = match stat.kind {
            Kind::Directory => 0o755,
            Kind::Symlink => 0o777,
            Kind::File | Kind::Other => 0o644,
        };
        let mut header = Header {
            path,
            kind: b'0',
            size: 0,
            mode: stat.mode.map_or(default_mode, |m| m & 0o7777),
            mtime,
            link: "",
        };
        match stat.kind {
            Kind::Directory => {
                header.kind = b'5';
                write_header(&header, out)?;
                for entry in reader::list(self, cid)? {
                    if entry.name.is_empty()
                        || entry.name == "."
                        || entry.name == ".."
                        || entry.name.contains('/')
                    {
                        return Err(Error::Invalid(format!(
                            "directory {cid} has an entry named {:?}, which a tar path cannot hold",
                            entry.name
                        )));
                    }
                    self.tar_node(&entry.cid, &format!("{path}/{}", entry.name), now, out)?;
                }
            }
            Kind::Symlink => {
                let target = stat.target.unwrap_or_default();
                header.kind = b'2';
                header.link = &target;
                write_header(&header, out)?;
            }
            Kind::File | Kind::Other => {
                let data = if stat.kind == Kind::Other {
                    Some(self.block_bytes(cid)?)
                } else {
                    None
                };
                header.size = data.as_ref().map_or(stat.filesize, |d| d.len() as u64);
                write_header(&header, out)?;
                let mut written = 0u64;
                let mut put = |bytes: &[u8]| {
                    written += bytes.len() as u64;
                    out.write_all(bytes).map_err(|e| Error::io("write tar", e))
                };
                match data {
                    Some(d) => put(&d)?,
                    None => {
                        let (threads, _busy) = self.threads();
                        for chunk in FileReader::new(self, cid, 0, None).with_threads(threads) {
                            put(&chunk?)?;
                        }
                    }
                }
                if written != header.size {
                    return Err(Error::Invalid(format!(
                        "file {cid} holds {written} bytes but its UnixFS size says {}",
                        header.size
                    )));
                }
                let pad = (BLOCK - (written % BLOCK as u64) as usize) % BLOCK;
                out.write_all(&[0; BLOCK][..pad])
                    .map_err(|e| Error::io("write tar", e))?;
            }
        }
        Ok(())
    }
}

/// Splits a path into USTAR's prefix (155 bytes) and name (100 bytes) at a slash, if it fits.
fn split_ustar(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    let bytes = path.as_bytes();
    (0..bytes.len().min(156))
        .rev()
        .filter(|&i| bytes[i] == b'/')
        .map(|i| (&path[..i], &path[i + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && !name.is_empty() && name.len() <= 100)
}

/// Writes `value` as zero-padded octal filling `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    let s = &s.as_bytes()[s.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(s);
    field[digits] = 0;
}

fn write_header(h: &Header<'_>, out: &mut dyn Write) -> Result<(), Error> {
    let split = split_ustar(h.path);
    let mut pax = String::new();
    if split.is_none() {
        pax_record(&mut pax, "path", h.path);
    }
    if h.link.len() > 100 {
        pax_record(&mut pax, "linkpath", h.link);
    }
    if h.size > USTAR_MAX_SIZE {
        pax_record(&mut pax, "size", &h.size.to_string());
    }
    if !pax.is_empty() {
        let name = format!("PaxHeaders.0/{}", short(h.path, 80));
        let ext = Header {
            path: &name,
            kind: b'x',
            size: pax.len() as u64,
            mode: 0o644,
            mtime: h.mtime,
            link: "",
        };
        out.write_all(&ustar_block(&ext, Some(("", &name))))
            .map_err(|e| Error::io("write tar", e))?;
        let pad = (BLOCK - pax.len() % BLOCK) % BLOCK;
        out.write_all(pax.as_bytes())
            .and_then(|()| out.write_all(&[0; BLOCK][..pad]))
            .map_err(|e| Error::io("write tar", e))?;
    }
    out.write_all(&ustar_block(h, split))
        .map_err(|e| Error::io("write tar", e))
}

/// The last `max` bytes of `s` (at a char boundary), for names that only need to be readable.
fn short(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record itself.
fn pax_record(out: &mut String, key: &str, value: &str) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    out.push_str(&format!("{len} {key}={value}\n"));
}

fn ustar_block(h: &Header<'_>, split: Option<(&str, &str)>) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    // Fields USTAR cannot hold were put in a PAX header; these are then only fallbacks.
    let (prefix, name) = split.unwrap_or(("", short(h.path, 100)));
    b[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut b[100..108], u64::from(h.mode));
    octal(&mut b[108..116], 0);
    octal(&mut b[116..124], 0);
    octal(&mut b[124..136], h.size.min(USTAR_MAX_SIZE));
    octal(&mut b[136..148], h.mtime.min(0o777_7777_7777));
    b[156] = h.kind;
    let link = short(h.link, 100);
    b[157..157 + link.len()].copy_from_slice(link.as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // The checksum is computed with its own field read as spaces.
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for value in ["a", &"x".repeat(90), &"y".repeat(994), &"z".repeat(9_990)] {
            let mut s = String::new();
            pax_record(&mut s, "path", value);
            let (len, _) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), s.len(), "{s:.40}");
        }
    }

    #[test]
    fn long_paths_split_at_a_slash_or_need_pax() {
        let long = format!("{}/{}", "d".repeat(150), "f".repeat(99));
        assert_eq!(split_ustar(&long), Some((&long[..150], &long[151..])));
        assert!(split_ustar(&"f".repeat(101)).is_none());
        assert_eq!(split_ustar("a/b"), Some(("", "a/b")));
    }

    #[test]
    fn header_checksum_is_what_readers_expect() {
        let h = Header {
            path: "a.txt",
            kind: b'0',
            size: 4,
            mode: 0o644,
            mtime: 1_700_000_000,
            link: "",
        };
        let b = ustar_block(&h, split_ustar(h.path));
        let stored = u32::from_str_radix(std::str::from_utf8(&b[148..154]).unwrap(), 8).unwrap();
        let mut copy = b;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&x| u32::from(x)).sum::<u32>());
        assert_eq!(&b[257..262], b"ustar");
        assert_eq!(&b[124..135], b"00000000004");
    }
}
