//! The object storage tier: blocks as objects in an S3-compatible bucket, through the
//! `object_store` crate.
//!
//! Layout (docs/tiered.md, "The object storage tier"): one object per block at
//! `<prefix>/blocks/<KEY>`, where KEY is the block's multihash in base32 (RFC 4648, upper case,
//! unpadded: `CIQ…` for sha2-256), the spelling of Kubo's datastore block keys; the object's
//! body is the block's bytes, nothing else. Every block read back is re-hashed against the
//! multihash asked for; a mismatch is [`Error::Corrupt`] and its bytes are never returned.
//!
//! The [`Blockstore`] trait is synchronous and `object_store` is not: the tier runs its
//! requests on a small runtime of its own, so callers on any thread (the node's blocking pool,
//! tests) wait without needing one.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use ipfs_kit_block::{codec, make_cid, verify_multihash, Block, Bytes, Cid};
use ipfs_kit_blockstore::{Blockstore, Error, StoreStats, WriteBatch};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};

type Multihash = ipfs_kit_block::Multihash<64>;

/// Requests of one batch commit (or delete) in flight at once.
const CONCURRENCY: usize = 16;
/// Blocks fetched ahead of their reads ([`Blockstore::prefetch`]) held at once, in flight or
/// waiting to be read: bounds the memory read-ahead takes (24 blocks of at most 4 MiB).
const AHEAD: usize = 24;
/// A block fetched ahead and not read within this long is dropped (its reader went away).
const AHEAD_STALE: Duration = Duration::from_secs(10);

/// One block being fetched ahead: its bytes (or why not) once the GET completes.
#[derive(Default)]
struct Slot {
    result: parking_lot::Mutex<Option<Result<Bytes, String>>>,
    done: parking_lot::Condvar,
}

impl Slot {
    fn fill(&self, r: Result<Bytes, String>) {
        *self.result.lock() = Some(r);
        self.done.notify_all();
    }

    fn is_done(&self) -> bool {
        self.result.lock().is_some()
    }

    fn wait(&self) -> Result<Bytes, String> {
        let mut r = self.result.lock();
        while r.is_none() {
            self.done.wait(&mut r);
        }
        r.take().unwrap_or_else(|| Err("read twice".into()))
    }
}

/// Bytes one write batch may hold before its commit: a batch is kept in memory until then, so
/// that an abandoned batch leaves nothing in the bucket.
pub const MAX_BATCH_BYTES: usize = 256 << 20;

/// Where the bucket is and how to reach it. Credentials left out come from the usual AWS
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Clone, Debug, Default)]
pub struct ObjectConfig {
    /// The tier's name in errors and statistics (`s3`).
    pub name: String,
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside the bucket (no leading or trailing `/` needed); empty for none.
    pub prefix: String,
    /// The S3 endpoint (`http://127.0.0.1:9000` for a local server); empty for AWS itself.
    pub endpoint: String,
    /// The region (`us-east-1` when empty).
    pub region: String,
    /// The access key ID, when not from the environment.
    pub access_key_id: Option<String>,
    /// The secret access key, when not from the environment.
    pub secret_access_key: Option<String>,
    /// Virtual-host-style requests (`bucket.endpoint/key`) instead of path-style
    /// (`endpoint/bucket/key`, what most S3-compatible servers expect).
    pub virtual_hosted_style: bool,
    /// How long one request may take before it fails (and is retried).
    pub timeout: Duration,
    /// Retries of a failed request before the operation fails.
    pub retries: usize,
}

impl ObjectConfig {
    /// A config for `bucket` at `endpoint`, with the defaults: path-style requests, a 30 s
    /// request timeout, two retries.
    pub fn new(bucket: impl Into<String>, endpoint: impl Into<String>) -> Self {
        ObjectConfig {
            name: "s3".into(),
            bucket: bucket.into(),
            endpoint: endpoint.into(),
            timeout: Duration::from_secs(30),
            retries: 2,
            ..Default::default()
        }
    }
}

