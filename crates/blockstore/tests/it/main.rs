//! Every block store passes the conformance suite; the durable store also survives reopening,
//! compaction and corruption the way docs/storage.md says.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use ipfs_kit_block::{codec, Block, HashAlg};
use ipfs_kit_blockstore::{conformance, Blockstore, Error, FsBlockstore, FsConfig, MemBlockstore};

fn block(i: u32, size: usize) -> Block {
    let mut data = vec![(i % 251) as u8; size];
    data[..4].copy_from_slice(&i.to_le_bytes());
    Block::encode(codec::RAW, HashAlg::Sha2_256, 1, data)
}

#[test]
fn mem_store_conforms() {
    conformance::run(&MemBlockstore::default());
}

#[test]
fn fs_store_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    conformance::run(&FsBlockstore::open(dir.path(), FsConfig::default()).expect("open"));
}

#[test]
fn fs_store_conforms_keeping_writes_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = FsConfig {
        cache_writes: true,
        ..FsConfig::default()
    };
    conformance::run(&FsBlockstore::open(dir.path(), cfg).expect("open"));
}

#[test]
fn fs_store_conforms_with_tiny_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = FsConfig::default().with_segment_size(4096);
    conformance::run(&FsBlockstore::open(dir.path(), cfg).expect("open"));
}

#[test]
fn fs_store_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocks: Vec<Block> = (0..50).map(|i| block(i, 10_000)).collect();
    {
        let store = FsBlockstore::open(dir.path(), FsConfig::default().with_segment_size(100_000))
            .expect("open");
        store.put_many(blocks.clone()).expect("put");
    }
    let store = FsBlockstore::open(dir.path(), FsConfig::default()).expect("reopen");
    for b in &blocks {
        assert_eq!(store.get(b.cid()).expect("get").as_ref(), Some(b.data()));
    }
}

#[test]
fn second_open_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = FsBlockstore::open(dir.path(), FsConfig::default()).expect("open");
    match FsBlockstore::open(dir.path(), FsConfig::default()) {
        Err(Error::Locked(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("second open succeeded"),
    }
}

#[test]
fn compaction_reclaims_space_and_keeps_live_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlockstore::open(dir.path(), FsConfig::default().with_segment_size(200_000))
        .expect("open");
    let blocks: Vec<Block> = (0..100).map(|i| block(i, 10_000)).collect();
    store.put_many(blocks.clone()).expect("put");
    let dead: Vec<_> = blocks
        .iter()
        .filter(|b| b.data()[0] % 4 != 0)
        .map(|b| *b.cid())
        .collect();
    store.delete_many(&dead).expect("delete");
    let before = store.stats().expect("stats").disk_bytes;
    let freed = store.compact().expect("compact");
    let after = store.stats().expect("stats").disk_bytes;
    assert!(
        freed > 0 && after < before,
        "compaction freed {freed}, disk {before} -> {after}"
    );
    for b in &blocks {
        let got = store.get(b.cid()).expect("get");
        if dead.contains(b.cid()) {
            assert_eq!(got, None);
        } else {
            assert_eq!(
                got.as_ref(),
                Some(b.data()),
                "live block lost in compaction"
            );
        }
    }
    drop(store);
    let store = FsBlockstore::open(dir.path(), FsConfig::default()).expect("reopen");
    assert_eq!(store.stats().expect("stats").blocks, 25);
}

/// Stores `b` in a fresh store at `dir`, closes it, and returns the one segment file's path.
fn store_one(dir: &std::path::Path, b: &Block) -> std::path::PathBuf {
    let store = FsBlockstore::open(dir, FsConfig::default()).expect("open");
    store.put_many(vec![b.clone()]).expect("put");
    drop(store);
    std::fs::read_dir(dir.join("segments"))
        .expect("ls")
        .next()
        .expect("a segment")
        .expect("entry")
        .path()
}

#[test]
fn corruption_is_detected_not_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = block(7, 1000);
    let seg = store_one(dir.path(), &b);
    let mut f = OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("open segment");
    f.seek(SeekFrom::End(-10)).expect("seek");
    f.write_all(b"XXXXXXXXXX").expect("corrupt");
    drop(f);
    let store = FsBlockstore::open(dir.path(), FsConfig::default()).expect("reopen");
    match store.get(b.cid()) {
        Err(Error::Corrupt(c)) => assert_eq!(&c, b.cid()),
        other => panic!("corrupt block served: {other:?}"),
    }
}

#[test]
fn torn_tail_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = block(9, 1000);
    let seg = store_one(dir.path(), &b);
    // A crash mid-append leaves a partial record after the last committed one.
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .expect("open")
        .write_all(&[1, 2, 3, 4, 5])
        .expect("tear");
    let store = FsBlockstore::open(dir.path(), FsConfig::default()).expect("reopen");
    assert_eq!(store.get(b.cid()).expect("get").as_ref(), Some(b.data()));
    let c = block(10, 1000);
    store.put_many(vec![c.clone()]).expect("put after tear");
    assert_eq!(store.get(c.cid()).expect("get").as_ref(), Some(c.data()));
}
