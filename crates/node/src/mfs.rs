//! MFS, the mutable file system behind `files`: a root CID in `meta.redb`, edited by rebuilding
//! the chain of directories above each change (see docs/mfs.md).

use std::collections::HashMap;
use std::io::{Read, Write};

use ipfs_kit_block::dagpb::PbNode;
use ipfs_kit_block::{codec, Block, Bytes, Cid, HashAlg};
use ipfs_kit_blockstore::{Blockstore, WriteBatch};
use ipfs_kit_unixfs::reader::{self, FileReader};
use ipfs_kit_unixfs::{
    BlockSink, BlockSource, BoxError, ChunkerSpec, DirEntry, DirShape, ImportProfile, Importer,
    Kind, Layout, Node,
};
use redb::{ReadableDatabase, TableDefinition};

use crate::{meta_err, Error, Repo};

/// The MFS root: key `root` → CID bytes.
const MFS: TableDefinition<&str, &[u8]> = TableDefinition::new("mfs");
const ROOT_KEY: &str = "root";
/// Longest MFS path accepted, in bytes.
const MAX_PATH: usize = 4096;
/// Longest name of one MFS entry, in bytes.
const MAX_NAME: usize = 255;
/// Links per file node in MFS writes (boxo's `DefaultLinksPerBlock`).
const FILE_LINKS: usize = 174;
/// Chunk size of MFS writes (boxo's `chunker.DefaultSplitter`).
const CHUNK: usize = 256 * 1024;

/// `files stat` of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfsStat {
    /// The node's CID.
    pub cid: Cid,
    /// File, directory, symlink or other.
    pub kind: Kind,
    /// File size (0 for directories).
    pub size: u64,
    /// Cumulative size of the DAG.
    pub cumulative_size: u64,
    /// Number of links of the node.
    pub blocks: u64,
}

/// One entry of `files ls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfsEntry {
    /// Entry name.
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// File size (0 for directories).
    pub size: u64,
    /// Its CID.
    pub cid: Cid,
}

/// Options of `files write`, as Kubo names them.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Byte offset to write at (past the end: the gap is zero-filled).
    pub offset: u64,
    /// Create the file if it does not exist.
    pub create: bool,
    /// Create missing parent directories.
    pub parents: bool,
    /// Truncate the file to zero bytes before writing.
    pub truncate: bool,
    /// Write at most this many bytes of the input.
    pub count: Option<u64>,
    /// Store leaves as raw blocks.
    pub raw_leaves: Option<bool>,
    /// CID version of the new file (default: its directory's).
    pub cid_version: Option<u8>,
    /// Hash function of the new file (default: its directory's).
    pub hash: Option<String>,
}

fn not_exist() -> Error {
    Error::Invalid("file does not exist".into())
}

/// Kubo's error for a path that goes through a file.
fn not_dir(segs: &[String]) -> Error {
    Error::Invalid(format!("cannot access {}: Not a directory", segs.join("/")))
}

/// The segments of an absolute MFS path (empty for `/`).
fn split(path: &str) -> Result<Vec<String>, Error> {
    if path.is_empty() {
        return Err(Error::Invalid("paths must not be empty".into()));
    }
    if !path.starts_with('/') {
        return Err(Error::Invalid(
            "paths must start with a leading slash".into(),
        ));
    }
    if path.len() > MAX_PATH {
        return Err(Error::Invalid(format!(
            "paths must be at most {MAX_PATH} bytes"
        )));
    }
    let mut out = Vec::new();
    for seg in path.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if seg == ".." {
            out.pop();
            continue;
        }
        if seg.len() > MAX_NAME {
            return Err(Error::Invalid(format!(
                "names must be at most {MAX_NAME} bytes: {seg:?}"
            )));
        }
        out.push(seg.to_string());
    }
    Ok(out)
}

fn is_ipfs_path(path: &str) -> bool {
    path.starts_with("/ipfs/") || path.starts_with("/ipns/")
}

