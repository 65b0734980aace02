//! `files/*`: MFS over the RPC API, with Kubo's options, JSON shapes and empty bodies.

use std::io::Read;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;

use crate::server::{blocking, json_response, ndjson_response, stream_response};
use crate::upload::{self, Upload, UploadKind};
use crate::{Backend, Limits, Request, RpcError};

/// `files/stat` output, with Kubo's field names.
#[derive(Clone, Debug, Serialize)]
pub struct FilesStat {
    /// The node's CID.
    #[serde(rename = "Hash")]
    pub hash: String,
    /// File size (0 for directories).
    #[serde(rename = "Size")]
    pub size: u64,
    /// Cumulative DAG size.
    #[serde(rename = "CumulativeSize")]
    pub cumulative_size: u64,
    /// Number of links.
    #[serde(rename = "Blocks")]
    pub blocks: u64,
    /// `file` or `directory`.
    #[serde(rename = "Type")]
    pub kind: String,
}

/// One `files/ls` entry, with Kubo's field names (Type 0 file, 1 directory).
#[derive(Clone, Debug, Serialize)]
pub struct FilesEntry {
    /// Entry name.
    #[serde(rename = "Name")]
    pub name: String,
    /// 0 file, 1 directory.
    #[serde(rename = "Type")]
    pub kind: u8,
    /// File size (0 for directories).
    #[serde(rename = "Size")]
    pub size: u64,
    /// The entry's CID.
    #[serde(rename = "Hash")]
    pub hash: String,
}

/// Options of `files/write`.
#[derive(Clone, Debug, Default)]
pub struct FilesWrite {
    /// `offset`/`o`.
    pub offset: u64,
    /// `create`/`e`.
    pub create: bool,
    /// `parents`/`p`.
    pub parents: bool,
    /// `truncate`/`t`.
    pub truncate: bool,
    /// `count`/`n`.
    pub count: Option<u64>,
    /// `raw-leaves`.
    pub raw_leaves: Option<bool>,
    /// `cid-version`/`cid-ver`.
    pub cid_version: Option<u8>,
    /// `hash`.
    pub hash: Option<String>,
}

/// The first file part of an upload, as a `Read`.
struct FirstFile<'a>(&'a mut Upload);

impl Read for FirstFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

fn cid_version(req: &Request) -> Result<Option<u8>, RpcError> {
    req.uint(&["cid-version", "cid-ver"])?
        .map(|v| u8::try_from(v).map_err(|_| RpcError::normal(format!("unknown CID version {v}"))))
        .transpose()
}

fn two(req: &Request) -> Result<(String, String), RpcError> {
    Ok((
        req.arg(0, "source")?.to_string(),
        req.arg(1, "dest")?.to_string(),
    ))
}

/// Answers `files/<sub>`.
pub(crate) async fn run(
    b: Arc<dyn Backend>,
    limits: Limits,
    received: prometheus_client::metrics::counter::Counter,
    cmd: &str,
    req: Request,
    request: axum::extract::Request,
) -> Result<Response, RpcError> {
    let empty = || ndjson_response(Vec::<serde_json::Value>::new());
    let hash = req.string(&["hash"]).map(str::to_string);
    Ok(match cmd {
        "files/stat" => {
            let path = req.arg(0, "path")?.to_string();
            json_response(&blocking(move || b.files_stat(&path)).await?)
        }
        "files/ls" => {
            let path = req.args.first().cloned().unwrap_or_else(|| "/".into());
            let long = req.flag(&["long", "l"], false)?;
            let entries = blocking(move || b.files_ls(&path)).await?;
            // Without --long Kubo fills in the names only.
            let entries: Vec<FilesEntry> = entries
                .into_iter()
                .map(|e| {
                    if long {
                        e
                    } else {
                        FilesEntry {
                            name: e.name,
                            kind: 0,
                            size: 0,
                            hash: String::new(),
                        }
                    }
                })
                .collect();
            let entries = (!entries.is_empty()).then_some(entries);
            json_response(&json!({ "Entries": entries }))
        }
        "files/read" => {
            let path = req.arg(0, "path")?.to_string();
            let offset = req.uint(&["offset", "o"])?.unwrap_or(0);
            let count = req.uint(&["count", "n"])?;
            stream_response(limits, false, move |w| {
                b.files_read(&path, offset, count, w)
            })
            .await
        }
        "files/write" => {
            let path = req.arg(0, "path")?.to_string();
            let opts = FilesWrite {
                offset: req.uint(&["offset", "o"])?.unwrap_or(0),
                create: req.flag(&["create", "e"], false)?,
                parents: req.flag(&["parents", "p"], false)?,
                truncate: req.flag(&["truncate", "t"], false)?,
                count: req.uint(&["count", "n"])?,
                raw_leaves: req
                    .string(&["raw-leaves"])
                    .map(|_| req.flag(&["raw-leaves"], false))
                    .transpose()?,
                cid_version: cid_version(&req)?,
                hash,
            };
            let mut upload = upload::from_request(request, &limits, received, "data").await?;
            blocking(move || {
                loop {
                    match upload.next_entry()? {
                        None => {
                            return Err(RpcError::request(
                                StatusCode::BAD_REQUEST,
                                "file argument 'data' is required",
                            ))
                        }
                        Some((_, UploadKind::File)) => break,
                        Some(_) => {}
                    }
                }
                b.files_write(&path, &mut FirstFile(&mut upload), &opts)
            })
            .await?;
            empty()
        }
        "files/mkdir" => {
            let path = req.arg(0, "path")?.to_string();
            let parents = req.flag(&["parents", "p"], false)?;
            let v = cid_version(&req)?;
            blocking(move || b.files_mkdir(&path, parents, v, hash.as_deref())).await?;
            empty()
        }
        "files/cp" => {
            let (src, dst) = two(&req)?;
            let parents = req.flag(&["parents", "p"], false)?;
            blocking(move || b.files_cp(&src, &dst, parents)).await?;
            empty()
        }
        "files/mv" => {
            let (src, dst) = two(&req)?;
            blocking(move || b.files_mv(&src, &dst)).await?;
            empty()
        }
        "files/rm" => {
            let paths = req.args.clone();
            req.arg(0, "path")?;
            let recursive = req.flag(&["recursive", "r"], false)?;
            let force = req.flag(&["force"], false)?;
            blocking(move || b.files_rm(&paths, recursive, force)).await?;
            empty()
        }
        "files/flush" => {
            let path = req.args.first().cloned().unwrap_or_else(|| "/".into());
            let cid = blocking(move || b.files_flush(&path)).await?;
            json_response(&json!({ "Cid": cid }))
        }
        "files/chcid" => {
            let path = req.args.first().cloned().unwrap_or_else(|| "/".into());
            let v = cid_version(&req)?;
            blocking(move || b.files_chcid(&path, v, hash.as_deref())).await?;
            empty()
        }
        _ => {
            return Err(RpcError::request(
                StatusCode::NOT_FOUND,
                "404 page not found",
            ))
        }
    })
}
