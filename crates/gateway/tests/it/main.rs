//! The gateway driven through its router, over content imported with the real UnixFS importer
//! into a real (memory) block store.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use ipfs_kit_block::ipld::{self, Ipld};
use ipfs_kit_block::{codec, Block, Bytes, Cid, HashAlg};
use ipfs_kit_blockstore::{Blockstore, MemBlockstore};
use ipfs_kit_car::CarReader;
use ipfs_kit_gateway::{router, Backend, Config, Error};
use ipfs_kit_unixfs::{DirEntry, ImportProfile, Importer, Node};
use tower::ServiceExt;

struct Store {
    blocks: MemBlockstore,
    /// IPNS name -> (resolved path, record bytes).
    names: HashMap<String, (String, Vec<u8>)>,
    /// Offer every block as held in memory ([`Backend::get_cached_block`]).
    memory: bool,
    /// Calls of the blocking `get_block`.
    reads: std::sync::atomic::AtomicUsize,
}

impl Backend for Store {
    fn get_cached_block(&self, cid: &Cid) -> Option<Bytes> {
        self.memory
            .then(|| self.blocks.get(cid).ok().flatten())
            .flatten()
    }
    fn get_block(&self, cid: &Cid) -> Result<Option<Bytes>, Error> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.blocks
            .get(cid)
            .map_err(|e| Error::Internal(e.to_string()))
    }
    fn has_block(&self, cid: &Cid) -> Result<bool, Error> {
        self.blocks
            .has(cid)
            .map_err(|e| Error::Internal(e.to_string()))
    }
    fn ipns_record(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.names.get(name).map(|(_, r)| r.clone()))
    }
    fn resolve_ipns(&self, name: &str) -> Result<String, Error> {
        self.names
            .get(name)
            .map(|(p, _)| p.clone())
            .ok_or_else(|| Error::NotFound(format!("cannot resolve /ipns/{name}")))
    }
}

