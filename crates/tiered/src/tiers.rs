//! The local store with colder tiers behind it: reads try the local tier, then each colder one
//! in order; writes go to the local tier; [`TieredBlockstore::migrate`] moves blocks between
//! tiers without a moment where a block has no verified copy.

use std::collections::HashSet;
use std::time::Instant;

use ipfs_kit_block::{Bytes, Cid};
use ipfs_kit_blockstore::{Blockstore, Error, StoreStats, WriteBatch};

use crate::counters::{TierCounters, TierFigures};
use crate::heat::{self, Heat};

/// The name of the first tier, the one writes go to.
pub const LOCAL: &str = "local";
/// A block is promoted once its heat is within 0.1% of `promote_at`: `n` reads in quick
/// succession have decayed a little by the last (3 reads over a few seconds, at a 24 h
/// half-life, make 2.99997), and should count as `n`.
const PROMOTE_SLACK: f64 = 0.999;
/// Bytes of blocks copied per batch while migrating.
const MIGRATE_BATCH_BYTES: usize = 32 << 20;

/// A colder tier: its name (`s3`) and its store, which must verify what it reads back (as
/// [`crate::ObjectBlockstore`] does).
struct Tier {
    name: String,
    store: Box<dyn Blockstore>,
    counters: TierCounters,
    /// Whether what it holds stays until deleted (see [`TieredBlockstore::is_durable`]).
    durable: bool,
}

/// Reads `cid` from `store`, counting the read in `counters`.
fn counted_get(
    store: &dyn Blockstore,
    counters: &TierCounters,
    cid: &Cid,
) -> Result<Option<Bytes>, Error> {
    let start = Instant::now();
    let got = store.get(cid);
    let outcome = match &got {
        Ok(data) => Ok(data.as_ref().map(Bytes::len)),
        Err(_) => Err(()),
    };
    counters.read(start.elapsed(), outcome);
    got
}

/// A tier that could not be set up (its client refused the config): every call fails with
/// why, naming the tier, so the rest of the repo keeps working and whatever needs the tier says
/// what is wrong.
pub struct Unavailable {
    name: String,
    why: String,
}

impl Unavailable {
    /// Tier `name`, unusable because of `why`.
    pub fn new(name: impl Into<String>, why: impl Into<String>) -> Self {
        Unavailable {
            name: name.into(),
            why: why.into(),
        }
    }

    fn fail<T>(&self) -> Result<T, Error> {
        Err(Error::Tier {
            tier: self.name.clone(),
            message: self.why.clone(),
        })
    }
}

impl Blockstore for Unavailable {
    fn get(&self, _: &Cid) -> Result<Option<Bytes>, Error> {
        self.fail()
    }
    fn has(&self, _: &Cid) -> Result<bool, Error> {
        self.fail()
    }
    fn size(&self, _: &Cid) -> Result<Option<u64>, Error> {
        self.fail()
    }
    fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, Error> {
        self.fail()
    }
    fn delete_many(&self, _: &[Cid]) -> Result<u64, Error> {
        self.fail()
    }
    fn list(&self) -> Result<Vec<Cid>, Error> {
        self.fail()
    }
    fn stats(&self) -> Result<StoreStats, Error> {
        self.fail()
    }
}

/// What [`TieredBlockstore::migrate`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Blocks copied into the target tier.
    pub copied: u64,
    /// Bytes copied into the target tier.
    pub bytes: u64,
    /// Blocks already in the target tier.
    pub already: u64,
    /// Copies removed from other tiers.
    pub removed: u64,
}

/// Where a migration is, reported as it goes (for progress bars, and for crash tests to kill
/// it at a chosen step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `done` of `total` blocks copied into the target so far, `bytes` of them.
    Copied {
        /// Blocks copied.
        done: u64,
        /// Blocks to copy.
        total: u64,
        /// Bytes copied.
        bytes: u64,
    },
    /// Every copy read back from the target and re-hashed.
    Verified {
        /// Blocks verified.
        blocks: u64,
    },
    /// The other copies deleted from tier `tier`.
    Removed {
        /// The tier.
        tier: String,
        /// Blocks it held.
        blocks: u64,
    },
}

