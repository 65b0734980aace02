//! Providing content: which keys the node announces (Kubo's `Reprovider.Strategy`), the
//! reprovider that announces them all again every `Reprovider.Interval`, and the announcement of
//! newly stored blocks. The batching itself is the network's (`ipfs_kit_net`, docs/network.md).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use ipfs_kit_block::{Block, Bytes, Cid};
use ipfs_kit_blockstore::{Blockstore, StoreStats, WriteBatch};
use ipfs_kit_net::Network;
use ipfs_kit_pin::PinType;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Repo};

/// Keys handed to the network per reprovide job: large enough that a crawl of the DHT is
/// shared by many keys, small enough to bound the memory of one job.
const REPROVIDE_CHUNK: usize = 50_000;
/// The first reprovide runs this long after the daemon starts (as boxo's reprovider), so a
/// restart does not delay the node's start with a full announcement.
const FIRST_REPROVIDE: Duration = Duration::from_secs(60);

/// What the node provides (Kubo's `Reprovider.Strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Every stored block (Kubo's default).
    All,
    /// Every block of the pinned DAGs.
    Pinned,
    /// The pin roots only.
    Roots,
}

impl Strategy {
    /// Parses Kubo's names.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "all" | "" => Strategy::All,
            "pinned" => Strategy::Pinned,
            "roots" => Strategy::Roots,
            other => {
                return Err(Error::Config(format!(
                    "unknown reprovider strategy {other:?} (expected all, pinned or roots)"
                )))
            }
        })
    }
}

/// The keys `strategy` provides, read from the repo (blocking).
pub(crate) fn keys(repo: &Repo, strategy: Strategy) -> Result<Vec<Cid>, Error> {
    let types: &[PinType] = match strategy {
        Strategy::All => return Ok(repo.blocks().list()?),
        Strategy::Pinned => &[PinType::Recursive, PinType::Direct, PinType::Indirect],
        Strategy::Roots => &[PinType::Recursive, PinType::Direct],
    };
    Ok(repo
        .pins()
        .list(repo.blocks(), types)?
        .into_iter()
        .map(|(c, _)| c)
        .collect())
}

/// The repo's block store, announcing what each committed batch added while the node is
/// online with the `all` strategy (Kubo announces new blocks as they are stored, bitswap's
/// received blocks included). Announcing never blocks the writer: see [`Network::announce`].
pub struct Announcing<B> {
    inner: B,
    network: RwLock<Option<Network>>,
}

impl<B> Announcing<B> {
    /// `inner`, announcing nothing until [`Announcing::set_network`].
    pub fn new(inner: B) -> Self {
        Announcing {
            inner,
            network: RwLock::new(None),
        }
    }

    /// Where new blocks are announced (`None`: nowhere).
    pub(crate) fn set_network(&self, network: Option<Network>) {
        *self.network.write() = network;
    }
}

impl<B> Deref for Announcing<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.inner
    }
}

struct AnnouncingBatch<'a> {
    inner: Box<dyn WriteBatch + 'a>,
    cids: Vec<Cid>,
    network: Option<Network>,
}

impl WriteBatch for AnnouncingBatch<'_> {
    fn put(&mut self, block: Block) -> Result<(), ipfs_kit_blockstore::Error> {
        if self.network.is_some() {
            self.cids.push(*block.cid());
        }
        self.inner.put(block)
    }

    fn commit(self: Box<Self>) -> Result<(), ipfs_kit_blockstore::Error> {
        let AnnouncingBatch {
            inner,
            cids,
            network,
        } = *self;
        inner.commit()?;
        if let Some(net) = network {
            net.announce(cids);
        }
        Ok(())
    }
}

impl<B: Blockstore> Blockstore for Announcing<B> {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, ipfs_kit_blockstore::Error> {
        self.inner.get(cid)
    }

    fn peek(&self, cid: &Cid) -> Result<Option<Bytes>, ipfs_kit_blockstore::Error> {
        self.inner.peek(cid)
    }

    fn touch(&self, cid: &Cid) {
        self.inner.touch(cid)
    }

    fn prefetch(&self, cids: &[Cid]) {
        self.inner.prefetch(cids)
    }

    fn has(&self, cid: &Cid) -> Result<bool, ipfs_kit_blockstore::Error> {
        self.inner.has(cid)
    }

    fn size(&self, cid: &Cid) -> Result<Option<u64>, ipfs_kit_blockstore::Error> {
        self.inner.size(cid)
    }

    fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, ipfs_kit_blockstore::Error> {
        Ok(Box::new(AnnouncingBatch {
            inner: self.inner.begin()?,
            cids: Vec::new(),
            network: self.network.read().clone(),
        }))
    }