/// Pseudo-random bytes (xorshift), so no two leaves of a file are alike.
fn data(seed: u8, len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Fixture {
    store: Arc<Store>,
    hello: Node,
    big: Node,
    big_bytes: Vec<u8>,
    raw_leaf: Node,
    dir: Node,
    site: Node,
    hamt: Node,
    cbor: Cid,
    json: Cid,
}

fn import(profile: &ImportProfile, blocks: &mut Vec<Block>, bytes: &[u8]) -> Node {
    Importer::new(profile, blocks)
        .file(&mut &bytes[..])
        .expect("import file")
}

fn dir(profile: &ImportProfile, blocks: &mut Vec<Block>, entries: &[(&str, &Node)]) -> Node {
    let entries = entries
        .iter()
        .map(|(n, node)| DirEntry {
            name: n.to_string(),
            node: (*node).clone(),
        })
        .collect();
    Importer::new(profile, blocks)
        .directory(entries)
        .expect("import dir")
}

fn fixture() -> Fixture {
    let profile = ImportProfile::default();
    let mut blocks = Vec::new();
    let hello = import(&profile, &mut blocks, b"hello world\n");
    let big_bytes = data(7, 3 << 20);
    let big = import(&profile, &mut blocks, &big_bytes);
    let raw_profile = ImportProfile {
        cid_version: 1,
        raw_leaves: true,
        ..ImportProfile::default()
    };
    let raw_leaf = import(&raw_profile, &mut blocks, &data(3, 3000));
    let json_file = import(&profile, &mut blocks, b"{\"a\": 1}");
    let sub = dir(&profile, &mut blocks, &[("b.bin", &big)]);
    let dir_node = dir(
        &profile,
        &mut blocks,
        &[
            ("a.txt", &hello),
            ("sub", &sub),
            ("data.json", &json_file),
            ("caf\u{e9} & <x>.txt", &hello),
        ],
    );
    let index = import(&profile, &mut blocks, b"<html><body>site</body></html>");
    let site = dir(
        &profile,
        &mut blocks,
        &[("index.html", &index), ("a.txt", &hello)],
    );
    // A tiny threshold shards this directory.
    let hamt_profile = ImportProfile {
        hamt_threshold: 1000,
        ..ImportProfile::default()
    };
    let files: Vec<(String, Node)> = (0..300)
        .map(|i| {
            let n = import(&profile, &mut blocks, format!("file {i}\n").as_bytes());
            (format!("f{i:03}.txt"), n)
        })
        .collect();
    let refs: Vec<(&str, &Node)> = files.iter().map(|(n, f)| (n.as_str(), f)).collect();
    let hamt = dir(&hamt_profile, &mut blocks, &refs);
    // dag-cbor {"file": <hello>, "nested": {"dir": <dir>}, "n": 1}
    let mut m = std::collections::BTreeMap::new();
    m.insert("file".to_string(), Ipld::Link(hello.cid));
    let mut nested = std::collections::BTreeMap::new();
    nested.insert("dir".to_string(), Ipld::Link(dir_node.cid));
    m.insert("nested".to_string(), Ipld::Map(nested));
    m.insert("n".to_string(), Ipld::Integer(1));
    let cbor_block = Block::encode(
        codec::DAG_CBOR,
        HashAlg::Sha2_256,
        1,
        ipld::encode(codec::DAG_CBOR, &Ipld::Map(m)).expect("encode"),
    );
    let json_block = Block::encode(
        codec::DAG_JSON,
        HashAlg::Sha2_256,
        1,
        br#"{"hello":"world"}"#.to_vec(),
    );
    let (cbor, json) = (*cbor_block.cid(), *json_block.cid());
    blocks.push(cbor_block);
    blocks.push(json_block);
    let store = MemBlockstore::default();
    store.put_many(blocks).expect("put");
    let mut names = HashMap::new();
    names.insert(
        "k51name".to_string(),
        (format!("/ipfs/{}", dir_node.cid), b"signed-record".to_vec()),
    );
    Fixture {
        store: Arc::new(Store {
            blocks: store,
            names,
            memory: false,
            reads: Default::default(),
        }),
        hello,
        big,
        big_bytes,
        raw_leaf,
        dir: dir_node,
        site,
        hamt,
        cbor,
        json,
    }
}

impl Fixture {
    fn app(&self, config: Config) -> Router {
        router(self.store.clone(), config)
    }

    /// The same content, offered as held in memory.
    fn in_memory(&self) -> Arc<Store> {
        let blocks = MemBlockstore::default();
        let all = self.store.blocks.list().expect("list");
        let copies = all
            .iter()
            .map(|c| {
                let data = self.store.blocks.get(c).expect("get").expect("stored");
                Block::new(*c, data).expect("block")
            })
            .collect();
        blocks.put_many(copies).expect("put");
        Arc::new(Store {
            blocks,
            names: self.store.names.clone(),
            memory: true,
            reads: Default::default(),
        })
    }
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn h(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn call(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("body completes");
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn get(app: &Router, uri: &str) -> Resp {
    call(app, Method::GET, uri, &[]).await
}

fn car_blocks(body: &[u8]) -> (Vec<Cid>, Vec<Cid>) {
    let mut r = CarReader::new(body).expect("car header");
    let roots = r.roots().to_vec();
    let mut cids = Vec::new();
    while let Some(b) = r.next_block().expect("verified block") {
        cids.push(*b.cid());
    }
    (roots, cids)
}

#[tokio::test]
async fn files_with_headers_head_and_etags() {
    let f = fixture();
    let app = f.app(Config::default());
    let r = get(&app, &format!("/ipfs/{}", f.hello.cid)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"hello world\n");
    assert_eq!(r.h("content-type"), "text/plain; charset=utf-8");
    assert_eq!(r.h("etag"), format!("\"{}\"", f.hello.cid));
    assert_eq!(r.h("cache-control"), "public, max-age=29030400, immutable");
    assert_eq!(r.h("x-ipfs-path"), format!("/ipfs/{}", f.hello.cid));
    assert_eq!(r.h("x-ipfs-roots"), f.hello.cid.to_string());
    assert_eq!(r.h("accept-ranges"), "bytes");
    assert_eq!(r.h("content-length"), "12");

    // Through a directory: one root per segment.
    let r = get(&app, &format!("/ipfs/{}/a.txt", f.dir.cid)).await;
    assert_eq!(&r.body[..], b"hello world\n");
    assert_eq!(
        r.h("x-ipfs-roots"),
        format!("{},{}", f.dir.cid, f.hello.cid)
    );
    let r = get(&app, &format!("/ipfs/{}/sub/b.bin", f.dir.cid)).await;
    assert_eq!(r.body.len(), f.big_bytes.len());
    assert_eq!(&r.body[..], &f.big_bytes[..]);
    assert_eq!(r.h("x-ipfs-roots").split(',').count(), 3);
    // Percent-encoded names.
    let r = get(
        &app,
        &format!("/ipfs/{}/caf%C3%A9%20&%20%3Cx%3E.txt", f.dir.cid),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // HEAD: the same headers, no body.
    let r = call(&app, Method::HEAD, &format!("/ipfs/{}", f.big.cid), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.h("content-length"), (3u64 << 20).to_string());
    assert_eq!(r.h("content-type"), "application/octet-stream");

    // If-None-Match: 304 with the ETag and no body.
    let etag = format!("\"{}\"", f.hello.cid);
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{}", f.hello.cid),
        &[("if-none-match", &format!("\"other\", W/{etag}"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.body.is_empty());
    assert_eq!(r.h("etag"), etag);

    // A raw-leaf CIDv1 file.
    let r = get(&app, &format!("/ipfs/{}", f.raw_leaf.cid)).await;
    assert_eq!(&r.body[..], &data(3, 3000)[..]);
    // The identity probe.
    let r = get(&app, "/ipfs/bafkqaaa").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn content_type_and_disposition() {
    let f = fixture();
    let app = f.app(Config::default());
    let r = get(&app, &format!("/ipfs/{}/data.json", f.dir.cid)).await;
    assert_eq!(r.h("content-type"), "application/json");
    let r = get(&app, &format!("/ipfs/{}?filename=x.png", f.hello.cid)).await;
    assert_eq!(r.h("content-type"), "image/png");
    assert_eq!(
        r.h("content-disposition"),
        "inline; filename=\"x.png\"; filename*=UTF-8''x%2Epng"
    );
    let r = get(
        &app,
        &format!(
            "/ipfs/{}?filename=test%D1%82.pdf&download=true",
            f.hello.cid
        ),
    )
    .await;
    assert_eq!(
        r.h("content-disposition"),
        "attachment; filename=\"test_.pdf\"; filename*=UTF-8''test%D1%82%2Epdf"
    );
    let r = get(&app, &format!("/ipfs/{}/a.txt?download=true", f.dir.cid)).await;
    assert!(r
        .h("content-disposition")
        .starts_with("attachment; filename=\"a.txt\""));
}

#[tokio::test]
async fn ranges_single_multi_and_errors() {
    let f = fixture();
    // A small buffer limit: ranges of the big file are streamed.
    let app = f.app(Config::default().with_buffer_limit(1000));
    let uri = format!("/ipfs/{}", f.big.cid);
    let size = f.big_bytes.len();
    let r = call(&app, Method::GET, &uri, &[("range", "bytes=262000-262999")]).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.h("content-range"), format!("bytes 262000-262999/{size}"));
    assert_eq!(&r.body[..], &f.big_bytes[262000..263000]);
    let r = call(&app, Method::GET, &uri, &[("range", "bytes=-10")]).await;
    assert_eq!(&r.body[..], &f.big_bytes[size - 10..]);

    let r = call(&app, Method::GET, &uri, &[("range", "bytes=0-4, 100-109")]).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    let ct = r.h("content-type").to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart");
    assert_eq!(r.h("content-length"), r.body.len().to_string());
    let text = r.body.to_vec();
    let s = String::from_utf8_lossy(&text).into_owned();
    assert!(s.contains(&format!("Content-Range: bytes 0-4/{size}")));
    assert!(s.contains(&format!("Content-Range: bytes 100-109/{size}")));
    assert!(s.ends_with(&format!("\r\n--{boundary}--\r\n")));
    let start = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("first part body")
        + 4;
    assert_eq!(&text[start..start + 5], &f.big_bytes[..5]);

    let r = call(
        &app,
        Method::GET,
        &uri,
        &[("range", &format!("bytes={size}-"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.h("content-range"), format!("bytes */{size}"));
    let r = call(&app, Method::GET, &uri, &[("range", "bytes=5-1")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // More ranges than served: the whole body, as RFC 9110 allows.
    let many: Vec<String> = (0..20).map(|i| format!("{i}-{i}")).collect();
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{}", f.hello.cid),
        &[("range", &format!("bytes={}", many.join(",")))],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // The whole big file, streamed.
    let r = get(&app, &uri).await;
    assert_eq!(&r.body[..], &f.big_bytes[..]);
    assert_eq!(r.h("content-length"), size.to_string());
}

#[tokio::test]
async fn directories_redirect_index_and_listing() {
    let f = fixture();
    let app = f.app(Config::default().with_dir_page_size(100));
    let r = get(&app, &format!("/ipfs/{}/sub?x=1", f.dir.cid)).await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.h("location"), format!("/ipfs/{}/sub/?x=1", f.dir.cid));

    let r = get(&app, &format!("/ipfs/{}/", f.dir.cid)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("content-type"), "text/html; charset=utf-8");
    assert!(r.h("etag").starts_with("\"DirIndex-"));
    let html = r.text();
    assert!(html.contains("href=\"./a.txt\""), "{html}");
    assert!(html.contains("caf\u{e9} &amp; &lt;x&gt;.txt"), "{html}");
    assert!(!html.contains("<x>"));
    assert!(!html.contains("href=\"../\""), "no parent link at the root");
    let r = get(&app, &format!("/ipfs/{}/sub/", f.dir.cid)).await;
    assert!(r.text().contains("href=\"../\""));
    assert!(r.text().contains("b.bin"));
    let r = call(&app, Method::HEAD, &format!("/ipfs/{}/", f.dir.cid), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());

    let r = get(&app, &format!("/ipfs/{}/", f.site.cid)).await;
    assert_eq!(r.text(), "<html><body>site</body></html>");
    assert_eq!(r.h("content-type"), "text/html; charset=utf-8");

    // A sharded directory, paged.
    let mut seen = std::collections::BTreeSet::new();
    for page in 0..3 {
        let r = get(&app, &format!("/ipfs/{}/?page={page}", f.hamt.cid)).await;
        assert_eq!(r.status, StatusCode::OK);
        let html = r.text();
        let names: Vec<String> = html
            .match_indices("href=\"./")
            .map(|(i, _)| html[i + 8..i + 16].to_string())
            .collect();
        assert_eq!(names.len(), 100, "page {page}");
        assert_eq!(html.contains("next page"), page < 2);
        seen.extend(names);
    }
    assert_eq!(seen.len(), 300);
    let r = get(&app, &format!("/ipfs/{}/?page=x", f.hamt.cid)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(&app, &format!("/ipfs/{}/f123.txt", f.hamt.cid)).await;
    assert_eq!(r.text(), "file 123\n");
    assert_eq!(r.h("x-ipfs-roots").split(',').count(), 2);
}

#[tokio::test]
async fn errors_and_methods() {
    let f = fixture();
    let app = f.app(Config::default());
    let d = f.dir.cid;
    for (uri, status) in [
        (format!("/ipfs/{d}/missing"), StatusCode::NOT_FOUND),
        (format!("/ipfs/{d}/a.txt/deeper"), StatusCode::NOT_FOUND),
        ("/ipfs/not-a-cid".to_string(), StatusCode::BAD_REQUEST),
        ("/ipfs/".to_string(), StatusCode::BAD_REQUEST),
        (format!("/ipfs/{d}/../x"), StatusCode::BAD_REQUEST),
        (format!("/ipfs/{d}/%2E%2E/x"), StatusCode::BAD_REQUEST),
        (format!("/ipfs/{d}/%FF"), StatusCode::BAD_REQUEST),
        ("/elsewhere".to_string(), StatusCode::NOT_FOUND),
        (format!("/ipfs/{d}?format=nope"), StatusCode::BAD_REQUEST),
        (format!("/ipfs/{d}?format=tar"), StatusCode::NOT_IMPLEMENTED),
        ("/ipns/unknown/a.txt".to_string(), StatusCode::NOT_FOUND),
        (
            // A block this store does not have.
            "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".to_string(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let r = get(&app, &uri).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text());
        assert!(r.h("content-type").starts_with("text/plain"), "{uri}");
        assert!(!r.body.is_empty() && r.body.len() < 400, "{uri}");
    }
    let r = call(&app, Method::POST, &format!("/ipfs/{d}"), &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.h("allow"), "GET, HEAD, OPTIONS");
    let r = call(&app, Method::DELETE, &format!("/ipfs/{d}"), &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = call(&app, Method::OPTIONS, &format!("/ipfs/{d}"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{}", f.hello.cid),
        &[("service-worker", "script")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // only-if-cached: 412 for what is not here, the content otherwise.
    let missing = "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    let cc = [("cache-control", "only-if-cached")];
    assert_eq!(
        call(&app, Method::HEAD, missing, &cc).await.status,
        StatusCode::PRECONDITION_FAILED
    );
    let r = call(&app, Method::GET, &format!("/ipfs/{}", f.hello.cid), &cc).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn raw_blocks() {
    let f = fixture();
    let app = f.app(Config::default());
    let r = get(&app, &format!("/ipfs/{}?format=raw", f.hello.cid)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("content-type"), "application/vnd.ipld.raw");
    assert_eq!(r.h("etag"), format!("\"{}.raw\"", f.hello.cid));
    assert_eq!(r.h("x-content-type-options"), "nosniff");
    assert!(r
        .h("content-disposition")
        .starts_with(&format!("attachment; filename=\"{}.bin\"", f.hello.cid)));
    assert!(r.h("content-location").is_empty());
    Block::new(f.hello.cid, r.body.clone()).expect("body hashes to the cid");

    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{}", f.big.cid),
        &[("accept", "application/vnd.ipld.raw")],
    )
    .await;
    Block::new(f.big.cid, r.body.clone()).expect("root block");
    assert_eq!(
        r.h("content-location"),
        format!("/ipfs/{}?format=raw", f.big.cid)
    );
    // ?format wins over Accept.
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{}?format=raw", f.hello.cid),
        &[("accept", "application/vnd.ipld.car")],
    )
    .await;
    assert_eq!(r.h("content-type"), "application/vnd.ipld.raw");
    // A range of a block.
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{}?format=raw", f.hello.cid),
        &[("range", "bytes=0-1")],
    )
    .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.len(), 2);
    let r = get(&app, "/ipfs/bafkqaaa?format=raw").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn car_scopes_entity_bytes_and_params() {
    let f = fixture();
    let app = f.app(Config::default());
    let d = f.dir.cid;
    let r = get(&app, &format!("/ipfs/{d}?format=car")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.h("content-type"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    );
    assert!(r.h("etag").starts_with(&format!("W/\"{d}.car.")));
    assert_eq!(r.h("x-content-type-options"), "nosniff");
    assert_eq!(r.h("accept-ranges"), "none");
    assert!(r
        .h("content-disposition")
        .starts_with(&format!("attachment; filename=\"{d}.car\"")));
    let (roots, cids) = car_blocks(&r.body);
    assert_eq!(roots, vec![d]);
    assert_eq!(cids[0], d);
    // Every block of the DAG, each once (hello appears twice in the directory).
    let mut unique = cids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), cids.len());
    assert!(cids.contains(&f.big.cid) && cids.contains(&f.hello.cid));

    let r = get(&app, &format!("/ipfs/{d}?format=car&car-dups=y")).await;
    assert!(r.h("content-type").ends_with("dups=y"));
    let (_, with_dups) = car_blocks(&r.body);
    assert_eq!(with_dups.len(), cids.len() + 1);

    // dag-scope=block on a path: the path's blocks, then the terminal's.
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{d}/sub/b.bin?dag-scope=block"),
        &[("accept", "application/vnd.ipld.car")],
    )
    .await;
    let (roots, cids) = car_blocks(&r.body);
    assert_eq!(roots, vec![d]);
    assert_eq!(cids.len(), 3);
    assert_eq!(cids[0], d);
    assert_eq!(cids[2], f.big.cid);
    assert_eq!(
        r.h("x-ipfs-roots").split(',').next_back(),
        Some(&*f.big.cid.to_string())
    );
    assert!(r.h("content-location").contains("format=car"));

    // entity-bytes: only the leaves that hold the range (256 KiB leaves).
    let big = f.big.cid;
    let r = get(
        &app,
        &format!("/ipfs/{big}?format=car&dag-scope=entity&entity-bytes=300000:600000"),
    )
    .await;
    let (_, cids) = car_blocks(&r.body);
    assert_eq!(cids.len(), 3, "root and leaves 1 and 2");
    let r = get(&app, &format!("/ipfs/{big}?format=car&dag-scope=entity")).await;
    let (_, all) = car_blocks(&r.body);
    assert_eq!(all.len(), 13, "root and 12 leaves");
    let r = get(&app, &format!("/ipfs/{big}?format=car&entity-bytes=-10:*")).await;
    let (_, tail) = car_blocks(&r.body);
    assert_eq!(tail, vec![big, all[12]]);
    let r = get(
        &app,
        &format!("/ipfs/{big}?format=car&entity-bytes=999999999:*"),
    )
    .await;
    assert_eq!(car_blocks(&r.body).1, vec![big]);
    // A directory's entity is its block; a HAMT's is all its shards.
    let r = get(&app, &format!("/ipfs/{d}?format=car&dag-scope=entity")).await;
    assert_eq!(car_blocks(&r.body).1, vec![d]);
    let r = get(
        &app,
        &format!("/ipfs/{}?format=car&dag-scope=entity", f.hamt.cid),
    )
    .await;
    let shards = car_blocks(&r.body).1;
    assert!(shards.len() > 1 && shards.len() < 300, "{}", shards.len());
    // Through a HAMT: the shard blocks on the way are in the CAR.
    let r = get(
        &app,
        &format!("/ipfs/{}/f007.txt?format=car&dag-scope=block", f.hamt.cid),
    )
    .await;
    let (_, cids) = car_blocks(&r.body);
    assert!(cids.len() >= 2);
    assert_eq!(cids[0], f.hamt.cid);

    for bad in [
        "car-version=2",
        "dag-scope=most",
        "entity-bytes=5:1",
        "car-dups=maybe",
        "car-order=bfs",
    ] {
        let r = get(&app, &format!("/ipfs/{d}?format=car&{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{d}"),
        &[("accept", "application/vnd.ipld.car; version=2")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // HEAD: headers only.
    let r = call(&app, Method::HEAD, &format!("/ipfs/{d}?format=car"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    // Missing root or path: 404 before any CAR is sent.
    let r = get(
        &app,
        "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=car",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The empty directory is always there, as in Kubo.
    for empty in [
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
    ] {
        let r = get(&app, &format!("/ipfs/{empty}?format=car&dag-scope=block")).await;
        assert_eq!(car_blocks(&r.body).1.len(), 1, "{empty}");
        assert_eq!(
            get(&app, &format!("/ipfs/{empty}/")).await.status,
            StatusCode::OK
        );
    }
    let r = get(&app, &format!("/ipfs/{d}/nope?format=car")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(&app, "/ipfs/bafkqaaa?format=car").await;
    let (roots, cids) = car_blocks(&r.body);
    assert_eq!(roots[0].to_string(), "bafkqaaa");
    assert!(cids.is_empty());
    // ETags differ by parameters.
    let a = get(&app, &format!("/ipfs/{d}?format=car&dag-scope=block")).await;
    let b = get(&app, &format!("/ipfs/{d}?format=car&dag-scope=all")).await;
    assert_ne!(a.h("etag"), b.h("etag"));
    let r = call(
        &app,
        Method::GET,
        &format!("/ipfs/{d}?format=car&dag-scope=block"),
        &[("if-none-match", a.h("etag"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn ipld_codecs_and_conversion() {
    let f = fixture();
    let app = f.app(Config::default());
    let r = get(&app, &format!("/ipfs/{}", f.cbor)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("content-type"), "application/vnd.ipld.dag-cbor");
    assert_eq!(r.h("etag"), format!("\"{}.dag-cbor\"", f.cbor));
    Block::new(f.cbor, r.body.clone()).expect("block bytes");
    let r = get(&app, &format!("/ipfs/{}", f.json)).await;
    assert_eq!(r.h("content-type"), "application/vnd.ipld.dag-json");
    assert_eq!(&r.body[..], br#"{"hello":"world"}"#);
    let r = get(&app, &format!("/ipfs/{}?format=json", f.json)).await;
    assert_eq!(r.h("content-type"), "application/json");
    let r = get(&app, &format!("/ipfs/{}?format=cbor", f.cbor)).await;
    assert_eq!(r.h("content-type"), "application/cbor");
    // IPIP-524: no conversion unless enabled.
    for uri in [
        format!("/ipfs/{}?format=dag-json", f.cbor),
        format!("/ipfs/{}?format=dag-cbor", f.dir.cid),
        format!("/ipfs/{}?format=json", f.cbor),
    ] {
        assert_eq!(
            get(&app, &uri).await.status,
            StatusCode::NOT_ACCEPTABLE,
            "{uri}"
        );
    }
    // A UnixFS file may be served as JSON.
    let r = get(&app, &format!("/ipfs/{}/data.json?format=json", f.dir.cid)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("content-type"), "application/json");
    // Pathing through dag-cbor links into UnixFS.
    let r = get(&app, &format!("/ipfs/{}/file", f.cbor)).await;
    assert_eq!(&r.body[..], b"hello world\n");
    let r = get(&app, &format!("/ipfs/{}/nested/dir/a.txt", f.cbor)).await;
    assert_eq!(&r.body[..], b"hello world\n");
    assert_eq!(r.h("x-ipfs-roots").split(',').count(), 4);
    assert_eq!(
        get(&app, &format!("/ipfs/{}/n", f.cbor)).await.status,
        StatusCode::NOT_IMPLEMENTED
    );
    assert_eq!(
        get(&app, &format!("/ipfs/{}/missing", f.cbor)).await.status,
        StatusCode::NOT_FOUND
    );
    let r = get(
        &app,
        &format!("/ipfs/{}/nested/dir/a.txt?format=car", f.cbor),
    )
    .await;
    assert_eq!(car_blocks(&r.body).1, vec![f.cbor, f.dir.cid, f.hello.cid]);

    let conv = f.app(Config::default().with_codec_conversion(true));
    let r = get(&conv, &format!("/ipfs/{}?format=dag-json", f.cbor)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("content-type"), "application/vnd.ipld.dag-json");
    let value = ipld::decode(codec::DAG_JSON, &r.body).expect("dag-json");
    assert!(matches!(value, Ipld::Map(ref m) if m.get("file") == Some(&Ipld::Link(f.hello.cid))));
    let r = call(
        &conv,
        Method::GET,
        &format!("/ipfs/{}", f.dir.cid),
        &[("accept", "application/vnd.ipld.dag-json")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("\"Links\""));
    let r = get(&conv, &format!("/ipfs/{}?format=dag-cbor", f.json)).await;
    assert_eq!(r.h("content-type"), "application/vnd.ipld.dag-cbor");
}

#[tokio::test]
async fn ipns_paths_records_and_routing() {
    let f = fixture();
    let app = f.app(Config::default());
    let r = get(&app, "/ipns/k51name/a.txt").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"hello world\n");
    assert_eq!(r.h("x-ipfs-path"), "/ipns/k51name/a.txt");
    assert!(r.h("cache-control").is_empty(), "no TTL known: no promise");
    let r = get(&app, "/ipns/k51name").await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.h("location"), "/ipns/k51name/");

    let r = get(&app, "/ipns/k51name?format=ipns-record").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"signed-record");
    assert_eq!(r.h("content-type"), "application/vnd.ipfs.ipns-record");
    let r = call(
        &app,
        Method::GET,
        "/ipns/k51name",
        &[("accept", "application/vnd.ipfs.ipns-record")],
    )
    .await;
    assert_eq!(&r.body[..], b"signed-record");
    assert_eq!(
        get(&app, "/ipns/k51name/a.txt?format=ipns-record")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, &format!("/ipfs/{}?format=ipns-record", f.hello.cid))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/ipns/other?format=ipns-record").await.status,
        StatusCode::NOT_FOUND
    );

    let r = get(&app, "/routing/v1/ipns/k51name").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("content-type"), "application/vnd.ipfs.ipns-record");
    assert_eq!(&r.body[..], b"signed-record");
    assert_eq!(
        get(&app, "/routing/v1/ipns/other").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn streams_are_bounded_and_stop_on_missing_blocks() {
    let f = fixture();
    // One request at a time, one chunk of buffer: an unread streamed body holds the permit.
    let app = f.app(
        Config::default()
            .with_concurrent_requests(1)
            .with_stream_buffer(1)
            .with_buffer_limit(0),
    );
    let req = Request::get(format!("/ipfs/{}", f.big.cid))
        .body(Body::empty())
        .expect("request");
    let held = app.clone().oneshot(req).await.expect("response");
    assert_eq!(held.status(), StatusCode::OK);
    let r = get(&app, &format!("/ipfs/{}", f.hello.cid)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.h("retry-after"), "1");
    let body = axum::body::to_bytes(held.into_body(), usize::MAX)
        .await
        .expect("body");
    assert_eq!(body.len(), f.big_bytes.len());
    // The permit is back once the stream is done.
    let mut ok = false;
    for _ in 0..100 {
        if get(&app, &format!("/ipfs/{}", f.hello.cid)).await.status == StatusCode::OK {
            ok = true;
            break;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ok);

    // A leaf missing mid-file: headers went out, so the body ends with an error.
    let leaf = {
        let r = get(
            &f.app(Config::default()),
            &format!("/ipfs/{}?format=car", f.big.cid),
        )
        .await;
        car_blocks(&r.body).1[5]
    };
    f.store.blocks.delete_many(&[leaf]).expect("delete");
    let app = f.app(Config::default().with_buffer_limit(0));
    let resp = app
        .clone()
        .oneshot(
            Request::get(format!("/ipfs/{}", f.big.cid))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .is_err());
    // Buffered, the same read is a clean 404.
    let r = get(
        &f.app(Config::default().with_buffer_limit(64 << 20)),
        &format!("/ipfs/{}", f.big.cid),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Requests answered from memory on the runtime give exactly what the blocking path gives,
/// and read nothing through `get_block`, unless they need more than the budget allows.
#[tokio::test]
async fn answers_from_memory_match_the_blocking_path() {
    let f = fixture();
    let mem = f.in_memory();
    let (disk, memory) = (
        f.app(Config::default()),
        router(mem.clone(), Config::default()),
    );
    let reads = || mem.reads.load(std::sync::atomic::Ordering::Relaxed);
    let (hello, big, dir, hamt) = (f.hello.cid, f.big.cid, f.dir.cid, f.hamt.cid);
    let small_uris = [
        format!("/ipfs/{hello}"),
        format!("/ipfs/{dir}/a.txt"),
        format!("/ipfs/{dir}/data.json"),
        format!("/ipfs/{dir}/"),
        format!("/ipfs/{dir}"),
        format!("/ipfs/{dir}/missing"),
        format!("/ipfs/{hello}?format=raw"),
        format!("/ipfs/{}", f.raw_leaf.cid),
        format!("/ipfs/{}", f.cbor),
        format!("/ipfs/{}/nested", f.cbor),
        format!("/ipfs/{}", f.json),
        format!("/ipfs/{}/", f.site.cid),
        format!("/ipfs/{hamt}/f007.txt"),
    ];
    for uri in &small_uris {
        let before = reads();
        let (a, b) = (get(&disk, uri).await, get(&memory, uri).await);
        assert_eq!(a.status, b.status, "{uri}");
        assert_eq!(a.headers, b.headers, "{uri}");
        assert_eq!(a.body, b.body, "{uri}");
        assert_eq!(reads(), before, "{uri} was answered from memory");
    }
    // Over the budget or streamed: the big file (3 MiB, streamed), the whole HAMT listing,
    // ranges, CARs, and only-if-cached (which asks the store).
    let other = [
        (format!("/ipfs/{big}"), vec![]),
        (format!("/ipfs/{hamt}/"), vec![]),
        (
            format!("/ipfs/{big}"),
            vec![("Range", "bytes=5-10,2000000-2000100")],
        ),
        (format!("/ipfs/{dir}?format=car"), vec![]),
        (
            format!("/ipfs/{hello}"),
            vec![("Cache-Control", "only-if-cached")],
        ),
    ];
    for (uri, headers) in &other {
        let a = call(&disk, Method::GET, uri, headers).await;
        let b = call(&memory, Method::GET, uri, headers).await;
        assert_eq!(a.status, b.status, "{uri}");
        assert_eq!(a.headers, b.headers, "{uri}");
        assert_eq!(a.body, b.body, "{uri}");
    }
    assert_eq!(
        get(&memory, &format!("/ipfs/{big}")).await.body,
        f.big_bytes
    );
}

/// The spec's `_redirects` example site, a site whose `_redirects` forces a rule (refused), one
/// whose file is over 64 KiB, and a name for the first one.
struct Sites {
    app: Router,
    example: Cid,
    forced: Cid,
    too_large: Cid,
    hello: Cid,
}

const EXAMPLE_REDIRECTS: &str = "/redirect-one /one.html\n\
/301-redirect-one /one.html 301\n\
/302-redirect-two /two.html 302\n\
/200-index /index.html 200\n\
/posts/:year/:month/:day/:title /articles/:year/:month/:day/:title 301\n\
/splat/* /redirected-splat/:splat 301\n\
/not-found/* /404.html 404\n\
/gone/* /410.html 410\n\
/unavail/* /451.html 451\n\
/missing-page/* /nope.html 404\n\
/to-url/* https://example.net/:splat 200\n\
/* /index.html 200\n";

fn sites(config: Config) -> Sites {
    let profile = ImportProfile::default();
    let mut blocks = Vec::new();
    let file = |blocks: &mut Vec<Block>, text: &str| import(&profile, blocks, text.as_bytes());
    let one = file(&mut blocks, "one\n");
    let two = file(&mut blocks, "two\n");
    let index = file(&mut blocks, "<html>index</html>\n");
    let p404 = file(&mut blocks, "<html>404</html>\n");
    let p410 = file(&mut blocks, "<html>410</html>\n");
    let p451 = file(&mut blocks, "<html>451</html>\n");
    let rules = file(&mut blocks, EXAMPLE_REDIRECTS);
    let hello = file(&mut blocks, "hello\n");
    let articles = dir(&profile, &mut blocks, &[("hello.txt", &hello)]);
    let example = dir(
        &profile,
        &mut blocks,
        &[
            ("404.html", &p404),
            ("410.html", &p410),
            ("451.html", &p451),
            ("_redirects", &rules),
            ("articles", &articles),
            ("index.html", &index),
            ("one.html", &one),
            ("two.html", &two),
        ],
    );
    let forced_rules = file(&mut blocks, "/a /one.html 301!\n");
    let forced = dir(
        &profile,
        &mut blocks,
        &[("_redirects", &forced_rules), ("one.html", &one)],
    );
    let mut big = "# padding\n".repeat(7000);
    big.push_str("/* /one.html 200\n");
    let big_rules = file(&mut blocks, &big);
    let too_large = dir(
        &profile,
        &mut blocks,
        &[("_redirects", &big_rules), ("one.html", &one)],
    );
    let store = MemBlockstore::default();
    store.put_many(blocks).expect("put");
    let mut names = HashMap::new();
    names.insert(
        "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam".to_string(),
        (format!("/ipfs/{}", example.cid), b"record".to_vec()),
    );
    let store = Arc::new(Store {
        blocks: store,
        names,
        memory: true,
        reads: Default::default(),
    });
    Sites {
        app: router(store, config),
        example: example.cid,
        forced: forced.cid,
        too_large: too_large.cid,
        hello: hello.cid,
    }
}

fn b32(cid: &Cid) -> String {
    Cid::new_v1(cid.codec(), *cid.hash()).to_string()
}

const K51: &str = "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam";

#[tokio::test]
async fn subdomain_gateway_on_localhost() {
    let s = sites(Config::default());
    let app = &s.app;
    let v0 = s.example.to_string();
    assert!(v0.starts_with("Qm"));
    let label = b32(&s.example);

    // Path requests on localhost move to the subdomain (CIDv0 as base32 CIDv1), path and query
    // kept; the body still comes, for clients that do not follow redirects (as Kubo).
    let r = call(
        app,
        Method::GET,
        &format!("/ipfs/{v0}/one.html?a=b%20c"),
        &[("host", "localhost:8080")],
    )
    .await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        r.h("location"),
        format!("http://{label}.ipfs.localhost:8080/one.html?a=b%20c")
    );
    assert_eq!(r.text(), "one\n");
    let r = call(
        app,
        Method::HEAD,
        &format!("/ipfs/{v0}"),
        &[("host", "localhost")],
    )
    .await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.h("location"), format!("http://{label}.ipfs.localhost/"));
    // A missing path keeps its status, with the new location.
    let r = call(
        app,
        Method::GET,
        &format!("/ipfs/{v0}/nope"),
        &[("host", "localhost")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.h("location"),
        format!("http://{label}.ipfs.localhost/nope")
    );
    // Behind a TLS proxy the new URL is https.
    let r = call(
        app,
        Method::GET,
        &format!("/ipfs/{v0}/"),
        &[("host", "localhost"), ("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(r.h("location"), format!("https://{label}.ipfs.localhost/"));
    // IPNS names move too, peer IDs as base36 libp2p-key CIDs.
    let r = call(
        app,
        Method::GET,
        "/ipns/12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d/one.html",
        &[("host", "localhost:8080")],
    )
    .await;
    assert_eq!(
        r.h("location"),
        format!("http://{K51}.ipns.localhost:8080/one.html")
    );
    // A CID too long for a DNS label, even in base36: 400, as Kubo.
    let sha512 = Cid::new_v1(0x55, HashAlg::Sha2_512.digest(b"x"));
    let r = call(
        app,
        Method::GET,
        &format!("/ipfs/{sha512}"),
        &[("host", "localhost")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r
        .text()
        .starts_with("CID incompatible with DNS label length limit of 63"));
    // Not a CID: the path gateway's 400 naming the path, no move.
    let r = call(
        app,
        Method::GET,
        "/ipfs/QmInvalidCID",
        &[("host", "localhost")],
    )
    .await;
    assert_eq!((r.status, r.h("location")), (StatusCode::BAD_REQUEST, ""));
    assert!(
        r.text().contains("invalid path \"/ipfs/QmInvalidCID\""),
        "{}",
        r.text()
    );

    // On 127.0.0.1 (an IP, not a subdomain gateway) it stays a path gateway.
    let r = call(
        app,
        Method::GET,
        &format!("/ipfs/{v0}/one.html"),
        &[("host", "127.0.0.1:8080")],
    )
    .await;
    assert_eq!((r.status, r.h("location")), (StatusCode::OK, ""));
    // So does localhost when no subdomain hosts are configured.
    let plain = sites(Config::default().with_subdomain_hosts(Vec::<String>::new()));
    let r = call(
        &plain.app,
        Method::GET,
        &format!("/ipfs/{v0}/one.html"),
        &[("host", "localhost")],
    )
    .await;
    assert_eq!((r.status, r.h("location")), (StatusCode::OK, ""));

    // Subdomain requests serve the root at /.
    let host = format!("{label}.ipfs.localhost:8080");
    let r = call(app, Method::GET, "/", &[("host", &host)]).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "<html>index</html>\n")
    );
    assert_eq!(r.h("x-ipfs-path"), format!("/ipfs/{label}/"));
    let r = call(app, Method::GET, "/one.html", &[("host", &host)]).await;
    assert_eq!(r.text(), "one\n");
    assert!(r.h("cache-control").contains("immutable"));
    let r = call(app, Method::GET, "/articles", &[("host", &host)]).await;
    assert_eq!(
        (r.status, r.h("location")),
        (StatusCode::MOVED_PERMANENTLY, "/articles/")
    );
    // Listings link other CIDs through the gateway host, not below this origin.
    let r = call(app, Method::GET, "/articles/", &[("host", &host)]).await;
    assert!(
        r.text()
            .contains(&format!("href=\"//localhost:8080/ipfs/{}\"", s.hello)),
        "{}",
        r.text()
    );
    // IPNS names as subdomains.
    let r = call(
        app,
        Method::GET,
        "/two.html",
        &[("host", &format!("{K51}.ipns.localhost"))],
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "two\n"));
    // A key CID with another codec is moved to libp2p-key; a base32 label too long for DNS to
    // base36.
    let key = ipfs_kit_block::parse_cid(K51).expect("cid");
    let dag_pb_key = Cid::new_v1(0x70, *key.hash());
    let r = call(
        app,
        Method::GET,
        "/x?y=1",
        &[("host", &format!("{dag_pb_key}.ipns.localhost"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        r.h("location"),
        format!("http://{K51}.ipns.localhost/x?y=1")
    );
    let long = Cid::new_v1(
        0x0129,
        ipfs_kit_block::Multihash::wrap(0xb220, &[7; 32]).expect("mh"),
    );
    let r = call(
        app,
        Method::GET,
        "/",
        &[("host", &format!("{long}.ipfs.localhost"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    let to = r.h("location").to_string();
    assert!(
        to.starts_with("http://k") && to.ends_with(".ipfs.localhost/"),
        "{to}"
    );
    // Namespaces localhost does not serve as subdomains.
    let r = call(
        app,
        Method::GET,
        "/",
        &[("host", &format!("{label}.p2p.localhost"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Delegated routing answers on any host.
    let r = call(
        app,
        Method::GET,
        &format!("/routing/v1/ipns/{K51}"),
        &[("host", &host)],
    )
    .await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"record"[..]));
    // A configured gateway name behind a proxy (X-Forwarded-Host wins over Host).
    let dweb = sites(Config::default().with_subdomain_hosts(["dweb.link"]));
    let r = call(
        &dweb.app,
        Method::GET,
        &format!("/ipfs/{v0}/"),
        &[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "dweb.link"),
        ],
    )
    .await;
    assert_eq!(r.h("location"), format!("http://{label}.ipfs.dweb.link/"));
}

#[tokio::test]
async fn protocol_handler_uri_router() {
    let s = sites(Config::default());
    let app = &s.app;
    let label = b32(&s.example);
    let r = get(app, &format!("/ipfs/?uri=ipfs%3A%2F%2F{label}%2Fone.html")).await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.h("location"), format!("/ipfs/{label}/one.html"));
    let r = get(app, &format!("/ipns/?uri=ipns://{K51}/a%20b?x=1")).await;
    assert_eq!(r.h("location"), format!("/ipns/{K51}/a%20b?x=1"));
    assert_eq!(
        get(app, "/ipfs/?uri=https%3A%2F%2Fexample.com")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(app, "/ipfs/?uri=nonsense").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn redirects_file_on_origin_isolated_requests() {
    let s = sites(Config::default());
    let app = &s.app;
    let host = format!("{}.ipfs.localhost:8080", b32(&s.example));
    let sub = |path: &str| {
        let host = host.clone();
        let path = path.to_string();
        async move { call(app, Method::GET, &path, &[("host", &host)]).await }
    };
    for (path, status, location) in [
        ("/redirect-one", 301, "/one.html"),
        ("/301-redirect-one", 301, "/one.html"),
        ("/302-redirect-two", 302, "/two.html"),
        (
            "/posts/2022/06/15/hello-world",
            301,
            "/articles/2022/06/15/hello-world",
        ),
        ("/splat/one.html", 301, "/redirected-splat/one.html"),
        ("/splat/a/b%20c", 301, "/redirected-splat/a/b%20c"),
        // The request's query goes along.
        ("/redirect-one?x=1&y=2", 301, "/one.html?x=1&y=2"),
    ] {
        let r = sub(path).await;
        assert_eq!(r.status.as_u16(), status, "{path}");
        assert_eq!(r.h("location"), location, "{path}");
    }
    // Rewrites serve the target in place.
    let r = sub("/200-index").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "<html>index</html>\n")
    );
    assert_eq!(r.h("content-type"), "text/html; charset=utf-8");
    let r = sub("/some/spa/route").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (StatusCode::OK, "<html>index</html>\n")
    );
    // Custom error pages with their status.
    for (path, status, body) in [
        ("/not-found/x", 404, "<html>404</html>\n"),
        ("/gone/x/y", 410, "<html>410</html>\n"),
        ("/unavail/x", 451, "<html>451</html>\n"),
    ] {
        let r = sub(path).await;
        assert_eq!(
            (r.status.as_u16(), r.text().as_str()),
            (status, body),
            "{path}"
        );
        assert_eq!(r.h("content-type"), "text/html");
        // The page's own ETag and caching, as the gateway-conformance suite expects.
        assert!(r.h("etag").starts_with("\"Qm"), "{}", r.h("etag"));
        assert!(r.h("cache-control").contains("immutable"));
    }
    let r = call(
        app,
        Method::HEAD,
        "/not-found/x",
        &[("host", &host), ("range", "bytes=0-1")],
    )
    .await;
    assert_eq!(r.status.as_u16(), 404);
    assert!(r.body.is_empty());
    // Existing paths are never intercepted, not even by the catch-all.
    let r = sub("/one.html").await;
    assert_eq!((r.status, r.text().as_str()), (StatusCode::OK, "one\n"));
    let r = sub("/articles/hello.txt").await;
    assert_eq!(r.text(), "hello\n");
    // A 404 page that does not exist and a rewrite to a URL are the file's errors: 500.
    assert_eq!(
        sub("/missing-page/x").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        sub("/to-url/x").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // Only for deserialized responses: a missing block asked as raw stays a 404.
    assert_eq!(sub("/nope?format=raw").await.status, StatusCode::NOT_FOUND);
    // IPNS subdomains are origin-isolated too.
    let r = call(
        app,
        Method::GET,
        "/redirect-one",
        &[("host", &format!("{K51}.ipns.localhost"))],
    )
    .await;
    assert_eq!(
        (r.status, r.h("location")),
        (StatusCode::MOVED_PERMANENTLY, "/one.html")
    );

    // A path gateway never applies _redirects: one origin for every CID.
    for host in ["127.0.0.1:8080", "localhost:8080"] {
        let r = call(
            app,
            Method::GET,
            &format!("/ipfs/{}/redirect-one", s.example),
            &[("host", host)],
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{host}");
    }

    // Broken files are the spec's 500, with the reason; existing paths are unaffected.
    let forced = format!("{}.ipfs.localhost", b32(&s.forced));
    let r = call(app, Method::GET, "/a", &[("host", &forced)]).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.text()
            .starts_with("could not parse _redirects: line 1: forced redirects (or \"shadowing\") are not supported"),
        "{}",
        r.text()
    );
    let r = call(app, Method::GET, "/one.html", &[("host", &forced)]).await;
    assert_eq!(r.status, StatusCode::OK);
    let big = format!("{}.ipfs.localhost", b32(&s.too_large));
    let r = call(app, Method::GET, "/x", &[("host", &big)]).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.text().starts_with(
            "could not parse _redirects: redirects file size cannot exceed 65536 bytes"
        ),
        "{}",
        r.text()
    );
}

/// A routing backend: providers for one CID, one known peer, and IPNS records it accepts
/// when they are "valid" (start with `ok`).
struct Routing {
    provider_of: Cid,
    puts: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
}

impl Backend for Routing {
    fn get_block(&self, _: &Cid) -> Result<Option<Bytes>, Error> {
        Ok(None)
    }
    fn has_block(&self, _: &Cid) -> Result<bool, Error> {
        Ok(false)
    }
    fn ipns_record(&self, _: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }
    fn resolve_ipns(&self, name: &str) -> Result<String, Error> {
        Err(Error::NotFound(format!("cannot resolve {name}")))
    }
    fn find_providers(
        &self,
        cid: &Cid,
        limit: usize,
    ) -> Result<Vec<ipfs_kit_gateway::RoutingPeer>, Error> {
        if *cid != self.provider_of {
            return Ok(Vec::new());
        }
        Ok((0..250)
            .map(|i| ipfs_kit_gateway::RoutingPeer {
                id: format!("12D3KooWpeer{i}"),
                addrs: vec![format!("/ip4/127.0.0.1/tcp/{}", 4000 + i)],
                protocols: vec!["transport-bitswap".into()],
            })
            .take(limit)
            .collect())
    }
    fn find_peer(&self, peer: &str) -> Result<Option<ipfs_kit_gateway::RoutingPeer>, Error> {
        Ok(
            (peer == "12D3KooWknown").then(|| ipfs_kit_gateway::RoutingPeer {
                id: peer.into(),
                addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
                protocols: vec![],
            }),
        )
    }
    fn put_ipns_record(&self, name: &str, record: &[u8]) -> Result<(), Error> {
        if !record.starts_with(b"ok") {
            return Err(Error::Invalid("record does not verify".into()));
        }
        self.puts
            .lock()
            .expect("lock")
            .push((name.to_string(), record.to_vec()));
        Ok(())
    }
}

async fn put(app: &Router, uri: &str, content_type: &str, body: Vec<u8>) -> Resp {
    let req = Request::builder()
        .method(Method::PUT)
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

#[tokio::test]
async fn delegated_routing_answers_as_the_spec_says() {
    let f = fixture();
    let backend = Arc::new(Routing {
        provider_of: f.hello.cid,
        puts: Default::default(),
    });
    let app = router(backend.clone(), Config::default());
    // JSON, cut at 100; NDJSON streams more, one record per line.
    let r = get(&app, &format!("/routing/v1/providers/{}", f.hello.cid)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("content-type"), "application/json");
    assert_eq!(r.h("access-control-allow-origin"), "*");
    assert_eq!(r.h("vary"), "Accept");
    assert!(r.h("cache-control").starts_with("public, max-age=300"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let list = v["Providers"].as_array().expect("list");
    assert_eq!(list.len(), 100);
    assert_eq!(list[0]["Schema"], "peer");
    assert_eq!(list[0]["Protocols"][0], "transport-bitswap");
    let r = call(
        &app,
        Method::GET,
        &format!("/routing/v1/providers/{}", f.hello.cid),
        &[("accept", "application/x-ndjson")],
    )
    .await;
    assert_eq!(r.h("content-type"), "application/x-ndjson");
    assert_eq!(r.text().lines().count(), 250);
    // Nothing found is 404, briefly cacheable; a bad CID is 400.
    let r = get(&app, &format!("/routing/v1/providers/{}", f.dir.cid)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.h("cache-control").starts_with("public, max-age=15"));
    assert_eq!(
        get(&app, "/routing/v1/providers/nope").await.status,
        StatusCode::BAD_REQUEST
    );
    // Peers.
    let r = get(&app, "/routing/v1/peers/12D3KooWknown").await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["Peers"][0]["ID"], "12D3KooWknown");
    assert_eq!(
        get(&app, "/routing/v1/peers/12D3KooWother").await.status,
        StatusCode::NOT_FOUND
    );
    // IPNS PUT: the media type, the size limit, validity.
    let at = "/routing/v1/ipns/k51name";
    let ctype = "application/vnd.ipfs.ipns-record";
    assert_eq!(
        put(&app, at, ctype, b"ok record".to_vec()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        put(&app, at, "application/json", b"ok".to_vec())
            .await
            .status,
        StatusCode::NOT_ACCEPTABLE
    );
    assert_eq!(
        put(&app, at, ctype, b"bad".to_vec()).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put(&app, at, ctype, vec![b'o'; 10 * 1024 + 1]).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        *backend.puts.lock().expect("lock"),
        vec![("k51name".to_string(), b"ok record".to_vec())]
    );
    // No record: 404 cacheable for a minute; PUT elsewhere is not allowed; CORS preflight.
    let r = get(&app, at).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.h("cache-control"), "public, max-age=60");
    assert_eq!(
        put(&app, "/routing/v1/providers/x", ctype, b"ok".to_vec())
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let r = call(&app, Method::OPTIONS, at, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.h("access-control-allow-methods"), "GET, PUT, OPTIONS");
    assert_eq!(
        get(&app, "/routing/v1/unknown/x").await.status,
        StatusCode::BAD_REQUEST
    );
}
