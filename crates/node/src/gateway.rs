//! The node behind the HTTP gateway: blocks from the repo's store (re-hashed on read when
//! `datastore.verify_reads` is on, the default), and the daemon's gateway listeners.
//!
//! IPNS is not implemented by the node yet: every name is "not found" (404 on `/ipns/` paths and
//! on `/routing/v1/ipns/`), until the name system lands.

use std::net::SocketAddr;
use std::sync::Arc;

use ipfs_kit_block::{Bytes, Cid};
use ipfs_kit_gateway::{Backend, Config, Error as GatewayError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::daemon::{DaemonOptions, Listen};
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

    fn has_block(&self, cid: &Cid) -> Result<bool, GatewayError> {
        self.repo.blocks().has(cid).map_err(internal)
    }

    fn ipns_record(&self, _name: &str) -> Result<Option<Vec<u8>>, GatewayError> {
        Ok(None)
    }

    fn resolve_ipns(&self, name: &str) -> Result<String, GatewayError> {
        Err(GatewayError::NotFound(format!(
            "cannot resolve /ipns/{name}: this node has no name system yet"
        )))
    }
}

/// Where the daemon writes the gateway's URL, as Kubo does (clients such as ipfsspec read it).
fn url_file(repo: &Repo) -> std::path::PathBuf {
    repo.path().join("gateway")
}

/// Binds the gateway on the addresses of `opts` (else the config's `addresses.gateway`),
/// serving until `stop` turns true; the servers join `servers`. Returns the bound multiaddrs.
pub(crate) async fn start(
    repo: &Arc<Repo>,
    opts: &DaemonOptions,
    stop: &watch::Receiver<bool>,
    servers: &mut JoinSet<std::io::Result<()>>,
) -> Result<Vec<String>, Error> {
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
    for l in &listen {
        if let Listen::Tcp(a) = l {
            if !a.ip().is_loopback() && !opts.allow_remote_gateway {
                return Err(Error::Config(format!(
                    "refusing to serve the gateway on non-loopback {} (pass --allow-remote-gateway to do it anyway)",
                    l.multiaddr()
                )));
            }
        }
    }
    let app = ipfs_kit_gateway::router(
        Arc::new(GatewayBackend::new(repo.clone())),
        Config::default(),
    );
    let mut bound = Vec::new();
    let mut first_tcp: Option<SocketAddr> = None;
    for l in &listen {
        let mut stop = stop.clone();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let context = || format!("bind the gateway to {}", l.multiaddr());
        match l {
            Listen::Tcp(a) => {
                let listener = tokio::net::TcpListener::bind(a)
                    .await
                    .map_err(|e| Error::io(context(), e))?;
                let local = listener
                    .local_addr()
                    .map_err(|e| Error::io("local address", e))?;
                first_tcp.get_or_insert(local);
                bound.push(Listen::Tcp(local).multiaddr());
                let server = axum::serve(listener, app.clone()).with_graceful_shutdown(stopped);
                servers.spawn(async move { server.await });
            }
            Listen::Unix(p) => {
                let listener =
                    tokio::net::UnixListener::bind(p).map_err(|e| Error::io(context(), e))?;
                bound.push(l.multiaddr());
                let server = axum::serve(listener, app.clone()).with_graceful_shutdown(stopped);
                servers.spawn(async move { server.await });
            }
        }
    }
    if let Some(a) = first_tcp {
        crate::write_atomic(&url_file(repo), format!("http://{a}").as_bytes())?;
    }
    Ok(bound)
}

/// Removes what [`start`] left on disk: the URL file and Unix sockets.
pub(crate) fn cleanup(repo: &Repo, opts: &DaemonOptions) {
    let _ = std::fs::remove_file(url_file(repo));
    let addrs = if opts.gateway.is_empty() {
        repo.config().addresses.gateway.clone()
    } else {
        opts.gateway.clone()
    };
    for a in addrs {
        if let Ok(Listen::Unix(p)) = Listen::parse(&a) {
            let _ = std::fs::remove_file(p);
        }
    }
}
