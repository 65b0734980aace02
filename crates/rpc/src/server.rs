//! Routing and the command handlers.

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

use crate::upload::{self, AddParams};
use crate::{Backend, Request, RpcError};

/// Bounds on what clients can hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests served at once; more get Kubo's rate-limit error (429) at once rather than
    /// queueing without bound.
    pub concurrent_requests: usize,
    /// Chunks of a streamed response (or an upload) buffered ahead of a slow consumer.
    pub stream_buffer: usize,
    /// Largest upload accepted by `add`, in bytes.
    pub max_upload: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrent_requests: 256,
            stream_buffer: 8,
            max_upload: 64 << 30,
        }
    }
}

#[derive(Clone)]
struct AppState {
    backend: Arc<dyn Backend>,
    permits: Arc<Semaphore>,
    limits: Limits,
}

/// The `/api/v0` router over `backend`.
pub fn router(backend: Arc<dyn Backend>, limits: Limits) -> Router {
    let state = AppState {
        backend,
        permits: Arc::new(Semaphore::new(limits.concurrent_requests)),
        limits,
    };
    // Uploads are bounded by `max_upload` as they stream, not by axum's 2 MB default.
    Router::new()
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

pub(crate) fn json_response<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => RpcError::normal(format!("encode response: {e}")).into_response(),
    }
}

/// Newline-delimited JSON objects, as Kubo streams lists.
pub(crate) fn ndjson_response<T: serde::Serialize>(
    values: impl IntoIterator<Item = T>,
) -> Response {
    let mut body = Vec::new();
    for v in values {
        if serde_json::to_writer(&mut body, &v).is_err() {
            return RpcError::normal("encode response").into_response();
        }
        body.push(b'\n');
    }
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    resp.headers_mut()
        .insert("X-Chunked-Output", HeaderValue::from_static("1"));
    resp
}

/// Runs a blocking backend call off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(RpcError {
            message: format!("internal error: {e}"),
            kind: crate::ErrorKind::Implementation,
            plain: None,
        })
    })
}

/// A `Write` that hands chunks to the response body through a bounded channel. When the
/// client goes away the channel closes and writes fail, which stops the producer.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams what `produce` writes. An error before the first byte becomes a normal error
/// response; one after it ends the body early, which clients see as a broken stream.
pub(crate) async fn stream_response(
    limits: Limits,
    json_lines: bool,
    produce: impl FnOnce(&mut dyn Write) -> Result<(), RpcError> + Send + 'static,
) -> Response {
    let (tx, mut rx) = mpsc::channel(limits.stream_buffer.max(1));
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), RpcError>>();
    tokio::task::spawn_blocking(move || {
        let mut w = FirstWrite {
            inner: ChannelWriter { tx: tx.clone() },
            first: Some(first_tx),
        };
        let result = produce(&mut w);
        match (result, w.first.take()) {
            // Nothing was written yet: the error (or the empty success) decides the status.
            (r, Some(first)) => {
                let _ = first.send(r);
            }
            (Err(e), None) => {
                let _ = tx.blocking_send(Err(io::Error::other(e.message)));
            }
            (Ok(()), None) => {}
        }
    });
    // A closed channel means the producer finished having written nothing: an empty body.
    if let Ok(Err(e)) = first_rx.await {
        return e.into_response();
    }
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    if json_lines {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("X-Chunked-Output", HeaderValue::from_static("1"));
    } else {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert("X-Stream-Output", HeaderValue::from_static("1"));
    }
    h.insert(header::TRAILER, HeaderValue::from_static("X-Stream-Error"));
    resp
}

/// Signals "output has started" on the first write, so the status can still be chosen before.
struct FirstWrite {
    inner: ChannelWriter,
    first: Option<tokio::sync::oneshot::Sender<Result<(), RpcError>>>,
}

impl Write for FirstWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

