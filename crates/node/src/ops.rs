//! Content operations with Kubo's semantics: cat, get, ls, resolve, block, dag, refs, pin, repo
//! and CAR export and import.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use ipfs_kit_block::ipld::{self, Ipld};
use ipfs_kit_block::{codec, dagpb::PbNode, Block, Cid, HashAlg, IDENTITY};
use ipfs_kit_blockstore::Blockstore;
use ipfs_kit_car::{CarReader, CarWriter};
use ipfs_kit_pin::{PinCheck, PinMode, PinType};
use ipfs_kit_unixfs::reader::{self, FileReader};
use ipfs_kit_unixfs::Kind;

use crate::{Error, IpfsPath, Repo};

/// Options of `refs`, as Kubo names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefsOptions {
    /// Follow links below the first level (`--recursive`).
    pub recursive: bool,
    /// List each CID once (`--unique`).
    pub unique: bool,
    /// With `recursive`, list links at most this many levels below the root (`--max-depth`;
    /// `None`: no limit, `Some(0)`: nothing).
    pub max_depth: Option<u64>,
}

/// One link `refs` lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefEdge {
    /// The block the link is in.
    pub src: Cid,
    /// The block it links to.
    pub dst: Cid,
    /// The link's name (dag-pb), or empty.
    pub name: String,
}

impl RefEdge {
    /// The edge written with Kubo's `--format` template: `<src>`, then `<dst>`, then
    /// `<linkname>` replaced, in that order (Kubo's), with the CIDs as `cid` encodes them.
    pub fn format(&self, template: &str, cid: impl Fn(&Cid) -> String) -> String {
        template
            .replace("<src>", &cid(&self.src))
            .replace("<dst>", &cid(&self.dst))
            .replace("<linkname>", &self.name)
    }
}

/// Walks links as Kubo's `refs` does (`RefWriter`): see [`RefsWalker::walk`].
pub struct RefsWalker<'r> {
    repo: &'r Repo,
    max: Option<u64>,
    unique: bool,
    /// With `unique`, the smallest depth each CID was walked from, over every root.
    seen: HashMap<Cid, u64>,
}

impl RefsWalker<'_> {
    /// Walks the links below `root`, calling `edge` for each one listed: depth first in link
    /// order; only the root's own links unless `recursive`, then down to `max_depth`; with
    /// `unique` each CID once over all the roots walked, and a subtree already walked at the
    /// same depth or higher not walked again. Every block listed or walked must be in the repo
    /// (Kubo fetches it): a missing one stops the walk with an error after the edges before it.
    /// Iterative, so a hostile deep chain cannot exhaust the stack; without `unique` a DAG that
    /// shares subtrees is walked once per path to them, as in Kubo, so callers stream the edges.
    pub fn walk(
        &mut self,
        root: &Cid,
        edge: &mut dyn FnMut(RefEdge) -> Result<(), Error>,
    ) -> Result<(), Error> {
        // A walk to the bottom will want every block: fetch them ahead, many at once, rather
        // than one round trip per block as the walk reaches it.
        let _prefetch = self
            .max
            .is_none()
            .then(|| self.repo.prefetch(root))
            .flatten();
        // Each frame: a block, its depth, and its links still to visit (reversed, to pop).
        let mut stack = vec![(*root, 0u64, self.repo.named_links(root)?)];
        while let Some((src, depth, links)) = stack.last_mut() {
            let Some((name, dst)) = links.pop() else {
                stack.pop();
                continue;
            };
            let (src, depth) = (*src, *depth + 1);
            let (deeper, list) = refs_visit(&mut self.seen, self.max, self.unique, dst, depth);
            if !deeper && !list {
                continue;
            }
            let below = if deeper {
                Some(self.repo.named_links(&dst)?)
            } else {
                if dst.hash().code() != IDENTITY && !self.repo.blocks.has(&dst)? {
                    return Err(Error::NotFound(dst));
                }
                None
            };
            if list {
                edge(RefEdge { src, dst, name })?;
            }
            if let Some(links) = below {
                stack.push((dst, depth, links));
            }
        }
        Ok(())
    }
}

