//! Pin semantics and GC over real DAGs in a durable store.

use std::sync::Arc;

use ipfs_kit_block::dagpb::{PbLink, PbNode};
use ipfs_kit_block::{codec, Block, Cid, HashAlg};
use ipfs_kit_blockstore::{Blockstore, FsBlockstore, FsConfig};
use ipfs_kit_pin::{gc, verify_pins, Error, PinMode, PinType, Pinset};

struct Fixture {
    _dir: tempfile::TempDir,
    store: FsBlockstore,
    pins: Pinset,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsBlockstore::open(dir.path().join("blocks"), FsConfig::default()).expect("store");
    let db = Arc::new(redb::Database::create(dir.path().join("meta.redb")).expect("db"));
    let pins = Pinset::open(db).expect("pins");
    Fixture {
        _dir: dir,
        store,
        pins,
    }
}

fn raw(s: &str) -> Block {
    Block::encode(codec::RAW, HashAlg::Sha2_256, 1, s.as_bytes().to_vec())
}

fn node(children: &[&Block]) -> Block {
    let pb = PbNode {
        links: children
            .iter()
            .map(|c| PbLink {
                cid: *c.cid(),
                name: Some(String::new()),
                tsize: Some(c.data().len() as u64),
            })
            .collect(),
        data: None,
    };
    Block::encode(codec::DAG_PB, HashAlg::Sha2_256, 0, pb.encode())
}

/// root -> (mid -> (a, b), c)
fn dag(store: &dyn Blockstore, tag: &str) -> (Cid, Vec<Cid>) {
    let a = raw(&format!("{tag} a"));
    let b = raw(&format!("{tag} b"));
    let c = raw(&format!("{tag} c"));
    let mid = node(&[&a, &b]);
    let root = node(&[&mid, &c]);
    let all = vec![*root.cid(), *mid.cid(), *a.cid(), *b.cid(), *c.cid()];
    store
        .put_many(vec![a, b, c, mid, root.clone()])
        .expect("put");
    (*root.cid(), all)
}

#[test]
fn gc_keeps_exactly_what_pins_reach() {
    let f = fixture();
    let (pinned, pinned_all) = dag(&f.store, "kept");
    let (_, loose_all) = dag(&f.store, "loose");
    let direct = raw("direct");
    f.store.put_many(vec![direct.clone()]).expect("put");
    f.pins
        .add(&f.store, &[pinned], PinMode::Recursive)
        .expect("pin");
    f.pins
        .add(&f.store, &[*direct.cid()], PinMode::Direct)
        .expect("pin direct");
    let removed = gc(&f.store, &f.pins).expect("gc");
    assert_eq!(removed.len(), loose_all.len());
    for c in &pinned_all {
        assert!(f.store.has(c).expect("has"), "gc removed pinned block {c}");
    }
    for c in &loose_all {
        assert!(!f.store.has(c).expect("has"), "gc kept unpinned block {c}");
    }
    assert!(f.store.has(direct.cid()).expect("has"));
    assert!(gc(&f.store, &f.pins).expect("gc again").is_empty());
}

#[test]
fn pin_of_missing_content_changes_nothing() {
    let f = fixture();
    let (root, all) = dag(&f.store, "partial");
    f.store.delete_many(&all[2..3]).expect("delete a leaf");
    let (other, _) = dag(&f.store, "whole");
    match f.pins.add(&f.store, &[other, root], PinMode::Recursive) {
        Err(Error::Missing { missing, .. }) => assert_eq!(missing, all[2]),
        other => panic!("pinned an incomplete dag: {other:?}"),
    }
    assert!(
        f.pins.stored().expect("stored").is_empty(),
        "a failed pin add left pins"
    );
    let absent = raw("never stored");
    assert!(f
        .pins
        .add(&f.store, &[*absent.cid()], PinMode::Direct)
        .is_err());
}

#[test]
fn kubo_pin_semantics() {
    let f = fixture();
    let (root, all) = dag(&f.store, "sem");
    f.pins
        .add(&f.store, &[root], PinMode::Direct)
        .expect("direct");
    f.pins
        .add(&f.store, &[root], PinMode::Recursive)
        .expect("upgrade to recursive");
    assert!(matches!(
        f.pins.add(&f.store, &[root], PinMode::Direct),
        Err(Error::AlreadyRecursive(_))
    ));
    assert!(matches!(
        f.pins.rm(&f.store, &[root], false),
        Err(Error::PinnedRecursively(_))
    ));
    assert!(
        matches!(f.pins.rm(&f.store, &[all[1]], true), Err(Error::PinnedIndirectly(_, r)) if r == root)
    );
    assert_eq!(
        f.pins.status(&f.store, &all[3]).expect("status"),
        Some(PinType::Indirect)
    );
    let listed = f
        .pins
        .list(&f.store, &[PinType::Recursive, PinType::Indirect])
        .expect("list");
    assert_eq!(listed.len(), all.len());
    assert_eq!(
        listed
            .iter()
            .filter(|(_, t)| *t == PinType::Indirect)
            .count(),
        all.len() - 1
    );
    f.pins.rm(&f.store, &[root], true).expect("rm");
    assert!(matches!(
        f.pins.rm(&f.store, &[root], true),
        Err(Error::NotPinned(_))
    ));
}

#[test]
fn verify_names_missing_blocks() {
    let f = fixture();
    let (root, all) = dag(&f.store, "verify");
    f.pins
        .add(&f.store, &[root], PinMode::Recursive)
        .expect("pin");
    assert!(verify_pins(&f.store, &f.pins)
        .expect("verify")
        .iter()
        .all(|c| c.bad.is_empty()));
    f.store.delete_many(&all[4..5]).expect("lose a block");
    let checks = verify_pins(&f.store, &f.pins).expect("verify");
    assert_eq!(checks[0].bad.len(), 1);
    assert_eq!(checks[0].bad[0].0, all[4]);
}