/// Blocks in an S3-compatible bucket. See the module documentation for the layout.
pub struct ObjectBlockstore {
    store: Arc<dyn ObjectStore>,
    /// `<prefix>/blocks`.
    root: Path,
    name: String,
    /// Blocks being fetched ahead, oldest first: (multihash, when asked, the fetch).
    ahead: parking_lot::Mutex<VecDeque<(Multihash, Instant, Arc<Slot>)>>,
    /// Always `Some` until drop, which shuts it down without waiting (a runtime dropped the
    /// ordinary way panics on a thread of another runtime).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ObjectBlockstore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl ObjectBlockstore {
    /// Connects to nothing yet: the first request does. Fails only on a config the client
    /// refuses (no bucket, a malformed endpoint).
    pub fn open(config: &ObjectConfig) -> Result<Self, Error> {
        let tier = |message: String| Error::Tier {
            tier: config.name.clone(),
            message,
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(config.timeout)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(true),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: config.retries,
                retry_timeout: config.timeout * 3,
            });
        if !config.endpoint.is_empty() {
            builder = builder.with_endpoint(&config.endpoint);
        }
        builder = builder.with_region(if config.region.is_empty() {
            "us-east-1"
        } else {
            &config.region
        });
        if let Some(k) = &config.access_key_id {
            builder = builder.with_access_key_id(k);
        }
        if let Some(s) = &config.secret_access_key {
            builder = builder.with_secret_access_key(s);
        }
        let store = builder.build().map_err(|e| tier(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("tier-{}", config.name))
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                context: "start the object storage runtime".into(),
                source,
            })?;
        let prefix = config.prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            Path::from("blocks")
        } else {
            Path::from(format!("{prefix}/blocks"))
        };
        Ok(ObjectBlockstore {
            store: Arc::new(store),
            root,
            name: config.name.clone(),
            ahead: parking_lot::Mutex::new(VecDeque::new()),
            runtime: Some(runtime),
        })
    }

    /// The tier's name, as its errors give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `fut` on the tier's runtime and waits for it from this (any) thread.
    fn wait<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, object_store::Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if let Some(rt) = &self.runtime {
            rt.spawn(async move {
                let _ = tx.send(fut.await);
            });
        }
        match rx.recv() {
            Ok(r) => r.map_err(|e| self.error(e)),
            Err(_) => Err(self.error_text("the request was dropped".into())),
        }
    }

    fn error(&self, e: object_store::Error) -> Error {
        self.error_text(e.to_string())
    }

    fn error_text(&self, message: String) -> Error {
        Error::Tier {
            tier: self.name.clone(),
            message,
        }
    }

    fn path(&self, mh: &Multihash) -> Path {
        self.root.child(key_of(mh))
    }

    /// The read-ahead fetch of `mh`, taken out of the queue, if there is one.
    fn take_ahead(&self, mh: &Multihash) -> Option<Arc<Slot>> {
        let mut ahead = self.ahead.lock();
        let i = ahead.iter().position(|(m, _, _)| m == mh)?;
        ahead.remove(i).map(|(_, _, slot)| slot)
    }

    /// Writes `blocks` (already deduplicated), `CONCURRENCY` at a time.
    fn upload(&self, blocks: Vec<Block>) -> Result<(), Error> {
        let puts: Vec<(Path, Bytes)> = blocks
            .into_iter()
            .map(|b| (self.path(b.cid().hash()), b.data().clone()))
            .collect();
        let store = self.store.clone();
        self.wait(async move {
            futures::stream::iter(puts)
                .map(|(path, data)| {
                    let store = store.clone();
                    async move { store.put(&path, PutPayload::from(data)).await }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await
                .map(|_| ())
        })
    }

    /// Every object under the block root, as (multihash, size); keys that are not block keys
    /// (something else written under the prefix) are skipped.
    fn objects(&self) -> Result<Vec<(Multihash, u64)>, Error> {
        let (store, root) = (self.store.clone(), self.root.clone());
        let metas =
            self.wait(async move { store.list(Some(&root)).try_collect::<Vec<_>>().await })?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.filename()?;
                Some((mh_of(key)?, m.size))
            })
            .collect())
    }
}

/// A block's object key: its multihash in unpadded upper-case base32.
pub fn key_of(mh: &Multihash) -> String {
    multibase::Base::Base32Upper.encode(mh.to_bytes())
}

/// The multihash an object key names, if it is one.
fn mh_of(key: &str) -> Option<Multihash> {
    let bytes = multibase::Base::Base32Upper.decode(key).ok()?;
    Multihash::from_bytes(&bytes).ok()
}

fn not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

