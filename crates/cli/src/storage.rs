//! `storage`: the repo's storage tiers (local disk, object storage), where a DAG's blocks live,
//! and moving a DAG between tiers. The same output through a daemon and offline: both build
//! the RPC API's JSON, and one printer writes it.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Subcommand;
use ipfs_kit_node::{migrated_report, rebalance_report, Progress, Repo};
use serde_json::{json, Value};

use crate::remote::Api;

#[derive(Subcommand)]
pub enum StorageCmd {
    /// Each tier, hottest first (memory in a daemon, the local disk, object storage from
    /// [object_storage] in the config): blocks, bytes, capacity, reads that hit and missed,
    /// read latency percentiles (p50, p99, at power-of-two resolution), blocks moved in and
    /// out since the node started; then the migrations still pending. Counting an object
    /// storage tier lists its bucket; one that cannot be reached says why.
    Tiers,
    /// Where each block of a CID's DAG lives: CID, size, heat (recent reads, each counting
    /// less as it ages) and tiers; then a total per tier.
    Stat {
        /// A CID or IPFS path.
        path: String,
    },
    /// Move a CID's whole DAG into a tier (`local`, `s3`): each block is copied, read back and
    /// re-hashed in the target, and only then deleted from the other tiers, so an interruption
    /// at any point loses nothing. A migration that fails part way (object storage
    /// unreachable, a crash) is kept: the daemon retries it every tiering.interval until it
    /// completes; `storage tiers` lists it and `--cancel` drops it.
    Migrate {
        /// A CID or IPFS path.
        path: String,
        /// The target tier.
        #[arg(required_unless_present = "cancel")]
        tier: Option<String>,
        /// Drop the pending migration of this CID instead (its blocks stay where they are).
        #[arg(long, conflicts_with = "tier")]
        cancel: bool,
        /// Move the whole DAG (the default); `--recursive=false` moves the root block alone.
        #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
        recursive: bool,
        /// Print each step on stderr as it completes (on by default when stderr is a
        /// terminal): blocks copied so far, the copies verified, each tier's copies removed.
        #[arg(long)]
        progress: bool,
    },
    /// Run one rebalance pass now (the daemon runs one every tiering.interval): past
    /// tiering.high_watermark of tiering.local_capacity, the coldest local blocks move to
    /// object storage until the local disk is under tiering.low_watermark; then, past
    /// object_storage.high_watermark of object_storage.capacity, the coldest blocks no pin
    /// keeps are deleted from the bucket (left to the network) until under its low watermark.
    Rebalance {
        /// Print each step on stderr as it completes (on by default on a terminal).
        #[arg(long)]
        progress: bool,
    },
    /// Show the tiering policy, the config's [tiering] section, after setting KEY to VALUE
    /// when given (`storage policy PromoteAt 3`; the same as `config set tiering.promote_at
    /// 3`). A running daemon applies it at its next pass.
    Policy {
        /// A [tiering] setting, in Kubo style (`PromoteAt`) or ours (`promote_at`).
        #[arg(requires = "value")]
        key: Option<String>,
        /// Its new value (JSON when it parses as JSON, else a string).
        value: Option<String>,
    },
}

/// Runs `cmd` on the repo directly (no daemon).
pub fn offline(repo: &Repo, cmd: StorageCmd, out: &mut dyn Write) -> Result<()> {
    let v = match &cmd {
        StorageCmd::Tiers => serde_json::to_value(repo.storage_tiers()?)?,
        StorageCmd::Stat { path } => {
            json!({ "Blocks": repo.storage_stat(path)?.into_iter().map(|p| json!({
            "Cid": p.cid.to_string(), "Size": p.size, "Tiers": p.tiers, "Heat": p.heat,
        })).collect::<Vec<_>>() })
        }
        StorageCmd::Migrate {
            path, cancel: true, ..
        } => json!({ "Cancelled": repo.cancel_migration(path)? }),
        StorageCmd::Migrate {
            path,
            tier,
            progress,
            recursive,
            ..
        } => serde_json::to_value(migrated_report(repo.storage_migrate(
            path,
            tier.as_deref().unwrap_or_default(),
            *recursive,
            &mut reporter(*progress),
        )?))?,
        StorageCmd::Rebalance { progress } => serde_json::to_value(rebalance_report(
            repo.storage_rebalance(&mut reporter(*progress))?,
        ))?,
        StorageCmd::Policy { key, value } => {
            let value = value
                .as_ref()
                .map(|v| serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string())));
            repo.storage_policy(key.as_deref().zip(value))?
        }
    };
    print(&cmd, &v, out)
}

