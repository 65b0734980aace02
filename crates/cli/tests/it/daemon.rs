//! The daemon's RPC API, driven over TCP and a Unix socket by curl, a real HTTP client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::Node;

struct Daemon {
    child: Child,
    url: String,
    socket: std::path::PathBuf,
    /// The gateway's base URL.
    gateway: String,
}

impl Daemon {
    /// Starts `ipfs-kit daemon` on an ephemeral loopback port and a Unix socket, and waits for
    /// "Daemon is ready" on its output.
    fn start(node: &Node) -> Daemon {
        let socket = node.dir.path().join("api.sock");
        let mut child = node
            .cmd(&[
                "daemon",
                "--api",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                &format!("/unix{}", socket.display()),
                // Not the default 8080: tests run side by side.
                "--gateway",
                "/ip4/127.0.0.1/tcp/0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn daemon");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut url = None;
        let mut gateway = None;
        for line in lines.by_ref() {
            let line = line.expect("daemon output");
            if let Some(addr) = line.strip_prefix("Gateway server listening on /ip4/") {
                let (ip, port) = addr.split_once("/tcp/").expect("tcp multiaddr");
                gateway.get_or_insert(format!("http://{ip}:{port}"));
            }
            if let Some(addr) = line.strip_prefix("RPC API server listening on /ip4/") {
                let (ip, port) = addr.split_once("/tcp/").expect("tcp multiaddr");
                url.get_or_insert(format!("http://{ip}:{port}"));
            }
            if line == "Daemon is ready" {
                break;
            }
        }
        Daemon {
            child,
            url: url.expect("a tcp listener"),
            socket,
            gateway: gateway.expect("a gateway listener"),
        }
    }

    /// POSTs (or `method`s) `path` and returns (status, body).
    fn call(&self, method: &str, path: &str) -> (u16, Vec<u8>) {
        curl(&["-X", method, &format!("{}{path}", self.url)])
    }

    fn stop(mut self) {
        // SIGTERM, as an init system would send; the daemon must exit 0 on its own.
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait daemon");
        assert!(exit.success(), "daemon exited with {exit}");
    }
}

fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').expect("status line");
    let status = String::from_utf8_lossy(&body[split + 1..])
        .parse()
        .expect("status");
    body.truncate(split);
    (status, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not json ({e}): {}", String::from_utf8_lossy(body)))
}

#[test]
fn rpc_api_serves_kubo_commands_and_errors() {
    let node = Node::new();
    let file = node.dir.path().join("data.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &data).expect("write");
    let cid = node
        .ok(&["add", "-Q", file.to_str().expect("p")])
        .trim()
        .to_string();
    let d = Daemon::start(&node);

    let (status, body) = d.call("POST", "/api/v0/id");
    assert_eq!(status, 200);
    assert!(json(&body)["ID"]
        .as_str()
        .expect("ID")
        .starts_with("12D3KooW"));
    let (status, body) = d.call("POST", "/api/v0/version");
    assert_eq!((status, json(&body)["Version"].is_string()), (200, true));

    let (status, body) = d.call("POST", &format!("/api/v0/cat?arg={cid}"));
    assert_eq!(status, 200);
    assert!(body == data, "cat over the API differs");
    let (status, body) = d.call(
        "POST",
        &format!("/api/v0/cat?arg=/ipfs/{cid}&offset=1000&length=5000"),
    );
    assert_eq!(status, 200);
    assert!(body == data[1000..6000]);

    let (status, body) = d.call("POST", &format!("/api/v0/block/stat?arg={cid}"));
    assert_eq!(status, 200);
    assert_eq!(json(&body)["Key"], cid.as_str());
    let (status, body) = d.call("POST", &format!("/api/v0/block/get?arg={cid}"));
    assert_eq!(status, 200);
    assert_eq!(
        body.len() as u64,
        json(&d.call("POST", &format!("/api/v0/block/stat?arg={cid}")).1)["Size"]
            .as_u64()
            .expect("size")
    );

    let (status, body) = d.call("POST", "/api/v0/refs/local");
    assert_eq!(status, 200);
    let refs: Vec<serde_json::Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(json)
        .collect();
    assert_eq!(refs.len(), 13, "12 leaves and a root");
    let (status, body) = d.call("POST", "/api/v0/pin/ls?type=recursive");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["Keys"][cid.as_str()]["Type"], "recursive");
    let (status, body) = d.call("POST", "/api/v0/repo/stat");
    assert_eq!(
        (status, json(&body)["NumObjects"].as_u64()),
        (200, Some(13))
    );

    // Kubo's error conventions.
    let (status, body) = d.call("GET", "/api/v0/id");
    assert_eq!(
        (status, body.as_slice()),
        (405, &b"405 - Method Not Allowed\n"[..])
    );
    let (status, body) = d.call("POST", "/api/v0/no/such/command");
    assert_eq!(
        (status, body.as_slice()),
        (404, &b"404 page not found\n"[..])
    );
    let (status, body) = d.call("POST", "/api/v0/cat");
    assert_eq!(
        (status, body.as_slice()),
        (400, &b"argument \"ipfs-path\" is required\n"[..])
    );
    let (status, body) = d.call("POST", "/api/v0/cat?arg=QmNotACid");
    assert_eq!((status, json(&body)["Code"].as_u64()), (500, Some(0)));
    let (status, _) = d.call("POST", "/api/v0/pin/ls?type=sideways");
    assert_eq!(status, 400);

    // The Unix socket serves the same API.
    let (status, body) = curl(&[
        "-X",
        "POST",
        "--unix-socket",
        d.socket.to_str().expect("p"),
        "http://localhost/api/v0/id",
    ]);
    assert_eq!(status, 200);
    assert!(json(&body)["ID"].is_string());

    // One daemon per repo, and the CLI says why it cannot open the repo meanwhile.
    node.fails(&["daemon", "--api", "/ip4/127.0.0.1/tcp/0"], "in use");
    d.stop();
    assert!(!node.repo().join("api").exists(), "api file left behind");
    assert!(
        !node.dir.path().join("api.sock").exists(),
        "socket left behind"
    );
    node.ok(&["repo", "verify"]);
}

#[test]
fn shutdown_during_a_request_leaves_a_consistent_repo() {
    let node = Node::new();
    let file = node.dir.path().join("big.bin");
    std::fs::write(&file, vec![7u8; 24 << 20]).expect("write");
    let cid = node
        .ok(&["add", "-Q", file.to_str().expect("p")])
        .trim()
        .to_string();
    let d = Daemon::start(&node);
    // A slow client: 1 MiB/s of a 24 MiB file, so the shutdown lands mid-stream.
    let slow = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "--limit-rate",
            "1M",
            "-o",
            "/dev/null",
            &format!("{}/api/v0/cat?arg={cid}", d.url),
        ])
        .spawn()
        .expect("curl");
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.stop();
    let mut slow = slow;
    let _ = slow.kill();
    let _ = slow.wait();
    node.ok(&["repo", "verify"]);
    assert_eq!(node.ok(&["cat", &cid]).len(), 24 << 20);
}

