//! ipfs-kit hosts on a network of their own: each daemon in its own network namespace, joined by
//! veth pairs to a bridge in a further namespace, so content crosses real (virtual) interfaces
//! between separate network stacks, not loopback. Nothing is added to the machine's own
//! namespace; every namespace is deleted when the test ends, however it ends.
//!
//! Needs root and iproute2 (`ip netns`, `tc`). Without them the test says so and passes, except
//! under CI (`CI` set), where that is a failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Node;

/// Runs `ip`/`tc` and fails the test on error.
fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private network: a bridge namespace and one namespace per host, deleted on drop.
struct Lan {
    switch: String,
    hosts: Vec<String>,
}

impl Lan {
    /// `n` hosts at 10.77.0.1 ... 10.77.0.n, or `None` when namespaces cannot be made here.
    fn new(n: usize) -> Option<Lan> {
        let prefix = format!("ik{}", std::process::id());
        let switch = format!("{prefix}sw");
        let made = Command::new("ip")
            .args(["netns", "add", &switch])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !made {
            if std::env::var_os("CI").is_some() {
                panic!("cannot create network namespaces: CI must run the multi-host test as root");
            }
            eprintln!("no network namespaces here (needs root and iproute2): skipping");
            return None;
        }
        let mut lan = Lan {
            switch,
            hosts: Vec::new(),
        };
        let sw = lan.switch.clone();
        sh(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for i in 1..=n {
            let host = format!("{prefix}h{i}");
            sh(&["ip", "netns", "add", &host]);
            lan.hosts.push(host.clone());
            let port = format!("p{i}");
            sh(&[
                "ip", "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &host,
            ]);
            sh(&["ip", "-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            sh(&[
                "ip",
                "-n",
                &host,
                "addr",
                "add",
                &format!("10.77.0.{i}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &host, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", &host, "link", "set", "lo", "up"]);
        }
        Some(lan)
    }

    /// Limits what host `i` (1-based) sends to `rate` (a `tc` rate such as "40mbit").
    fn limit(&self, i: usize, rate: &str) {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.hosts[i - 1],
            "tc",
            "qdisc",
            "add",
            "dev",
            "eth0",
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            "64kb",
            "latency",
            "200ms",
        ]);
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.switch]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A daemon in host `i`'s namespace, its API on a Unix socket (reachable from here: sockets in
/// the file system are not confined to a network namespace). Killed on drop.
struct HostDaemon {
    child: Child,
    addr: String,
}

impl HostDaemon {
    fn start(lan: &Lan, i: usize, node: &Node) -> HostDaemon {
        let socket = node.dir.path().join("api.sock");
        let ip = format!("10.77.0.{i}");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lan.hosts[i - 1]])
            .arg(env!("CARGO_BIN_EXE_ipfs-kit"))
            .arg("--repo-dir")
            .arg(node.repo())
            .args(["daemon", "--api"])
            .arg(format!("/unix{}", socket.display()))
            .args(["--gateway", "/ip4/127.0.0.1/tcp/0", "--swarm"])
            .arg(format!("/ip4/{ip}/tcp/4001"))
            .env_remove("IPFS_KIT_PATH")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn daemon in its namespace");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut ready = false;
        for line in lines {
            if line.expect("daemon output") == "Daemon is ready" {
                ready = true;
                break;
            }
        }
        assert!(ready, "daemon in {} did not start", lan.hosts[i - 1]);
        let id: serde_json::Value = serde_json::from_str(&node.ok(&["id"])).expect("id json");
        let id = id["ID"].as_str().expect("ID").to_string();
        HostDaemon {
            child,
            addr: format!("/ip4/{ip}/tcp/4001/p2p/{id}"),
        }
    }
}

impl Drop for HostDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Block bytes `node` received from the peer at `addr`, from its bitswap ledger.
fn received_from(node: &Node, addr: &str) -> u64 {
    let peer = addr.rsplit('/').next().expect("peer id");
    node.ok(&["bitswap", "ledger", peer])
        .lines()
        .find_map(|l| l.strip_prefix("Bytes received:\t"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a ledger with bytes received")
}

/// Three providers hold a file; a fourth host fetches it from all three at once, over links
/// limited to 40 Mbit/s each so the transfer lasts seconds. Once every provider has sent part
/// of it, one provider is killed (SIGKILL, mid-transfer): the fetch must still complete, byte
/// for byte, from the other two.
#[test]
fn fetch_completes_across_namespaces_when_a_provider_dies() {
    let Some(lan) = Lan::new(4) else { return };
    // Pseudo-random (xorshift), so no two blocks are alike and all 48 MiB must cross the wire.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..48 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let providers: Vec<Node> = (0..3).map(|_| Node::new()).collect();
    let mut cid = String::new();
    for p in &providers {
        let file = p.dir.path().join("data.bin");
        std::fs::write(&file, &data).expect("write");
        cid = p
            .ok(&["add", "-Q", file.to_str().expect("utf-8 path")])
            .trim()
            .to_string();
    }
    let fetcher = Node::new();
    let mut daemons: Vec<Option<HostDaemon>> = providers
        .iter()
        .enumerate()
        .map(|(i, p)| Some(HostDaemon::start(&lan, i + 1, p)))
        .collect();
    for i in 1..=3 {
        lan.limit(i, "40mbit");
    }
    let _y = HostDaemon::start(&lan, 4, &fetcher);
    let addrs: Vec<String> = daemons
        .iter()
        .map(|d| d.as_ref().expect("running").addr.clone())
        .collect();
    for a in &addrs {
        fetcher.ok(&["swarm", "connect", a]);
    }

    let out = fetcher.dir.path().join("out.bin");
    let mut cat = fetcher
        .cmd(&["cat", &cid])
        .stdout(std::fs::File::create(&out).expect("create output"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cat");
    // Wait (polling, not timing) until every provider has delivered something.
    let give_up = Instant::now() + Duration::from_secs(120);
    while addrs.iter().any(|a| received_from(&fetcher, a) == 0) {
        assert!(
            cat.try_wait().expect("poll cat").is_none(),
            "the fetch ended before all three providers had served part of it"
        );
        assert!(
            Instant::now() < give_up,
            "providers never all served blocks"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        cat.try_wait().expect("poll cat").is_none(),
        "the fetch ended before a provider could be killed mid-transfer"
    );
    drop(daemons[0].take());

    let status = cat.wait().expect("wait cat");
    let mut err = String::new();
    if let Some(mut e) = cat.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).expect("stderr");
    }
    assert!(status.success(), "cat failed after a provider died: {err}");
    let got = std::fs::read(&out).expect("read output");
    assert!(got == data, "fetched bytes differ ({} bytes)", got.len());
}