impl Blockstore for ObjectBlockstore {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        // A block fetched ahead is used when its fetch worked; otherwise it is asked again,
        // so a failed read-ahead costs a request, never a wrong answer.
        let ahead = self
            .take_ahead(cid.hash())
            .and_then(|slot| slot.wait().ok());
        let got = match ahead {
            Some(data) => Some(data),
            None => {
                let (store, path) = (self.store.clone(), self.path(cid.hash()));
                self.wait(async move {
                    match store.get(&path).await {
                        Ok(r) => r.bytes().await.map(Some),
                        Err(e) if not_found(&e) => Ok(None),
                        Err(e) => Err(e),
                    }
                })?
            }
        };
        let Some(data) = got else { return Ok(None) };
        match verify_multihash(cid.hash(), &data) {
            Ok(()) => Ok(Some(data)),
            Err(ipfs_kit_block::Error::HashMismatch) => Err(Error::Corrupt(*cid)),
            Err(e) => Err(self.error_text(format!("block {cid}: {e}"))),
        }
    }

    fn has(&self, cid: &Cid) -> Result<bool, Error> {
        Ok(self.size(cid)?.is_some())
    }

    /// Starts GETs of the blocks not being fetched yet, [`AHEAD`] at most held at once (a
    /// completed fetch nobody took makes room for a new one); [`get`] takes their results.
    /// Read-ahead nobody read within [`AHEAD_STALE`] is dropped.
    ///
    /// [`get`]: Blockstore::get
    fn prefetch(&self, cids: &[Cid]) {
        let Some(rt) = &self.runtime else { return };
        let mut ahead = self.ahead.lock();
        ahead.retain(|(_, asked, _)| asked.elapsed() < AHEAD_STALE);
        for cid in cids {
            let mh = *cid.hash();
            if ahead.iter().any(|(m, _, _)| *m == mh) {
                continue;
            }
            if ahead.len() >= AHEAD {
                match ahead.iter().position(|(_, _, slot)| slot.is_done()) {
                    Some(i) => drop(ahead.remove(i)),
                    None => break,
                }
            }
            let slot = Arc::new(Slot::default());
            ahead.push_back((mh, Instant::now(), slot.clone()));
            let (store, path) = (self.store.clone(), self.path(&mh));
            rt.spawn(async move {
                let r = match store.get(&path).await {
                    Ok(r) => r.bytes().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                slot.fill(r);
            });
        }
    }

    fn size(&self, cid: &Cid) -> Result<Option<u64>, Error> {
        let (store, path) = (self.store.clone(), self.path(cid.hash()));
        self.wait(async move {
            match store.head(&path).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(e) if not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, Error> {
        Ok(Box::new(Batch {
            store: self,
            blocks: Vec::new(),
            bytes: 0,
        }))
    }

    fn delete_many(&self, cids: &[Cid]) -> Result<u64, Error> {
        // A block fetched ahead must not outlive its deletion.
        for cid in cids {
            self.take_ahead(cid.hash());
        }
        let mut present = Vec::new();
        for cid in cids {
            if self.has(cid)? {
                present.push(self.path(cid.hash()));
            }
        }
        present.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        present.dedup();
        let n = present.len() as u64;
        let store = self.store.clone();
        self.wait(async move {
            futures::stream::iter(present)
                .map(|path| {
                    let store = store.clone();
                    async move {
                        match store.delete(&path).await {
                            Err(e) if !not_found(&e) => Err(e),
                            _ => Ok(()),
                        }
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await
        })?;
        Ok(n)
    }

    /// CIDv1 raw of every block: the bucket keeps multihashes only, as Kubo's own
    /// multihash-keyed datastores do.
    fn list(&self) -> Result<Vec<Cid>, Error> {
        Ok(self
            .objects()?
            .into_iter()
            .map(|(mh, _)| make_cid(1, codec::RAW, mh))
            .collect())
    }

    /// One listing of the bucket: as costly as [`ObjectBlockstore::list`].
    fn stats(&self) -> Result<StoreStats, Error> {
        let objects = self.objects()?;
        let bytes = objects.iter().map(|(_, size)| size).sum();
        Ok(StoreStats {
            blocks: objects.len() as u64,
            block_bytes: bytes,
            disk_bytes: bytes,
        })
    }
}

/// A write batch of the object tier: held in memory (at most [`MAX_BATCH_BYTES`]) and uploaded
/// on commit, so nothing of an abandoned batch reaches the bucket.
struct Batch<'a> {
    store: &'a ObjectBlockstore,
    blocks: Vec<Block>,
    bytes: usize,
}

impl WriteBatch for Batch<'_> {
    fn put(&mut self, block: Block) -> Result<(), Error> {
        let size = block.data().len();
        if self.bytes + size > MAX_BATCH_BYTES {
            return Err(Error::BatchFull {
                limit: MAX_BATCH_BYTES,
            });
        }
        self.bytes += size;
        self.blocks.push(block);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), Error> {
        let mut seen = std::collections::HashSet::new();
        let mut blocks = std::mem::take(&mut self.blocks);
        blocks.retain(|b| seen.insert(*b.cid().hash()));
        self.store.upload(blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfs_kit_block::HashAlg;

    #[test]
    fn keys_are_kubos_base32_multihashes() {
        let b = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"hello".to_vec());
        let key = key_of(b.cid().hash());
        assert!(key.starts_with("CIQ"), "{key}");
        assert_eq!(mh_of(&key), Some(*b.cid().hash()));
        assert_eq!(mh_of("not-a-key"), None);
    }
}
