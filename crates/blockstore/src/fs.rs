//! The durable block store: append-only segment files indexed in redb.
//!
//! Layout (see `docs/storage.md`): `DIR/index.redb` maps a multihash to where its bytes live;
//! `DIR/segments/NNNNNNNN.seg` hold records `[cid_len u16 LE][data_len u32 LE][cid][data]`.
//!
//! Invariant: an index entry is committed only after the bytes it points at have been
//! fdatasync'ed. So a crash can leave unindexed bytes at the end of a segment (garbage,
//! reclaimed by compaction) but never an index entry pointing at bytes that are not on disk.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipfs_kit_block::{verify_multihash, Block, Bytes, Cid};
use parking_lot::{Mutex, MutexGuard, RwLock};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::{Blockstore, Error, StoreStats, WriteBatch};

const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// Segment id -> (live bytes, dead bytes).
const SEGMENTS: TableDefinition<u32, (u64, u64)> = TableDefinition::new("segments");
const RECORD_HEADER: u64 = 6;

/// Settings of an [`FsBlockstore`].
#[derive(Clone, Debug)]
pub struct FsConfig {
    /// A segment is closed and a new one started once it reaches this many bytes.
    pub segment_size: u64,
    /// Re-hash every block read and report a mismatch as [`Error::Corrupt`].
    pub verify_reads: bool,
    /// Compaction rewrites a closed segment once this fraction of its bytes is dead.
    pub compact_dead_ratio: f64,
    /// Keep freshly written segment bytes in the OS page cache. Off by default: once synced
    /// they are dropped from it (`POSIX_FADV_DONTNEED`), so the next writes reuse those
    /// pages. A store taking in gigabytes otherwise grows the page cache with bytes it
    /// rarely rereads soon (the daemon has its own block cache), and every new page costs
    /// reclaim elsewhere: on the reference VM writing 256 MiB took 0.6 CPU-s of kernel time
    /// kept, 0.07 dropped, while reading it back cold took 0.05.
    pub cache_writes: bool,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            segment_size: 256 << 20,
            verify_reads: true,
            compact_dead_ratio: 0.5,
            cache_writes: false,
        }
    }
}

impl FsConfig {
    /// Sets the segment size.
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes.max(1);
        self
    }

    /// Sets whether reads are re-verified.
    pub fn with_verify_reads(mut self, verify: bool) -> Self {
        self.verify_reads = verify;
        self
    }
}

struct Location {
    seg: u32,
    offset: u64,
    len: u32,
}

fn encode_location(seg: u32, offset: u64, len: u32, cid: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + cid.len());
    v.extend_from_slice(&seg.to_le_bytes());
    v.extend_from_slice(&offset.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(cid);
    v
}

fn decode_location(v: &[u8]) -> Result<(Location, &[u8]), Error> {
    if v.len() < 16 {
        return Err(Error::Index("truncated index entry".into()));
    }
    let seg = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
    let mut off = [0u8; 8];
    off.copy_from_slice(&v[4..12]);
    let len = u32::from_le_bytes([v[12], v[13], v[14], v[15]]);
    Ok((
        Location {
            seg,
            offset: u64::from_le_bytes(off),
            len,
        },
        &v[16..],
    ))
}

/// Reads `len` bytes at `offset` into a new buffer. The bytes go straight into the buffer's
/// spare capacity: a `vec![0; len]` would first zero what the read then overwrites, a few
/// percent of a cached read's time.
fn read_exact_at(file: &File, len: usize, offset: u64) -> std::io::Result<Vec<u8>> {
    // `with_capacity` gives exactly `len` of capacity, so each read fills at most what is
    // still missing.
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "segment ends before the block",
                ))
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(buf)
}

fn idx<E: std::fmt::Display>(e: E) -> Error {
    Error::Index(e.to_string())
}

struct Writer {
    seg: u32,
    out: BufWriter<File>,
    len: u64,
    /// Bytes appended since the last background flush was requested.
    unsynced: u64,
    /// Where the segment's bytes not yet dropped from the page cache start.
    undropped: u64,
    /// Whether written bytes stay in the page cache ([`FsConfig::cache_writes`]).
    cache_writes: bool,
}

impl Writer {
    /// Flushes the buffer and fdatasyncs the active segment, then lets the page cache go of
    /// what is now on disk.
    fn sync(&mut self) -> Result<(), Error> {
        self.out
            .flush()
            .and_then(|_| self.out.get_ref().sync_data())
            .map_err(|e| Error::io("sync segment", e))?;
        if let Some(range) = self.take_synced() {
            drop_cached(self.out.get_ref(), range);
        }
        Ok(())
    }

