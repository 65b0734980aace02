//! The object storage tier against real S3-compatible servers: moto's server mode and s3rver,
//! one server per test ([`MotoServer`], [`S3rver`]), stopped when the test ends.

use ipfs_kit_block::{codec, Block, HashAlg};
use ipfs_kit_blockstore::{conformance, Blockstore, Error};
use ipfs_kit_tiered::moto::{MotoServer, S3rver};
use ipfs_kit_tiered::{key_of, ObjectBlockstore, ObjectConfig};
use object_store::ObjectStore;

/// A tier on a fresh bucket of `moto`.
fn tier(moto: &MotoServer, bucket: &str) -> ObjectBlockstore {
    moto.create_bucket(bucket);
    ObjectBlockstore::open(&config(&moto.endpoint(), bucket)).expect("open")
}

fn config(endpoint: &str, bucket: &str) -> ObjectConfig {
    let mut c = ObjectConfig::new(bucket, endpoint);
    c.prefix = "kit/".into();
    c.access_key_id = Some("test".into());
    c.secret_access_key = Some("test".into());
    c
}

#[test]
fn the_object_tier_passes_the_blockstore_conformance_suite() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    conformance::run(&tier(&moto, "conformance"));
}

#[test]
fn large_blocks_and_many_small_ones_round_trip() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let tier = tier(&moto, "sizes");
    // Pseudo-random, so no two blocks are alike.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let large: Vec<Block> = [1 << 20, 2 << 20, 4 << 20]
        .into_iter()
        .map(|n| Block::encode(codec::RAW, HashAlg::Sha2_256, 1, bytes(n)))
        .collect();
    let small: Vec<Block> = (0..500)
        .map(|i| Block::encode(codec::RAW, HashAlg::Sha2_256, 1, bytes(1 + i % 300)))
        .collect();
    tier.put_many(large.iter().chain(&small).cloned().collect())
        .expect("put");
    for b in large.iter().chain(&small) {
        assert_eq!(tier.get(b.cid()).expect("get").as_ref(), Some(b.data()));
    }
    let stats = tier.stats().expect("stats");
    assert_eq!(stats.blocks, 503);
    let total: usize = large.iter().chain(&small).map(|b| b.data().len()).sum();
    assert_eq!(stats.block_bytes, total as u64);
}

#[test]
fn corrupt_bytes_in_the_bucket_are_detected_and_never_returned() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let tier = tier(&moto, "corrupt");
    let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"the real bytes".to_vec());
    tier.put_many(vec![block.clone()]).expect("put");
    // Someone overwrites the object behind the tier's back.
    let raw = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("corrupt")
        .with_endpoint(moto.endpoint())
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .expect("client");
    let path = object_store::path::Path::from(format!("kit/blocks/{}", key_of(block.cid().hash())));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(raw.put(&path, b"the fake bytes".to_vec().into()))
        .expect("overwrite");
    match tier.get(block.cid()) {
        Err(Error::Corrupt(cid)) => assert_eq!(cid, *block.cid()),
        other => panic!("corrupt bytes not detected: {other:?}"),
    }
    // Fetched ahead, the same bytes are just as refused.
    tier.prefetch(&[*block.cid()]);
    assert!(matches!(tier.get(block.cid()), Err(Error::Corrupt(_))));
}

#[test]
fn blocks_fetched_ahead_read_the_same_and_never_outlive_their_deletion() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let tier = tier(&moto, "ahead");
    let blocks: Vec<Block> = (0..40u32)
        .map(|i| {
            Block::encode(
                codec::RAW,
                HashAlg::Sha2_256,
                1,
                i.to_le_bytes().repeat(5000),
            )
        })
        .collect();
    tier.put_many(blocks.clone()).expect("put");
    let cids: Vec<_> = blocks.iter().map(|b| *b.cid()).collect();
    // More than the read-ahead holds: the rest are read the ordinary way.
    tier.prefetch(&cids);
    for b in &blocks {
        assert_eq!(tier.get(b.cid()).expect("get").as_ref(), Some(b.data()));
    }
    // A block asked ahead and then deleted is gone; one that never existed is not found.
    let missing = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"never stored".to_vec());
    tier.prefetch(&[cids[0], *missing.cid()]);
    tier.delete_many(&cids[..1]).expect("delete");
    assert_eq!(tier.get(&cids[0]).expect("get"), None);
    assert_eq!(tier.get(missing.cid()).expect("get"), None);
}

#[test]
fn an_unreachable_server_is_an_error_naming_the_tier() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let tier = tier(&moto, "gone");
    let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, b"before".to_vec());
    tier.put_many(vec![block.clone()]).expect("put");
    let endpoint = moto.endpoint();
    drop(moto);
    let mut c = config(&endpoint, "gone");
    c.retries = 0;
    let tier = ObjectBlockstore::open(&c).expect("open");
    for err in [
        tier.get(block.cid()).map(|_| ()).unwrap_err(),
        tier.put_many(vec![block.clone()]).unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::Tier { ref tier, .. } if tier == "s3"),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("the s3 tier: "), "{err}");
    }
}

/// A tier on s3rver's bucket `bucket`.
fn s3rver_tier(s3: &S3rver, bucket: &str) -> ObjectBlockstore {
    let mut c = ObjectConfig::new(bucket, s3.endpoint());
    c.access_key_id = Some(S3rver::CREDENTIALS.0.into());
    c.secret_access_key = Some(S3rver::CREDENTIALS.1.into());
    c.retries = 0;
    ObjectBlockstore::open(&c).expect("open")
}

#[test]
fn the_object_tier_passes_the_conformance_suite_on_s3rver_and_survives_its_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut s3) = S3rver::start(dir.path(), "restart") else {
        return;
    };
    let tier = s3rver_tier(&s3, "restart");
    conformance::run(&tier);
    let block = Block::encode(codec::RAW, HashAlg::Sha2_256, 1, vec![9; 300_000]);
    tier.put_many(vec![block.clone()]).expect("put");
    s3.kill();
    let err = tier.get(block.cid()).unwrap_err();
    assert!(err.to_string().starts_with("the s3 tier: "), "{err}");
    s3.restart();
    assert_eq!(
        tier.get(block.cid()).expect("get").as_deref(),
        Some(block.data().as_ref())
    );
}
