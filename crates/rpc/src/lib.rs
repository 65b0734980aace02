//! Kubo's HTTP RPC API (`/api/v0`) for ipfs-kit.
//!
//! This crate owns the wire conventions (POST only, `arg=` parameters, options as query
//! parameters, Kubo's error JSON `{"Message","Code","Type":"error"}` and its status codes,
//! streamed bodies) and the routing. What the commands do is behind [`Backend`], which the node
//! implements; this crate never depends on the node.
//!
//! Blocking backend calls run on tokio's blocking pool; streamed output travels through a
//! bounded channel, so a slow or gone client slows or stops the producer instead of buffering.

mod error;
mod request;
mod server;

pub use error::{ErrorKind, RpcError};
pub use request::Request;
pub use server::{router, Limits};

use std::io::Write;

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

/// What the RPC API needs from a node. Methods block; the server calls them off the async
/// runtime. Errors are already in Kubo's terms.
pub trait Backend: Send + Sync + 'static {
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
}