/// The local tier `L` and colder tiers behind it.
pub struct TieredBlockstore<L> {
    local: L,
    local_counters: TierCounters,
    lower: Vec<Tier>,
    /// Every read's access, here or in a cache in front ([`Blockstore::touch`]).
    heat: Heat,
    /// Heat at which a block read from a colder tier moves to the local one; 0: never.
    promote_at: f64,
    /// Held by every move, so a migration and a promotion never move the same block in
    /// opposite directions at once (each would delete the copy the other just made).
    moving: parking_lot::Mutex<()>,
}

impl<L: Blockstore> TieredBlockstore<L> {
    /// The local tier alone.
    pub fn new(local: L) -> Self {
        TieredBlockstore {
            local,
            local_counters: TierCounters::default(),
            lower: Vec::new(),
            heat: Heat::default(),
            promote_at: 0.0,
            moving: parking_lot::Mutex::new(()),
        }
    }

    /// Tracks heat with `heat` (its half-life and capacity) instead of the defaults.
    pub fn with_heat(mut self, heat: Heat) -> Self {
        self.heat = heat;
        self
    }

    /// Moves a block read from a colder tier to the local one once its heat reaches
    /// `promote_at` (0: never, the default).
    pub fn with_promotion(mut self, promote_at: f64) -> Self {
        self.promote_at = promote_at;
        self
    }

    /// How hot blocks are.
    pub fn heat(&self) -> &Heat {
        &self.heat
    }

    /// Copies a block a colder tier returned (verified) to the local tier, then deletes it
    /// from the colder ones: the same order as [`TieredBlockstore::migrate`], for one block.
    /// Skipped while a migration runs (promotion is opportunistic; the read is served anyway).
    fn promote(&self, cid: &Cid, data: &Bytes) -> Result<(), Error> {
        let Some(_moving) = self.moving.try_lock() else {
            return Ok(());
        };
        self.local
            .put_many(vec![ipfs_kit_block::Block::new_unchecked(
                *cid,
                data.clone(),
            )])?;
        if self.local.get(cid)?.is_none() {
            return Err(Error::Tier {
                tier: LOCAL.into(),
                message: format!("block {cid} is missing after its promotion"),
            });
        }
        self.local_counters.moved_in(1, data.len() as u64);
        for t in &self.lower {
            let n = t.store.delete_many(&[*cid])?;
            t.counters.moved_out(n);
        }
        Ok(())
    }

    /// Adds a durable colder tier, tried after those before it.
    pub fn with_tier(self, name: impl Into<String>, store: impl Blockstore + 'static) -> Self {
        self.with_tier_durability(name, store, true)
    }

    /// Adds a colder tier, tried after those before it, durable or not: a tier that is not
    /// may lose blocks by itself (a bucket whose lifecycle rule expires objects), so the
    /// caller keeps another copy of what must not be lost (see
    /// [`TieredBlockstore::migrate_keeping`]).
    pub fn with_tier_durability(
        mut self,
        name: impl Into<String>,
        store: impl Blockstore + 'static,
        durable: bool,
    ) -> Self {
        self.lower.push(Tier {
            name: name.into(),
            store: Box::new(store),
            counters: TierCounters::default(),
            durable,
        });
        self
    }

    /// Whether tier `name` keeps what it holds until it is deleted (the local tier does; a
    /// colder tier unless added as not durable; an unknown tier does not).
    pub fn is_durable(&self, name: &str) -> bool {
        name == LOCAL || self.lower.iter().any(|t| t.name == name && t.durable)
    }

    /// The local tier.
    pub fn local(&self) -> &L {
        &self.local
    }

