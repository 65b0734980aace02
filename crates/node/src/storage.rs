//! Storage tiers seen from the repo: each tier's figures, where a DAG's blocks live, and moving
//! a DAG between tiers (docs/tiered.md).

use std::collections::HashSet;

use ipfs_kit_block::{codec, Cid, IDENTITY};
use ipfs_kit_blockstore::Blockstore;
pub use ipfs_kit_tiered::{Moved, Progress};
use redb::{ReadableDatabase, TableDefinition};

use crate::{meta_err, Error, Repo};

/// One tier's figures (`storage tiers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierStat {
    /// The tier's name: `local`, `s3`.
    pub name: String,
    /// Blocks it holds.
    pub blocks: u64,
    /// Bytes of those blocks.
    pub bytes: u64,
}

/// Where one block of a DAG lives (`storage stat`).
#[derive(Clone, Debug, PartialEq)]
pub struct BlockPlace {
    /// The block.
    pub cid: Cid,
    /// Its size in bytes, if any tier has it.
    pub size: Option<u64>,
    /// The tiers holding it, in tier order; empty when none does.
    pub tiers: Vec<String>,
    /// How hot it is now (see [`ipfs_kit_tiered::heat`]).
    pub heat: f64,
}

/// What one demotion pass did (`storage rebalance`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebalanced {
    /// Block bytes on the local disk before the pass.
    pub before: u64,
    /// …and after it.
    pub after: u64,
    /// The tier blocks moved to, when any did.
    pub to: Option<String>,
    /// What the moves did.
    pub moved: Moved,
}

/// The heat snapshot, under [`HEAT_KEY`].
const HEAT: TableDefinition<&str, &[u8]> = TableDefinition::new("heat");
const HEAT_KEY: &str = "snapshot";

impl Drop for Repo {
    /// Keeps the blocks' heat for the next start (only with colder tiers, where it decides
    /// promotion; a kill loses the heat since the last clean exit, which is only advice).
    fn drop(&mut self) {
        if let Err(e) = self.save_heat() {
            tracing::warn!("saving block heat: {e}");
        }
    }
}

