//! Storage tiers seen from the repo: each tier's figures, where a DAG's blocks live, and moving
//! a DAG between tiers (docs/tiered.md).

use std::collections::HashSet;

use ipfs_kit_block::{codec, Cid, IDENTITY};
use ipfs_kit_blockstore::{Blockstore, StoreStats};
pub use ipfs_kit_tiered::counters::TierFigures;
pub use ipfs_kit_tiered::{Moved, Progress};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{meta_err, Error, Repo};

/// The name of the memory tier (the daemon's block cache) in `storage tiers`.
pub const MEMORY: &str = "memory";

/// A pending migration retried, and what came of it.
pub type Resumed = (PendingMigration, Result<Moved, Error>);

/// A migration asked for and not finished (`storage tiers`): it is retried until it
/// completes or is cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingMigration {
    /// The DAG's root.
    pub root: Cid,
    /// The tier it is to move to.
    pub tier: String,
    /// The whole DAG (else the root block alone).
    pub recursive: bool,
}

/// The suffix of a [`MIGRATIONS`] key that moves one block, not a DAG.
const BLOCK_ONLY: &str = ":block";

impl PendingMigration {
    /// Its key in [`MIGRATIONS`]: the root CID, with [`BLOCK_ONLY`] after it for one block.
    fn key(&self) -> String {
        if self.recursive {
            self.root.to_string()
        } else {
            format!("{}{BLOCK_ONLY}", self.root)
        }
    }
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
    /// Blocks deleted from the object storage tier past its high watermark (kept by nothing:
    /// left to the network).
    pub evicted: u64,
    /// Their bytes.
    pub evicted_bytes: u64,
}

/// One row of `storage tiers`: what tier `name` holds, its limit (when it has one), whether it
/// is durable, why it could not be counted (if it could not), and its reads and moves.
fn tier_info(
    name: &str,
    held: &StoreStats,
    capacity: Option<u64>,
    durable: bool,
    error: Option<String>,
    f: &TierFigures,
) -> ipfs_kit_rpc::TierInfo {
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    ipfs_kit_rpc::TierInfo {
        name: name.to_string(),
        blocks: held.blocks,
        bytes: held.block_bytes,
        capacity,
        durable,
        error,
        hits: f.hits,
        misses: f.misses,
        errors: f.errors,
        hit_ratio: f.hit_ratio(),
        read_bytes: f.read_bytes,
        latency_us: f.percentile(0.5).map(|p50| ipfs_kit_rpc::Latency {
            p50: micros(p50),
            p90: f.percentile(0.9).map_or(0, micros),
            p99: f.percentile(0.99).map_or(0, micros),
        }),
        moved_in_blocks: f.moved_in_blocks,
        moved_in_bytes: f.moved_in_bytes,
        moved_out_blocks: f.moved_out_blocks,
    }
}

/// What a migration did, as the RPC API's `storage/migrate` answers (and the CLI prints it
/// offline).
pub fn migrated_report(m: Moved) -> ipfs_kit_rpc::Migrated {
    ipfs_kit_rpc::Migrated {
        copied: m.copied,
        bytes: m.bytes,
        already: m.already,
        removed: m.removed,
    }
}

/// What a rebalance pass did, as the RPC API's `storage/rebalance` answers.
pub fn rebalance_report(r: Rebalanced) -> ipfs_kit_rpc::Rebalance {
    ipfs_kit_rpc::Rebalance {
        before: r.before,
        after: r.after,
        to: r.to,
        moved: migrated_report(r.moved),
        evicted: r.evicted,
        evicted_bytes: r.evicted_bytes,
    }
}

