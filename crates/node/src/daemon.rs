//! `ipfs-kit daemon`: the node's long-running services. Today: Kubo's RPC API on TCP and Unix
//! sockets, with a clean shutdown on a signal.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipfs_kit_pin::PinType;
use ipfs_kit_rpc::{
    Access, AddEvent, AddParams, Authorization, Backend, Limits, RefEdge as RpcRefEdge, RefsParams,
    RepoStat, RpcError, Upload, UploadKind,
};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::{watch, Semaphore};

use crate::{
    AddOptions, EntryKind, EntrySource, Error, ImportFlags, RefsOptions, Repo, REPO_VERSION,
};

/// Where a service listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address (`/ip4/A/tcp/P`, `/ip6/A/tcp/P`).
    Tcp(SocketAddr),
    /// A Unix domain socket (`/unix/PATH`).
    Unix(PathBuf),
}

impl Listen {
    /// Parses the multiaddr forms the config uses.
    pub fn parse(addr: &str) -> Result<Listen, Error> {
        let bad = |why: &str| Error::Config(format!("listen address {addr:?}: {why}"));
        if let Some(path) = addr.strip_prefix("/unix") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(bad("expected /unix/PATH"));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        let parts: Vec<&str> = addr.split('/').collect();
        match parts.as_slice() {
            ["", "ip4" | "ip6", ip, "tcp", port] => {
                let ip: std::net::IpAddr = ip.parse().map_err(|_| bad("bad IP address"))?;
                let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
                Ok(Listen::Tcp(SocketAddr::new(ip, port)))
            }
            _ => Err(bad(
                "expected /ip4/ADDR/tcp/PORT, /ip6/ADDR/tcp/PORT or /unix/PATH",
            )),
        }
    }

    /// The multiaddr of an address actually bound.
    pub fn multiaddr(&self) -> String {
        match self {
            Listen::Tcp(a) if a.is_ipv4() => format!("/ip4/{}/tcp/{}", a.ip(), a.port()),
            Listen::Tcp(a) => format!("/ip6/{}/tcp/{}", a.ip(), a.port()),
            Listen::Unix(p) => format!("/unix{}", p.display()),
        }
    }
}

/// Options of [`serve`].
#[derive(Clone, Debug, Default)]
pub struct DaemonOptions {
    /// RPC API addresses; empty means the config's `addresses.api`.
    pub api: Vec<String>,
    /// Allow the RPC API on a non-loopback address although no authorization is configured.
    pub allow_remote_api: bool,
    /// Gateway addresses; empty means the config's `addresses.gateway`.
    pub gateway: Vec<String>,
    /// Allow the gateway on a non-loopback address.
    pub allow_remote_gateway: bool,
    /// How long in-flight requests may run on after the shutdown signal before they are cut
    /// (`None`: 5 seconds), so a stalled client cannot hold the daemon up.
    pub shutdown_grace: Option<std::time::Duration>,
    /// Run without the libp2p network (`--offline`).
    pub offline: bool,
    /// Command-line changes to the network settings.
    pub net: crate::NetOverrides,
    /// Collect garbage by itself once the repo passes `datastore.storage_gc_watermark` percent
    /// of `datastore.storage_max` (`--enable-gc`, checked every `datastore.gc_period`).
    pub enable_gc: bool,
}

/// The node behind the RPC API.
pub struct NodeBackend {
    repo: Arc<Repo>,
    metrics: NodeMetrics,
    /// The network, when the daemon runs online.
    online: Option<Arc<crate::Online>>,
}

impl NodeBackend {
    /// Serves `repo`, reporting `metrics`; network commands use the repo's network if it is
    /// online now.
    pub fn new(repo: Arc<Repo>, metrics: NodeMetrics) -> Self {
        let online = repo.online();
        NodeBackend {
            repo,
            metrics,
            online,
        }
    }
}

/// Every metric the node exports, and the store figures read at each scrape.
#[derive(Clone)]
pub struct NodeMetrics {
    registry: Arc<Registry>,
    stored_bytes: Gauge,
    stored_blocks: Gauge,
    block_cache: crate::cache_metrics::CacheMetrics,
    tiers: crate::cache_metrics::TierMetrics,
    /// The DHT store: value records, provider records from others, keys we provide.
    dht: [Gauge; 3],
    /// The RPC API's counters.
    pub rpc: ipfs_kit_rpc::Metrics,
    /// The gateway's counters, by path kind (`ipfs`, `ipns`, `routing`, `other`).
    pub gateway: ipfs_kit_rpc::Metrics,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ipfs_kit");
        let rpc = ipfs_kit_rpc::Metrics::default();
        rpc.register(registry.sub_registry_with_prefix("rpc"));
        let gateway = ipfs_kit_rpc::Metrics::default();
        gateway.register(registry.sub_registry_with_prefix("gateway"));
        let (stored_bytes, stored_blocks) = (Gauge::default(), Gauge::default());
        let store = registry.sub_registry_with_prefix("blockstore");
        store.register_with_unit(
            "size",
            "Bytes of block data stored on the local disk",
            Unit::Bytes,
            stored_bytes.clone(),
        );
        store.register(
            "blocks",
            "Blocks stored on the local disk",
            stored_blocks.clone(),
        );
        let block_cache = crate::cache_metrics::CacheMetrics::default();
        block_cache.register(registry.sub_registry_with_prefix("block_cache"));
        let tiers = crate::cache_metrics::TierMetrics::default();
        tiers.register(registry.sub_registry_with_prefix("tier"));
        let dht: [Gauge; 3] = Default::default();
        let sub = registry.sub_registry_with_prefix("dht");
        for (g, name, help) in [
            (
                &dht[0],
                "records",
                "Value records (IPNS, public keys) in the DHT store",
            ),
            (
                &dht[1],
                "provider_records",
                "Provider records from other peers in the DHT store",
            ),
            (&dht[2], "provided_keys", "Keys this node provides"),
        ] {
            sub.register(name, help, g.clone());
        }
        NodeMetrics {
            dht,
            tiers,
            registry: Arc::new(registry),
            stored_bytes,
            stored_blocks,
            block_cache,
            rpc,
            gateway,
        }
    }
}

