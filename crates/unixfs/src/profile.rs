//! Import profiles: every setting that decides a CID, in one value.

use std::str::FromStr;

use ipfs_kit_block::HashAlg;

use crate::chunker::ChunkerSpec;
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
    /// Estimated directory size, in bytes, from which a directory is sharded.
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