fn lines(body: &[u8]) -> Vec<serde_json::Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(json)
        .collect()
}

#[test]
fn rpc_api_pins_gc_dag_and_listing() {
    let node = Node::new();
    let dir = node.dir.path().join("tree");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("a.txt"), b"alpha\n").expect("write");
    std::fs::write(dir.join("sub/b.txt"), vec![b'b'; 300_000]).expect("write");
    std::os::unix::fs::symlink("a.txt", dir.join("link")).expect("symlink");
    let root = node
        .ok(&["add", "-Q", "-r", dir.to_str().expect("p")])
        .trim()
        .to_string();
    let loose = node.run_stdin(&["add", "-Q", "--pin=false"], b"loose content");
    let loose = String::from_utf8_lossy(&loose.stdout).trim().to_string();
    let d = Daemon::start(&node);

    let (status, body) = d.call("POST", &format!("/api/v0/ls?arg={root}"));
    assert_eq!(status, 200);
    let listing = json(&body);
    let links = listing["Objects"][0]["Links"].as_array().expect("links");
    let by_name = |n: &str| {
        links
            .iter()
            .find(|l| l["Name"] == n)
            .unwrap_or_else(|| panic!("no {n}"))
    };
    assert_eq!(
        (
            by_name("a.txt")["Type"].as_u64(),
            by_name("a.txt")["Size"].as_u64()
        ),
        (Some(2), Some(6))
    );
    assert_eq!(by_name("sub")["Type"].as_u64(), Some(1));
    assert_eq!(
        (
            by_name("link")["Type"].as_u64(),
            by_name("link")["Target"].as_str()
        ),
        (Some(4), Some("a.txt"))
    );

    let (status, body) = d.call("POST", &format!("/api/v0/resolve?arg=/ipfs/{root}/sub"));
    assert_eq!(status, 200);
    let sub = json(&body)["Path"]
        .as_str()
        .expect("path")
        .trim_start_matches("/ipfs/")
        .to_string();
    let (_, body) = d.call("POST", &format!("/api/v0/refs?arg={root}&recursive=true"));
    let refs: Vec<String> = lines(&body)
        .iter()
        .map(|r| r["Ref"].as_str().expect("ref").to_string())
        .collect();
    assert!(refs.contains(&sub) && refs.len() >= 5, "{refs:?}");
    let (_, body) = d.call("POST", &format!("/api/v0/dag/get?arg={root}"));
    assert!(
        json(&body)["Links"]
            .as_array()
            .expect("dag-json links")
            .len()
            == 3
    );
    let (status, car) = d.call("POST", &format!("/api/v0/dag/export?arg={root}"));
    assert_eq!(status, 200);
    assert!(car.len() > 300_000, "CAR holds the whole DAG");

    // Pins and GC: the loose block goes, the pinned tree stays.
    let (status, body) = d.call("POST", &format!("/api/v0/block/rm?arg={root}"));
    assert_eq!(status, 200);
    assert!(lines(&body)[0]["Error"]
        .as_str()
        .expect("err")
        .contains("pinned"));
    let (_, body) = d.call("POST", "/api/v0/repo/gc");
    let removed: Vec<String> = lines(&body)
        .iter()
        .map(|r| r["Key"]["/"].as_str().expect("key").to_string())
        .collect();
    assert_eq!(removed, std::slice::from_ref(&loose));
    let (status, body) = d.call("POST", &format!("/api/v0/pin/rm?arg={root}"));
    assert_eq!(
        (status, json(&body)["Pins"][0].as_str()),
        (200, Some(root.as_str()))
    );
    let (status, body) = d.call("POST", &format!("/api/v0/pin/add?arg={root}"));
    assert_eq!(
        (status, json(&body)["Pins"][0].as_str()),
        (200, Some(root.as_str()))
    );
    let (status, _) = d.call("POST", "/api/v0/pin/add");
    assert_eq!(status, 400);
    let (status, body) = d.call("POST", "/api/v0/repo/verify");
    assert_eq!(
        (status, lines(&body)[0]["Progress"].as_u64().is_some()),
        (200, true)
    );

    let (_, body) = d.call("POST", "/api/v0/config?arg=import.profile");
    assert_eq!(json(&body)["Value"], "unixfs-v0-2015");
    let (_, body) = d.call("POST", "/api/v0/config?arg=Addresses.API");
    assert_eq!(json(&body)["Value"], "/ip4/127.0.0.1/tcp/5001");
    let (_, body) = d.call("POST", "/api/v0/config/show");
    assert_eq!(json(&body)["identity"]["private_key"], "");
    let (_, body) = d.call("POST", "/api/v0/commands");
    assert!(
        json(&body)["Subcommands"]
            .as_array()
            .expect("subcommands")
            .len()
            > 10
    );
    d.stop();
}

