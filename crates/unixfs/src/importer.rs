//! The importer: files, symlinks and directories into UnixFS DAGs, streamed into a [`BlockSink`].
//!
//! Memory stays bounded by the tree's depth times its width (a balanced 1 GiB file holds at most
//! one chunk and a few hundred links at a time); blocks leave through the sink as soon as they exist.

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;

use crossbeam_channel::{bounded, Receiver, Sender};

use ipfs_kit_block::dagpb::{put_varint, varint_len, PbLink, PbNode};
use ipfs_kit_block::Bytes;
use ipfs_kit_block::{codec, Block, Cid};

use crate::chunker::{Chunk, Chunker, HEADROOM};
use crate::hamt::{self, ShardEntry};
use crate::pb::{Data, DataType};
use crate::profile::{DirShape, ImportProfile, Layout};
use crate::{BlockSink, Error};

/// Trickle layout: subtrees of each depth are repeated this many times.
const TRICKLE_DEPTH_REPEAT: usize = 4;

/// The root of an imported DAG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The root CID.
    pub cid: Cid,
    /// Bytes of content (file size; 0 for directories and symlinks).
    pub filesize: u64,
    /// Cumulative size: block bytes of the whole DAG, as Kubo reports it in `Tsize`/`Size`.
    pub tsize: u64,
}

/// A named entry of a directory to build.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// Entry name (one path segment).
    pub name: String,
    /// The entry's root.
    pub node: Node,
}

/// Imports content with one profile into one sink.
pub struct Importer<'a> {
    profile: &'a ImportProfile,
    sink: &'a mut dyn BlockSink,
    threads: usize,
}

/// At most this many chunks are being hashed at once by the worker threads (bounds memory to
/// this many chunks, 8 MiB at the 1 MiB chunk limit).
const MAX_IN_FLIGHT: usize = 8;

/// Encodes one leaf in place: the chunk's headroom takes the protobuf header, so the block
/// shares the chunk's allocation. Bytes are identical to encoding `PbNode { data: Data { kind,
/// data, filesize } }`; the golden suite holds it to that.
fn encode_leaf(profile: &ImportProfile, kind: DataType, chunk: Chunk) -> (Block, Node) {
    let n = chunk.len();
    let filesize = n as u64;
    if profile.raw_leaves {
        let bytes = Bytes::from(chunk.into_buf()).slice(HEADROOM..);
        let block = Block::encode(codec::RAW, profile.hash, 1, bytes);
        let node = Node {
            cid: *block.cid(),
            filesize,
            tsize: filesize,
        };
        return (block, node);
    }
    let bytes = if n == 0 {
        // Kubo leaves the data field out of an empty leaf rather than writing it empty.
        let mut data = Data::new(kind);
        data.filesize = Some(0);
        Bytes::from(
            PbNode {
                links: Vec::new(),
                data: Some(Bytes::from(data.encode())),
            }
            .encode(),
        )
    } else {
        let vn = varint_len(filesize);
        let inner = 2 + 1 + vn + n + 1 + vn;
        let mut header = Vec::with_capacity(HEADROOM);
        header.push(0x0a);
        put_varint(&mut header, inner as u64);
        header.extend_from_slice(&[0x08, kind as u8, 0x12]);
        put_varint(&mut header, filesize);
        let mut buf = chunk.into_buf();
        let start = HEADROOM - header.len();
        buf[start..HEADROOM].copy_from_slice(&header);
        buf.push(0x18);
        put_varint(&mut buf, filesize);
        Bytes::from(buf).slice(start..)
    };
    let tsize = bytes.len() as u64;
    let block = Block::encode(codec::DAG_PB, profile.hash, profile.cid_version, bytes);
    let node = Node {
        cid: *block.cid(),
        filesize,
        tsize,
    };
    (block, node)
}

/// Hashing workers: chunks in, encoded leaves out, tagged with their sequence number.
struct Workers {
    work: Sender<(u64, Chunk)>,
    done: Receiver<(u64, Block, Node)>,
}

/// The leaves of a file, in order, with one leaf of lookahead so layouts can ask whether input
/// is exhausted before they open another level, as Kubo's builders do. With workers, up to
/// `MAX_IN_FLIGHT` chunks are hashed in parallel while this thread reads and stores.
struct Leaves<'r> {
    profile: ImportProfile,
    kind: DataType,
    chunker: Chunker,
    reader: &'r mut dyn Read,
    eof: bool,
    workers: Option<Workers>,
    sent: u64,
    next_seq: u64,
    ready: BTreeMap<u64, (Block, Node)>,
    /// Chunks read but not yet handed out (sequential mode only).
    pending: VecDeque<Chunk>,
}

