//! The daemon's RPC API, driven over TCP and a Unix socket by curl, a real HTTP client.

use std::path::Path;
use std::process::Command;

use crate::{eventually, Daemon, Node};

impl Daemon {
    /// POSTs (or `method`s) `path` and returns (status, body).
    fn call(&self, method: &str, path: &str) -> (u16, Vec<u8>) {
        curl(&["-X", method, &format!("{}{path}", self.url)])
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
fn rpc_refs_options_are_kubos() {
    let node = Node::new();
    let dir = node.dir.path().join("tree");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("a.txt"), b"alpha\n").expect("write");
    // Two chunks: sub/b.txt has two unnamed leaf links.
    std::fs::write(dir.join("sub/b.txt"), vec![b'b'; 300_000]).expect("write");
    let root = node
        .ok(&["add", "-Q", "-r", dir.to_str().expect("p")])
        .trim()
        .to_string();
    // The CLI, on the repo.
    assert_eq!(
        node.ok(&["refs", "-r", "--format", "<linkname>", &root]),
        "a.txt\nsub\nb.txt\n\n\n"
    );
    assert_eq!(
        node.ok(&[
            "refs",
            "-r",
            "--max-depth",
            "2",
            "--format",
            "<linkname>",
            &root
        ]),
        "a.txt\nsub\nb.txt\n"
    );
    node.fails(
        &["refs", "-e", "--format", "<linkname>", &root],
        "using format argument with edges is not allowed",
    );
    let d = Daemon::start(&node);
    let refs = |query: &str| -> Vec<String> {
        let (status, body) = d.call("POST", &format!("/api/v0/refs?{query}"));
        assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
        lines(&body)
            .iter()
            .map(|r| match r["Err"].as_str() {
                Some(e) if !e.is_empty() => format!("ERR {e}"),
                _ => r["Ref"].as_str().expect("ref").to_string(),
            })
            .collect()
    };
    let names = |query: &str| refs(&format!("{query}&format=%3Clinkname%3E"));
    let arg = format!("arg={root}");
    assert_eq!(names(&arg), ["a.txt", "sub"]);
    assert_eq!(
        names(&format!("{arg}&recursive=true")),
        ["a.txt", "sub", "b.txt", "", ""]
    );
    assert_eq!(
        names(&format!("{arg}&recursive=true&max-depth=2")),
        ["a.txt", "sub", "b.txt"]
    );
    assert!(names(&format!("{arg}&recursive=true&max-depth=0")).is_empty());
    // max-depth only matters with recursive, and -1 is no limit.
    assert_eq!(names(&format!("{arg}&max-depth=5")), ["a.txt", "sub"]);
    assert_eq!(
        names(&format!("{arg}&recursive=true&max-depth=-1")).len(),
        5
    );
    let all = refs(&format!("{arg}&recursive=true"));
    let sub = all[1].clone();
    let edges = refs(&format!("{arg}&edges=true"));
    assert_eq!(edges[1], format!("{root} -> {sub}"));
    assert_eq!(
        refs(&format!(
            "{arg}&format=%3Clinkname%3E:%20%3Csrc%3E%20=%3E%20%3Cdst%3E"
        ))[1],
        format!("sub: {root} => {sub}")
    );
    // Several paths: each in turn; with unique, what one listed the next does not.
    let sub_path = format!("arg=/ipfs/{root}/sub");
    assert_eq!(names(&format!("{sub_path}&{sub_path}")), ["b.txt", "b.txt"]);
    assert_eq!(
        names(&format!("{sub_path}&{sub_path}&unique=true")),
        ["b.txt"]
    );
    // A walk that fails lists its error and goes on; a path that does not resolve fails all.
    let missing = "QmYmW4HiZhotsoSqnv2o1oSssvkRM8b9RweBoH7ao5nki2";
    let out = names(&format!("arg={missing}&{sub_path}"));
    assert!(
        out[0].starts_with("ERR ") && out[0].contains(missing),
        "{out:?}"
    );
    assert_eq!(out[1..], ["b.txt"]);
    let (status, _) = d.call("POST", &format!("/api/v0/refs?arg=/ipfs/{root}/nope"));
    assert_eq!(status, 500);
    let (status, body) = d.call(
        "POST",
        &format!("/api/v0/refs?{arg}&edges=true&format=%3Clinkname%3E"),
    );
    assert_eq!(
        (status, json(&body)["Message"].as_str()),
        (500, Some("using format argument with edges is not allowed"))
    );
    let (status, _) = d.call("POST", &format!("/api/v0/refs?{arg}&max-depth=x"));
    assert_eq!(status, 400);
    // cid-base upgrades CIDv0 as Kubo's encoder does.
    assert!(refs(&format!("{arg}&cid-base=base32"))
        .iter()
        .all(|r| r.starts_with("bafy")));
    // Through the daemon, the CLI takes the same options.
    assert_eq!(
        node.ok(&[
            "refs",
            "-e",
            &format!("/ipfs/{root}/sub"),
            "--max-depth",
            "1"
        ])
        .lines()
        .count(),
        1
    );
    d.stop();
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
    assert!(json(&body)["Identity"].get("PrivKey").is_none());
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

    // Options: raw-leaves=False beside CIDv1 reads as unset, so CIDv1 implies raw leaves as
    // ipfshttpclient's callers expect (docs/rpc.md); raw-leaves=true without CIDv1 is honoured
    // (the kubo-rpc-client check covers it); wrap; an unnamed part is named by its CID.
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
    let up = |q: &str, file: &std::path::Path| upload(&d, q, file);
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

/// POSTs a multipart upload of `file` to `q`.
fn upload(d: &Daemon, q: &str, file: &std::path::Path) -> (u16, Vec<u8>) {
    curl(&[
        "-X",
        "POST",
        "-F",
        &format!("file=@{}", file.display()),
        &format!("{}/api/v0/{q}", d.url),
    ])
}

#[test]
fn rpc_files_keys_and_names() {
    let node = Node::new();
    let d = Daemon::start(&node);
    let hello = node.dir.path().join("hello");
    std::fs::write(&hello, b"hello world\n").expect("write");

    // Mutating files commands answer 200 with an empty chunked body, as Kubo.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-X", "POST"])
        .arg(format!(
            "{}/api/v0/files/mkdir?arg=/a/b&parents=true",
            d.url
        ))
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("x-chunked-output: 1"), "{head}");
    assert!(head.trim_end().ends_with("content-length: 0") || head.contains("content-length: 0"));
    let (status, body) = upload(&d, "files/write?arg=/a/b/h.txt&create=true", &hello);
    assert_eq!(
        (status, body.len()),
        (200, 0),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        d.call("POST", "/api/v0/files/read?arg=/a/b/h.txt&offset=6&count=5")
            .1,
        b"world"
    );
    let st = json(&d.call("POST", "/api/v0/files/stat?arg=/a/b/h.txt").1);
    assert_eq!(st["Type"], "file");
    assert_eq!(st["Size"], 12);
    let ls = json(&d.call("POST", "/api/v0/files/ls?arg=/a/b&long=true").1);
    assert_eq!(ls["Entries"][0]["Name"], "h.txt");
    assert_eq!(ls["Entries"][0]["Type"], 0);
    assert_eq!(ls["Entries"][0]["Hash"], st["Hash"]);
    assert_eq!(
        json(&d.call("POST", "/api/v0/files/ls?arg=/a/b").1)["Entries"][0]["Hash"],
        ""
    );
    d.call("POST", "/api/v0/files/mkdir?arg=/empty");
    assert!(json(&d.call("POST", "/api/v0/files/ls?arg=/empty").1)["Entries"].is_null());
    assert_eq!(
        d.call("POST", "/api/v0/files/mv?arg=/a/b/h.txt&arg=/h2.txt")
            .0,
        200
    );
    assert_eq!(
        d.call("POST", "/api/v0/files/cp?arg=/h2.txt&arg=/a/").0,
        200
    );
    assert_eq!(
        d.call("POST", "/api/v0/files/read?arg=/a/h2.txt").1,
        b"hello world\n"
    );
    let flushed = json(&d.call("POST", "/api/v0/files/flush").1);
    assert!(flushed["Cid"].as_str().expect("cid").starts_with("Qm"));
    let (status, body) = d.call("POST", "/api/v0/files/rm?arg=/a");
    assert_eq!(status, 500);
    assert_eq!(
        json(&body)["Message"],
        "\"/a\" is a directory, use -r to remove directories"
    );
    assert_eq!(
        d.call("POST", "/api/v0/files/rm?arg=/a&recursive=true"),
        (200, Vec::new())
    );
    let (status, body) = d.call("POST", "/api/v0/files/stat?arg=/a");
    assert_eq!(
        (status, json(&body)["Message"].clone()),
        (500, "file does not exist".into())
    );
    let (status, body) = d.call("POST", "/api/v0/files/stat");
    assert_eq!(
        (status, body),
        (400, b"argument \"path\" is required\n".to_vec())
    );
    assert_eq!(
        json(&d.call("POST", "/api/v0/files/mkdir?arg=nope").1)["Message"],
        "paths must start with a leading slash"
    );

    // Keys: ed25519 whatever size a client sends; self listed first; Kubo's errors.
    let k = json(
        &d.call("POST", "/api/v0/key/gen?arg=k1&type=ed25519&size=2048")
            .1,
    );
    assert_eq!(k["Name"], "k1");
    let id = k["Id"].as_str().expect("id").to_string();
    assert!(id.starts_with("k51"));
    let keys = json(&d.call("POST", "/api/v0/key/list").1);
    assert_eq!(keys["Keys"][0]["Name"], "self");
    assert_eq!(keys["Keys"][1]["Id"], id.as_str());
    let b58 = json(&d.call("POST", "/api/v0/key/list?ipns-base=b58mh").1);
    assert!(b58["Keys"][1]["Id"]
        .as_str()
        .expect("id")
        .starts_with("12D3KooW"));
    assert_eq!(
        json(&d.call("POST", "/api/v0/key/gen?arg=self").1)["Message"],
        "cannot create key with name 'self'"
    );
    let r = json(&d.call("POST", "/api/v0/key/rename?arg=k1&arg=k2").1);
    assert_eq!(
        (r["Was"].clone(), r["Now"].clone(), r["Overwrite"].clone()),
        ("k1".into(), "k2".into(), false.into())
    );
    let exported = d.call("POST", "/api/v0/key/export?arg=k2").1;
    let keyfile = node.dir.path().join("k.key");
    std::fs::write(&keyfile, &exported).expect("write");
    let imported = json(&upload(&d, "key/import?arg=k3", &keyfile).1);
    assert_eq!(imported["Id"], id.as_str());
    let rm = json(&d.call("POST", "/api/v0/key/rm?arg=k2&arg=k3").1);
    assert_eq!(rm["Keys"].as_array().expect("keys").len(), 2);
    // RSA keys as interface-ipfs-core asks for them; Kubo's words for bad sizes and types.
    let rsa = json(
        &d.call("POST", "/api/v0/key/gen?arg=r1&type=rsa&size=2048")
            .1,
    );
    let rsa_id = rsa["Id"].as_str().expect("id").to_string();
    assert!(rsa_id.starts_with("k2k4r8"), "{rsa_id}");
    let b58 = json(&d.call("POST", "/api/v0/key/list?ipns-base=b58mh").1);
    assert!(b58["Keys"][1]["Id"].as_str().expect("id").starts_with("Qm"));
    assert_eq!(
        json(
            &d.call("POST", "/api/v0/key/gen?arg=r2&type=rsa&size=1024")
                .1
        )["Message"],
        "rsa keys must be >= 2048 bits to be useful"
    );
    assert_eq!(
        json(&d.call("POST", "/api/v0/key/gen?arg=r2&type=dsa").1)["Message"],
        "unrecognized key type: dsa"
    );
    let (status, body) = d.call("POST", "/api/v0/key/gen?arg=r2&type=rsa&size=big");
    assert_eq!(
        (status, String::from_utf8_lossy(&body).into_owned()),
        (
            400,
            "could not convert value \"big\" to type \"int\" (for option \"-size\")\n".into()
        )
    );
    let renamed = json(&d.call("POST", "/api/v0/key/rename?arg=r1&arg=r3").1);
    assert_eq!(renamed["Id"], rsa_id.as_str());
    let rm = json(&d.call("POST", "/api/v0/key/rm?arg=r3").1);
    assert_eq!(rm["Keys"][0]["Id"], rsa_id.as_str());

    // Names: offline publishing needs --allow-offline; resolve goes through /ipns paths.
    let added = json(&upload(&d, "add", &hello).1);
    let cid = added["Hash"].as_str().expect("hash").to_string();
    let (status, body) = d.call("POST", &format!("/api/v0/name/publish?arg=/ipfs/{cid}"));
    assert_eq!(status, 500);
    assert!(json(&body)["Message"]
        .as_str()
        .expect("msg")
        .starts_with("can't publish while offline: pass `--allow-offline`"));
    let p = json(
        &d.call(
            "POST",
            &format!("/api/v0/name/publish?arg={cid}&allow-offline=true&lifetime=1h"),
        )
        .1,
    );
    assert_eq!(p["Value"], format!("/ipfs/{cid}"));
    let name = p["Name"].as_str().expect("name").to_string();
    let r = json(
        &d.call("POST", &format!("/api/v0/name/resolve?arg=/ipns/{name}"))
            .1,
    );
    assert_eq!(r["Path"], format!("/ipfs/{cid}"));
    assert_eq!(
        json(&d.call("POST", "/api/v0/name/resolve").1)["Path"],
        format!("/ipfs/{cid}")
    );
    assert_eq!(
        d.call("POST", &format!("/api/v0/cat?arg=/ipns/{name}")).1,
        b"hello world\n"
    );
    let (status, _) = d.call(
        "POST",
        "/api/v0/name/publish?arg=/ipfs/bafkqaaa&allow-offline=true&lifetime=soon",
    );
    assert_eq!(status, 500);
    d.stop();
}

#[test]
fn rpc_access_control_and_operations_endpoints() {
    let node = Node::new();
    let cid = node
        .ok(&[
            "add",
            "-Q",
            "--pin=false",
            node.repo().join("config.toml").to_str().expect("p"),
        ])
        .trim()
        .to_string();
    node.ok(&[
        "config",
        "set",
        "api.authorizations",
        r#"{ alice = { auth_secret = "basic:alice:pw", allowed_paths = ["/api/v0/cat", "/api/v0/id"] }, bob = { auth_secret = "bearer:tok", allowed_paths = ["/api/v0", "/debug/metrics"] } }"#,
    ]);
    node.ok(&["config", "set", "api.max_upload_bytes", "3000000"]);
    let d = Daemon::start(&node);
    let url = |p: &str| format!("{}{p}", d.url);
    // Uploads past the configured limit are refused (and nothing is pinned).
    let big = node.dir.path().join("big");
    std::fs::write(&big, vec![7u8; 3_500_000]).expect("write");
    let (_, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "Authorization: Bearer tok",
        "-F",
        &format!("file=@{}", big.display()),
        &url("/api/v0/add"),
    ]);
    assert!(
        String::from_utf8_lossy(&body).contains("exceeds the limit of 3000000 bytes"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // No secret: 401 with a challenge; wrong secret or path: 403; nothing runs.
    let (status, body) = curl(&["-X", "POST", &url("/api/v0/pin/add?arg=x")]);
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("Access Denied"));
    let (status, _) = curl(&[
        "-X",
        "POST",
        "-H",
        "Authorization: Bearer nope",
        &url("/api/v0/id"),
    ]);
    assert_eq!(status, 403);
    let (status, _) = curl(&[
        "-X",
        "POST",
        "-u",
        "alice:pw",
        &url(&format!("/api/v0/pin/add?arg={cid}")),
    ]);
    assert_eq!(status, 403);
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "Authorization: Bearer tok",
        &url("/api/v0/pin/ls?type=recursive"),
    ]);
    assert_eq!(status, 200);
    assert!(
        json(&body)["Keys"].as_object().expect("Keys").is_empty(),
        "the denied pin/add pinned"
    );
    // Allowed: alice on cat and version, bob everywhere.
    let (status, _) = curl(&[
        "-X",
        "POST",
        "-u",
        "alice:pw",
        &url(&format!("/api/v0/cat?arg={cid}")),
    ]);
    assert_eq!(status, 200);
    let (status, _) = curl(&["-X", "POST", "-u", "alice:pw", &url("/api/v0/version")]);
    assert_eq!(status, 200);
    // Secrets never leave through config.
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "Authorization: Bearer tok",
        &url("/api/v0/config/show"),
    ]);
    assert_eq!(status, 200);
    assert!(
        !String::from_utf8_lossy(&body).contains("tok\""),
        "secret leaked"
    );
    let (status, _) = curl(&[
        "-X",
        "POST",
        "-H",
        "Authorization: Bearer tok",
        &url("/api/v0/config?arg=api.authorizations.bob.auth_secret"),
    ]);
    assert_eq!(status, 500);
    // A page from another origin, or a browser with no origin, is refused; no CORS grant.
    let auth = ["-H", "Authorization: Bearer tok"];
    let (status, _) = curl(
        &[
            &auth[..],
            &[
                "-X",
                "POST",
                "-H",
                "Origin: https://evil.example",
                &url("/api/v0/id"),
            ],
        ]
        .concat(),
    );
    assert_eq!(status, 403);
    let (status, _) = curl(
        &[
            &auth[..],
            &["-X", "POST", "-A", "Mozilla/5.0", &url("/api/v0/id")],
        ]
        .concat(),
    );
    assert_eq!(status, 403);
    // Operations: health without a secret, metrics with one, counting what was served.
    let (status, body) = curl(&[&url("/health")]);
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, body) =
        curl(&[&auth[..], &[url("/debug/metrics/prometheus").as_str()][..]].concat());
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("ipfs_kit_rpc_requests_total{command=\"cat\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ipfs_kit_rpc_requests_total{command=\"denied\",status=\"401\"} 1"),
        "{text}"
    );
    assert!(text.contains("ipfs_kit_blockstore_blocks 1"), "{text}");
    assert!(
        text.contains("ipfs_kit_rpc_response_headers_seconds_bucket"),
        "{text}"
    );
    d.stop();
}

