//! `add`: files, directory trees and streams into the repo, with one group commit per call.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ipfs_kit_block::{Block, Cid};
use ipfs_kit_blockstore::{Blockstore, WriteBatch};
use ipfs_kit_unixfs::{BlockSink, BoxError, DirEntry, ImportProfile, Importer, Node, NullSink};

use crate::{Error, Repo};

/// Options of an add, mirroring Kubo's flags.
#[derive(Clone, Debug)]
pub struct AddOptions {
    /// Every setting that decides the CIDs.
    pub profile: ImportProfile,
    /// Compute CIDs without storing anything.
    pub only_hash: bool,
    /// Wrap the added paths in a directory.
    pub wrap: bool,
    /// Include files and directories whose names start with a dot.
    pub hidden: bool,
    /// Pin the roots recursively when done.
    pub pin: bool,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions {
            profile: ImportProfile::default(),
            only_hash: false,
            wrap: false,
            hidden: false,
            pin: true,
        }
    }
}

/// `add`'s import flags, as Kubo names them; `None` keeps the profile's value.
#[derive(Clone, Debug, Default)]
pub struct ImportFlags {
    /// A named profile (default: the repo's `import.profile`).
    pub profile: Option<String>,
    /// `--cid-version`; 1 turns raw leaves on unless `raw_leaves` is given.
    pub cid_version: Option<u8>,
    /// `--raw-leaves`.
    pub raw_leaves: Option<bool>,
    /// `--chunker`.
    pub chunker: Option<String>,
    /// `--trickle`.
    pub trickle: bool,
    /// `--max-file-links`.
    pub max_file_links: Option<usize>,
    /// `--max-directory-links` (0: no limit).
    pub max_directory_links: Option<usize>,
    /// `--max-hamt-fanout`.
    pub max_hamt_fanout: Option<usize>,
    /// `--hash`; anything but sha2-256 means CIDv1 (and so raw leaves unless given).
    pub hash: Option<String>,
}

/// One added file or directory, as Kubo reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    /// Its path relative to what was added (empty for a wrapping directory).
    pub name: String,
    /// Its CID.
    pub cid: Cid,
    /// Cumulative DAG size.
    pub size: u64,
}

/// Sends blocks to a write batch, or nowhere for `--only-hash`.
enum Sink<'a> {
    Store(Box<dyn WriteBatch + 'a>),
    Discard(NullSink),
}

impl BlockSink for Sink<'_> {
    fn put(&mut self, block: Block) -> Result<(), BoxError> {
        match self {
            Sink::Store(batch) => batch.put(block).map_err(|e| Box::new(e) as BoxError),
            Sink::Discard(n) => n.put(block),
        }
    }
}

/// Counts bytes read, for progress bars.
struct Counting<'a, R> {
    inner: R,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// Progress and output callbacks of one add.
pub(crate) struct Reporter<'a> {
    progress: &'a mut dyn FnMut(u64),
    added: &'a mut dyn FnMut(&Added),
}

fn name_of(path: &Path) -> Result<String, Error> {
    let name = path.file_name().ok_or_else(|| {
        Error::Invalid(format!(
            "{}: cannot add a path without a name",
            path.display()
        ))
    })?;
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Invalid(format!("{}: file name is not valid UTF-8", path.display())))
}

