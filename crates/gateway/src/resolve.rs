//! Content paths: parsing `/ipfs/{cid}/a/b` from a URL, and walking it to the CID at its end
//! while noting what the gateway must report and send (one logical root per segment for
//! `X-Ipfs-Roots`, every block read on the way for CAR responses).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use axum::http::StatusCode;
use ipfs_kit_block::ipld::{self, Ipld};
use ipfs_kit_block::{codec, parse_cid, Bytes, Cid, HashAlg, IDENTITY};
use ipfs_kit_unixfs::{reader, BlockSource, BoxError};

use crate::{Backend, Error};

/// An error response: a status and a short text.
#[derive(Debug)]
pub(crate) struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<Error> for HttpError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        HttpError::new(status, e.to_string())
    }
}

impl From<ipfs_kit_unixfs::Error> for HttpError {
    fn from(e: ipfs_kit_unixfs::Error) -> Self {
        use ipfs_kit_unixfs::Error as U;
        match e {
            // The backend's own error decides: a missing block is a 404, a broken store a 500.
            U::Source(_, inner) => match inner.downcast::<Error>() {
                Ok(b) => (*b).into(),
                Err(other) => HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
            },
            U::NoLink { .. } | U::NotDirectory(_) => HttpError::not_found(e.to_string()),
            other => HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl From<ipfs_kit_block::Error> for HttpError {
    fn from(e: ipfs_kit_block::Error) -> Self {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// The last blocks one request read. Answering a request reads the first blocks of a file
/// several times in a row (stat, content type, body); this keeps that to one store read (and
/// one re-hash) each.
pub(crate) type Memo = std::sync::Mutex<Vec<(Cid, Bytes)>>;

/// Blocks a [`Memo`] keeps: a file's root and its first leaf.
const MEMO_BLOCKS: usize = 2;

fn lock(m: &Memo) -> std::sync::MutexGuard<'_, Vec<(Cid, Bytes)>> {
    // A panic elsewhere cannot leave a cache of immutable blocks inconsistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How much a request answered from memory on the async runtime may read before it is sent to
/// the blocking pool instead: enough for a file of a few leaves or a short path, little enough
/// that no request holds a runtime thread for long (a large listing, a big transcode).
pub(crate) struct Budget {
    missed: AtomicBool,
    blocks: AtomicUsize,
    bytes: AtomicU64,
}

impl Budget {
    /// Blocks one memory-only attempt may read.
    const BLOCKS: usize = 64;
    /// Bytes one memory-only attempt may read.
    const BYTES: u64 = 4 << 20;

    pub fn new() -> Self {
        Budget {
            missed: AtomicBool::new(false),
            blocks: AtomicUsize::new(Self::BLOCKS),
            bytes: AtomicU64::new(Self::BYTES),
        }
    }

    /// Whether the attempt needed something not in memory (or over budget): its answer must be
    /// thrown away and the request served the ordinary way.
    pub fn missed(&self) -> bool {
        self.missed.load(Ordering::Relaxed)
    }

    fn miss(&self) -> Error {
        self.missed.store(true, Ordering::Relaxed);
        Error::Timeout("not in memory".into())
    }

    /// Takes one block of `len` bytes from the budget; `false` when it is spent.
    fn take(&self, len: usize) -> bool {
        let blocks = self.blocks.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        if blocks == 0 || bytes < len as u64 {
            return false;
        }
        self.blocks.store(blocks - 1, Ordering::Relaxed);
        self.bytes.store(bytes - len as u64, Ordering::Relaxed);
        true
    }
}

/// The backend as the UnixFS readers see it. Identity CIDs are answered from the CID itself.
/// With a [`Budget`], only blocks in memory are read ([`Backend::get_cached_block`]), and any
/// other need marks the budget missed and fails.
#[derive(Clone, Copy)]
pub(crate) struct Blocks<'a>(
    pub &'a dyn Backend,
    pub Option<&'a Memo>,
    pub Option<&'a Budget>,
);

/// The empty UnixFS directory (`QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn`, and its CIDv1
/// forms). Kubo repos hold it from `init` on and clients probe gateways with it, so it is always
/// served, whatever the backend has.
const EMPTY_DIR: &[u8] = &[0x0a, 0x02, 0x08, 0x01];

fn is_empty_dir(cid: &Cid) -> bool {
    cid.hash().code() == ipfs_kit_block::SHA2_256
        && cid.hash().digest() == HashAlg::Sha2_256.digest(EMPTY_DIR).digest()
}

impl Blocks<'_> {
    /// A block's bytes; a missing block is [`Error::NotFound`].
    pub fn get(&self, cid: &Cid) -> Result<Bytes, Error> {
        if cid.hash().code() == IDENTITY {
            return Ok(Bytes::copy_from_slice(cid.hash().digest()));
        }
        if let Some(memo) = self.1 {
            if let Some((_, b)) = lock(memo).iter().find(|(c, _)| c == cid) {
                return Ok(b.clone());
            }
        }
        let found = match self.2 {
            Some(budget) => match self.0.get_cached_block(cid) {
                Some(b) if budget.take(b.len()) => Some(b),
                _ if is_empty_dir(cid) => None,
                _ => return Err(budget.miss()),
            },
            None => self.0.get_block(cid)?,
        };
        match found {
            Some(b) => {
                if let Some(memo) = self.1 {
                    let mut last = lock(memo);
                    if last.len() == MEMO_BLOCKS {
                        last.remove(0);
                    }
                    last.push((*cid, b.clone()));
                }
                Ok(b)
            }
            None if is_empty_dir(cid) => Ok(Bytes::from_static(EMPTY_DIR)),
            None => Err(Error::NotFound(format!("block {cid} not found"))),
        }
    }

    /// Whether the block is available without fetching it.
    pub fn has(&self, cid: &Cid) -> Result<bool, Error> {
        if cid.hash().code() == IDENTITY || is_empty_dir(cid) {
            return Ok(true);
        }
        if let Some(budget) = self.2 {
            return Err(budget.miss());
        }
        self.0.has_block(cid)
    }
}

impl BlockSource for Blocks<'_> {
    fn get(&self, cid: &Cid) -> Result<Bytes, BoxError> {
        Blocks::get(self, cid).map_err(|e| Box::new(e) as BoxError)
    }
}

/// Notes every block fetched through it, in order.
struct Recording<'a> {
    inner: Blocks<'a>,
    seen: RefCell<Vec<Cid>>,
}

impl BlockSource for Recording<'_> {
    fn get(&self, cid: &Cid) -> Result<Bytes, BoxError> {
        let bytes = BlockSource::get(&self.inner, cid)?;
        self.seen.borrow_mut().push(*cid);
        Ok(bytes)
    }
}