#[test]
fn rpc_get_tar_offline_errors_and_timeouts() {
    let node = Node::new();
    let dir = node.dir.path().join("d");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("a.txt"), b"aaa\n").expect("write");
    std::fs::write(dir.join("sub/b.txt"), b"bbb\n").expect("write");
    let root = node
        .ok(&["add", "-Q", "-r", dir.to_str().expect("p")])
        .trim()
        .to_string();
    let d = Daemon::start_with(&node, &["--offline"]);
    // get: a plain USTAR stream, file data right after the first header.
    let (status, body) = d.call("POST", &format!("/api/v0/get?arg=/ipfs/{root}/a.txt"));
    assert_eq!(status, 200);
    assert_eq!(&body[257..262], b"ustar");
    assert_eq!(&body[512..516], b"aaa\n");
    assert_eq!(body.len() % 512, 0);
    let tar = node.dir.path().join("d.tar");
    std::fs::write(
        &tar,
        curl(&[
            "-X",
            "POST",
            &format!("{}/api/v0/get?arg={root}&archive=true", d.url),
        ])
        .1,
    )
    .expect("write");
    let out = node.dir.path().join("x");
    std::fs::create_dir(&out).expect("mkdir");
    assert!(Command::new("tar")
        .arg("xf")
        .arg(&tar)
        .arg("-C")
        .arg(&out)
        .status()
        .expect("tar")
        .success());
    assert_eq!(
        std::fs::read(out.join(&root).join("sub/b.txt")).expect("read"),
        b"bbb\n"
    );
    // Commands that need the network answer Kubo's offline errors.
    let (status, body) = d.call("POST", "/api/v0/swarm/peers");
    assert_eq!(status, 500);
    assert!(json(&body)["Message"]
        .as_str()
        .expect("msg")
        .contains("must be run in online mode"));
    let (status, body) = d.call("POST", "/api/v0/stats/bw");
    assert_eq!((status, json(&body)["Code"].as_u64()), (400, Some(1)));
    // Our extensions: their OpenAPI document, and reserved namespaces.
    let (status, body) = d.call("POST", "/api/v0/openapi.json");
    assert_eq!(
        (status, json(&body)["openapi"].as_str()),
        (200, Some("3.1.0"))
    );
    let (status, _) = d.call("POST", "/api/v0/cluster/status");
    assert_eq!(status, 501);
    // A bad timeout is refused; a generous one changes nothing.
    let (status, _) = d.call("POST", "/api/v0/version?timeout=soon");
    assert_eq!(status, 400);
    let (status, body) = d.call("POST", &format!("/api/v0/cat?arg={root}/a.txt&timeout=30s"));
    assert_eq!((status, body.as_slice()), (200, &b"aaa\n"[..]));
    d.stop();
}

