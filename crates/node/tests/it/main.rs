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