#[test]
fn rpc_add_matches_the_cli() {
    let node = Node::new();
    let dir = node.dir.path().join("up");
    std::fs::create_dir_all(dir.join("sub/deeper")).expect("mkdir");
    std::fs::write(dir.join("hello.txt"), b"hello world\n").expect("write");
    std::fs::write(dir.join("sub/big.bin"), vec![3u8; 700_000]).expect("write");
    std::fs::write(dir.join("sub/deeper/x y.txt"), b"spaces").expect("write");
    let expected_root = node
        .ok(&["add", "-Q", "-n", "-r", dir.to_str().expect("p")])
        .trim()
        .to_string();
    let expected_v1 = node
        .ok(&[
            "add",
            "-Q",
            "-n",
            "--cid-version",
            "1",
            "--raw-leaves=false",
            dir.join("sub/big.bin").to_str().expect("p"),
        ])
        .trim()
        .to_string();
    let d = Daemon::start(&node);
    let p = |rel: &str| dir.join(rel).display().to_string();
    let url = |q: &str| format!("{}/api/v0/add?stream-channels=true{q}", d.url);

    // One file, named by its part.
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-F",
        &format!("file=@{};filename=hello.txt", p("hello.txt")),
        &url(""),
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let events = lines(&body);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["Name"], "hello.txt");
    assert_eq!(
        events[0]["Hash"],
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
    assert_eq!(events[0]["Size"], "20");

    // A tree, as Go and Python clients send it: directory parts first, escaped names; the
    // "deeper" directory is implied by its file's path only.
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-F",
        "file=@/dev/null;filename=up;type=application/x-directory",
        "-F",
        &format!(
            "file=@{};filename=up%2Fhello.txt;type=text/plain",
            p("hello.txt")
        ),
        "-F",
        "file=@/dev/null;filename=up%2Fsub;type=application/x-directory",
        "-F",
        &format!("file=@{};filename=up%2Fsub%2Fbig.bin", p("sub/big.bin")),
        "-F",
        &format!(
            "file=@{};filename=up%2Fsub%2Fdeeper%2Fx+y.txt",
            p("sub/deeper/x y.txt")
        ),
        &url("&progress=true"),
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let events = lines(&body);
    let last = events.last().expect("events");
    assert_eq!(
        (last["Name"].as_str(), last["Hash"].as_str()),
        (Some("up"), Some(expected_root.as_str()))
    );
    assert!(events
        .iter()
        .any(|e| e["Name"] == "up/sub/deeper/x y.txt" && e["Hash"].is_string()));
    assert!(
        events
            .iter()
            .any(|e| e["Name"] == "up/sub/big.bin" && e["Bytes"].as_u64() == Some(700_000)),
        "progress lines"
    );
    let dirs: Vec<&str> = events
        .iter()
        .filter(|e| e["Hash"].is_string())
        .map(|e| e["Name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        &dirs[dirs.len() - 3..],
        ["up/sub/deeper", "up/sub", "up"],
        "directories children first, root last"
    );
    let (_, body) = d.call("POST", &format!("/api/v0/pin/ls?arg={expected_root}"));
    assert_eq!(
        json(&body)["Keys"][expected_root.as_str()]["Type"],
        "recursive"
    );

    // Options: explicit raw-leaves=False with CIDv1 is honoured; wrap; an unnamed part is named by its CID.
    let (_, body) = curl(&[
        "-X",
        "POST",
        "-F",
        &format!("file=@{};filename=big.bin", p("sub/big.bin")),
        &url("&cid-version=1&raw-leaves=False&pin=False"),
    ]);
    assert_eq!(lines(&body)[0]["Hash"], expected_v1.as_str());
    let (_, body) = curl(&[
        "-X",
        "POST",
        "-F",
        &format!("file=@{};filename=hello.txt", p("hello.txt")),
        &url("&wrap-with-directory=true"),
    ]);
    let events = lines(&body);
    assert_eq!(events.last().expect("wrapper")["Name"], "");
    let (_, body) = curl(&[
        "-X",
        "POST",
        "-F",
        &format!("file=@{};filename=", p("hello.txt")),
        &url(""),
    ]);
    assert_eq!(
        lines(&body)[0]["Name"],
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );

    // Errors.
    let (status, _) = d.call("POST", "/api/v0/add");
    assert_eq!(status, 400, "add without a body");
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-F",
        &format!("file=@{};filename=a", p("hello.txt")),
        &url("&chunker=size-0"),
    ]);
    assert_eq!(status, 500);
    assert!(json(&body)["Message"]
        .as_str()
        .expect("message")
        .contains("greater than 0"));
    d.stop();
    node.ok(&["repo", "verify"]);
}

