//! ipfs-kit hosts on networks of their own: each daemon in its own network namespace, joined by
//! veth pairs to a bridge (or to a NAT router) in further namespaces, so traffic crosses real
//! (virtual) interfaces between separate network stacks, not loopback. Nothing is added to the
//! machine's own namespace; every namespace is deleted when the test ends, however it ends.
//!
//! Needs root and iproute2 (`ip netns`, `tc`), and nftables for the NAT routers. Without them a
//! test says so and passes, except under CI (`CI` set), where that is a failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Node;

/// Runs a command (`ip`, `tc`, `nft`) and fails the test on error; `input` goes to its stdin.
fn sh_with(args: &[&str], input: &str) {
    use std::io::Write;
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh(args: &[&str]) {
    sh_with(args, "");
}

/// Whether `tool` is on the `PATH`.
fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()))
}

/// Network namespaces made for one test, deleted on drop.
struct Namespaces {
    prefix: String,
    names: Vec<String>,
}

impl Namespaces {
    /// An empty set, or `None` when namespaces (or one of `tools`) are not available here.
    fn new(tag: &str, tools: &[&str]) -> Option<Namespaces> {
        // Unique per test, also when tests share a process (`cargo test` threads).
        static SETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut set = Namespaces {
            prefix: format!("ik{}{tag}{n}", std::process::id()),
            names: Vec::new(),
        };
        let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
        let made = missing.is_empty()
            && Command::new("ip")
                .args(["netns", "add", &format!("{}probe", set.prefix)])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
        if made {
            set.names.push(format!("{}probe", set.prefix));
            return Some(set);
        }
        if std::env::var_os("CI").is_some() {
            panic!("cannot create network namespaces (missing: {missing:?}): CI must run the multi-host tests as root with iproute2 and nftables");
        }
        eprintln!("no network namespaces here (needs root, iproute2, {tools:?}): skipping");
        None
    }

