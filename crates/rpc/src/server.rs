//! Routing and the command handlers.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tracing::Instrument as _;

use crate::metrics::Metrics;
use crate::upload::{self, AddParams};
use crate::{Access, Backend, RefsParams, Request, RpcError};

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
    /// How long an upload may send nothing, or a client read nothing of a streamed answer,
    /// before the request is cut: an abandoned client cannot hold a request slot forever.
    pub stall_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrent_requests: 256,
            stream_buffer: 8,
            max_upload: 64 << 30,
            stall_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Clone)]
struct AppState {
    backend: Arc<dyn Backend>,
    permits: Arc<Semaphore>,
    limits: Limits,
    access: Arc<Access>,
    metrics: Metrics,
    next_id: Arc<AtomicU64>,
}

impl AppState {
    /// Starts reading the request's multipart body for `cmd` (its bytes counted under the
    /// command); `field` names the argument in the error when there is no body.
    async fn upload(
        &self,
        cmd: &str,
        request: axum::extract::Request,
        field: &str,
    ) -> Result<upload::Upload, RpcError> {
        let received = self.metrics.bytes_in(command_label(cmd));
        upload::from_request(request, &self.limits, received, field).await
    }
}

/// The `/api/v0` router over `backend`, enforcing `limits` and `access`, counting into `metrics`.
pub fn router(
    backend: Arc<dyn Backend>,
    limits: Limits,
    access: Access,
    metrics: Metrics,
) -> Router {
    let state = AppState {
        backend,
        permits: Arc::new(Semaphore::new(limits.concurrent_requests)),
        limits,
        access: Arc::new(access),
        metrics,
        next_id: Arc::new(AtomicU64::new(1)),
    };
    // axum caps extracted bodies at 2 MiB by default; uploads are bounded by `max_upload`
    // (and streamed), so that cap would only refuse large adds.
    Router::new()
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

tokio::task_local! {
    /// The request's `timeout` deadline, seen by the streams it starts.
    static DEADLINE: Option<Instant>;
    /// Whether the client takes trailers (`TE: trailers`), so a stream that fails part way
    /// can end with Kubo's `X-Stream-Error` trailer rather than a broken connection.
    static TRAILERS: bool;
}

/// Whether a request's `TE` header lists `trailers`. HTTP/1.1 servers may send trailers
/// only then (hyper drops them otherwise).
fn accepts_trailers(headers: &axum::http::HeaderMap) -> bool {
    headers.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("trailers")
            })
        })
    })
}

/// Kubo's `X-Stream-Error` trailer for a stream that failed part way. A header value cannot
/// hold control characters: those become spaces.
fn error_trailer(e: &io::Error) -> axum::http::HeaderMap {
    let message: String = e
        .to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut trailers = axum::http::HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&message) {
        trailers.insert("X-Stream-Error", v);
    }
    trailers
}

/// The message Go clients know for a request past its deadline.
const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

thread_local! {
    /// The deadline of the request whose backend call runs on this blocking thread.
    static CALL_DEADLINE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// The `timeout` deadline of the request the calling backend code serves, if it set one. Work
/// that may wait long (fetching from the network) should give up by then, so the command can
/// report it in its own output as Kubo does.
pub fn call_deadline() -> Option<Instant> {
    CALL_DEADLINE.with(|d| d.get())
}

/// Runs `f` with [`call_deadline`] answering `deadline`.
fn with_deadline<T>(deadline: Option<Instant>, f: impl FnOnce() -> T) -> T {
    CALL_DEADLINE.with(|d| d.set(deadline));
    let out = f();
    CALL_DEADLINE.with(|d| d.set(None));
    out
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

/// Runs a blocking backend call off the async runtime, inside the request's log span.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    let span = tracing::Span::current();
    let deadline = DEADLINE.try_with(|d| *d).ok().flatten();
    tokio::task::spawn_blocking(move || with_deadline(deadline, || span.in_scope(f)))
        .await
        .unwrap_or_else(|e| {
            Err(RpcError {
                message: format!("internal error: {e}"),
                kind: crate::ErrorKind::Implementation,
                plain: None,
            })
        })
}

/// A `Write` that hands chunks to the response body through a bounded channel. When the
/// client goes away the channel closes and writes fail, which stops the producer; a client
/// that stops reading for `stall` or a request past its deadline fails them too.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    runtime: tokio::runtime::Handle,
    stall: Duration,
    deadline: Option<Instant>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "client went away");
        // The common case, room in the channel, needs no timer.
        let chunk = match self.tx.try_send(Ok(Bytes::copy_from_slice(buf))) {
            Ok(()) => return Ok(buf.len()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(gone()),
            Err(mpsc::error::TrySendError::Full(chunk)) => chunk,
        };
        let mut wait = self.stall;
        if let Some(d) = self.deadline {
            wait = wait.min(d.saturating_duration_since(Instant::now()));
        }
        let send = tokio::time::timeout(wait, self.tx.send(chunk));
        match self.runtime.block_on(send) {
            Ok(Ok(())) => Ok(buf.len()),
            Ok(Err(_)) => Err(gone()),
            Err(_) if self.deadline.is_some_and(|d| Instant::now() >= d) => {
                Err(io::Error::new(io::ErrorKind::TimedOut, DEADLINE_EXCEEDED))
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("client read nothing for {}s", self.stall.as_secs()),
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.tx.is_closed() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "client went away",
            ));
        }
        Ok(())
    }
}

