//! The storage tiers end to end: a repo with an object storage tier on a real S3 server
//! (moto or s3rver, see `ipfs_kit_tiered::moto`), a DAG moved there and back, offline and
//! through a daemon, readable all along, and the server going away and coming back.

use ipfs_kit_tiered::moto::{MotoServer, S3rver};

use crate::{eventually, random_bytes, Daemon, Node};

/// A repo whose `[object_storage]` is a fresh bucket of `s3`.
fn node_with_bucket(s3: &MotoServer, bucket: &str) -> Node {
    s3.create_bucket(bucket);
    node_with_object_storage(&s3.endpoint(), bucket, ("test", "test"))
}

/// A repo whose `[object_storage]` is `bucket` at `endpoint`, with these credentials.
fn node_with_object_storage(endpoint: &str, bucket: &str, (key, secret): (&str, &str)) -> Node {
    let node = Node::new();
    for (setting, value) in [
        ("object_storage.bucket", bucket),
        ("object_storage.endpoint", endpoint),
        ("object_storage.access_key_id", key),
        ("object_storage.secret_access_key", secret),
    ] {
        node.ok(&["config", "set", setting, &format!("{value:?}")]);
    }
    node
}

/// Each block's tiers, from `storage stat` (the lines before the total).
fn tiers_of(node: &Node, cid: &str) -> Vec<String> {
    node.ok(&["storage", "stat", cid])
        .lines()
        .filter(|l| !l.starts_with("total:"))
        .map(|l| l.rsplit(' ').next().expect("tiers").to_string())
        .collect()
}

#[test]
fn a_dag_moves_to_object_storage_and_back_and_stays_readable() {
    let Some(s3) = MotoServer::start() else {
        return;
    };
    let node = node_with_bucket(&s3, "kit");
    let data = random_bytes(3_000_000, 3);
    let file = node.dir.path().join("data.bin");
    std::fs::write(&file, &data).expect("write");
    let cid = node.ok(&["add", "-Q", file.to_str().expect("utf-8")]);
    let cid = cid.trim();
    let tiers = tiers_of(&node, cid);
    assert!(
        tiers.len() > 1 && tiers.iter().all(|t| t == "local"),
        "{tiers:?}"
    );

    // Down to the bucket: nothing of it stays on the local disk, and it reads the same.
    let moved = node.ok(&["storage", "migrate", cid, "s3"]);
    assert!(
        moved.starts_with(&format!("moved {} blocks", tiers.len())),
        "{moved}"
    );
    assert!(tiers_of(&node, cid).iter().all(|t| t == "s3"));
    let listing = node.ok(&["storage", "tiers"]);
    let local = listing
        .lines()
        .find(|l| l.starts_with("local"))
        .expect("local tier");
    assert_eq!(local.split_whitespace().nth(1), Some("0"), "{listing}");
    assert_eq!(node.run(&["cat", cid]).stdout, data);
    // Pinned, so garbage collection keeps it in the bucket too; the repo verifies.
    node.ok(&["repo", "gc"]);
    node.ok(&["repo", "verify"]);
    assert_eq!(node.run(&["cat", cid]).stdout, data);
    node.fails(&["storage", "migrate", cid, "tape"], "no such tier");

    // Back up through a daemon, which reads it the same way.
    let daemon = Daemon::start(&node);
    // A read through the daemon misses the local disk and hits the bucket: each tier's
    // figures count it, in `storage tiers` and in the Prometheus metrics.
    assert_eq!(node.run(&["cat", cid]).stdout, data);
    let listing = node.ok(&["storage", "tiers"]);
    let column = |tier: &str, n: usize| -> u64 {
        let row = listing
            .lines()
            .find(|l| l.starts_with(&format!("{tier} ")))
            .unwrap_or_else(|| panic!("no {tier} row in {listing}"));
        row.split_whitespace()
            .nth(n)
            .expect("a column")
            .parse()
            .expect("a number")
    };
    // HITS and MISSES (some blocks were read often enough before to move up on this read).
    assert!(column("s3", 4) > 0, "{listing}");
    assert!(column("local", 5) > 0, "{listing}");
    let out = std::process::Command::new("curl")
        .args(["-s", &format!("{}/debug/metrics/prometheus", daemon.url)])
        .output()
        .expect("curl");
    let metrics = String::from_utf8_lossy(&out.stdout);
    for line in [
        "ipfs_kit_tier_reads_total{tier=\"s3\",outcome=\"hit\"}",
        "ipfs_kit_tier_reads_total{tier=\"local\",outcome=\"miss\"}",
        "ipfs_kit_tier_read_latency_seconds{tier=\"s3\",quantile=\"0.5\"}",
        "ipfs_kit_tier_read_bytes_total{tier=\"s3\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from {metrics}");
    }
    let policy = node.ok(&["storage", "policy", "promote_at", "7"]);
    assert!(policy.contains("\"PromoteAt\": 7.0"), "{policy}");
    node.fails(&["storage", "policy", "LowWatermark", "2"], "watermarks");
    let moved = node.ok(&["storage", "migrate", cid, "local"]);
    assert!(moved.contains("to local"), "{moved}");
    assert!(tiers_of(&node, cid).iter().all(|t| t == "local"));
    assert_eq!(node.run(&["cat", cid]).stdout, data);
    // One block alone moves with --recursive=false: the root, not its children.
    node.ok(&["storage", "migrate", "--recursive=false", cid, "s3"]);
    let places = tiers_of(&node, cid);
    assert_eq!(places[0], "s3", "{places:?}");
    assert!(places[1..].iter().all(|t| t == "local"), "{places:?}");
    assert_eq!(node.run(&["cat", cid]).stdout, data);
    daemon.stop();
}