/// A content path from a URL: namespace, root (CID or IPNS name) and decoded segments.
#[derive(Clone, Debug)]
pub(crate) struct ContentPath {
    /// `true` for `/ipns/`.
    pub mutable: bool,
    /// The CID string or IPNS name.
    pub root: String,
    /// Decoded path segments below the root (empty ones dropped).
    pub segments: Vec<String>,
    /// Whether the URL path ended with `/`.
    pub trailing_slash: bool,
}

impl ContentPath {
    /// Parses the URL path of a gateway request (still percent-encoded).
    pub fn parse(url_path: &str, max_segments: usize) -> Result<ContentPath, HttpError> {
        let (mutable, rest) = if let Some(r) = url_path.strip_prefix("/ipfs/") {
            (false, r)
        } else if let Some(r) = url_path.strip_prefix("/ipns/") {
            (true, r)
        } else {
            return Err(HttpError::not_found("404 page not found"));
        };
        let (root, below) = rest.split_once('/').unwrap_or((rest, ""));
        let root = decode(root)?;
        if root.is_empty() {
            return Err(HttpError::bad_request(format!(
                "invalid path {url_path:?}: no {} after the namespace",
                if mutable { "name" } else { "CID" }
            )));
        }
        Ok(ContentPath {
            mutable,
            root,
            segments: decode_segments(below, url_path, max_segments)?,
            trailing_slash: url_path.ends_with('/'),
        })
    }