/// The heat snapshot, under [`HEAT_KEY`].
const HEAT: TableDefinition<&str, &[u8]> = TableDefinition::new("heat");
const HEAT_KEY: &str = "snapshot";
/// Migrations asked for and not yet complete: root CID (with `:block` after it when only the
/// root block moves) -> target tier. Written before a migration starts and removed when it
/// completes, so one cut short by a crash or an unreachable tier is retried (docs/tiered.md,
/// "When object storage goes away").
const MIGRATIONS: TableDefinition<&str, &str> = TableDefinition::new("migrations");

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

    /// Every tier's figures, as the RPC API's `storage/tiers` gives them (and `storage tiers`
    /// offline prints them): the memory tier (when this process has a block cache), the local
    /// disk, then the colder tiers; then the pending migrations. Counting an object storage
    /// tier lists its bucket; one that cannot be reached is listed with why.
    pub fn storage_tiers(&self) -> Result<ipfs_kit_rpc::StorageTiers, Error> {
        let tiers = self.blocks.inner();
        let mut out = Vec::new();
        if let Some(c) = self.blocks.cache_stats() {
            let held = StoreStats {
                blocks: c.resident_entries,
                block_bytes: c.resident_bytes,
                disk_bytes: 0,
            };
            let figures = TierFigures {
                hits: c.hits,
                misses: c.misses,
                ..TierFigures::default()
            };
            out.push(tier_info(
                MEMORY,
                &held,
                Some(c.capacity),
                false,
                None,
                &figures,
            ));
        }
        let local_capacity = self.config().tiering.local_capacity_bytes()?;
        let bucket_capacity = self.config().object_storage.capacity_bytes()?;
        for name in tiers.names() {
            let (held, error) = match tiers.tier_stats(name) {
                Ok(s) => (s, None),
                Err(e) if name != ipfs_kit_tiered::LOCAL => {
                    (Default::default(), Some(e.to_string()))
                }
                Err(e) => return Err(e.into()),
            };
            let capacity = if name == ipfs_kit_tiered::LOCAL {
                local_capacity
            } else {
                bucket_capacity
            };
            out.push(tier_info(
                name,
                &held,
                Some(capacity).filter(|c| *c > 0),
                tiers.is_durable(name),
                error,
                &tiers.tier_figures(name)?,
            ));
        }
        let pending = self
            .pending_migrations()?
            .into_iter()
            .map(|p| ipfs_kit_rpc::PendingMigration {
                root: p.root.to_string(),
                tier: p.tier,
                recursive: p.recursive,
            })
            .collect();
        Ok(ipfs_kit_rpc::StorageTiers {
            tiers: out,
            pending,
        })
    }

    /// Every tier's reads, latencies and moves since the repo was opened (the local disk
    /// first; no tier is listed, so this is cheap).
    pub fn tier_figures(&self) -> Vec<(String, TierFigures)> {
        let tiers = self.blocks.inner();
        tiers
            .names()
            .into_iter()
            .filter_map(|name| Some((name.to_string(), tiers.tier_figures(name).ok()?)))
            .collect()
    }

    /// The local disk tier's figures.
    pub fn local_stats(&self) -> Result<StoreStats, Error> {
        Ok(self.blocks.inner().local().stats()?)
    }

    /// The migrations not finished yet, in root order.
    pub fn pending_migrations(&self) -> Result<Vec<PendingMigration>, Error> {
        let tx = self.meta.begin_read().map_err(meta_err)?;
        let t = match tx.open_table(MIGRATIONS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(meta_err(e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(meta_err)? {
            let (k, v) = row.map_err(meta_err)?;
            let key = k.value();
            let (root, recursive) = match key.strip_suffix(BLOCK_ONLY) {
                Some(root) => (root, false),
                None => (key, true),
            };
            out.push(PendingMigration {
                root: root.parse().map_err(meta_err)?,
                tier: v.value().to_string(),
                recursive,
            });
        }
        Ok(out)
    }

    /// Records migration `m` as pending (`on`), or forgets it.
    fn set_pending(&self, m: &PendingMigration, on: bool) -> Result<(), Error> {
        let key = m.key();
        let tx = self.meta.begin_write().map_err(meta_err)?;
        {
            let mut t = tx.open_table(MIGRATIONS).map_err(meta_err)?;
            if on {
                t.insert(key.as_str(), m.tier.as_str()).map(|_| ())
            } else {
                t.remove(key.as_str()).map(|_| ())
            }
            .map_err(meta_err)?;
        }
        tx.commit().map_err(meta_err)
    }

    /// Drops the pending migrations of the DAG at `path` and of its root block (what they
    /// moved so far stays where it is, possibly spread over tiers). Whether there was one.
    pub fn cancel_migration(&self, path: &str) -> Result<bool, Error> {
        let root = self.resolve(path)?;
        let mut found = false;
        for p in self.pending_migrations()? {
            if p.root == root {
                self.set_pending(&p, false)?;
                found = true;
            }
        }
        Ok(found)
    }

    /// Retries every pending migration (the daemon does, every `tiering.interval`); what each
    /// did. One that fails stays pending.
    pub fn resume_migrations(&self) -> Result<Vec<Resumed>, Error> {
        Ok(self
            .pending_migrations()?
            .into_iter()
            .map(|p| {
                let r = self.run_migration(&p, &mut |_| {});
                (p, r)
            })
            .collect())
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

    /// Moves every block of the DAG at `path` (or, without `recursive`, its root block alone)
    /// into tier `tier` (copy, verify the copy, then delete the other copies: see
    /// [`ipfs_kit_tiered::TieredBlockstore::migrate`]). The whole DAG must be in the repo's
    /// tiers. Holds off garbage collection while it runs. `progress` hears each step as it
    /// completes.
    ///
    /// The migration is recorded before it starts: one that fails part way (a tier
    /// unreachable, a crash) stays pending, is listed by `storage tiers`, and is retried by
    /// [`Repo::resume_migrations`] until it completes or is cancelled
    /// ([`Repo::cancel_migration`]); its error is then [`Error::MigrationPending`].
    pub fn storage_migrate(
        &self,
        path: &str,
        tier: &str,
        recursive: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Moved, Error> {
        let m = PendingMigration {
            root: self.resolve(path)?,
            tier: tier.to_string(),
            recursive,
        };
        self.blocks.inner().check_tier(tier)?;
        self.set_pending(&m, true)?;
        self.run_migration(&m, progress)
    }

    /// Runs the recorded migration `m`, and forgets it once it completes, or when what it
    /// moves is no longer whole in the repo (collected since: nothing is left to move).
    fn run_migration(
        &self,
        m: &PendingMigration,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Moved, Error> {
        let (root, tier) = (&m.root, m.tier.as_str());
        let moved = {
            let _gc = self.gc_lock.read();
            let blocks = if m.recursive {
                self.dag_blocks(root, true)
            } else if self.blocks.inner().has(root)? {
                Ok(vec![*root])
            } else {
                Err(Error::NotFound(*root))
            };
            blocks.and_then(|cids| {
                let keep = self.kept_local(tier)?;
                Ok(self.blocks.inner().migrate_keeping(
                    &cids,
                    tier,
                    &|c| keep.contains(&c.hash().to_bytes()),
                    progress,
                )?)
            })
        };
        match moved {
            Ok(done) => {
                self.set_pending(m, false)?;
                Ok(done)
            }
            Err(e @ Error::NotFound(_)) => {
                self.set_pending(m, false)?;
                Err(e)
            }
            Err(e) => Err(Error::MigrationPending {
                root: *root,
                tier: tier.to_string(),
                source: Box::new(e),
            }),
        }
    }

    /// The tiering policy (the config's `[tiering]` section under Kubo-style names), after
    /// setting `key` (`PromoteAt` or `promote_at`) to `value` when given. Only the section's
    /// own settings can be set: an unknown key is an error and changes nothing.
    pub fn storage_policy(
        &self,
        set: Option<(&str, serde_json::Value)>,
    ) -> Result<serde_json::Value, Error> {
        if let Some((key, value)) = set {
            let known = crate::Config::default().kubo_get("Tiering")?;
            let names: Vec<&String> = known
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys())
                .collect();
            let wanted = key.replace('_', "").to_ascii_lowercase();
            let name = names
                .iter()
                .find(|n| n.to_ascii_lowercase() == wanted)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "no tiering setting {key:?} (the settings are {})",
                        names
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            self.update_config(|c| c.with_json(&format!("Tiering.{name}"), value))?;
        }
        self.config().kubo_get("Tiering")
    }

    /// The multihashes whose copies a move to `tier` must leave where they are: every pinned
    /// block when `tier` is not durable (a pin always keeps a durable copy), none otherwise.
    fn kept_local(&self, tier: &str) -> Result<HashSet<Vec<u8>>, Error> {
        if self.blocks.inner().is_durable(tier) {
            return Ok(HashSet::new());
        }
        Ok(ipfs_kit_pin::reachable(&self.blocks, &self.pins)?)
    }

    /// Brings the blocks of the pinned `roots` (their whole DAGs when `recursive`) that only a
    /// tier that is not durable holds back to the local disk, so every pin has a durable
    /// copy. The caller holds the gc lock.
    pub(crate) fn keep_durable(&self, roots: &[Cid], recursive: bool) -> Result<(), Error> {
        let tiers = self.blocks.inner();
        if tiers.names().iter().all(|t| tiers.is_durable(t)) {
            return Ok(());
        }
        let mut volatile_only = Vec::new();
        for root in roots {
            let cids = if recursive {
                self.dag_blocks(root, true)?
            } else {
                vec![*root]
            };
            for cid in cids {
                let held = tiers.locate(&cid)?;
                if !held.is_empty() && held.iter().all(|t| !tiers.is_durable(t)) {
                    volatile_only.push(cid);
                }
            }
        }
        if !volatile_only.is_empty() {
            tiers.migrate(&volatile_only, ipfs_kit_tiered::LOCAL, &mut |_| {})?;
        }
        Ok(())
    }

    /// One demotion pass: when the local disk holds more block bytes than
    /// `tiering.high_watermark` of `tiering.local_capacity`, moves its coldest blocks (pinned
    /// ones too, unless `tiering.pins_stay_local`) to the first colder tier until it is under
    /// `tiering.low_watermark`. Does nothing without a capacity or a colder tier. Holds off
    /// garbage collection while it runs.
    ///
    /// Then, when `object_storage.capacity` is set and the bucket holds more than its
    /// `high_watermark` of it, deletes the coldest blocks in the bucket that nothing keeps (no
    /// pin reaches them, nor the MFS root) until it is under its `low_watermark`: content the
    /// network can serve again. Pinned content is never deleted; a bucket full of it stays
    /// over its watermark, with a warning.
    pub fn storage_rebalance(
        &self,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Rebalanced, Error> {
        let mut done = self.demote_local(progress)?;
        (done.evicted, done.evicted_bytes) = self.evict_cold_objects()?;
        Ok(done)
    }

    /// The object storage tier's pass of [`Repo::storage_rebalance`]: (blocks, bytes) deleted.
    fn evict_cold_objects(&self) -> Result<(u64, u64), Error> {
        let config = self.config();
        let os = &config.object_storage;
        let capacity = os.capacity_bytes()? as f64;
        let tiers = self.blocks.inner();
        let Some(name) = tiers.names().get(1).map(|t| t.to_string()) else {
            return Ok((0, 0));
        };
        if capacity == 0.0 {
            return Ok((0, 0));
        }
        let store = tiers.tier(&name)?;
        let before = store.stats()?.block_bytes;
        if (before as f64) <= os.high_watermark * capacity {
            return Ok((0, 0));
        }
        // As garbage collection: nothing may pin new content between the mark and the sweep.
        let _gc = self.gc_lock.write();
        let roots: Vec<Cid> = self.stored_mfs_root()?.into_iter().collect();
        let keep = ipfs_kit_pin::reachable_keeping(&self.blocks, &self.pins, &roots)?;
        let now = ipfs_kit_tiered::heat::now();
        let mut candidates: Vec<(f64, Cid)> = store
            .list()?
            .into_iter()
            .filter_map(|cid| {
                let mh = cid.hash().to_bytes();
                (!keep.contains(&mh)).then(|| (tiers.heat().get(&mh, now), cid))
            })
            .collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        let goal = os.low_watermark * capacity;
        let (mut left, mut chosen, mut bytes) = (before as f64, Vec::new(), 0);
        for (_, cid) in candidates {
            if left <= goal {
                break;
            }
            let size = store.size(&cid)?.unwrap_or(0);
            left -= size as f64;
            bytes += size;
            chosen.push(cid);
        }
        if left > os.high_watermark * capacity {
            tracing::warn!(
                "the {name} tier holds more than object_storage.high_watermark of its capacity \
                 in content that is pinned or in MFS: nothing more can leave it"
            );
        }
        let evicted = tiers.evict(&name, &chosen)?;
        Ok((evicted, bytes))
    }

    /// The local disk's pass of [`Repo::storage_rebalance`].
    fn demote_local(&self, progress: &mut dyn FnMut(Progress)) -> Result<Rebalanced, Error> {
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
        // Pinned blocks stay when asked to, and when the colder tier is not durable (moving
        // them would free nothing: their local copies stay).
        let pinned = if policy.pins_stay_local {
            ipfs_kit_pin::reachable(&self.blocks, &self.pins)?
        } else {
            self.kept_local(&to)?
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