#[test]
fn rpc_block_and_dag_uploads() {
    let node = Node::new();
    let d = Daemon::start(&node);
    let data = node.dir.path().join("data");
    std::fs::write(&data, b"raw block").expect("write");
    let up = |q: &str, file: &std::path::Path| {
        curl(&[
            "-X",
            "POST",
            "-F",
            &format!("file=@{}", file.display()),
            &format!("{}/api/v0/{q}", d.url),
        ])
    };
    let (status, body) = up("block/put", &data);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let key = json(&body)["Key"].as_str().expect("key").to_string();
    assert!(key.starts_with("bafkrei"));
    assert_eq!(
        d.call("POST", &format!("/api/v0/block/get?arg={key}")).1,
        b"raw block"
    );
    let big = node.dir.path().join("big");
    std::fs::write(&big, vec![0u8; (1 << 20) + 1]).expect("write");
    let (status, body) = up("block/put", &big);
    assert_eq!(status, 500);
    assert!(json(&body)["Message"]
        .as_str()
        .expect("msg")
        .contains("allow-big-block"));
    let (status, body) = up("block/put?allow-big-block=true", &big);
    assert_eq!(status, 200);
    let big_key = json(&body)["Key"].as_str().expect("key").to_string();
    let (_, body) = d.call("POST", &format!("/api/v0/block/rm?arg={big_key}"));
    assert!(
        lines(&body)[0].get("Error").is_none(),
        "Error is omitted when there is none"
    );

    let doc = node.dir.path().join("doc.json");
    std::fs::write(&doc, format!(r#"{{"a":1,"l":{{"/":"{key}"}}}}"#)).expect("write");
    let (status, body) = up("dag/put?pin=true", &doc);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let cid = json(&body)["Cid"]["/"].as_str().expect("cid").to_string();
    assert_eq!(
        d.call("POST", &format!("/api/v0/dag/get?arg={cid}/a")).1,
        b"1"
    );

    let (_, car) = d.call("POST", &format!("/api/v0/dag/export?arg={cid}"));
    let car_file = node.dir.path().join("x.car");
    std::fs::write(&car_file, &car).expect("write");
    let other = Node::new();
    let d2 = Daemon::start(&other);
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-F",
        &format!("file=@{}", car_file.display()),
        &format!("{}/api/v0/dag/import?stats=true", d2.url),
    ]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = lines(&body);
    assert_eq!(out[0]["Root"]["Cid"]["/"], cid.as_str());
    assert_eq!(out[0]["Root"]["PinErrorMsg"], "");
    assert_eq!(out[1]["Stats"]["BlockCount"].as_u64(), Some(2));
    d2.stop();
    d.stop();
}

#[test]
fn gateway_serves_files_directories_and_cars() {
    let node = Node::new();
    let root = node.dir.path().join("site");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("sub/big.bin"), &big).expect("write");
    std::fs::write(root.join("hello.txt"), b"hello gateway\n").expect("write");
    let dir = node
        .ok(&["add", "-Q", "-r", root.to_str().expect("p")])
        .trim()
        .to_string();
    let d = Daemon::start(&node);
    let url_file = std::fs::read_to_string(node.repo().join("gateway")).expect("gateway file");
    assert_eq!(url_file, d.gateway);

    let (status, body) = curl(&[&format!("{}/ipfs/{dir}/hello.txt", d.gateway)]);
    assert_eq!((status, &body[..]), (200, &b"hello gateway\n"[..]));
    let (status, body) = curl(&[&format!("{}/ipfs/{dir}/sub/big.bin", d.gateway)]);
    assert_eq!(status, 200);
    assert!(body == big, "big file differs");
    let (status, body) = curl(&[
        "-H",
        "Range: bytes=1000-1999",
        &format!("{}/ipfs/{dir}/sub/big.bin", d.gateway),
    ]);
    assert_eq!(status, 206);
    assert!(body == big[1000..2000]);
    let (status, _) = curl(&[&format!("{}/ipfs/{dir}", d.gateway)]);
    assert_eq!(status, 301);
    let (status, body) = curl(&[&format!("{}/ipfs/{dir}/", d.gateway)]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("hello.txt"));
    let (status, body) = curl(&[&format!("{}/ipfs/{dir}/sub/big.bin?format=car", d.gateway)]);
    assert_eq!(status, 200);
    assert!(body.len() > big.len());
    let (status, _) = curl(&[&format!("{}/ipfs/{dir}/missing", d.gateway)]);
    assert_eq!(status, 404);
    let (status, _) = curl(&["-X", "POST", &format!("{}/ipfs/{dir}/hello.txt", d.gateway)]);
    assert_eq!(status, 405);
    // No name system yet: IPNS is not found.
    let (status, _) = curl(&[&format!(
        "{}/routing/v1/ipns/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8",
        d.gateway
    )]);
    assert_eq!(status, 404);
    d.stop();
    assert!(
        !node.repo().join("gateway").exists(),
        "gateway file removed on exit"
    );
}
