//! Import profiles: every setting that decides a CID, in one value.

use std::str::FromStr;

use ipfs_kit_block::HashAlg;

use crate::chunker::ChunkerSpec;
use crate::importer::{basic_node, DirEntry};
use crate::Error;

/// How file chunks are arranged into a DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// Kubo's default: a balanced tree, filled left to right.
    #[default]
    Balanced,
    /// The trickle layout, built for streaming and appends.
    Trickle,
}

/// How the size of a directory is estimated to decide whether to shard it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HamtEstimate {
    /// Sum over links of name bytes plus CID bytes (Kubo's classic estimate).
    Links,
    /// The size of the encoded directory block (IPIP-499 `unixfs-v1-2025`).
    Block,
    /// Never shard by size (only `max_directory_links` can trigger sharding).
    Disabled,
}

/// The two shapes a UnixFS directory takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirShape {
    /// One dag-pb node listing every entry.
    Basic,
    /// A HAMT-sharded directory of this fanout.
    Hamt {
        /// Slots per shard node.
        fanout: usize,
    },
}

/// Every setting of a UnixFS import that changes the resulting CIDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportProfile {
    /// CID version of dag-pb nodes (0 or 1).
    pub cid_version: u8,
    /// Store leaves as raw blocks instead of UnixFS file nodes.
    pub raw_leaves: bool,
    /// Hash function.
    pub hash: HashAlg,
    /// How files are split into chunks.
    pub chunker: ChunkerSpec,
    /// How chunks are arranged.
    pub layout: Layout,
    /// Maximum links of a file node.
    pub max_file_links: usize,
    /// A plain directory with more entries than this is sharded (`None`: no limit).
    pub max_directory_links: Option<usize>,
    /// Fanout of HAMT shards.
    pub hamt_fanout: usize,
    /// Estimated directory size, in bytes, past which a directory is sharded (Kubo's
    /// `Import.UnixFSHAMTDirectorySizeThreshold`); 0 turns sharding off, as in boxo.
    pub hamt_threshold: usize,
    /// How that size is estimated.
    pub hamt_estimate: HamtEstimate,
    /// Whether a directory whose estimate equals the threshold exactly is sharded. Kubo up to
    /// 0.39 (boxo <= 0.36) did; current Kubo, Helia and IPIP-499 do not.
    pub hamt_shard_at_threshold: bool,
}

impl Default for ImportProfile {
    fn default() -> Self {
        Self::unixfs_v0_2015()
    }
}

impl ImportProfile {
    /// Kubo's classic defaults, as IPIP-499 names them: CIDv0, dag-pb leaves, 256 KiB chunks,
    /// balanced DAG of 174 links, HAMT (fanout 256) above an estimated 256 KiB.
    pub fn unixfs_v0_2015() -> Self {
        ImportProfile {
            cid_version: 0,
            raw_leaves: false,
            hash: HashAlg::Sha2_256,
            chunker: ChunkerSpec::Size(256 * 1024),
            layout: Layout::Balanced,
            max_file_links: 174,
            max_directory_links: None,
            hamt_fanout: 256,
            hamt_threshold: 256 * 1024,
            hamt_estimate: HamtEstimate::Links,
            hamt_shard_at_threshold: false,
        }
    }

    /// IPIP-499's modern profile: CIDv1, raw leaves, 1 MiB chunks, 1024 links per node, HAMT
    /// (fanout 256) when the encoded directory block would exceed 256 KiB.
    pub fn unixfs_v1_2025() -> Self {
        ImportProfile {
            cid_version: 1,
            raw_leaves: true,
            chunker: ChunkerSpec::Size(1024 * 1024),
            max_file_links: 1024,
            hamt_estimate: HamtEstimate::Block,
            ..Self::unixfs_v0_2015()
        }
    }

    /// Exactly what Kubo 0.22 (the oracle in `shared/kubo`) does: `unixfs-v0-2015` with the old
    /// tie rule (a directory whose estimate equals the threshold is sharded).
    pub fn kubo_v0_22() -> Self {
        ImportProfile {
            hamt_shard_at_threshold: true,
            ..Self::unixfs_v0_2015()
        }
    }

