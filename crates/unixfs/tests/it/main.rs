//! Golden-CID suite: every item of `shared/kubo/cid-parity.json`, imported with the default
//! profile, must get exactly Kubo's CID; read back, every file must give its original bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use ipfs_kit_block::{Block, Bytes, Cid};
use ipfs_kit_unixfs::reader::{self, FileReader};
use ipfs_kit_unixfs::{BlockSink, BlockSource, BoxError, DirEntry, ImportProfile, Importer, Node};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Default)]
struct MapStore(HashMap<Cid, Bytes>);

impl BlockSink for MapStore {
    fn put(&mut self, block: Block) -> Result<(), BoxError> {
        let (cid, data) = block.into_parts();
        self.0.insert(cid, data);
        Ok(())
    }
}

impl BlockSource for MapStore {
    fn get(&self, cid: &Cid) -> Result<Bytes, BoxError> {
        self.0
            .get(cid)
            .cloned()
            .ok_or_else(|| format!("missing {cid}").into())
    }
}

fn parity() -> Value {
    let path = std::env::var_os("IPFS_KIT_CID_PARITY").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kubo/cid-parity.json"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e} (set IPFS_KIT_CID_PARITY)", path.display()));
    serde_json::from_str(&text).expect("cid-parity.json parses")
}

/// The corpus generators, as `shared/kubo/corpus_gen.py` defines them.
fn content(spec: &Value, size: usize) -> Vec<u8> {
    match spec["gen"].as_str().expect("gen") {
        "zero" => vec![0; size],
        "literal" => spec["text"].as_str().expect("text").as_bytes().to_vec(),
        "text_index" => format!("{}\n", spec["i"]).into_bytes(),
        "sha256ctr" => {
            let seed = spec["seed"].as_str().expect("seed").as_bytes();
            let mut out = Vec::with_capacity(size + 32);
            let base = Sha256::new_with_prefix(seed);
            let mut i = 0u64;
            while out.len() < size {
                out.extend_from_slice(&base.clone().chain_update(i.to_le_bytes()).finalize());
                i += 1;
            }
            out.truncate(size);
            out
        }
        other => panic!("unknown generator {other}"),
    }
}

fn heavy_skipped(item: &Value) -> bool {
    item["heavy"].as_bool() == Some(true) && std::env::var_os("IPFS_KIT_SKIP_HEAVY").is_some()
}

enum Tree {
    File(Vec<u8>),
    Symlink(String),
    Dir(BTreeMap<String, Tree>),
}

fn insert(root: &mut BTreeMap<String, Tree>, path: &str, node: Tree) {
    let mut parts: Vec<&str> = path.split('/').collect();
    let last = parts.pop().expect("non-empty path");
    let mut dir = root;
    for p in parts {
        dir = match dir
            .entry(p.to_string())
            .or_insert_with(|| Tree::Dir(BTreeMap::new()))
        {
            Tree::Dir(d) => d,
            _ => panic!("{path}: parent is not a directory"),
        };
    }
    match node {
        Tree::Dir(_) => {
            dir.entry(last.to_string()).or_insert(node);
        }
        other => {
            dir.insert(last.to_string(), other);
        }
    }
}

fn dir_tree(item: &Value) -> BTreeMap<String, Tree> {
    let mut root = BTreeMap::new();
    if let Some(g) = item.get("generate") {
        let count = g["count"].as_u64().expect("count");
        let pad = g["pad"].as_u64().expect("pad") as usize;
        for i in 0..count {
            let name = format!(
                "{}{:0pad$}{}",
                g["prefix"].as_str().unwrap_or(""),
                i,
                g["suffix"].as_str().unwrap_or("")
            );
            root.insert(name, Tree::File(format!("{i}\n").into_bytes()));
        }
    }
    for e in item["entries"].as_array().into_iter().flatten() {
        let path = e["path"].as_str().expect("path");
        let node = match e["type"].as_str().expect("type") {
            "file" => {
                let size = e["size"].as_u64().expect("size") as usize;
                let mut spec = e["content"].clone();
                if spec.is_null() {
                    spec = serde_json::json!({"gen": "text_index"});
                }
                Tree::File(content(&spec, size))
            }
            "dir" => Tree::Dir(BTreeMap::new()),
            "symlink" => Tree::Symlink(e["target"].as_str().expect("target").to_string()),
            other => panic!("unknown entry type {other}"),
        };
        insert(&mut root, path, node);
    }
    root
}