/// The CID version and hash a directory's CID was made with (its "CID builder").
fn prefix_of(cid: &Cid) -> (u8, HashAlg) {
    let version = if cid.version() == cid::Version::V0 {
        0
    } else {
        1
    };
    (
        version,
        HashAlg::from_code(cid.hash().code()).unwrap_or_default(),
    )
}

fn prefix_from(
    base: (u8, HashAlg),
    cid_version: Option<u8>,
    hash: Option<&str>,
) -> Result<(u8, HashAlg), Error> {
    let mut p = base;
    if let Some(h) = hash {
        p.1 = HashAlg::from_name(h)?;
        if p.1 != HashAlg::Sha2_256 {
            p.0 = 1;
        }
    }
    if let Some(v) = cid_version {
        if v > 1 {
            return Err(Error::Invalid(format!("unknown CID version {v}")));
        }
        p.0 = v;
    }
    if p.0 == 0 && p.1 != HashAlg::Sha2_256 {
        return Err(Error::Invalid("CIDv0 only supports sha2-256".into()));
    }
    Ok(p)
}

/// Reads the repo, and before that the blocks an edit has made but not yet committed.
struct Overlay<'r> {
    repo: &'r Repo,
    fresh: HashMap<Cid, Bytes>,
}

impl BlockSource for Overlay<'_> {
    fn get(&self, cid: &Cid) -> Result<Bytes, BoxError> {
        match self.fresh.get(cid) {
            Some(b) => Ok(b.clone()),
            None => BlockSource::get(self.repo, cid),
        }
    }
}

/// Sends blocks to the edit's write batch, keeping directory blocks readable in the overlay.
struct EditSink<'a> {
    batch: &'a mut dyn WriteBatch,
    fresh: Option<&'a mut HashMap<Cid, Bytes>>,
}

impl BlockSink for EditSink<'_> {
    fn put(&mut self, block: Block) -> Result<(), BoxError> {
        if let Some(fresh) = &mut self.fresh {
            fresh.insert(*block.cid(), block.data().clone());
        }
        self.batch.put(block).map_err(|e| Box::new(e) as BoxError)
    }
}

/// One MFS edit: new blocks go to one write batch; the root is committed at the end.
struct Edit<'r> {
    overlay: Overlay<'r>,
    batch: Box<dyn WriteBatch + 'r>,
    root: Cid,
}