    /// The range to drop from the page cache once the bytes written so far are synced, unless
    /// written bytes stay cached.
    fn take_synced(&mut self) -> Option<(u64, u64)> {
        if self.cache_writes || self.undropped >= self.len {
            return None;
        }
        let range = (self.undropped, self.len);
        self.undropped = self.len;
        Some(range)
    }
}

/// Advises the kernel to drop the (synced, so clean) bytes `from..to` of `file` from the page
/// cache. Only advice: if it fails, the pages stay cached and nothing else changes.
fn drop_cached(file: &File, (from, to): (u64, u64)) {
    if let Some(len) = std::num::NonZeroU64::new(to - from) {
        let _ = rustix::fs::fadvise(file, from, Some(len), rustix::fs::Advice::DontNeed);
    }
}

type BlocksTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
type SegmentsTable<'t> = redb::Table<'t, u32, (u64, u64)>;

/// Points the index at records just written and synced, and counts their bytes as live in
/// their segments. Shared by the group commit and compaction, which write records the same way.
fn index_records(
    blocks: &mut BlocksTable<'_>,
    segs: &mut SegmentsTable<'_>,
    entries: &[(Vec<u8>, Vec<u8>)],
) -> Result<(), Error> {
    let mut added: HashMap<u32, u64> = HashMap::new();
    for (k, v) in entries {
        let (loc, _) = decode_location(v)?;
        *added.entry(loc.seg).or_default() += u64::from(loc.len);
        blocks.insert(k.as_slice(), v.as_slice()).map_err(idx)?;
    }
    for (seg, bytes) in added {
        let (live, dead) = segs.get(seg).map_err(idx)?.map_or((0, 0), |v| v.value());
        segs.insert(seg, (live + bytes, dead)).map_err(idx)?;
    }
    Ok(())
}

/// Small records are gathered in this buffer; block data at least this big goes straight to the
/// file, so large blocks are not copied once more on their way out.
const WRITE_BUFFER: usize = 64 << 10;

/// Once this much is appended, the flusher thread starts writing it to disk, so the group
/// commit at the end finds little left to flush.
const BACKGROUND_FLUSH: u64 = 64 << 20;

/// A segment for the flusher to sync, and the range it may then drop from the page cache.
type Flush = (File, Option<(u64, u64)>);

/// The durable on-disk block store.
pub struct FsBlockstore {
    dir: PathBuf,
    db: Database,
    readers: RwLock<HashMap<u32, Arc<File>>>,
    writer: Mutex<Writer>,
    config: FsConfig,
    /// Hands segment handles to the flusher thread, which fdatasyncs them ahead of the commit.
    /// The thread ends when this sender is dropped with the store.
    flusher: std::sync::mpsc::SyncSender<Flush>,
}

fn seg_path(dir: &Path, seg: u32) -> PathBuf {
    dir.join("segments").join(format!("{seg:08}.seg"))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("sync {}", dir.display()), e))
}

fn open_append(path: &Path) -> Result<(File, u64), Error> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("stat {}", path.display()), e))?
        .len();
    Ok((file, len))
}