impl NodeMetrics {
    /// The Prometheus text exposition, with the store figures read now.
    pub fn encode(&self, repo: &Repo) -> Result<String, Error> {
        // The local tier's figures: counting object storage would list its bucket each scrape.
        let stats = repo.local_stats()?;
        crate::cache_metrics::set_gauge(&self.stored_bytes, stats.block_bytes);
        crate::cache_metrics::set_gauge(&self.stored_blocks, stats.blocks);
        self.block_cache.update(repo.block_cache_stats());
        self.tiers.update(&repo.tier_figures());
        let online = repo.online.read().clone();
        if let Some(o) = online {
            let net = o.network().clone();
            if let Ok(Ok(d)) = o.wait(async move { net.dht_store_stat().await }) {
                for (g, v) in self
                    .dht
                    .iter()
                    .zip([d.records, d.remote_providers, d.provided_keys])
                {
                    crate::cache_metrics::set_gauge(g, v);
                }
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| Error::Invalid(format!("encode metrics: {e}")))?;
        Ok(text)
    }
}

fn rpc(e: Error) -> RpcError {
    RpcError::normal(e.to_string())
}

/// The upload as the node's add sees it, reporting progress while it is read.
struct UploadEntries<'a, 'e> {
    upload: &'a mut Upload,
    /// (name, bytes read, bytes at the last report, end reported) of the file being read.
    progress: Option<(String, u64, u64, bool)>,
    emit: &'a std::cell::RefCell<&'e mut dyn FnMut(AddEvent) -> std::io::Result<()>>,
}

/// Kubo reports progress every 256 KiB read.
const PROGRESS_STEP: u64 = 256 << 10;

impl EntrySource for UploadEntries<'_, '_> {
    fn next_entry(&mut self) -> Result<Option<(String, EntryKind)>, Error> {
        let next = self
            .upload
            .next_entry()
            .map_err(|e| Error::Invalid(e.message))?;
        Ok(next.map(|(path, kind)| {
            if let Some(p) = &mut self.progress {
                *p = (path.clone(), 0, 0, false);
            }
            let kind = match kind {
                UploadKind::File => EntryKind::File,
                UploadKind::Directory => EntryKind::Directory,
                UploadKind::Symlink(t) => EntryKind::Symlink(t),
            };
            (path, kind)
        }))
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.upload.read(buf)?;
        if let Some((name, total, last, ended)) = &mut self.progress {
            *total += n as u64;
            // Every step, and once at the end (an empty file too, as Kubo reports it).
            let at_end = n == 0 && !*ended && (*total > *last || *total == 0);
            *ended |= n == 0;
            if *total - *last >= PROGRESS_STEP || at_end {
                *last = *total;
                let event = AddEvent {
                    name: name.clone(),
                    hash: None,
                    size: None,
                    bytes: Some(*total),
                };
                (self.emit.borrow_mut())(event)?;
            }
        }
        Ok(n)
    }
}

/// The files of an upload, one CAR each.
struct UploadCars<'a>(&'a mut Upload);

impl std::io::Read for UploadCars<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl crate::CarSource for UploadCars<'_> {
    fn next_car(&mut self) -> Result<bool, Error> {
        loop {
            match self.0.next_entry().map_err(|e| Error::Invalid(e.message))? {
                None => return Ok(false),
                Some((_, UploadKind::File)) => return Ok(true),
                Some(_) => {}
            }
        }
    }
}

fn codec_named(name: &str) -> Result<u64, RpcError> {
    ipfs_kit_block::codec::from_name(name)
        .ok_or_else(|| RpcError::normal(format!("unknown codec {name:?}")))
}

fn hash_named(name: &str) -> Result<ipfs_kit_block::HashAlg, RpcError> {
    ipfs_kit_block::HashAlg::from_name(name).map_err(|e| RpcError::normal(e.to_string()))
}

impl Backend for NodeBackend {
    fn block_put(
        &self,
        data: Vec<u8>,
        cid_codec: &str,
        mhtype: &str,
        format: Option<&str>,
        allow_big: bool,
        pin: bool,
    ) -> Result<(String, u64), RpcError> {
        let (codec, version) = match format {
            Some("v0") => (ipfs_kit_block::codec::DAG_PB, 0),
            Some(f) => (codec_named(f)?, 1),
            None => (codec_named(cid_codec)?, 1),
        };
        let size = data.len() as u64;
        let cid = self
            .repo
            .block_put(data, codec, hash_named(mhtype)?, version, allow_big, pin)
            .map_err(rpc)?;
        Ok((cid.to_string(), size))
    }