    /// Makes namespace `<prefix><name>` with its loopback up, and returns its full name.
    fn add(&mut self, name: &str) -> String {
        let ns = format!("{}{name}", self.prefix);
        sh(&["ip", "netns", "add", &ns]);
        self.names.push(ns.clone());
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A veth pair from interface `a` in namespace `ns_a` to `b` in `ns_b`, both ends up, each
/// with its address (CIDR) if given.
fn wire(ns_a: &str, a: &str, addr_a: Option<&str>, ns_b: &str, b: &str, addr_b: Option<&str>) {
    sh(&[
        "ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b,
    ]);
    for (ns, dev, addr) in [(ns_a, a, addr_a), (ns_b, b, addr_b)] {
        if let Some(addr) = addr {
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
        }
        sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
    }
}

/// A bridge `br0` in namespace `ns`; `port` attaches a veth end in `ns` to it.
fn bridge(ns: &str) {
    sh(&["ip", "-n", ns, "link", "add", "br0", "type", "bridge"]);
    sh(&["ip", "-n", ns, "link", "set", "br0", "up"]);
}

fn port(ns: &str, dev: &str) {
    sh(&["ip", "-n", ns, "link", "set", dev, "master", "br0"]);
}

/// A private network: a bridge namespace and one namespace per host.
struct Lan {
    hosts: Vec<String>,
    _ns: Namespaces,
}

impl Lan {
    /// `n` hosts at 10.77.0.1 ... 10.77.0.n, or `None` when namespaces cannot be made here.
    fn new(n: usize) -> Option<Lan> {
        let mut ns = Namespaces::new("lan", &["ip", "tc"])?;
        let sw = ns.add("sw");
        bridge(&sw);
        let mut hosts = Vec::new();
        for i in 1..=n {
            let host = ns.add(&format!("h{i}"));
            let addr = format!("10.77.0.{i}/24");
            wire(&sw, &format!("p{i}"), None, &host, "eth0", Some(&addr));
            port(&sw, &format!("p{i}"));
            hosts.push(host);
        }
        Some(Lan { hosts, _ns: ns })
    }

    /// Host `i`'s (1-based) namespace and swarm address.
    fn host(&self, i: usize) -> (&str, String) {
        (&self.hosts[i - 1], format!("/ip4/10.77.0.{i}/tcp/4001"))
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

/// A home router's rules: the hosts behind `lan` share the router's `wan` address (source NAT,
/// which keeps the hosts' ports where it can), and nothing from `wan` gets in, to the router or
/// through it, unless it answers a flow from inside. Unsolicited packets are dropped, not
/// refused, as most home routers do.
const NAT_RULES: &str = r#"
table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    oifname "wan" masquerade
  }
}
table ip fw {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "wan" ct state established,related accept
    iifname "wan" drop
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    iifname "lan" accept
    iifname "wan" ct state established,related accept
  }
}
"#;

/// Two hosts, each alone behind its own NAT router, and a relay host; the relay and the
/// routers' outside ends share an "internet" bridge (10.78.0.0/24: relay .1, routers .2 and
/// .3). Host `i` (1 or 2) is 192.168.i.2 behind router 10.78.0.(i+1).
struct NatNet {
    relay: String,
    hosts: Vec<String>,
    _ns: Namespaces,
}

impl NatNet {
    fn new() -> Option<NatNet> {
        let mut ns = Namespaces::new("nat", &["ip", "nft"])?;
        let inet = ns.add("inet");
        bridge(&inet);
        let relay = ns.add("relay");
        wire(&inet, "p0", None, &relay, "eth0", Some("10.78.0.1/24"));
        port(&inet, "p0");
        let mut hosts = Vec::new();
        for i in 1..=2 {
            let router = ns.add(&format!("nat{i}"));
            let wan = format!("10.78.0.{}/24", i + 1);
            wire(&inet, &format!("p{i}"), None, &router, "wan", Some(&wan));
            port(&inet, &format!("p{i}"));
            let host = ns.add(&format!("h{i}"));
            let (gw, addr) = (format!("192.168.{i}.1"), format!("192.168.{i}.2/24"));
            wire(
                &router,
                "lan",
                Some(&format!("{gw}/24")),
                &host,
                "eth0",
                Some(&addr),
            );
            sh(&["ip", "-n", &host, "route", "add", "default", "via", &gw]);
            sh(&[
                "ip",
                "netns",
                "exec",
                &router,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]);
            sh_with(
                &["ip", "netns", "exec", &router, "nft", "-f", "-"],
                NAT_RULES,
            );
            hosts.push(host);
        }
        Some(NatNet {
            relay,
            hosts,
            _ns: ns,
        })
    }
}

/// A daemon in namespace `ns` listening on `swarm` (the first address, with its peer ID, is
/// `addr`), its API on a Unix socket (reachable from here: sockets in the file system are not
/// confined to a network namespace). Killed on drop.
struct HostDaemon {
    child: Child,
    addr: String,
}

impl HostDaemon {
    fn start(ns: &str, node: &Node, swarm: &[&str]) -> HostDaemon {
        let socket = node.dir.path().join("api.sock");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(env!("CARGO_BIN_EXE_ipfs-kit"))
            .arg("--repo-dir")
            .arg(node.repo())
            .args(["daemon", "--api"])
            .arg(format!("/unix{}", socket.display()))
            .args(["--gateway", "/ip4/127.0.0.1/tcp/0"]);
        for a in swarm {
            cmd.args(["--swarm", a]);
        }
        let mut child = cmd
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
        assert!(ready, "daemon in {ns} did not start");
        HostDaemon {
            child,
            addr: format!("{}/p2p/{}", swarm[0], peer_id(node)),
        }
    }
}

impl Drop for HostDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer ID of `node` (running or not).
fn peer_id(node: &Node) -> String {
    let id: serde_json::Value = serde_json::from_str(&node.ok(&["id"])).expect("id json");
    id["ID"].as_str().expect("ID").to_string()
}

/// Polls `check` every 50 ms until it holds; fails the test with `what` after `secs` seconds.
fn until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < give_up, "{what}");
        std::thread::sleep(Duration::from_millis(50));
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
    let data = crate::random_bytes(48 << 20, 0x9e37_79b9_7f4a_7c15);
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
        .map(|(i, p)| {
            let (ns, swarm) = lan.host(i + 1);
            Some(HostDaemon::start(ns, p, &[&swarm]))
        })
        .collect();
    for i in 1..=3 {
        lan.limit(i, "40mbit");
    }
    let (ns, swarm) = lan.host(4);
    let _y = HostDaemon::start(ns, &fetcher, &[&swarm]);
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
    until(120, "providers never all served blocks", || {
        assert!(
            cat.try_wait().expect("poll cat").is_none(),
            "the fetch ended before all three providers had served part of it"
        );
        addrs.iter().all(|a| received_from(&fetcher, a) > 0)
    });
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

