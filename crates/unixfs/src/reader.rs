//! Reading UnixFS DAGs back: stat, path resolution, directory listings and file byte streams.

use ipfs_kit_block::dagpb::PbNode;
use ipfs_kit_block::Bytes;
use ipfs_kit_block::{codec, Cid};

use crate::hamt;
use crate::pb::{Data, DataType};
use crate::{BlockSource, Error};

/// What a CID points at, as far as UnixFS is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A file (a UnixFS file node or a raw block).
    File,
    /// A plain or sharded directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A block that is not UnixFS (dag-cbor, dag-json, dag-pb without UnixFS data).
    Other,
}

/// A decoded node with its UnixFS metadata.
#[derive(Clone, Debug)]
pub struct Stat {
    /// The node's CID.
    pub cid: Cid,
    /// What it is.
    pub kind: Kind,
    /// File size (0 for non-files).
    pub filesize: u64,
    /// Size of this one block.
    pub block_size: u64,
    /// Sum of the link Tsizes, plus the block: the DAG's cumulative size.
    pub cumulative_size: u64,
    /// Whether the directory is HAMT-sharded.
    pub sharded: bool,
    /// The fanout recorded in a HAMT shard's data.
    pub fanout: Option<u64>,
    /// POSIX mode bits, when recorded.
    pub mode: Option<u32>,
    /// Modification time, when recorded.
    pub mtime: Option<(i64, Option<u32>)>,
    /// The symlink target, for symlinks.
    pub target: Option<String>,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Entry name.
    pub name: String,
    /// Entry CID.
    pub cid: Cid,
    /// The link's cumulative size.
    pub tsize: u64,
}

fn fetch(source: &dyn BlockSource, cid: &Cid) -> Result<Bytes, Error> {
    source.get(cid).map_err(|e| Error::Source(*cid, e))
}

fn decode_pb(cid: &Cid, bytes: &Bytes) -> Result<(PbNode, Option<Data>), Error> {
    let node = PbNode::decode_bytes(bytes).map_err(|e| Error::Invalid(format!("{cid}: {e}")))?;
    let data = match &node.data {
        Some(d) => Data::decode_bytes(d).ok(),
        None => None,
    };
    Ok((node, data))
}

/// Decodes the node at `cid`.
pub fn stat(source: &dyn BlockSource, cid: &Cid) -> Result<Stat, Error> {
    let bytes = fetch(source, cid)?;
    let block_size = bytes.len() as u64;
    let mut stat = Stat {
        cid: *cid,
        kind: Kind::Other,
        filesize: 0,
        block_size,
        cumulative_size: block_size,
        sharded: false,
        fanout: None,
        mode: None,
        mtime: None,
        target: None,
    };
    match cid.codec() {
        codec::RAW => {
            stat.kind = Kind::File;
            stat.filesize = block_size;
        }
        codec::DAG_PB => {
            let (node, data) = decode_pb(cid, &bytes)?;
            stat.cumulative_size += node.links.iter().filter_map(|l| l.tsize).sum::<u64>();
            if let Some(d) = data {
                stat.mode = d.mode;
                stat.mtime = d.mtime;
                match d.kind {
                    DataType::File | DataType::Raw => {
                        stat.kind = Kind::File;
                        stat.filesize = d.file_size();
                    }
                    DataType::Directory => stat.kind = Kind::Directory,
                    DataType::HamtShard => {
                        stat.kind = Kind::Directory;
                        stat.sharded = true;
                        stat.fanout = d.fanout;
                    }
                    DataType::Symlink => {
                        stat.kind = Kind::Symlink;
                        stat.target = d.data.map(|t| String::from_utf8_lossy(&t).into_owned());
                    }
                    DataType::Metadata => {}
                }
            }
        }
        _ => {}
    }
    Ok(stat)
}

/// Lists a plain or sharded directory completely, in name order for plain directories and
/// shard order for sharded ones (as Kubo does).
pub fn list(source: &dyn BlockSource, cid: &Cid) -> Result<Vec<ListEntry>, Error> {
    let mut out = Vec::new();
    for_each_entry(source, cid, &mut |e| {
        out.push(e);
        true
    })?;
    Ok(out)
}

/// Visits the entries of a plain or sharded directory in [`list`] order, one at a time, until
/// `visit` returns `false`. Holds one shard path in memory, never the whole listing, so a
/// caller can page through a directory of millions of entries.
pub fn for_each_entry(
    source: &dyn BlockSource,
    cid: &Cid,
    visit: &mut dyn FnMut(ListEntry) -> bool,
) -> Result<(), Error> {
    let bytes = fetch(source, cid)?;
    if cid.codec() != codec::DAG_PB {
        return Err(Error::NotDirectory(*cid));
    }
    let (node, data) = decode_pb(cid, &bytes)?;
    match data.map(|d| d.kind) {
        Some(DataType::Directory) => {
            for l in node.links {
                let entry = ListEntry {
                    name: l.name.unwrap_or_default(),
                    cid: l.cid,
                    tsize: l.tsize.unwrap_or(0),
                };
                if !visit(entry) {
                    break;
                }
            }
            Ok(())
        }
        Some(DataType::HamtShard) => {
            visit_shard(source, &node, data_fanout(cid, &bytes)?, visit).map(|_| ())
        }
        _ => Err(Error::NotDirectory(*cid)),
    }
}

