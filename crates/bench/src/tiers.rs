//! `tiers`: each storage tier's read path, through the node's stack (the ARC memory tier in
//! front of `TieredBlockstore`: the local segment store, then an object storage tier on a real
//! S3 server on loopback). Per tier: the latency of one 256 KiB block read (median and p99
//! over many reads) and the throughput of reading a 64 MiB file's blocks in order, each read
//! copying its bytes out once. Tiers are interleaved within each round; medians over rounds.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use ipfs_kit_block::{codec, Block, Cid, HashAlg};
use ipfs_kit_blockstore::{Blockstore, FsBlockstore, FsConfig};
use ipfs_kit_tiered::moto::{MotoServer, S3rver};
use ipfs_kit_tiered::{
    CacheConfig, CachedBlockstore, ObjectBlockstore, ObjectConfig, TieredBlockstore,
};
use serde_json::json;

use crate::http::pseudo_random;
use crate::{loadavg, median};

/// Bytes per block: the default UnixFS chunk.
const BLOCK: usize = 256 << 10;

/// `n` blocks of pseudo-random bytes, distinct per `seed`.
fn blocks(seed: u64, n: usize) -> Vec<Block> {
    (0..n as u64)
        .map(|i| {
            // pseudo_random sets the low bit: keep it out of the seed so no two blocks match.
            let data = pseudo_random(BLOCK, (seed << 40) ^ (i << 1));
            Block::encode(codec::RAW, HashAlg::Sha2_256, 1, data)
        })
        .collect()
}

/// One tier's read of one block.
type Read<'a> = dyn Fn(&Cid) -> Result<()> + 'a;

/// Reads `reads` single blocks with `get`, cycling over `cids`: (median, p99) in µs.
fn block_latency(get: &Read, cids: &[Cid], reads: usize) -> Result<(f64, f64)> {
    let mut us = Vec::with_capacity(reads);
    for i in 0..reads {
        let t = Instant::now();
        get(&cids[i % cids.len()])?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    us.sort_by(|a, b| a.total_cmp(b));
    let p99 = us[(us.len() * 99 / 100).min(us.len() - 1)];
    Ok((median(&mut us), p99))
}

/// Reads every block of `cids` in order: MiB/s.
fn file_throughput(get: &Read, cids: &[Cid]) -> Result<f64> {
    let t = Instant::now();
    for cid in cids {
        get(cid)?;
    }
    Ok((cids.len() * BLOCK) as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64())
}

/// Runs the benchmark: `mib` MiB files, `reads` single-block reads per tier and round.
pub fn tiers(work: &Path, mib: usize, reads: usize, runs: usize, server: &str) -> Result<()> {
    std::fs::create_dir_all(work)?;
    let bucket = "bench";
    // The server (and s3rver's directory) live until the end of the run.
    let (_running, endpoint, creds): (Box<dyn std::any::Any>, _, _) = match server {
        "moto" => {
            let moto = MotoServer::start().context("set IPFS_KIT_MOTO to moto_server")?;
            moto.create_bucket(bucket);
            let e = moto.endpoint();
            (Box::new(moto), e, ("test", "test"))
        }
        "s3rver" => {
            let dir = tempfile::tempdir_in(work)?;
            let s3 = S3rver::start(dir.path(), bucket).context("set IPFS_KIT_S3RVER")?;
            let e = s3.endpoint();
            (Box::new((s3, dir)), e, S3rver::CREDENTIALS)
        }
        other => anyhow::bail!("unknown server {other:?} (moto, s3rver)"),
    };
    let mut oc = ObjectConfig::new(bucket, endpoint);
    oc.access_key_id = Some(creds.0.into());
    oc.secret_access_key = Some(creds.1.into());
    let object = ObjectBlockstore::open(&oc)?;
    let local_dir = tempfile::tempdir_in(work)?;
    let local = FsBlockstore::open(local_dir.path(), FsConfig::default())?;

    // One file on the local disk, another only in the bucket.
    let n = (mib << 20) / BLOCK;
    let (on_disk, in_bucket) = (blocks(1, n), blocks(2, n));
    let cids = |b: &[Block]| b.iter().map(|b| *b.cid()).collect::<Vec<_>>();
    let (disk_cids, bucket_cids) = (cids(&on_disk), cids(&in_bucket));
    local.put_many(on_disk)?;
    for chunk in in_bucket.chunks(64) {
        object.put_many(chunk.to_vec())?;
    }
    let store = CachedBlockstore::new(
        TieredBlockstore::new(local).with_tier("s3", object),
        CacheConfig::default().with_capacity((2 * mib as u64) << 20),
    );
    // The memory tier holds the local file once it has been read through it.
    for cid in &disk_cids {
        store.get(cid)?;
    }
    // Each read delivers its bytes, as `cat` does: copied out once (for the memory tier, the
    // only cost besides the lookup).
    let out = std::cell::RefCell::new(vec![0u8; BLOCK]);
    let found = |r: Option<ipfs_kit_block::Bytes>| {
        let data = r.context("block missing")?;
        out.borrow_mut()[..data.len()].copy_from_slice(&data);
        std::hint::black_box(&out);
        Ok(())
    };
    let memory = |c: &Cid| found(store.get_cached(c));
    let disk = |c: &Cid| found(store.inner().get(c)?);
    let bucket_get = |c: &Cid| found(store.inner().get(c)?);
    let tiers: [(&str, &Read, &[Cid]); 3] = [
        ("memory", &memory, &disk_cids),
        ("local", &disk, &disk_cids),
        ("s3", &bucket_get, &bucket_cids),
    ];

    let load0 = loadavg();
    let mut figures = vec![(vec![], vec![], vec![]); tiers.len()];
    for _ in 0..runs {
        for ((_, get, cids), (p50, p99, mib_s)) in tiers.iter().zip(figures.iter_mut()) {
            let (a, b) = block_latency(*get, cids, reads)?;
            p50.push(a);
            p99.push(b);
            mib_s.push(file_throughput(*get, cids)?);
        }
    }
    let results: Vec<_> = tiers
        .iter()
        .zip(figures.iter_mut())
        .map(|((name, _, _), (p50, p99, mib_s))| {
            json!({
                "tier": name,
                "block_read_us_median": median(p50),
                "block_read_us_p99": median(p99),
                "file_mib_s": median(mib_s),
            })
        })
        .collect();
    let report = json!({
        "bench": "tiers", "server": server,
        "file_mib": mib, "block_kib": BLOCK >> 10, "reads_per_round": reads, "runs": runs,
        "results": results, "loadavg_before": load0, "loadavg_after": loadavg(),
    });
    println!("{report}");
    Ok(())
}
