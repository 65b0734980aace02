//! The node behind the HTTP gateway: blocks from the repo's memory cache of verified blocks,
//! else from its store (re-hashed on read when `datastore.verify_reads` is on, the default),
//! and the daemon's gateway listeners.
//!
//! IPNS names resolve through the repo's name system (its own records, and online the DHT and
//! pubsub); delegated routing (`/routing/v1/`) asks the running network, and answers 501 when
//! the daemon is offline.

use std::sync::Arc;

use ipfs_kit_block::{Bytes, Cid};
use ipfs_kit_gateway::{Backend, Config, Error as GatewayError, RoutingPeer};
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

impl GatewayBackend {
    fn online(&self) -> Result<std::sync::Arc<crate::Online>, GatewayError> {
        self.repo.online().ok_or_else(|| {
            GatewayError::NotImplemented("delegated routing needs the daemon online".into())
        })
    }
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

impl Backend for GatewayBackend {
    /// From the repo, and when online from the network (bitswap), as Kubo's gateway does.
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, GatewayError> {
        match self.repo.block_bytes(cid) {
            Ok(data) => Ok(Some(data)),
            Err(crate::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(internal(e)),
        }
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
        self.repo.ipns_record_bytes(&parsed).map_err(internal)
    }

    fn find_providers(&self, cid: &Cid, limit: usize) -> Result<Vec<RoutingPeer>, GatewayError> {
        let online = self.online()?;
        let (net, cid) = (online.network().clone(), *cid);
        let timeout = online.fetch_timeout;
        let found = online
            .wait(async move {
                let mut rx = net.find_providers(cid, limit).await?;
                let mut found: Vec<ipfs_kit_net::PeerInfo> = Vec::new();
                let deadline = tokio::time::Instant::now() + timeout;
                while let Ok(Some(p)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    if !found.iter().any(|f| f.peer == p.peer) {
                        found.push(p);
                    }
                    if found.len() >= limit {
                        break;
                    }
                }
                Ok::<_, ipfs_kit_net::Error>(found)
            })
            .map_err(internal)?
            .map_err(internal)?;
        Ok(found
            .into_iter()
            .map(|p| RoutingPeer {
                id: p.peer.to_string(),
                addrs: (!p.addr.is_empty())
                    .then(|| p.addr.to_string())
                    .into_iter()
                    .collect(),
                protocols: vec!["transport-bitswap".to_string()],
            })
            .collect())
    }

    fn find_peer(&self, peer: &str) -> Result<Option<RoutingPeer>, GatewayError> {
        let p: ipfs_kit_net::PeerId = match peer.parse::<ipfs_kit_ipns::PeerId>() {
            Ok(id) => ipfs_kit_net::PeerId::from_bytes(&id.multihash().to_bytes())
                .map_err(|e| GatewayError::Invalid(e.to_string()))?,
            Err(e) => return Err(GatewayError::Invalid(e.to_string())),
        };
        let online = self.online()?;
        let net = online.network().clone();
        let timeout = online.fetch_timeout;
        let addrs = online
            .wait(async move {
                tokio::time::timeout(timeout, net.find_peer(p))
                    .await
                    .unwrap_or(Err(ipfs_kit_net::Error::Routing("timed out".into())))
            })
            .map_err(internal)?;
        let Ok(addrs) = addrs else { return Ok(None) };
        let net = online.network().clone();
        let protocols = online
            .wait(async move { net.peer_identity(p).await })
            .map_err(internal)?
            .ok()
            .flatten()
            .map(|i| i.protocols)
            .unwrap_or_default();
        Ok(Some(RoutingPeer {
            id: p.to_string(),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
            protocols,
        }))
    }

    fn put_ipns_record(&self, name: &str, record: &[u8]) -> Result<(), GatewayError> {
        let parsed: ipfs_kit_ipns::Name = name
            .parse()
            .map_err(|e: ipfs_kit_ipns::Error| GatewayError::Invalid(e.to_string()))?;
        let r = ipfs_kit_ipns::Record::decode(record)
            .and_then(|r| r.verify(&parsed, std::time::SystemTime::now()).map(|_| r))
            .map_err(|e| GatewayError::Invalid(e.to_string()))?;
        self.online()?
            .publish_record(&parsed, &r)
            .map_err(|e| GatewayError::Internal(e.to_string()))
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