/// Kubo's `RefWriter.visit`: whether to walk below `cid`, met at `depth`, and whether to list
/// it. `seen` keeps, with `unique`, the smallest depth each CID was walked from.
fn refs_visit(
    seen: &mut HashMap<Cid, u64>,
    max: Option<u64>,
    unique: bool,
    cid: Cid,
    depth: u64,
) -> (bool, bool) {
    if max.is_some_and(|m| depth > m) {
        return (false, false);
    }
    let at_max = max == Some(depth);
    if !unique {
        return (!at_max, true);
    }
    let old = seen.get(&cid).copied();
    if old.is_some_and(|old| max.is_none() || old <= depth) {
        return (false, false);
    }
    seen.insert(cid, depth);
    (!at_max, old.is_none())
}

/// A sequence of CAR streams (files on disk, parts of an upload): `next_car` moves to the next
/// one, which is then read through `Read`.
pub trait CarSource: Read {
    /// Moves to the next CAR; `false` when there are no more.
    fn next_car(&mut self) -> Result<bool, Error>;
}

/// CAR streams held as separate readers.
pub struct CarReaders<'a> {
    readers: std::collections::VecDeque<&'a mut dyn Read>,
    current: Option<&'a mut dyn Read>,
}

impl<'a> CarReaders<'a> {
    /// The given readers, in order.
    pub fn new(readers: Vec<&'a mut dyn Read>) -> Self {
        CarReaders {
            readers: readers.into(),
            current: None,
        }
    }
}

impl Read for CarReaders<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.current {
            Some(r) => r.read(buf),
            None => Ok(0),
        }
    }
}

impl CarSource for CarReaders<'_> {
    fn next_car(&mut self) -> Result<bool, Error> {
        self.current = self.readers.pop_front();
        Ok(self.current.is_some())
    }
}

/// Kubo's block size limit for `block put` and `dag put`: what fits a bitswap message.
pub const DEFAULT_BLOCK_LIMIT: usize = 1024 * 1024;

/// One entry of `ls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsEntry {
    /// Entry name.
    pub name: String,
    /// Entry CID.
    pub cid: Cid,
    /// File size for files, the link's Tsize otherwise.
    pub size: u64,
    /// What it is.
    pub kind: Kind,
    /// The target, for symlinks.
    pub target: Option<String>,
}

/// `block stat` output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockStat {
    /// The block's CID.
    pub cid: Cid,
    /// Its size in bytes.
    pub size: u64,
}

/// What one conditional garbage collection did ([`Repo::gc_if_full`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoGc {
    /// Bytes the repo took on the local disk before.
    pub before: u64,
    /// …and after.
    pub after: u64,
    /// The size past which it runs.
    pub threshold: u64,
    /// Blocks removed.
    pub removed: u64,
}

/// `repo stat` output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoStat {
    /// Distinct blocks stored.
    pub num_objects: u64,
    /// Bytes the repo takes on disk.
    pub repo_size: u64,
    /// Bytes of live block data.
    pub block_bytes: u64,
    /// The repo directory.
    pub path: String,
}

/// What `dag import` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DagImportResult {
    /// The CAR's roots, each with the pin error if pinning it failed.
    pub roots: Vec<(Cid, Option<String>)>,
    /// Blocks read from the CAR.
    pub blocks: u64,
    /// Bytes of block data read.
    pub bytes: u64,
}

fn safe_name(name: &str) -> Result<&str, Error> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::Invalid(format!(
            "refusing to write a directory entry named {name:?}: it would escape the output directory"
        )));
    }
    Ok(name)
}

impl Repo {
    /// Resolves an IPFS path to the CID at its end; the path must end at a link.
    pub fn resolve(&self, path: &str) -> Result<Cid, Error> {
        match self.dag_resolve(path)? {
            (cid, rest) if rest.is_empty() => Ok(cid),
            (cid, rest) => Err(Error::InvalidPath(
                path.to_string(),
                format!("{} is a value inside {cid}, not a link", rest.join("/")),
            )),
        }
    }

