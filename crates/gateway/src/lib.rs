//! The IPFS HTTP gateway of ipfs-kit: a read-only [path gateway] and [trustless gateway] over
//! any block source, plus the IPNS part of [delegated routing].
//!
//! - `GET/HEAD /ipfs/{cid}[/path]` and `/ipns/{name}[/path]`: UnixFS files (with `Range`, content
//!   type by extension and sniffing, `?filename=` / `?download=true`), directories (`index.html`
//!   or a paged HTML listing, redirected to a trailing slash first), dag-json / dag-cbor / json /
//!   cbor blocks;
//! - `?format=raw|car|dag-json|dag-cbor|json|cbor|ipns-record` or the matching `Accept` types:
//!   verifiable raw blocks and CAR streams (`dag-scope`, `entity-bytes`, `order=dfs`, `dups`);
//! - delegated routing ([`routing`]): `GET /routing/v1/providers/{cid}`, `/peers/{id}`,
//!   `/ipns/{name}` and `PUT /routing/v1/ipns/{name}`;
//! - the [subdomain gateway] on the hosts of [`Config::subdomain_hosts`] (`localhost` by
//!   default, as Kubo): `Host: {cid}.ipfs.localhost` serves `/ipfs/{cid}` at `/`, path requests
//!   on `localhost` itself move there (301), and these origin-isolated requests honour the
//!   content root's `_redirects` file ([`redirects`]). Other hosts (`127.0.0.1`) are a plain
//!   path gateway.
//!
//! Everything the gateway needs from a node is behind [`Backend`]: blocks by CID, and IPNS. The
//! gateway does the UnixFS and IPLD work itself with `ipfs-kit-unixfs` and `ipfs-kit-block`, so a
//! backend is a few lines over a block store. Backend calls block; the gateway makes them on
//! tokio's blocking pool, and streams large bodies through a bounded channel, so a slow client
//! slows the reader instead of filling memory.
//!
//! ```
//! use std::sync::Arc;
//! use ipfs_kit_block::{Bytes, Cid};
//! use ipfs_kit_gateway::{router, Backend, Config, Error};
//!
//! struct Empty;
//! impl Backend for Empty {
//!     fn get_block(&self, _: &Cid) -> Result<Option<Bytes>, Error> { Ok(None) }
//!     fn has_block(&self, _: &Cid) -> Result<bool, Error> { Ok(false) }
//!     fn ipns_record(&self, _: &str) -> Result<Option<Vec<u8>>, Error> { Ok(None) }
//!     fn resolve_ipns(&self, name: &str) -> Result<String, Error> {
//!         Err(Error::NotFound(format!("cannot resolve {name}")))
//!     }
//! }
//! let app: axum::Router = router(Arc::new(Empty), Config::default());
//! ```
//!
//! [path gateway]: https://specs.ipfs.tech/http-gateways/path-gateway/
//! [trustless gateway]: https://specs.ipfs.tech/http-gateways/trustless-gateway/
//! [subdomain gateway]: https://specs.ipfs.tech/http-gateways/subdomain-gateway/
//! [delegated routing]: https://specs.ipfs.tech/routing/http-routing-v1/

mod car;
pub mod content_type;
mod handler;
mod hostname;
mod listing;
pub mod parse;
pub mod redirects;
mod resolve;
pub mod routing;

use ipfs_kit_block::{Bytes, Cid};

pub use handler::router;

/// Errors a [`Backend`] reports; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The content or name is not available here (404).
    #[error("{0}")]
    NotFound(String),
    /// Retrieval did not finish in time (504).
    #[error("{0}")]
    Timeout(String),
    /// The backend cannot do this at all (501).
    #[error("{0}")]
    NotImplemented(String),
    /// The backend failed (500): storage errors, corrupt blocks.
    #[error("{0}")]
    Internal(String),
    /// The request's input is not valid (400): a record that does not verify for its name.
    #[error("{0}")]
    Invalid(String),
}

/// A peer as delegated routing describes it (the spec's `peer` schema).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingPeer {
    /// The peer ID (base58btc multihash).
    pub id: String,
    /// Its multiaddrs, without `/p2p/`.
    pub addrs: Vec<String>,
    /// Protocols it is known to speak (`transport-bitswap`), possibly none.
    pub protocols: Vec<String>,
}