    fn dag_put(
        &self,
        data: Vec<u8>,
        input_codec: &str,
        store_codec: &str,
        hash: &str,
        pin: bool,
        allow_big: bool,
    ) -> Result<String, RpcError> {
        let cid = self
            .repo
            .dag_put(
                &data,
                codec_named(input_codec)?,
                codec_named(store_codec)?,
                hash_named(hash)?,
                pin,
                allow_big,
            )
            .map_err(rpc)?;
        Ok(cid.to_string())
    }

    fn dag_import(
        &self,
        upload: &mut Upload,
        pin_roots: bool,
    ) -> Result<ipfs_kit_rpc::DagImported, RpcError> {
        let r = self
            .repo
            .dag_import(&mut UploadCars(upload), pin_roots)
            .map_err(rpc)?;
        Ok(ipfs_kit_rpc::DagImported {
            roots: r
                .roots
                .into_iter()
                .map(|(c, e)| (c.to_string(), e))
                .collect(),
            blocks: r.blocks,
            bytes: r.bytes,
        })
    }

    fn add(
        &self,
        upload: &mut Upload,
        params: &AddParams,
        emit: &mut dyn FnMut(AddEvent) -> std::io::Result<()>,
    ) -> Result<(), RpcError> {
        let usize_of = |v: Option<u64>| v.map(|v| usize::try_from(v).unwrap_or(usize::MAX));
        let profile = self
            .repo
            .import_profile(&ImportFlags {
                profile: params.profile.clone(),
                cid_version: params.cid_version,
                raw_leaves: params.raw_leaves,
                chunker: params.chunker.clone(),
                trickle: params.trickle,
                max_file_links: usize_of(params.max_file_links),
                max_directory_links: usize_of(params.max_directory_links),
                max_hamt_fanout: usize_of(params.max_hamt_fanout),
                hash: params.hash.clone(),
            })
            .map_err(rpc)?;
        let opts = AddOptions {
            profile,
            only_hash: params.only_hash,
            wrap: params.wrap,
            hidden: true,
            pin: params.pin && !params.only_hash,
        };
        let emit = std::cell::RefCell::new(emit);
        let mut source = UploadEntries {
            upload,
            progress: params.progress.then(|| (String::new(), 0, 0, false)),
            emit: &emit,
        };
        let mut failed: Option<std::io::Error> = None;
        let result = self.repo.add_entries(&mut source, &opts, &mut |a| {
            if failed.is_none() {
                let event = AddEvent {
                    name: a.name.clone(),
                    hash: Some(a.cid.to_string()),
                    size: Some(a.size.to_string()),
                    bytes: None,
                };
                if let Err(e) = (emit.borrow_mut())(event) {
                    failed = Some(e);
                }
            }
        });
        result.map_err(rpc)?;
        match failed {
            Some(e) => Err(RpcError::normal(format!("write response: {e}"))),
            None => Ok(()),
        }
    }

    fn id(&self) -> Result<serde_json::Value, RpcError> {
        Ok(self.repo.id_info())
    }

    fn network(&self) -> Option<&dyn ipfs_kit_rpc::NetworkApi> {
        self.online
            .as_deref()
            .map(|o| o as &dyn ipfs_kit_rpc::NetworkApi)
    }

    fn bootstrap(
        &self,
        edit: Option<ipfs_kit_rpc::BootstrapEdit>,
    ) -> Result<Vec<String>, RpcError> {
        self.repo.bootstrap(edit).map_err(rpc)
    }

    fn version(&self) -> serde_json::Value {
        serde_json::json!({
            "Version": env!("CARGO_PKG_VERSION"),
            "Commit": "",
            "Repo": REPO_VERSION.to_string(),
            "System": format!("{}/{}", std::env::consts::ARCH, std::env::consts::OS),
            "Golang": "",
        })
    }

    fn get(&self, path: &str, out: &mut dyn Write) -> Result<(), RpcError> {
        self.repo.get_tar(path, out).map_err(rpc)
    }

