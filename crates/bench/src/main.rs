//! `ipfs-kit-bench`: whole-operation benchmarks.
//!
//! - `machine`: this machine's limits: SHA-256 on one and two cores, sequential write with
//!   fdatasync.
//! - `storage`: the three block-store designs docs/storage.md weighs, on the same blocks.
//! - `kubo`: ipfs-kit and the real Kubo in shared/kubo side by side, interleaved A/B/A/B, each
//!   measurement in a fresh process and a fresh repo; medians and ratios.
//!
//! - `rpc-cat`: the RPC API's `cat` over TCP and over the Unix socket, interleaved.
//! - `soak`: a mixed load of gateway reads, RPC reads and adds; errors and daemon memory.
//! - `tiers`: a block's read latency and a 64 MiB file's read throughput from each storage
//!   tier (memory, local disk, object storage on a real S3 server on loopback).
//!
//! Every report carries the 1-minute load average before and after: the machines are shared.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

mod http;
mod tiers;
use clap::{Parser, Subcommand};
use ipfs_kit_block::{codec, Block, HashAlg};
use ipfs_kit_blockstore::{Blockstore, FsBlockstore, FsConfig};
use redb::ReadableDatabase;
use serde_json::json;
use sha2::Digest;

#[derive(Parser)]
#[command(about = "ipfs-kit macro benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// RPC `cat` of a 4 KiB and a 1 MiB file over TCP and the Unix socket, interleaved.
    RpcCat {
        /// The ipfs-kit binary (build it with --release).
        #[arg(long, default_value = "target/release/ipfs-kit")]
        ipfs_kit: PathBuf,
        /// Work directory (the daemon's repo).
        #[arg(long, default_value = "/tmp/ipfs-kit-bench")]
        work: PathBuf,
        /// Concurrent connections.
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Seconds per run.
        #[arg(long, default_value_t = 5)]
        secs: u64,
        /// Runs per transport (medians reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// A mixed soak at many connections: zero errors expected; daemon RSS before and after.
    Soak {
        /// The ipfs-kit binary (build it with --release).
        #[arg(long, default_value = "target/release/ipfs-kit")]
        ipfs_kit: PathBuf,
        /// Work directory (the daemon's repo).
        #[arg(long, default_value = "/tmp/ipfs-kit-bench")]
        work: PathBuf,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds.
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Mix adds into the RPC side (false: reads only).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        adds: bool,
        /// Rounds of `secs` on the same daemon (RSS is sampled after each).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// Read latency of a 256 KiB block and throughput of a file from each storage tier
    /// (memory, local disk, S3 on loopback: moto via IPFS_KIT_MOTO or s3rver via
    /// IPFS_KIT_S3RVER), tiers interleaved per round.
    Tiers {
        /// Directory on the disk under test.
        #[arg(long, default_value = "/tmp/ipfs-kit-bench")]
        work: PathBuf,
        /// MiB of the file read whole.
        #[arg(long, default_value_t = 64)]
        mib: usize,
        /// Single-block reads per tier and round.
        #[arg(long, default_value_t = 200)]
        reads: usize,
        /// Rounds (medians reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// The S3 server: moto or s3rver.
        #[arg(long, default_value = "moto")]
        server: String,
    },
    /// SHA-256 throughput (1 and 2 threads) and sequential durable write throughput.
    Machine {
        /// MiB per measurement.
        #[arg(long, default_value_t = 1024)]
        mib: usize,
        /// Directory on the disk under test.
        #[arg(long, default_value = "/tmp/ipfs-kit-bench")]
        work: PathBuf,
        /// Repetitions (medians reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Durable write and read of the same blocks with three store designs.
    Storage {
        /// MiB of 256 KiB blocks.
        #[arg(long, default_value_t = 256)]
        mib: usize,
        /// Number of 4 KiB blocks for the small-block case.
        #[arg(long, default_value_t = 10_000)]
        small: usize,
        /// Directory on the disk under test.
        #[arg(long, default_value = "/tmp/ipfs-kit-bench")]
        work: PathBuf,
        /// Repetitions (medians reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// ipfs-kit against Kubo 0.22, interleaved, fresh process and repo per measurement.
    Kubo {
        /// The ipfs-kit binary (build it with --release).
        #[arg(long, default_value = "target/release/ipfs-kit")]
        ipfs_kit: PathBuf,
        /// Python of the Kubo venv (shared/kubo/setup.sh).
        #[arg(long, default_value = "/tmp/kubo-work/venv/bin/python")]
        python: PathBuf,
        /// shared/kubo/bench.py.
        #[arg(long, default_value = "../shared/kubo/bench.py")]
        kubo_bench: PathBuf,
        /// Work directory (inputs, repos).
        #[arg(long, default_value = "/tmp/ipfs-kit-bench")]
        work: PathBuf,
        /// Operations: add, onlyhash, cat, tree.
        #[arg(long, value_delimiter = ',', default_value = "add,onlyhash,cat,tree")]
        ops: Vec<String>,
        /// Size of the random file, MiB.
        #[arg(long, default_value_t = 1024)]
        mib: usize,
        /// A/B pairs per operation.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
}

fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// The sha256ctr generator of shared/kubo/corpus_gen.py, so both sides read the same bytes.
fn write_sha256ctr(path: &Path, seed: &str, len: u64) -> Result<()> {
    if fs::metadata(path).map(|m| m.len() == len).unwrap_or(false) {
        return Ok(());
    }
    let mut f = std::io::BufWriter::with_capacity(1 << 20, File::create(path)?);
    let base = sha2::Sha256::new_with_prefix(seed.as_bytes());
    let mut left = len;
    let mut i = 0u64;
    while left > 0 {
        let d = base.clone().chain_update(i.to_le_bytes()).finalize();
        let n = left.min(32) as usize;
        f.write_all(&d[..n])?;
        left -= n as u64;
        i += 1;
    }
    f.flush()?;
    Ok(())
}

fn machine(mib: usize, work: &Path, runs: usize) -> Result<()> {
    fs::create_dir_all(work)?;
    let data: Vec<u8> = (0..(64usize << 20))
        .map(|i| (i * 31 + i / 7) as u8)
        .collect();
    let rounds = mib / 64;
    let load0 = loadavg();
    let (mut one, mut two, mut write) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(sha2::Sha256::digest(&data));
        }
        one.push(mib as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..rounds {
                        std::hint::black_box(sha2::Sha256::digest(&data));
                    }
                });
            }
        });
        two.push((2 * mib) as f64 / t.elapsed().as_secs_f64());
        let path = work.join("seqwrite.bin");
        let t = Instant::now();
        let mut f = File::create(&path)?;
        for _ in 0..rounds {
            f.write_all(&data)?;
        }
        f.sync_data()?;
        write.push(mib as f64 / t.elapsed().as_secs_f64());
        drop(f);
        fs::remove_file(&path)?;
    }
    let report = json!({
        "bench": "machine", "mib": mib, "runs": runs,
        "sha256_1core_mib_s": median(&mut one), "sha256_2cores_mib_s": median(&mut two),
        "seq_write_fdatasync_mib_s": median(&mut write),
        "loadavg_before": load0, "loadavg_after": loadavg(),
    });
    println!("{report}");
    Ok(())
}