impl<'r> Leaves<'r> {
    fn new(
        profile: &ImportProfile,
        kind: DataType,
        reader: &'r mut dyn Read,
    ) -> Result<Self, Error> {
        Ok(Leaves {
            profile: profile.clone(),
            kind,
            chunker: Chunker::new(profile.chunker)?,
            reader,
            eof: false,
            workers: None,
            sent: 0,
            next_seq: 0,
            ready: BTreeMap::new(),
            pending: VecDeque::new(),
        })
    }

    fn read(&mut self) -> Result<Option<Chunk>, Error> {
        if self.eof {
            return Ok(None);
        }
        let c = self.chunker.next_chunk(self.reader)?;
        self.eof = c.is_none();
        Ok(c)
    }

    /// Keeps the workers busy: reads and sends chunks until `MAX_IN_FLIGHT` are out.
    fn pump(&mut self) -> Result<(), Error> {
        while self.workers.is_some() && ((self.sent - self.next_seq) as usize) < MAX_IN_FLIGHT {
            let chunk = match self.pending.pop_front() {
                Some(c) => c,
                None => match self.read()? {
                    Some(c) => c,
                    None => break,
                },
            };
            if let Some(w) = &self.workers {
                // Never blocks: the channel holds MAX_IN_FLIGHT and fewer are outstanding.
                w.work
                    .send((self.sent, chunk))
                    .map_err(|_| Error::Invalid("leaf hashing worker stopped".into()))?;
            }
            self.sent += 1;
        }
        Ok(())
    }

    fn done(&mut self) -> Result<bool, Error> {
        if self.workers.is_some() {
            self.pump()?;
            return Ok(self.sent == self.next_seq);
        }
        if self.pending.is_empty() {
            if let Some(c) = self.read()? {
                self.pending.push_back(c);
            }
        }
        Ok(self.pending.is_empty())
    }

    /// The next leaf, encoded (not yet stored).
    fn take(&mut self) -> Result<Option<(Block, Node)>, Error> {
        if self.workers.is_none() {
            let chunk = match self.pending.pop_front() {
                Some(c) => Some(c),
                None => self.read()?,
            };
            return Ok(chunk.map(|c| encode_leaf(&self.profile, self.kind, c)));
        }
        self.pump()?;
        if self.sent == self.next_seq {
            return Ok(None);
        }
        while !self.ready.contains_key(&self.next_seq) {
            let (seq, block, node) = self
                .workers
                .as_ref()
                .and_then(|w| w.done.recv().ok())
                .ok_or_else(|| Error::Invalid("leaf hashing worker stopped".into()))?;
            self.ready.insert(seq, (block, node));
        }
        let leaf = self.ready.remove(&self.next_seq);
        self.next_seq += 1;
        self.pump()?;
        Ok(leaf)
    }
}

/// An internal file node being filled.
struct FileNode {
    links: Vec<PbLink>,
    blocksizes: Vec<u64>,
    tsize: u64,
}

impl FileNode {
    fn new() -> Self {
        FileNode {
            links: Vec::new(),
            blocksizes: Vec::new(),
            tsize: 0,
        }
    }

    fn add(&mut self, child: Node) {
        self.tsize += child.tsize;
        self.blocksizes.push(child.filesize);
        self.links.push(PbLink {
            cid: child.cid,
            name: Some(String::new()),
            tsize: Some(child.tsize),
        });
    }
}

impl<'a> Importer<'a> {
    /// An importer writing to `sink`. Call [`ImportProfile::validate`] first for user input.
    pub fn new(profile: &'a ImportProfile, sink: &'a mut dyn BlockSink) -> Self {
        Importer {
            profile,
            sink,
            threads: 0,
        }
    }

    fn put_pb(&mut self, node: &PbNode) -> Result<(Cid, u64), Error> {
        let bytes = node.encode();
        let len = bytes.len() as u64;
        let block = Block::encode(
            codec::DAG_PB,
            self.profile.hash,
            self.profile.cid_version,
            bytes,
        );
        let cid = *block.cid();
        self.sink.put(block).map_err(Error::Sink)?;
        Ok((cid, len))
    }

