//! The importer: files, symlinks and directories into UnixFS DAGs, streamed into a [`BlockSink`].
//!
//! Memory stays bounded by the tree's depth times its width (a balanced 1 GiB file holds at most
//! one chunk and a few hundred links at a time); blocks leave through the sink as soon as they exist.

use std::io::Read;

use ipfs_kit_block::dagpb::{PbLink, PbNode};
use ipfs_kit_block::Bytes;
use ipfs_kit_block::{codec, Block, Cid};

use crate::chunker::Chunker;
use crate::hamt::{self, ShardEntry};
use crate::pb::{Data, DataType};
use crate::profile::{HamtEstimate, ImportProfile, Layout};
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
}

/// A chunk stream with one chunk of lookahead, so layouts can ask whether input is exhausted
/// before they decide to open another level, as Kubo's builders do.
struct Leaves<'r> {
    chunker: Chunker,
    reader: &'r mut dyn Read,
    next: Option<Vec<u8>>,
}

impl<'r> Leaves<'r> {
    fn new(profile: &ImportProfile, reader: &'r mut dyn Read) -> Result<Self, Error> {
        let mut chunker = Chunker::new(profile.chunker)?;
        let next = chunker.next_chunk(reader)?;
        Ok(Leaves {
            chunker,
            reader,
            next,
        })
    }

    fn done(&self) -> bool {
        self.next.is_none()
    }

    fn take(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let chunk = self.next.take();
        if chunk.is_some() {
            self.next = self.chunker.next_chunk(self.reader)?;
        }
        Ok(chunk)
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
        Importer { profile, sink }
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

    fn leaf(&mut self, chunk: Vec<u8>, kind: DataType) -> Result<Node, Error> {
        let filesize = chunk.len() as u64;
        if self.profile.raw_leaves {
            let block = Block::encode(codec::RAW, self.profile.hash, 1, chunk);
            let cid = *block.cid();
            self.sink.put(block).map_err(Error::Sink)?;
            return Ok(Node {
                cid,
                filesize,
                tsize: filesize,
            });
        }
        let mut data = Data::new(kind);
        // Kubo leaves the data field out of an empty leaf rather than writing it empty.
        data.data = (!chunk.is_empty()).then(|| Bytes::from(chunk));
        data.filesize = Some(filesize);
        let (cid, len) = self.put_pb(&PbNode {
            links: Vec::new(),
            data: Some(Bytes::from(data.encode())),
        })?;
        Ok(Node {
            cid,
            filesize,
            tsize: len,
        })
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

    /// Imports a file's bytes.
    pub fn file(&mut self, reader: &mut dyn Read) -> Result<Node, Error> {
        let mut leaves = Leaves::new(self.profile, reader)?;
        match self.profile.layout {
            Layout::Balanced => self.balanced(&mut leaves),
            Layout::Trickle => {
                let mut root = FileNode::new();
                self.trickle_fill(&mut leaves, &mut root, None)?;
                self.commit(root)
            }
        }
    }

    fn balanced(&mut self, leaves: &mut Leaves<'_>) -> Result<Node, Error> {
        let Some(first) = leaves.take()? else {
            return self.leaf(Vec::new(), DataType::File);
        };
        let mut root = self.leaf(first, DataType::File)?;
        let mut depth = 1;
        while !leaves.done() {
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
        while node.links.len() < self.profile.max_file_links && !leaves.done() {
            let child = if depth == 1 {
                let chunk = leaves.take()?.unwrap_or_default();
                self.leaf(chunk, DataType::File)?
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
            let Some(chunk) = leaves.take()? else { break };
            let leaf = self.leaf(chunk, DataType::Raw)?;
            node.add(leaf);
        }
        let mut depth = 1;
        while max_depth.is_none_or(|m| depth < m) && !leaves.done() {
            for _ in 0..TRICKLE_DEPTH_REPEAT {
                if leaves.done() {
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
    /// directory is too big for one block.
    pub fn directory(&mut self, mut entries: Vec<DirEntry>) -> Result<Node, Error> {
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
        let links: Vec<PbLink> = entries
            .iter()
            .map(|e| PbLink {
                cid: e.node.cid,
                name: Some(e.name.clone()),
                tsize: Some(e.node.tsize),
            })
            .collect();
        let plain = PbNode {
            links,
            data: Some(Bytes::from(Data::new(DataType::Directory).encode())),
        };
        if !self.should_shard(&entries, &plain) {
            let children: u64 = entries.iter().map(|e| e.node.tsize).sum();
            let (cid, len) = self.put_pb(&plain)?;
            return Ok(Node {
                cid,
                filesize: 0,
                tsize: len + children,
            });
        }
        let shard_entries = entries
            .into_iter()
            .map(|e| ShardEntry {
                name: e.name,
                cid: e.node.cid,
                tsize: e.node.tsize,
            })
            .collect();
        let profile = self.profile;
        let (cid, tsize) = hamt::build(shard_entries, profile.hamt_fanout, &mut |bytes| {
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

    fn should_shard(&self, entries: &[DirEntry], plain: &PbNode) -> bool {
        let p = self.profile;
        if p.max_directory_links.is_some_and(|max| entries.len() > max) {
            return true;
        }
        let estimate = match p.hamt_estimate {
            HamtEstimate::Disabled => return false,
            HamtEstimate::Links => entries
                .iter()
                .map(|e| e.name.len() + e.node.cid.encoded_len())
                .sum(),
            HamtEstimate::Block => plain.encoded_len(),
        };
        estimate > p.hamt_threshold || (p.hamt_shard_at_threshold && estimate == p.hamt_threshold)
    }
}
