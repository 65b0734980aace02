//! Kubo's HTTP RPC API (`/api/v0`) for ipfs-kit.
//!
//! This crate owns the wire conventions (POST only, `arg=` parameters, options as query
//! parameters, Kubo's error JSON `{"Message","Code","Type":"error"}` and its status codes,
//! streamed bodies) and the routing. What the commands do is behind [`Backend`], which the node
//! implements; this crate never depends on the node.
//!
//! Blocking backend calls run on tokio's blocking pool; streamed output travels through a
//! bounded channel, so a slow or gone client slows or stops the producer instead of buffering.

mod access;
mod error;
mod files;
mod keys;
mod metrics;
mod name;
mod network;
mod request;
mod server;
mod upload;

pub use access::{Access, Authorization};
pub use error::{ErrorKind, RpcError};
pub use files::{FilesEntry, FilesStat, FilesWrite};
pub use keys::KeyEntry;
pub use metrics::Metrics;
pub use name::NamePublish;
/// Largest value `routing put` accepts: an IPNS record's limit.
pub(crate) const MAX_ROUTING_VALUE: usize = 10 * 1024;
pub use network::{Bandwidth, NetworkApi, PingLine, PubsubMessage, SwarmPeer};
pub use request::Request;
pub use server::{call_deadline, router, Limits};
pub use upload::{AddEvent, AddParams, Upload, UploadKind};

use std::io::{Read, Write};

use serde::Serialize;

/// `repo/stat` figures, with Kubo's field names.
#[derive(Clone, Debug, Serialize)]
pub struct RepoStat {
    /// Bytes the repo takes on disk.
    #[serde(rename = "RepoSize")]
    pub repo_size: u64,
    /// Upper bound Kubo reports (we have none: `u64::MAX`).
    #[serde(rename = "StorageMax")]
    pub storage_max: u64,
    /// Number of blocks.
    #[serde(rename = "NumObjects")]
    pub num_objects: u64,
    /// The repo directory.
    #[serde(rename = "RepoPath")]
    pub repo_path: String,
    /// Repo format version.
    #[serde(rename = "Version")]
    pub version: String,
}

/// `storage/tiers`: every tier's figures and the migrations still pending.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StorageTiers {
    /// The tiers, hottest first: `memory` (in a daemon), `local`, then object storage.
    pub tiers: Vec<TierInfo>,
    /// Migrations that failed part way and are retried until they complete.
    pub pending: Vec<PendingMigration>,
}

/// `storage/tiers`: one storage tier's figures.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TierInfo {
    /// The tier's name (`memory`, `local`, `s3`).
    pub name: String,
    /// Blocks it holds.
    pub blocks: u64,
    /// Bytes of those blocks.
    pub bytes: u64,
    /// The bytes it should hold at most, when it has a limit.
    pub capacity: Option<u64>,
    /// Whether what it holds survives a restart.
    pub durable: bool,
    /// Why it could not be counted (its server unreachable), if it could not.
    pub error: Option<String>,
    /// Reads that found their block here since the node started.
    pub hits: u64,
    /// Reads that asked this tier and did not find the block.
    pub misses: u64,
    /// Reads that failed.
    pub errors: u64,
    /// `Hits / (Hits + Misses + Errors)`, when there were reads.
    pub hit_ratio: Option<f64>,
    /// Bytes the hits returned.
    pub read_bytes: u64,
    /// Read latency percentiles in microseconds (upper bounds of power-of-two buckets), when
    /// there were timed reads: `{"P50": …, "P90": …, "P99": …}`.
    pub latency_us: Option<Latency>,
    /// Blocks moved into this tier by migrations and promotions.
    pub moved_in_blocks: u64,
    /// Their bytes.
    pub moved_in_bytes: u64,
    /// Blocks moved out of it.
    pub moved_out_blocks: u64,
}

/// Read latency percentiles, in microseconds.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Latency {
    /// Half the reads took at most this long.
    pub p50: u64,
    /// Nine in ten.
    pub p90: u64,
    /// 99 in 100.
    pub p99: u64,
}

