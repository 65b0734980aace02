//! The ipfs-kit node: the repo on disk (config, identity, block store, pins) and the content
//! operations the CLI and, later, the RPC API and gateway share.
//!
//! A [`Repo`] is opened by one process at a time (an exclusive lock on `repo.lock`). Inside the
//! process, reads run alongside one writer; `add` holds the GC lock shared from its first block
//! to its pin, and `repo gc` holds it exclusively, so GC never deletes a block of an add in
//! progress.
//!
//! ```
//! use ipfs_kit_node::{Repo, InitOptions, AddOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let repo = Repo::init(dir.path(), InitOptions::default()).unwrap();
//! let root = repo.add_reader(&mut &b"hello world\n"[..], &AddOptions::default()).unwrap();
//! assert_eq!(root.cid.to_string(), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
//! let mut out = Vec::new();
//! repo.cat(&root.cid.to_string(), 0, None, &mut out).unwrap();
//! assert_eq!(out, b"hello world\n");
//! ```

mod add;
mod cache_metrics;
pub mod config;
pub mod daemon;
pub mod gateway;
pub mod identity;
mod ipns;
mod keys;
mod mfs;
mod net;
mod object;
mod ops;
mod path;
pub mod provide;
mod rpc_names;
mod storage;
mod tar;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs2::FileExt;
use ipfs_kit_block::{Bytes, Cid, IDENTITY};
use ipfs_kit_blockstore::{Blockstore, FsBlockstore, FsConfig};
use ipfs_kit_pin::Pinset;
use ipfs_kit_tiered::heat::Heat;
use ipfs_kit_tiered::{
    CacheConfig, CachedBlockstore, ObjectBlockstore, TieredBlockstore, Unavailable,
};
use ipfs_kit_unixfs::{BlockSource, BoxError};
use parking_lot::RwLock;

pub use add::{AddOptions, Added, EntryKind, EntrySource, ImportFlags};
pub use config::Config;
pub use ipns::{parse_go_duration, PublishOptions, OFFLINE_PUBLISH};
pub use keys::{KeyFormat, KeyInfo};
pub use mfs::{MfsEntry, MfsStat, WriteOptions};
pub use net::{keypair, NetOverrides, Online};
pub use object::ObjectEdit;
pub use ops::{
    AutoGc, BlockStat, CarReaders, CarSource, DagImportResult, LsEntry, RefEdge, RefsOptions,
    RefsWalker, RepoStat, DEFAULT_BLOCK_LIMIT,
};
pub use path::IpfsPath;
pub use storage::{
    migrated_report, rebalance_report, BlockPlace, Moved, PendingMigration, Progress, Rebalanced,
    TierFigures, MEMORY,
};

/// The on-disk repo format version this build reads and writes.
pub const REPO_VERSION: u32 = 1;