#[test]
fn cli_commands_go_through_a_running_daemon() {
    let node = Node::new();
    let dir = node.dir.path().join("d");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("a.txt"), b"aaa\n").expect("write");
    std::fs::write(dir.join(".hidden"), b"h").expect("write");
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("sub/big.bin"), &big).expect("write");
    std::os::unix::fs::symlink("a.txt", dir.join("link")).expect("symlink");
    // What the repo gives locally, before any daemon runs.
    let local = node.ok(&["add", "-r", "-n", dir.to_str().expect("p")]);
    let a_txt = dir.join("a.txt");
    let local_wrapped = node.ok(&["add", "-w", "-n", a_txt.to_str().expect("p")]);
    let d = Daemon::start(&node);
    // The daemon holds the repo, so these can only work through its API (found via the api file).
    let remote = node.ok(&["add", "-r", dir.to_str().expect("p")]);
    assert_eq!(
        remote, local,
        "add through the API differs from the local add"
    );
    // The wrapping directory's line has no name, printed the same way on both paths.
    assert_eq!(
        node.ok(&["add", "-w", "-n", a_txt.to_str().expect("p")]),
        local_wrapped
    );
    // A command that fails after its output started says why (the X-Stream-Error trailer),
    // even with megabytes of its upload still unsent when the daemon gives up.
    let (a, big_file) = (
        a_txt.to_str().expect("p"),
        dir.join("sub/big.bin").to_string_lossy().into_owned(),
    );
    node.fails(
        &["add", "-w", a, a, &big_file],
        "\"a.txt\" appears twice in the upload",
    );
    let root = remote
        .lines()
        .last()
        .expect("root")
        .split(' ')
        .nth(1)
        .expect("cid")
        .to_string();
    assert_eq!(node.ok(&["cat", &format!("{root}/a.txt")]), "aaa\n");
    assert!(node.ok(&["ls", &root]).contains(" - sub/\n"));
    let got = node.dir.path().join("got");
    node.ok(&["get", &root, "-o", got.to_str().expect("p")]);
    // The tar is unpacked as it streams in, beside the target, and renamed into place: a
    // failed get leaves neither the target nor its temporary.
    let missing = node.dir.path().join("missing");
    node.fails(
        &[
            "get",
            &format!("{root}/nope"),
            "-o",
            missing.to_str().expect("p"),
        ],
        "nope",
    );
    assert!(!missing.exists());
    let leftovers: Vec<_> = std::fs::read_dir(node.dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Dotfiles are left out unless asked for, as Kubo does.
    std::fs::remove_file(dir.join(".hidden")).expect("rm");
    crate::assert_same_tree(&dir, &got);
    assert_eq!(
        std::fs::read_link(got.join("link")).expect("link"),
        std::path::Path::new("a.txt")
    );
    assert!(node
        .ok(&["pin", "ls", "--type", "recursive"])
        .contains(&root));
    // Over the Unix socket, named explicitly.
    let sock = format!("/unix{}", d.socket.display());
    let out = node.run(&["--api", &sock, "cat", &format!("{root}/sub/big.bin")]);
    assert!(
        out.status.success() && out.stdout == big,
        "cat over the socket differs"
    );
    // Errors come back as the daemon words them, and change nothing.
    node.fails(&["cat", &format!("{root}/nope")], "nope");
    // Config changes go through the daemon, which writes config.toml.
    node.ok(&["config", "set", "api.max_connections", "5"]);
    node.ok(&["config", "set", "Discovery.MDNS.Enabled", "false"]);
    assert_eq!(node.ok(&["config", "get", "API.MaxConnections"]), "5\n");
    assert_eq!(
        node.ok(&["config", "get", "Discovery.MDNS.Enabled"]),
        "false\n"
    );
    d.stop();
    assert_eq!(node.ok(&["config", "get", "api.max_connections"]), "5\n");
    assert_eq!(
        node.ok(&["config", "get", "Discovery.MDNS.Enabled"]),
        "false\n"
    );
    // The daemon removed its api file on the way out: the CLI opens the repo again.
    assert!(!node.repo().join("api").exists());
    assert!(node.ok(&["pin", "ls"]).contains(&root));
    // A stale api file (a daemon killed uncleanly) falls back to the repo; an explicit --api
    // that answers nothing is an error.
    std::fs::write(node.repo().join("api"), "/ip4/127.0.0.1/tcp/9").expect("write");
    assert!(node.ok(&["pin", "ls"]).contains(&root));
    node.fails(
        &["--api", "/ip4/127.0.0.1/tcp/9", "pin", "ls"],
        "connect to the daemon",
    );
}

