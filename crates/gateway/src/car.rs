//! CAR responses of the trustless gateway: which blocks, in which order.
//!
//! Blocks come in depth-first pre-order (`order=dfs`): first those read to walk the path, then
//! the terminal element as `dag-scope` says: `block` (its block), `entity` (a whole UnixFS file,
//! or the part `entity-bytes` selects; the shards of a HAMT directory; one block otherwise) or
//! `all` (the whole DAG below it). With `dups=n` each block is sent once; with `dups=y` every
//! time the walk meets it. Identity blocks are never sent: their bytes are in the CID.

use std::collections::HashSet;
use std::io::Write;

use axum::http::StatusCode;
use ipfs_kit_block::dagpb::PbNode;
use ipfs_kit_block::{codec, ipld, Cid, IDENTITY};
use ipfs_kit_car::CarWriter;
use ipfs_kit_unixfs::pb::{Data, DataType};
use ipfs_kit_unixfs::{hamt, reader, Kind};

use crate::parse::{parse_entity_bytes, EntityBytes};
use crate::resolve::{Blocks, HttpError, Resolved};

/// `dag-scope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Block,
    Entity,
    All,
}

/// What a CAR request asked for, once validated.
#[derive(Clone, Debug)]
pub(crate) struct CarParams {
    pub scope: Scope,
    pub entity_bytes: Option<EntityBytes>,
    pub dups: bool,
}

impl CarParams {
    /// Reads `dag-scope`, `entity-bytes`, `car-version`/`car-order`/`car-dups` (which win over
    /// the same parameters of the `Accept` type), refusing what this gateway cannot produce.
    pub fn from_request(
        query: &[(String, String)],
        accept: &[(String, String)],
    ) -> Result<CarParams, HttpError> {
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let a = |k: &str| accept.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match q("car-version").or(a("version")) {
            None | Some("1") => {}
            Some(v) => {
                return Err(HttpError::bad_request(format!(
                "unsupported application/vnd.ipld.car version {v:?}: only version=1 is supported"
            )))
            }
        }
        match q("car-order").or(a("order")) {
            // Depth-first is one of the orders "unk" allows.
            None | Some("dfs") | Some("unk") => {}
            Some(o) => {
                return Err(HttpError::bad_request(format!(
                    "unsupported car order {o:?}: only dfs and unk are supported"
                )))
            }
        }
        let dups = match q("car-dups").or(a("dups")) {
            None | Some("n") => false,
            Some("y") => true,
            Some(d) => {
                return Err(HttpError::bad_request(format!(
                    "invalid car dups {d:?}: expected y or n"
                )))
            }
        };
        let mut scope = match q("dag-scope") {
            None | Some("all") => Scope::All,
            Some("entity") => Scope::Entity,
            Some("block") => Scope::Block,
            Some(s) => {
                return Err(HttpError::bad_request(format!(
                    "invalid dag-scope {s:?}: expected block, entity or all"
                )))
            }
        };
        let entity_bytes = match q("entity-bytes") {
            None => None,
            Some(v) => {
                let eb = parse_entity_bytes(v).ok_or_else(|| {
                    HttpError::bad_request(format!("invalid entity-bytes {v:?}: expected from:to"))
                })?;
                // entity-bytes implies the entity scope.
                scope = Scope::Entity;
                Some(eb)
            }
        };
        Ok(CarParams {
            scope,
            entity_bytes,
            dups,
        })
    }

    /// The parameters as they distinguish one response from another (for the ETag).
    pub fn etag_key(&self) -> String {
        format!(
            "scope={:?};dups={};range={:?}",
            self.scope, self.dups, self.entity_bytes
        )
    }
}

/// The media type of the responses this module writes.
pub(crate) fn content_type(params: &CarParams) -> String {
    format!(
        "application/vnd.ipld.car; version=1; order=dfs; dups={}",
        if params.dups { "y" } else { "n" }
    )
}

struct Emitter<'a, W: Write> {
    blocks: Blocks<'a>,
    car: CarWriter<W>,
    dups: bool,
    seen: HashSet<Cid>,
}

impl<W: Write> Emitter<'_, W> {
    /// Sends one block unless it was sent already (with `dups=n`); returns its bytes when the
    /// walk should go on below it, `None` when it was skipped as a duplicate.
    fn emit(&mut self, cid: &Cid) -> Result<Option<ipfs_kit_block::Bytes>, HttpError> {
        if !self.dups && !self.seen.insert(*cid) {
            return Ok(None);
        }
        let bytes = self.blocks.get(cid)?;
        if cid.hash().code() != IDENTITY {
            self.car.write(cid, &bytes).map_err(car_err)?;
        }
        Ok(Some(bytes))
    }
}