fn import_path(
    im: &mut Importer<'_>,
    path: &Path,
    rel: &str,
    opts: &AddOptions,
    rep: &mut Reporter<'_>,
) -> Result<Node, Error> {
    let meta =
        fs::symlink_metadata(path).map_err(|e| Error::io(format!("{}", path.display()), e))?;
    let ft = meta.file_type();
    let node = if ft.is_symlink() {
        let target =
            fs::read_link(path).map_err(|e| Error::io(format!("{}", path.display()), e))?;
        let target = target.to_str().ok_or_else(|| {
            Error::Invalid(format!(
                "{}: symlink target is not valid UTF-8",
                path.display()
            ))
        })?;
        im.symlink(target)?
    } else if ft.is_dir() {
        let mut children: Vec<PathBuf> = fs::read_dir(path)
            .map_err(|e| Error::io(format!("{}", path.display()), e))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::io(format!("{}", path.display()), e))?;
        children.sort();
        let mut entries = Vec::with_capacity(children.len());
        for child in children {
            let name = name_of(&child)?;
            if !opts.hidden && name.starts_with('.') {
                continue;
            }
            let child_rel = format!("{rel}/{name}");
            let node = import_path(im, &child, &child_rel, opts, rep)?;
            entries.push(DirEntry { name, node });
        }
        im.directory(entries)?
    } else if ft.is_file() {
        let file = fs::File::open(path).map_err(|e| Error::io(format!("{}", path.display()), e))?;
        let mut reader = Counting {
            inner: io::BufReader::with_capacity(1 << 20, file),
            progress: &mut *rep.progress,
        };
        im.file(&mut reader)?
    } else {
        return Err(Error::Invalid(format!(
            "{}: unsupported file type (only files, directories and symlinks can be added)",
            path.display()
        )));
    };
    (rep.added)(&Added {
        name: rel.to_string(),
        cid: node.cid,
        size: node.tsize,
    });
    Ok(node)
}

/// What an entry of a streamed add is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A file: its bytes follow through [`EntrySource::read`].
    File,
    /// A directory (its contents come as entries with its path as prefix).
    Directory,
    /// A symbolic link to this target.
    Symlink(String),
}

/// Entries of an add that arrive as a stream (an HTTP multipart upload), each with its path
/// relative to the upload (`dir/sub/file`).
pub trait EntrySource {
    /// The next entry, or `None` at the end.
    fn next_entry(&mut self) -> Result<Option<(String, EntryKind)>, Error>;
    /// Reads the bytes of the current file entry (0 at its end).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
}

struct EntryReader<'a>(&'a mut dyn EntrySource);

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// A directory being assembled from streamed entries.
#[derive(Default)]
struct TreeDir {
    entries: std::collections::BTreeMap<String, TreeNode>,
}

enum TreeNode {
    Leaf(Node),
    Dir(TreeDir),
}

fn check_segment(path: &str, seg: &str) -> Result<(), Error> {
    if seg.is_empty() || seg == "." || seg == ".." {
        return Err(Error::Invalid(format!("invalid path {path:?} in upload")));
    }
    Ok(())
}

impl TreeDir {
    /// The directory at `segs`, created on the way.
    fn dir_at(&mut self, path: &str, segs: &[&str]) -> Result<&mut TreeDir, Error> {
        let mut cur = self;
        for seg in segs {
            check_segment(path, seg)?;
            let next = cur
                .entries
                .entry((*seg).to_string())
                .or_insert_with(|| TreeNode::Dir(TreeDir::default()));
            cur = match next {
                TreeNode::Dir(d) => d,
                TreeNode::Leaf(_) => {
                    return Err(Error::Invalid(format!("{path:?}: a parent is a file")))
                }
            };
        }
        Ok(cur)
    }

    fn insert(&mut self, path: &str, node: Node) -> Result<(), Error> {
        let segs: Vec<&str> = path.split('/').collect();
        let (name, parents) = segs
            .split_last()
            .ok_or_else(|| Error::Invalid("empty path".into()))?;
        check_segment(path, name)?;
        let dir = self.dir_at(path, parents)?;
        if dir
            .entries
            .insert((*name).to_string(), TreeNode::Leaf(node))
            .is_some()
        {
            return Err(Error::Invalid(format!(
                "{path:?} appears twice in the upload"
            )));
        }
        Ok(())
    }