/// A node whose API needs `Authorization: Bearer s3cret`.
fn node_with_secret() -> Node {
    let node = Node::new();
    node.ok(&[
        "config",
        "set",
        "api.authorizations",
        r#"{ ci = { auth_secret = "bearer:s3cret", allowed_paths = ["/api/v0"] } }"#,
    ]);
    node
}

#[test]
fn cli_passes_api_secrets() {
    let node = node_with_secret();
    let d = Daemon::start(&node);
    node.fails(&["pin", "ls"], "Access Denied");
    assert!(node
        .cmd(&["pin", "ls"])
        .env("IPFS_KIT_API_AUTH", "bearer:s3cret")
        .output()
        .expect("run")
        .status
        .success());
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
    // On the localhost name, path requests move to the subdomain gateway (as Kubo), which
    // serves the root at /; on 127.0.0.1 (above) it is a path gateway.
    let port = d.gateway.rsplit(':').next().expect("port");
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .args(["-H", &format!("Host: localhost:{port}")])
        .arg(format!("{}/ipfs/{dir}/hello.txt", d.gateway))
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let label = out
        .strip_prefix("301 http://")
        .and_then(|r| r.split_once(".ipfs.localhost:"))
        .map(|(label, _)| label.to_string())
        .unwrap_or_else(|| panic!("not a move to the subdomain: {out}"));
    assert!(label.starts_with("bafybei"), "{label}");
    assert_eq!(
        out,
        format!("301 http://{label}.ipfs.localhost:{port}/hello.txt")
    );
    let (status, body) = curl(&[
        "-H",
        &format!("Host: {label}.ipfs.localhost:{port}"),
        &format!("{}/hello.txt", d.gateway),
    ]);
    assert_eq!((status, &body[..]), (200, &b"hello gateway\n"[..]));
    // A name nobody published is not found (the daemon has no peers to ask).
    let (status, _) = curl(&[&format!(
        "{}/routing/v1/ipns/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8",
        d.gateway
    )]);
    assert_eq!(status, 404);
    // The gateway's requests are counted next to the RPC API's.
    let (status, body) = curl(&[&format!("{}/debug/metrics/prometheus", d.url)]);
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("ipfs_kit_gateway_requests_total{command=\"ipfs\",status=\"206\"} 1"),
        "{text}"
    );
    assert!(text.contains("ipfs_kit_gateway_sent_bytes_total"), "{text}");
    // The big file was read again for the range request: from the block cache.
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(value("ipfs_kit_block_cache_hits_total") > 0, "{text}");
    assert!(value("ipfs_kit_block_cache_misses_total") > 0, "{text}");
    assert_eq!(value("ipfs_kit_block_cache_capacity_bytes"), 256 << 20);
    d.stop();
    assert!(
        !node.repo().join("gateway").exists(),
        "gateway file removed on exit"
    );
}