fn car_err(e: ipfs_kit_car::Error) -> HttpError {
    HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Writes the CAR for `resolved` to `out`. The header's root is the CID the path starts at.
pub(crate) fn write_car(
    blocks: Blocks<'_>,
    resolved: &Resolved,
    params: &CarParams,
    out: &mut dyn Write,
) -> Result<(), HttpError> {
    let car = CarWriter::new(out, &[resolved.root]).map_err(car_err)?;
    let mut em = Emitter {
        blocks,
        car,
        dups: params.dups,
        seen: HashSet::new(),
    };
    for cid in &resolved.path_blocks {
        em.emit(cid)?;
    }
    let t = resolved.terminal;
    match params.scope {
        Scope::Block => {
            em.emit(&t)?;
        }
        Scope::All => emit_all(&mut em, t)?,
        Scope::Entity => emit_entity(&mut em, t, params.entity_bytes)?,
    }
    em.car.finish().map_err(car_err)?;
    Ok(())
}

/// The whole DAG below `root`, depth-first, iteratively (a hostile deep DAG cannot exhaust the
/// stack).
fn emit_all<W: Write>(em: &mut Emitter<'_, W>, root: Cid) -> Result<(), HttpError> {
    let mut stack = vec![root];
    while let Some(cid) = stack.pop() {
        let Some(bytes) = em.emit(&cid)? else {
            continue;
        };
        let mut links = ipld::links(cid.codec(), &bytes)?;
        links.reverse();
        stack.extend(links);
    }
    Ok(())
}

fn emit_entity<W: Write>(
    em: &mut Emitter<'_, W>,
    t: Cid,
    range: Option<EntityBytes>,
) -> Result<(), HttpError> {
    if t.codec() != codec::DAG_PB {
        // A raw leaf is a whole file in one block; other codecs' entity is their block.
        em.emit(&t)?;
        return Ok(());
    }
    let stat = reader::stat(&em.blocks, &t)?;
    match stat.kind {
        Kind::File => {
            let want = match range {
                None => Some((0, u64::MAX)),
                Some(r) => r.resolve(stat.filesize),
            };
            match want {
                Some(w) => emit_file(em, t, w),
                // Nothing selected: the root alone lets a client see the file's size.
                None => em.emit(&t).map(|_| ()),
            }
        }
        Kind::Directory if stat.sharded => emit_shards(em, t),
        _ => em.emit(&t).map(|_| ()),
    }
}

/// The blocks of a UnixFS file needed to read bytes `want.0..want.1`.
fn emit_file<W: Write>(
    em: &mut Emitter<'_, W>,
    root: Cid,
    want: (u64, u64),
) -> Result<(), HttpError> {
    let mut stack = vec![(root, 0u64)];
    while let Some((cid, at)) = stack.pop() {
        let Some(bytes) = em.emit(&cid)? else {
            continue;
        };
        if cid.codec() != codec::DAG_PB {
            continue;
        }
        let node = PbNode::decode_bytes(&bytes)?;
        let Some(data) = node.data.as_ref().and_then(|d| Data::decode_bytes(d).ok()) else {
            continue;
        };
        let mut child_at = at + data.data.as_ref().map_or(0, |d| d.len() as u64);
        let mut children = Vec::new();
        for (link, size) in node.links.iter().zip(&data.blocksizes) {
            if child_at < want.1 && child_at.saturating_add(*size) > want.0 {
                children.push((link.cid, child_at));
            }
            child_at = child_at.saturating_add(*size);
        }
        stack.extend(children.into_iter().rev());
    }
    Ok(())
}

/// Every shard node of a HAMT directory, not the entries it names.
fn emit_shards<W: Write>(em: &mut Emitter<'_, W>, root: Cid) -> Result<(), HttpError> {
    let mut stack = vec![root];
    while let Some(cid) = stack.pop() {
        let Some(bytes) = em.emit(&cid)? else {
            continue;
        };
        let node = PbNode::decode_bytes(&bytes)?;
        let data = node.data.as_ref().and_then(|d| Data::decode_bytes(d).ok());
        let Some(fanout) = data
            .filter(|d| d.kind == DataType::HamtShard)
            .and_then(|d| d.fanout)
        else {
            continue;
        };
        let pad = hamt::pad_len(usize::try_from(fanout).unwrap_or(usize::MAX));
        let subs: Vec<Cid> = node
            .links
            .iter()
            .filter(|l| l.name.as_ref().is_some_and(|n| n.len() == pad))
            .map(|l| l.cid)
            .collect();
        stack.extend(subs.into_iter().rev());
    }
    Ok(())
}