impl<'r> Edit<'r> {
    fn repo(&self) -> &'r Repo {
        self.overlay.repo
    }

    fn dir_profile(&self, prefix: (u8, HashAlg)) -> ImportProfile {
        let mut p = self.repo().mfs_profile();
        p.cid_version = prefix.0;
        p.hash = prefix.1;
        p
    }

    /// The CID at `segs`, or `None`; fails when a segment above the last is not a directory.
    fn lookup(&self, segs: &[String]) -> Result<Option<Cid>, Error> {
        lookup_in(&self.overlay, self.root, segs)
    }

    fn stat(&self, cid: &Cid) -> Result<reader::Stat, Error> {
        Ok(reader::stat(&self.overlay, cid)?)
    }

    fn node_of(&self, cid: &Cid) -> Result<Node, Error> {
        let s = self.stat(cid)?;
        Ok(Node {
            cid: *cid,
            filesize: s.filesize,
            tsize: s.cumulative_size,
        })
    }

    fn build_dir(
        &mut self,
        entries: Vec<DirEntry>,
        prefix: (u8, HashAlg),
        shape: DirShape,
    ) -> Result<Node, Error> {
        let profile = self.dir_profile(prefix);
        let mut sink = EditSink {
            batch: &mut *self.batch,
            fresh: Some(&mut self.overlay.fresh),
        };
        Ok(Importer::new(&profile, &mut sink).directory_shaped(entries, shape)?)
    }

    /// The shape of the directory `stat` describes.
    fn shape_of(&self, stat: &reader::Stat) -> DirShape {
        match (stat.sharded, stat.fanout) {
            (false, _) => DirShape::Basic,
            (true, Some(f)) => DirShape::Hamt {
                fanout: usize::try_from(f).unwrap_or(usize::MAX),
            },
            (true, None) => DirShape::Hamt {
                fanout: self.repo().mfs_profile().hamt_fanout,
            },
        }
    }

    /// The entries of the directory at `cid`, as the importer takes them.
    fn entries(&self, cid: &Cid) -> Result<Vec<DirEntry>, Error> {
        Ok(reader::list(&self.overlay, cid)?
            .into_iter()
            .map(|e| DirEntry {
                name: e.name,
                node: Node {
                    cid: e.cid,
                    filesize: 0,
                    tsize: e.tsize,
                },
            })
            .collect())
    }

    /// Puts `node` under `name` in the directory at `dir` (or removes `name` when `None`),
    /// then rebuilds every directory up to the root.
    fn set_entry(&mut self, dir: &[String], name: &str, node: Option<Node>) -> Result<(), Error> {
        let mut chain = vec![self.root];
        for seg in dir {
            let parent = chain[chain.len() - 1];
            let child = reader::lookup(&self.overlay, &parent, seg)
                .map_err(|_| not_exist())?
                .ok_or_else(not_exist)?;
            chain.push(child);
        }
        let mut change = (name.to_string(), node);
        for level in (0..chain.len()).rev() {
            let cid = chain[level];
            let stat = self.stat(&cid)?;
            if stat.kind != Kind::Directory {
                return Err(not_exist());
            }
            let before = self.entries(&cid)?;
            let mut entries: Vec<DirEntry> = before
                .iter()
                .filter(|e| e.name != change.0)
                .cloned()
                .collect();
            let put = change.1.is_some();
            if let Some(n) = change.1.take() {
                entries.push(DirEntry {
                    name: change.0.clone(),
                    node: n,
                });
            }
            // Sharded or not is decided as boxo's DynamicDirectory does, from the directory's
            // shape before this edit as well as its size after it.
            let prefix = prefix_of(&cid);
            let shape = self.dir_profile(prefix).shape_after_edit(
                self.shape_of(&stat),
                &before,
                &entries,
                put,
            );
            let rebuilt = self.build_dir(entries, prefix, shape)?;
            if level == 0 {
                self.root = rebuilt.cid;
            } else {
                change = (dir[level - 1].clone(), Some(rebuilt));
            }
        }
        Ok(())
    }

    /// An empty directory with `prefix`.
    fn empty_dir(&mut self, prefix: (u8, HashAlg)) -> Result<Node, Error> {
        self.build_dir(Vec::new(), prefix, DirShape::Basic)
    }

    /// Makes every missing directory along `segs` (like `mkdir -p`).
    fn ensure_dirs(&mut self, segs: &[String], prefix: Option<(u8, HashAlg)>) -> Result<(), Error> {
        for i in 0..segs.len() {
            match self.lookup(&segs[..=i])? {
                Some(c) if self.stat(&c)?.kind == Kind::Directory => {}
                Some(_) => return Err(Error::Invalid("file already exists".into())),
                None => {
                    let parent = self.lookup(&segs[..i])?.ok_or_else(not_exist)?;
                    let p = prefix.unwrap_or_else(|| prefix_of(&parent));
                    let dir = self.empty_dir(p)?;
                    self.set_entry(&segs[..i], &segs[i], Some(dir))?;
                }
            }
        }
        Ok(())
    }
}