/// `config` over the API as Kubo clients use it: get and set by Kubo's names, free-form keys,
/// `config/replace`, and the refusals that keep the identity and the API secrets safe.
#[test]
fn rpc_config_set_get_replace_and_refusals() {
    let node = node_with_secret();
    let d = Daemon::start(&node);
    let call = |q: &str| {
        let (status, body) = curl(&[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer s3cret",
            &format!("{}/api/v0/{q}", d.url),
        ]);
        (status, json(&body))
    };
    // Set and get by Kubo's names; the answer is Kubo's {"Key","Value"}.
    let (status, v) = call("config?arg=Fruit&arg=banana");
    assert_eq!(
        (status, v),
        (
            200,
            serde_json::json!({ "Key": "Fruit", "Value": "banana" })
        )
    );
    assert_eq!(call("config?arg=Fruit").1["Value"], "banana");
    let (status, v) = call("config?arg=Discovery.MDNS.Interval&arg=11&json=true");
    assert_eq!((status, &v["Value"]), (200, &serde_json::json!(11)));
    let (_, v) = call("config?arg=Datastore.HashOnRead&arg=false&bool=true");
    assert_eq!(v["Value"], false);
    let (_, v) = call("config?arg=Addresses.Gateway&arg=/ip4/127.0.0.1/tcp/8081");
    assert_eq!(v["Value"], "/ip4/127.0.0.1/tcp/8081");
    let origins = "%5B%22http%3A%2F%2Fexample.io%22%5D";
    let (_, v) = call(&format!(
        "config?arg=API.HTTPHeaders.Access-Control-Allow-Origin&arg={origins}&json=true"
    ));
    assert_eq!(v["Value"], serde_json::json!(["http://example.io"]));
    // Our own spellings work too, and see the same settings.
    assert_eq!(call("config?arg=datastore.verify_reads").1["Value"], false);
    assert_eq!(
        call("config?arg=Addresses.Swarm").1["Value"],
        serde_json::json!(["/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"])
    );
    // Bad values change nothing.
    assert_eq!(
        call("config?arg=Datastore.HashOnRead&arg=maybe&bool=true").0,
        500
    );
    assert_eq!(call("config?arg=Datastore.HashOnRead&arg=yes").0, 500);
    assert_eq!(call("config?arg=Fruit&arg=%7Bx&json=true").0, 500);
    assert_eq!(call("config?arg=Bananas").0, 500);
    // Refusals: the private key is never shown nor changed, the identity never changed, the
    // API secrets never shown.
    for q in [
        "config?arg=Identity.PrivKey",
        "config?arg=Identity",
        "config?arg=identity.private_key",
        "config?arg=Identity.PrivKey&arg=x",
        "config?arg=Identity.PeerID&arg=x",
        "config?arg=API.Authorizations",
        "config?arg=api.authorizations.ci.auth_secret",
    ] {
        let (status, v) = call(q);
        assert_eq!(status, 500, "{q}: {v}");
    }
    let (_, show) = call("config/show");
    let text = show.to_string();
    assert!(
        !text.contains("s3cret") && !text.contains("PrivKey"),
        "{text}"
    );
    assert_eq!(show["Fruit"], "banana");
    assert_eq!(show["Discovery"]["MDNS"]["Interval"], 11);
    assert!(show["Identity"]["PeerID"]
        .as_str()
        .is_some_and(|p| p.starts_with("12D3KooW")));

    // Replace: a private key is refused; otherwise the identity and secrets stay.
    let file = node.dir.path().join("new-config.json");
    let replace = |body: &str| {
        std::fs::write(&file, body).expect("write");
        let (status, body) = curl(&[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer s3cret",
            "-F",
            &format!("file=@{}", file.display()),
            &format!("{}/api/v0/config/replace", d.url),
        ]);
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let (status, body) = replace(r#"{"Identity":{"PrivKey":"CAESQ..."}}"#);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("private key"), "{body}");
    assert_eq!(call("config?arg=Fruit").1["Value"], "banana");
    let (status, body) =
        replace(r#"{"Fruit":"apple","Addresses":{"API":"/ip4/127.0.0.1/tcp/5009"}}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(call("config?arg=Fruit").1["Value"], "apple");
    // The rest went back to its defaults.
    assert_eq!(call("config?arg=Datastore.HashOnRead").1["Value"], true);
    assert_eq!(call("config?arg=Discovery").0, 500);
    d.stop();

    // Everything was written to config.toml: the repo reads it back after the daemon stops,
    // with the same identity and the API secret still in force.
    let text = std::fs::read_to_string(node.repo().join("config.toml")).expect("config");
    assert!(
        text.contains("[extra]") && text.contains("Fruit = \"apple\""),
        "{text}"
    );
    assert_eq!(
        node.ok(&["config", "get", "addresses.api"]),
        "[\"/ip4/127.0.0.1/tcp/5009\"]\n"
    );
    assert_eq!(
        node.ok(&["config", "get", "api.authorizations.ci.auth_secret"]),
        "bearer:s3cret\n"
    );
    assert!(node.ok(&["id"]).contains("12D3KooW"));
}

/// `files`, `key` and `name` through a running daemon print what they print on the repo: the
/// same commands, run again locally once the daemon has stopped, give the same output.
#[test]
fn cli_files_keys_and_names_through_a_daemon() {
    let node = Node::new();
    let d = Daemon::start(&node);
    let hello = node.dir.path().join("hello.txt");
    std::fs::write(&hello, b"Hello world").expect("write");
    node.ok(&["files", "mkdir", "-p", "/docs/a"]);
    node.ok(&[
        "files",
        "write",
        "-e",
        "/docs/a/hi.txt",
        hello.to_str().expect("p"),
    ]);
    let out = node.run_stdin(
        &["files", "write", "-e", "-p", "/in/stdin.txt"],
        b"from stdin",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(node.ok(&["files", "read", "/docs/a/hi.txt"]), "Hello world");
    assert_eq!(
        node.ok(&["files", "read", "-o", "6", "-n", "3", "/docs/a/hi.txt"]),
        "wor"
    );
    assert_eq!(node.ok(&["files", "read", "/in/stdin.txt"]), "from stdin");
    // Kubo's MFS CID for this content, as the local test finds it.
    assert_eq!(
        node.ok(&["files", "stat", "--hash", "/docs/a/hi.txt"]),
        "Qmetpc7cZmN25Wcc6R27cGCAvCDqCS5GjHG4v7xABEfpmJ\n"
    );
    node.ok(&["files", "cp", "/docs/a/hi.txt", "/docs/copy.txt"]);
    node.ok(&["files", "mv", "/in", "/moved"]);
    node.fails(&["files", "rm", "/docs"], "use -r to remove directories");
    node.ok(&["files", "rm", "-r", "/moved"]);
    node.fails(
        &["files", "read", "/moved/stdin.txt"],
        "file does not exist",
    );

    let id = node.ok(&["key", "gen", "mykey"]);
    assert!(id.starts_with("k51"), "{id}");
    node.fails(&["key", "gen", "mykey"], "already exists");
    node.ok(&["key", "gen", "other"]);
    let renamed = node.ok(&["key", "rename", "other", "third"]);
    assert!(
        renamed.starts_with("Key k51") && renamed.ends_with(" renamed to third\n"),
        "{renamed}"
    );
    node.ok(&["key", "rm", "third"]);
    let exported = node.dir.path().join("mykey.key");
    let exported = exported.to_str().expect("p");
    node.ok(&["key", "export", "mykey", "-o", exported]);
    node.fails(
        &["key", "export", "mykey", "-o", exported],
        "already exists",
    );
    assert_eq!(node.ok(&["key", "import", "copy", exported]), id);
    node.ok(&["key", "rm", "copy"]);
    let cid = node.ok(&["add", "-Q", hello.to_str().expect("p")]);
    let cid = cid.trim();
    node.fails(&["name", "publish", cid], "offline");
    let published = node.ok(&["name", "publish", "--allow-offline", "--key", "mykey", cid]);
    assert_eq!(
        published,
        format!("Published to {}: /ipfs/{cid}\n", id.trim())
    );

    // What the daemon answered, and what the repo answers once it is gone.
    let reads: [&[&str]; 8] = [
        &["files", "ls", "/docs"],
        &["files", "ls", "-l", "/docs"],
        &["files", "stat", "/docs"],
        &["files", "stat", "--size", "/docs/a/hi.txt"],
        &["files", "flush"],
        &["key", "list"],
        &["key", "list", "-l"],
        &["name", "resolve", id.trim()],
    ];
    let remote: Vec<String> = reads.iter().map(|a| node.ok(a)).collect();
    assert_eq!(remote[0], "a\ncopy.txt\n");
    assert_eq!(remote[5], "self\nmykey\n");
    assert_eq!(remote[7], format!("/ipfs/{cid}\n"));
    assert!(node.repo().join("api").exists(), "the daemon was not used");
    d.stop();
    let local: Vec<String> = reads.iter().map(|a| node.ok(a)).collect();
    assert_eq!(remote, local);
}

/// (status, lower-cased header block, body) of a gateway request.
fn curl_full(args: &[&str]) -> (u16, String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-i"])
        .args(args)
        .output()
        .expect("curl");
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head, raw[split + 4..].to_vec())
}

/// Delegated routing on the gateway (`/routing/v1/providers|peers|ipns`, GET and PUT), and
/// IPNS over the DHT and pubsub between two daemons.
#[test]
fn delegated_routing_and_ipns_between_two_daemons() {
    let (na, nb) = (Node::new(), Node::new());
    let flags = ["--routing", "dhtserver", "--enable-namesys-pubsub"];
    let a = Daemon::start_with(&na, &flags);
    let b = Daemon::start_with(&nb, &flags);
    let a_addr = na
        .ok(&["swarm", "addrs", "local", "--id"])
        .lines()
        .next()
        .expect("an address")
        .to_string();
    nb.ok(&["swarm", "connect", &a_addr]);
    let a_id = a_addr.rsplit("/p2p/").next().expect("id").to_string();

    // Providers: none for content nobody holds is 404 (cacheable briefly); a's announced CID
    // is found from b.
    let file = na.dir.path().join("routed.txt");
    std::fs::write(&file, b"delegated routing\n").expect("write");
    let unheld = na.dir.path().join("unheld.txt");
    std::fs::write(&unheld, b"held by nobody\n").expect("write");
    let nobody = na.ok(&["add", "-Q", "--only-hash", unheld.to_str().expect("p")]);
    let (status, head, _) = curl_full(&[&format!(
        "{}/routing/v1/providers/{}",
        b.gateway,
        nobody.trim()
    )]);
    assert_eq!(status, 404, "{head}");
    let cid = na.ok(&["add", "-Q", file.to_str().expect("p")]);
    let cid = cid.trim();
    assert!(head.contains("cache-control: public, max-age=15"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    eventually("a provides", || {
        na.run(&["routing", "provide", cid])
            .status
            .success()
            .then_some(())
    });
    let (head, body) = eventually("b finds a as provider", || {
        let (status, head, body) =
            curl_full(&[&format!("{}/routing/v1/providers/{cid}", b.gateway)]);
        (status == 200).then_some((head, body))
    });
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains("cache-control: public, max-age=300"),
        "{head}"
    );
    let v = json(&body);
    assert_eq!(v["Providers"][0]["Schema"], "peer");
    assert_eq!(v["Providers"][0]["ID"], a_id.as_str());
    let (status, head, body) = curl_full(&[
        "-H",
        "Accept: application/x-ndjson",
        &format!("{}/routing/v1/providers/{cid}", b.gateway),
    ]);
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/x-ndjson"),
        "{head}"
    );
    let line = String::from_utf8(body).expect("utf-8");
    assert_eq!(
        json(line.lines().next().expect("a line").as_bytes())["ID"],
        a_id.as_str()
    );
    let (status, _, _) = curl_full(&[&format!("{}/routing/v1/providers/not-a-cid", b.gateway)]);
    assert_eq!(status, 400);

    // Peers: a, with the addresses and protocols b knows.
    let (status, _, body) = curl_full(&[&format!("{}/routing/v1/peers/{a_id}", b.gateway)]);
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["Peers"][0]["ID"], a_id.as_str());
    let protocols = v["Peers"][0]["Protocols"].to_string();
    assert!(protocols.contains("/ipfs/lan/kad/1.0.0"), "{protocols}");

    // IPNS: a publishes online (b takes the record), b resolves it over the DHT, and the
    // gateways serve the signed record.
    let published = na.ok(&["name", "publish", "--ttl", "1h", cid]);
    let name = published
        .strip_prefix("Published to ")
        .and_then(|r| r.split(':').next())
        .expect("name")
        .to_string();
    assert_eq!(nb.ok(&["name", "resolve", &name]), format!("/ipfs/{cid}\n"));
    let (status, head, record) = curl_full(&[&format!("{}/routing/v1/ipns/{name}", b.gateway)]);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: application/vnd.ipfs.ipns-record"),
        "{head}"
    );
    assert!(
        head.contains("cache-control: public, max-age=3600"),
        "{head}"
    );
    assert!(head.contains("etag: \""), "{head}");
    // (The gateway reads local blocks: fetch the content first.)
    assert_eq!(
        nb.ok(&["cat", &format!("/ipns/{name}")]),
        "delegated routing\n"
    );
    let (status, _, body) = curl_full(&[&format!("{}/ipns/{name}", b.gateway)]);
    assert_eq!((status, &body[..]), (200, &b"delegated routing\n"[..]));
    // `routing get` returns the same signed bytes.
    let got = nb
        .cmd(&["routing", "get", &format!("/ipns/{name}")])
        .output()
        .expect("get");
    assert_eq!(got.stdout, record);
    // Over the RPC API, in Kubo's shapes: one Value event with the record in base64.
    let (status, body) = b.call("POST", &format!("/api/v0/routing/get?arg=/ipns/{name}"));
    assert_eq!(status, 200);
    let event = json(&body);
    assert_eq!(event["Type"], 5);
    use base64::Engine as _;
    let extra = base64::engine::general_purpose::STANDARD
        .decode(event["Extra"].as_str().expect("Extra"))
        .expect("base64");
    assert_eq!(extra, record);
    let (status, body) = b.call("POST", &format!("/api/v0/dht/query?arg={a_id}"));
    assert_eq!(status, 200);
    let event = json(body.split(|c| *c == b'\n').next().expect("a line"));
    assert_eq!(
        (event["Type"].as_u64(), event["ID"].as_str()),
        (Some(2), Some(a_id.as_str()))
    );
    let (status, body) = b.call("POST", "/api/v0/routing/get?arg=/v/x");
    assert_eq!(status, 500);
    assert!(json(&body)["Message"]
        .as_str()
        .expect("msg")
        .contains("invalid key"));

    // PUT: the record is accepted for its own name only, in the record's media type.
    let rec_file = nb.dir.path().join("a.ipns-record");
    std::fs::write(&rec_file, &record).expect("write");
    let put = |url: &str, ctype: &str, file: &Path| {
        curl_full(&[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {ctype}"),
            "--data-binary",
            &format!("@{}", file.display()),
            url,
        ])
        .0
    };
    let at = |n: &str| format!("{}/routing/v1/ipns/{n}", a.gateway);
    assert_eq!(
        put(&at(&name), "application/vnd.ipfs.ipns-record", &rec_file),
        200
    );
    assert_eq!(put(&at(&name), "application/octet-stream", &rec_file), 406);
    let other = nb.ok(&["key", "gen", "other"]);
    assert_eq!(
        put(
            &at(other.trim()),
            "application/vnd.ipfs.ipns-record",
            &rec_file
        ),
        400
    );
    let junk = nb.dir.path().join("junk");
    std::fs::write(&junk, b"junk").expect("write");
    assert_eq!(
        put(&at(&name), "application/vnd.ipfs.ipns-record", &junk),
        400
    );
    // `routing put` validates too.
    nb.fails(
        &[
            "routing",
            "put",
            &format!("/ipns/{}", other.trim()),
            rec_file.to_str().expect("p"),
        ],
        "signature",
    );
    assert_eq!(
        nb.ok(&[
            "routing",
            "put",
            &format!("/ipns/{name}"),
            rec_file.to_str().expect("p")
        ])
        .trim(),
        a_id
    );

    // IPNS over pubsub: b follows the name since it resolved it; a newer record reaches it
    // over pubsub, which drops b's cached answer (its TTL is an hour) before it expires.
    assert_eq!(nb.ok(&["name", "pubsub", "state"]), "enabled\n");
    assert_eq!(
        nb.ok(&["name", "pubsub", "subs"]),
        format!("/ipns/{name}\n")
    );
    let file2 = na.dir.path().join("v2.txt");
    std::fs::write(&file2, b"second version\n").expect("write");
    let cid2 = na.ok(&["add", "-Q", file2.to_str().expect("p")]);
    let cid2 = cid2.trim().to_string();
    eventually("b resolves the new record", || {
        // Each publish is a fresh message (same value and sequence, a later end of life);
        // the first may go out before a has heard of b's subscription.
        na.ok(&["name", "publish", "--ttl", "1h", &cid2]);
        let r = nb.ok(&["name", "resolve", &name]);
        (r == format!("/ipfs/{cid2}\n")).then_some(())
    });
    assert_eq!(nb.ok(&["name", "pubsub", "cancel", &name]), "canceled\n");
    assert_eq!(nb.ok(&["name", "pubsub", "subs"]), "");
    let b_id = nb.ok(&["swarm", "addrs", "local", "--id"]);
    let b_id = b_id
        .lines()
        .next()
        .and_then(|l| l.rsplit("/p2p/").next())
        .expect("id");
    assert_eq!(na.ok(&["dht", "query", &a_id]), format!("{b_id}\n"));
    // b's gateway fetches what only a has, over bitswap.
    let only_a = na.dir.path().join("only-a.txt");
    std::fs::write(&only_a, b"held by a alone\n").expect("write");
    let only_a = na.ok(&["add", "-Q", only_a.to_str().expect("p")]);
    let only_a = only_a.trim();
    assert!(!nb.local_refs().iter().any(|r| r == only_a));
    let (status, head, body) = curl_full(&[&format!("{}/ipfs/{only_a}", b.gateway)]);
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"held by a alone\n"[..]),
        "{head}"
    );
    a.stop();
    b.stop();

    // Offline, delegated routing has nothing to ask: 501.
    let c = Daemon::start_with(&na, &["--offline"]);
    let (status, _, _) = curl_full(&[&format!("{}/routing/v1/providers/{cid}", c.gateway)]);
    assert_eq!(status, 501);
    let (status, body) = c.call("POST", &format!("/api/v0/routing/get?arg=/ipns/{name}"));
    assert_eq!(status, 500);
    assert!(json(&body)["Message"]
        .as_str()
        .expect("msg")
        .contains("online mode"));
    assert_eq!(
        json(&c.call("POST", "/api/v0/name/pubsub/state").1)["Enabled"],
        false
    );
    c.stop();
}