    /// Follows a path as far as links go: UnixFS names (sharded directories included) through
    /// dag-pb nodes, map keys and list indices through dag-cbor and dag-json. Returns the last
    /// CID reached and the segments that remain inside that node.
    pub fn dag_resolve(&self, path: &str) -> Result<(Cid, Vec<String>), Error> {
        let p: IpfsPath = self.expand_ipns(path)?.parse()?;
        let mut cid = p.root;
        let mut segs = p.segments.iter().map(String::as_str).peekable();
        while segs.peek().is_some() {
            if cid.codec() == codec::DAG_PB {
                let seg = segs.next().unwrap_or_default();
                let found = match reader::lookup(self, &cid, seg) {
                    // Not a UnixFS directory: a plain dag-pb node's links go by name too.
                    Err(ipfs_kit_unixfs::Error::NotDirectory(_)) => {
                        PbNode::decode(&self.block_bytes(&cid)?)?
                            .links
                            .into_iter()
                            .find(|l| l.name.as_deref() == Some(seg))
                            .map(|l| l.cid)
                    }
                    other => other?,
                };
                // Kubo's words: clients match on them.
                cid = found.ok_or_else(|| ipfs_kit_unixfs::Error::NoLink {
                    name: seg.to_string(),
                    path: cid.to_string(),
                })?;
                continue;
            }
            let mut node = ipld::decode(cid.codec(), &self.block_bytes(&cid)?)?;
            let mut inside = Vec::new();
            for seg in segs.by_ref() {
                node = step(&node, cid.codec(), seg).ok_or_else(|| {
                    Error::InvalidPath(path.to_string(), format!("no {seg:?} in {cid}"))
                })?;
                inside.push(seg.to_string());
                if let Ipld::Link(next) = node {
                    cid = next;
                    inside.clear();
                    break;
                }
            }
            if !inside.is_empty() {
                return Ok((cid, inside));
            }
        }
        Ok((cid, Vec::new()))
    }