/// Bytes of an old file's range, as a `Read`.
struct RangeReader<'s> {
    inner: FileReader<'s>,
    chunk: Bytes,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.inner.next() {
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The content after a write: old prefix, zero fill, the new bytes, the old suffix past them.
struct Patched<'s, 'd> {
    source: &'s (dyn BlockSource + Sync),
    old: Option<(Cid, u64)>,
    offset: u64,
    prefix: Option<RangeReader<'s>>,
    zeros: u64,
    data: &'d mut dyn Read,
    left: Option<u64>,
    written: u64,
    data_done: bool,
    suffix: Option<RangeReader<'s>>,
}

impl Read for Patched<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(p) = &mut self.prefix {
            let n = p.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.prefix = None;
        }
        if self.zeros > 0 {
            let n = buf
                .len()
                .min(usize::try_from(self.zeros).unwrap_or(usize::MAX));
            buf[..n].fill(0);
            self.zeros -= n as u64;
            return Ok(n);
        }
        if !self.data_done {
            let max = match self.left {
                Some(l) => buf.len().min(usize::try_from(l).unwrap_or(usize::MAX)),
                None => buf.len(),
            };
            let n = if max == 0 {
                0
            } else {
                self.data.read(&mut buf[..max])?
            };
            if n > 0 {
                self.written += n as u64;
                if let Some(l) = &mut self.left {
                    *l -= n as u64;
                }
                return Ok(n);
            }
            self.data_done = true;
            if let Some((cid, size)) = self.old {
                let from = self.offset + self.written;
                if from < size {
                    self.suffix = Some(RangeReader {
                        inner: FileReader::new(self.source, &cid, from, None),
                        chunk: Bytes::new(),
                    });
                }
            }
        }
        match &mut self.suffix {
            Some(s) => s.read(buf),
            None => Ok(0),
        }
    }
}

/// Walks `segs` down from `root`: the CID at the end, or `None` when a name is missing.
fn lookup_in(source: &dyn BlockSource, root: Cid, segs: &[String]) -> Result<Option<Cid>, Error> {
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        match reader::lookup(source, &cur, seg) {
            Ok(Some(c)) => cur = c,
            Ok(None) => return Ok(None),
            Err(ipfs_kit_unixfs::Error::NotDirectory(_)) => return Err(not_dir(&segs[..=i])),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(cur))
}

impl Repo {
    /// The profile MFS builds directories with: the repo's (for its HAMT rules), with Kubo's
    /// MFS file settings (trickle, 256 KiB chunks, 174 links).
    fn mfs_profile(&self) -> ImportProfile {
        let mut p = self
            .import_profile(&crate::ImportFlags::default())
            .unwrap_or_default();
        p.layout = Layout::Trickle;
        p.chunker = ChunkerSpec::Size(CHUNK);
        p.max_file_links = FILE_LINKS;
        p.raw_leaves = false;
        p
    }

