//! Pins, garbage collection and DAG verification, with Kubo's semantics.
//!
//! A recursive pin keeps a whole DAG; a direct pin keeps one block; a block reachable from a
//! recursive pin (other than its root) is pinned indirectly. [`gc`] removes every block no pin
//! reaches and never one a pin reaches. Pins live in a redb table, so a pin is durable when
//! [`Pinset::add`] returns.
//!
//! ```
//! use ipfs_kit_block::{codec, Block, HashAlg};
//! use ipfs_kit_blockstore::{Blockstore, MemBlockstore};
//! use ipfs_kit_pin::{gc, PinMode, Pinset};
//! let dir = tempfile::tempdir().unwrap();
//! let db = std::sync::Arc::new(redb::Database::create(dir.path().join("meta.redb")).unwrap());
//! let pins = Pinset::open(db).unwrap();
//! let store = MemBlockstore::default();
//! let kept = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"kept".to_vec());
//! let lost = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"lost".to_vec());
//! store.put_many(vec![kept.clone(), lost.clone()]).unwrap();
//! pins.add(&store, &[*kept.cid()], PinMode::Recursive).unwrap();
//! let removed = gc(&store, &pins).unwrap();
//! assert_eq!(removed, vec![*lost.cid()]);
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use ipfs_kit_block::{codec, ipld, verify_multihash, Cid, IDENTITY};
use ipfs_kit_blockstore::Blockstore;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const PINS: TableDefinition<&[u8], u8> = TableDefinition::new("pins");

/// How a CID is pinned, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PinMode {
    /// The whole DAG under the CID.
    Recursive,
    /// Only the block itself.
    Direct,
}

/// How a CID is pinned, as reported (indirect pins are derived, never stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PinType {
    /// Root of a recursive pin.
    Recursive,
    /// A direct pin.
    Direct,
    /// Reachable from a recursive pin.
    Indirect,
}

impl PinType {
    /// The types a `pin ls --type` value selects: `all`, `recursive`, `direct` or `indirect`.
    pub fn selection(name: &str) -> Option<Vec<PinType>> {
        Some(match name {
            "all" => vec![PinType::Recursive, PinType::Direct, PinType::Indirect],
            "recursive" => vec![PinType::Recursive],
            "direct" => vec![PinType::Direct],
            "indirect" => vec![PinType::Indirect],
            _ => return None,
        })
    }

    /// Kubo's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            PinType::Recursive => "recursive",
            PinType::Direct => "direct",
            PinType::Indirect => "indirect",
        }
    }
}

impl PinMode {
    fn to_u8(self) -> u8 {
        match self {
            PinMode::Recursive => 1,
            PinMode::Direct => 2,
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(PinMode::Recursive),
            2 => Some(PinMode::Direct),
            _ => None,
        }
    }
}

/// Errors of pinning, GC and verification.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The block store failed.
    #[error(transparent)]
    Store(#[from] ipfs_kit_blockstore::Error),
    /// The pin database failed.
    #[error("pin database: {0}")]
    Db(String),
    /// A block needed by a pin is not in the repo.
    #[error("block {missing} (needed by {root}) is not in the repo")]
    Missing {
        /// The pin root.
        root: Cid,
        /// The missing block.
        missing: Cid,
    },
    /// A block that does not decode with its codec.
    #[error("block {0} does not decode: {1}")]
    Decode(Cid, #[source] ipfs_kit_block::Error),
    /// Removing something that is not pinned that way.
    #[error("{0} is not pinned")]
    NotPinned(Cid),
    /// Removing a recursive pin without asking for it.
    #[error("{0} is pinned recursively")]
    PinnedRecursively(Cid),
    /// Adding a direct pin on a recursive one.
    #[error("{0} is already pinned recursively")]
    AlreadyRecursive(Cid),
    /// Removing an indirectly pinned CID.
    #[error("{0} is pinned indirectly under {1}")]
    PinnedIndirectly(Cid, Cid),
}

fn db_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Db(e.to_string())
}

