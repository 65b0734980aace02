//! End-to-end tests of the `ipfs-kit` binary on real repos: golden CIDs over the cid-parity
//! corpus, round trips, CAR fixtures, error handling that changes nothing, and crash safety.

mod crash;
mod daemon;
mod interop;
mod names;
mod netns;
mod network;
mod storage;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub(crate) fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipfs-kit"));
    c.env_remove("IPFS_KIT_PATH");
    c
}

pub(crate) struct Node {
    pub dir: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = Node { dir };
        n.ok(&["init"]);
        n
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.arg("--repo-dir").arg(self.repo()).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn ipfs-kit")
    }

    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ipfs-kit {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// `config set` of each (key, JSON value), in order: each must leave a valid config.
    pub fn config_set(&self, settings: &[(&str, &str)]) {
        for (key, value) in settings {
            self.ok(&["config", "set", key, value]);
        }
    }

    /// Runs a command that must fail with a one-line error mentioning `needle`.
    pub fn fails(&self, args: &[&str], needle: &str) {
        let out = self.run(args);
        check_failure(&out, args, needle);
    }

    /// Writes `size` pseudo-random bytes (seeded by `name`) to file `name` in the test
    /// directory and adds it, pinned or not; its CID.
    pub fn add_generated(&self, name: &str, size: usize, pin: bool) -> String {
        let path = self.dir.path().join(name);
        let seed = name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        std::fs::write(&path, random_bytes(size, seed)).expect("write");
        let pin = format!("--pin={pin}");
        self.ok(&["add", "-Q", &pin, path.to_str().expect("utf-8")])
            .trim()
            .to_string()
    }

    pub fn local_refs(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ok(&["refs", "local"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }
}

/// `len` pseudo-random bytes (xorshift; fast, and no two seeds alike).
pub(crate) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Polls `f` until it gives a value (each try a fresh lookup), for what travels through the
/// network in the background (identify, DHT tables, gossipsub meshes).
pub(crate) fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..150 {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{what}: never happened");
}

fn check_failure(out: &Output, args: &[&str], needle: &str) {
    assert!(!out.status.success(), "ipfs-kit {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error for {args:?} is not one line: {err}"
    );
    assert!(err.starts_with("Error: "), "{err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "error for {args:?} lacks {needle:?}: {err}"
    );
}

fn parity() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kubo/cid-parity.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("read cid-parity.json")).expect("json")
}

/// The corpus materialised by `shared/kubo/make_cid_corpus.py --generate-only`, once per test
/// process: tests run in parallel, and a second generation into the same directory would
/// rewrite files another test is hashing.
fn corpus() -> PathBuf {
    static CORPUS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CORPUS.get_or_init(generate_corpus).clone()
}

fn generate_corpus() -> PathBuf {
    if let Some(dir) = std::env::var_os("IPFS_KIT_CORPUS") {
        let dir = PathBuf::from(dir);
        if dir.join(".complete").exists() {
            return dir;
        }
    }
    // The same place scripts/test.sh uses, so runs without IPFS_KIT_CORPUS share one corpus
    // (half a gigabyte) instead of leaving one behind each.
    let shared = std::env::temp_dir().join("ipfs-kit-cid-corpus");
    if shared.join(".complete").exists() {
        return shared;
    }
    let dir = std::env::temp_dir().join(format!("ipfs-kit-corpus-{}", std::process::id()));
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kubo/make_cid_corpus.py"))
        .args(["--generate-only", "--out-dir"])
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("python3 runs the corpus generator");
    assert!(status.success(), "corpus generation failed");
    std::fs::write(dir.join(".complete"), b"").expect("mark corpus");
    // Another run may have got there first: then use its corpus and drop ours (a half-made
    // one in the way, from a run that was killed, leaves ours where it is).
    match std::fs::rename(&dir, &shared) {
        Ok(()) => shared,
        Err(_) if shared.join(".complete").exists() => {
            let _ = std::fs::remove_dir_all(&dir);
            shared
        }
        Err(_) => dir,
    }
}

