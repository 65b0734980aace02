//! The object storage tier against a real S3-compatible server: moto's server mode, one server
//! per test on a free loopback port, stopped when the test ends. `IPFS_KIT_MOTO` names the
//! `moto_server` program (scripts/test.sh installs it); without it the tests say so and pass,
//! except under CI (`CI` set), where that is a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipfs_kit_block::{codec, Block, HashAlg};
use ipfs_kit_blockstore::{conformance, Blockstore, Error};
use ipfs_kit_tiered::{key_of, ObjectBlockstore, ObjectConfig};
use object_store::ObjectStore;

/// A moto server on loopback, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Option<Moto> {
        let Some(program) = std::env::var_os("IPFS_KIT_MOTO") else {
            if std::env::var_os("CI").is_some() {
                panic!("IPFS_KIT_MOTO is not set: CI must run the object storage tests");
            }
            eprintln!("IPFS_KIT_MOTO not set (scripts/test.sh installs moto): skipping");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, port };
        let give_up = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < give_up, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` (object_store has no call for it): an S3 `PUT /bucket`.
    fn bucket(&self, bucket: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("reply");
        assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
    }

    /// A tier on a fresh bucket of this server.
    fn tier(&self, bucket: &str) -> ObjectBlockstore {
        self.bucket(bucket);
        ObjectBlockstore::open(&config(&self.endpoint(), bucket)).expect("open")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let Some(moto) = Moto::start() else { return };
    conformance::run(&moto.tier("conformance"));
}

#[test]
fn large_blocks_and_many_small_ones_round_trip() {
    let Some(moto) = Moto::start() else { return };
    let tier = moto.tier("sizes");
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
    let Some(moto) = Moto::start() else { return };
    let tier = moto.tier("corrupt");
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
}

#[test]
fn an_unreachable_server_is_an_error_naming_the_tier() {
    let Some(moto) = Moto::start() else { return };
    let tier = moto.tier("gone");
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