/// IPNS over pubsub with no DHT at all, as go-libp2p-pubsub-router does it: a publishes once;
/// b, which meets a only afterwards, fetches the record from a over `/libp2p/fetch/0.0.1` as it
/// follows the name; c, which knows only b, fetches it from b (a follower serves what it
/// holds); a newer record then reaches c through b over gossipsub, replacing c's cached one;
/// after a restart, a serves its name to a newcomer straight away.
#[test]
fn ipns_over_pubsub_alone_reaches_late_joiners() {
    let (na, nb, nc) = (Node::new(), Node::new(), Node::new());
    let flags = ["--routing", "none", "--enable-namesys-pubsub"];
    let (a, b, c) = (
        Daemon::start_with(&na, &flags),
        Daemon::start_with(&nb, &flags),
        Daemon::start_with(&nc, &flags),
    );
    let addr = |n: &Node| {
        n.ok(&["swarm", "addrs", "local", "--id"])
            .lines()
            .next()
            .expect("an address")
            .to_string()
    };
    let publish = |text: &str| {
        let file = na.dir.path().join("v.txt");
        std::fs::write(&file, text).expect("write");
        let cid = na.ok(&["add", "-Q", file.to_str().expect("p")]);
        let out = na.ok(&["name", "publish", "--ttl", "1h", cid.trim()]);
        let name = out
            .strip_prefix("Published to ")
            .and_then(|r| r.split(':').next())
            .expect("name")
            .to_string();
        (name, cid.trim().to_string())
    };
    // With nobody to hear it and no DHT, the record is still published: a keeps it for
    // whoever joins the name's topic.
    let (name, cid1) = publish("first\n");
    let topic = na.ok(&["pubsub", "ls"]);
    assert!(topic.starts_with("/record/"), "{topic}");
    nb.ok(&["swarm", "connect", &addr(&na)]);
    let resolve = |n: &Node, want: &str| {
        eventually("the name resolves", || {
            let out = n.run(&["name", "resolve", &name]);
            (String::from_utf8_lossy(&out.stdout) == format!("/ipfs/{want}\n")).then_some(())
        })
    };
    resolve(&nb, &cid1);
    assert_eq!(
        nb.ok(&["name", "pubsub", "subs"]),
        format!("/ipns/{name}\n")
    );
    nc.ok(&["swarm", "connect", &addr(&nb)]);
    resolve(&nc, &cid1);
    // a is not c's peer: c's copy came from b.
    assert!(!nc
        .ok(&["swarm", "peers"])
        .contains(&addr(&na).rsplit("/p2p/").next().expect("id").to_string()));
    let (_, cid2) = publish("second\n");
    resolve(&nc, &cid2);
    b.stop();
    c.stop();

    // a restarts and serves its name at once (not only when its republisher runs, a minute
    // later): d, which knows only a, fetches the record from it.
    a.stop();
    let a = Daemon::start_with(&na, &flags);
    let nd = Node::new();
    let d = Daemon::start_with(&nd, &flags);
    nd.ok(&["swarm", "connect", &addr(&na)]);
    resolve(&nd, &cid2);
    a.stop();
    d.stop();
}