fn mh_key(cid: &Cid) -> Vec<u8> {
    cid.hash().to_bytes()
}

/// Visits every block of the DAG under `root` once (by multihash), calling `visit` with each
/// CID and its links. Identity-hashed blocks are decoded from the CID itself. Fails on the first
/// block that is missing or undecodable. Raw blocks have no links, so they are only looked up,
/// not read: a walk of a file DAG reads its few interior nodes, not its data (which, in a colder
/// tier, would be downloaded, and on disk read and re-hashed).
pub fn walk_dag(
    store: &dyn Blockstore,
    root: &Cid,
    seen: &mut HashSet<Vec<u8>>,
    visit: &mut dyn FnMut(&Cid),
) -> Result<(), Error> {
    let mut stack = vec![*root];
    while let Some(cid) = stack.pop() {
        if !seen.insert(mh_key(&cid)) {
            continue;
        }
        visit(&cid);
        if cid.codec() == codec::RAW && cid.hash().code() != IDENTITY {
            if !store.has(&cid)? {
                return Err(Error::Missing {
                    root: *root,
                    missing: cid,
                });
            }
            continue;
        }
        let data = if cid.hash().code() == IDENTITY {
            ipfs_kit_block::Bytes::copy_from_slice(cid.hash().digest())
        } else {
            store.peek(&cid)?.ok_or(Error::Missing {
                root: *root,
                missing: cid,
            })?
        };
        let links = ipld::links(cid.codec(), &data).map_err(|e| Error::Decode(cid, e))?;
        stack.extend(links.into_iter().rev());
    }
    Ok(())
}

/// The stored pins.
pub struct Pinset {
    db: Arc<Database>,
}

impl Pinset {
    /// Opens the pin table in `db` (shared with other metadata of the repo).
    pub fn open(db: Arc<Database>) -> Result<Self, Error> {
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(PINS).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(Pinset { db })
    }

