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

impl Repo {
    fn with_sink<T>(
        &self,
        opts: &AddOptions,
        work: impl FnOnce(&mut Importer<'_>) -> Result<T, Error>,
        roots: impl FnOnce(&T) -> Vec<Cid>,
    ) -> Result<T, Error> {
        opts.profile.validate()?;
        if opts.only_hash {
            let mut sink = Sink::Discard(NullSink);
            return work(&mut Importer::new(&opts.profile, &mut sink).with_threads(crate::cores()));
        }
        // Held from the first block to the pin, so a concurrent GC cannot take blocks of this add.
        let _gc = self.gc_lock.read();
        let mut sink = Sink::Store(self.blocks.begin()?);
        let out = work(&mut Importer::new(&opts.profile, &mut sink).with_threads(crate::cores()))?;
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
                    roots.push((name, node));
                }
                if !opts.wrap {
                    return Ok(roots
                        .into_iter()
                        .map(|(name, n)| Added {
                            name,
                            cid: n.cid,
                            size: n.tsize,
                        })
                        .collect());
                }
                let entries = roots
                    .into_iter()
                    .map(|(name, node)| DirEntry { name, node })
                    .collect();
                let dir = im.directory(entries)?;
                let wrapped = Added {
                    name: String::new(),
                    cid: dir.cid,
                    size: dir.tsize,
                };
                (rep.added)(&wrapped);
                Ok(vec![wrapped])
            },
            |roots| roots.iter().map(|a| a.cid).collect(),
        )
    }
}