/// `storage/tiers`: a migration not finished yet.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PendingMigration {
    /// The DAG's root CID.
    pub root: String,
    /// The tier it moves to.
    pub tier: String,
    /// The whole DAG, or the root block alone.
    pub recursive: bool,
}

/// `storage/stat`: where one block of a DAG lives.
#[derive(Clone, Debug, Serialize)]
pub struct BlockTiers {
    /// The block's CID.
    #[serde(rename = "Cid")]
    pub cid: String,
    /// Its size, when some tier holds it.
    #[serde(rename = "Size")]
    pub size: Option<u64>,
    /// The tiers holding it, in tier order.
    #[serde(rename = "Tiers")]
    pub tiers: Vec<String>,
    /// How hot it is: accesses, each weighted by `2^(-age / half-life)`.
    #[serde(rename = "Heat")]
    pub heat: f64,
}

/// `storage/migrate`: what moving a DAG did.
#[derive(Clone, Debug, Serialize)]
pub struct Migrated {
    /// Blocks copied into the target tier.
    #[serde(rename = "Copied")]
    pub copied: u64,
    /// Bytes copied.
    #[serde(rename = "Bytes")]
    pub bytes: u64,
    /// Blocks that were there already.
    #[serde(rename = "Already")]
    pub already: u64,
    /// Copies removed from the other tiers.
    #[serde(rename = "Removed")]
    pub removed: u64,
}

/// `storage/rebalance`: what one demotion pass did.
#[derive(Clone, Debug, Serialize)]
pub struct Rebalance {
    /// Block bytes on the local disk before the pass.
    #[serde(rename = "Before")]
    pub before: u64,
    /// …and after it.
    #[serde(rename = "After")]
    pub after: u64,
    /// The tier blocks moved to, if any did.
    #[serde(rename = "To")]
    pub to: Option<String>,
    /// What the moves did.
    #[serde(flatten)]
    pub moved: Migrated,
    /// Blocks deleted from object storage past its high watermark (nothing kept them).
    #[serde(rename = "Evicted")]
    pub evicted: u64,
    /// Their bytes.
    #[serde(rename = "EvictedBytes")]
    pub evicted_bytes: u64,
}

/// The walk options of `refs` (the output format is the server's business).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefsParams {
    /// Follow links below the first level.
    pub recursive: bool,
    /// List each CID once.
    pub unique: bool,
    /// With `recursive`, at most this many levels below the root (`None`: no limit).
    pub max_depth: Option<u64>,
}

/// One link `refs` found: CIDs as strings in their own encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefEdge {
    /// The block the link is in.
    pub src: String,
    /// The block it links to.
    pub dst: String,
    /// The link's name (dag-pb), or empty.
    pub name: String,
}

/// One entry of an `ls` listing, with Kubo's field names.
#[derive(Clone, Debug, Serialize)]
pub struct LsLink {
    /// Entry name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Entry CID.
    #[serde(rename = "Hash")]
    pub hash: String,
    /// File size for files, cumulative size otherwise.
    #[serde(rename = "Size")]
    pub size: u64,
    /// UnixFS type number: 1 directory, 2 file, 4 symlink (Kubo's codes).
    #[serde(rename = "Type")]
    pub kind: u8,
    /// Symlink target, empty otherwise.
    #[serde(rename = "Target")]
    pub target: String,
}

/// A dag-pb node as the legacy `object` commands show it.
#[derive(Clone, Debug, Default)]
pub struct ObjectNode {
    /// The node's CID.
    pub cid: String,
    /// The data field.
    pub data: Vec<u8>,
    /// (name, CID, Tsize) of each link, in stored order.
    pub links: Vec<(String, String, u64)>,
    /// The encoded block's size.
    pub block_size: u64,
}

/// An `object new` or `object patch` edit, as the API names it.
#[derive(Clone, Debug)]
pub enum ObjectEdit {
    /// `object/new` with an optional template.
    New(Option<String>),
    /// `object/patch/add-link`: name and target path.
    AddLink(String, String),
    /// `object/patch/rm-link`: name.
    RmLink(String),
    /// `object/patch/set-data`: the new data.
    SetData(Vec<u8>),
    /// `object/patch/append-data`: data to append.
    AppendData(Vec<u8>),
}