impl FsBlockstore {
    /// Opens (creating if needed) the store in `dir`. Fails with [`Error::Locked`] when another
    /// process has it open.
    pub fn open(dir: impl AsRef<Path>, config: FsConfig) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        let segdir = dir.join("segments");
        fs::create_dir_all(&segdir)
            .map_err(|e| Error::io(format!("create {}", segdir.display()), e))?;
        // redb caches up to 1 GiB by default, which a busy daemon fills with index pages it
        // rarely rereads: bound it (index records are ~100 bytes; 64 MiB holds ~500k hot ones).
        let db = match Database::builder()
            .set_cache_size(64 << 20)
            .create(dir.join("index.redb"))
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::Locked(dir.display().to_string()))
            }
            Err(e) => return Err(idx(e)),
        };
        {
            let tx = db.begin_write().map_err(idx)?;
            tx.open_table(BLOCKS).map_err(idx)?;
            tx.open_table(SEGMENTS).map_err(idx)?;
            tx.commit().map_err(idx)?;
        }
        let known: HashSet<u32> = {
            let tx = db.begin_read().map_err(idx)?;
            let t = tx.open_table(SEGMENTS).map_err(idx)?;
            t.iter()
                .map_err(idx)?
                .map(|r| r.map(|(k, _)| k.value()).map_err(idx))
                .collect::<Result<_, _>>()?
        };
        let mut on_disk: Vec<u32> = fs::read_dir(&segdir)
            .map_err(|e| Error::io(format!("list {}", segdir.display()), e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".seg"))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        on_disk.sort_unstable();
        let active = on_disk
            .last()
            .copied()
            .unwrap_or(0)
            .max(known.iter().max().copied().unwrap_or(0));
        // Segments the index does not know (other than the active one) hold nothing any index
        // entry points at: a compaction or a failed batch left them. Remove them.
        for seg in on_disk
            .iter()
            .filter(|s| **s != active && !known.contains(s))
        {
            let p = seg_path(&dir, *seg);
            fs::remove_file(&p).map_err(|e| Error::io(format!("remove {}", p.display()), e))?;
        }
        let (file, len) = open_append(&seg_path(&dir, active))?;
        sync_dir(&segdir)?;
        let (flusher, requests) = std::sync::mpsc::sync_channel::<Flush>(1);
        std::thread::Builder::new()
            .name("segment-flusher".into())
            .spawn(move || {
                // Errors are left for the commit's own fdatasync to report; a range is only
                // dropped from the page cache once it is synced (dirty pages would stay).
                for (f, drop) in requests {
                    if f.sync_data().is_ok() {
                        if let Some(range) = drop {
                            drop_cached(&f, range);
                        }
                    }
                }
            })
            .map_err(|e| Error::io("start the segment flusher", e))?;
        Ok(FsBlockstore {
            dir,
            db,
            readers: RwLock::new(HashMap::new()),
            writer: Mutex::new(Writer {
                seg: active,
                out: BufWriter::with_capacity(WRITE_BUFFER, file),
                len,
                unsynced: 0,
                undropped: len,
                cache_writes: config.cache_writes,
            }),
            config,
            flusher,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn reader(&self, seg: u32) -> Result<Arc<File>, Error> {
        if let Some(f) = self.readers.read().get(&seg) {
            return Ok(f.clone());
        }
        let path = seg_path(&self.dir, seg);
        let file = Arc::new(
            File::open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?,
        );
        self.readers.write().insert(seg, file.clone());
        Ok(file)
    }

    fn locate(&self, cid: &Cid) -> Result<Option<Location>, Error> {
        let tx = self.db.begin_read().map_err(idx)?;
        let t = tx.open_table(BLOCKS).map_err(idx)?;
        let key = cid.hash().to_bytes();
        match t.get(key.as_slice()).map_err(idx)? {
            Some(v) => Ok(Some(decode_location(v.value())?.0)),
            None => Ok(None),
        }
    }

    fn read_at(&self, cid: &Cid, loc: &Location) -> Result<Bytes, Error> {
        let file = self.reader(loc.seg)?;
        read_exact_at(&file, loc.len as usize, loc.offset)
            .map(Bytes::from)
            .map_err(|e| Error::io(format!("read block {cid}"), e))
    }

    /// Reads a block without the configured verification (for `repo verify`, which checks itself).
    pub fn get_unverified(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        // A compaction may move a block between our index lookup and the read; the old segment
        // is then gone, and a fresh lookup finds the new place.
        for attempt in 0..2 {
            let Some(loc) = self.locate(cid)? else {
                return Ok(None);
            };
            match self.read_at(cid, &loc) {
                Ok(b) => return Ok(Some(b)),
                Err(Error::Io { source, .. })
                    if attempt == 0 && source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Index(format!(
            "block {cid} moved twice during a read"
        )))
    }

    fn roll(&self, w: &mut Writer) -> Result<(), Error> {
        w.sync()?;
        let (file, len) = open_append(&seg_path(&self.dir, w.seg + 1))?;
        sync_dir(&self.dir.join("segments"))?;
        w.seg += 1;
        w.out = BufWriter::with_capacity(WRITE_BUFFER, file);
        w.len = len;
        w.unsynced = 0;
        w.undropped = len;
        Ok(())
    }

    fn append(&self, w: &mut Writer, cid: &[u8], data: &[u8]) -> Result<(u32, u64), Error> {
        if w.len >= self.config.segment_size {
            self.roll(w)?;
        }
        let cid_len = u16::try_from(cid.len()).map_err(|_| Error::Index("cid too long".into()))?;
        let data_len = u32::try_from(data.len()).map_err(|_| Error::TooLarge {
            size: data.len(),
            limit: u32::MAX as usize,
        })?;
        let io = |e| Error::io("write segment", e);
        w.out.write_all(&cid_len.to_le_bytes()).map_err(io)?;
        w.out.write_all(&data_len.to_le_bytes()).map_err(io)?;
        w.out.write_all(cid).map_err(io)?;
        w.out.write_all(data).map_err(io)?;
        let offset = w.len + RECORD_HEADER + cid.len() as u64;
        w.len = offset + data.len() as u64;
        w.unsynced += RECORD_HEADER + (cid.len() + data.len()) as u64;
        if w.unsynced >= BACKGROUND_FLUSH {
            w.unsynced = 0;
            // Best effort: if the flusher is still busy, the next threshold tries again.
            if w.out.flush().is_ok() {
                if let Ok(f) = w.out.get_ref().try_clone() {
                    let drop = w.take_synced();
                    if let Err(std::sync::mpsc::TrySendError::Full((_, Some((from, _))))) =
                        self.flusher.try_send((f, drop))
                    {
                        // The next sync drops it instead.
                        w.undropped = from;
                    }
                }
            }
        }
        Ok((w.seg, offset))
    }

    /// Rewrites closed segments whose dead fraction passed the configured ratio, and removes
    /// segments with nothing live. Returns the bytes of disk space given back.
    pub fn compact(&self) -> Result<u64, Error> {
        let mut w = self.writer.lock();
        let segments: Vec<(u32, u64, u64)> = {
            let tx = self.db.begin_read().map_err(idx)?;
            let t = tx.open_table(SEGMENTS).map_err(idx)?;
            t.iter()
                .map_err(idx)?
                .map(|r| {
                    r.map(|(k, v)| {
                        let (live, dead) = v.value();
                        (k.value(), live, dead)
                    })
                    .map_err(idx)
                })
                .collect::<Result<_, _>>()?
        };
        let victims: HashSet<u32> = segments
            .iter()
            .filter(|(seg, live, dead)| {
                *seg != w.seg
                    && *dead > 0
                    && (*live == 0
                        || *dead as f64 / (*live + *dead) as f64 >= self.config.compact_dead_ratio)
            })
            .map(|(seg, _, _)| *seg)
            .collect();
        if victims.is_empty() {
            return Ok(0);
        }
        // Copy live blocks of the victims to the active segment, sync, then repoint the index.
        let mut moved = Vec::new();
        {
            let tx = self.db.begin_read().map_err(idx)?;
            let t = tx.open_table(BLOCKS).map_err(idx)?;
            for entry in t.iter().map_err(idx)? {
                let (k, v) = entry.map_err(idx)?;
                let (loc, cid_bytes) = decode_location(v.value())?;
                if victims.contains(&loc.seg) {
                    let cid = Cid::try_from(cid_bytes).map_err(idx)?;
                    let data = self.read_at(&cid, &loc)?;
                    let (seg, offset) = self.append(&mut w, cid_bytes, &data)?;
                    moved.push((
                        k.value().to_vec(),
                        encode_location(seg, offset, loc.len, cid_bytes),
                    ));
                }
            }
        }
        w.sync()?;
        let mut freed = 0;
        let tx = self.db.begin_write().map_err(idx)?;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(idx)?;
            let mut segs = tx.open_table(SEGMENTS).map_err(idx)?;
            // The copies went to the active segment, which is never a victim.
            index_records(&mut blocks, &mut segs, &moved)?;
            for (seg, live, dead) in &segments {
                if victims.contains(seg) {
                    segs.remove(*seg).map_err(idx)?;
                    freed += live + dead;
                }
            }
        }
        tx.commit().map_err(idx)?;
        let mut readers = self.readers.write();
        for seg in victims {
            readers.remove(&seg);
            let p = seg_path(&self.dir, seg);
            fs::remove_file(&p).map_err(|e| Error::io(format!("remove {}", p.display()), e))?;
        }
        Ok(freed)
    }
}

struct FsBatch<'a> {
    store: &'a FsBlockstore,
    w: MutexGuard<'a, Writer>,
    start: (u32, u64),
    read: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    seen: HashSet<Vec<u8>>,
    committed: bool,
}