    /// The names [`ImportProfile::by_name`] accepts.
    pub const NAMES: [&'static str; 3] = ["unixfs-v0-2015", "unixfs-v1-2025", "kubo-v0.22"];

    /// A named profile.
    pub fn by_name(name: &str) -> Result<Self, Error> {
        match name {
            "unixfs-v0-2015" | "legacy-cid-v0" => Ok(Self::unixfs_v0_2015()),
            "unixfs-v1-2025" | "test-cid-v1" => Ok(Self::unixfs_v1_2025()),
            "kubo-v0.22" => Ok(Self::kubo_v0_22()),
            other => Err(Error::Invalid(format!(
                "unknown import profile {other:?} (known: {})",
                Self::NAMES.join(", ")
            ))),
        }
    }

    /// Checks that the settings can produce valid DAGs.
    pub fn validate(&self) -> Result<(), Error> {
        if self.cid_version > 1 {
            return Err(Error::Invalid(format!(
                "cid version must be 0 or 1, got {}",
                self.cid_version
            )));
        }
        if self.cid_version == 0 && self.hash != HashAlg::Sha2_256 {
            return Err(Error::Invalid(
                "CIDv0 only supports sha2-256; use --cid-version 1".into(),
            ));
        }
        if self.max_file_links < 2 {
            return Err(Error::Invalid("max file links must be at least 2".into()));
        }
        if !self.hamt_fanout.is_power_of_two() || !(8..=1024).contains(&self.hamt_fanout) {
            return Err(Error::Invalid(format!(
                "hamt fanout must be a power of two between 8 and 1024, got {}",
                self.hamt_fanout
            )));
        }
        Ok(())
    }
}

impl ImportProfile {
    /// The size the profile's estimate gives a basic directory of `entries` (sorted by name),
    /// or `None` when size never shards a directory (estimate `Disabled`, or threshold 0).
    pub fn dir_estimate(&self, entries: &[DirEntry]) -> Option<usize> {
        if self.hamt_threshold == 0 {
            return None;
        }
        match self.hamt_estimate {
            HamtEstimate::Disabled => None,
            HamtEstimate::Links => Some(
                entries
                    .iter()
                    .map(|e| e.name.len() + e.node.cid.encoded_len())
                    .sum(),
            ),
            HamtEstimate::Block => Some(basic_node(entries).encoded_len()),
        }
    }

    /// Whether a basic directory of `entries` is past the profile's limits and must be a HAMT:
    /// its estimate passes the threshold (at the threshold only with
    /// [`ImportProfile::hamt_shard_at_threshold`]), or it has more entries than
    /// `max_directory_links`. A threshold of 0 turns sharding off altogether, as in boxo.
    pub fn exceeds_dir_limits(&self, entries: &[DirEntry]) -> bool {
        if self.hamt_threshold == 0 {
            return false;
        }
        if self
            .max_directory_links
            .is_some_and(|max| entries.len() > max)
        {
            return true;
        }
        self.dir_estimate(entries).is_some_and(|size| {
            size > self.hamt_threshold
                || (self.hamt_shard_at_threshold && size == self.hamt_threshold)
        })
    }