/// What `dag/import` did.
#[derive(Clone, Debug, Default)]
pub struct DagImported {
    /// Each root with the error that kept it from being pinned, if any.
    pub roots: Vec<(String, Option<String>)>,
    /// Blocks read.
    pub blocks: u64,
    /// Bytes of block data read.
    pub bytes: u64,
}

/// What the RPC API needs from a node. Methods block; the server calls them off the async
/// runtime. Errors are already in Kubo's terms.
pub trait Backend: Send + Sync + 'static {
    /// Imports an upload, calling `emit` for every added entry (and progress line) in order.
    fn add(
        &self,
        upload: &mut Upload,
        params: &AddParams,
        emit: &mut dyn FnMut(AddEvent) -> std::io::Result<()>,
    ) -> Result<(), RpcError>;
    /// Stores one block; returns its CID and size. `cid_codec`/`mhtype`/`format` as Kubo names them.
    fn block_put(
        &self,
        data: Vec<u8>,
        cid_codec: &str,
        mhtype: &str,
        format: Option<&str>,
        allow_big: bool,
        pin: bool,
    ) -> Result<(String, u64), RpcError>;
    /// Stores an IPLD node given in `input_codec` as `store_codec`; returns its CID.
    fn dag_put(
        &self,
        data: Vec<u8>,
        input_codec: &str,
        store_codec: &str,
        hash: &str,
        pin: bool,
        allow_big: bool,
    ) -> Result<String, RpcError>;
    /// Imports the CARs of an upload; each root with its pin error, then (blocks, bytes).
    fn dag_import(&self, upload: &mut Upload, pin_roots: bool) -> Result<DagImported, RpcError>;
    /// The node's identity (`id`), as Kubo's JSON object.
    fn id(&self) -> Result<serde_json::Value, RpcError>;
    /// `version`: Kubo's JSON object.
    fn version(&self) -> serde_json::Value;
    /// Writes a file's bytes (from `offset`, at most `length`) to `out`.
    fn cat(
        &self,
        path: &str,
        offset: u64,
        length: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<(), RpcError>;
    /// Writes the file, directory or symlink at `path` to `out` as a tar stream.
    fn get(&self, path: &str, out: &mut dyn Write) -> Result<(), RpcError>;
    /// The bytes of one block.
    fn block_get(&self, path: &str) -> Result<bytes::Bytes, RpcError>;
    /// A block's CID string and size.
    fn block_stat(&self, path: &str) -> Result<(String, u64), RpcError>;
    /// Every block's CID string.
    fn refs_local(&self) -> Result<Vec<String>, RpcError>;
    /// Repo size figures.
    fn repo_stat(&self) -> Result<RepoStat, RpcError>;
    /// Pins as (CID string, type name); `kind` is all, recursive, direct or indirect.
    fn pin_ls(&self, paths: &[String], kind: &str) -> Result<Vec<(String, String)>, RpcError>;
    /// Pins paths; returns the pinned CIDs.
    fn pin_add(&self, paths: &[String], recursive: bool) -> Result<Vec<String>, RpcError>;
    /// Unpins paths; returns the unpinned CIDs.
    fn pin_rm(&self, paths: &[String], recursive: bool) -> Result<Vec<String>, RpcError>;
    /// Removes blocks; each CID with the error that kept it, if any.
    fn block_rm(
        &self,
        cids: &[String],
        force: bool,
    ) -> Result<Vec<(String, Option<String>)>, RpcError>;
    /// Garbage-collects; returns the removed CIDs.
    fn repo_gc(&self) -> Result<Vec<String>, RpcError>;
    /// Every storage tier's figures, the local one first.
    fn storage_tiers(&self) -> Result<StorageTiers, RpcError>;
    /// Where each block of the DAG at `path` lives, root first.
    fn storage_stat(&self, path: &str) -> Result<Vec<BlockTiers>, RpcError>;
    /// Moves the DAG at `path` (without `recursive`, its root block alone) into the tier named
    /// `tier`.
    fn storage_migrate(
        &self,
        path: &str,
        tier: &str,
        recursive: bool,
    ) -> Result<Migrated, RpcError>;
    /// Drops the pending migration of the DAG at `path`; whether there was one.
    fn storage_migrate_cancel(&self, path: &str) -> Result<bool, RpcError>;
    /// Runs one demotion pass of the local disk against its watermarks now.
    fn storage_rebalance(&self) -> Result<Rebalance, RpcError>;
    /// The tiering policy (the config's `Tiering` section, Kubo-style names), after setting
    /// one of its settings when `set` names one and its value.
    fn storage_policy(
        &self,
        set: Option<(&str, serde_json::Value)>,
    ) -> Result<serde_json::Value, RpcError>;
    /// Re-hashes every block: the bad ones with why, and the number checked.
    fn repo_verify(&self) -> Result<(Vec<(String, String)>, u64), RpcError>;
    /// Walks the links below each of `paths` as Kubo's `refs` does, calling `emit` for each
    /// edge listed, in order. Every path is resolved first: one that does not resolve is the
    /// command's error, before anything is listed. A walk that fails part way emits its error
    /// (`Err`) after the edges before it and goes on with the next path, as Kubo does.
    fn refs(
        &self,
        paths: &[String],
        params: &RefsParams,
        emit: &mut dyn FnMut(Result<RefEdge, String>) -> std::io::Result<()>,
    ) -> Result<(), RpcError>;
    /// The last CID a path reaches through links, and the path left inside that node.
    fn dag_resolve(&self, path: &str) -> Result<(String, String), RpcError>;
    /// A node encoded with the named codec.
    fn dag_get(&self, path: &str, output_codec: &str) -> Result<Vec<u8>, RpcError>;
    /// The DAG under a path as a CARv1.
    fn dag_export(&self, path: &str, out: &mut dyn Write) -> Result<(), RpcError>;
    /// A directory listing (or the links of another node).
    fn ls(&self, path: &str) -> Result<Vec<LsLink>, RpcError>;
    /// The dag-pb node at `path`, for the legacy `object` commands.
    fn object(&self, path: &str) -> Result<ObjectNode, RpcError>;
    /// Applies an `object` edit to the dag-pb node at `root` (none for `New`); the new CID.
    fn object_edit(&self, root: Option<&str>, edit: ObjectEdit) -> Result<String, RpcError>;
    /// The node's metrics in Prometheus' text format.
    fn prometheus(&self) -> Result<String, RpcError>;
    /// The whole config as JSON, secrets removed.
    fn config_show(&self) -> Result<serde_json::Value, RpcError>;
    /// One config value.
    fn config_get(&self, key: &str) -> Result<serde_json::Value, RpcError>;
    /// Sets one config value; answers the value now stored (what `config_get` would answer).
    fn config_set(
        &self,
        key: &str,
        value: serde_json::Value,
    ) -> Result<serde_json::Value, RpcError>;
    /// Replaces the whole config with `config`, in Kubo's form.
    fn config_replace(&self, config: serde_json::Value) -> Result<(), RpcError>;

    // MFS (`files/*`), keys (`key/*`) and IPNS (`name/*`).

    /// `files/stat` of an MFS path or an `/ipfs/` path.
    fn files_stat(&self, path: &str) -> Result<FilesStat, RpcError>;
    /// `files/ls`: a directory's entries with type, size and CID, or the file itself.
    fn files_ls(&self, path: &str) -> Result<Vec<FilesEntry>, RpcError>;
    /// `files/read`: a file's bytes from `offset`, at most `count`.
    fn files_read(
        &self,
        path: &str,
        offset: u64,
        count: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<(), RpcError>;
    /// `files/write`: writes `data` into the file at `path`.
    fn files_write(
        &self,
        path: &str,
        data: &mut dyn Read,
        opts: &FilesWrite,
    ) -> Result<(), RpcError>;
    /// `files/mkdir`.
    fn files_mkdir(
        &self,
        path: &str,
        parents: bool,
        cid_version: Option<u8>,
        hash: Option<&str>,
    ) -> Result<(), RpcError>;
    /// `files/cp` (source an MFS or `/ipfs/` path).
    fn files_cp(&self, src: &str, dst: &str, parents: bool) -> Result<(), RpcError>;
    /// `files/mv`.
    fn files_mv(&self, src: &str, dst: &str) -> Result<(), RpcError>;
    /// `files/rm`.
    fn files_rm(&self, paths: &[String], recursive: bool, force: bool) -> Result<(), RpcError>;
    /// `files/flush`: the CID at `path`.
    fn files_flush(&self, path: &str) -> Result<String, RpcError>;
    /// `files/chcid`.
    fn files_chcid(
        &self,
        path: &str,
        cid_version: Option<u8>,
        hash: Option<&str>,
    ) -> Result<(), RpcError>;
    /// `key/gen` of a key of type `kind` (`ed25519`, `rsa`; others refused with Kubo's
    /// `unrecognized key type`); `size` is the RSA size in bits (`None`: Kubo's default).
    /// RSA generation is slow: the router calls this on a blocking thread.
    fn key_gen(&self, name: &str, kind: &str, size: Option<i64>) -> Result<KeyEntry, RpcError>;
    /// `key/list`, `self` first.
    fn key_list(&self) -> Result<Vec<KeyEntry>, RpcError>;
    /// `key/rename`: the key under its new name and whether one was overwritten.
    fn key_rename(&self, old: &str, new: &str, force: bool) -> Result<(KeyEntry, bool), RpcError>;
    /// `key/rm`.
    fn key_rm(&self, names: &[String]) -> Result<Vec<KeyEntry>, RpcError>;
    /// `key/import` of a libp2p protobuf or PKCS#8 PEM key.
    fn key_import(&self, name: &str, data: Vec<u8>) -> Result<KeyEntry, RpcError>;
    /// `key/export` in Kubo's `format`.
    fn key_export(&self, name: &str, format: &str) -> Result<Vec<u8>, RpcError>;
    /// `name/publish`: (IPNS name `k51…`, peer ID, published value).
    fn name_publish(
        &self,
        path: &str,
        opts: &NamePublish,
    ) -> Result<(String, String, String), RpcError>;
    /// `name/resolve` of a name (`None`: the node's own).
    fn name_resolve(&self, name: Option<&str>, recursive: bool) -> Result<String, RpcError>;
    /// `name/pubsub/state`: whether IPNS over pubsub is on.
    fn ipns_pubsub_enabled(&self) -> bool {
        false
    }
    /// `name/pubsub/subs`: the names (`/ipns/k51…`) followed over pubsub.
    fn ipns_pubsub_subs(&self) -> Result<Vec<String>, RpcError> {
        Err(RpcError::normal(crate::name::PUBSUB_OFF))
    }
    /// `name/pubsub/cancel`: stops following a name over pubsub; false when it was not.
    fn ipns_pubsub_cancel(&self, name: &str) -> Result<bool, RpcError> {
        let _ = name;
        Err(RpcError::normal(crate::name::PUBSUB_OFF))
    }

    // The network.

    /// The running network, when the node is online (`None`: network commands answer Kubo's
    /// offline errors).
    fn network(&self) -> Option<&dyn NetworkApi> {
        None
    }
    /// `bootstrap`: the list (`None`), or applies `edit` and answers the entries it added or
    /// removed. Works offline too: it only edits the config.
    fn bootstrap(&self, edit: Option<BootstrapEdit>) -> Result<Vec<String>, RpcError>;
}

/// A change to the bootstrap list (`bootstrap add|rm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootstrapEdit {
    /// Add these multiaddrs (each must name its peer, `/p2p/<id>`).
    Add(Vec<String>),
    /// Add Kubo's public bootstrap peers.
    AddDefault,
    /// Remove these.
    Remove(Vec<String>),
    /// Remove every peer.
    RemoveAll,
}