impl WriteBatch for FsBatch<'_> {
    fn put(&mut self, block: Block) -> Result<(), Error> {
        let key = block.cid().hash().to_bytes();
        if self.seen.contains(&key) || self.read.get(key.as_slice()).map_err(idx)?.is_some() {
            return Ok(());
        }
        let cid = block.cid().to_bytes();
        let data = block.data();
        let (seg, offset) = self.store.append(&mut self.w, &cid, data)?;
        let len = data.len() as u32;
        self.entries
            .push((key.clone(), encode_location(seg, offset, len, &cid)));
        self.seen.insert(key);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<(), Error> {
        if self.entries.is_empty() {
            self.committed = true;
            return Ok(());
        }
        self.w.sync()?;
        let tx = self.store.db.begin_write().map_err(idx)?;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(idx)?;
            let mut segs = tx.open_table(SEGMENTS).map_err(idx)?;
            index_records(&mut blocks, &mut segs, &self.entries)?;
        }
        tx.commit().map_err(idx)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for FsBatch<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Give back what an abandoned batch wrote to the segment it started in; bytes written
        // after a roll stay as unindexed garbage for compaction.
        let w = &mut *self.w;
        let (seg, len) = self.start;
        if w.seg == seg {
            let _ = w.out.flush();
            if w.out.get_ref().set_len(len).is_ok() {
                w.len = len;
                w.undropped = w.undropped.min(len);
            }
        }
    }
}

