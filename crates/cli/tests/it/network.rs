//! Network commands between two daemons on loopback (`ping`, `stats bw`, `id`, providing), and
//! what `init --profile` writes (a public-profile node is never started here).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::{Daemon, Node};

/// A DHT-server daemon of `node` (see [`Daemon`]).
fn online(node: &Node) -> Daemon {
    Daemon::start_with(node, &["--routing", "dhtserver"])
}

impl Daemon {
    /// POSTs `api/v0/path`; (status, body).
    fn rpc(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-X", "POST", "-w", "\n%{http_code}"])
            .arg(format!("{}/api/v0/{path}", self.url))
            .output()
            .expect("curl");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let (body, status) = text.rsplit_once('\n').expect("status line");
        (status.parse().expect("status"), body.to_string())
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.rpc(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("json")
    }
}

fn lines(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn ping_bandwidth_id_and_providing_between_daemons() {
    let (a, b) = (Node::new(), Node::new());
    let file = a.dir.path().join("data.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &data).expect("write");
    let cid = a
        .ok(&["add", "-Q", file.to_str().expect("path")])
        .trim()
        .to_string();
    let (da, db) = (online(&a), online(&b));
    let a_id = da.json("id")["ID"].as_str().expect("ID").to_string();
    let b_id = db.json("id")["ID"].as_str().expect("ID").to_string();
    let b_addr = b
        .ok(&["swarm", "addrs", "local", "--id"])
        .lines()
        .next()
        .expect("an address")
        .to_string();
    a.ok(&["swarm", "connect", &b_addr]);

    // id: the live protocol list (a DHT server answers the DHT), the agent.
    let id = da.json("id");
    let protocols: Vec<&str> = id["Protocols"]
        .as_array()
        .expect("protocols")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    for p in [
        "/ipfs/kad/1.0.0",
        "/ipfs/bitswap/1.2.0",
        "/libp2p/autonat/1.0.0",
    ] {
        assert!(protocols.contains(&p), "{p} not in {protocols:?}");
    }
    assert!(!protocols.contains(&"/libp2p/circuit/relay/0.2.0/hop"));
    assert!(id["AgentVersion"]
        .as_str()
        .expect("agent")
        .starts_with("ipfs-kit/"));

    // ping: Kubo's JSON lines over the API, Kubo's text from the CLI, Kubo's refusals.
    let (status, body) = da.rpc(&format!("ping?arg={b_id}&count=2"));
    assert_eq!(status, 200, "{body}");
    let l = lines(&body);
    assert_eq!(l.len(), 4, "{body}");
    assert_eq!(l[0]["Text"], format!("PING {b_id}."));
    assert!(l[1]["Success"].as_bool().expect("success") && l[1]["Time"].as_u64() > Some(0));
    assert_eq!(l[1]["Text"], "");
    assert!(l[3]["Text"]
        .as_str()
        .expect("text")
        .starts_with("Average latency: "));
    let out = a.ok(&["ping", "-n", "1", &b_id]);
    let text: Vec<&str> = out.lines().collect();
    assert_eq!(text[0], format!("PING {b_id}."));
    assert!(text[1].starts_with("Pong received: time="), "{out}");
    let (status, body) = da.rpc(&format!("ping?arg={a_id}"));
    assert!(status == 500 && body.contains("can't ping self"), "{body}");
    let (status, body) = da.rpc(&format!("ping?arg={b_id}&count=0"));
    assert!(
        status == 500 && body.contains("ping count must be greater than 0, was 0"),
        "{body}"
    );

    // stats bw: b fetched the file over bitswap from a.
    let fetched = b.run(&["cat", &cid]);
    assert!(fetched.status.success() && fetched.stdout == data);
    let bw = db.json("stats/bw?proto=/ipfs/bitswap/1.2.0");
    assert!(bw["TotalIn"].as_u64() >= Some(data.len() as u64), "{bw}");
    assert!(bw["RateIn"].is_f64() || bw["RateIn"].is_u64());
    let from_a = db.json(&format!("stats/bw?peer={a_id}"));
    assert!(from_a["TotalIn"].as_u64() >= bw["TotalIn"].as_u64());
    let total = db.json("stats/bw");
    assert!(total["TotalIn"].as_u64() >= from_a["TotalIn"].as_u64());
    let (status, body) = db.rpc(&format!("stats/bw?peer={a_id}&proto=/ipfs/bitswap/1.2.0"));
    assert!(status == 500 && body.contains("only specify peer OR protocol"));
    let out = b.ok(&["stats", "bw", "--proto", "/ipfs/bitswap/1.2.0"]);
    assert!(out.starts_with("Bandwidth\nTotalIn: "), "{out}");
    // --poll streams one object per interval; three are read, then the client leaves.
    let mut poll = Command::new("curl")
        .args(["-s", "-N", "-X", "POST"])
        .arg(format!(
            "{}/api/v0/stats/bw?poll=true&interval=10ms",
            db.url
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let mut polled = BufReader::new(poll.stdout.take().expect("stdout")).lines();
    for _ in 0..3 {
        let line = polled.next().expect("a line").expect("read");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert!(v["TotalIn"].as_u64() >= total["TotalIn"].as_u64());
    }
    let _ = poll.kill();
    let _ = poll.wait();

    // Providing: only what is stored; then the other daemon finds a as a provider.
    let missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    let (status, body) = da.rpc(&format!("routing/provide?arg={missing}"));
    assert!(
        status == 500 && body.contains("not found locally"),
        "{body}"
    );
    let (status, body) = da.rpc(&format!("routing/provide?arg={cid}&recursive=true"));
    assert_eq!(status, 200, "{body}");
    // b provides the blocks it fetched too (strategy "all"): a must be among the providers.
    let found = b.ok(&["routing", "findprovs", "-n", "2", &cid]);
    assert!(found.lines().any(|l| l == a_id), "{found}");
    let (status, body) = da.rpc("bitswap/reprovide");
    assert_eq!(status, 200, "{body}");
    let stat = da.json("stats/provide");
    assert!(stat["TotalProvides"].as_u64() >= Some(2), "{stat}");
    assert!(stat["LastReprovideBatchSize"].as_u64() >= Some(2), "{stat}");
    let out = a.ok(&["stats", "provide"]);
    assert!(out.starts_with("TotalProvides:"), "{out}");
    // The DHT store's figures: a provides its blocks (as a DHT client it stores no one
    // else's records).
    let out = Command::new("curl")
        .args(["-s", &format!("{}/debug/metrics/prometheus", da.url)])
        .output()
        .expect("curl");
    let metrics = String::from_utf8_lossy(&out.stdout);
    let gauge = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert!(gauge("ipfs_kit_dht_provided_keys") >= 2, "{metrics}");
    assert_eq!(gauge("ipfs_kit_dht_provider_records"), 0);
    assert_eq!(gauge("ipfs_kit_dht_records"), 0);
}

#[test]
fn init_profiles_write_the_config_and_refuse_unknown_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let init = |repo: &std::path::Path, profile: &str| {
        crate::bin()
            .arg("--repo-dir")
            .arg(repo)
            .args(["init", "--profile", profile])
            .output()
            .expect("init")
    };
    let repo = dir.path().join("public");
    assert!(init(&repo, "public").status.success());
    let get = |key: &str| {
        let out = crate::bin()
            .arg("--repo-dir")
            .arg(&repo)
            .args(["config", "get", key])
            .output()
            .expect("config get");
        assert!(out.status.success());
        String::from_utf8(out.stdout).expect("utf-8")
    };
    assert_eq!(get("network.bootstrap").matches("/p2p/").count(), 5);
    assert_eq!(get("network.mdns").trim(), "true");
    assert_eq!(get("network.routing").trim(), "dht");
    assert!(get("addresses.swarm").contains("/ip4/0.0.0.0/tcp/4001"));

    // An import profile still works; an unknown name fails and writes nothing.
    assert!(init(&dir.path().join("v1"), "unixfs-v1-2025")
        .status
        .success());
    let bad = dir.path().join("bad");
    let out = init(&bad, "public,nope");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown profile \"nope\""), "{err}");
    assert!(!bad.join("config.toml").exists());
}