impl Repo {
    /// Restores the heat saved by the last clean exit.
    pub(crate) fn load_heat(&self) -> Result<(), Error> {
        let tx = self.meta.begin_read().map_err(meta_err)?;
        let t = match tx.open_table(HEAT) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(meta_err(e)),
        };
        if let Some(v) = t.get(HEAT_KEY).map_err(meta_err)? {
            self.blocks.inner().heat().restore(v.value());
        }
        Ok(())
    }

    /// Saves the blocks' heat in the metadata store, when there is a colder tier to promote
    /// from.
    pub fn save_heat(&self) -> Result<(), Error> {
        let tiers = self.blocks.inner();
        if tiers.names().len() < 2 || tiers.heat().is_empty() {
            return Ok(());
        }
        let snapshot = tiers.heat().snapshot();
        let tx = self.meta.begin_write().map_err(meta_err)?;
        {
            let mut t = tx.open_table(HEAT).map_err(meta_err)?;
            t.insert(HEAT_KEY, snapshot.as_slice()).map_err(meta_err)?;
        }
        tx.commit().map_err(meta_err)
    }

    /// Every tier's figures, the local one first. Counting an object storage tier lists its
    /// bucket.
    pub fn storage_tiers(&self) -> Result<Vec<TierStat>, Error> {
        let tiers = self.blocks.inner();
        tiers
            .names()
            .into_iter()
            .map(|name| {
                let s = tiers.tier_stats(name)?;
                Ok(TierStat {
                    name: name.to_string(),
                    blocks: s.blocks,
                    bytes: s.block_bytes,
                })
            })
            .collect()
    }

    /// Where each block of the DAG at `path` lives, root first (depth-first, each block once).
    /// A block no tier has ends its branch: its links cannot be known.
    pub fn storage_stat(&self, path: &str) -> Result<Vec<BlockPlace>, Error> {
        let root = self.resolve(path)?;
        let tiers = self.blocks.inner();
        let now = ipfs_kit_tiered::heat::now();
        self.dag_blocks(&root, false)?
            .into_iter()
            .map(|cid| {
                Ok(BlockPlace {
                    cid,
                    heat: tiers.heat().get(&cid.hash().to_bytes(), now),
                    size: tiers.size(&cid)?,
                    tiers: tiers
                        .locate(&cid)?
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                })
            })
            .collect()
    }

    /// Moves every block of the DAG at `path` into tier `tier` (copy, verify the copy, then
    /// delete the other copies: see [`ipfs_kit_tiered::TieredBlockstore::migrate`]). The whole
    /// DAG must be in the repo's tiers. Holds off garbage collection while it runs.
    /// `progress` hears each step as it completes.
    pub fn storage_migrate(
        &self,
        path: &str,
        tier: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Moved, Error> {
        let root = self.resolve(path)?;
        let _gc = self.gc_lock.read();
        let cids = self.dag_blocks(&root, true)?;
        Ok(self.blocks.inner().migrate(&cids, tier, progress)?)
    }

    /// One demotion pass: when the local disk holds more block bytes than
    /// `tiering.high_watermark` of `tiering.local_capacity`, moves its coldest blocks (pinned
    /// ones too, unless `tiering.pins_stay_local`) to the first colder tier until it is under
    /// `tiering.low_watermark`. Does nothing without a capacity or a colder tier. Holds off
    /// garbage collection while it runs.
    pub fn storage_rebalance(
        &self,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Rebalanced, Error> {
        let policy = self.config().tiering.clone();
        let capacity = policy.local_capacity_bytes()? as f64;
        let tiers = self.blocks.inner();
        let before = tiers.local().stats()?.block_bytes;
        let mut done = Rebalanced {
            before,
            after: before,
            ..Rebalanced::default()
        };
        let Some(to) = tiers.names().get(1).map(|t| t.to_string()) else {
            return Ok(done);
        };
        if capacity == 0.0 || (before as f64) <= policy.high_watermark * capacity {
            return Ok(done);
        }
        let _gc = self.gc_lock.read();
        let pinned = if policy.pins_stay_local {
            ipfs_kit_pin::reachable(&self.blocks, &self.pins)?
        } else {
            HashSet::new()
        };
        let now = ipfs_kit_tiered::heat::now();
        let mut candidates = Vec::new();
        for cid in tiers.local().list()? {
            let mh = cid.hash().to_bytes();
            if pinned.contains(&mh) {
                continue;
            }
            let size = tiers.local().size(&cid)?.unwrap_or(0);
            candidates.push((tiers.heat().get(&mh, now), cid, size));
        }
        // Coldest first; among equally cold blocks, the larger first (fewer moves).
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.2.cmp(&a.2)));
        let goal = policy.low_watermark * capacity;
        let mut left = before as f64;
        let mut chosen = Vec::new();
        for (_, cid, size) in candidates {
            if left <= goal {
                break;
            }
            left -= size as f64;
            chosen.push(cid);
        }
        done.moved = tiers.migrate(&chosen, &to, progress)?;
        done.after = tiers.local().stats()?.block_bytes;
        done.to = Some(to);
        Ok(done)
    }

    /// The stored blocks of the DAG under `root` (identity blocks, which live in their CIDs,
    /// left out). Raw blocks have no links, so they are not read. With `complete`, a block in
    /// no tier is an error; without, it is listed and its links skipped.
    fn dag_blocks(&self, root: &Cid, complete: bool) -> Result<Vec<Cid>, Error> {
        let tiers = self.blocks.inner();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if cid.hash().code() == IDENTITY || !seen.insert(*cid.hash()) {
                continue;
            }
            out.push(cid);
            if cid.codec() == codec::RAW {
                if complete && !tiers.has(&cid)? {
                    return Err(Error::NotFound(cid));
                }
                continue;
            }
            match tiers.peek(&cid)? {
                Some(data) => {
                    let links = ipfs_kit_block::ipld::links(cid.codec(), &data)?;
                    stack.extend(links.into_iter().rev());
                }
                None if complete => return Err(Error::NotFound(cid)),
                None => {}
            }
        }
        Ok(out)
    }
}