    /// All stored pins, by CID.
    pub fn stored(&self) -> Result<BTreeMap<Cid, PinMode>, Error> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(PINS).map_err(db_err)?;
        let mut out = BTreeMap::new();
        for r in t.iter().map_err(db_err)? {
            let (k, v) = r.map_err(db_err)?;
            let cid = Cid::try_from(k.value()).map_err(db_err)?;
            let mode =
                PinMode::from_u8(v.value()).ok_or_else(|| Error::Db("bad pin mode".into()))?;
            out.insert(cid, mode);
        }
        Ok(out)
    }

    fn mode_of(&self, cid: &Cid) -> Result<Option<PinMode>, Error> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = tx.open_table(PINS).map_err(db_err)?;
        let v = t.get(cid.to_bytes().as_slice()).map_err(db_err)?;
        Ok(v.and_then(|v| PinMode::from_u8(v.value())))
    }

    /// Pins `cids`. A recursive pin requires the whole DAG to be in `store`; a direct pin, the
    /// block. Nothing is pinned unless every CID can be. A recursive pin replaces a direct one.
    pub fn add(&self, store: &dyn Blockstore, cids: &[Cid], mode: PinMode) -> Result<(), Error> {
        for cid in cids {
            match mode {
                PinMode::Recursive => walk_dag(store, cid, &mut HashSet::new(), &mut |_| {})?,
                PinMode::Direct => {
                    if self.mode_of(cid)? == Some(PinMode::Recursive) {
                        return Err(Error::AlreadyRecursive(*cid));
                    }
                    if cid.hash().code() != IDENTITY && !store.has(cid)? {
                        return Err(Error::Missing {
                            root: *cid,
                            missing: *cid,
                        });
                    }
                }
            }
        }
        self.insert(cids, mode)
    }

    /// Records recursive pins on DAGs the caller has just written whole (an import holding the
    /// GC lock), skipping the completeness walk [`Pinset::add`] does: that walk would read and
    /// re-hash every block the import has only just hashed and stored.
    pub fn add_complete(&self, cids: &[Cid]) -> Result<(), Error> {
        self.insert(cids, PinMode::Recursive)
    }

    fn insert(&self, cids: &[Cid], mode: PinMode) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(PINS).map_err(db_err)?;
            for cid in cids {
                t.insert(cid.to_bytes().as_slice(), mode.to_u8())
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Unpins `cids`. With `recursive` false, a recursive pin is refused (as in Kubo). Nothing is
    /// removed unless every CID can be.
    pub fn rm(&self, store: &dyn Blockstore, cids: &[Cid], recursive: bool) -> Result<(), Error> {
        for cid in cids {
            match self.mode_of(cid)? {
                Some(PinMode::Recursive) if !recursive => {
                    return Err(Error::PinnedRecursively(*cid))
                }
                Some(_) => {}
                None => {
                    if let Some(parent) = self.indirect_parent(store, cid)? {
                        return Err(Error::PinnedIndirectly(*cid, parent));
                    }
                    return Err(Error::NotPinned(*cid));
                }
            }
        }
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(PINS).map_err(db_err)?;
            for cid in cids {
                t.remove(cid.to_bytes().as_slice()).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    fn indirect_parent(&self, store: &dyn Blockstore, cid: &Cid) -> Result<Option<Cid>, Error> {
        let key = mh_key(cid);
        for (root, mode) in self.stored()? {
            if mode != PinMode::Recursive {
                continue;
            }
            let mut seen = HashSet::new();
            // A partial DAG still tells what it reaches, so a walk error is no answer here.
            let _ = walk_dag(store, &root, &mut seen, &mut |_| {});
            if seen.contains(&key) && mh_key(&root) != key {
                return Ok(Some(root));
            }
        }
        Ok(None)
    }

    /// Every pin of the requested types: stored ones, and indirect ones derived by walking the
    /// recursive pins (only when `PinType::Indirect` is asked for).
    pub fn list(
        &self,
        store: &dyn Blockstore,
        types: &[PinType],
    ) -> Result<Vec<(Cid, PinType)>, Error> {
        let stored = self.stored()?;
        let mut out = Vec::new();
        for (cid, mode) in &stored {
            let t = match mode {
                PinMode::Recursive => PinType::Recursive,
                PinMode::Direct => PinType::Direct,
            };
            if types.contains(&t) {
                out.push((*cid, t));
            }
        }
        if types.contains(&PinType::Indirect) {
            // Recursive roots are walked in their own turn, so other walks may stop at them;
            // direct pins are not walked, so walks must pass through them.
            let mut seen: HashSet<Vec<u8>> = stored
                .iter()
                .filter(|(_, m)| **m == PinMode::Recursive)
                .map(|(c, _)| mh_key(c))
                .collect();
            for (root, mode) in &stored {
                if *mode != PinMode::Recursive {
                    continue;
                }
                seen.remove(&mh_key(root));
                walk_dag(store, root, &mut seen, &mut |c| {
                    if c != root && !stored.contains_key(c) {
                        out.push((*c, PinType::Indirect));
                    }
                })?;
            }
        }
        Ok(out)
    }

    /// How `cid` is pinned, among `types` only: a block pinned directly and also reached by a
    /// recursive pin is both, and asking for indirect pins finds it (as Kubo does).
    pub fn status_among(
        &self,
        store: &dyn Blockstore,
        cid: &Cid,
        types: &[PinType],
    ) -> Result<Option<PinType>, Error> {
        match self.status(store, cid)? {
            Some(t) if types.contains(&t) => Ok(Some(t)),
            Some(PinType::Direct) if types.contains(&PinType::Indirect) => {
                Ok(self.indirect_parent(store, cid)?.map(|_| PinType::Indirect))
            }
            _ => Ok(None),
        }
    }

    /// How `cid` is pinned, if at all.
    pub fn status(&self, store: &dyn Blockstore, cid: &Cid) -> Result<Option<PinType>, Error> {
        Ok(match self.mode_of(cid)? {
            Some(PinMode::Recursive) => Some(PinType::Recursive),
            Some(PinMode::Direct) => Some(PinType::Direct),
            None => self.indirect_parent(store, cid)?.map(|_| PinType::Indirect),
        })
    }
}

/// Result of verifying one recursive pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinCheck {
    /// The pin root.
    pub root: Cid,
    /// Blocks that are missing or do not match their hash.
    pub bad: Vec<(Cid, String)>,
}

/// Checks that every pinned DAG is complete and every block in it hashes to its CID.
pub fn verify_pins(store: &dyn Blockstore, pins: &Pinset) -> Result<Vec<PinCheck>, Error> {
    let mut out = Vec::new();
    for (root, mode) in pins.stored()? {
        let mut bad = Vec::new();
        let mut stack = vec![root];
        let mut seen = HashSet::new();
        while let Some(cid) = stack.pop() {
            if !seen.insert(mh_key(&cid)) || cid.hash().code() == IDENTITY {
                continue;
            }
            let data = match store.peek(&cid) {
                Ok(Some(d)) => d,
                Ok(None) => {
                    bad.push((cid, "missing".to_string()));
                    continue;
                }
                Err(e) => {
                    bad.push((cid, e.to_string()));
                    continue;
                }
            };
            if let Err(e) = verify_multihash(cid.hash(), &data) {
                bad.push((cid, e.to_string()));
                continue;
            }
            if mode == PinMode::Recursive {
                match ipld::links(cid.codec(), &data) {
                    Ok(links) => stack.extend(links),
                    Err(e) => bad.push((cid, e.to_string())),
                }
            }
        }
        out.push(PinCheck { root, bad });
    }
    Ok(out)
}

/// The multihashes every pin reaches: the GC mark set.
pub fn reachable(store: &dyn Blockstore, pins: &Pinset) -> Result<HashSet<Vec<u8>>, Error> {
    let mut seen = HashSet::new();
    for (root, mode) in pins.stored()? {
        match mode {
            PinMode::Direct => {
                seen.insert(mh_key(&root));
            }
            PinMode::Recursive => match walk_dag(store, &root, &mut seen, &mut |_| {}) {
                // A block missing below a pin cannot be deleted anyway; keep marking the rest.
                Ok(()) | Err(Error::Missing { .. }) => {}
                Err(e) => return Err(e),
            },
        }
    }
    Ok(seen)
}

/// Removes every block that no pin reaches; returns the removed CIDs.
///
/// The caller must keep writers that will pin their blocks (an `add` in progress) from running
/// between the mark and the sweep: the node holds its GC lock exclusively around this call.
pub fn gc(store: &dyn Blockstore, pins: &Pinset) -> Result<Vec<Cid>, Error> {
    gc_keeping(store, pins, &[])
}

/// [`reachable`], and every block reachable from `roots`, best effort (blocks missing below
/// them are skipped): what garbage collection keeps.
pub fn reachable_keeping(
    store: &dyn Blockstore,
    pins: &Pinset,
    roots: &[Cid],
) -> Result<HashSet<Vec<u8>>, Error> {
    let mut keep = reachable(store, pins)?;
    for root in roots {
        match walk_dag(store, root, &mut keep, &mut |_| {}) {
            Ok(()) | Err(Error::Missing { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(keep)
}

/// [`gc`] that also keeps every block reachable from `roots`, best effort (blocks missing below
/// them are skipped), as Kubo keeps its MFS root.
pub fn gc_keeping(store: &dyn Blockstore, pins: &Pinset, roots: &[Cid]) -> Result<Vec<Cid>, Error> {
    let keep = reachable_keeping(store, pins, roots)?;
    let doomed: Vec<Cid> = store
        .list()?
        .into_iter()
        .filter(|c| !keep.contains(&mh_key(c)))
        .collect();
    for chunk in doomed.chunks(4096) {
        store.delete_many(chunk)?;
    }
    Ok(doomed)
}
