//! The node behind the HTTP gateway: blocks from the repo's memory cache of verified blocks,
//! else from its store (re-hashed on read when `datastore.verify_reads` is on, the default),
//! and the daemon's gateway listeners.
//!
//! IPNS is not implemented by the node yet: every name is "not found" (404 on `/ipns/` paths and
//! on `/routing/v1/ipns/`), until the name system lands.

use std::sync::Arc;

use ipfs_kit_block::{Bytes, Cid};
use ipfs_kit_gateway::{Backend, Config, Error as GatewayError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::daemon::{first_remote, listen_all, Bound, DaemonOptions, HttpOptions, Listen};
use crate::{Error, Repo};

/// The repo as the gateway sees it.
pub struct GatewayBackend {
    repo: Arc<Repo>,
}

impl GatewayBackend {
    /// Serves `repo`.
    pub fn new(repo: Arc<Repo>) -> Self {
        GatewayBackend { repo }
    }
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

impl Backend for GatewayBackend {
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, GatewayError> {
        self.repo.blocks().get(cid).map_err(internal)
    }

    fn get_cached_block(&self, cid: &Cid) -> Option<Bytes> {
        self.repo.cached_block(cid)
    }

    fn has_block(&self, cid: &Cid) -> Result<bool, GatewayError> {
        self.repo.blocks().has(cid).map_err(internal)
    }

    fn ipns_record(&self, name: &str) -> Result<Option<Vec<u8>>, GatewayError> {
        let Ok(parsed) = name.parse::<ipfs_kit_ipns::Name>() else {
            return Err(GatewayError::NotFound(format!(
                "invalid IPNS name {name:?}"
            )));
        };
        Ok(self
            .repo
            .ipns_record(&parsed)
            .map_err(internal)?
            .map(|r| r.encode()))
    }

    fn resolve_ipns(&self, name: &str) -> Result<String, GatewayError> {
        // Only the records this node holds (it publishes and stores them; the network comes
        // with libp2p).
        self.repo
            .name_resolve(name, true)
            .map_err(|e| GatewayError::NotFound(format!("cannot resolve /ipns/{name}: {e}")))
    }
}

/// Where the daemon writes the gateway's URL, as Kubo does (clients such as ipfsspec read it).
fn url_file(repo: &Repo) -> std::path::PathBuf {
    repo.path().join("gateway")
}

/// Binds the gateway on the addresses of `opts` (else the config's `addresses.gateway`),
/// serving until `stop` turns true; the servers join `servers`. Writes the `gateway` URL file.
pub(crate) async fn start(
    repo: &Arc<Repo>,
    opts: &DaemonOptions,
    http: HttpOptions,
    metrics: ipfs_kit_rpc::Metrics,
    stop: &watch::Receiver<bool>,
    servers: &mut JoinSet<()>,
) -> Result<Bound, Error> {
    let addrs = if opts.gateway.is_empty() {
        repo.config().addresses.gateway.clone()
    } else {
        opts.gateway.clone()
    };
    let listen = addrs
        .iter()
        .filter(|a| !a.is_empty())
        .map(|a| Listen::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(l) = first_remote(&listen).filter(|_| !opts.allow_remote_gateway) {
        return Err(Error::Config(format!(
            "refusing to serve the gateway on non-loopback {} (pass --allow-remote-gateway to do it anyway)",
            l.multiaddr()
        )));
    }
    let app = ipfs_kit_gateway::router(
        Arc::new(GatewayBackend::new(repo.clone())),
        Config::default(),
    )
    .layer(axum::middleware::from_fn_with_state(
        Observer {
            metrics,
            next_id: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        },
        observe,
    ));
    let bound = listen_all("the gateway", &listen, app, http, stop, servers).await?;
    if let Some(a) = bound.first_tcp {
        crate::write_atomic(&url_file(repo), format!("http://{a}").as_bytes())?;
    }
    Ok(bound)
}

/// What the gateway's requests are counted into.
#[derive(Clone)]
struct Observer {
    metrics: ipfs_kit_rpc::Metrics,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

/// Counts a gateway request (by path kind and status), gives it a request id (the
/// `X-Request-Id` header and `req=N` on its log lines) and logs one line when it is answered.
async fn observe(
    axum::extract::State(o): axum::extract::State<Observer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let id = o.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Subdomain requests ({cid}.ipfs.localhost) name their namespace in the host.
    let host_ns = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split('.').nth(1));
    let kind = match (request.uri().path().split('/').nth(1), host_ns) {
        (Some("routing"), _) => "routing",
        (Some("ipfs"), _) | (_, Some("ipfs")) => "ipfs",
        (Some("ipns"), _) | (_, Some("ipns")) => "ipns",
        _ => "other",
    };
    let path = request.uri().path().to_string();
    let span = tracing::info_span!("gateway", req = id);
    let mut resp = next.run(request).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    o.metrics.observe(kind, status, started.elapsed());
    if let Ok(v) = axum::http::HeaderValue::try_from(id.to_string()) {
        resp.headers_mut().insert("X-Request-Id", v);
    }
    span.in_scope(|| {
        tracing::info!(
            %path,
            status,
            ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    o.metrics.count_sent(kind, resp)
}

/// Removes the URL file [`start`] wrote.
pub(crate) fn cleanup(repo: &Repo) {
    let _ = std::fs::remove_file(url_file(repo));
}