/// The IPNS republisher re-signs the node's records and puts them again: the record the other
/// daemon holds changes (a later end of life) while the name keeps resolving to the same path.
#[test]
fn the_republisher_renews_records_in_the_dht() {
    let (na, nb) = (Node::new(), Node::new());
    na.ok(&["config", "set", "ipns.republish_period", "1s"]);
    let a = Daemon::start_with(&na, &["--routing", "dhtserver"]);
    let b = Daemon::start_with(&nb, &["--routing", "dhtserver"]);
    let a_addr = na.ok(&["swarm", "addrs", "local", "--id"]);
    nb.ok(&[
        "swarm",
        "connect",
        a_addr.lines().next().expect("an address"),
    ]);
    let file = na.dir.path().join("r.txt");
    std::fs::write(&file, b"republished\n").expect("write");
    let cid = na.ok(&["add", "-Q", file.to_str().expect("p")]);
    let cid = cid.trim();
    let published = eventually("a publishes", || {
        let out = na.run(&["name", "publish", "--lifetime", "1h", cid]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let name = published
        .strip_prefix("Published to ")
        .and_then(|r| r.split(':').next())
        .expect("name")
        .to_string();
    let get = || {
        nb.cmd(&["routing", "get", &format!("/ipns/{name}")])
            .output()
            .expect("get")
            .stdout
    };
    let first = get();
    assert!(!first.is_empty());
    eventually("b holds a renewed record", || {
        (get() != first).then_some(())
    });
    assert_eq!(nb.ok(&["name", "resolve", &name]), format!("/ipfs/{cid}\n"));
    a.stop();
    b.stop();
}