    /// Builds every directory bottom-up, reporting each with its path; returns the entries.
    fn build(
        self,
        prefix: &str,
        im: &mut Importer<'_>,
        added: &mut dyn FnMut(&Added),
    ) -> Result<Vec<DirEntry>, Error> {
        let mut out = Vec::with_capacity(self.entries.len());
        for (name, node) in self.entries {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let node = match node {
                TreeNode::Leaf(n) => n,
                TreeNode::Dir(d) => {
                    let children = d.build(&path, im, added)?;
                    let n = im.directory(children)?;
                    added(&Added {
                        name: path,
                        cid: n.cid,
                        size: n.tsize,
                    });
                    n
                }
            };
            out.push(DirEntry { name, node });
        }
        Ok(out)
    }
}

/// The roots of an add: each top-level entry, or (with `wrap`) one unnamed directory holding
/// them, which is reported like any other added directory.
fn finish_roots(
    im: &mut Importer<'_>,
    roots: Vec<DirEntry>,
    wrap: bool,
    added: &mut dyn FnMut(&Added),
) -> Result<Vec<Added>, Error> {
    if !wrap {
        return Ok(roots
            .into_iter()
            .map(|e| Added {
                name: e.name,
                cid: e.node.cid,
                size: e.node.tsize,
            })
            .collect());
    }
    let dir = im.directory(roots)?;
    let wrapped = Added {
        name: String::new(),
        cid: dir.cid,
        size: dir.tsize,
    };
    added(&wrapped);
    Ok(vec![wrapped])
}

impl Repo {
    /// The import profile `flags` ask for, on top of the named (or the repo's) profile and the
    /// repo's HAMT threshold (`import.hamt_threshold`), with Kubo's rules for how the flags
    /// imply each other.
    pub fn import_profile(&self, flags: &ImportFlags) -> Result<ImportProfile, Error> {
        let config = self.config();
        let name = match &flags.profile {
            Some(p) => p.clone(),
            None => config.import.profile.clone(),
        };
        let mut p = ImportProfile::by_name(&name)?;
        p.hamt_threshold =
            usize::try_from(config.import.hamt_threshold_bytes()?).unwrap_or(usize::MAX);
        if let Some(h) = &flags.hash {
            p.hash = ipfs_kit_block::HashAlg::from_name(h)?;
            if p.hash != ipfs_kit_block::HashAlg::Sha2_256 {
                if flags.cid_version == Some(0) {
                    return Err(Error::Invalid("CIDv0 only supports sha2-256".into()));
                }
                p.cid_version = 1;
                p.raw_leaves = true;
            }
        }
        if let Some(v) = flags.cid_version {
            p.cid_version = v;
            if v == 1 {
                p.raw_leaves = true;
            }
        }
        if let Some(r) = flags.raw_leaves {
            p.raw_leaves = r;
        }
        if let Some(c) = &flags.chunker {
            p.chunker = c.parse::<ipfs_kit_unixfs::ChunkerSpec>()?;
        }
        if flags.trickle {
            p.layout = ipfs_kit_unixfs::Layout::Trickle;
        }
        if let Some(n) = flags.max_file_links {
            p.max_file_links = n;
        }
        if let Some(n) = flags.max_directory_links {
            p.max_directory_links = (n > 0).then_some(n);
        }
        if let Some(n) = flags.max_hamt_fanout {
            p.hamt_fanout = n;
        }
        p.validate()?;
        Ok(p)
    }