fn data_fanout(cid: &Cid, bytes: &Bytes) -> Result<usize, Error> {
    let (_, data) = decode_pb(cid, bytes)?;
    let fanout = data.and_then(|d| d.fanout).unwrap_or(0) as usize;
    if !fanout.is_power_of_two() || fanout < 2 {
        return Err(Error::Invalid(format!("{cid}: bad hamt fanout {fanout}")));
    }
    Ok(fanout)
}

/// Visits a shard's entries depth-first; `Ok(false)` once `visit` asked to stop.
fn visit_shard(
    source: &dyn BlockSource,
    node: &PbNode,
    fanout: usize,
    visit: &mut dyn FnMut(ListEntry) -> bool,
) -> Result<bool, Error> {
    let pad = hamt::pad_len(fanout);
    for link in &node.links {
        let name = link.name.clone().unwrap_or_default();
        if name.len() > pad {
            // A hostile shard may put a multi-byte character across the prefix boundary.
            let entry_name = name.get(pad..).ok_or_else(|| {
                Error::Invalid(format!("{}: bad hamt link name {name:?}", link.cid))
            })?;
            let entry = ListEntry {
                name: entry_name.to_string(),
                cid: link.cid,
                tsize: link.tsize.unwrap_or(0),
            };
            if !visit(entry) {
                return Ok(false);
            }
        } else {
            let bytes = fetch(source, &link.cid)?;
            let (child, _) = decode_pb(&link.cid, &bytes)?;
            if !visit_shard(source, &child, fanout, visit)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Looks up one name in a directory (following the hash path in sharded directories).
pub fn lookup(source: &dyn BlockSource, dir: &Cid, name: &str) -> Result<Option<Cid>, Error> {
    if dir.codec() != codec::DAG_PB {
        return Err(Error::NotDirectory(*dir));
    }
    let bytes = fetch(source, dir)?;
    let (node, data) = decode_pb(dir, &bytes)?;
    match data.map(|d| d.kind) {
        Some(DataType::Directory) => Ok(node
            .links
            .iter()
            .find(|l| l.name.as_deref() == Some(name))
            .map(|l| l.cid)),
        Some(DataType::HamtShard) => {
            let fanout = data_fanout(dir, &bytes)?;
            let bits = fanout.trailing_zeros();
            let pad = hamt::pad_len(fanout);
            let hash = hamt::murmur3_x64_64(name.as_bytes());
            let mut node = node;
            for depth in 0.. {
                let Some(slot) = hamt::slot(hash, depth, bits) else {
                    return Ok(None);
                };
                let prefix = format!("{slot:0pad$X}");
                let Some(link) = node
                    .links
                    .iter()
                    .find(|l| l.name.as_deref().is_some_and(|n| n.starts_with(&prefix)))
                else {
                    return Ok(None);
                };
                let link_name = link.name.as_deref().unwrap_or_default();
                if link_name.len() > pad {
                    return Ok((&link_name[pad..] == name).then_some(link.cid));
                }
                let child = link.cid;
                let bytes = fetch(source, &child)?;
                node = decode_pb(&child, &bytes)?.0;
            }
            Ok(None)
        }
        _ => Err(Error::NotDirectory(*dir)),
    }
}

/// Resolves `root/seg/seg/...` to the CID at the end of the path.
pub fn resolve_path(source: &dyn BlockSource, root: &Cid, path: &[&str]) -> Result<Cid, Error> {
    let mut cur = *root;
    for (i, seg) in path.iter().enumerate() {
        if seg.is_empty() {
            continue;
        }
        cur = lookup(source, &cur, seg)?.ok_or_else(|| Error::NoLink {
            name: (*seg).to_string(),
            path: path[..i].join("/"),
        })?;
    }
    Ok(cur)
}

/// Blocks fetched ahead at once when reading a file with threads: enough to keep every core
/// verifying and to make thread start-up small beside the work, few enough to bound memory
/// (16 MiB of 1 MiB leaves).
const PREFETCH: usize = 16;
/// Blocks ahead of the reading position named to [`BlockSource::prefetch`], every
/// [`HINT_EVERY`] blocks: a slow source (object storage) keeps that many requests going.
const HINT_AHEAD: usize = 24;
const HINT_EVERY: usize = 8;

/// Streams the bytes of a file DAG, from `offset` for at most `length` bytes, one leaf at a time.
///
/// With [`FileReader::with_threads`], the next blocks in reading order are fetched (and so, from a
/// verifying store, re-hashed) on several threads at once.
pub struct FileReader<'s> {
    source: &'s (dyn BlockSource + Sync),
    stack: Vec<(Cid, u64)>,
    start: u64,
    end: u64,
    threads: usize,
    fetched: Vec<(Cid, Result<Bytes, Error>)>,
    /// Blocks to read before the next [`BlockSource::prefetch`] hint.
    until_hint: usize,
}

impl<'s> FileReader<'s> {
    /// Reads the file at `cid` from `offset`, at most `length` bytes (to the end when `None`).
    pub fn new(
        source: &'s (dyn BlockSource + Sync),
        cid: &Cid,
        offset: u64,
        length: Option<u64>,
    ) -> Self {
        let end = length.map_or(u64::MAX, |l| offset.saturating_add(l));
        FileReader {
            source,
            stack: vec![(*cid, 0)],
            start: offset,
            end,
            threads: 0,
            fetched: Vec::new(),
            until_hint: 0,
        }
    }

    /// Fetches ahead on this many threads (0: fetch each block when it is reached).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The bytes of the next block to visit, from the prefetched window or the source.
    fn fetch_next(&mut self, cid: &Cid) -> Result<Bytes, Error> {
        if self.until_hint == 0 && !self.stack.is_empty() {
            // What comes next and is not fetched already.
            let next: Vec<Cid> = self
                .stack
                .iter()
                .rev()
                .map(|(c, _)| *c)
                .filter(|c| !self.fetched.iter().any(|(f, _)| f == c))
                .take(HINT_AHEAD)
                .collect();
            self.source.prefetch(&next);
            self.until_hint = HINT_EVERY;
        }
        self.until_hint = self.until_hint.saturating_sub(1);
        if let Some(i) = self.fetched.iter().position(|(c, _)| c == cid) {
            return self.fetched.swap_remove(i).1;
        }
        if self.threads < 2 || self.stack.is_empty() {
            return fetch(self.source, cid);
        }
        // The stack top is visited next: fetch it with the following entries in parallel.
        let mut window: Vec<Cid> = vec![*cid];
        window.extend(self.stack.iter().rev().take(PREFETCH - 1).map(|(c, _)| *c));
        let source = self.source;
        let per = window.len().div_ceil(self.threads);
        let fetch_part = |part: &[Cid]| -> Vec<(Cid, Result<Bytes, Error>)> {
            part.iter().map(|c| (*c, fetch(source, c))).collect()
        };
        let mut parts = window.chunks(per);
        let own = parts.next().unwrap_or_default();
        let mut results: Vec<(Cid, Result<Bytes, Error>)> = std::thread::scope(|s| {
            // This thread takes the first part itself rather than idling at the join.
            let handles: Vec<_> = parts
                .map(|part| s.spawn(move || fetch_part(part)))
                .collect();
            let mut all = fetch_part(own);
            for h in handles {
                all.extend(h.join().unwrap_or_default());
            }
            all
        });
        // A worker that panicked leaves its part out; those blocks are fetched when reached.
        let first = results
            .iter()
            .position(|(c, _)| c == cid)
            .map(|i| results.swap_remove(i).1);
        self.fetched = results;
        first.unwrap_or_else(|| fetch(self.source, cid))
    }

    fn clip(&self, data: Bytes, at: u64) -> Option<Bytes> {
        let len = data.len() as u64;
        let from = self.start.max(at);
        let to = self.end.min(at + len);
        (from < to).then(|| data.slice((from - at) as usize..(to - at) as usize))
    }

    fn step(&mut self, cid: Cid, at: u64) -> Result<Option<Bytes>, Error> {
        let bytes = self.fetch_next(&cid)?;
        if cid.codec() == codec::RAW {
            return Ok(self.clip(bytes, at));
        }
        if cid.codec() != codec::DAG_PB {
            return Err(Error::NotFile(cid));
        }
        let (node, data) = decode_pb(&cid, &bytes)?;
        let data = data.ok_or(Error::NotFile(cid))?;
        match data.kind {
            DataType::File | DataType::Raw => {}
            DataType::Directory | DataType::HamtShard => return Err(Error::IsDirectory(cid)),
            _ => return Err(Error::NotFile(cid)),
        }
        if !node.links.is_empty() && node.links.len() != data.blocksizes.len() {
            return Err(Error::Invalid(format!(
                "{cid}: {} links but {} blocksizes",
                node.links.len(),
                data.blocksizes.len()
            )));
        }
        let own = data.data.unwrap_or_default();
        let mut child_at = at + own.len() as u64;
        let mut children = Vec::new();
        for (link, size) in node.links.iter().zip(&data.blocksizes) {
            if child_at >= self.end {
                break;
            }
            if child_at + size > self.start {
                children.push((link.cid, child_at));
            }
            child_at += size;
        }
        // New blocks to read: name them ahead at the next fetch.
        self.until_hint = 0;
        self.stack.extend(children.into_iter().rev());
        Ok(self.clip(own, at))
    }
}

impl Iterator for FileReader<'_> {
    type Item = Result<Bytes, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((cid, at)) = self.stack.pop() {
            if at >= self.end {
                continue;
            }
            match self.step(cid, at) {
                Ok(Some(bytes)) => return Some(Ok(bytes)),
                Ok(None) => {}
                Err(e) => {
                    self.stack.clear();
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
