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
    for chunk in FileReader::new(store, cid, 0, None) {
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