/// Runs `storage migrate PATH TIER --progress` and kills it with SIGKILL as soon as it has
/// reported `steps` steps on stderr; whether it was still running then.
fn migrate_killed_after(node: &Node, cid: &str, tier: &str, steps: usize) -> bool {
    use std::io::BufRead;
    let mut child = node
        .cmd(&["storage", "migrate", cid, tier, "--progress"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = 0;
    for line in std::io::BufReader::new(stderr).lines() {
        if line.is_err() {
            break;
        }
        seen += 1;
        if seen == steps {
            break;
        }
    }
    let running = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// kill -9 at every step of a migration: after the first batch of copies (the second is under
/// way), after the last, after the copies were verified (the deletes under way), and going
/// back up after the first batch. After each kill every block is still in some tier, whole:
/// the file reads back, the repo verifies, and the migration, run again, completes.
#[test]
fn kill_9_at_every_step_of_a_migration_loses_nothing() {
    let Some(s3) = MotoServer::start() else {
        return;
    };
    // 40 MiB: two copy batches of at most 32 MiB, so a kill can land between them.
    let data = random_bytes(40 << 20, 0x2545_f491_4f6c_dd1d);
    for (i, (to, from, steps)) in [
        ("s3", None, 1),
        ("s3", None, 2),
        ("s3", None, 3),
        ("local", Some("s3"), 1),
        ("local", Some("s3"), 3),
    ]
    .into_iter()
    .enumerate()
    {
        let node = node_with_bucket(&s3, &format!("crash{i}"));
        let file = node.dir.path().join("data.bin");
        std::fs::write(&file, &data).expect("write");
        let cid = node.ok(&["add", "-Q", file.to_str().expect("utf-8")]);
        let cid = cid.trim();
        if let Some(from) = from {
            node.ok(&["storage", "migrate", cid, from]);
        }
        let killed = migrate_killed_after(&node, cid, to, steps);
        let stat = node.ok(&["storage", "stat", cid]);
        assert!(!stat.contains("in no tier"), "after step {steps}: {stat}");
        assert!(
            node.run(&["cat", cid]).stdout == data,
            "after step {steps} to {to}: the file reads back different"
        );
        node.ok(&["repo", "verify"]);
        node.ok(&["storage", "migrate", cid, to]);
        assert!(
            tiers_of(&node, cid).iter().all(|t| t == to),
            "a rerun after step {steps} (killed: {killed}) did not finish the move to {to}"
        );
    }
}

/// Heat survives restarts (each `cat` below is its own process) and decides promotion: a
/// block in the bucket read often enough comes back to the local disk by itself.
#[test]
fn a_block_read_often_moves_back_to_the_local_disk() {
    let Some(s3) = MotoServer::start() else {
        return;
    };
    let node = node_with_bucket(&s3, "warm");
    node.ok(&["config", "set", "tiering.promote_at", "3"]);
    let file = node.dir.path().join("small.txt");
    std::fs::write(&file, b"read me often\n").expect("write");
    let cid = node.ok(&[
        "add",
        "-Q",
        "--cid-version",
        "1",
        file.to_str().expect("utf-8"),
    ]);
    let cid = cid.trim();
    node.ok(&["storage", "migrate", cid, "s3"]);
    let heat = |node: &Node| -> f64 {
        let stat = node.ok(&["storage", "stat", cid]);
        let line = stat.lines().next().expect("a block");
        line.split(' ')
            .nth(2)
            .expect("heat")
            .parse()
            .expect("a number")
    };
    assert_eq!(heat(&node), 0.0, "the migration is not an access");
    // Nor are the walks of garbage collection and pin checks, however many.
    for _ in 0..4 {
        node.ok(&["repo", "gc"]);
        node.ok(&["pin", "verify"]);
    }
    assert_eq!(heat(&node), 0.0, "gc and pin verify are not accesses");
    assert_eq!(tiers_of(&node, cid), vec!["s3"]);
    for reads in 1..=2 {
        assert_eq!(node.run(&["cat", cid]).stdout, b"read me often\n");
        assert_eq!(tiers_of(&node, cid), vec!["s3"], "after {reads} reads");
        assert!(
            heat(&node) > f64::from(reads) - 0.01,
            "heat kept across processes"
        );
    }
    assert_eq!(node.run(&["cat", cid]).stdout, b"read me often\n");
    assert_eq!(
        tiers_of(&node, cid),
        vec!["local"],
        "the third read promotes it"
    );
}

/// Demotion by watermarks: past the high watermark of the local capacity, the coldest blocks
/// move to the bucket until the local disk is under the low one, the hot file staying; with
/// `pins_stay_local`, only unpinned blocks move.
#[test]
fn the_coldest_blocks_move_out_when_the_local_disk_passes_its_watermark() {
    let Some(s3) = MotoServer::start() else {
        return;
    };
    let node = node_with_bucket(&s3, "full");
    node.config_set(&[
        ("tiering.local_capacity", "\"2MiB\""),
        // Low first: every config set must leave a valid config (low <= high).
        ("tiering.low_watermark", "0.35"),
        ("tiering.high_watermark", "0.5"),
    ]);
    let add = |name: &str, pin: bool| node.add_generated(name, 600 * 1024, pin);
    let (hot, cold1, cold2) = (add("hot", true), add("cold1", true), add("cold2", true));
    for _ in 0..3 {
        assert!(node.run(&["cat", &hot]).status.success());
    }
    // Under the watermark nothing moves; 1.8 MB against 1 MiB is over it.
    let out = node.ok(&["storage", "rebalance"]);
    assert!(out.starts_with("moved "), "{out}");
    let after: f64 = out
        .split("holds ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the bytes left");
    assert!(after <= 0.35 * f64::from(2 << 20), "{out}");
    assert!(
        tiers_of(&node, &hot).iter().all(|t| t == "local"),
        "the hot file stays: {out}"
    );
    // Cold blocks went, the largest first (the small roots may be all that is left), and
    // read back through the bucket.
    for cold in [&cold1, &cold2] {
        assert!(tiers_of(&node, cold).iter().any(|t| t == "s3"), "{out}");
        assert_eq!(node.run(&["cat", cold]).stdout.len(), 600 * 1024);
    }
    assert!(node
        .ok(&["storage", "rebalance"])
        .starts_with("nothing to move"));

    // With pins kept local, only the unpinned file goes.
    node.ok(&["storage", "migrate", &cold1, "local"]);
    node.ok(&["storage", "migrate", &cold2, "local"]);
    node.ok(&["config", "set", "tiering.pins_stay_local", "true"]);
    let loose = add("loose", false);
    node.ok(&["storage", "rebalance"]);
    assert!(tiers_of(&node, &loose).iter().all(|t| t == "s3"));
    for pinned in [&hot, &cold1, &cold2] {
        assert!(tiers_of(&node, pinned).iter().all(|t| t == "local"));
    }
    let policy = node.ok(&["storage", "policy"]);
    assert!(policy.contains("\"PinsStayLocal\": true"), "{policy}");
}

/// Object storage going away in the middle of a migration and coming back: the migration
/// fails naming the tier and stays pending; meanwhile everything that does not need the
/// bucket works (reads of local content, add, pin, repo stat, storage tiers); once the server
/// is back (s3rver, killed and restarted with its directory: nothing acknowledged is lost),
/// the daemon completes the migration by itself.
#[test]
fn a_migration_cut_short_by_object_storage_going_away_resumes_when_it_is_back() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut s3) = S3rver::start(dir.path(), "kit") else {
        return;
    };
    let node = node_with_object_storage(&s3.endpoint(), "kit", S3rver::CREDENTIALS);
    node.ok(&["config", "set", "tiering.interval", "\"1s\""]);
    // Over 32 MiB: the migration copies in two batches, and the server dies after the first.
    let data = random_bytes(40_000_000, 40);
    let file = node.dir.path().join("big.bin");
    std::fs::write(&file, &data).expect("write");
    let cid = node.ok(&["add", "-Q", file.to_str().expect("utf-8")]);
    let cid = cid.trim();

    let mut child = node
        .cmd(&["storage", "migrate", cid, "s3", "--progress"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("a progress line");
    assert!(first.starts_with("copied "), "{first}");
    s3.kill();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
    assert!(!child.wait().expect("wait").success(), "{rest}");
    assert!(rest.contains("the s3 tier: "), "{rest}");
    assert!(rest.contains("is kept"), "{rest}");

    // The bucket is gone; what does not need it works.
    let tiers = node.ok(&["storage", "tiers"]);
    assert!(
        tiers.contains("s3       unreachable: the s3 tier: "),
        "{tiers}"
    );
    assert!(tiers.contains(&format!("pending: {cid} to s3")), "{tiers}");
    assert_eq!(node.run(&["cat", cid]).stdout, data);
    let other = node.ok(&[
        "add",
        "-Q",
        "--pin=false",
        node.repo().join("config.toml").to_str().expect("utf-8"),
    ]);
    node.ok(&["pin", "add", other.trim()]);
    node.ok(&["repo", "stat"]);

    // The daemon retries every second while the server is down, and finishes once it is up.
    let daemon = Daemon::start(&node);
    assert!(node.ok(&["storage", "tiers"]).contains("pending: "));
    s3.restart();
    eventually("the pending migration completes", || {
        (!node.ok(&["storage", "tiers"]).contains("pending: ")).then_some(())
    });
    assert!(tiers_of(&node, cid).iter().all(|t| t == "s3"));
    assert_eq!(node.run(&["cat", cid]).stdout, data);
    let tiers = node.ok(&["storage", "tiers"]);
    let s3_row = tiers
        .lines()
        .find(|l| l.starts_with("s3 "))
        .expect("s3 row");
    assert!(!s3_row.contains("unreachable"), "{tiers}");
    daemon.stop();
    node.ok(&["repo", "verify"]);
}

/// A volatile bucket (`object_storage.volatile`: it may expire objects by itself): pinned
/// content moved there keeps its local copy, unpinned content moves; pinning content that only
/// the bucket holds brings it back to the local disk. Every pin keeps a durable copy.
#[test]
fn pins_keep_a_durable_copy_when_the_bucket_is_volatile() {
    let Some(s3) = MotoServer::start() else {
        return;
    };
    let node = node_with_bucket(&s3, "volatile");
    node.ok(&["config", "set", "object_storage.volatile", "true"]);
    let pinned = node.add_generated("pinned.bin", 700_000, true);
    let loose = node.add_generated("loose.bin", 700_000, false);
    node.ok(&["storage", "migrate", &pinned, "s3"]);
    node.ok(&["storage", "migrate", &loose, "s3"]);
    assert!(tiers_of(&node, &pinned).iter().all(|t| t == "local,s3"));
    assert!(tiers_of(&node, &loose).iter().all(|t| t == "s3"));
    node.ok(&["pin", "add", &loose]);
    assert!(tiers_of(&node, &loose).iter().all(|t| t == "local"));
    // A demotion pass leaves pinned blocks alone too: moving them would free nothing.
    let policy = node.ok(&["storage", "policy", "LocalCapacity", "1KiB"]);
    assert!(policy.contains("\"LocalCapacity\": \"1KiB\""), "{policy}");
    node.fails(
        &["storage", "policy", "Capacity", "1KiB"],
        "no tiering setting",
    );
    node.ok(&["storage", "rebalance"]);
    assert!(tiers_of(&node, &loose).iter().all(|t| t == "local"));
}

/// A bucket with a capacity: past its high watermark, a rebalance pass deletes the coldest
/// blocks in it that nothing keeps (unpinned: the network can serve them again), never pinned
/// ones, even when that leaves it over.
#[test]
fn a_full_bucket_lets_go_of_unpinned_blocks_only() {
    let Some(s3) = MotoServer::start() else {
        return;
    };
    let node = node_with_bucket(&s3, "capped");
    node.config_set(&[
        ("object_storage.capacity", "\"1MB\""),
        ("object_storage.low_watermark", "0.3"),
        ("object_storage.high_watermark", "0.5"),
    ]);
    let pinned = node.add_generated("pinned.bin", 600_000, true);
    let loose = node.add_generated("loose.bin", 600_000, false);
    for cid in [&pinned, &loose] {
        node.ok(&["storage", "migrate", cid, "s3"]);
    }
    let out = node.ok(&["storage", "rebalance"]);
    assert!(out.contains("deleted "), "{out}");
    node.fails(&["cat", &loose], "not found");
    assert!(tiers_of(&node, &pinned).iter().all(|t| t == "s3"));
    assert_eq!(node.run(&["cat", &pinned]).stdout.len(), 600_000);
    node.ok(&["pin", "verify"]);
    // Only pinned content is left: the next pass has nothing to delete.
    assert!(!node.ok(&["storage", "rebalance"]).contains("deleted "));
}