/// Prints each step of a move on stderr when asked or on a terminal.
fn reporter(asked: bool) -> impl FnMut(Progress) {
    let show = asked || std::io::stderr().is_terminal();
    move |p| {
        if show {
            eprintln!("{}", step(&p));
        }
    }
}

/// Runs `cmd` through a daemon's API.
pub fn remote(api: &Api, cmd: StorageCmd, out: &mut dyn Write) -> Result<()> {
    let v = match &cmd {
        StorageCmd::Tiers => api.json("storage/tiers", &[])?,
        StorageCmd::Stat { path } => api.json("storage/stat", &[("arg", path.clone())])?,
        StorageCmd::Migrate {
            path, cancel: true, ..
        } => api.json(
            "storage/migrate",
            &[("arg", path.clone()), ("cancel", "true".into())],
        )?,
        StorageCmd::Migrate {
            path,
            tier,
            recursive,
            ..
        } => api.json(
            "storage/migrate",
            &[
                ("arg", path.clone()),
                ("tier", tier.clone().unwrap_or_default()),
                ("recursive", recursive.to_string()),
            ],
        )?,
        StorageCmd::Rebalance { .. } => api.json("storage/rebalance", &[])?,
        StorageCmd::Policy { key, value } => {
            let args: Vec<(&str, String)> = key
                .iter()
                .chain(value.iter())
                .map(|a| ("arg", a.clone()))
                .collect();
            api.json("storage/policy", &args)?
        }
    };
    print(&cmd, &v, out)
}

/// One progress line of `storage migrate`.
fn step(p: &Progress) -> String {
    match p {
        Progress::Copied { done, total, bytes } => {
            format!("copied {done} of {total} blocks ({bytes} bytes)")
        }
        Progress::Verified { blocks } => format!("verified the {blocks} copies"),
        Progress::Removed { tier, blocks } => format!("removed {blocks} blocks from {tier}"),
    }
}