/// Streams what `produce` writes. An error before the first byte becomes a normal error
/// response; one after it ends the body with an `X-Stream-Error` trailer when the client
/// takes trailers, else early, which clients see as a broken stream.
pub(crate) async fn stream_response(
    limits: Limits,
    json_lines: bool,
    produce: impl FnOnce(&mut dyn Write) -> Result<(), RpcError> + Send + 'static,
) -> Response {
    let (tx, mut rx) = mpsc::channel(limits.stream_buffer.max(1));
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), RpcError>>();
    let deadline = DEADLINE.try_with(|d| *d).ok().flatten();
    let runtime = tokio::runtime::Handle::current();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut w = FirstWrite {
            inner: ChannelWriter {
                tx: tx.clone(),
                runtime,
                stall: limits.stall_timeout,
                deadline,
            },
            first: Some(first_tx),
        };
        let result = with_deadline(deadline, || produce(&mut w));
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
    // A failure part way: a trailer for clients that take one, else a broken stream (the
    // only signal left once the status has gone out). The producer sends nothing after it.
    let chunks = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let body = if TRAILERS.try_with(|t| *t).unwrap_or(false) {
        use futures_util::StreamExt as _;
        Body::new(http_body_util::StreamBody::new(chunks.map(|chunk| {
            Ok::<_, io::Error>(match chunk {
                Ok(data) => http_body::Frame::data(data),
                Err(e) => http_body::Frame::trailers(error_trailer(&e)),
            })
        })))
    } else {
        Body::from_stream(chunks)
    };
    let mut resp = Response::new(body);
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

/// A writer that can be cut off: once `dead`, writes are swallowed.
struct Abandonable<'a> {
    inner: &'a mut dyn Write,
    dead: bool,
}

impl Write for Abandonable<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.dead {
            return Ok(buf.len());
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.dead {
            return Ok(());
        }
        self.inner.flush()
    }
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

    /// Sends the headers now (a subscription that may stay silent for long still answers at
    /// once, as Kubo flushes), and fails once the client has gone away.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        self.inner.flush()
    }
}