    /// The path as `X-Ipfs-Path` reports it.
    pub fn display(&self) -> String {
        let mut s = format!(
            "/{}/{}",
            if self.mutable { "ipns" } else { "ipfs" },
            self.root
        );
        for seg in &self.segments {
            s.push('/');
            s.push_str(seg);
        }
        if self.trailing_slash {
            s.push('/');
        }
        s
    }
}

/// Decodes the still-encoded `/`-separated segments of a path below a content root (empty ones
/// dropped), refusing what would leave the root; `url_path` names the path in errors.
pub(crate) fn decode_segments(
    below: &str,
    url_path: &str,
    max_segments: usize,
) -> Result<Vec<String>, HttpError> {
    let mut segments = Vec::new();
    for p in below.split('/') {
        if p.is_empty() {
            continue;
        }
        let seg = decode(p)?;
        // A path must stay below its root: no dot segments, no names with '/' or NUL.
        if seg == "." || seg == ".." || seg.contains(['/', '\0']) {
            return Err(HttpError::bad_request(format!(
                "invalid path {url_path:?}: segment {seg:?} is not allowed"
            )));
        }
        if segments.len() == max_segments {
            return Err(HttpError::bad_request(format!(
                "invalid path: more than {max_segments} segments"
            )));
        }
        segments.push(seg);
    }
    Ok(segments)
}

fn decode(seg: &str) -> Result<String, HttpError> {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| HttpError::bad_request(format!("path segment {seg:?} is not UTF-8")))
}

/// Parses the root CID of an `/ipfs/` path.
pub(crate) fn root_cid(s: &str) -> Result<Cid, HttpError> {
    parse_cid(s).map_err(|e| HttpError::bad_request(format!("invalid path \"/ipfs/{s}\": {e}")))
}

/// A content path walked to its end.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The CID the path starts at.
    pub root: Cid,
    /// The CID at its end.
    pub terminal: Cid,
    /// One CID per logical path element: the root, then one per segment.
    pub roots: Vec<Cid>,
    /// Every block read to walk the segments (parents and HAMT shards), in reading order.
    pub path_blocks: Vec<Cid>,
}

/// Walks `segments` from `root`: UnixFS directories (plain and HAMT) by name, dag-cbor and
/// dag-json blocks by map key or list index through their links.
pub(crate) fn resolve(
    blocks: Blocks<'_>,
    root: Cid,
    segments: &[String],
) -> Result<Resolved, HttpError> {
    let rec = Recording {
        inner: blocks,
        seen: RefCell::new(Vec::new()),
    };
    let mut cur = root;
    let mut roots = vec![root];
    // A value inside the current dag-cbor/dag-json block that pathing has stepped into.
    let mut inside: Option<Ipld> = None;
    for seg in segments {
        match cur.codec() {
            codec::DAG_CBOR | codec::DAG_JSON => {
                let value = match inside.take() {
                    Some(v) => v,
                    None => {
                        let bytes = rec.inner.get(&cur)?;
                        rec.seen.borrow_mut().push(cur);
                        ipld::decode(cur.codec(), &bytes)?
                    }
                };
                match step(value, seg) {
                    Some(Ipld::Link(c)) => cur = c,
                    Some(other) => inside = Some(other),
                    None => return Err(HttpError::not_found(format!("no {seg:?} in {cur}"))),
                }
            }
            codec::DAG_PB => {
                cur = reader::lookup(&rec, &cur, seg)?.ok_or_else(|| {
                    HttpError::not_found(format!("no link named {seg:?} under {cur}"))
                })?;
            }
            _ => {
                return Err(HttpError::not_found(format!(
                    "cannot resolve {seg:?}: {cur} has no links"
                )))
            }
        }
        roots.push(cur);
    }
    if inside.is_some() {
        return Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            "the path ends inside a block at a value that is not a link: only links can be returned",
        ));
    }
    Ok(Resolved {
        root,
        terminal: cur,
        roots,
        path_blocks: rec.seen.into_inner(),
    })
}

/// One IPLD pathing step inside a block: a map key or a list index.
fn step(value: Ipld, seg: &str) -> Option<Ipld> {
    match value {
        Ipld::Map(mut m) => m.remove(seg),
        Ipld::List(mut items) => {
            let i: usize = seg.parse().ok()?;
            (i < items.len()).then(|| items.swap_remove(i))
        }
        _ => None,
    }
}
