//! Repo-level behaviour that needs threads: GC racing an add, readers alongside a writer.

mod names;

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use ipfs_kit_node::{AddOptions, InitOptions, Repo};

/// A reader that hands out its bytes in small pieces and yields between them, so the add spans
/// many scheduler slices while another thread runs GC.
struct Slow {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::yield_now();
        let n = buf.len().min(16 << 10).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

#[test]
fn gc_during_add_never_takes_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("repo"), InitOptions::default()).unwrap();
    // Loose content for GC to find.
    let loose = repo
        .add_reader(
            &mut &data(1, 3 << 20)[..],
            &AddOptions {
                pin: false,
                ..Default::default()
            },
        )
        .unwrap();
    let done = AtomicBool::new(false);
    let payload = data(2, 6 << 20);
    let (root, gcs) = std::thread::scope(|s| {
        let gc = s.spawn(|| {
            let mut runs = 0;
            while !done.load(Ordering::Acquire) && runs < 10_000 {
                repo.gc().unwrap();
                runs += 1;
            }
            runs
        });
        let root = repo
            .add_reader(
                &mut Slow {
                    data: payload.clone(),
                    pos: 0,
                },
                &AddOptions::default(),
            )
            .unwrap();
        done.store(true, Ordering::Release);
        (root, gc.join().unwrap())
    });
    assert!(gcs > 0, "gc never ran");
    let mut out = Vec::new();
    repo.cat(&root.cid.to_string(), 0, None, &mut out).unwrap();
    assert!(
        out == payload,
        "the add's content was damaged by a concurrent gc"
    );
    repo.gc().unwrap();
    assert!(
        repo.cat(&loose.cid.to_string(), 0, None, &mut Vec::new())
            .is_err(),
        "unpinned content survived gc"
    );
    let (bad, n) = repo.repo_verify(&mut |_| {}).unwrap();
    assert!(bad.is_empty() && n > 0);
}

#[test]
fn readers_run_alongside_an_add() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("repo"), InitOptions::default()).unwrap();
    let first = data(3, 4 << 20);
    let root = repo
        .add_reader(&mut &first[..], &AddOptions::default())
        .unwrap();
    let cid = root.cid.to_string();
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            for _ in 0..20 {
                let mut out = Vec::new();
                repo.cat(&cid, 0, None, &mut out).unwrap();
                assert!(out == first);
            }
        });
        repo.add_reader(
            &mut Slow {
                data: data(4, 4 << 20),
                pos: 0,
            },
            &AddOptions::default(),
        )
        .unwrap();
        reader.join().unwrap();
    });
}

/// The memory cache serves repeated reads, and forgets what `block rm` and GC delete.
#[test]
fn the_block_cache_serves_hits_and_forgets_deleted_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("repo"), InitOptions::default()).unwrap();
    let unpinned = AddOptions {
        pin: false,
        ..Default::default()
    };
    let a = repo
        .add_reader(&mut &data(3, 1 << 20)[..], &unpinned)
        .unwrap();
    let cat = |cid: &cid::Cid| {
        let mut out = Vec::new();
        repo.cat(&cid.to_string(), 0, None, &mut out).unwrap();
        out
    };
    assert_eq!(cat(&a.cid), data(3, 1 << 20));
    let before = repo.block_cache_stats().unwrap();
    assert_eq!(cat(&a.cid), data(3, 1 << 20));
    let after = repo.block_cache_stats().unwrap();
    assert_eq!(after.misses, before.misses, "a second read is all hits");
    assert!(after.hits >= before.hits + 5, "the root and four leaves");
    let blocks = repo.blocks().list().unwrap();
    assert!(blocks.iter().all(|c| repo.cached_block(c).is_some()));
    // GC deletes the unpinned file: none of its blocks may still be served.
    repo.gc().unwrap();
    for c in &blocks {
        assert!(repo.cached_block(c).is_none(), "{c} still cached after gc");
        assert!(matches!(
            repo.block_bytes(c),
            Err(ipfs_kit_node::Error::NotFound(_))
        ));
    }
    // So does `block rm`.
    let b = repo.add_reader(&mut &b"small"[..], &unpinned).unwrap();
    assert_eq!(cat(&b.cid), b"small");
    assert!(repo.cached_block(&b.cid).is_some());
    repo.block_rm(&[b.cid], false).unwrap();
    assert!(repo.cached_block(&b.cid).is_none());
    assert!(repo.block_bytes(&b.cid).is_err());
    let s = repo.block_cache_stats().unwrap();
    assert_eq!(s.removals, blocks.len() as u64 + 1, "{s:?}");
}

/// `block_cache: false` (the CLI's one-shot commands) opens the repo without a cache.
#[test]
fn the_block_cache_can_be_left_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    drop(Repo::init(&path, InitOptions::default()).unwrap());
    let repo = Repo::open_with(&path, ipfs_kit_node::RepoOptions { block_cache: false }).unwrap();
    let a = repo
        .add_reader(&mut &b"hello"[..], &AddOptions::default())
        .unwrap();
    assert!(repo.block_cache_stats().is_none());
    assert!(repo.cached_block(&a.cid).is_none());
    assert!(repo
        .block_bytes(&a.cid)
        .unwrap()
        .ends_with(b"hello\x18\x05"));
}