    /// The shape a directory of shape `current` takes after one edit turned its entries from
    /// `before` into `after` (`put`: the edit added or replaced an entry, rather than removing
    /// one). These are boxo's `DynamicDirectory` rules, which MFS follows:
    ///
    /// - a basic directory becomes a HAMT when an entry is put and the result is past the
    ///   limits ([`ImportProfile::exceeds_dir_limits`]); a removal never shards it;
    /// - a HAMT becomes basic only when the edit shrinks its estimate and the result is within
    ///   the limits; otherwise it stays a HAMT of its own fanout, however small. With the
    ///   estimate `Disabled` only `max_directory_links` can turn it back; with threshold 0
    ///   (sharding off) nothing does.
    pub fn shape_after_edit(
        &self,
        current: DirShape,
        before: &[DirEntry],
        after: &[DirEntry],
        put: bool,
    ) -> DirShape {
        match current {
            DirShape::Basic if put && self.exceeds_dir_limits(after) => DirShape::Hamt {
                fanout: self.hamt_fanout,
            },
            DirShape::Basic => DirShape::Basic,
            DirShape::Hamt { .. } => {
                let shrinks = match (self.dir_estimate(before), self.dir_estimate(after)) {
                    (Some(b), Some(a)) => a < b,
                    // Size plays no part: only a link limit can allow the switch back.
                    _ => self.hamt_threshold != 0 && self.max_directory_links.is_some(),
                };
                if shrinks && !self.exceeds_dir_limits(after) {
                    DirShape::Basic
                } else {
                    current
                }
            }
        }
    }
}

impl FromStr for Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "balanced" => Ok(Layout::Balanced),
            "trickle" => Ok(Layout::Trickle),
            other => Err(Error::Invalid(format!(
                "unknown layout {other:?} (balanced or trickle)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use ipfs_kit_block::{codec, Block};

    use super::*;
    use crate::Node;

    fn entry(name: &str) -> DirEntry {
        let cid = *Block::encode(codec::RAW, HashAlg::Sha2_256, 1, name.as_bytes().to_vec()).cid();
        DirEntry {
            name: name.into(),
            node: Node {
                cid,
                filesize: 0,
                tsize: 1,
            },
        }
    }

    fn entries(names: &[&str]) -> Vec<DirEntry> {
        names.iter().map(|n| entry(n)).collect()
    }

    #[test]
    fn thresholds() {
        // One entry: 1 name byte + 36 CID bytes.
        let one = entries(&["a"]);
        let mut p = ImportProfile {
            hamt_threshold: 37,
            ..ImportProfile::default()
        };
        assert_eq!(p.dir_estimate(&one), Some(37));
        assert!(!p.exceeds_dir_limits(&one));
        assert!(ImportProfile {
            hamt_shard_at_threshold: true,
            ..p.clone()
        }
        .exceeds_dir_limits(&one));
        p.hamt_threshold = 1;
        assert!(p.exceeds_dir_limits(&one));
        assert!(!p.exceeds_dir_limits(&[]));
        // 0 turns sharding off, even by link count.
        p.hamt_threshold = 0;
        p.max_directory_links = Some(0);
        assert_eq!(p.dir_estimate(&one), None);
        assert!(!p.exceeds_dir_limits(&one));
        p.hamt_threshold = 1 << 20;
        assert!(p.exceeds_dir_limits(&one));
    }

    #[test]
    fn edits_follow_dynamic_directory_rules() {
        let p = ImportProfile {
            hamt_threshold: 80,
            ..ImportProfile::default()
        };
        let hamt = DirShape::Hamt { fanout: 16 };
        let (small, big) = (entries(&["a"]), entries(&["a", "b", "c"]));
        // A basic directory shards when an entry put takes it past the threshold...
        assert_eq!(
            p.shape_after_edit(DirShape::Basic, &small, &big, true),
            DirShape::Hamt { fanout: 256 }
        );
        assert_eq!(
            p.shape_after_edit(DirShape::Basic, &[], &small, true),
            DirShape::Basic
        );
        // ...but never on a removal, even when still past it.
        let bigger = entries(&["a", "b", "c", "d"]);
        assert_eq!(
            p.shape_after_edit(DirShape::Basic, &bigger, &big, false),
            DirShape::Basic
        );
        // A HAMT turns basic only when an edit shrinks it within the threshold.
        assert_eq!(
            p.shape_after_edit(hamt, &big, &small, false),
            DirShape::Basic
        );
        assert_eq!(p.shape_after_edit(hamt, &bigger, &big, false), hamt);
        // Growing, or staying the same size, keeps it a HAMT however small it is.
        assert_eq!(p.shape_after_edit(hamt, &[], &small, true), hamt);
        assert_eq!(p.shape_after_edit(hamt, &small, &small, true), hamt);
        // Sharding off: a HAMT stays one.
        let off = ImportProfile {
            hamt_threshold: 0,
            ..p.clone()
        };
        assert_eq!(off.shape_after_edit(hamt, &big, &small, false), hamt);
        assert_eq!(
            off.shape_after_edit(DirShape::Basic, &small, &big, true),
            DirShape::Basic
        );
        // Size disabled: only a link limit turns it back.
        let links = ImportProfile {
            hamt_estimate: HamtEstimate::Disabled,
            max_directory_links: Some(2),
            ..p
        };
        assert_eq!(
            links.shape_after_edit(hamt, &big, &small, false),
            DirShape::Basic
        );
        assert_eq!(
            links.shape_after_edit(DirShape::Basic, &small, &big, true),
            DirShape::Hamt { fanout: 256 }
        );
    }
}