    /// Every tier's name, the local one first.
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(LOCAL)
            .chain(self.lower.iter().map(|t| t.name.as_str()))
            .collect()
    }

    /// Every tier, the local one first.
    fn all(&self) -> impl Iterator<Item = (&str, &dyn Blockstore)> {
        self.all_counted().map(|(name, store, _)| (name, store))
    }

    /// Every tier with its counters, the local one first.
    fn all_counted(&self) -> impl Iterator<Item = (&str, &dyn Blockstore, &TierCounters)> {
        std::iter::once((LOCAL, &self.local as &dyn Blockstore, &self.local_counters)).chain(
            self.lower
                .iter()
                .map(|t| (t.name.as_str(), t.store.as_ref(), &t.counters)),
        )
    }

    fn counters(&self, name: &str) -> Option<&TierCounters> {
        self.all_counted()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, c)| c)
    }

    /// Tier `name`'s reads, latencies and moves since this store was opened.
    pub fn tier_figures(&self, name: &str) -> Result<TierFigures, Error> {
        self.tier(name)?;
        Ok(self
            .counters(name)
            .map(TierCounters::figures)
            .unwrap_or_default())
    }

    /// Deletes `cids` from tier `name` alone (what a full tier gives up: the caller checks
    /// that they are kept elsewhere or need not be); how many it held. Counted as moved out.
    pub fn evict(&self, name: &str, cids: &[Cid]) -> Result<u64, Error> {
        let store = self.tier(name)?;
        let _moving = self.moving.lock();
        let n = store.delete_many(cids)?;
        if let Some(c) = self.counters(name) {
            c.moved_out(n);
        }
        Ok(n)
    }

    /// Fails, naming the tiers there are, unless there is a tier `name`.
    pub fn check_tier(&self, name: &str) -> Result<(), Error> {
        self.tier(name).map(|_| ())
    }

    /// Tier `name` itself (its own reads are not counted in its figures).
    pub fn tier(&self, name: &str) -> Result<&dyn Blockstore, Error> {
        self.all()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::Tier {
                tier: name.to_string(),
                message: format!("no such tier (the tiers are {})", self.names().join(", ")),
            })
    }

    /// The figures of tier `name`.
    pub fn tier_stats(&self, name: &str) -> Result<StoreStats, Error> {
        self.tier(name)?.stats()
    }

    /// The tiers holding `cid`, in tier order.
    pub fn locate(&self, cid: &Cid) -> Result<Vec<&str>, Error> {
        let mut found = Vec::new();
        for (name, store) in self.all() {
            if store.has(cid)? {
                found.push(name);
            }
        }
        Ok(found)
    }

    /// Moves `cids` into tier `to`. Each block not there yet is read from the first tier that
    /// has it (verified), written to `to` in batches, and read back from `to` and re-hashed;
    /// only then are the other tiers' copies deleted. A crash or an error at any step leaves
    /// every block in at least one tier, whole and verified: at worst in two. Migrations run
    /// one at a time, and no block is promoted while one runs. `progress` hears each step as
    /// it completes.
    pub fn migrate(
        &self,
        cids: &[Cid],
        to: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Moved, Error> {
        self.migrate_keeping(cids, to, &|_| false, progress)
    }

    /// [`TieredBlockstore::migrate`], except that the blocks `keep` picks are copied to `to`
    /// but keep their other copies: what must stay in a durable tier while also being in a
    /// tier that is not.
    pub fn migrate_keeping(
        &self,
        cids: &[Cid],
        to: &str,
        keep: &dyn Fn(&Cid) -> bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Moved, Error> {
        let target = self.tier(to)?;
        let _moving = self.moving.lock();
        let mut moved = Moved::default();
        let mut seen = HashSet::new();
        let mut todo: Vec<Cid> = Vec::new();
        for cid in cids {
            if !seen.insert(*cid.hash()) {
                continue;
            }
            if target.has(cid)? {
                moved.already += 1;
            } else {
                todo.push(*cid);
            }
        }
        // Copy, in batches of bounded size.
        let mut batch: Vec<ipfs_kit_block::Block> = Vec::new();
        let mut batch_bytes = 0;
        let total = todo.len() as u64;
        let mut flush = |batch: &mut Vec<ipfs_kit_block::Block>, moved: &mut Moved| {
            if batch.is_empty() {
                return Ok(());
            }
            let bytes = batch.iter().map(|b| b.data().len() as u64).sum::<u64>();
            let n = batch.len() as u64;
            target.put_many(std::mem::take(batch))?;
            if let Some(c) = self.counters(to) {
                c.moved_in(n, bytes);
            }
            moved.copied += n;
            moved.bytes += bytes;
            progress(Progress::Copied {
                done: moved.copied,
                total,
                bytes: moved.bytes,
            });
            Ok::<(), Error>(())
        };
        for cid in &todo {
            let data = self
                .all()
                .filter(|(n, _)| *n != to)
                .find_map(|(_, s)| s.get(cid).transpose())
                .transpose()?
                .ok_or_else(|| Error::Tier {
                    tier: to.to_string(),
                    message: format!("block {cid} is in no tier"),
                })?;
            batch_bytes += data.len();
            batch.push(ipfs_kit_block::Block::new_unchecked(*cid, data));
            if batch_bytes >= MIGRATE_BATCH_BYTES {
                flush(&mut batch, &mut moved)?;
                batch_bytes = 0;
            }
        }
        flush(&mut batch, &mut moved)?;
        // Verify every copy (the target re-hashes what it reads back), then delete the others.
        for cid in &todo {
            if target.get(cid)?.is_none() {
                return Err(Error::Tier {
                    tier: to.to_string(),
                    message: format!("block {cid} is missing after its copy"),
                });
            }
        }
        progress(Progress::Verified { blocks: total });
        let all: Vec<Cid> = seen_cids(cids).into_iter().filter(|c| !keep(c)).collect();
        for (name, store, counters) in self.all_counted() {
            if name != to {
                let n = store.delete_many(&all)?;
                counters.moved_out(n);
                moved.removed += n;
                progress(Progress::Removed {
                    tier: name.to_string(),
                    blocks: n,
                });
            }
        }
        Ok(moved)
    }
}

/// `cids` with repeated multihashes dropped.
fn seen_cids(cids: &[Cid]) -> Vec<Cid> {
    let mut seen = HashSet::new();
    cids.iter()
        .filter(|c| seen.insert(*c.hash()))
        .copied()
        .collect()
}

impl<L: Blockstore> Blockstore for TieredBlockstore<L> {
    /// Counts the access; a block found only in a colder tier that has become hot enough
    /// moves to the local one (a failed move is logged: the read still succeeds).
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        let heat = self.heat.record(&cid.hash().to_bytes(), heat::now());
        if let Some(data) = counted_get(&self.local, &self.local_counters, cid)? {
            return Ok(Some(data));
        }
        for t in &self.lower {
            if let Some(data) = counted_get(t.store.as_ref(), &t.counters, cid)? {
                if self.promote_at > 0.0 && heat >= self.promote_at * PROMOTE_SLACK {
                    if let Err(e) = self.promote(cid, &data) {
                        tracing::warn!("promoting {cid} from the {} tier: {e}", t.name);
                    }
                }
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// From the first tier that has it, without counting an access or moving it.
    fn peek(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        for (_, store) in self.all() {
            if let Some(data) = store.peek(cid)? {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    fn touch(&self, cid: &Cid) {
        self.heat.record(&cid.hash().to_bytes(), heat::now());
    }

    /// Passes the blocks the local tier does not hold to the colder tiers.
    fn prefetch(&self, cids: &[Cid]) {
        if self.lower.is_empty() {
            return;
        }
        let missing: Vec<Cid> = cids
            .iter()
            .filter(|c| !matches!(self.local.has(c), Ok(true)))
            .copied()
            .collect();
        if missing.is_empty() {
            return;
        }
        for t in &self.lower {
            t.store.prefetch(&missing);
        }
    }

    fn has(&self, cid: &Cid) -> Result<bool, Error> {
        for (_, store) in self.all() {
            if store.has(cid)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn size(&self, cid: &Cid) -> Result<Option<u64>, Error> {
        for (_, store) in self.all() {
            if let Some(size) = store.size(cid)? {
                return Ok(Some(size));
            }
        }
        Ok(None)
    }

    fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, Error> {
        self.local.begin()
    }

    /// Deletes from every tier; counts each block present anywhere once.
    fn delete_many(&self, cids: &[Cid]) -> Result<u64, Error> {
        let cids = seen_cids(cids);
        let mut present = 0;
        for cid in &cids {
            if self.has(cid)? {
                present += 1;
            }
        }
        for (_, store) in self.all() {
            store.delete_many(&cids)?;
        }
        Ok(present)
    }

    /// Every tier's blocks, each once (the CID of the first tier listing it).
    fn list(&self) -> Result<Vec<Cid>, Error> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (_, store) in self.all() {
            for cid in store.list()? {
                if seen.insert(*cid.hash()) {
                    out.push(cid);
                }
            }
        }
        Ok(out)
    }

    /// Blocks counted once across tiers; block bytes summed over the tiers (a block caught
    /// mid-migration in two counts twice); disk bytes of the local tier only, the one on this
    /// machine's disk. A colder tier that cannot be reached is left out, with a warning: the
    /// figures are then the reachable tiers', and the repo's own stay available.
    fn stats(&self) -> Result<StoreStats, Error> {
        let local = self.local.stats()?;
        if self.lower.is_empty() {
            return Ok(local);
        }
        let mut block_bytes = local.block_bytes;
        let mut seen: HashSet<_> = self.local.list()?.iter().map(|c| *c.hash()).collect();
        for t in &self.lower {
            match t.store.list().and_then(|l| Ok((l, t.store.stats()?))) {
                Ok((cids, stats)) => {
                    block_bytes += stats.block_bytes;
                    seen.extend(cids.iter().map(|c| *c.hash()));
                }
                Err(e) => tracing::warn!("storage figures leave out the {} tier: {e}", t.name),
            }
        }
        Ok(StoreStats {
            blocks: seen.len() as u64,
            block_bytes,
            disk_bytes: local.disk_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipfs_kit_block::{codec, Block, HashAlg};
    use ipfs_kit_blockstore::{conformance, MemBlockstore};

    fn two_tiers() -> TieredBlockstore<MemBlockstore> {
        TieredBlockstore::new(MemBlockstore::default()).with_tier("cold", MemBlockstore::default())
    }

    #[test]
    fn conformance_with_a_colder_tier() {
        conformance::run(&two_tiers());
    }

    #[test]
    fn blocks_move_down_and_back_and_stay_readable() {
        let t = two_tiers();
        let blocks: Vec<Block> = (0..50u32)
            .map(|i| Block::encode(codec::RAW, HashAlg::Sha2_256, 1, i.to_le_bytes().to_vec()))
            .collect();
        t.put_many(blocks.clone()).unwrap();
        let cids: Vec<Cid> = blocks.iter().map(|b| *b.cid()).collect();
        let mut steps = Vec::new();
        let moved = t.migrate(&cids, "cold", &mut |p| steps.push(p)).unwrap();
        assert_eq!(
            steps,
            vec![
                Progress::Copied {
                    done: 50,
                    total: 50,
                    bytes: 200
                },
                Progress::Verified { blocks: 50 },
                Progress::Removed {
                    tier: LOCAL.into(),
                    blocks: 50
                },
            ]
        );
        assert_eq!((moved.copied, moved.already, moved.removed), (50, 0, 50));
        for b in &blocks {
            assert_eq!(t.locate(b.cid()).unwrap(), vec!["cold"]);
            assert_eq!(t.get(b.cid()).unwrap().as_ref(), Some(b.data()));
        }
        assert_eq!(t.local().stats().unwrap().blocks, 0);
        assert_eq!(t.stats().unwrap().blocks, 50);
        // Half back up: the rest stay cold.
        let moved = t.migrate(&cids[..25], LOCAL, &mut |_| {}).unwrap();
        assert_eq!(moved.copied, 25);
        assert_eq!(t.locate(&cids[0]).unwrap(), vec![LOCAL]);
        assert_eq!(t.locate(&cids[30]).unwrap(), vec!["cold"]);
        // Again: nothing to copy.
        assert_eq!(
            t.migrate(&cids[..25], LOCAL, &mut |_| {}).unwrap().already,
            25
        );
        assert!(
            t.migrate(&cids, "tape", &mut |_| {}).is_err(),
            "unknown tier"
        );
    }

    #[test]
    fn blocks_kept_by_the_caller_keep_their_other_copies() {
        let t = TieredBlockstore::new(MemBlockstore::default()).with_tier_durability(
            "cache",
            MemBlockstore::default(),
            false,
        );
        assert!(t.is_durable(LOCAL) && !t.is_durable("cache") && !t.is_durable("tape"));
        let (a, b) = (
            Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"pinned".to_vec()),
            Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"loose".to_vec()),
        );
        t.put_many(vec![a.clone(), b.clone()]).unwrap();
        let moved = t
            .migrate_keeping(
                &[*a.cid(), *b.cid()],
                "cache",
                &|c| c == a.cid(),
                &mut |_| {},
            )
            .unwrap();
        assert_eq!((moved.copied, moved.removed), (2, 1));
        assert_eq!(t.locate(a.cid()).unwrap(), vec![LOCAL, "cache"]);
        assert_eq!(t.locate(b.cid()).unwrap(), vec!["cache"]);
    }

    #[test]
    fn each_tier_counts_its_reads_and_moves() {
        let t = two_tiers();
        let b = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, vec![7; 1000]);
        t.put_many(vec![b.clone()]).unwrap();
        t.get(b.cid()).unwrap();
        t.migrate(&[*b.cid()], "cold", &mut |_| {}).unwrap();
        t.get(b.cid()).unwrap();
        t.peek(b.cid()).unwrap();
        let (local, cold) = (
            t.tier_figures(LOCAL).unwrap(),
            t.tier_figures("cold").unwrap(),
        );
        assert_eq!((local.hits, local.misses, local.read_bytes), (1, 1, 1000));
        assert_eq!((cold.hits, cold.misses, cold.read_bytes), (1, 0, 1000));
        assert_eq!((cold.moved_in_blocks, cold.moved_in_bytes), (1, 1000));
        assert_eq!(local.moved_out_blocks, 1);
        assert_eq!(local.reads() + cold.reads(), 3);
        assert!(t.tier_figures("tape").is_err());
    }

    #[test]
    fn a_block_read_often_enough_moves_up() {
        let t = two_tiers().with_promotion(3.0);
        let b = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"warming".to_vec());
        t.put_many(vec![b.clone()]).unwrap();
        t.migrate(&[*b.cid()], "cold", &mut |_| {}).unwrap();
        // The migration's own reads do not count as the block's: only gets and touches do.
        t.get(b.cid()).unwrap();
        t.touch(b.cid());
        assert_eq!(t.locate(b.cid()).unwrap(), vec!["cold"]);
        assert_eq!(t.get(b.cid()).unwrap().as_ref(), Some(b.data()));
        assert_eq!(t.locate(b.cid()).unwrap(), vec![LOCAL]);
        assert!(t.heat().get(&b.cid().hash().to_bytes(), heat::now()) >= 3.0);
    }

    #[test]
    fn a_read_during_a_migration_does_not_promote_what_it_moves() {
        let t = two_tiers().with_promotion(1.0);
        let (a, b) = (
            Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"a".to_vec()),
            Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"b".to_vec()),
        );
        t.put_many(vec![a.clone(), b.clone()]).unwrap();
        t.migrate(&[*a.cid()], "cold", &mut |_| {}).unwrap();
        // Mid-migration (its progress runs under the move lock), a read of `a`, hot enough to
        // promote: were it promoted, the migration's deletes would take the only copy.
        let cids = [*a.cid(), *b.cid()];
        t.migrate(&cids, "cold", &mut |_| {
            assert_eq!(t.get(a.cid()).unwrap().as_ref(), Some(a.data()));
        })
        .unwrap();
        for x in [&a, &b] {
            assert_eq!(t.locate(x.cid()).unwrap(), vec!["cold"]);
        }
    }

    /// A tier that refuses every write: a failed copy deletes nothing.
    struct Full(MemBlockstore);

    impl Blockstore for Full {
        fn get(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
            self.0.get(cid)
        }
        fn has(&self, cid: &Cid) -> Result<bool, Error> {
            self.0.has(cid)
        }
        fn size(&self, cid: &Cid) -> Result<Option<u64>, Error> {
            self.0.size(cid)
        }
        fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, Error> {
            Err(Error::Tier {
                tier: "full".into(),
                message: "no space".into(),
            })
        }
        fn delete_many(&self, cids: &[Cid]) -> Result<u64, Error> {
            self.0.delete_many(cids)
        }
        fn list(&self) -> Result<Vec<Cid>, Error> {
            self.0.list()
        }
        fn stats(&self) -> Result<StoreStats, Error> {
            self.0.stats()
        }
    }

    #[test]
    fn a_failed_copy_keeps_the_original() {
        let t = TieredBlockstore::new(MemBlockstore::default())
            .with_tier("full", Full(MemBlockstore::default()));
        let b = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"keep me".to_vec());
        t.put_many(vec![b.clone()]).unwrap();
        assert!(t.migrate(&[*b.cid()], "full", &mut |_| {}).is_err());
        assert_eq!(t.locate(b.cid()).unwrap(), vec![LOCAL]);
    }
}