#[test]
fn golden_cids_from_the_command_line() {
    let node = Node::new();
    let corpus = corpus();
    let p = parity();
    let mut checked = 0;
    for (kind, items) in [("files", &p["files"]), ("dirs", &p["directories"])] {
        for item in items.as_array().expect("items") {
            let name = item["name"].as_str().expect("name");
            let path = corpus.join(kind).join(name);
            let path = path.to_str().expect("utf-8 path");
            let expected = item
                .get("cid_ipip499")
                .unwrap_or(&item["cid"])
                .as_str()
                .expect("cid");
            let got = node.ok(&["add", "-Q", "--only-hash", "-r", path]);
            assert_eq!(got.trim(), expected, "{name}");
            if item.get("cid_ipip499").is_some() {
                let old = node.ok(&["add", "-Q", "--only-hash", "--profile", "kubo-v0.22", path]);
                assert_eq!(
                    old.trim(),
                    item["cid"].as_str().expect("cid"),
                    "{name} with the Kubo 0.22 rule"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 30);
    assert!(node.local_refs().is_empty(), "--only-hash stored blocks");
}

#[test]
fn add_cat_ls_get_round_trip() {
    let node = Node::new();
    let corpus = corpus();
    let tree = corpus.join("dirs/tree");
    let out = node.ok(&["add", "-r", tree.to_str().expect("path")]);
    let last = out.lines().last().expect("output");
    assert_eq!(
        last,
        "added QmdPu8BRgdea2syEeZP2yXs5QUfxwB6tZSW3pb5C2m6U7N tree"
    );
    assert!(out.contains(" tree/a/one.bin\n"), "{out}");
    let root = "QmdPu8BRgdea2syEeZP2yXs5QUfxwB6tZSW3pb5C2m6U7N";
    assert_eq!(
        node.ok(&["cat", &format!("/ipfs/{root}/README.txt")]),
        "hello ipfs-kit\n"
    );
    let one = std::fs::read(tree.join("a/one.bin")).expect("read");
    let part = node
        .cmd(&[
            "cat",
            &format!("{root}/a/one.bin"),
            "--offset",
            "1000",
            "--length",
            "262144",
        ])
        .output()
        .expect("cat");
    assert!(part.status.success());
    assert!(
        part.stdout == one[1000..1000 + 262144],
        "ranged cat differs"
    );
    let ls = node.ok(&["ls", root]);
    assert!(
        ls.contains(" README.txt\n") && ls.contains(" - a/\n"),
        "{ls}"
    );
    let out_dir = node.dir.path().join("out");
    node.ok(&["get", root, "-o", out_dir.to_str().expect("path")]);
    assert_same_tree(&tree, &out_dir);
    // The same tree as a tar archive, read back by the system's tar.
    let tar = node.dir.path().join("tree.tar");
    node.ok(&["get", "-a", root, "-o", tar.to_str().expect("path")]);
    let untar = node.dir.path().join("untar");
    std::fs::create_dir(&untar).expect("mkdir");
    let st = Command::new("tar")
        .arg("xf")
        .arg(&tar)
        .arg("-C")
        .arg(&untar)
        .status()
        .expect("run tar");
    assert!(st.success());
    assert_same_tree(&tree, &untar.join(root));
    assert!(node
        .ok(&["pin", "ls", "--type", "recursive"])
        .contains(&format!("{root} recursive")));
    assert_eq!(
        node.ok(&["resolve", &format!("/ipfs/{root}/a")]).trim(),
        format!(
            "/ipfs/{}",
            node.ok(&["add", "-Q", "-n", "-r", tree.join("a").to_str().expect("p")])
                .trim()
        )
    );
    // stdin
    let out = node.run_stdin(&["add", "-Q"], b"hello world\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
    // a sharded directory lists completely
    let hamt = corpus.join("dirs/hamt-10000");
    let root = node.ok(&["add", "-Q", "-r", hamt.to_str().expect("path")]);
    assert_eq!(node.ok(&["ls", root.trim()]).lines().count(), 10_000);
    assert_eq!(
        node.ok(&["cat", &format!("{}/file-01234.txt", root.trim())]),
        "1234\n"
    );
    node.ok(&["repo", "verify"]);
}

pub(crate) fn assert_same_tree(a: &Path, b: &Path) {
    let ma = std::fs::symlink_metadata(a).expect("stat a");
    let mb = std::fs::symlink_metadata(b).expect("stat b");
    assert_eq!(
        ma.file_type().is_dir(),
        mb.file_type().is_dir(),
        "{}",
        b.display()
    );
    assert_eq!(
        ma.file_type().is_symlink(),
        mb.file_type().is_symlink(),
        "{}",
        b.display()
    );
    if ma.file_type().is_symlink() {
        assert_eq!(
            std::fs::read_link(a).expect("link"),
            std::fs::read_link(b).expect("link")
        );
    } else if ma.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(a)
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        names.sort();
        let mut names_b: Vec<_> = std::fs::read_dir(b)
            .expect("ls")
            .map(|e| e.expect("e").file_name())
            .collect();
        names_b.sort();
        assert_eq!(names, names_b, "{}", b.display());
        for n in names {
            assert_same_tree(&a.join(&n), &b.join(&n));
        }
    } else {
        assert!(
            std::fs::read(a).expect("read") == std::fs::read(b).expect("read"),
            "{} differs",
            b.display()
        );
    }
}

#[test]
fn tar_archives_hold_long_paths() {
    let node = Node::new();
    let src = node.dir.path().join("long");
    // 150 + 1 + 99 bytes splits into USTAR's prefix and name; a 200-byte name needs PAX.
    let deep = src.join("d".repeat(150));
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("f".repeat(99)), b"split").expect("write");
    std::fs::write(src.join("n".repeat(200)), b"pax").expect("write");
    std::os::unix::fs::symlink("t".repeat(180), src.join("link")).expect("symlink");
    let root = node.ok(&["add", "-Q", "-r", src.to_str().expect("path")]);
    let tar = node.dir.path().join("long.tar");
    node.ok(&["get", "-a", root.trim(), "-o", tar.to_str().expect("path")]);
    let untar = node.dir.path().join("untar");
    std::fs::create_dir(&untar).expect("mkdir");
    let st = Command::new("tar")
        .arg("xf")
        .arg(&tar)
        .arg("-C")
        .arg(&untar)
        .status()
        .expect("run tar");
    assert!(st.success());
    assert_same_tree(&src, &untar.join(root.trim()));
    // Refuses to overwrite.
    node.fails(
        &["get", "-a", root.trim(), "-o", tar.to_str().expect("path")],
        "long.tar",
    );
}

#[test]
fn symlinks_round_trip() {
    let node = Node::new();
    let links = corpus().join("dirs/symlinks");
    let root = node.ok(&["add", "-Q", "-r", links.to_str().expect("p")]);
    assert_eq!(
        root.trim(),
        "QmcHFeDRBVgN7PHP2FB6QJJBANWjJD6wsjaAWBC1AKdZmw"
    );
    let out = node.dir.path().join("links-out");
    node.ok(&["get", root.trim(), "-o", out.to_str().expect("p")]);
    assert_same_tree(&links, &out);
}

#[test]
fn blocks_dags_and_cars() {
    let node = Node::new();
    let out = node.run_stdin(&["block", "put"], b"raw block");
    let cid = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    assert!(cid.starts_with("bafkrei"), "{cid}");
    assert_eq!(node.ok(&["block", "get", &cid]), "raw block");
    assert_eq!(
        node.ok(&["block", "stat", &cid]),
        format!("Key: {cid}\nSize: 9\n")
    );
    let out = node.run_stdin(&["dag", "put"], br#"{"hello":"world","link":{"/":"CID"}}"#);
    assert!(!out.status.success(), "a bad link must be refused");
    let doc = format!(r#"{{"hello":"world","n":[1,2,3],"raw":{{"/":"{cid}"}}}}"#);
    let out = node.run_stdin(&["dag", "put", "--pin"], doc.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dag = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    assert!(dag.starts_with("bafyrei"), "{dag}");
    assert_eq!(
        node.ok(&["dag", "get", &dag]),
        format!(r#"{{"hello":"world","n":[1,2,3],"raw":{{"/":"{cid}"}}}}"#)
    );
    assert_eq!(node.ok(&["dag", "get", &format!("{dag}/n/1")]), "2");
    assert_eq!(node.ok(&["refs", &dag]).trim(), cid);
    node.fails(&["block", "rm", &cid], "pinned");
    // export, then import into a fresh node
    let car = node.cmd(&["dag", "export", &dag]).output().expect("export");
    assert!(car.status.success());
    let other = Node::new();
    let out = other.run_stdin(&["dag", "import", "--stats"], &car.stdout);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("Pinned root\t{dag}\tsuccess"))
            && text.contains("Imported 2 blocks"),
        "{text}"
    );
    assert_eq!(other.ok(&["block", "get", &cid]), "raw block");
    // A CAR with one tampered byte is rejected whole.
    let mut bad = car.stdout.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let third = Node::new();
    let out = third.run_stdin(&["dag", "import"], &bad);
    check_failure(&out, &["dag", "import"], "");
    assert!(
        third.local_refs().is_empty(),
        "a rejected CAR stored blocks"
    );
    let out = third.run_stdin(&["dag", "import"], &car.stdout[..car.stdout.len() - 3]);
    check_failure(&out, &["dag", "import"], "truncated");
    assert!(
        third.local_refs().is_empty(),
        "a truncated CAR stored blocks"
    );
}

#[test]
fn car_fixtures_import_and_verify() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/clients/iic/fixtures/car");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("no fixtures at {}", dir.display());
        return;
    };
    let mut cars: Vec<String> = rd
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    cars.sort();
    assert!(cars.len() >= 5);
    // One import, as Kubo does it: every CAR first, then every root pinned. The "naked roots" CAR
    // carries no blocks; its roots are those of the other CARs.
    let node = Node::new();
    let mut args = vec!["dag", "import", "--stats"];
    args.extend(cars.iter().map(String::as_str));
    let out = node.ok(&args);
    assert!(!out.contains("FAILED"), "{out}");
    assert_eq!(out.matches("\tsuccess").count(), 8, "{out}");
    node.ok(&["repo", "verify"]);
    node.ok(&["pin", "verify"]);
    // Alone, the naked-roots CAR imports nothing and says which roots could not be pinned.
    let naked = cars
        .iter()
        .find(|c| c.contains("naked"))
        .expect("naked roots fixture");
    let alone = Node::new();
    let out = alone.run(&["dag", "import", naked]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
}

#[test]
fn bad_input_gets_one_line_errors_and_changes_nothing() {
    let node = Node::new();
    let file = node.dir.path().join("f.txt");
    std::fs::write(&file, b"some content").expect("write");
    node.ok(&["add", file.to_str().expect("p")]);
    let before = node.local_refs();
    let pins_before = node.ok(&["pin", "ls"]);
    node.fails(&["cat", "QmNotACid"], "invalid");
    node.fails(&["block", "get", "bafyfoo"], "invalid");
    node.fails(&["add", "/definitely/not/here"], "not/here");
    node.fails(
        &["add", "--chunker", "size-0", file.to_str().expect("p")],
        "greater than 0",
    );
    node.fails(
        &["add", "--chunker", "fixed-10", file.to_str().expect("p")],
        "chunker",
    );
    node.fails(&["add", "--hash", "md5", file.to_str().expect("p")], "md5");
    node.fails(
        &[
            "block",
            "put",
            "--cid-codec",
            "nope",
            file.to_str().expect("p"),
        ],
        "codec",
    );
    node.fails(
        &[
            "dag",
            "get",
            "--output-codec",
            "xml",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ],
        "codec",
    );
    node.fails(
        &[
            "pin",
            "add",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ],
        "not in the repo",
    );
    node.fails(
        &[
            "cat",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ],
        "not found",
    );
    let big = node.dir.path().join("big.bin");
    std::fs::write(&big, vec![1u8; 1024 * 1024 + 1]).expect("write");
    node.fails(
        &["block", "put", big.to_str().expect("p")],
        "allow-big-block",
    );
    let car = node.dir.path().join("x.car");
    std::fs::write(&car, b"\x0anot a car at all").expect("write");
    node.fails(&["dag", "import", car.to_str().expect("p")], "car");
    node.fails(&["init"], "already exists");
    node.fails(&["config", "set", "import.profile", "nope"], "profile");
    assert_eq!(
        node.local_refs(),
        before,
        "a failed command changed the blocks"
    );
    assert_eq!(
        node.ok(&["pin", "ls"]),
        pins_before,
        "a failed command changed the pins"
    );
    // A second process on the same repo is refused.
    let holder = ipfs_kit_node_holder(&node.repo());
    node.fails(&["add", file.to_str().expect("p")], "in use");
    drop(holder);
    let empty = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .arg("--repo-dir")
        .arg(empty.path().join("none"))
        .args(["refs", "local"])
        .output()
        .expect("run");
    check_failure(&out, &["refs", "local"], "init");
}

/// Holds the repo open in another process, as a daemon or a long add would.
fn ipfs_kit_node_holder(repo: &Path) -> std::process::Child {
    let mut child = bin()
        .arg("--repo-dir")
        .arg(repo)
        .args(["add", "-Q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn holder");
    // The holder has the lock once it reads stdin; a byte through proves it is running.
    use std::io::Write;
    let stdin = child.stdin.as_mut().expect("stdin");
    stdin.write_all(b"x").expect("write");
    stdin.flush().expect("flush");
    wait_for_lock(repo);
    child
}

fn wait_for_lock(repo: &Path) {
    // Polls the lock file, not a clock: the loop ends when the holder owns the lock.
    for _ in 0..10_000 {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(repo.join("repo.lock"));
        if let Ok(f) = f {
            if fs2::FileExt::try_lock_exclusive(&f).is_err() {
                return;
            }
            let _ = fs2::FileExt::unlock(&f);
        }
        std::thread::yield_now();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    panic!("holder never took the repo lock");
}

#[test]
fn gc_removes_only_unpinned_content() {
    let node = Node::new();
    let a = node.dir.path().join("a.txt");
    let b = node.dir.path().join("b.txt");
    std::fs::write(&a, vec![b'a'; 300_000]).expect("write");
    std::fs::write(&b, vec![b'b'; 300_000]).expect("write");
    let ca = node
        .ok(&["add", "-Q", a.to_str().expect("p")])
        .trim()
        .to_string();
    let cb = node
        .ok(&["add", "-Q", b.to_str().expect("p")])
        .trim()
        .to_string();
    node.ok(&["pin", "rm", &cb]);
    let removed = node.ok(&["repo", "gc"]);
    assert_eq!(removed.lines().count(), 3, "{removed}");
    assert_eq!(node.ok(&["cat", &ca]).len(), 300_000);
    node.fails(&["cat", &cb], "not found");
    node.ok(&["repo", "verify"]);
    node.ok(&["pin", "verify"]);
    let stat = node.ok(&["repo", "stat"]);
    assert!(stat.contains("NumObjects: 3"), "{stat}");
}

/// `daemon --enable-gc`: once the repo passes storage_gc_watermark percent of storage_max,
/// the daemon collects garbage by itself (unpinned content goes, pinned stays); under it,
/// nothing is collected; without the flag, nothing ever is.
#[test]
fn the_daemon_collects_garbage_once_the_repo_passes_its_storage_limit() {
    let node = Node::new();
    node.config_set(&[
        ("datastore.storage_max", "\"4MB\""),
        ("datastore.storage_gc_watermark", "50"),
        ("datastore.gc_period", "\"1s\""),
    ]);
    let kept = node.add_generated("kept.bin", 1_000_000, true);
    let garbage = node.add_generated("garbage.bin", 500_000, false);
    let stat = node.ok(&["repo", "stat"]);
    assert!(stat.contains("StorageMax: 4000000"), "{stat}");
    assert!(node.ok(&["refs", "local"]).contains(&garbage));

    // Under 2 MB (50% of 4 MB): a daemon with --enable-gc keeps the garbage.
    let daemon = Daemon::start_with(&node, &["--enable-gc"]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(node.run(&["cat", &garbage]).stdout.len(), 500_000);
    daemon.stop();
    // Past it: collected within a period or two.
    node.add_generated("more.bin", 1_500_000, true);
    let daemon = Daemon::start_with(&node, &["--enable-gc"]);
    eventually("the daemon collects the garbage", || {
        let refs = node.ok(&["refs", "local"]);
        (!refs.contains(&garbage)).then_some(())
    });
    assert_eq!(node.run(&["cat", &kept]).stdout.len(), 1_000_000);
    daemon.stop();
    node.ok(&["pin", "verify"]);
}

#[test]
fn config_and_identity() {
    let node = Node::new();
    let id: Value = serde_json::from_str(&node.ok(&["id"])).expect("json");
    assert!(id["ID"].as_str().expect("id").starts_with("12D3KooW"));
    assert_eq!(
        node.ok(&["config", "get", "import.profile"]).trim(),
        "unixfs-v0-2015"
    );
    node.ok(&["config", "set", "import.profile", "unixfs-v1-2025"]);
    let out = node.run_stdin(&["add", "-Q", "-n"], b"hello world");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    );
    assert!(node.ok(&["config", "show"]).contains("<redacted>"));
}

/// A daemon of `node` on free loopback ports (TCP API, a Unix-socket API, gateway, TCP swarm),
/// killed on drop if a test ends before `stop`.
pub(crate) struct Daemon {
    child: Child,
    /// The RPC API's base URL.
    pub(crate) url: String,
    /// The RPC API's Unix socket.
    pub(crate) socket: std::path::PathBuf,
    /// The gateway's base URL.
    pub(crate) gateway: String,
}

impl Daemon {
    /// Starts `ipfs-kit daemon` on an ephemeral loopback port and a Unix socket, and waits for
    /// "Daemon is ready" on its output.
    pub(crate) fn start(node: &Node) -> Daemon {
        Daemon::start_with(node, &[])
    }

    /// [`Daemon::start`] with more daemon arguments (`--offline`, `--routing dhtserver`, another
    /// `--swarm` address).
    pub(crate) fn start_with(node: &Node, extra: &[&str]) -> Daemon {
        let socket = node.dir.path().join("api.sock");
        let mut child = node
            .cmd(&[
                "daemon",
                "--api",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                &format!("/unix{}", socket.display()),
                // Not the default 8080 and 4001: tests run side by side.
                "--gateway",
                "/ip4/127.0.0.1/tcp/0",
                "--swarm",
                "/ip4/127.0.0.1/tcp/0",
            ])
            .args(extra)
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

    /// Stops the daemon with SIGTERM and checks that it exits cleanly.
    pub(crate) fn stop(mut self) {
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

/// A test that fails before `stop` must not leave its daemon running.
impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