    /// Writes a file's bytes (from `offset`, at most `length`) to `out`.
    pub fn cat(
        &self,
        path: &str,
        offset: u64,
        length: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<u64, Error> {
        let cid = self.resolve(path)?;
        let _prefetch = self.prefetch(&cid);
        let mut written = 0;
        let (threads, _busy) = self.threads();
        for chunk in FileReader::new(self, &cid, offset, length).with_threads(threads) {
            let chunk = chunk?;
            out.write_all(&chunk)
                .map_err(|e| Error::io("write output", e))?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// Lists a directory (or the links of any other dag-pb node), resolving each entry's type.
    pub fn ls(&self, path: &str) -> Result<Vec<LsEntry>, Error> {
        let cid = self.resolve(path)?;
        let stat = reader::stat(self, &cid)?;
        let links: Vec<(String, Cid)> = if stat.kind == Kind::Directory {
            reader::list(self, &cid)?
                .into_iter()
                .map(|e| (e.name, e.cid))
                .collect()
        } else if cid.codec() == codec::DAG_PB {
            PbNode::decode(&self.block_bytes(&cid)?)?
                .links
                .into_iter()
                .map(|l| (l.name.unwrap_or_default(), l.cid))
                .collect()
        } else {
            Vec::new()
        };
        links
            .into_iter()
            .map(|(name, cid)| {
                let s = reader::stat(self, &cid)?;
                // Kubo's DirEntry.Size: a file's size, 0 for anything else.
                let size = if s.kind == Kind::File { s.filesize } else { 0 };
                Ok(LsEntry {
                    name,
                    cid,
                    size,
                    kind: s.kind,
                    target: s.target,
                })
            })
            .collect()
    }

    /// Writes the file, directory or symlink at `path` to `out` on the local file system,
    /// restoring modes and mtimes where UnixFS carries them.
    pub fn get(&self, path: &str, out: &Path) -> Result<(), Error> {
        let cid = self.resolve(path)?;
        if fs::symlink_metadata(out).is_ok() {
            return Err(Error::Invalid(format!("{} already exists", out.display())));
        }
        let _prefetch = self.prefetch(&cid);
        self.export_node(&cid, out)
    }

    fn export_node(&self, cid: &Cid, out: &Path) -> Result<(), Error> {
        let stat = reader::stat(self, cid)?;
        let ctx = |what: &str| format!("{what} {}", out.display());
        match stat.kind {
            Kind::Directory => {
                fs::create_dir(out).map_err(|e| Error::io(ctx("create"), e))?;
                for entry in reader::list(self, cid)? {
                    self.export_node(&entry.cid, &out.join(safe_name(&entry.name)?))?;
                }
            }
            Kind::Symlink => {
                let target = stat.target.clone().unwrap_or_default();
                std::os::unix::fs::symlink(&target, out)
                    .map_err(|e| Error::io(ctx("symlink"), e))?;
                return Ok(());
            }
            Kind::File | Kind::Other => {
                let mut f = fs::File::create(out).map_err(|e| Error::io(ctx("create"), e))?;
                if stat.kind == Kind::File {
                    let (threads, _busy) = self.threads();
                    for chunk in FileReader::new(self, cid, 0, None).with_threads(threads) {
                        f.write_all(&chunk?)
                            .map_err(|e| Error::io(ctx("write"), e))?;
                    }
                } else {
                    f.write_all(&self.block_bytes(cid)?)
                        .map_err(|e| Error::io(ctx("write"), e))?;
                }
            }
        }
        if let Some(mode) = stat.mode {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(out, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| Error::io(ctx("chmod"), e))?;
        }
        if let Some((secs, nanos)) = stat.mtime {
            if let Ok(secs) = u64::try_from(secs) {
                let t = UNIX_EPOCH + Duration::new(secs, nanos.unwrap_or(0).min(999_999_999));
                fs::File::open(out)
                    .and_then(|f| f.set_times(fs::FileTimes::new().set_modified(t)))
                    .map_err(|e| Error::io(ctx("set mtime of"), e))?;
            }
        }
        Ok(())
    }

    /// Stores one block as given. Returns its CID (CIDv1 unless `cid_version` 0 and dag-pb).
    pub fn block_put(
        &self,
        data: Vec<u8>,
        codec: u64,
        hash: HashAlg,
        cid_version: u8,
        allow_big: bool,
        pin: bool,
    ) -> Result<Cid, Error> {
        if !allow_big && data.len() > DEFAULT_BLOCK_LIMIT {
            return Err(Error::TooBig {
                size: data.len(),
                limit: DEFAULT_BLOCK_LIMIT,
            });
        }
        let block = Block::encode(codec, hash, cid_version, data);
        self.store_block(block, pin)
    }

    fn store_block(&self, block: Block, pin: bool) -> Result<Cid, Error> {
        let cid = *block.cid();
        let _gc = self.gc_lock.read();
        self.blocks.put_many(vec![block])?;
        if pin {
            self.pins.add(&self.blocks, &[cid], PinMode::Recursive)?;
        }
        Ok(cid)
    }

    /// Size of a stored block.
    pub fn block_stat(&self, path: &str) -> Result<BlockStat, Error> {
        let cid = self.resolve(path)?;
        let size = if cid.hash().code() == IDENTITY {
            cid.hash().digest().len() as u64
        } else {
            self.blocks.size(&cid)?.ok_or(Error::NotFound(cid))?
        };
        Ok(BlockStat { cid, size })
    }

    /// Removes blocks, refusing pinned ones. Each CID gets its own result, as in Kubo.
    pub fn block_rm(&self, cids: &[Cid], force: bool) -> Result<Vec<(Cid, Option<String>)>, Error> {
        let _gc = self.gc_lock.write();
        let pinned = ipfs_kit_pin::reachable(&self.blocks, &self.pins)?;
        let mut out = Vec::new();
        for cid in cids {
            let err = if pinned.contains(&cid.hash().to_bytes()) {
                let how = self
                    .pins
                    .status(&self.blocks, cid)?
                    .map_or("indirect", |t| t.as_str());
                Some(format!("pinned: {how}"))
            } else if self.blocks.delete_many(&[*cid])? == 0 && !force {
                Some("block not found".to_string())
            } else {
                None
            };
            out.push((*cid, err));
        }
        Ok(out)
    }

    /// `dag put`: decodes `data` as `input_codec`, stores it encoded as `store_codec`.
    pub fn dag_put(
        &self,
        data: &[u8],
        input_codec: u64,
        store_codec: u64,
        hash: HashAlg,
        pin: bool,
        allow_big: bool,
    ) -> Result<Cid, Error> {
        let bytes = if input_codec == store_codec && store_codec == codec::RAW {
            data.to_vec()
        } else {
            ipld::transcode(input_codec, store_codec, data)?
        };
        if !allow_big && bytes.len() > DEFAULT_BLOCK_LIMIT {
            return Err(Error::TooBig {
                size: bytes.len(),
                limit: DEFAULT_BLOCK_LIMIT,
            });
        }
        self.store_block(Block::encode(store_codec, hash, 1, bytes), pin)
    }

    /// `dag get`: the node at `path` (IPLD pathing through maps, lists, dag-pb link names and
    /// links), encoded as `output_codec`.
    pub fn dag_get(&self, path: &str, output_codec: u64) -> Result<Vec<u8>, Error> {
        let p: IpfsPath = path.parse()?;
        let mut cid = p.root;
        let mut node = ipld::decode(cid.codec(), &self.block_bytes(&cid)?)?;
        for seg in &p.segments {
            if let Ipld::Link(c) = node {
                cid = c;
                node = ipld::decode(cid.codec(), &self.block_bytes(&cid)?)?;
            }
            node = step(&node, cid.codec(), seg).ok_or_else(|| {
                Error::InvalidPath(path.to_string(), format!("no {seg:?} in {cid}"))
            })?;
        }
        if let Ipld::Link(c) = node {
            node = ipld::decode(c.codec(), &self.block_bytes(&c)?)?;
        }
        Ok(ipld::encode(output_codec, &node)?)
    }

    /// The CIDs the blocks at `paths` link to (see [`RefsWalker`]), in order; stops at the
    /// first error.
    pub fn refs(&self, paths: &[String], opts: &RefsOptions) -> Result<Vec<Cid>, Error> {
        let mut out = Vec::new();
        let mut walker = self.refs_walker(*opts);
        for root in self.refs_roots(paths)? {
            walker.walk(&root, &mut |e| {
                out.push(e.dst);
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// The blocks `refs` starts from: every path resolved, or the first error.
    pub fn refs_roots(&self, paths: &[String]) -> Result<Vec<Cid>, Error> {
        paths.iter().map(|p| self.resolve(p)).collect()
    }

    /// A walker for one `refs` command (its roots share what `unique` has seen).
    pub fn refs_walker(&self, opts: RefsOptions) -> RefsWalker<'_> {
        RefsWalker {
            repo: self,
            max: if opts.recursive {
                opts.max_depth
            } else {
                Some(1)
            },
            unique: opts.unique,
            seen: HashMap::new(),
        }
    }

    /// The links of a block with their names (dag-pb's link names; empty for other codecs, as
    /// Kubo's dag-cbor nodes name none), reversed.
    fn named_links(&self, cid: &Cid) -> Result<Vec<(String, Cid)>, Error> {
        let bytes = self.block_bytes(cid)?;
        let mut links: Vec<(String, Cid)> = if cid.codec() == codec::DAG_PB {
            PbNode::decode(&bytes)?
                .links
                .into_iter()
                .map(|l| (l.name.unwrap_or_default(), l.cid))
                .collect()
        } else {
            ipld::links(cid.codec(), &bytes)?
                .into_iter()
                .map(|c| (String::new(), c))
                .collect()
        };
        links.reverse();
        Ok(links)
    }

    /// Every block in the repo.
    pub fn refs_local(&self) -> Result<Vec<Cid>, Error> {
        Ok(self.blocks.list()?)
    }

    /// Pins the CIDs at `paths`; nothing is pinned unless all can be.
    pub fn pin_add(&self, paths: &[String], recursive: bool) -> Result<Vec<Cid>, Error> {
        let cids = paths
            .iter()
            .map(|p| self.resolve(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mode = if recursive {
            PinMode::Recursive
        } else {
            PinMode::Direct
        };
        let _gc = self.gc_lock.read();
        if recursive {
            for cid in &cids {
                self.fetch_missing(cid)?;
            }
        } else {
            let online = self.online();
            let mark = online.as_ref().map(|o| o.store_mark());
            for cid in &cids {
                self.block_bytes(cid)?;
            }
            // A fetched block is handed over before it is stored.
            if let (Some(online), Some(mark)) = (online, mark) {
                online.settle(mark)?;
            }
        }
        self.pins.add(&self.blocks, &cids, mode)?;
        self.keep_durable(&cids, recursive)?;
        if let Some(online) = self.online() {
            online.pinned(self, &cids);
        }
        Ok(cids)
    }

    /// Unpins the CIDs at `paths`.
    pub fn pin_rm(&self, paths: &[String], recursive: bool) -> Result<Vec<Cid>, Error> {
        let cids = paths
            .iter()
            .map(|p| self.resolve(p))
            .collect::<Result<Vec<_>, _>>()?;
        self.pins.rm(&self.blocks, &cids, recursive)?;
        Ok(cids)
    }

    /// Pins of the given types, or the status of specific paths.
    pub fn pin_ls(
        &self,
        paths: &[String],
        types: &[PinType],
    ) -> Result<Vec<(Cid, PinType)>, Error> {
        if paths.is_empty() {
            return Ok(self.pins.list(&self.blocks, types)?);
        }
        let mut out = Vec::new();
        for p in paths {
            let cid = self.resolve(p)?;
            match self.pins.status_among(&self.blocks, &cid, types)? {
                Some(t) => out.push((cid, t)),
                None => return Err(Error::Invalid(format!("path '{p}' is not pinned"))),
            }
        }
        Ok(out)
    }

    /// Checks every pin's DAG is complete and intact.
    pub fn pin_verify(&self) -> Result<Vec<PinCheck>, Error> {
        Ok(ipfs_kit_pin::verify_pins(&self.blocks, &self.pins)?)
    }

    /// Removes every block no pin (and not the MFS root) reaches, then compacts the store.
    /// Returns the removed CIDs.
    pub fn gc(&self) -> Result<Vec<Cid>, Error> {
        let _gc = self.gc_lock.write();
        let roots: Vec<Cid> = self.stored_mfs_root()?.into_iter().collect();
        let removed = ipfs_kit_pin::gc_keeping(&self.blocks, &self.pins, &roots)?;
        self.blocks.inner().local().compact()?;
        Ok(removed)
    }

    /// Collects garbage when the repo takes more of the local disk than
    /// `datastore.storage_gc_watermark` percent of `datastore.storage_max` (Kubo's conditional
    /// GC, which `daemon --enable-gc` runs every `datastore.gc_period`); `None` when under.
    pub fn gc_if_full(&self) -> Result<Option<AutoGc>, Error> {
        let threshold = self.config().datastore.gc_threshold()?;
        let before = self.local_size()?;
        if before <= threshold {
            return Ok(None);
        }
        let removed = self.gc()?.len() as u64;
        let after = self.local_size()?;
        let max = self.config().datastore.storage_max_bytes()?;
        if after > max {
            tracing::warn!(
                "the repo takes {after} bytes after gc, over datastore.storage_max ({max}): \
                 unpin content, raise the limit, or move content to object storage"
            );
        }
        Ok(Some(AutoGc {
            before,
            after,
            threshold,
            removed,
        }))
    }

    /// Bytes the repo takes on this machine's disk: the local tier and the metadata store.
    fn local_size(&self) -> Result<u64, Error> {
        let meta = fs::metadata(self.path.join("meta.redb"))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(self.local_stats()?.disk_bytes + meta)
    }

    /// Repo size figures.
    pub fn repo_stat(&self) -> Result<RepoStat, Error> {
        let s = self.blocks.stats()?;
        let meta = fs::metadata(self.path.join("meta.redb"))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(RepoStat {
            num_objects: s.blocks,
            repo_size: s.disk_bytes + meta,
            block_bytes: s.block_bytes,
            path: self.path.display().to_string(),
        })
    }

    /// Re-hashes every block; returns the CIDs of corrupt or unreadable ones and the count
    /// checked. `progress` is called once per block.
    pub fn repo_verify(
        &self,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(Vec<(Cid, String)>, u64), Error> {
        let mut bad = Vec::new();
        let cids = self.blocks.list()?;
        for cid in &cids {
            match self.blocks.inner().local().get_unverified(cid) {
                Ok(Some(data)) => {
                    if ipfs_kit_block::verify_multihash(cid.hash(), &data).is_err() {
                        bad.push((*cid, "data does not match its hash".to_string()));
                    }
                }
                // Not local: a colder tier's, which re-hashes what it reads back.
                Ok(None) => match self.blocks.inner().get(cid) {
                    Ok(Some(_)) => {}
                    Ok(None) => bad.push((*cid, "listed but missing".to_string())),
                    Err(e) => bad.push((*cid, e.to_string())),
                },
                Err(e) => bad.push((*cid, e.to_string())),
            }
            progress(1);
        }
        Ok((bad, cids.len() as u64))
    }

    /// Writes the DAG under `path` as a CARv1 (depth-first, each block once) to `out`.
    pub fn dag_export(&self, path: &str, out: &mut dyn Write) -> Result<u64, Error> {
        let root = self.resolve(path)?;
        let _prefetch = self.prefetch(&root);
        let mut car = CarWriter::new(out, &[root])?;
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        let mut n = 0;
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid.hash().to_bytes()) {
                continue;
            }
            let data = self.block_bytes(&cid)?;
            let links = ipld::links(cid.codec(), &data)?;
            car.write(&cid, &data)?;
            n += 1;
            stack.extend(links.into_iter().rev());
        }
        car.finish()?;
        Ok(n)
    }

    /// Imports CARv1 or CARv2 streams, then (as Kubo does, after all of them) pins every root
    /// recursively when `pin_roots`. Within one CAR every block is verified before any is
    /// committed: if one fails (or the CAR is truncated or malformed) nothing of that CAR is
    /// stored and the import stops there.
    pub fn dag_import(
        &self,
        inputs: &mut dyn CarSource,
        pin_roots: bool,
    ) -> Result<DagImportResult, Error> {
        let _gc = self.gc_lock.read();
        let (mut roots, mut blocks, mut bytes) = (Vec::new(), 0u64, 0u64);
        while inputs.next_car()? {
            let mut car = CarReader::new(&mut *inputs as &mut dyn Read)?;
            roots.extend(car.roots().iter().copied());
            let mut batch = self.blocks.begin()?;
            while let Some(block) = car.next_block()? {
                blocks += 1;
                bytes += block.data().len() as u64;
                if block.cid().hash().code() != IDENTITY {
                    batch.put(block)?;
                }
            }
            batch.commit()?;
        }
        let roots = roots
            .into_iter()
            .map(|root| {
                let err = pin_roots
                    .then(|| {
                        self.pins
                            .add(&self.blocks, &[root], PinMode::Recursive)
                            .err()
                    })
                    .flatten()
                    .map(|e| match e {
                        // Kubo's words, which clients compare against.
                        ipfs_kit_pin::Error::Missing { .. } => "blockstore: block not found".into(),
                        e => e.to_string(),
                    });
                (root, err)
            })
            .collect();
        Ok(DagImportResult {
            roots,
            blocks,
            bytes,
        })
    }
}

/// One IPLD path step: a map key, a list index, or (in dag-pb) a link name.
fn step(node: &Ipld, codec_of: u64, seg: &str) -> Option<Ipld> {
    match node {
        Ipld::Map(m) => {
            if let Some(v) = m.get(seg) {
                return Some(v.clone());
            }
            if codec_of == codec::DAG_PB {
                if let Some(Ipld::List(links)) = m.get("Links") {
                    return links.iter().find_map(|l| match l {
                        Ipld::Map(l) if l.get("Name") == Some(&Ipld::String(seg.to_string())) => {
                            l.get("Hash").cloned()
                        }
                        _ => None,
                    });
                }
            }
            None
        }
        Ipld::List(items) => seg
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i).cloned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> Cid {
        *Block::encode(codec::RAW, HashAlg::Sha2_256, 1, vec![n]).cid()
    }

    #[test]
    fn visit_is_kubos() {
        let mut seen = HashMap::new();
        // No limit, not unique: always walk and list.
        assert_eq!(refs_visit(&mut seen, None, false, cid(1), 5), (true, true));
        // Depth limit: list at the limit without walking below; nothing past it.
        assert_eq!(
            refs_visit(&mut seen, Some(2), false, cid(1), 2),
            (false, true)
        );
        assert_eq!(
            refs_visit(&mut seen, Some(2), false, cid(1), 3),
            (false, false)
        );
        assert_eq!(
            refs_visit(&mut seen, Some(0), false, cid(1), 1),
            (false, false)
        );
        // Unique, no limit: once only.
        assert_eq!(refs_visit(&mut seen, None, true, cid(2), 3), (true, true));
        assert_eq!(refs_visit(&mut seen, None, true, cid(2), 1), (false, false));
        // Unique with a limit: met again higher up, walked again (deeper reach) but not
        // listed again; met again as deep or deeper, skipped.
        let mut seen = HashMap::new();
        assert_eq!(
            refs_visit(&mut seen, Some(3), true, cid(3), 3),
            (false, true)
        );
        assert_eq!(
            refs_visit(&mut seen, Some(3), true, cid(3), 1),
            (true, false)
        );
        assert_eq!(
            refs_visit(&mut seen, Some(3), true, cid(3), 2),
            (false, false)
        );
    }

    #[test]
    fn format_replaces_in_kubos_order() {
        let e = RefEdge {
            src: cid(1),
            dst: cid(2),
            name: "<src>".into(),
        };
        let s = |c: &Cid| c.to_string();
        assert_eq!(e.format("<dst>", s), cid(2).to_string());
        assert_eq!(
            e.format("<src> -> <dst>", s),
            format!("{} -> {}", cid(1), cid(2))
        );
        // The link name goes in last, so a name that looks like a token stays as it is.
        assert_eq!(
            e.format("<linkname>: <dst>", s),
            format!("<src>: {}", cid(2))
        );
    }
}
