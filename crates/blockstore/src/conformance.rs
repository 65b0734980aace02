//! The conformance suite every [`Blockstore`] implementation must pass.
//!
//! Call [`run`] from an implementation's tests with a fresh, empty store. Each check panics with
//! a message naming the broken property.

use ipfs_kit_block::{codec, make_cid, Block, HashAlg};

use crate::Blockstore;

fn block(i: u32) -> Block {
    Block::encode(
        codec::RAW,
        HashAlg::Sha2_256,
        1,
        format!("conformance block {i}").into_bytes(),
    )
}

/// Runs every check against `store`, which must start empty.
pub fn run(store: &dyn Blockstore) {
    empty_store(store);
    put_get_round_trip(store);
    keyed_by_multihash(store);
    duplicate_puts(store);
    abandoned_batch_is_invisible(store);
    delete(store);
    many_blocks_and_listing(store);
    readers_alongside_writer(store);
}

fn empty_store(store: &dyn Blockstore) {
    let b = block(0);
    assert_eq!(
        store.get(b.cid()).expect("get"),
        None,
        "empty store returns a block"
    );
    assert!(!store.has(b.cid()).expect("has"), "empty store has a block");
    assert_eq!(store.size(b.cid()).expect("size"), None);
    assert!(
        store.list().expect("list").is_empty(),
        "empty store lists blocks"
    );
}

fn put_get_round_trip(store: &dyn Blockstore) {
    let blocks: Vec<Block> = (1..4).map(block).collect();
    store.put_many(blocks.clone()).expect("put_many");
    for b in &blocks {
        assert_eq!(
            store.get(b.cid()).expect("get").as_ref(),
            Some(b.data()),
            "round trip"
        );
        assert!(store.has(b.cid()).expect("has"));
        assert_eq!(
            store.size(b.cid()).expect("size"),
            Some(b.data().len() as u64)
        );
    }
    let empty = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, Vec::new());
    store.put_many(vec![empty.clone()]).expect("put empty");
    assert_eq!(
        store.get(empty.cid()).expect("get empty").map(|d| d.len()),
        Some(0)
    );
}

fn keyed_by_multihash(store: &dyn Blockstore) {
    let b = Block::encode(codec::DAG_PB, HashAlg::Sha2_256, 0, vec![0x0a, 0x00]);
    store.put_many(vec![b.clone()]).expect("put");
    let as_raw_v1 = make_cid(1, codec::RAW, *b.cid().hash());
    assert_eq!(
        store.get(&as_raw_v1).expect("get").as_ref(),
        Some(b.data()),
        "lookup by multihash"
    );
}

fn duplicate_puts(store: &dyn Blockstore) {
    let b = block(10);
    let before = store.stats().expect("stats");
    store
        .put_many(vec![b.clone(), b.clone()])
        .expect("put twice in a batch");
    store.put_many(vec![b.clone()]).expect("put again");
    let after = store.stats().expect("stats");
    assert_eq!(after.blocks, before.blocks + 1, "duplicates counted once");
    assert_eq!(
        after.block_bytes,
        before.block_bytes + b.data().len() as u64
    );
}

fn abandoned_batch_is_invisible(store: &dyn Blockstore) {
    let b = block(20);
    {
        let mut batch = store.begin().expect("begin");
        batch.put(b.clone()).expect("put");
        assert!(
            !store.has(b.cid()).expect("has"),
            "uncommitted block visible"
        );
    }
    assert!(
        !store.has(b.cid()).expect("has"),
        "dropped batch left a block"
    );
    let mut batch = store.begin().expect("begin after drop");
    batch.put(b.clone()).expect("put");
    batch.commit().expect("commit");
    assert_eq!(store.get(b.cid()).expect("get").as_ref(), Some(b.data()));
}

fn delete(store: &dyn Blockstore) {
    let (a, b) = (block(30), block(31));
    store.put_many(vec![a.clone(), b.clone()]).expect("put");
    let missing = block(32);
    let n = store
        .delete_many(&[*a.cid(), *missing.cid()])
        .expect("delete");
    assert_eq!(n, 1, "delete counts only present blocks");
    assert!(
        !store.has(a.cid()).expect("has"),
        "deleted block still there"
    );
    assert_eq!(store.get(a.cid()).expect("get"), None);
    assert!(
        store.has(b.cid()).expect("has"),
        "delete removed a neighbour"
    );
    store.put_many(vec![a.clone()]).expect("re-put");
    assert_eq!(
        store.get(a.cid()).expect("get").as_ref(),
        Some(a.data()),
        "re-put after delete"
    );
}

fn many_blocks_and_listing(store: &dyn Blockstore) {
    let blocks: Vec<Block> = (1000..3000).map(block).collect();
    store.put_many(blocks.clone()).expect("put many");
    let listed: std::collections::HashSet<_> = store
        .list()
        .expect("list")
        .into_iter()
        .map(|c| c.hash().to_bytes())
        .collect();
    for b in &blocks {
        assert!(
            listed.contains(&b.cid().hash().to_bytes()),
            "list misses a block"
        );
        assert_eq!(store.get(b.cid()).expect("get").as_ref(), Some(b.data()));
    }
    let stats = store.stats().expect("stats");
    assert_eq!(stats.blocks, listed.len() as u64, "stats and list disagree");
}

fn readers_alongside_writer(store: &dyn Blockstore) {
    let old: Vec<Block> = (5000..5100).map(block).collect();
    store.put_many(old.clone()).expect("put");
    std::thread::scope(|s| {
        let mut batch = store.begin().expect("begin");
        for r in 0..2 {
            let old = &old;
            s.spawn(move || {
                for b in old.iter().skip(r) {
                    assert_eq!(store.get(b.cid()).expect("get").as_ref(), Some(b.data()));
                }
            });
        }
        for i in 6000..6100 {
            batch.put(block(i)).expect("put");
        }
        batch.commit().expect("commit");
    });
    assert!(store.has(block(6050).cid()).expect("has"));
}