/// Errors of the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bad config value or file.
    #[error("config: {0}")]
    Config(String),
    /// The identity could not be made.
    #[error("identity: {0}")]
    Identity(String),
    /// Another process holds the repo.
    #[error("repo at {0} is in use by another process (is a daemon running?)")]
    Locked(PathBuf),
    /// No repo where one was expected.
    #[error("no ipfs-kit repo at {0} (run `ipfs-kit init`)")]
    NotInitialized(PathBuf),
    /// `init` over an existing repo.
    #[error("a repo already exists at {0}")]
    AlreadyInitialized(PathBuf),
    /// A repo written by a newer ipfs-kit.
    #[error("repo version {0} is not supported by this build (expects {REPO_VERSION})")]
    RepoVersion(u32),
    /// CID, codec or hash problems.
    #[error(transparent)]
    Block(#[from] ipfs_kit_block::Error),
    /// Import or read of UnixFS failed.
    #[error(transparent)]
    UnixFs(#[from] ipfs_kit_unixfs::Error),
    /// The block store failed.
    #[error(transparent)]
    Store(#[from] ipfs_kit_blockstore::Error),
    /// Pinning failed.
    #[error(transparent)]
    Pin(#[from] ipfs_kit_pin::Error),
    /// A CAR could not be read or written.
    #[error(transparent)]
    Car(#[from] ipfs_kit_car::Error),
    /// A path that is not an IPFS path.
    #[error("invalid path {0:?}: {1}")]
    InvalidPath(String, String),
    /// A block the repo does not have (the node is offline).
    #[error("block {0} not found locally")]
    NotFound(Cid),
    /// A block over the size limit.
    #[error("produced block is over {limit} bytes ({size}): big blocks can't be exchanged with other peers; consider using UnixFS for automatic chunking of bigger files, or pass --allow-big-block to override")]
    TooBig {
        /// The block's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Any other bad input, described.
    #[error("{0}")]
    Invalid(String),
    /// A key, name or IPNS record problem.
    #[error(transparent)]
    Ipns(#[from] ipfs_kit_ipns::Error),
    /// The metadata database failed.
    #[error("metadata: {0}")]
    Meta(String),
    /// The libp2p network failed.
    #[error("network: {0}")]
    Network(String),
    /// A migration failed part way and is kept to be retried.
    #[error("{source} (the move of {root} to {tier} is kept: the daemon retries it until it completes; `storage migrate --cancel {root}` drops it)")]
    MigrationPending {
        /// The DAG being moved.
        root: Cid,
        /// Where to.
        tier: String,
        /// Why it stopped.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Options of [`Repo::init`].
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// `init --profile`: comma-separated config profiles (`public`) and import profiles (the
    /// repo's default import profile; `unixfs-v0-2015` when none is named).
    pub profile: Option<String>,
}

/// Options of [`Repo::open_with`].
#[derive(Clone, Copy, Debug)]
pub struct RepoOptions {
    /// Keep verified blocks in memory (`datastore.block_cache_size` bytes, when not 0). Worth
    /// it in a long-running process (the daemon); a one-shot command reads each block once, and
    /// a cache would only hold memory until it exits.
    pub block_cache: bool,
}

impl Default for RepoOptions {
    fn default() -> Self {
        RepoOptions { block_cache: true }
    }
}

/// An open repo.
pub struct Repo {
    path: PathBuf,
    /// The config as last read or written. Readers take a snapshot (an `Arc`), so a config
    /// change never tears a reader's view; the lock is held only to swap the snapshot.
    config: RwLock<Arc<Config>>,
    /// Serialises config changes (read, edit, write the file, swap), so two concurrent sets
    /// cannot lose one another's edit.
    config_write: parking_lot::Mutex<()>,
    /// The segment store (and the object storage tier behind it, when configured) behind the
    /// ARC memory tier of verified blocks, announcing new blocks to the network while online.
    blocks: provide::Announcing<CachedBlockstore<TieredBlockstore<FsBlockstore>>>,
    pins: Pinset,
    gc_lock: RwLock<()>,
    /// Hashing and verifying operations running now; see [`Repo::threads`].
    busy: std::sync::atomic::AtomicUsize,
    /// The metadata database (pins, MFS root, IPNS records).
    meta: Arc<redb::Database>,
    /// Serialises MFS edits (read root, edit, commit root).
    mfs_lock: parking_lot::Mutex<()>,
    /// The network while the daemon runs online: blocks missing locally are fetched from it.
    pub(crate) online: RwLock<Option<Arc<Online>>>,
    _lock: File,
}

/// A metadata database (redb) failure, as an [`Error`].
pub(crate) fn meta_err(e: impl std::fmt::Display) -> Error {
    Error::Meta(e.to_string())
}

/// Marks one hashing or verifying operation as running while it lives.
pub(crate) struct Busy<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file: write a
/// temporary file, fsync it, rename it over, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic_mode(path, bytes, 0o666)
}

/// [`write_atomic`] with the file created with `mode` (before the umask), for secrets.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no parent", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let ctx = |what: &str| format!("{what} {}", path.display());
    // A stray temporary from a crash may have other permissions: start afresh.
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Error::io(ctx("write"), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(ctx("write"), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(ctx("replace"), e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(ctx("sync directory of"), e))
}

/// Threads for hashing and verifying: one per core (the calling thread reads and writes).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Repo {
    /// Threads for one hashing or verifying operation: every core when it runs alone, one when
    /// others run too (a busy daemon already keeps the cores fed, and helper threads per
    /// request would only add thread churn and memory). Hold the guard while it runs.
    pub(crate) fn threads(&self) -> (usize, Busy<'_>) {
        let others = self.busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = if others == 0 { cores() } else { 1 };
        (n, Busy(&self.busy))
    }
}

fn lock_repo(path: &Path) -> Result<File, Error> {
    let lock_path = path.join("repo.lock");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(format!("open {}", lock_path.display()), e))?;
    if f.try_lock_exclusive().is_err() {
        return Err(Error::Locked(path.to_path_buf()));
    }
    // The pid is for people reading the file; the lock itself is what excludes.
    let _ = f
        .set_len(0)
        .and_then(|_| writeln!(f, "{}", std::process::id()));
    Ok(f)
}

impl Repo {
    /// Creates a new repo at `path` and opens it. Refuses to touch an existing repo.
    pub fn init(path: &Path, opts: InitOptions) -> Result<Repo, Error> {
        if path.join("config.toml").exists() || path.join("version").exists() {
            return Err(Error::AlreadyInitialized(path.to_path_buf()));
        }
        fs::create_dir_all(path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        let _lock = lock_repo(path)?;
        let id = identity::generate()?;
        let mut config = Config::default();
        config.identity.peer_id = id.peer_id;
        config.identity.private_key = id.private_key;
        if let Some(p) = opts.profile {
            config.apply_profiles(&p)?;
        }
        config.validate()?;
        write_atomic(&path.join("config.toml"), config.to_toml()?.as_bytes())?;
        // The version file is written last: its presence marks a complete repo.
        write_atomic(
            &path.join("version"),
            format!("{REPO_VERSION}\n").as_bytes(),
        )?;
        drop(_lock);
        Repo::open(path)
    }

    /// Opens the repo at `path`, taking its lock, with the block cache the config sets.
    pub fn open(path: &Path) -> Result<Repo, Error> {
        Repo::open_with(path, RepoOptions::default())
    }

    /// Opens the repo at `path` with `opts`, taking its lock.
    pub fn open_with(path: &Path, opts: RepoOptions) -> Result<Repo, Error> {
        let version = match fs::read_to_string(path.join("version")) {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotInitialized(path.to_path_buf()))
            }
            Err(e) => return Err(Error::io(format!("read {}/version", path.display()), e)),
        };
        let version: u32 = version
            .trim()
            .parse()
            .map_err(|_| Error::Config(format!("bad repo version file {:?}", version.trim())))?;
        if version != REPO_VERSION {
            return Err(Error::RepoVersion(version));
        }
        let lock = lock_repo(path)?;
        let config = Repo::read_config(path)?;
        let store_cfg = FsConfig {
            segment_size: config.datastore.segment_size,
            verify_reads: config.datastore.verify_reads,
            compact_dead_ratio: config.datastore.compact_dead_ratio,
            cache_writes: config.datastore.cache_writes,
        };
        let blocks = FsBlockstore::open(path.join("blocks"), store_cfg).map_err(|e| match e {
            ipfs_kit_blockstore::Error::Locked(_) => Error::Locked(path.to_path_buf()),
            other => other.into(),
        })?;
        let mut blocks = TieredBlockstore::new(blocks)
            .with_heat(Heat::new(
                config.tiering.half_life()?,
                ipfs_kit_tiered::heat::DEFAULT_CAPACITY,
            ))
            .with_promotion(config.tiering.promote_at);
        if let Some(tier) = config.object_storage.tier_config() {
            // A config the client refuses leaves the tier failing with why, not the repo
            // unopenable: `config set` must still be able to mend it.
            blocks = match ObjectBlockstore::open(&tier) {
                Ok(store) => blocks.with_tier_durability(
                    tier.name.clone(),
                    store,
                    !config.object_storage.volatile,
                ),
                Err(e) => {
                    let why = match e {
                        ipfs_kit_blockstore::Error::Tier { message, .. } => message,
                        other => other.to_string(),
                    };
                    tracing::warn!("object storage tier {}: {why}", tier.name);
                    blocks.with_tier(tier.name.clone(), Unavailable::new(&tier.name, why))
                }
            };
        }
        let cache_size = if opts.block_cache {
            config.datastore.block_cache_bytes()?
        } else {
            0
        };
        let blocks = provide::Announcing::new(CachedBlockstore::new(
            blocks,
            CacheConfig::default()
                .with_capacity(cache_size)
                .with_verified_reads(config.datastore.verify_reads),
        ));
        // Pins and metadata: small, so a small cache (redb's default is 1 GiB).
        let meta = match redb::Database::builder()
            .set_cache_size(16 << 20)
            .create(path.join("meta.redb"))
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::Locked(path.to_path_buf()))
            }
            Err(e) => return Err(Error::Config(format!("open meta.redb: {e}"))),
        };
        let meta = Arc::new(meta);
        let pins = Pinset::open(meta.clone())?;
        let repo = Repo {
            path: path.to_path_buf(),
            config: RwLock::new(Arc::new(config)),
            config_write: parking_lot::Mutex::new(()),
            blocks,
            pins,
            gc_lock: RwLock::new(()),
            busy: Default::default(),
            meta,
            mfs_lock: parking_lot::Mutex::new(()),
            online: RwLock::new(None),
            _lock: lock,
        };
        repo.load_heat()?;
        Ok(repo)
    }

    fn read_config(path: &Path) -> Result<Config, Error> {
        let file = path.join("config.toml");
        let text = fs::read_to_string(&file)
            .map_err(|e| Error::io(format!("read {}", file.display()), e))?;
        Config::from_toml(&text)
    }

    /// The repo directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config now: a snapshot that later changes do not alter.
    ///
    /// Settings read when the repo opens or the daemon starts (`datastore`, `addresses`, `api`)
    /// keep their old effect until a restart; `import.profile` applies to the next `add`.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    /// Replaces the config (validated, `config.toml` written atomically before the new value is
    /// served).
    pub fn set_config(&self, config: Config) -> Result<Arc<Config>, Error> {
        self.update_config(|_| Ok(config))
    }

    /// Changes the config with `edit`, which sees the current value. Edits run one at a time;
    /// the file is written (crash-safe) before readers see the new value, so what a client was
    /// told is stored survives a crash. Returns the new config.
    pub fn update_config(
        &self,
        edit: impl FnOnce(&Config) -> Result<Config, Error>,
    ) -> Result<Arc<Config>, Error> {
        let _one_writer = self.config_write.lock();
        let current = self.config();
        let new = edit(&current)?;
        new.validate()?;
        write_atomic(&self.path.join("config.toml"), new.to_toml()?.as_bytes())?;
        let new = Arc::new(new);
        *self.config.write() = new.clone();
        Ok(new)
    }

    /// The block store.
    pub fn blocks(&self) -> &dyn Blockstore {
        &self.blocks
    }

    /// The pinset.
    pub fn pins(&self) -> &Pinset {
        &self.pins
    }

    /// The network, while the daemon runs online.
    pub fn online(&self) -> Option<Arc<Online>> {
        self.online.read().clone()
    }

    /// The node's identity as Kubo's `id` reports it: with addresses and protocols online;
    /// offline, empty lists (not null: clients require arrays).
    pub fn id_info(&self) -> serde_json::Value {
        if let Some(info) = self.online().and_then(|o| o.id_info().ok()) {
            return info;
        }
        serde_json::json!({
            "ID": self.config().identity.peer_id,
            "PublicKey": "",
            "Addresses": [],
            "AgentVersion": format!("ipfs-kit/{}", env!("CARGO_PKG_VERSION")),
            "ProtocolVersion": "ipfs/0.1.0",
            "Protocols": [],
        })
    }

    /// The block cache's counters, when the cache is on.
    pub fn block_cache_stats(&self) -> Option<ipfs_kit_tiered::arc::Stats> {
        self.blocks.cache_stats()
    }

    /// A block from the memory cache only (no I/O, no hashing), or `None`.
    pub fn cached_block(&self, cid: &Cid) -> Option<Bytes> {
        self.blocks.get_cached(cid)
    }

    /// The bytes of a block: from the store, for identity CIDs from the CID itself, and when
    /// online from the network (verified and stored on arrival).
    pub fn block_bytes(&self, cid: &Cid) -> Result<Bytes, Error> {
        if cid.hash().code() == IDENTITY {
            return Ok(Bytes::copy_from_slice(cid.hash().digest()));
        }
        if let Some(data) = self.blocks.get(cid)? {
            return Ok(data);
        }
        match self.online() {
            Some(online) => online.fetch_block(cid),
            None => Err(Error::NotFound(*cid)),
        }
    }

    /// When online and `root` is not stored, starts fetching its whole DAG in the background,
    /// so reading it runs at the network's speed rather than one round trip per block. The
    /// fetch stops when the guard is dropped.
    pub(crate) fn prefetch(&self, root: &Cid) -> Option<net::Prefetch> {
        let online = self.online()?;
        match self.blocks.has(root) {
            Ok(false) => Some(online.prefetch(root)),
            _ => None,
        }
    }

    /// When online, fetches every missing block of the DAG under `root` and waits for them.
    pub(crate) fn fetch_missing(&self, root: &Cid) -> Result<(), Error> {
        if let Some(online) = self.online() {
            online.fetch_dag(root)?;
        }
        Ok(())
    }
}

impl BlockSource for Repo {
    fn get(&self, cid: &Cid) -> Result<Bytes, BoxError> {
        self.block_bytes(cid).map_err(|e| Box::new(e) as BoxError)
    }

    fn prefetch(&self, cids: &[Cid]) {
        self.blocks.prefetch(cids);
    }
}