    fn cat(
        &self,
        path: &str,
        offset: u64,
        length: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<(), RpcError> {
        self.repo
            .cat(path, offset, length, out)
            .map(|_| ())
            .map_err(rpc)
    }

    fn block_get(&self, path: &str) -> Result<bytes::Bytes, RpcError> {
        let cid = self.repo.resolve(path).map_err(rpc)?;
        self.repo.block_bytes(&cid).map_err(rpc)
    }

    fn block_stat(&self, path: &str) -> Result<(String, u64), RpcError> {
        let s = self.repo.block_stat(path).map_err(rpc)?;
        Ok((s.cid.to_string(), s.size))
    }

    fn refs_local(&self) -> Result<Vec<String>, RpcError> {
        Ok(self
            .repo
            .refs_local()
            .map_err(rpc)?
            .iter()
            .map(|c| c.to_string())
            .collect())
    }

    fn repo_stat(&self) -> Result<RepoStat, RpcError> {
        let s = self.repo.repo_stat().map_err(rpc)?;
        Ok(RepoStat {
            repo_size: s.repo_size,
            storage_max: self
                .repo
                .config()
                .datastore
                .storage_max_bytes()
                .map_err(rpc)?,
            num_objects: s.num_objects,
            repo_path: s.path,
            version: format!("ipfs-kit-repo@{REPO_VERSION}"),
        })
    }

    fn pin_ls(&self, paths: &[String], kind: &str) -> Result<Vec<(String, String)>, RpcError> {
        let types = PinType::selection(kind).ok_or_else(|| {
            RpcError::client(format!(
                "invalid type '{kind}', must be one of {{direct, indirect, recursive, all}}"
            ))
        })?;
        Ok(self
            .repo
            .pin_ls(paths, &types)
            .map_err(rpc)?
            .into_iter()
            .map(|(c, t)| (c.to_string(), t.as_str().to_string()))
            .collect())
    }

    fn pin_add(&self, paths: &[String], recursive: bool) -> Result<Vec<String>, RpcError> {
        Ok(strings(self.repo.pin_add(paths, recursive).map_err(rpc)?))
    }

    fn pin_rm(&self, paths: &[String], recursive: bool) -> Result<Vec<String>, RpcError> {
        Ok(strings(self.repo.pin_rm(paths, recursive).map_err(rpc)?))
    }

    fn block_rm(
        &self,
        cids: &[String],
        force: bool,
    ) -> Result<Vec<(String, Option<String>)>, RpcError> {
        let cids = cids
            .iter()
            .map(|c| ipfs_kit_block::parse_cid(c).map_err(|e| RpcError::normal(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .repo
            .block_rm(&cids, force)
            .map_err(rpc)?
            .into_iter()
            .map(|(c, e)| (c.to_string(), e))
            .collect())
    }

    fn repo_gc(&self) -> Result<Vec<String>, RpcError> {
        Ok(strings(self.repo.gc().map_err(rpc)?))
    }

    fn storage_tiers(&self) -> Result<ipfs_kit_rpc::StorageTiers, RpcError> {
        self.repo.storage_tiers().map_err(rpc)
    }

    fn storage_stat(&self, path: &str) -> Result<Vec<ipfs_kit_rpc::BlockTiers>, RpcError> {
        Ok(self
            .repo
            .storage_stat(path)
            .map_err(rpc)?
            .into_iter()
            .map(|p| ipfs_kit_rpc::BlockTiers {
                cid: p.cid.to_string(),
                size: p.size,
                tiers: p.tiers,
                heat: p.heat,
            })
            .collect())
    }

    fn storage_migrate(
        &self,
        path: &str,
        tier: &str,
        recursive: bool,
    ) -> Result<ipfs_kit_rpc::Migrated, RpcError> {
        let m = self
            .repo
            .storage_migrate(path, tier, recursive, &mut |_| {})
            .map_err(rpc)?;
        Ok(crate::storage::migrated_report(m))
    }

    fn storage_migrate_cancel(&self, path: &str) -> Result<bool, RpcError> {
        self.repo.cancel_migration(path).map_err(rpc)
    }

    fn storage_rebalance(&self) -> Result<ipfs_kit_rpc::Rebalance, RpcError> {
        Ok(crate::storage::rebalance_report(
            self.repo.storage_rebalance(&mut |_| {}).map_err(rpc)?,
        ))
    }

    fn storage_policy(
        &self,
        set: Option<(&str, serde_json::Value)>,
    ) -> Result<serde_json::Value, RpcError> {
        self.repo.storage_policy(set).map_err(rpc)
    }

    fn repo_verify(&self) -> Result<(Vec<(String, String)>, u64), RpcError> {
        let (bad, n) = self.repo.repo_verify(&mut |_| {}).map_err(rpc)?;
        Ok((
            bad.into_iter().map(|(c, w)| (c.to_string(), w)).collect(),
            n,
        ))
    }

    fn refs(
        &self,
        paths: &[String],
        params: &RefsParams,
        emit: &mut dyn FnMut(Result<RpcRefEdge, String>) -> std::io::Result<()>,
    ) -> Result<(), RpcError> {
        let roots = self.repo.refs_roots(paths).map_err(rpc)?;
        let opts = RefsOptions {
            recursive: params.recursive,
            unique: params.unique,
            max_depth: params.max_depth,
        };
        // A failed write to the client ends everything; a failed walk is listed, then the next.
        let mut gone: Option<std::io::Error> = None;
        let mut walker = self.repo.refs_walker(opts);
        for root in roots {
            let walked = walker.walk(&root, &mut |e| {
                emit(Ok(RpcRefEdge {
                    src: e.src.to_string(),
                    dst: e.dst.to_string(),
                    name: e.name,
                }))
                .map_err(|e| {
                    let stop = Error::Invalid(format!("write response: {e}"));
                    gone = Some(e);
                    stop
                })
            });
            if let Some(e) = gone.take() {
                return Err(RpcError::normal(format!("write response: {e}")));
            }
            if let Err(e) = walked {
                emit(Err(e.to_string()))
                    .map_err(|e| RpcError::normal(format!("write response: {e}")))?;
            }
        }
        Ok(())
    }

    fn dag_resolve(&self, path: &str) -> Result<(String, String), RpcError> {
        let (cid, rest) = self.repo.dag_resolve(path).map_err(rpc)?;
        Ok((cid.to_string(), rest.join("/")))
    }

    fn dag_get(&self, path: &str, output_codec: &str) -> Result<Vec<u8>, RpcError> {
        let codec = ipfs_kit_block::codec::from_name(output_codec)
            .ok_or_else(|| RpcError::normal(format!("unknown output codec {output_codec:?}")))?;
        self.repo.dag_get(path, codec).map_err(rpc)
    }

    fn dag_export(&self, path: &str, out: &mut dyn Write) -> Result<(), RpcError> {
        self.repo.dag_export(path, out).map(|_| ()).map_err(rpc)
    }

    fn ls(&self, path: &str) -> Result<Vec<ipfs_kit_rpc::LsLink>, RpcError> {
        use ipfs_kit_unixfs::Kind;
        Ok(self
            .repo
            .ls(path)
            .map_err(rpc)?
            .into_iter()
            .map(|e| ipfs_kit_rpc::LsLink {
                name: e.name,
                hash: e.cid.to_string(),
                size: e.size,
                kind: match e.kind {
                    Kind::Directory => 1,
                    Kind::File => 2,
                    Kind::Symlink => 4,
                    Kind::Other => 0,
                },
                target: e.target.unwrap_or_default(),
            })
            .collect())
    }

    fn object(&self, path: &str) -> Result<ipfs_kit_rpc::ObjectNode, RpcError> {
        let cid = self.repo.resolve(path).map_err(rpc)?;
        let bytes = self.repo.block_bytes(&cid).map_err(rpc)?;
        if cid.codec() != ipfs_kit_block::codec::DAG_PB {
            // Other codecs have no data field; their links go unnamed, as in Kubo.
            let links =
                ipfs_kit_block::ipld::links(cid.codec(), &bytes).map_err(|e| rpc(e.into()))?;
            return Ok(ipfs_kit_rpc::ObjectNode {
                cid: cid.to_string(),
                data: Vec::new(),
                links: links
                    .iter()
                    .map(|c| (String::new(), c.to_string(), 0))
                    .collect(),
                block_size: bytes.len() as u64,
            });
        }
        let node = ipfs_kit_block::dagpb::PbNode::decode(&bytes).map_err(|e| rpc(e.into()))?;
        Ok(ipfs_kit_rpc::ObjectNode {
            cid: cid.to_string(),
            data: node.data.map(|d| d.to_vec()).unwrap_or_default(),
            links: node
                .links
                .into_iter()
                .map(|l| {
                    (
                        l.name.unwrap_or_default(),
                        l.cid.to_string(),
                        l.tsize.unwrap_or(0),
                    )
                })
                .collect(),
            block_size: bytes.len() as u64,
        })
    }

    fn object_edit(
        &self,
        root: Option<&str>,
        edit: ipfs_kit_rpc::ObjectEdit,
    ) -> Result<String, RpcError> {
        use crate::ObjectEdit as E;
        use ipfs_kit_rpc::ObjectEdit as Api;
        let edit = match edit {
            Api::New(template) => E::New { template },
            Api::AddLink(name, target) => E::AddLink {
                name,
                target: self.repo.resolve(&target).map_err(rpc)?,
            },
            Api::RmLink(name) => E::RmLink { name },
            Api::SetData(d) => E::SetData(d),
            Api::AppendData(d) => E::AppendData(d),
        };
        Ok(self.repo.object_edit(root, edit).map_err(rpc)?.to_string())
    }

    fn prometheus(&self) -> Result<String, RpcError> {
        self.metrics.encode(&self.repo).map_err(rpc)
    }

    fn config_show(&self) -> Result<serde_json::Value, RpcError> {
        self.repo.config().kubo_view(true).map_err(rpc)
    }

    fn config_get(&self, key: &str) -> Result<serde_json::Value, RpcError> {
        refuse_secret(key, false)?;
        self.repo
            .config()
            .lookup(key)
            .map_err(|e| RpcError::normal(format!("failed to get config value: {e}")))
    }

    fn config_set(
        &self,
        key: &str,
        value: serde_json::Value,
    ) -> Result<serde_json::Value, RpcError> {
        refuse_secret(key, true)?;
        let new = self
            .repo
            .update_config(|c| c.with_json(key, value))
            .map_err(|e| RpcError::normal(format!("failed to set config value: {e}")))?;
        if is_authorization(key) {
            // Stored, but a secret: never echoed.
            return Ok(serde_json::Value::Null);
        }
        new.lookup(key).map_err(rpc)
    }

    fn config_replace(&self, config: serde_json::Value) -> Result<(), RpcError> {
        self.repo
            .update_config(|c| c.replaced_by_kubo(config))
            .map(|_| ())
            .map_err(rpc)
    }

    // MFS, keys and IPNS: see rpc_names.rs.

    fn files_stat(&self, path: &str) -> Result<ipfs_kit_rpc::FilesStat, RpcError> {
        crate::rpc_names::files_stat(&self.repo, path)
    }

    fn files_ls(&self, path: &str) -> Result<Vec<ipfs_kit_rpc::FilesEntry>, RpcError> {
        crate::rpc_names::files_ls(&self.repo, path)
    }

    fn files_read(
        &self,
        path: &str,
        offset: u64,
        count: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<(), RpcError> {
        crate::rpc_names::files_read(&self.repo, path, offset, count, out)
    }

    fn files_write(
        &self,
        path: &str,
        data: &mut dyn std::io::Read,
        opts: &ipfs_kit_rpc::FilesWrite,
    ) -> Result<(), RpcError> {
        crate::rpc_names::files_write(&self.repo, path, data, opts)
    }

    fn files_mkdir(
        &self,
        path: &str,
        parents: bool,
        cid_version: Option<u8>,
        hash: Option<&str>,
    ) -> Result<(), RpcError> {
        let r = self.repo.files_mkdir(path, parents, cid_version, hash);
        r.map_err(rpc)
    }

    fn files_cp(&self, src: &str, dst: &str, parents: bool) -> Result<(), RpcError> {
        self.repo.files_cp(src, dst, parents).map_err(rpc)
    }

    fn files_mv(&self, src: &str, dst: &str) -> Result<(), RpcError> {
        self.repo.files_mv(src, dst).map_err(rpc)
    }

    fn files_rm(&self, paths: &[String], recursive: bool, force: bool) -> Result<(), RpcError> {
        self.repo.files_rm(paths, recursive, force).map_err(rpc)
    }

    fn files_flush(&self, path: &str) -> Result<String, RpcError> {
        Ok(self.repo.files_flush(path).map_err(rpc)?.to_string())
    }

    fn files_chcid(
        &self,
        path: &str,
        cid_version: Option<u8>,
        hash: Option<&str>,
    ) -> Result<(), RpcError> {
        let r = self.repo.files_chcid(path, cid_version, hash);
        r.map_err(rpc)
    }

    fn key_gen(
        &self,
        name: &str,
        kind: &str,
        size: Option<i64>,
    ) -> Result<ipfs_kit_rpc::KeyEntry, RpcError> {
        crate::rpc_names::key_gen(&self.repo, name, kind, size)
    }

    fn key_list(&self) -> Result<Vec<ipfs_kit_rpc::KeyEntry>, RpcError> {
        crate::rpc_names::key_list(&self.repo)
    }

    fn key_rename(
        &self,
        old: &str,
        new: &str,
        force: bool,
    ) -> Result<(ipfs_kit_rpc::KeyEntry, bool), RpcError> {
        crate::rpc_names::key_rename(&self.repo, old, new, force)
    }

    fn key_rm(&self, names: &[String]) -> Result<Vec<ipfs_kit_rpc::KeyEntry>, RpcError> {
        crate::rpc_names::key_rm(&self.repo, names)
    }

    fn key_import(&self, name: &str, data: Vec<u8>) -> Result<ipfs_kit_rpc::KeyEntry, RpcError> {
        crate::rpc_names::key_import(&self.repo, name, &data)
    }

    fn key_export(&self, name: &str, format: &str) -> Result<Vec<u8>, RpcError> {
        crate::rpc_names::key_export(&self.repo, name, format)
    }

    fn name_publish(
        &self,
        path: &str,
        opts: &ipfs_kit_rpc::NamePublish,
    ) -> Result<(String, String, String), RpcError> {
        crate::rpc_names::name_publish(&self.repo, path, opts)
    }

    fn name_resolve(&self, name: Option<&str>, recursive: bool) -> Result<String, RpcError> {
        crate::rpc_names::name_resolve(&self.repo, name, recursive)
    }

    fn ipns_pubsub_enabled(&self) -> bool {
        self.online
            .as_ref()
            .is_some_and(|o| o.names.pubsub_enabled())
    }

    fn ipns_pubsub_subs(&self) -> Result<Vec<String>, RpcError> {
        let names = match &self.online {
            Some(o) => o
                .pubsub_names()
                .map_err(|e| RpcError::normal(e.to_string()))?,
            None => None,
        };
        names
            .map(|names| names.iter().map(|n| format!("/ipns/{n}")).collect())
            .ok_or_else(|| RpcError::normal(IPNS_PUBSUB_OFF))
    }

    fn ipns_pubsub_cancel(&self, name: &str) -> Result<bool, RpcError> {
        let parsed: ipfs_kit_ipns::Name = name
            .parse()
            .map_err(|e: ipfs_kit_ipns::Error| RpcError::normal(e.to_string()))?;
        let was = match &self.online {
            Some(o) => o
                .pubsub_cancel(&parsed)
                .map_err(|e| RpcError::normal(e.to_string()))?,
            None => None,
        };
        was.ok_or_else(|| RpcError::normal(IPNS_PUBSUB_OFF))
    }
}

/// Kubo's error for the `name pubsub` commands when IPNS over pubsub is off.
const IPNS_PUBSUB_OFF: &str = "IPNS pubsub subsystem is not enabled";

/// Whether `key` is under the API secrets (`API.Authorizations`, `api.authorizations`).
fn is_authorization(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "api.authorizations" || k.starts_with("api.authorizations.")
}

/// Refuses what the API must never show (the private key, the API secrets) or change (the
/// identity: the running node signs with the key it started with).
fn refuse_secret(key: &str, set: bool) -> Result<(), RpcError> {
    let k = key.to_ascii_lowercase();
    if ["identity", "identity.privkey", "identity.private_key"].contains(&k.as_str()) {
        // Kubo's words.
        return Err(RpcError::normal(
            "cannot show or change private key through API",
        ));
    }
    if set && k.starts_with("identity.") {
        return Err(RpcError::normal(
            "the identity cannot be changed through the API",
        ));
    }
    if !set && is_authorization(key) {
        return Err(RpcError::normal(
            "API secrets are not shown through the API",
        ));
    }
    Ok(())
}

fn strings(cids: Vec<ipfs_kit_block::Cid>) -> Vec<String> {
    cids.iter().map(ToString::to_string).collect()
}

/// Refuses to expose the API beyond this machine with no secret guarding it, unless told to.
fn check_exposure(listen: &[Listen], opts: &DaemonOptions, guarded: bool) -> Result<(), Error> {
    match first_remote(listen) {
        Some(l) if !guarded && !opts.allow_remote_api => Err(Error::Config(format!(
            "refusing to serve the RPC API on non-loopback {} with no authorization configured (pass --allow-remote-api to do it anyway)",
            l.multiaddr()
        ))),
        _ => Ok(()),
    }
}

/// The first TCP address among `listen` that other machines can reach.
pub(crate) fn first_remote(listen: &[Listen]) -> Option<&Listen> {
    listen
        .iter()
        .find(|l| matches!(l, Listen::Tcp(a) if !a.ip().is_loopback()))
}

/// The access rules the config describes.
fn access(cfg: &crate::config::Api) -> Result<Access, Error> {
    let authorizations = cfg
        .authorizations
        .iter()
        .map(|(name, a)| {
            Authorization::from_secret(name, &a.auth_secret, a.allowed_paths.clone())
                .map_err(Error::Config)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Access {
        authorizations,
        allowed_origins: cfg.allowed_origins.clone(),
        headers: cfg
            .http_headers
            .iter()
            // HTTP allows a list-valued header to be sent as one comma-separated line.
            .map(|(k, v)| (k.clone(), v.join(", ")))
            .collect(),
    })
}

/// Every `every` while the daemon runs: the pending migrations retried (see
/// [`Repo::resume_migrations`]), then a demotion pass (see [`Repo::storage_rebalance`]); what
/// moved something or failed is logged.
async fn tiering_loop(repo: Arc<Repo>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let r = repo.clone();
        if let Ok(Ok(resumed)) = tokio::task::spawn_blocking(move || r.resume_migrations()).await {
            for (p, result) in resumed {
                match result {
                    Ok(m) => tracing::info!(
                        "tiering: the pending move of {} to {} completed: {} blocks copied",
                        p.root,
                        p.tier,
                        m.copied
                    ),
                    Err(e) => tracing::warn!("tiering: {e}"),
                }
            }
        }
        let r = repo.clone();
        match tokio::task::spawn_blocking(move || r.storage_rebalance(&mut |_| {})).await {
            Ok(Ok(done)) if done.moved.copied > 0 => tracing::info!(
                "tiering: moved {} blocks ({} bytes) to {}; local disk {} -> {} bytes",
                done.moved.copied,
                done.moved.bytes,
                done.to.unwrap_or_default(),
                done.before,
                done.after
            ),
            Ok(Err(e)) => tracing::warn!("tiering: {e}"),
            _ => {}
        }
    }
}

/// `daemon --enable-gc`: every `every`, garbage collection when the local disk holds more than
/// the repo's limit allows (see [`Repo::gc_if_full`]); logged when it runs or fails.
async fn gc_loop(repo: Arc<Repo>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let r = repo.clone();
        match tokio::task::spawn_blocking(move || r.gc_if_full()).await {
            Ok(Ok(Some(gc))) => tracing::info!(
                "gc: the repo held {} bytes, over {}; {} blocks removed, {} bytes now",
                gc.before,
                gc.threshold,
                gc.removed,
                gc.after
            ),
            Ok(Err(e)) => tracing::warn!("gc: {e}"),
            _ => {}
        }
    }
}

/// Runs the RPC API and the gateway until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish, and removes the `api` and `gateway` files and Unix sockets it
/// created. `ready` is called with the bound RPC and gateway addresses once every listener is up.
pub async fn serve(
    repo: Arc<Repo>,
    opts: DaemonOptions,
    ready: impl FnOnce(&[String], &[String]),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addrs = if opts.api.is_empty() {
        repo.config().addresses.api.clone()
    } else {
        opts.api.clone()
    };
    let listen = addrs
        .iter()
        .map(|a| Listen::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    let api = repo.config().api.clone();
    let access = access(&api)?;
    check_exposure(&listen, &opts, !access.authorizations.is_empty())?;
    if !access.authorizations.is_empty() {
        tracing::info!("RPC API access is limited by the rules in api.authorizations");
    }
    let online = if opts.offline {
        None
    } else {
        let online = crate::net::start(&repo, &opts.net).await?;
        let (listen, _) = online.network().addrs().await?;
        for a in listen {
            tracing::info!("Swarm listening on {a}");
        }
        Some(online)
    };
    let metrics = NodeMetrics::default();
    let limits = Limits {
        concurrent_requests: api.max_concurrent_requests,
        max_upload: api.max_upload_bytes,
        stall_timeout: std::time::Duration::from_secs(api.stall_timeout_secs),
        ..Limits::default()
    };
    let app = ipfs_kit_rpc::router(
        Arc::new(NodeBackend::new(repo.clone(), metrics.clone())),
        limits,
        access,
        metrics.rpc.clone(),
    );
    let http = HttpOptions {
        max_connections: api.max_connections,
        header_timeout: std::time::Duration::from_secs(api.header_timeout_secs),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    let rpc = listen_all("the RPC API", &listen, app, http, &stop_rx, &mut servers).await?;
    let gateway = crate::gateway::start(
        &repo,
        &opts,
        http,
        metrics.gateway.clone(),
        &stop_rx,
        &mut servers,
    )
    .await?;
    let api_file = repo.path().join("api");
    if let Some(first) = rpc.bound.first() {
        crate::write_atomic(&api_file, first.as_bytes())?;
    }
    let mut maintenance = tokio::task::JoinSet::new();
    maintenance.spawn(tiering_loop(
        repo.clone(),
        repo.config().tiering.interval()?,
    ));
    if opts.enable_gc {
        maintenance.spawn(gc_loop(repo.clone(), repo.config().datastore.gc_period()?));
    }
    ready(&rpc.bound, &gateway.bound);
    shutdown.await;
    maintenance.abort_all();
    let _ = stop_tx.send(true);
    let grace = opts
        .shutdown_grace
        .unwrap_or(std::time::Duration::from_secs(5));
    if tokio::time::timeout(grace, async {
        while servers.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("requests still running after {grace:?}; closing them");
        servers.shutdown().await;
    }
    if let Some(online) = online {
        online.stop(&repo).await;
    }
    let _ = std::fs::remove_file(&api_file);
    crate::gateway::cleanup(&repo);
    for s in rpc.sockets.iter().chain(&gateway.sockets) {
        let _ = std::fs::remove_file(s);
    }
    Ok(())
}

/// What one service bound.
pub(crate) struct Bound {
    /// The bound addresses, as multiaddrs (ephemeral ports resolved).
    pub bound: Vec<String>,
    /// The first TCP address, for URL files.
    pub first_tcp: Option<SocketAddr>,
    /// Unix sockets created, removed on shutdown.
    pub sockets: Vec<PathBuf>,
}

/// Binds every address of `listen` and serves `app` on each (into `servers`) until `stop`.
pub(crate) async fn listen_all(
    service: &str,
    listen: &[Listen],
    app: axum::Router,
    http: HttpOptions,
    stop: &watch::Receiver<bool>,
    servers: &mut tokio::task::JoinSet<()>,
) -> Result<Bound, Error> {
    let mut out = Bound {
        bound: Vec::new(),
        first_tcp: None,
        sockets: Vec::new(),
    };
    for l in listen {
        let what = || format!("bind {service} to {}", l.multiaddr());
        match l {
            Listen::Tcp(a) => {
                let listener = tokio::net::TcpListener::bind(a)
                    .await
                    .map_err(|e| Error::io(what(), e))?;
                let local = listener
                    .local_addr()
                    .map_err(|e| Error::io("local address", e))?;
                out.first_tcp.get_or_insert(local);
                out.bound.push(Listen::Tcp(local).multiaddr());
                servers.spawn(serve_http(listener, app.clone(), http, stop.clone()));
            }
            Listen::Unix(p) => {
                remove_stale_socket(p)?;
                let listener =
                    tokio::net::UnixListener::bind(p).map_err(|e| Error::io(what(), e))?;
                out.sockets.push(p.clone());
                out.bound.push(l.multiaddr());
                servers.spawn(serve_http(listener, app.clone(), http, stop.clone()));
            }
        }
    }
    Ok(out)
}

/// How an HTTP listener bounds its clients.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HttpOptions {
    /// Connections open at once; the listener stops accepting at this many.
    max_connections: usize,
    /// Time a client has to send its request headers (slow-header clients are cut).
    header_timeout: std::time::Duration,
}

/// A listener of either kind.
trait Accept: Send + 'static {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        let (stream, _) = tokio::net::TcpListener::accept(self).await?;
        // Small answers (JSON lines) should not wait for Nagle's timer.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

/// Serves HTTP/1.1 on `listener` until `stop` turns true, then lets open connections finish
/// their current request. At most `max_connections` are open at once, and every one must send
/// its headers within the timeout, so neither many nor slow clients can exhaust the node.
async fn serve_http<L: Accept>(
    listener: L,
    app: axum::Router,
    opts: HttpOptions,
    mut stop: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .keep_alive(true);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s,
            () = stopped(&mut stop) => break,
        };
        let Ok(slot) = slot else { break };
        let io = tokio::select! {
            io = listener.accept() => io,
            () = stopped(&mut stop) => break,
        };
        let io = match io {
            Ok(io) => io,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set stays as small as the open ones.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// Completes once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// A socket file left by a daemon that was killed would make bind fail; only socket files are
/// removed, never anything else at that path.
fn remove_stale_socket(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)
            .map_err(|e| Error::io(format!("remove stale socket {}", path.display()), e)),
        Ok(_) => Err(Error::Config(format!(
            "{} exists and is not a socket",
            path.display()
        ))),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_addresses() {
        assert_eq!(
            Listen::parse("/ip4/127.0.0.1/tcp/5001").unwrap(),
            Listen::Tcp("127.0.0.1:5001".parse().unwrap())
        );
        assert_eq!(
            Listen::parse("/ip6/::1/tcp/1").unwrap(),
            Listen::Tcp("[::1]:1".parse().unwrap())
        );
        assert_eq!(
            Listen::parse("/unix/tmp/api.sock").unwrap(),
            Listen::Unix("/tmp/api.sock".into())
        );
        assert_eq!(
            Listen::parse("/unix/tmp/api.sock").unwrap().multiaddr(),
            "/unix/tmp/api.sock"
        );
        for bad in [
            "",
            "/ip4/1.2.3/tcp/1",
            "/ip4/127.0.0.1/udp/1",
            "/unix",
            "/unix/",
            "/dns/x/tcp/1",
        ] {
            assert!(Listen::parse(bad).is_err(), "{bad}");
        }
        let remote = [Listen::parse("/ip4/0.0.0.0/tcp/5001").unwrap()];
        assert!(check_exposure(&remote, &DaemonOptions::default(), false).is_err());
        assert!(check_exposure(&remote, &DaemonOptions::default(), true).is_ok());
        assert!(check_exposure(
            &remote,
            &DaemonOptions {
                allow_remote_api: true,
                ..Default::default()
            },
            false
        )
        .is_ok());
    }
}