async fn dispatch(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let query = uri.query().map(str::to_string);
    let Some(cmd) = uri.path().strip_prefix("/api/v0/") else {
        return RpcError::request(StatusCode::NOT_FOUND, "404 page not found").into_response();
    };
    let cmd = cmd.trim_end_matches('/').to_string();
    if method == Method::OPTIONS {
        return (StatusCode::NO_CONTENT, [(header::ALLOW, "OPTIONS, POST")]).into_response();
    }
    if method != Method::POST {
        let mut resp =
            RpcError::request(StatusCode::METHOD_NOT_ALLOWED, "405 - Method Not Allowed")
                .into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
        return resp;
    }
    let Ok(_permit) = state.permits.clone().try_acquire_owned() else {
        return RpcError::request(StatusCode::TOO_MANY_REQUESTS, "429 - Too Many Requests")
            .into_response();
    };
    let req = Request::parse(query.as_deref());
    match run(&state, &cmd, req, request).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

/// Kubo's block size limit for `block/put` and `dag/put` without `allow-big-block`.
const BLOCK_LIMIT: usize = 1024 * 1024;
/// The largest block accepted even with `allow-big-block`.
const MAX_BIG_BLOCK: usize = 64 << 20;

/// The commands this server answers (for `commands`).
const COMMANDS: &[&str] = &[
    "add",
    "block/get",
    "block/rm",
    "block/stat",
    "cat",
    "commands",
    "config",
    "config/show",
    "dag/export",
    "dag/get",
    "dag/resolve",
    "files/chcid",
    "files/cp",
    "files/flush",
    "files/ls",
    "files/mkdir",
    "files/mv",
    "files/read",
    "files/rm",
    "files/stat",
    "files/write",
    "id",
    "key/export",
    "key/gen",
    "key/import",
    "key/list",
    "key/rename",
    "key/rm",
    "ls",
    "name/publish",
    "name/resolve",
    "pin/add",
    "pin/ls",
    "pin/rm",
    "refs",
    "refs/local",
    "repo/gc",
    "repo/stat",
    "repo/verify",
    "repo/version",
    "resolve",
    "stats/repo",
    "version",
];

fn require(args: &[String], name: &str) -> Result<(), RpcError> {
    if args.is_empty() {
        return Err(RpcError::request(
            StatusCode::BAD_REQUEST,
            format!("argument \"{name}\" is required"),
        ));
    }
    Ok(())
}

fn add_params(req: &Request) -> Result<AddParams, RpcError> {
    let uint = |names: &[&str]| req.uint(names);
    Ok(AddParams {
        cid_version: uint(&["cid-version"])?
            .map(|v| u8::try_from(v).map_err(|_| RpcError::client("cid-version must be 0 or 1")))
            .transpose()?,
        raw_leaves: req
            .string(&["raw-leaves"])
            .map(|_| req.flag(&["raw-leaves"], false))
            .transpose()?,
        chunker: req.string(&["chunker", "s"]).map(str::to_string),
        trickle: req.flag(&["trickle", "t"], false)?,
        hash: req.string(&["hash"]).map(str::to_string),
        only_hash: req.flag(&["only-hash", "n"], false)?,
        wrap: req.flag(&["wrap-with-directory", "w"], false)?,
        pin: req.flag(&["pin"], true)?,
        progress: req.flag(&["progress", "p"], false)?,
        max_file_links: uint(&["max-file-links"])?,
        max_directory_links: uint(&["max-directory-links"])?,
        max_hamt_fanout: uint(&["max-hamt-fanout"])?,
        profile: req.string(&["profile"]).map(str::to_string),
    })
}

async fn run(
    state: &AppState,
    cmd: &str,
    req: Request,
    request: axum::extract::Request,
) -> Result<Response, RpcError> {
    let b = state.backend.clone();
    Ok(match cmd {
        "add" => {
            let params = add_params(&req)?;
            let multipart = Multipart::from_request(request, &()).await.map_err(|e| {
                RpcError::client(format!("add needs a multipart/form-data body: {e}"))
            })?;
            let mut upload = upload::start(
                multipart,
                state.limits.stream_buffer,
                state.limits.max_upload,
            );
            stream_response(state.limits, true, move |w| {
                b.add(&mut upload, &params, &mut |event| {
                    serde_json::to_writer(&mut *w, &event).map_err(io::Error::other)?;
                    w.write_all(b"\n")
                })
            })
            .await
        }
        "block/put" | "dag/put" | "dag/import" => {
            let multipart = Multipart::from_request(request, &()).await.map_err(|_| {
                RpcError::request(StatusCode::BAD_REQUEST, "file argument 'data' is required")
            })?;
            let mut upload = upload::start(
                multipart,
                state.limits.stream_buffer,
                state.limits.max_upload,
            );
            let allow_big = req.flag(&["allow-big-block"], false)?;
            // Read one byte past the block limit so the node can name the oversize exactly.
            let limit = if allow_big {
                MAX_BIG_BLOCK
            } else {
                BLOCK_LIMIT + 1
            };
            let pin = req.flag(&["pin"], cmd == "dag/import")?;
            match cmd {
                "block/put" => {
                    let codec = req.string(&["cid-codec"]).unwrap_or("raw").to_string();
                    let mhtype = req.string(&["mhtype"]).unwrap_or("sha2-256").to_string();
                    let format = req.string(&["format", "f"]).map(str::to_string);
                    let (key, size) = blocking(move || {
                        let data = upload.first_file(limit, "block")?;
                        b.block_put(data, &codec, &mhtype, format.as_deref(), allow_big, pin)
                    })
                    .await?;
                    json_response(&json!({ "Key": key, "Size": size }))
                }
                "dag/put" => {
                    let input = req
                        .string(&["input-codec"])
                        .unwrap_or("dag-json")
                        .to_string();
                    let store = req
                        .string(&["store-codec"])
                        .unwrap_or("dag-cbor")
                        .to_string();
                    let hash = req.string(&["hash"]).unwrap_or("sha2-256").to_string();
                    let cid = blocking(move || {
                        let data = upload.first_file(limit, "node")?;
                        b.dag_put(data, &input, &store, &hash, pin, allow_big)
                    })
                    .await?;
                    json_response(&json!({ "Cid": { "/": cid } }))
                }
                _ => {
                    let pin_roots = req.flag(&["pin-roots"], true)?;
                    let stats = req.flag(&["stats"], false)?;
                    let crate::DagImported {
                        roots,
                        blocks,
                        bytes,
                    } = blocking(move || b.dag_import(&mut upload, pin_roots)).await?;
                    let mut lines: Vec<serde_json::Value> = if pin_roots {
                        roots
                            .into_iter()
                            .map(|(c, e)| json!({ "Root": { "Cid": { "/": c }, "PinErrorMsg": e.unwrap_or_default() } }))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    if stats {
                        lines.push(
                            json!({ "Stats": { "BlockCount": blocks, "BlockBytesCount": bytes } }),
                        );
                    }
                    ndjson_response(lines)
                }
            }
        }
        "id" => json_response(&blocking(move || b.id()).await?),
        "version" => json_response(&b.version()),
        "cat" => {
            let path = req.arg(0, "ipfs-path")?.to_string();
            let offset = req.uint(&["offset", "o"])?.unwrap_or(0);
            let length = req.uint(&["length", "l"])?;
            stream_response(state.limits, false, move |w| {
                b.cat(&path, offset, length, w)
            })
            .await
        }
        "block/get" => {
            let path = req.arg(0, "cid")?.to_string();
            let data = blocking(move || b.block_get(&path)).await?;
            ([(header::CONTENT_TYPE, "application/vnd.ipld.raw")], data).into_response()
        }
        "block/stat" => {
            let path = req.arg(0, "cid")?.to_string();
            let (key, size) = blocking(move || b.block_stat(&path)).await?;
            json_response(&json!({ "Key": key, "Size": size }))
        }
        "refs/local" => {
            let refs = blocking(move || b.refs_local()).await?;
            ndjson_response(refs.into_iter().map(|r| json!({ "Ref": r, "Err": "" })))
        }
        "repo/stat" => json_response(&blocking(move || b.repo_stat()).await?),
        "pin/ls" => {
            let kind = req.string(&["type", "t"]).unwrap_or("all").to_string();
            let paths = req.args.clone();
            let pins = blocking(move || b.pin_ls(&paths, &kind)).await?;
            let keys: serde_json::Map<String, serde_json::Value> = pins
                .into_iter()
                .map(|(cid, t)| (cid, json!({ "Type": t })))
                .collect();
            json_response(&json!({ "Keys": keys }))
        }
        "pin/add" => {
            let (paths, recursive) = (req.args.clone(), req.flag(&["recursive", "r"], true)?);
            require(&paths, "ipfs-path")?;
            json_response(&json!({ "Pins": blocking(move || b.pin_add(&paths, recursive)).await? }))
        }
        "pin/rm" => {
            let (paths, recursive) = (req.args.clone(), req.flag(&["recursive", "r"], true)?);
            require(&paths, "ipfs-path")?;
            json_response(&json!({ "Pins": blocking(move || b.pin_rm(&paths, recursive)).await? }))
        }
        "block/rm" => {
            let (cids, force) = (req.args.clone(), req.flag(&["force", "f"], false)?);
            require(&cids, "cid")?;
            let out = blocking(move || b.block_rm(&cids, force)).await?;
            ndjson_response(out.into_iter().map(|(c, e)| match e {
                // Kubo omits Error when there is none; clients test for its presence.
                None => json!({ "Hash": c }),
                Some(e) => json!({ "Hash": c, "Error": e }),
            }))
        }
        "repo/gc" => {
            let removed = blocking(move || b.repo_gc()).await?;
            ndjson_response(removed.into_iter().map(|c| json!({ "Key": { "/": c } })))
        }
        "repo/verify" => {
            let (bad, n) = blocking(move || b.repo_verify()).await?;
            if let Some((cid, why)) = bad.first() {
                return Err(RpcError::normal(format!(
                    "block {cid} was corrupt ({why}); {} of {n} blocks bad",
                    bad.len()
                )));
            }
            ndjson_response([
                json!({ "Msg": "verify complete, all blocks validated.", "Progress": n }),
            ])
        }
        "repo/version" => json_response(&json!({ "Version": b.version()["Repo"] })),
        "stats/repo" => json_response(&blocking(move || b.repo_stat()).await?),
        "refs" => {
            let path = req.arg(0, "ipfs-path")?.to_string();
            let recursive = req.flag(&["recursive", "r"], false)?;
            let unique = req.flag(&["unique", "u"], false)?;
            let refs = blocking(move || b.refs(&path, recursive, unique)).await?;
            ndjson_response(refs.into_iter().map(|r| json!({ "Ref": r, "Err": "" })))
        }
        "resolve" | "dag/resolve" => {
            let path = req.arg(0, "name")?.to_string();
            let cid = blocking(move || b.resolve(&path)).await?;
            if cmd == "resolve" {
                json_response(&json!({ "Path": format!("/ipfs/{cid}") }))
            } else {
                json_response(&json!({ "Cid": { "/": cid }, "RemPath": "" }))
            }
        }
        "dag/get" => {
            let path = req.arg(0, "ref")?.to_string();
            let codec = req
                .string(&["output-codec"])
                .unwrap_or("dag-json")
                .to_string();
            let bytes = blocking(move || b.dag_get(&path, &codec)).await?;
            ([(header::CONTENT_TYPE, "text/plain")], bytes).into_response()
        }
        "dag/export" => {
            let path = req.arg(0, "root")?.to_string();
            stream_response(state.limits, false, move |w| b.dag_export(&path, w)).await
        }
        "ls" => {
            let path = req.arg(0, "ipfs-path")?.to_string();
            let arg = path.clone();
            let links = blocking(move || b.ls(&path)).await?;
            json_response(&json!({ "Objects": [{ "Hash": arg, "Links": links }] }))
        }
        "config/show" => json_response(&blocking(move || b.config_show()).await?),
        "config" => {
            let key = req.arg(0, "key")?.to_string();
            if req.args.len() > 1 {
                return Err(RpcError::normal("config set over the API is not supported yet: edit config.toml or use `ipfs-kit config set` with the daemon stopped"));
            }
            let k = key.clone();
            let value = blocking(move || b.config_get(&k)).await?;
            json_response(&json!({ "Key": key, "Value": value }))
        }
        "commands" => json_response(&json!({
            "Name": "ipfs",
            "Subcommands": COMMANDS.iter().map(|c| json!({ "Name": c, "Subcommands": [], "Options": [] })).collect::<Vec<_>>(),
            "Options": [],
        })),
        c if c.starts_with("files/") => crate::files::run(b, state.limits, c, req, request).await?,
        c if c.starts_with("key/") => crate::keys::run(b, state.limits, c, req, request).await?,
        c if c.starts_with("name/") => crate::name::run(b, c, req).await?,
        _ => {
            return Err(RpcError::request(
                StatusCode::NOT_FOUND,
                "404 page not found",
            ))
        }
    })
}