/// What the gateway needs from a node. Methods block; the gateway calls them off the async
/// runtime.
pub trait Backend: Send + Sync + 'static {
    /// The bytes of the block named by `cid`, already checked against its multihash, or `None`
    /// when this node does not have it. Identity CIDs never reach the backend.
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, Error>;
    /// The block if it is in memory now and already checked against its multihash, without
    /// any I/O or waiting; `None` otherwise. The gateway first tries to answer an `/ipfs/`
    /// request from such blocks on the async runtime, and hands it to the blocking pool
    /// (and [`Backend::get_block`]) only when one is missing. The default has no memory.
    fn get_cached_block(&self, cid: &Cid) -> Option<Bytes> {
        let _ = cid;
        None
    }
    /// Whether the block is held locally, without reading it (for `Cache-Control:
    /// only-if-cached`).
    fn has_block(&self, cid: &Cid) -> Result<bool, Error>;
    /// The signed IPNS record (protobuf bytes) of `name`, or `None` when there is none.
    fn ipns_record(&self, name: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Resolves an IPNS name (a key or a DNSLink domain) to an `/ipfs/{cid}[/path]` path.
    fn resolve_ipns(&self, name: &str) -> Result<String, Error>;
    /// Up to `limit` providers of `cid` (`/routing/v1/providers/`). The default: none known
    /// here (501).
    fn find_providers(&self, cid: &Cid, limit: usize) -> Result<Vec<RoutingPeer>, Error> {
        let _ = (cid, limit);
        Err(Error::NotImplemented(
            "content routing is not available".into(),
        ))
    }
    /// What is known of `peer` (`/routing/v1/peers/`): `None` when nothing is.
    fn find_peer(&self, peer: &str) -> Result<Option<RoutingPeer>, Error> {
        let _ = peer;
        Err(Error::NotImplemented(
            "peer routing is not available".into(),
        ))
    }
    /// Validates `record` for `name` and publishes it (`PUT /routing/v1/ipns/`);
    /// [`Error::Invalid`] for a record that does not verify.
    fn put_ipns_record(&self, name: &str, record: &[u8]) -> Result<(), Error> {
        let _ = (name, record);
        Err(Error::NotImplemented(
            "publishing IPNS records is not available".into(),
        ))
    }
}

/// Gateway settings: `Config::default()` plus the `with_*` setters.
#[derive(Clone, Debug)]
pub struct Config {
    /// Requests served at once; more get 429 with `Retry-After` instead of queueing unbounded.
    pub concurrent_requests: usize,
    /// Chunks buffered ahead of a slow client on a streamed response.
    pub stream_buffer: usize,
    /// Bodies up to this many bytes are read whole before the response starts (cheaper for
    /// small files); larger ones are streamed.
    pub buffer_limit: u64,
    /// Entries per page of a generated directory listing.
    pub dir_page_size: usize,
    /// Most ranges served in one multi-range response.
    pub max_ranges: usize,
    /// Most path segments below the root of a content path.
    pub max_path_segments: usize,
    /// Convert between dag-json, dag-cbor and dag-pb when a format other than the block's own
    /// codec is asked for. Off by default: IPIP-524 answers such requests with 406.
    pub allow_codec_conversion: bool,
    /// Hostnames served as subdomain gateways (`{cid}.ipfs.{host}`, `{name}.ipns.{host}`),
    /// compared without the port and case-insensitively. Path requests arriving with one of
    /// these hosts are moved to their subdomain (301). Default: `localhost` (Kubo's default);
    /// empty: a path gateway on every host.
    pub subdomain_hosts: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            concurrent_requests: 1024,
            stream_buffer: 8,
            buffer_limit: 2 << 20,
            dir_page_size: 1000,
            max_ranges: 16,
            max_path_segments: 256,
            allow_codec_conversion: false,
            subdomain_hosts: vec!["localhost".to_string()],
        }
    }
}

impl Config {
    /// Sets [`Config::concurrent_requests`] (at least 1).
    pub fn with_concurrent_requests(mut self, n: usize) -> Self {
        self.concurrent_requests = n.max(1);
        self
    }

    /// Sets [`Config::stream_buffer`] (at least 1).
    pub fn with_stream_buffer(mut self, chunks: usize) -> Self {
        self.stream_buffer = chunks.max(1);
        self
    }

    /// Sets [`Config::buffer_limit`].
    pub fn with_buffer_limit(mut self, bytes: u64) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// Sets [`Config::dir_page_size`] (at least 1).
    pub fn with_dir_page_size(mut self, entries: usize) -> Self {
        self.dir_page_size = entries.max(1);
        self
    }

    /// Sets [`Config::max_ranges`] (at least 1).
    pub fn with_max_ranges(mut self, n: usize) -> Self {
        self.max_ranges = n.max(1);
        self
    }

    /// Sets [`Config::max_path_segments`].
    pub fn with_max_path_segments(mut self, n: usize) -> Self {
        self.max_path_segments = n;
        self
    }

    /// Sets [`Config::subdomain_hosts`].
    pub fn with_subdomain_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subdomain_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`Config::allow_codec_conversion`].
    pub fn with_codec_conversion(mut self, allow: bool) -> Self {
        self.allow_codec_conversion = allow;
        self
    }
}