    fn delete_many(&self, cids: &[Cid]) -> Result<u64, ipfs_kit_blockstore::Error> {
        self.inner.delete_many(cids)
    }

    fn list(&self) -> Result<Vec<Cid>, ipfs_kit_blockstore::Error> {
        self.inner.list()
    }

    fn stats(&self) -> Result<StoreStats, ipfs_kit_blockstore::Error> {
        self.inner.stats()
    }
}

/// The keys to announce after `roots` were pinned, under `strategy` (none for `all`: their
/// blocks were announced as they were stored).
pub(crate) fn pinned_keys(repo: &Repo, strategy: Strategy, roots: &[Cid]) -> Vec<Cid> {
    match strategy {
        Strategy::All => Vec::new(),
        Strategy::Roots => roots.to_vec(),
        Strategy::Pinned => {
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::new();
            for root in roots {
                // A DAG pinned was just walked whole; a failure here only shortens the list.
                let _ =
                    ipfs_kit_pin::walk_dag(repo.blocks(), root, &mut seen, &mut |c| out.push(*c));
            }
            out
        }
    }
}

/// A request to reprovide now (`bitswap reprovide`), answered when done.
pub(crate) type Trigger = oneshot::Sender<Result<usize, Error>>;

/// Starts the reprovider: every `interval` (the first after [`FIRST_REPROVIDE`]) and on each
/// trigger, the keys of `strategy` are provided again in chunks. `interval` zero: triggers
/// only (Kubo refuses `reprovide` then; the caller checks). Stops when `triggers` closes.
pub(crate) fn spawn(
    repo: Arc<Repo>,
    net: Network,
    strategy: Strategy,
    interval: Duration,
    mut triggers: mpsc::Receiver<Trigger>,
) {
    tokio::spawn(async move {
        let mut next = (!interval.is_zero()).then(|| tokio::time::Instant::now() + FIRST_REPROVIDE);
        loop {
            let trigger = match next {
                Some(at) => tokio::select! {
                    t = triggers.recv() => match t {
                        Some(t) => Some(t),
                        None => return,
                    },
                    _ = tokio::time::sleep_until(at) => None,
                },
                None => match triggers.recv().await {
                    Some(t) => Some(t),
                    None => return,
                },
            };
            let result = reprovide(&repo, &net, strategy).await;
            match &result {
                Ok(n) => tracing::info!("reprovided {n} keys ({strategy:?})"),
                Err(e) => tracing::warn!("reprovide: {e}"),
            }
            if let Some(t) = trigger {
                let _ = t.send(result);
            }
            if !interval.is_zero() {
                next = Some(tokio::time::Instant::now() + interval);
            }
        }
    });
}

async fn reprovide(repo: &Arc<Repo>, net: &Network, strategy: Strategy) -> Result<usize, Error> {
    let r = repo.clone();
    let keys = tokio::task::spawn_blocking(move || keys(&r, strategy))
        .await
        .map_err(|e| Error::Network(format!("reprovide: {e}")))??;
    let mut n = 0;
    for chunk in keys.chunks(REPROVIDE_CHUNK) {
        n += net.reprovide(chunk.to_vec()).await?.keys;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_like_kubo() {
        assert_eq!(Strategy::parse("all").unwrap(), Strategy::All);
        assert_eq!(Strategy::parse("").unwrap(), Strategy::All);
        assert_eq!(Strategy::parse("pinned").unwrap(), Strategy::Pinned);
        assert_eq!(Strategy::parse("roots").unwrap(), Strategy::Roots);
        assert!(Strategy::parse("flat").is_err());
    }

    #[test]
    fn keys_follow_the_strategy() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path(), crate::InitOptions::default()).unwrap();
        let raw = |d: &'static [u8]| {
            Block::encode(
                ipfs_kit_block::codec::RAW,
                ipfs_kit_block::HashAlg::Sha2_256,
                1,
                d,
            )
        };
        let (leaf, loose) = (raw(b"leaf"), raw(b"loose"));
        repo.blocks()
            .put_many(vec![leaf.clone(), loose.clone()])
            .unwrap();
        let mut all = keys(&repo, Strategy::All).unwrap();
        all.sort();
        let mut want = vec![*leaf.cid(), *loose.cid()];
        want.sort();
        assert_eq!(all, want);
        assert!(keys(&repo, Strategy::Roots).unwrap().is_empty());
        repo.pin_add(&[leaf.cid().to_string()], true).unwrap();
        assert_eq!(keys(&repo, Strategy::Roots).unwrap(), vec![*leaf.cid()]);
        assert_eq!(keys(&repo, Strategy::Pinned).unwrap(), vec![*leaf.cid()]);
    }
}