async fn dispatch(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let started = Instant::now();
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("rpc", req = id);
    async move {
        let path = request.uri().path().to_string();
        let headers = request.headers().clone();
        let (label, mut resp) = handle(&state, request).await;
        state.access.decorate(&headers, &mut resp);
        // An upload refused part way may leave body bytes unread on the connection: close it
        // rather than let the next request on it start mid-body (Kubo does the same).
        if !resp.status().is_success() && headers.contains_key(header::CONTENT_TYPE) {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Ok(v) = HeaderValue::try_from(id.to_string()) {
            resp.headers_mut().insert("X-Request-Id", v);
        }
        let status = resp.status();
        state
            .metrics
            .observe(label, status.as_u16(), started.elapsed());
        tracing::info!(
            %path,
            status = status.as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        );
        state.metrics.count_sent(label, resp)
    }
    .instrument(span)
    .await
}

/// Runs one request; returns the command label for metrics with the answer.
async fn handle(state: &AppState, request: axum::extract::Request) -> (&'static str, Response) {
    let (method, uri) = (request.method().clone(), request.uri().clone());
    // Liveness carries nothing secret, and probes should not need one.
    if uri.path() == "/health" {
        return ("health", (StatusCode::OK, "ok\n").into_response());
    }
    if let Some(denied) = state.access.authorize(uri.path(), request.headers()) {
        return ("denied", denied);
    }
    if uri.path() == "/debug/metrics/prometheus" {
        let b = state.backend.clone();
        let resp = match blocking(move || b.prometheus()).await {
            Ok(text) => (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            Err(e) => e.into_response(),
        };
        return ("metrics", resp);
    }
    let Some(cmd) = uri.path().strip_prefix("/api/v0/") else {
        return (
            "unknown",
            RpcError::request(StatusCode::NOT_FOUND, "404 page not found").into_response(),
        );
    };
    let cmd = cmd.trim_end_matches('/').to_string();
    let label = command_label(&cmd);
    if let Some(preflight) = state.access.preflight(&method, request.headers()) {
        return (label, preflight);
    }
    if method == Method::OPTIONS {
        return (
            label,
            (StatusCode::NO_CONTENT, [(header::ALLOW, "OPTIONS, POST")]).into_response(),
        );
    }
    if method != Method::POST {
        let mut resp =
            RpcError::request(StatusCode::METHOD_NOT_ALLOWED, "405 - Method Not Allowed")
                .into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
        return (label, resp);
    }
    if let Some(denied) = state.access.check_browser(&method, request.headers()) {
        return (label, denied);
    }
    let Ok(_permit) = state.permits.clone().try_acquire_owned() else {
        return (
            label,
            RpcError::request(StatusCode::TOO_MANY_REQUESTS, "429 - Too Many Requests")
                .into_response(),
        );
    };
    let req = Request::parse(uri.query());
    let timeout = match req.string(&["timeout"]).map(parse_duration).transpose() {
        Ok(t) => t,
        Err(e) => return (label, e.into_response()),
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let trailers = accepts_trailers(request.headers());
    let work = TRAILERS.scope(
        trailers,
        DEADLINE.scope(deadline, run(state, &cmd, req, request)),
    );
    let result = match timeout {
        Some(t) => tokio::time::timeout(t, work)
            .await
            .unwrap_or_else(|_| Err(RpcError::normal(DEADLINE_EXCEEDED))),
        None => work.await,
    };
    (label, result.unwrap_or_else(IntoResponse::into_response))
}

/// `cid` written in the multibase `base` names (Kubo's `cid-base` option). A CIDv0 only
/// exists in base58btc, so another base upgrades it to v1, as Kubo does.
/// The template `refs` writes each edge with: `format` (Kubo's default `<dst>`), or with
/// `edges` `<src> -> <dst>`, which Kubo refuses to combine with another format.
fn refs_format(format: Option<&str>, edges: bool) -> Result<String, RpcError> {
    match (format.unwrap_or("<dst>"), edges) {
        (f, false) => Ok(f.to_string()),
        ("<dst>", true) => Ok("<src> -> <dst>".to_string()),
        (_, true) => Err(RpcError::normal(
            "using format argument with edges is not allowed",
        )),
    }
}

/// A multibase by the name or code Kubo's `cid-base` takes.
fn multibase_named(base: &str) -> Result<multibase::Base, RpcError> {
    use multibase::Base;
    Ok(match base {
        "base16" | "f" => Base::Base16Lower,
        "base32" | "b" => Base::Base32Lower,
        "base32upper" | "B" => Base::Base32Upper,
        "base36" | "k" => Base::Base36Lower,
        "base58btc" | "z" => Base::Base58Btc,
        "base64" | "m" => Base::Base64,
        "base64pad" | "M" => Base::Base64Pad,
        "base64url" | "u" => Base::Base64Url,
        "base64urlpad" | "U" => Base::Base64UrlPad,
        other => return Err(RpcError::client(format!("unknown multibase {other:?}"))),
    })
}

fn in_base(cid: &str, base: &str) -> Result<String, RpcError> {
    use multibase::Base;
    let base = multibase_named(base)?;
    let parsed = ipfs_kit_block::parse_cid(cid).map_err(|e| RpcError::normal(e.to_string()))?;
    let cid = if parsed.version() as u64 == 0 && base != Base::Base58Btc {
        parsed
            .into_v1()
            .map_err(|e| RpcError::normal(e.to_string()))?
    } else {
        parsed
    };
    cid.to_string_of_base(base)
        .map_err(|e| RpcError::normal(e.to_string()))
}

/// A bounded label for metrics: the command when it is one we know, else `unknown`.
fn command_label(cmd: &str) -> &'static str {
    COMMANDS
        .iter()
        .chain(crate::network::COMMANDS)
        .chain(crate::network::GROUPS)
        .find(|c| **c == cmd)
        .copied()
        .unwrap_or("unknown")
}

/// Parses Kubo's `timeout` option (a Go duration: `300ms`, `1.5s`, `2m30s`).
fn parse_duration(text: &str) -> Result<Duration, RpcError> {
    ipfs_kit_ipns::parse_go_duration(text).map_err(|_| {
        RpcError::client(format!(
            "invalid timeout {text:?}: want a duration such as 30s, 500ms or 2m"
        ))
    })
}

/// Kubo's block size limit for `block/put` and `dag/put` without `allow-big-block`.
const BLOCK_LIMIT: usize = 1024 * 1024;
/// The largest block accepted even with `allow-big-block`.
const MAX_BIG_BLOCK: usize = 64 << 20;

/// Largest config accepted by `config/replace` (Kubo's are a few KiB).
const MAX_CONFIG_FILE: usize = 1 << 20;

/// The commands this server answers (for `commands`).
const COMMANDS: &[&str] = &[
    "add",
    "block/get",
    "block/put",
    "block/rm",
    "block/stat",
    "cat",
    "commands",
    "config",
    "config/replace",
    "config/show",
    "dag/export",
    "dag/get",
    "dag/import",
    "dag/put",
    "dag/resolve",
    "get",
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
    "object/data",
    "object/get",
    "object/links",
    "object/new",
    "object/patch/add-link",
    "object/patch/append-data",
    "object/patch/rm-link",
    "object/patch/set-data",
    "object/stat",
    "openapi.json",
    "name/publish",
    "name/pubsub/cancel",
    "name/pubsub/state",
    "name/pubsub/subs",
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
    "storage/migrate",
    "storage/policy",
    "storage/rebalance",
    "storage/stat",
    "storage/tiers",
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
        raw_leaves: raw_leaves(req)?,
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

/// The `raw-leaves` option. An explicit `false` beside `cid-version=1` is read as "not set"
/// (CIDv1 then implies raw leaves, as in Kubo): ipfshttpclient sends `raw-leaves=False` on
/// every add whether or not its caller asked, and honouring it would give its users CIDs that
/// no `ipfs add --cid-version=1` gives. docs/rpc.md lists this deviation.
fn raw_leaves(req: &Request) -> Result<Option<bool>, RpcError> {
    let Some(_) = req.string(&["raw-leaves"]) else {
        return Ok(None);
    };
    let raw = req.flag(&["raw-leaves"], false)?;
    let v1 = req.uint(&["cid-version"])? == Some(1);
    Ok((raw || !v1).then_some(raw))
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
                &state.limits,
                state.metrics.bytes_in(command_label(cmd)),
            );
            stream_response(state.limits, true, move |w| {
                b.add(&mut upload, &params, &mut |event| {
                    // One write per line: serde writes token by token, and each write is a
                    // chunk on the response channel.
                    let mut line = serde_json::to_vec(&event).map_err(io::Error::other)?;
                    line.push(b'\n');
                    w.write_all(&line)
                })
            })
            .await
        }
        "block/put" | "dag/put" | "dag/import" => {
            let mut upload = state.upload(cmd, request, "data").await?;
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
        "id" => match req.args.first().cloned() {
            None => json_response(&blocking(move || b.id()).await?),
            Some(peer) => json_response(
                &blocking(move || match b.network() {
                    Some(n) => n.peer_id_info(&peer),
                    None => Err(RpcError::normal(crate::network::NOT_ONLINE)),
                })
                .await?,
            ),
        },
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
        "get" => {
            let path = req.arg(0, "ipfs-path")?.to_string();
            let archive = req.flag(&["archive", "a"], false)?;
            let level = match req.uint(&["compression-level", "l"])? {
                None if req.flag(&["compress", "C"], false)? => Some(6),
                None => None,
                Some(l @ 1..=9) => Some(l as u32),
                Some(_) => {
                    return Err(RpcError::client(
                        "compression level must be between 1 and 9",
                    ))
                }
            };
            // As Kubo: compress alone gzips a file's bytes (a directory has none); with archive
            // it gzips the tar.
            let bare_file = level.is_some() && !archive;
            let mut resp = stream_response(state.limits, false, move |w| match level {
                None => b.get(&path, w),
                Some(level) => {
                    let mut gz = flate2::write::GzEncoder::new(
                        Abandonable {
                            inner: w,
                            dead: false,
                        },
                        flate2::Compression::new(level),
                    );
                    let result = if bare_file {
                        b.cat(&path, 0, None, &mut gz).map_err(|e| {
                            if e.message.contains("is a directory") {
                                RpcError::normal("file is not regular")
                            } else {
                                e
                            }
                        })
                    } else {
                        b.get(&path, &mut gz)
                    };
                    if let Err(e) = result {
                        // Dropping the encoder writes a gzip trailer; that must not turn
                        // this error into a started (and then broken) stream.
                        gz.get_mut().dead = true;
                        return Err(e);
                    }
                    gz.finish()
                        .map(|_| ())
                        .map_err(|e| RpcError::normal(format!("compress: {e}")))
                }
            })
            .await;
            if resp.status().is_success() {
                let kind = if level.is_some() {
                    "application/gzip"
                } else {
                    "application/x-tar"
                };
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            }
            resp
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
            let quiet = req.flag(&["quiet", "q"], false)?;
            require(&cids, "cid")?;
            let out = blocking(move || b.block_rm(&cids, force)).await?;
            let out = out.into_iter().filter(|(_, e)| !quiet || e.is_some());
            ndjson_response(out.map(|(c, e)| match e {
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
            req.arg(0, "ipfs-path")?;
            let paths = req.args.clone();
            let format = refs_format(req.string(&["format"]), req.flag(&["edges", "e"], false)?)?;
            let recursive = req.flag(&["recursive", "r"], false)?;
            let params = RefsParams {
                recursive,
                unique: req.flag(&["unique", "u"], false)?,
                // Kubo's default is -1: any negative depth is no limit.
                max_depth: req.int(&["max-depth"])?.and_then(|d| u64::try_from(d).ok()),
            };
            let base = req.string(&["cid-base"]).map(str::to_string);
            if let Some(b) = &base {
                // An unknown base is refused before anything is listed.
                multibase_named(b)?;
            }
            stream_response(state.limits, true, move |w| {
                b.refs(&paths, &params, &mut |item| {
                    let value = match item {
                        Ok(edge) => {
                            let cid = |c: &str| match &base {
                                Some(b) => in_base(c, b).unwrap_or_else(|_| c.to_string()),
                                None => c.to_string(),
                            };
                            let line = format
                                .replace("<src>", &cid(&edge.src))
                                .replace("<dst>", &cid(&edge.dst))
                                .replace("<linkname>", &edge.name);
                            json!({ "Ref": line, "Err": "" })
                        }
                        Err(e) => json!({ "Ref": "", "Err": e }),
                    };
                    let mut line = serde_json::to_vec(&value).map_err(io::Error::other)?;
                    line.push(b'\n');
                    w.write_all(&line)
                })
            })
            .await
        }
        "resolve" => {
            // A path may end at a value inside a dag-cbor node: Kubo answers the node's path
            // plus the rest.
            let path = req.arg(0, "name")?.to_string();
            let (cid, rest) = blocking(move || b.dag_resolve(&path)).await?;
            let cid = match req.string(&["cid-base"]) {
                Some(base) => in_base(&cid, base)?,
                None => cid,
            };
            let rest = if rest.is_empty() {
                rest
            } else {
                format!("/{rest}")
            };
            json_response(&json!({ "Path": format!("/ipfs/{cid}{rest}") }))
        }
        "dag/resolve" => {
            let path = req.arg(0, "ref")?.to_string();
            let (cid, rest) = blocking(move || b.dag_resolve(&path)).await?;
            json_response(&json!({ "Cid": { "/": cid }, "RemPath": rest }))
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
            let k = key.clone();
            let value = match req.args.get(1) {
                None => blocking(move || b.config_get(&k)).await?,
                Some(raw) => {
                    // Kubo's rules: `bool` parses the value as a Go bool, `json` as JSON, and
                    // otherwise it is stored as a string.
                    let value = if req.flag(&["bool"], false)? {
                        let parsed = crate::request::parse_go_bool(raw).ok_or_else(|| {
                            RpcError::normal(format!(
                                "failed to set config value: {raw:?} is not a boolean"
                            ))
                        })?;
                        serde_json::Value::Bool(parsed)
                    } else if req.flag(&["json"], false)? {
                        serde_json::from_str(raw).map_err(|e| {
                            RpcError::normal(format!("failed to unmarshal json. {e}"))
                        })?
                    } else {
                        serde_json::Value::String(raw.clone())
                    };
                    blocking(move || b.config_set(&k, value)).await?
                }
            };
            json_response(&json!({ "Key": key, "Value": value }))
        }
        "config/replace" => {
            let mut upload = state.upload(cmd, request, "file").await?;
            blocking(move || {
                let data = upload.first_file(MAX_CONFIG_FILE, "config")?;
                let config = serde_json::from_slice(&data)
                    .map_err(|e| RpcError::normal(format!("failed to decode config file: {e}")))?;
                b.config_replace(config)
            })
            .await?;
            StatusCode::OK.into_response()
        }
        "object/stat" | "object/get" | "object/data" | "object/links" => {
            let path = req.arg(0, "key")?.to_string();
            let node = blocking(move || b.object(&path)).await?;
            let links = || -> Vec<serde_json::Value> {
                node.links
                    .iter()
                    .map(|(n, c, s)| json!({ "Name": n, "Hash": c, "Size": s }))
                    .collect()
            };
            match cmd {
                "object/data" => {
                    ([(header::CONTENT_TYPE, "text/plain")], node.data).into_response()
                }
                "object/links" => json_response(&json!({ "Hash": node.cid, "Links": links() })),
                "object/get" => {
                    use base64::Engine as _;
                    let data = match req.string(&["data-encoding"]).unwrap_or("text") {
                        "base64" => base64::engine::general_purpose::STANDARD.encode(&node.data),
                        "text" => String::from_utf8_lossy(&node.data).into_owned(),
                        other => {
                            return Err(RpcError::client(format!(
                                "unknown data encoding {other:?} (text or base64)"
                            )))
                        }
                    };
                    json_response(&json!({ "Links": links(), "Data": data }))
                }
                _ => {
                    let links_size = node.block_size - node.data.len() as u64;
                    let cumulative = node.block_size + node.links.iter().map(|l| l.2).sum::<u64>();
                    json_response(&json!({
                        "Hash": node.cid,
                        "NumLinks": node.links.len(),
                        "BlockSize": node.block_size,
                        "LinksSize": links_size,
                        "DataSize": node.data.len(),
                        "CumulativeSize": cumulative,
                    }))
                }
            }
        }
        "object/new" | "object/patch/add-link" | "object/patch/rm-link" => {
            let args = req.args.clone();
            let arg = |i: usize, name: &str| {
                args.get(i).cloned().ok_or_else(|| {
                    RpcError::request(
                        StatusCode::BAD_REQUEST,
                        format!("argument \"{name}\" is required"),
                    )
                })
            };
            let (root, edit) = match cmd {
                "object/new" => (None, crate::ObjectEdit::New(args.first().cloned())),
                "object/patch/add-link" => (
                    Some(arg(0, "root")?),
                    crate::ObjectEdit::AddLink(arg(1, "name")?, arg(2, "ref")?),
                ),
                _ => (
                    Some(arg(0, "root")?),
                    crate::ObjectEdit::RmLink(arg(1, "name")?),
                ),
            };
            let hash = blocking(move || b.object_edit(root.as_deref(), edit)).await?;
            json_response(&json!({ "Hash": hash, "Links": null }))
        }
        "object/patch/set-data" | "object/patch/append-data" => {
            let root = req.arg(0, "root")?.to_string();
            let mut upload = state.upload(cmd, request, "data").await?;
            let append = cmd.ends_with("append-data");
            let hash = blocking(move || {
                let data = upload.first_file(BLOCK_LIMIT, "data")?;
                let edit = if append {
                    crate::ObjectEdit::AppendData(data)
                } else {
                    crate::ObjectEdit::SetData(data)
                };
                b.object_edit(Some(&root), edit)
            })
            .await?;
            json_response(&json!({ "Hash": hash, "Links": null }))
        }
        "openapi.json" => (
            [(header::CONTENT_TYPE, "application/json")],
            include_str!("openapi.json"),
        )
            .into_response(),
        "storage/tiers" => json_response(&blocking(move || b.storage_tiers()).await?),
        "storage/stat" => {
            let path = req.arg(0, "cid")?.to_string();
            let blocks = blocking(move || b.storage_stat(&path)).await?;
            json_response(&json!({ "Blocks": blocks }))
        }
        "storage/migrate" if req.flag(&["cancel"], false)? => {
            let path = req.arg(0, "cid")?.to_string();
            let cancelled = blocking(move || b.storage_migrate_cancel(&path)).await?;
            json_response(&json!({ "Cancelled": cancelled }))
        }
        "storage/migrate" => {
            let path = req.arg(0, "cid")?.to_string();
            let tier = req
                .string(&["tier"])
                .ok_or_else(|| {
                    RpcError::request(StatusCode::BAD_REQUEST, "option \"tier\" is required")
                })?
                .to_string();
            let recursive = req.flag(&["recursive", "r"], true)?;
            json_response(&blocking(move || b.storage_migrate(&path, &tier, recursive)).await?)
        }
        "storage/rebalance" => json_response(&blocking(move || b.storage_rebalance()).await?),
        "storage/policy" => {
            // With KEY and VALUE, sets that tiering setting first (the value as JSON when it
            // parses, else as a string).
            let set = match req.args.first() {
                Some(key) => {
                    let value = req.arg(1, "value")?;
                    let value = serde_json::from_str(value)
                        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
                    Some((key.clone(), value))
                }
                None => None,
            };
            json_response(
                &blocking(move || {
                    b.storage_policy(set.as_ref().map(|(k, v)| (k.as_str(), v.clone())))
                })
                .await?,
            )
        }
        c if c.starts_with("storage/") || c.starts_with("cluster/") => {
            return Err(RpcError {
                message: format!("{c} is reserved for ipfs-kit's own commands and is not one yet"),
                kind: crate::ErrorKind::Implementation,
                plain: Some(StatusCode::NOT_IMPLEMENTED),
            })
        }
        c if crate::network::is_network(c) => {
            let upload = if c == "pubsub/pub" {
                Some(state.upload(cmd, request, "data").await?)
            } else if matches!(c, "routing/put" | "dht/put") {
                Some(state.upload(cmd, request, "value-file").await?)
            } else {
                None
            };
            crate::network::run(b, state.limits, c, req, upload).await?
        }
        "commands" => json_response(&json!({
            "Name": "ipfs",
            "Subcommands": COMMANDS.iter().chain(crate::network::COMMANDS).map(|c| json!({ "Name": c, "Subcommands": [], "Options": [] })).collect::<Vec<_>>(),
            "Options": [],
        })),
        c if c.starts_with("files/") || c.starts_with("key/") => {
            let received = state.metrics.bytes_in(command_label(c));
            if c.starts_with("files/") {
                crate::files::run(b, state.limits, received, c, req, request).await?
            } else {
                crate::keys::run(b, state.limits, received, c, req, request).await?
            }
        }
        c if c.starts_with("name/") => crate::name::run(b, c, req).await?,
        _ => {
            return Err(RpcError::request(
                StatusCode::NOT_FOUND,
                "404 page not found",
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_document_is_valid_json_naming_what_is_served() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("openapi.json")).expect("openapi.json parses");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        for p in [
            "/health",
            "/debug/metrics/prometheus",
            "/api/v0/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        // Every extension option it documents for add is one the server reads.
        let server = include_str!("server.rs");
        for param in doc["paths"]["/api/v0/add"]["post"]["parameters"]
            .as_array()
            .expect("params")
        {
            let name = param["name"].as_str().expect("name");
            assert!(server.contains(&format!("\"{name}\"")), "{name}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5000ms").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "5", "s", "5x", "1..2s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