    /// Stores the next leaf and returns it.
    fn leaf(&mut self, leaves: &mut Leaves<'_>) -> Result<Option<Node>, Error> {
        let Some((block, node)) = leaves.take()? else {
            return Ok(None);
        };
        self.sink.put(block).map_err(Error::Sink)?;
        Ok(Some(node))
    }

    fn commit(&mut self, node: FileNode) -> Result<Node, Error> {
        let filesize: u64 = node.blocksizes.iter().sum();
        let mut data = Data::new(DataType::File);
        data.filesize = Some(filesize);
        data.blocksizes = node.blocksizes;
        let (cid, len) = self.put_pb(&PbNode {
            links: node.links,
            data: Some(Bytes::from(data.encode())),
        })?;
        Ok(Node {
            cid,
            filesize,
            tsize: len + node.tsize,
        })
    }

    /// Hashes leaves on this many threads besides the caller's (0: all on the caller's).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Imports a file's bytes.
    pub fn file(&mut self, reader: &mut dyn Read) -> Result<Node, Error> {
        let kind = match self.profile.layout {
            Layout::Balanced => DataType::File,
            Layout::Trickle => DataType::Raw,
        };
        let mut leaves = Leaves::new(self.profile, kind, reader)?;
        // A file of one or two chunks is done before threads would have started.
        let first = leaves.read()?;
        let second = if first.is_some() {
            leaves.read()?
        } else {
            None
        };
        leaves.pending.extend(first);
        leaves.pending.extend(second);
        if self.threads == 0 || leaves.eof {
            return self.layout(&mut leaves);
        }
        std::thread::scope(|scope| {
            let (work_tx, work_rx) = bounded::<(u64, Chunk)>(MAX_IN_FLIGHT);
            let (done_tx, done_rx) = bounded(MAX_IN_FLIGHT);
            for _ in 0..self.threads {
                let (rx, tx, profile) = (work_rx.clone(), done_tx.clone(), self.profile.clone());
                scope.spawn(move || {
                    for (seq, chunk) in rx {
                        let (block, node) = encode_leaf(&profile, kind, chunk);
                        if tx.send((seq, block, node)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            leaves.workers = Some(Workers {
                work: work_tx,
                done: done_rx,
            });
            let result = self.layout(&mut leaves);
            // Closing the work channel ends the workers, whether or not the layout finished.
            leaves.workers = None;
            result
        })
    }

    fn layout(&mut self, leaves: &mut Leaves<'_>) -> Result<Node, Error> {
        match self.profile.layout {
            Layout::Balanced => self.balanced(leaves),
            Layout::Trickle => {
                let mut root = FileNode::new();
                self.trickle_fill(leaves, &mut root, None)?;
                self.commit(root)
            }
        }
    }

    fn balanced(&mut self, leaves: &mut Leaves<'_>) -> Result<Node, Error> {
        let Some(mut root) = self.leaf(leaves)? else {
            let (block, node) = encode_leaf(self.profile, DataType::File, Chunk::from_slice(&[]));
            self.sink.put(block).map_err(Error::Sink)?;
            return Ok(node);
        };
        let mut depth = 1;
        while !leaves.done()? {
            let mut node = FileNode::new();
            node.add(root);
            root = self.balanced_fill(leaves, node, depth)?;
            depth += 1;
        }
        Ok(root)
    }

    /// Fills `node` (whose children are subtrees of height `depth - 1`) up to the link limit.
    fn balanced_fill(
        &mut self,
        leaves: &mut Leaves<'_>,
        mut node: FileNode,
        depth: usize,
    ) -> Result<Node, Error> {
        while node.links.len() < self.profile.max_file_links && !leaves.done()? {
            let child = if depth == 1 {
                match self.leaf(leaves)? {
                    Some(leaf) => leaf,
                    None => break,
                }
            } else {
                self.balanced_fill(leaves, FileNode::new(), depth - 1)?
            };
            node.add(child);
        }
        self.commit(node)
    }

    /// Trickle: a layer of leaves, then `TRICKLE_DEPTH_REPEAT` subtrees of each depth below
    /// `max_depth` (unbounded at the root).
    fn trickle_fill(
        &mut self,
        leaves: &mut Leaves<'_>,
        node: &mut FileNode,
        max_depth: Option<usize>,
    ) -> Result<(), Error> {
        while node.links.len() < self.profile.max_file_links {
            let Some(leaf) = self.leaf(leaves)? else {
                break;
            };
            node.add(leaf);
        }
        let mut depth = 1;
        while max_depth.is_none_or(|m| depth < m) && !leaves.done()? {
            for _ in 0..TRICKLE_DEPTH_REPEAT {
                if leaves.done()? {
                    break;
                }
                let mut child = FileNode::new();
                self.trickle_fill(leaves, &mut child, Some(depth))?;
                let child = self.commit(child)?;
                node.add(child);
            }
            depth += 1;
        }
        Ok(())
    }

    /// Imports a symbolic link pointing at `target`.
    pub fn symlink(&mut self, target: &str) -> Result<Node, Error> {
        let mut data = Data::new(DataType::Symlink);
        data.data = Some(Bytes::copy_from_slice(target.as_bytes()));
        let (cid, len) = self.put_pb(&PbNode {
            links: Vec::new(),
            data: Some(Bytes::from(data.encode())),
        })?;
        Ok(Node {
            cid,
            filesize: 0,
            tsize: len,
        })
    }

    /// Builds a directory of `entries`: a plain directory, or a HAMT when the profile says the
    /// directory is too big for one block ([`ImportProfile::exceeds_dir_limits`]).
    pub fn directory(&mut self, entries: Vec<DirEntry>) -> Result<Node, Error> {
        let entries = checked_entries(entries)?;
        let shape = if self.profile.exceeds_dir_limits(&entries) {
            DirShape::Hamt {
                fanout: self.profile.hamt_fanout,
            }
        } else {
            DirShape::Basic
        };
        self.build_directory(entries, shape)
    }

    /// Builds a directory of `entries` in the given shape, whatever its size: for editors (MFS)
    /// that decide the shape from the directory's history ([`ImportProfile::shape_after_edit`]).
    pub fn directory_shaped(
        &mut self,
        entries: Vec<DirEntry>,
        shape: DirShape,
    ) -> Result<Node, Error> {
        let entries = checked_entries(entries)?;
        self.build_directory(entries, shape)
    }

    fn build_directory(&mut self, entries: Vec<DirEntry>, shape: DirShape) -> Result<Node, Error> {
        let fanout = match shape {
            DirShape::Basic => {
                let children: u64 = entries.iter().map(|e| e.node.tsize).sum();
                let (cid, len) = self.put_pb(&basic_node(&entries))?;
                return Ok(Node {
                    cid,
                    filesize: 0,
                    tsize: len + children,
                });
            }
            DirShape::Hamt { fanout } => fanout,
        };
        let shard_entries = entries
            .into_iter()
            .map(|e| ShardEntry {
                name: e.name,
                cid: e.node.cid,
                tsize: e.node.tsize,
            })
            .collect();
        let profile = self.profile;
        let (cid, tsize) = hamt::build(shard_entries, fanout, &mut |bytes| {
            let block = Block::encode(codec::DAG_PB, profile.hash, profile.cid_version, bytes);
            let cid = *block.cid();
            self.sink.put(block).map_err(Error::Sink)?;
            Ok(cid)
        })?;
        Ok(Node {
            cid,
            filesize: 0,
            tsize,
        })
    }
}

/// Sorts `entries` by name bytes (dag-pb's link order) and refuses duplicate, empty or
/// slash-containing names.
fn checked_entries(mut entries: Vec<DirEntry>) -> Result<Vec<DirEntry>, Error> {
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Invalid(format!(
            "duplicate directory entry {:?}",
            w[0].name
        )));
    }
    if let Some(e) = entries
        .iter()
        .find(|e| e.name.is_empty() || e.name.contains('/'))
    {
        return Err(Error::Invalid(format!(
            "invalid directory entry name {:?}",
            e.name
        )));
    }
    Ok(entries)
}

/// The single dag-pb node of a basic directory of `entries` (taken in the order given).
pub(crate) fn basic_node(entries: &[DirEntry]) -> PbNode {
    PbNode {
        links: entries
            .iter()
            .map(|e| PbLink {
                cid: e.node.cid,
                name: Some(e.name.clone()),
                tsize: Some(e.node.tsize),
            })
            .collect(),
        data: Some(Bytes::from(Data::new(DataType::Directory).encode())),
    }
}