    /// Adds a stream of entries (files, directories, symlinks by relative path), as an HTTP
    /// upload sends them. Files are imported as they arrive; directories are built at the end,
    /// children before parents. `added` is called for each file and directory; the roots (one
    /// per top-level entry, or the wrapping directory) are returned and pinned.
    pub fn add_entries(
        &self,
        source: &mut dyn EntrySource,
        opts: &AddOptions,
        added: &mut dyn FnMut(&Added),
    ) -> Result<Vec<Added>, Error> {
        self.with_sink(
            opts,
            |im| {
                let mut tree = TreeDir::default();
                while let Some((path, kind)) = source.next_entry()? {
                    let path = path.trim_matches('/').to_string();
                    match kind {
                        EntryKind::Directory => {
                            let segs: Vec<&str> = path.split('/').collect();
                            tree.dir_at(&path, &segs)?;
                        }
                        EntryKind::File => {
                            let node = im.file(&mut EntryReader(source))?;
                            // An unnamed file (stdin, a bare buffer) is named by its CID.
                            let path = if path.is_empty() {
                                node.cid.to_string()
                            } else {
                                path
                            };
                            added(&Added {
                                name: path.clone(),
                                cid: node.cid,
                                size: node.tsize,
                            });
                            tree.insert(&path, node)?;
                        }
                        EntryKind::Symlink(target) => {
                            let node = im.symlink(&target)?;
                            added(&Added {
                                name: path.clone(),
                                cid: node.cid,
                                size: node.tsize,
                            });
                            tree.insert(&path, node)?;
                        }
                    }
                }
                let roots = tree.build("", im, added)?;
                finish_roots(im, roots, opts.wrap, added)
            },
            |roots| roots.iter().map(|a| a.cid).collect(),
        )
    }

    fn with_sink<T>(
        &self,
        opts: &AddOptions,
        work: impl FnOnce(&mut Importer<'_>) -> Result<T, Error>,
        roots: impl FnOnce(&T) -> Vec<Cid>,
    ) -> Result<T, Error> {
        opts.profile.validate()?;
        let (threads, _busy) = self.threads();
        if opts.only_hash {
            let mut sink = Sink::Discard(NullSink);
            return work(&mut Importer::new(&opts.profile, &mut sink).with_threads(threads));
        }
        // Held from the first block to the pin, so a concurrent GC cannot take blocks of this add.
        let _gc = self.gc_lock.read();
        let mut sink = Sink::Store(self.blocks.begin()?);
        let out = work(&mut Importer::new(&opts.profile, &mut sink).with_threads(threads))?;
        if let Sink::Store(batch) = sink {
            batch.commit()?;
        }
        if opts.pin {
            // Every block of these DAGs was just committed or was already stored, and the GC
            // lock has kept it there: no need to read it all back to check.
            self.pins.add_complete(&roots(&out))?;
        }
        Ok(out)
    }

    /// Adds one stream as a file; returns its root.
    pub fn add_reader(&self, reader: &mut dyn Read, opts: &AddOptions) -> Result<Node, Error> {
        self.with_sink(opts, |im| Ok(im.file(reader)?), |n| vec![n.cid])
    }

    /// Adds files, directories (recursively) and symlinks. `added` is called for every file
    /// and directory as it completes (children before parents); `progress` with bytes read.
    /// Returns the roots: one per path, or the wrapping directory.
    pub fn add_paths(
        &self,
        paths: &[PathBuf],
        opts: &AddOptions,
        progress: &mut dyn FnMut(u64),
        added: &mut dyn FnMut(&Added),
    ) -> Result<Vec<Added>, Error> {
        let mut names = std::collections::HashSet::new();
        for p in paths {
            fs::symlink_metadata(p).map_err(|e| Error::io(format!("{}", p.display()), e))?;
            if opts.wrap && !names.insert(name_of(p)?) {
                return Err(Error::Invalid(format!(
                    "{}: two paths with the same name cannot be wrapped in one directory",
                    p.display()
                )));
            }
        }
        let mut rep = Reporter { progress, added };
        self.with_sink(
            opts,
            |im| {
                let mut roots = Vec::new();
                for p in paths {
                    let name = name_of(p)?;
                    let node = import_path(im, p, &name, opts, &mut rep)?;
                    roots.push(DirEntry { name, node });
                }
                finish_roots(im, roots, opts.wrap, rep.added)
            },
            |roots| roots.iter().map(|a| a.cid).collect(),
        )
    }
}