impl Blockstore for FsBlockstore {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        let data = self.get_unverified(cid)?;
        if let Some(d) = &data {
            if self.config.verify_reads && verify_multihash(cid.hash(), d).is_err() {
                return Err(Error::Corrupt(*cid));
            }
        }
        Ok(data)
    }

    fn has(&self, cid: &Cid) -> Result<bool, Error> {
        Ok(self.locate(cid)?.is_some())
    }

    fn size(&self, cid: &Cid) -> Result<Option<u64>, Error> {
        Ok(self.locate(cid)?.map(|l| u64::from(l.len)))
    }

    fn begin(&self) -> Result<Box<dyn WriteBatch + '_>, Error> {
        let w = self.writer.lock();
        let read = self
            .db
            .begin_read()
            .map_err(idx)?
            .open_table(BLOCKS)
            .map_err(idx)?;
        Ok(Box::new(FsBatch {
            store: self,
            start: (w.seg, w.len),
            w,
            read,
            entries: Vec::new(),
            seen: HashSet::new(),
            committed: false,
        }))
    }

    fn delete_many(&self, cids: &[Cid]) -> Result<u64, Error> {
        let _w = self.writer.lock();
        let tx = self.db.begin_write().map_err(idx)?;
        let mut removed = 0;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(idx)?;
            let mut segs = tx.open_table(SEGMENTS).map_err(idx)?;
            let mut freed: HashMap<u32, u64> = HashMap::new();
            for cid in cids {
                let key = cid.hash().to_bytes();
                if let Some(v) = blocks.remove(key.as_slice()).map_err(idx)? {
                    let (loc, _) = decode_location(v.value())?;
                    *freed.entry(loc.seg).or_default() += u64::from(loc.len);
                    removed += 1;
                }
            }
            for (seg, bytes) in freed {
                let (live, dead) = segs.get(seg).map_err(idx)?.map_or((0, 0), |v| v.value());
                segs.insert(seg, (live.saturating_sub(bytes), dead + bytes))
                    .map_err(idx)?;
            }
        }
        tx.commit().map_err(idx)?;
        Ok(removed)
    }

    fn list(&self) -> Result<Vec<Cid>, Error> {
        let tx = self.db.begin_read().map_err(idx)?;
        let t = tx.open_table(BLOCKS).map_err(idx)?;
        t.iter()
            .map_err(idx)?
            .map(|r| {
                let (_, v) = r.map_err(idx)?;
                let (_, cid) = decode_location(v.value())?;
                Cid::try_from(cid).map_err(idx)
            })
            .collect()
    }

    fn stats(&self) -> Result<StoreStats, Error> {
        let tx = self.db.begin_read().map_err(idx)?;
        let blocks = tx.open_table(BLOCKS).map_err(idx)?.len().map_err(idx)?;
        let segs = tx.open_table(SEGMENTS).map_err(idx)?;
        let mut live = 0;
        for r in segs.iter().map_err(idx)? {
            live += r.map_err(idx)?.1.value().0;
        }
        let mut disk = fs::metadata(self.dir.join("index.redb"))
            .map(|m| m.len())
            .unwrap_or(0);
        if let Ok(rd) = fs::read_dir(self.dir.join("segments")) {
            disk += rd
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
        }
        Ok(StoreStats {
            blocks,
            block_bytes: live,
            disk_bytes: disk,
        })
    }
}