fn print(cmd: &StorageCmd, v: &Value, out: &mut dyn Write) -> Result<()> {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    match cmd {
        StorageCmd::Tiers => {
            writeln!(
                out,
                "{:<8} {:>9} {:>14} {:>14} {:>9} {:>9} {:>6} {:>8} {:>8} {:>9} {:>9}",
                "TIER",
                "BLOCKS",
                "BYTES",
                "CAPACITY",
                "HITS",
                "MISSES",
                "HIT%",
                "P50",
                "P99",
                "MOVED-IN",
                "MOVED-OUT"
            )?;
            for t in v["Tiers"].as_array().into_iter().flatten() {
                let name = t["Name"].as_str().unwrap_or_default();
                if let Some(e) = t["Error"].as_str() {
                    writeln!(out, "{name:<8} unreachable: {e}")?;
                    continue;
                }
                let capacity = t["Capacity"]
                    .as_u64()
                    .map_or("-".to_string(), |c| c.to_string());
                let ratio = t["HitRatio"]
                    .as_f64()
                    .map_or("-".to_string(), |r| format!("{:.1}", r * 100.0));
                let latency = |q: &str| t["LatencyUs"][q].as_u64().map_or("-".to_string(), micros);
                writeln!(
                    out,
                    "{name:<8} {:>9} {:>14} {capacity:>14} {:>9} {:>9} {ratio:>6} {:>8} {:>8} {:>9} {:>9}",
                    n(&t["Blocks"]),
                    n(&t["Bytes"]),
                    n(&t["Hits"]),
                    n(&t["Misses"]),
                    latency("P50"),
                    latency("P99"),
                    n(&t["MovedInBlocks"]),
                    n(&t["MovedOutBlocks"]),
                )?;
            }
            for p in v["Pending"].as_array().into_iter().flatten() {
                let what = if p["Recursive"].as_bool() == Some(false) {
                    " (the block alone)"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "pending: {}{what} to {} (retried by the daemon; storage migrate --cancel drops it)",
                    p["Root"].as_str().unwrap_or_default(),
                    p["Tier"].as_str().unwrap_or_default()
                )?;
            }
        }
        StorageCmd::Stat { .. } => {
            let mut per_tier: Vec<(String, u64)> = Vec::new();
            let (mut blocks, mut bytes, mut nowhere) = (0u64, 0u64, 0u64);
            for b in v["Blocks"].as_array().into_iter().flatten() {
                let tiers: Vec<&str> = b["Tiers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                blocks += 1;
                bytes += n(&b["Size"]);
                if tiers.is_empty() {
                    nowhere += 1;
                }
                for t in &tiers {
                    match per_tier.iter_mut().find(|(name, _)| name == t) {
                        Some((_, count)) => *count += 1,
                        None => per_tier.push((t.to_string(), 1)),
                    }
                }
                let tiers = if tiers.is_empty() {
                    "-".to_string()
                } else {
                    tiers.join(",")
                };
                let cid = b["Cid"].as_str().unwrap_or_default();
                let heat = b["Heat"].as_f64().unwrap_or(0.0);
                writeln!(out, "{cid} {} {heat:.2} {tiers}", n(&b["Size"]))?;
            }
            let mut total = format!("total: {blocks} blocks, {bytes} bytes");
            for (t, count) in per_tier {
                total.push_str(&format!("; {t}: {count}"));
            }
            if nowhere > 0 {
                total.push_str(&format!("; in no tier: {nowhere}"));
            }
            writeln!(out, "{total}")?;
        }
        StorageCmd::Rebalance { .. } => {
            match v["To"].as_str() {
                Some(to) => writeln!(
                    out,
                    "moved {} blocks ({} bytes) to {to}: the local disk holds {} block bytes, {} before",
                    n(&v["Copied"]),
                    n(&v["Bytes"]),
                    n(&v["After"]),
                    n(&v["Before"])
                )?,
                None => writeln!(
                    out,
                    "nothing to move: the local disk holds {} block bytes",
                    n(&v["Before"])
                )?,
            }
            if n(&v["Evicted"]) > 0 {
                writeln!(
                    out,
                    "deleted {} unpinned blocks ({} bytes) from object storage, past its high watermark",
                    n(&v["Evicted"]),
                    n(&v["EvictedBytes"])
                )?;
            }
        }
        StorageCmd::Policy { .. } => writeln!(out, "{}", serde_json::to_string_pretty(v)?)?,
        StorageCmd::Migrate {
            path, cancel: true, ..
        } => match v["Cancelled"].as_bool() {
            Some(true) => writeln!(out, "cancelled the pending migration of {path}")?,
            _ => writeln!(out, "no migration of {path} is pending")?,
        },
        StorageCmd::Migrate { tier, .. } => writeln!(
            out,
            "moved {} blocks ({} bytes) to {}; {} were there already; {} other copies removed",
            n(&v["Copied"]),
            n(&v["Bytes"]),
            tier.as_deref().unwrap_or_default(),
            n(&v["Already"]),
            n(&v["Removed"])
        )?,
    }
    Ok(())
}

/// A latency in microseconds, short: `512us`, `1.0ms`, `2.1s`.
fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.1}s", us as f64 / 1e6),
    }
}