    /// The current MFS root (the empty directory on a fresh repo, stored on first use).
    pub fn mfs_root(&self) -> Result<Cid, Error> {
        let tx = self.meta.begin_read().map_err(meta_err)?;
        match tx.open_table(MFS) {
            Ok(t) => {
                if let Some(v) = t.get(ROOT_KEY).map_err(meta_err)? {
                    return Cid::try_from(v.value()).map_err(meta_err);
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(meta_err(e)),
        }
        let profile = self.mfs_profile();
        let mut blocks: Vec<Block> = Vec::new();
        let node = Importer::new(&profile, &mut blocks).directory(Vec::new())?;
        if !self.blocks.has(&node.cid)? {
            let _gc = self.gc_lock.read();
            self.blocks.put_many(blocks)?;
        }
        Ok(node.cid)
    }

    /// The MFS root if one was ever stored (for GC).
    pub(crate) fn stored_mfs_root(&self) -> Result<Option<Cid>, Error> {
        let tx = self.meta.begin_read().map_err(meta_err)?;
        let t = match tx.open_table(MFS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(meta_err(e)),
        };
        let v = t.get(ROOT_KEY).map_err(meta_err)?;
        v.map(|v| Cid::try_from(v.value()).map_err(meta_err))
            .transpose()
    }

    /// Runs one edit: serialised with other edits, its blocks committed, then its root.
    fn mfs_edit<T>(&self, f: impl FnOnce(&mut Edit<'_>) -> Result<T, Error>) -> Result<T, Error> {
        let _edit = self.mfs_lock.lock();
        let root = self.mfs_root()?;
        // Shared from the first block to the root commit: GC cannot sweep an edit in flight.
        let _gc = self.gc_lock.read();
        let mut edit = Edit {
            overlay: Overlay {
                repo: self,
                fresh: HashMap::new(),
            },
            batch: self.blocks.begin()?,
            root,
        };
        let out = f(&mut edit)?;
        let new_root = edit.root;
        edit.batch.commit()?;
        if new_root != root {
            let tx = self.meta.begin_write().map_err(meta_err)?;
            {
                let mut t = tx.open_table(MFS).map_err(meta_err)?;
                t.insert(ROOT_KEY, new_root.to_bytes().as_slice())
                    .map_err(meta_err)?;
            }
            tx.commit().map_err(meta_err)?;
        }
        Ok(out)
    }

    /// The CID at an MFS path or an `/ipfs/`/`/ipns/` path.
    fn files_cid(&self, path: &str) -> Result<Cid, Error> {
        if is_ipfs_path(path) {
            return self.resolve(path);
        }
        let segs = split(path)?;
        lookup_in(self, self.mfs_root()?, &segs)?.ok_or_else(not_exist)
    }

    /// `files stat`.
    pub fn files_stat(&self, path: &str) -> Result<MfsStat, Error> {
        let cid = self.files_cid(path)?;
        let s = reader::stat(self, &cid)?;
        let blocks = if cid.codec() == codec::DAG_PB {
            PbNode::decode(&self.block_bytes(&cid)?)?.links.len() as u64
        } else {
            0
        };
        Ok(MfsStat {
            cid,
            kind: s.kind,
            size: if s.kind == Kind::File { s.filesize } else { 0 },
            cumulative_size: s.cumulative_size,
            blocks,
        })
    }

    /// `files ls`: a directory's entries, or the file itself.
    pub fn files_ls(&self, path: &str) -> Result<Vec<MfsEntry>, Error> {
        let cid = self.files_cid(path)?;
        let s = reader::stat(self, &cid)?;
        let entry = |name: String, cid: Cid| -> Result<MfsEntry, Error> {
            let s = reader::stat(self, &cid)?;
            Ok(MfsEntry {
                name,
                kind: s.kind,
                size: if s.kind == Kind::File { s.filesize } else { 0 },
                cid,
            })
        };
        if s.kind != Kind::Directory {
            let name = path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            return Ok(vec![entry(name.to_string(), cid)?]);
        }
        reader::list(self, &cid)?
            .into_iter()
            .map(|e| entry(e.name, e.cid))
            .collect()
    }

    /// `files read`: the file's bytes from `offset`, at most `count`.
    pub fn files_read(
        &self,
        path: &str,
        offset: u64,
        count: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<u64, Error> {
        let cid = self.files_cid(path)?;
        let s = reader::stat(self, &cid)?;
        if s.kind != Kind::File {
            return Err(Error::Invalid(format!("{path} was not a file")));
        }
        if offset > s.filesize {
            return Err(Error::Invalid(format!(
                "offset was past end of file ({offset} > {})",
                s.filesize
            )));
        }
        let mut n = 0;
        for chunk in FileReader::new(self, &cid, offset, count) {
            let chunk = chunk?;
            out.write_all(&chunk)
                .map_err(|e| Error::io("write output", e))?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }

    /// `files write`: writes `data` into the file at `path` (see [`WriteOptions`]).
    pub fn files_write(
        &self,
        path: &str,
        data: &mut dyn Read,
        opts: &WriteOptions,
    ) -> Result<(), Error> {
        let segs = split(path)?;
        let Some((name, dir)) = segs.split_last() else {
            return Err(Error::Invalid("cannot write to the root directory".into()));
        };
        self.mfs_edit(|e| {
            if opts.parents {
                e.ensure_dirs(dir, None)?;
            }
            let parent = e.lookup(dir)?.ok_or_else(not_exist)?;
            if e.stat(&parent)?.kind != Kind::Directory {
                return Err(not_dir(&segs));
            }
            let old = match e.lookup(&segs)? {
                Some(c) => {
                    let s = e.stat(&c)?;
                    if s.kind != Kind::File {
                        return Err(Error::Invalid(format!("{path} is not a file")));
                    }
                    Some((c, s.filesize))
                }
                None if opts.create => None,
                None => return Err(not_exist()),
            };
            let prefix = prefix_from(prefix_of(&parent), opts.cid_version, opts.hash.as_deref())?;
            let mut profile = e.dir_profile(prefix);
            profile.raw_leaves = opts.raw_leaves.unwrap_or(false);
            profile.validate()?;
            let old = if opts.truncate { None } else { old };
            let old_size = old.map_or(0, |(_, s)| s);
            let source: &(dyn BlockSource + Sync) = &e.overlay;
            let mut content = Patched {
                source,
                old,
                offset: opts.offset,
                prefix: old.map(|(c, _)| RangeReader {
                    inner: FileReader::new(source, &c, 0, Some(opts.offset.min(old_size))),
                    chunk: Bytes::new(),
                }),
                zeros: opts.offset.saturating_sub(old_size),
                data,
                left: opts.count,
                written: 0,
                data_done: false,
                suffix: None,
            };
            let mut sink = EditSink {
                batch: &mut *e.batch,
                fresh: None,
            };
            let node = Importer::new(&profile, &mut sink).file(&mut content)?;
            e.set_entry(dir, name, Some(node))
        })
    }

    /// `files mkdir`.
    pub fn files_mkdir(
        &self,
        path: &str,
        parents: bool,
        cid_version: Option<u8>,
        hash: Option<&str>,
    ) -> Result<(), Error> {
        let segs = split(path)?;
        let Some((name, dir)) = segs.split_last() else {
            if parents {
                return Ok(());
            }
            return Err(Error::Invalid(
                "cannot create directory '/': Already exists".into(),
            ));
        };
        self.mfs_edit(|e| {
            let explicit = if cid_version.is_some() || hash.is_some() {
                Some(prefix_from(prefix_of(&e.root), cid_version, hash)?)
            } else {
                None
            };
            if parents {
                return e.ensure_dirs(&segs, explicit);
            }
            let parent = e.lookup(dir)?.ok_or_else(not_exist)?;
            if e.lookup(&segs)?.is_some() {
                return Err(Error::Invalid("file already exists".into()));
            }
            let node = e.empty_dir(explicit.unwrap_or_else(|| prefix_of(&parent)))?;
            e.set_entry(dir, name, Some(node))
        })
    }

    /// `files cp`: links `src` (an `/ipfs/` path or MFS path) at `dst` (`dst/`: inside it).
    pub fn files_cp(&self, src: &str, dst: &str, parents: bool) -> Result<(), Error> {
        let src_cid = self.files_cid(src)?;
        let mut dst = dst.to_string();
        if dst.ends_with('/') {
            let base = src
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            dst.push_str(base);
        }
        let segs = split(&dst)?;
        let Some((name, dir)) = segs.split_last() else {
            return Err(Error::Invalid(
                "directory already has entry by that name".into(),
            ));
        };
        self.mfs_edit(|e| {
            if parents {
                e.ensure_dirs(dir, None)?;
            }
            e.lookup(dir)?.ok_or_else(not_exist)?;
            if e.lookup(&segs)?.is_some() {
                return Err(Error::Invalid(
                    "directory already has entry by that name".into(),
                ));
            }
            let node = e.node_of(&src_cid)?;
            e.set_entry(dir, name, Some(node))
        })
    }

    /// `files mv`: moves `src`; into `dst` when it is a directory, over it when it is a file.
    pub fn files_mv(&self, src: &str, dst: &str) -> Result<(), Error> {
        let from = split(src)?;
        let to = split(dst)?;
        let Some((src_name, src_dir)) = from.split_last() else {
            return Err(Error::Invalid("cannot move the root directory".into()));
        };
        self.mfs_edit(|e| {
            let cid = e.lookup(&from)?.ok_or_else(not_exist)?;
            let mut target = to.clone();
            if let Some(existing) = e.lookup(&to)? {
                if e.stat(&existing)?.kind == Kind::Directory {
                    target.push(src_name.clone());
                }
            }
            if target == from {
                return Ok(());
            }
            if target.starts_with(&from) {
                return Err(Error::Invalid("cannot move a directory into itself".into()));
            }
            let Some((name, dir)) = target.split_last() else {
                return Err(Error::Invalid("cannot replace the root directory".into()));
            };
            e.lookup(dir)?.ok_or_else(not_exist)?;
            if let Some(existing) = e.lookup(&target)? {
                if e.stat(&existing)?.kind == Kind::Directory {
                    return Err(Error::Invalid(
                        "directory already has entry by that name".into(),
                    ));
                }
            }
            let node = e.node_of(&cid)?;
            e.set_entry(src_dir, src_name, None)?;
            e.set_entry(dir, name, Some(node))
        })
    }

    /// `files rm`: every path or nothing.
    pub fn files_rm(&self, paths: &[String], recursive: bool, force: bool) -> Result<(), Error> {
        let all = paths
            .iter()
            .map(|p| split(p).map(|s| (p, s)))
            .collect::<Result<Vec<_>, _>>()?;
        self.mfs_edit(|e| {
            for (path, segs) in &all {
                let Some((name, dir)) = segs.split_last() else {
                    return Err(Error::Invalid("cannot delete root".into()));
                };
                let Some(cid) = e.lookup(segs)? else {
                    if force {
                        continue;
                    }
                    return Err(not_exist());
                };
                if !recursive && !force && e.stat(&cid)?.kind == Kind::Directory {
                    return Err(Error::Invalid(format!(
                        "{path:?} is a directory, use -r to remove directories"
                    )));
                }
                e.set_entry(dir, name, None)?;
            }
            Ok(())
        })
    }

    /// `files flush`: every edit is already durable, so this reports the CID at `path`.
    pub fn files_flush(&self, path: &str) -> Result<Cid, Error> {
        self.files_cid(path)
    }

    /// `files chcid`: rebuilds the directory at `path` with another CID version or hash.
    pub fn files_chcid(
        &self,
        path: &str,
        cid_version: Option<u8>,
        hash: Option<&str>,
    ) -> Result<(), Error> {
        let segs = split(path)?;
        self.mfs_edit(|e| {
            let cid = e.lookup(&segs)?.ok_or_else(not_exist)?;
            if e.stat(&cid)?.kind != Kind::Directory {
                return Err(Error::Invalid(
                    "can only change the CID of directories".into(),
                ));
            }
            let prefix = prefix_from(prefix_of(&cid), cid_version, hash)?;
            let entries = e.entries(&cid)?;
            // A new CID builder changes no entry, so the directory keeps its shape.
            let shape = e.shape_of(&e.stat(&cid)?);
            let node = e.build_dir(entries, prefix, shape)?;
            match segs.split_last() {
                None => {
                    e.root = node.cid;
                    Ok(())
                }
                Some((name, dir)) => e.set_entry(dir, name, Some(node)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(split("/").unwrap(), Vec::<String>::new());
        assert_eq!(split("/a//b/./c/").unwrap(), ["a", "b", "c"]);
        assert_eq!(split("/a/../b").unwrap(), ["b"]);
        assert_eq!(
            split("a").unwrap_err().to_string(),
            "paths must start with a leading slash"
        );
        assert!(split("").is_err());
        assert!(split(&format!("/{}", "x".repeat(256))).is_err());
        assert!(prefix_from((0, HashAlg::Sha2_256), Some(0), Some("blake3")).is_err());
        assert_eq!(
            prefix_from((0, HashAlg::Sha2_256), None, Some("blake3")).unwrap(),
            (1, HashAlg::Blake3)
        );
    }
}