fn import_tree(im: &mut Importer<'_>, tree: &BTreeMap<String, Tree>) -> Node {
    let entries = tree
        .iter()
        .map(|(name, t)| DirEntry {
            name: name.clone(),
            node: match t {
                Tree::File(bytes) => im.file(&mut &bytes[..]).expect("import file"),
                Tree::Symlink(target) => im.symlink(target).expect("import symlink"),
                Tree::Dir(d) => import_tree(im, d),
            },
        })
        .collect();
    im.directory(entries).expect("import directory")
}

fn read_all(store: &MapStore, cid: &Cid) -> Vec<u8> {
    let mut out = Vec::new();
    // Read back with prefetching threads; the ranged reads below go without.
    for chunk in FileReader::new(store, cid, 0, None).with_threads(2) {
        out.extend_from_slice(&chunk.expect("read chunk"));
    }
    out
}

#[test]
fn files_match_kubo() {
    let parity = parity();
    let profile = ImportProfile::default();
    let mut checked = 0;
    for item in parity["files"].as_array().expect("files") {
        if heavy_skipped(item) {
            continue;
        }
        let size = item["size"].as_u64().expect("size") as usize;
        let bytes = content(&item["content"], size);
        assert_eq!(
            hex(&Sha256::digest(&bytes)),
            item["sha256"].as_str().expect("sha256"),
            "{} generator",
            item["name"]
        );
        let mut store = MapStore::default();
        let node = Importer::new(&profile, &mut store)
            .file(&mut &bytes[..])
            .expect("import");
        assert_eq!(
            node.cid.to_string(),
            item["cid"].as_str().expect("cid"),
            "{}",
            item["name"]
        );
        assert_eq!(node.filesize, size as u64);
        if let Some(cum) = item["dag"]["cumulative_size"].as_u64() {
            assert_eq!(node.tsize, cum, "{} cumulative size", item["name"]);
        }
        assert!(
            read_all(&store, &node.cid) == bytes,
            "{} reads back",
            item["name"]
        );
        // A range in the middle reads back exactly.
        if size > 10 {
            let (off, len) = (size as u64 / 3, size as u64 / 2);
            let mut part = Vec::new();
            for c in FileReader::new(&store, &node.cid, off, Some(len)) {
                part.extend_from_slice(&c.expect("chunk"));
            }
            assert!(
                part == bytes[off as usize..(off + len) as usize],
                "{} range",
                item["name"]
            );
        }
        checked += 1;
    }
    assert!(checked >= 16, "only {checked} files checked");
}