/// Two hosts, each behind a NAT router that drops whatever it did not ask for, meet through a
/// relay (circuit relay v2), and DCUtR replaces the relayed connection with a direct one: both
/// dial at once, each through its own router's mapping (over TCP, simultaneous open joins the
/// two dials). Neither can reach the other any other way: each sees the other only at its
/// router's address, where nothing listens. `transport` is the address tail after the IP
/// (`tcp/4001`, `udp/4001/quic-v1`); every connection uses it.
fn hole_punching_joins_two_hosts_behind_nats(transport: &str) {
    let Some(net) = NatNet::new() else { return };
    let relay = Node::new();
    relay.ok(&["config", "set", "network.relay_service", "true"]);
    // A relay serves only with a confirmed address, here its own on the "internet".
    relay.ok(&[
        "config",
        "set",
        "addresses.announce",
        &format!(r#"["/ip4/10.78.0.1/{transport}"]"#),
    ]);
    let r = HostDaemon::start(
        &net.relay,
        &relay,
        &[&format!("/ip4/10.78.0.1/{transport}")],
    );
    // b listens on its private address and through the relay (a reservation).
    let b = Node::new();
    let circuit = format!("{}/p2p-circuit", r.addr);
    let b_listen = format!("/ip4/192.168.2.2/{transport}");
    let bd = HostDaemon::start(&net.hosts[1], &b, &[&b_listen, &circuit]);
    until(60, "b got no reservation on the relay", || {
        b.ok(&["swarm", "addrs", "listen"]).contains("/p2p-circuit")
    });
    let a = Node::new();
    let a_listen = format!("/ip4/192.168.1.2/{transport}");
    let _ad = HostDaemon::start(&net.hosts[0], &a, &[&a_listen]);
    let b_id = peer_id(&b);
    let out = a.ok(&["swarm", "connect", &format!("{circuit}/p2p/{b_id}")]);
    assert!(out.contains("success"), "{out}");
    // a's connections to b: first the relayed one, then (DCUtR) one straight to b's router.
    let direct = format!("/ip4/10.78.0.3/{transport}/p2p/{b_id}");
    until(60, "no direct connection replaced the relayed one", || {
        a.ok(&["swarm", "peers"]).lines().any(|l| l == direct)
    });
    // The direct connection carries content: more than the relay lets through a circuit
    // (128 KiB by default), fetched after the relayed connection is closed.
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let file = b.dir.path().join("data.bin");
    std::fs::write(&file, &data).expect("write");
    let cid = b
        .ok(&["add", "-Q", file.to_str().expect("utf-8 path")])
        .trim()
        .to_string();
    drop(r);
    until(60, "the relayed connection outlived its relay", || {
        !a.ok(&["swarm", "peers"]).contains("/p2p-circuit")
    });
    let got = a.run(&["cat", &cid]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(got.stdout == data, "fetched bytes differ");
    drop(bd);
}

#[test]
fn hole_punching_over_tcp() {
    hole_punching_joins_two_hosts_behind_nats("tcp/4001");
}

#[test]
fn hole_punching_over_quic() {
    hole_punching_joins_two_hosts_behind_nats("udp/4001/quic-v1");
}