/// Kubo's flatfs with sync on: one file per block, written to a temp name, fsynced, renamed.
fn flatfs_put(dir: &Path, blocks: &[Block]) -> Result<()> {
    for b in blocks {
        let key = b.cid().to_string();
        let shard = dir.join(&key[key.len() - 3..key.len() - 1]);
        fs::create_dir_all(&shard)?;
        let tmp = shard.join(format!(".tmp-{key}"));
        let mut f = File::create(&tmp)?;
        f.write_all(b.data())?;
        f.sync_all()?;
        fs::rename(&tmp, shard.join(format!("{key}.data")))?;
    }
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn flatfs_get(dir: &Path, blocks: &[Block]) -> Result<usize> {
    let mut n = 0;
    for b in blocks {
        let key = b.cid().to_string();
        let mut buf = Vec::new();
        File::open(
            dir.join(&key[key.len() - 3..key.len() - 1])
                .join(format!("{key}.data")),
        )?
        .read_to_end(&mut buf)?;
        n += buf.len();
    }
    Ok(n)
}

const KV: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("blocks");

fn kv_put(db: &redb::Database, blocks: &[Block]) -> Result<()> {
    let tx = db.begin_write()?;
    {
        let mut t = tx.open_table(KV)?;
        for b in blocks {
            t.insert(b.cid().hash().to_bytes().as_slice(), b.data().as_ref())?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn kv_get(db: &redb::Database, blocks: &[Block]) -> Result<usize> {
    let tx = db.begin_read()?;
    let t = tx.open_table(KV)?;
    let mut n = 0;
    for b in blocks {
        n += t
            .get(b.cid().hash().to_bytes().as_slice())?
            .map_or(0, |v| v.value().len());
    }
    Ok(n)
}

fn storage(mib: usize, small: usize, work: &Path, runs: usize) -> Result<()> {
    fs::create_dir_all(work)?;
    let big: Vec<Block> = (0..mib * 4)
        .map(|i| {
            let mut d = vec![0u8; 256 << 10];
            for (j, c) in d.chunks_mut(8).enumerate() {
                c.copy_from_slice(&((i as u64) << 32 | j as u64).to_le_bytes());
            }
            Block::encode(codec::RAW, HashAlg::Sha2_256, 1, d)
        })
        .collect();
    let tiny: Vec<Block> = (0..small)
        .map(|i| {
            Block::encode(
                codec::RAW,
                HashAlg::Sha2_256,
                1,
                format!("{i:04096}").into_bytes(),
            )
        })
        .collect();
    let load0 = loadavg();
    let mut results = serde_json::Map::new();
    for (label, blocks) in [("256KiB", &big), ("4KiB", &tiny)] {
        let bytes: usize = blocks.iter().map(|b| b.data().len()).sum();
        let mib_of = |s: f64| bytes as f64 / (1 << 20) as f64 / s;
        let mut w: [Vec<f64>; 3] = Default::default();
        let mut r: [Vec<f64>; 3] = Default::default();
        for _ in 0..runs {
            // Interleaved: the three designs take turns within each run.
            let dir = tempfile::tempdir_in(work)?;
            let t = Instant::now();
            flatfs_put(dir.path(), blocks)?;
            w[0].push(mib_of(t.elapsed().as_secs_f64()));
            let t = Instant::now();
            flatfs_get(dir.path(), blocks)?;
            r[0].push(mib_of(t.elapsed().as_secs_f64()));
            drop(dir);

            let dir = tempfile::tempdir_in(work)?;
            let db = redb::Database::create(dir.path().join("kv.redb"))?;
            let t = Instant::now();
            kv_put(&db, blocks)?;
            w[1].push(mib_of(t.elapsed().as_secs_f64()));
            let t = Instant::now();
            kv_get(&db, blocks)?;
            r[1].push(mib_of(t.elapsed().as_secs_f64()));
            drop(db);
            drop(dir);

            let dir = tempfile::tempdir_in(work)?;
            let store =
                FsBlockstore::open(dir.path(), FsConfig::default().with_verify_reads(false))?;
            let t = Instant::now();
            store.put_many(blocks.clone())?;
            w[2].push(mib_of(t.elapsed().as_secs_f64()));
            let t = Instant::now();
            for b in blocks.iter() {
                std::hint::black_box(store.get(b.cid())?);
            }
            r[2].push(mib_of(t.elapsed().as_secs_f64()));
        }
        for (i, name) in [
            "flatfs_fsync_per_block",
            "redb_block_bytes",
            "segments_redb_index",
        ]
        .iter()
        .enumerate()
        {
            results.insert(
                format!("{label}/{name}"),
                json!({"write_mib_s": median(&mut w[i]), "read_mib_s": median(&mut r[i])}),
            );
        }
    }
    let report = json!({
        "bench": "storage", "mib": mib, "small_blocks": small, "runs": runs,
        "results": results, "loadavg_before": load0, "loadavg_after": loadavg(),
    });
    println!("{report}");
    Ok(())
}

struct Timed {
    seconds: f64,
    cpu_s: f64,
    max_rss_kb: u64,
    stdout: String,
}

/// Runs a command under /usr/bin/time -v; wall time measured here, RSS and CPU from time.
fn timed(cmd: &mut Command, stdout_to_null: bool) -> Result<Timed> {
    let mut full = Command::new("/usr/bin/time");
    full.arg("-v").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            full.env(k, v);
        }
    }
    full.stdout(if stdout_to_null {
        Stdio::null()
    } else {
        Stdio::piped()
    })
    .stderr(Stdio::piped());
    let t = Instant::now();
    let out = full.output().with_context(|| format!("run {cmd:?}"))?;
    let seconds = t.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{cmd:?} failed: {err}");
    }
    let field = |name: &str| -> f64 {
        err.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(name)
                    .map(|v| v.trim().parse().unwrap_or(0.0))
            })
            .unwrap_or(0.0)
    };
    Ok(Timed {
        seconds,
        cpu_s: field("User time (seconds):") + field("System time (seconds):"),
        max_rss_kb: field("Maximum resident set size (kbytes):") as u64,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

fn make_tree(dir: &Path) -> Result<()> {
    if dir.join(".complete").exists() {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dir);
    let mut x: u64 = 0x1234_5678;
    for i in 0..10_000u32 {
        let sub = dir.join(format!("d{:02}", i % 100));
        fs::create_dir_all(&sub)?;
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 1024 + (x >> 33) as usize % 3073;
        let body: Vec<u8> = (0..len)
            .map(|j| ((j as u64 * 131 + x) >> 3) as u8)
            .collect();
        fs::write(sub.join(format!("f{i:05}.bin")), body)?;
    }
    fs::write(dir.join(".complete"), b"")?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn kubo(
    bin: &Path,
    python: &Path,
    kubo_bench: &Path,
    work: &Path,
    ops: &[String],
    mib: usize,
    runs: usize,
) -> Result<()> {
    fs::create_dir_all(work)?;
    let bin = fs::canonicalize(bin)
        .with_context(|| format!("{} (build with --release)", bin.display()))?;
    let file = work.join(format!("rand-{mib}MiB.bin"));
    write_sha256ctr(
        &file,
        &format!("ipfs-kit/bench/v1/rand-{mib}MiB"),
        (mib as u64) << 20,
    )?;
    let tree = work.join("tree-10000");
    make_tree(&tree)?;
    let kwork = work.join("kubo");
    fs::create_dir_all(&kwork)?;
    for op in ops {
        let input = if op == "tree" { &tree } else { &file };
        let kop = match op.as_str() {
            "add" | "tree" => "add",
            "onlyhash" => "onlyhash",
            "cat" => "get",
            other => bail!("unknown op {other}"),
        };
        let (mut ks, mut ys, mut kcpu, mut ycpu, mut krss, mut yrss) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let load0 = loadavg();
        for run in 0..runs {
            // A: Kubo, fresh process and repo; only the C call is timed by bench.py.
            let k = timed(
                Command::new(python)
                    .arg(kubo_bench)
                    .args(["one", "--op", kop, "--file"])
                    .arg(input)
                    .args(["--sync", "true", "--work"])
                    .arg(&kwork),
                false,
            )?;
            let kj: serde_json::Value =
                serde_json::from_str(k.stdout.lines().last().unwrap_or("{}"))?;
            let ksec = kj["seconds"].as_f64().context("kubo seconds")?;
            ks.push(ksec);
            kcpu.push(kj["cpu_s"].as_f64().unwrap_or(f64::NAN));
            krss.push(k.max_rss_kb as f64);
            // B: ipfs-kit, fresh repo; the whole process is timed (start-up included).
            let repo = tempfile::tempdir_in(work)?;
            let run_kit = |args: &[&str], null: bool| -> Result<Timed> {
                timed(
                    Command::new(&bin)
                        .arg("--repo-dir")
                        .arg(repo.path())
                        .args(args),
                    null,
                )
            };
            run_kit(&["init"], true)?;
            let path = input.to_str().context("utf-8 path")?;
            let y = match op.as_str() {
                "add" => run_kit(&["add", "-Q", path], false)?,
                "tree" => run_kit(&["add", "-Q", "-r", path], false)?,
                "onlyhash" => run_kit(&["add", "-Q", "-n", path], false)?,
                _ => {
                    let cid = run_kit(&["add", "-Q", path], false)?
                        .stdout
                        .trim()
                        .to_string();
                    run_kit(&["cat", &cid], true)?;
                    run_kit(&["cat", &cid], true)?
                }
            };
            ys.push(y.seconds);
            ycpu.push(y.cpu_s);
            yrss.push(y.max_rss_kb as f64);
            eprintln!("{op} run {run}: kubo {ksec:.3}s ipfs-kit {:.3}s", y.seconds);
        }
        let (km, ym) = (median(&mut ks), median(&mut ys));
        let size_mib = if op == "tree" { 0.0 } else { mib as f64 };
        let report = json!({
            "bench": "kubo", "op": op, "runs": runs, "mib": size_mib,
            "kubo_median_s": km, "ipfs_kit_median_s": ym, "speedup": km / ym,
            "kubo_mib_s": size_mib / km, "ipfs_kit_mib_s": size_mib / ym,
            "kubo_cpu_s": median(&mut kcpu), "ipfs_kit_cpu_s": median(&mut ycpu),
            "kubo_peak_rss_mib": median(&mut krss) / 1024.0, "ipfs_kit_peak_rss_mib": median(&mut yrss) / 1024.0,
            "kubo_all_s": ks, "ipfs_kit_all_s": ys,
            "loadavg_before": load0, "loadavg_after": loadavg(),
        });
        println!("{report}");
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::RpcCat {
            ipfs_kit,
            work,
            connections,
            secs,
            runs,
        } => http::rpc_cat(&ipfs_kit, &work, connections, secs, runs),
        Cmd::Soak {
            ipfs_kit,
            work,
            connections,
            secs,
            adds,
            rounds,
        } => http::soak(&ipfs_kit, &work, connections, secs, adds, rounds),
        Cmd::Machine { mib, work, runs } => machine(mib, &work, runs),
        Cmd::Tiers {
            work,
            mib,
            reads,
            runs,
            server,
        } => tiers::tiers(&work, mib, reads, runs, &server),
        Cmd::Storage {
            mib,
            small,
            work,
            runs,
        } => storage(mib, small, &work, runs),
        Cmd::Kubo {
            ipfs_kit,
            python,
            kubo_bench,
            work,
            ops,
            mib,
            runs,
        } => kubo(&ipfs_kit, &python, &kubo_bench, &work, &ops, mib, runs),
    }
}