#[test]
fn directories_match_kubo() {
    let parity = parity();
    for item in parity["directories"].as_array().expect("directories") {
        if heavy_skipped(item) {
            continue;
        }
        let name = item["name"].as_str().expect("name");
        let tree = dir_tree(item);
        let expected = item
            .get("cid_ipip499")
            .unwrap_or(&item["cid"])
            .as_str()
            .expect("cid");
        let mut store = MapStore::default();
        let profile = ImportProfile::default();
        let root = import_tree(&mut Importer::new(&profile, &mut store), &tree);
        assert_eq!(root.cid.to_string(), expected, "{name} (current rule)");
        // The Kubo 0.22 tie rule gives the oracle's own CID.
        let old = ImportProfile::kubo_v0_22();
        let root_old = import_tree(&mut Importer::new(&old, &mut MapStore::default()), &tree);
        assert_eq!(
            root_old.cid.to_string(),
            item["cid"].as_str().expect("cid"),
            "{name} (kubo 0.22 rule)"
        );
        // Listing is complete, sharded or not, and every name resolves.
        let listed = reader::list(&store, &root.cid).expect("list");
        assert_eq!(listed.len(), tree.len(), "{name} listing");
        for entry in listed.iter().take(300) {
            let found =
                reader::resolve_path(&store, &root.cid, &[entry.name.as_str()]).expect("resolve");
            assert_eq!(found, entry.cid);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn v1_raw() -> ImportProfile {
    ImportProfile {
        cid_version: 1,
        raw_leaves: true,
        ..ImportProfile::default()
    }
}

/// Vectors from two independent implementations of Kubo's rules (a reference written from the
/// boxo sources and npm `ipfs-unixfs-importer`), for the settings Kubo 0.22 cannot be asked for.
#[test]
fn layouts_match_reference_vectors() {
    use ipfs_kit_unixfs::{ChunkerSpec, Layout, NullSink};
    let cases: &[(usize, usize, bool, Layout, &str, u64)] = &[
        (
            1000,
            3,
            true,
            Layout::Balanced,
            "bafybeihuff65sjgzjvsumt4jsuisggmmklldgja52hiatdkod2n4z5gu3m",
            1793,
        ),
        (
            2900,
            3,
            true,
            Layout::Balanced,
            "bafybeiaxif7hbedegbtnii3kkvhxqlgnmtn7b6csg42p7nw6gvwcyg5zze",
            5121,
        ),
        (
            2900,
            3,
            false,
            Layout::Balanced,
            "bafybeifcee7hfcokzoe6lxplyc3c5sx6whoije2h7wdjm2twcjph5gkeoa",
            5353,
        ),
        (
            5000,
            4,
            false,
            Layout::Balanced,
            "bafybeiaglaww63kqwwqcjtt3ke7ckijnk2bupkfbwl2ib7nekvc3envmse",
            8642,
        ),
        (
            100,
            3,
            true,
            Layout::Trickle,
            "bafybeidwkur4w4nq4nq7ht62l67am6rqvfazwrlxtb45qntniqqd5dqpda",
            152,
        ),
        (
            1000,
            3,
            true,
            Layout::Trickle,
            "bafybeihaae35vrd446c5amipnjs7qigg3tvuxfagwtl4km4v2fplc7wwam",
            1630,
        ),
        (
            5000,
            3,
            false,
            Layout::Trickle,
            "bafybeihwlbhxr5vije4vok2oufrcpj7pnhkgfrzb77gcmzpdaqx5kyx3ge",
            8587,
        ),
        (
            20000,
            2,
            true,
            Layout::Trickle,
            "bafybeiep72msck6ysqaid4azhw2jibpte6qfn6jhmtxxuwtp67oqj2qoi4",
            34653,
        ),
        (
            60000,
            3,
            false,
            Layout::Trickle,
            "bafybeifmwcavurk3hzkrsc7non3pl6so7mww3typadcpxd3nyuzek33lim",
            103356,
        ),
        (
            0,
            3,
            false,
            Layout::Trickle,
            "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y",
            6,
        ),
    ];
    for &(n, links, raw, layout, cid, tsize) in cases {
        let data: Vec<u8> = (0..n).map(|i| ((7 * i + 3) % 251) as u8).collect();
        let profile = ImportProfile {
            raw_leaves: raw,
            chunker: ChunkerSpec::Size(100),
            max_file_links: links,
            layout,
            ..v1_raw()
        };
        let node = Importer::new(&profile, &mut NullSink)
            .file(&mut &data[..])
            .expect("import");
        assert_eq!(
            (node.cid.to_string().as_str(), node.tsize),
            (cid, tsize),
            "{n} bytes {links} links {layout:?} raw={raw}"
        );
    }
}

#[test]
fn hamts_match_reference_vectors() {
    use ipfs_kit_unixfs::{HamtEstimate, NullSink};
    let entries = |n: usize, im: &mut Importer<'_>| -> Vec<DirEntry> {
        (0..n)
            .map(|i| DirEntry {
                name: format!("f{i}.txt"),
                node: im
                    .file(&mut format!("content {i}\n").as_bytes())
                    .expect("file"),
            })
            .collect()
    };
    let always: &[(usize, usize, bool, &str, u64)] = &[
        (
            1,
            256,
            true,
            "bafybeibobxtp64kjtn2se5w2saodj27wntja2epy3qbwq4qhkb6yse6ntu",
            85,
        ),
        (
            3,
            256,
            true,
            "bafybeibb7astn4rfyirouyofwi6orsvzktanjr43bif5cd2z2cmejxhevy",
            216,
        ),
        (
            300,
            256,
            true,
            "bafybeihtljuaonjkqncvp2ypvk2r2hptu52mtgvawi3xl77spgsz3l5y5u",
            26495,
        ),
        (
            3000,
            256,
            true,
            "bafybeih7sdsmpwfa5g3oiisnwfnwruy3vn3u4xxy2giypw3akxkplb5kw4",
            229641,
        ),
        (
            2000,
            16,
            true,
            "bafybeiggnokd4w5utob7usmnvur3fntnxqmm6z4lbj6gumclhqratxltz4",
            169928,
        ),
        (
            2000,
            32,
            true,
            "bafybeib5ojofifhynt5mv2ii7miuxmalfpiendweo5mki6xmhg3wvouegq",
            175213,
        ),
        (
            2000,
            1024,
            true,
            "bafybeiebmw6qfr564iuwgzlgb73zeks2ue7gfhjixe3pxtjqpzwcnea5d4",
            227218,
        ),
        (
            300,
            256,
            false,
            "QmRX3t4DqEMwUbazo2c1Lqa1p6kbVp87h8A8yyPfaw7fzM",
            28121,
        ),
    ];
    for &(n, fanout, v1, cid, tsize) in always {
        let base = if v1 {
            v1_raw()
        } else {
            ImportProfile::default()
        };
        let profile = ImportProfile {
            hamt_fanout: fanout,
            hamt_threshold: 1,
            ..base
        };
        let mut sink = NullSink;
        let mut im = Importer::new(&profile, &mut sink);
        let e = entries(n, &mut im);
        let node = im.directory(e).expect("dir");
        assert_eq!(
            (node.cid.to_string().as_str(), node.tsize),
            (cid, tsize),
            "{n} entries fanout {fanout}"
        );
    }
    // The switch, with both estimates, one entry either side of the threshold.
    let switch: &[(usize, HamtEstimate, &str)] = &[
        (
            5850,
            HamtEstimate::Links,
            "bafybeidpanqc2g2s2n4lltjddh5e3ho5vuocq7zgkcqnyl43djtdti3t2y",
        ),
        (
            5851,
            HamtEstimate::Links,
            "bafybeifxpskftkf6uk5v3nrrg7glnn2ek7adrqc6zqgbmrlmtawytcntm4",
        ),
        (
            4966,
            HamtEstimate::Block,
            "bafybeihki2pdkcbu25sy7knezv36elc3grspsy44cyfhuc2lynh772pqfy",
        ),
        (
            4967,
            HamtEstimate::Block,
            "bafybeicre5o44tdelmjmih25ftg3lhwxlw5i3kr6vfk3vvbgpwtqnjizbq",
        ),
    ];
    for &(n, estimate, cid) in switch {
        let profile = ImportProfile {
            hamt_estimate: estimate,
            ..v1_raw()
        };
        let mut sink = NullSink;
        let mut im = Importer::new(&profile, &mut sink);
        let e = entries(n, &mut im);
        assert_eq!(
            im.directory(e).expect("dir").cid.to_string(),
            cid,
            "{n} entries {estimate:?}"
        );
    }
}

/// A store that records, in order, the blocks named ahead (`prefetch`) and the blocks read.
#[derive(Default)]
struct Recording {
    blocks: MapStore,
    events: std::sync::Mutex<Vec<(bool, Cid)>>,
}

impl BlockSource for Recording {
    fn get(&self, cid: &Cid) -> Result<Bytes, BoxError> {
        self.events.lock().expect("lock").push((false, *cid));
        self.blocks.get(cid)
    }

    fn prefetch(&self, cids: &[Cid]) {
        let mut events = self.events.lock().expect("lock");
        events.extend(cids.iter().map(|c| (true, *c)));
    }
}

/// Reading a file names its blocks to the source before it reads them (so object storage can
/// fetch them ahead): every block but the root and the first leaf was named before its read,
/// with or without threads.
#[test]
fn a_file_read_names_its_blocks_ahead() {
    let profile = ImportProfile::by_name("unixfs-v1-2025").expect("profile");
    let bytes: Vec<u8> = (0..(40u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut store = Recording::default();
    let node = Importer::new(&profile, &mut store.blocks)
        .file(&mut &bytes[..])
        .expect("import");
    for threads in [0, 2] {
        store.events.lock().expect("lock").clear();
        let mut read = Vec::new();
        for c in FileReader::new(&store, &node.cid, 0, None).with_threads(threads) {
            read.extend_from_slice(&c.expect("chunk"));
        }
        assert!(read == bytes, "reads back with {threads} threads");
        let events = store.events.lock().expect("lock").clone();
        let gets: Vec<Cid> = events.iter().filter(|(h, _)| !h).map(|(_, c)| *c).collect();
        let named_first = gets
            .iter()
            .filter(|c| {
                let got = events.iter().position(|e| e == &(false, **c));
                let hinted = events.iter().position(|e| e == &(true, **c));
                matches!((hinted, got), (Some(h), Some(g)) if h < g)
            })
            .count();
        // 40 leaves and a root: all but the root and the first leaf are named first.
        assert!(
            named_first + 2 >= gets.len(),
            "{named_first} of {} named ahead with {threads} threads",
            gets.len()
        );
    }
}
