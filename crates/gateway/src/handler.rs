//! Request handling: method and concurrency checks on the async side; then the response,
//! decided right there when every block it needs is in the backend's memory (an `/ipfs/` path,
//! within a small budget), else on the blocking pool; then the body (whole, or streamed
//! through a bounded channel).

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::{Bytes, BytesMut};
use ipfs_kit_block::{codec, ipld, Cid, HashAlg};
use ipfs_kit_unixfs::{reader, FileReader, Kind};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::car::{self, CarParams};
use crate::content_type::{self, SNIFF_LEN};
use crate::hostname::{self, HostMode};
use crate::listing;
use crate::parse::{self, Format, RangeError};
use crate::redirects::{self, Redirects};
use crate::resolve::{self, Blocks, Budget, ContentPath, HttpError, Resolved};
use crate::{Backend, Config};

/// `Cache-Control` of every response for an immutable `/ipfs/` path (the spec's value).
const IMMUTABLE: &str = "public, max-age=29030400, immutable";
/// `Cache-Control` of a generated listing under `/ipfs/`: its HTML changes between versions of
/// this gateway, so it is not cached as immutable.
const LISTING_CACHE: &str = "public, max-age=604800";
/// Streamed bodies are sent in pieces of about this size.
const CHUNK: usize = 64 << 10;

#[derive(Clone)]
struct AppState {
    backend: Arc<dyn Backend>,
    config: Arc<Config>,
    permits: Arc<Semaphore>,
}

/// The gateway's router over `backend`: `/ipfs/`, `/ipns/` and `/routing/v1/ipns/`.
pub fn router(backend: Arc<dyn Backend>, config: Config) -> Router {
    let state = AppState {
        backend,
        permits: Arc::new(Semaphore::new(config.concurrent_requests.max(1))),
        config: Arc::new(config),
    };
    Router::new().fallback(serve).with_state(state)
}

const ALLOW: &str = "GET, HEAD, OPTIONS";

fn text_response(status: StatusCode, message: &str) -> Response {
    let mut resp = (status, format!("{message}\n")).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = text_response(self.status, &self.message);
        if matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::GATEWAY_TIMEOUT
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

async fn serve(State(st): State<AppState>, request: axum::extract::Request) -> Response {
    if crate::routing::is_routing(request.uri().path()) {
        return routing_request(st, request).await;
    }
    let method = request.method().clone();
    if method == Method::OPTIONS {
        return (StatusCode::OK, [(header::ALLOW, ALLOW)]).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        let mut resp = text_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} not allowed: read only access"),
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
        return resp;
    }
    let Ok(permit) = st.permits.clone().try_acquire_owned() else {
        return HttpError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response();
    };
    let head = method == Method::HEAD;
    let (parts, _) = request.into_parts();
    let route = match route(&st.config, &parts.uri, &parts.headers) {
        Ok(Routed::Serve(route)) => route,
        Ok(Routed::Redirect(location)) => return redirect_response(&location),
        Err(e) => return e.into_response(),
    };
    let location = route.location.clone();
    // Immutable content whose blocks are all in memory is answered right here: no I/O, no
    // hashing, a few microseconds, so not worth two thread hand-offs to the blocking pool.
    let mut prepared = None;
    if route.path.starts_with("/ipfs/") {
        let budget = Budget::new();
        let attempt = prepare(&st, &parts.uri, &parts.headers, head, &route, Some(&budget));
        if !budget.missed() {
            prepared = Some(attempt);
        }
    }
    let prepared = match prepared {
        Some(p) => p,
        None => {
            let st2 = st.clone();
            let blocking = tokio::task::spawn_blocking(move || {
                prepare(&st2, &parts.uri, &parts.headers, head, &route, None)
            });
            match blocking.await {
                Ok(p) => p,
                Err(e) => {
                    return HttpError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("internal error: {e}"),
                    )
                    .into_response()
                }
            }
        }
    };
    let reply = match prepared {
        Ok(reply) => reply,
        Err(e) => return with_location(e.into_response(), location),
    };
    let body = match reply.body {
        _ if head => Body::empty(),
        ReplyBody::Empty => Body::empty(),
        ReplyBody::Full(b) => Body::from(b),
        ReplyBody::Parts(parts) => Parts::body(parts),
        ReplyBody::Stream(produce) => stream(&st.config, permit, produce),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = reply.status;
    *resp.headers_mut() = reply.headers;
    with_location(resp, location)
}

/// A bare `301 Moved Permanently` to `location`.
fn redirect_response(location: &str) -> Response {
    let mut h = HeaderMap::new();
    set(&mut h, header::LOCATION, location);
    (StatusCode::MOVED_PERMANENTLY, h).into_response()
}

/// Kubo's move of a path request on a subdomain gateway's host: the answer keeps its body (for
/// clients that do not follow redirects, such as curl) but carries `Location`, and a 200
/// becomes a 301.
fn with_location(mut resp: Response, location: Option<String>) -> Response {
    let Some(location) = location else {
        return resp;
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
        if resp.status() == StatusCode::OK {
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
        }
    }
    resp
}

/// What the host and path of a request ask the gateway to serve.
#[derive(Clone, Debug)]
struct Route {
    /// The (still-encoded) URL path the path gateway serves: the request's own, or for a
    /// subdomain request `/{ns}/{root}` + the request's path.
    path: String,
    /// For a subdomain request, the gateway's host (`localhost:8080`): the content root is the
    /// origin, so `_redirects` applies and links to other CIDs go through this host.
    subdomain: Option<String>,
    /// For a path request on a subdomain gateway's host: where the content lives now.
    location: Option<String>,
}

enum Routed {
    Serve(Route),
    /// Answered with a bare 301 (canonical subdomain labels, the `?uri=` protocol router).
    Redirect(String),
}

/// The request's host: `X-Forwarded-Host` (set by a reverse proxy), else `Host`, else the
/// URI's authority.
fn request_host(uri: &Uri, headers: &HeaderMap) -> String {
    let from = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    from(hdr("x-forwarded-host"))
        .or_else(|| from(header::HOST))
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// Decides, from the host and path, what a request is (subdomain gateway spec).
fn route(config: &Config, uri: &Uri, headers: &HeaderMap) -> Result<Routed, HttpError> {
    let path = uri.path();
    let plain = Route {
        path: path.to_string(),
        subdomain: None,
        location: None,
    };
    // Delegated routing answers on every host (Kubo serves it beside the gateway handler).
    if path.starts_with("/routing/v1/") {
        return Ok(Routed::Serve(plain));
    }
    let https = headers
        .get(hdr("x-forwarded-proto"))
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let too_long = |e: hostname::TooLong| HttpError::bad_request(e.to_string());
    match hostname::classify(&request_host(uri, headers), &config.subdomain_hosts) {
        HostMode::Path => protocol_router(uri).map(|r| r.unwrap_or(Routed::Serve(plain))),
        HostMode::GatewayHost { gateway } => {
            if let Some(r) = protocol_router(uri)? {
                return Ok(r);
            }
            let (ns, rest) = match path.strip_prefix("/ipfs/") {
                Some(r) => ("ipfs", r),
                None => match path.strip_prefix("/ipns/") {
                    Some(r) => ("ipns", r),
                    None => return Ok(Routed::Serve(plain)),
                },
            };
            let (root, below) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let root = percent_encoding::percent_decode_str(root).decode_utf8_lossy();
            // Only the root is checked before the move: an /ipfs/ root that is no CID stays a
            // path request and gets the path gateway's 400.
            if ns == "ipfs" && resolve::root_cid(&root).is_err() {
                return Ok(Routed::Serve(plain));
            }
            let location = hostname::subdomain_url(&gateway, ns, &root, below, uri.query(), https)
                .map_err(too_long)?;
            Ok(Routed::Serve(Route { location, ..plain }))
        }
        HostMode::Subdomain { gateway, ns, root } => {
            if ns != "ipfs" && ns != "ipns" {
                return Err(HttpError::not_found("404 page not found"));
            }
            if let Ok(cid) = ipfs_kit_block::parse_cid(&root) {
                // Redirect to the one label a CID gets, so it always gets the same origin.
                let label = hostname::dns_label(&root, &cid).map_err(too_long)?;
                let wrong_codec = ns == "ipns" && cid.codec() != 0x72;
                if label != root || wrong_codec {
                    let to =
                        hostname::subdomain_url(&gateway, &ns, &label, path, uri.query(), https)
                            .map_err(too_long)?;
                    if let Some(to) = to {
                        return Ok(Routed::Redirect(to));
                    }
                }
            }
            Ok(Routed::Serve(Route {
                path: format!("/{ns}/{root}{path}"),
                subdomain: Some(gateway),
                location: None,
            }))
        }
    }
}

/// Escaped in a path built from an `ipfs://` / `ipns://` URI: what a URL path cannot hold.
const URI_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The protocol handler router: `/ipfs/?uri=ipfs://{cid}/{path}` (what a browser's
/// `registerProtocolHandler` sends) redirects to `/ipfs/{cid}/{path}`.
fn protocol_router(uri: &Uri) -> Result<Option<Routed>, HttpError> {
    if !matches!(uri.path(), "/ipfs/" | "/ipns/" | "/ipfs" | "/ipns") {
        return Ok(None);
    }
    let Some(target) = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "uri")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(None);
    };
    let (scheme, rest) = target.split_once("://").ok_or_else(|| {
        HttpError::bad_request(format!("failed to parse uri query parameter {target:?}"))
    })?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "ipfs" && scheme != "ipns" {
        return Err(HttpError::bad_request(format!(
            "uri query parameter scheme must be ipfs or ipns: {target:?}"
        )));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') {
        return Err(HttpError::bad_request(format!(
            "uri query parameter has no content root: {target:?}"
        )));
    }
    let mut location = format!(
        "/{scheme}/{}",
        percent_encoding::utf8_percent_encode(rest, URI_PATH)
    );
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        location.push('?');
        location.extend(percent_encoding::utf8_percent_encode(q, URI_PATH));
    }
    Ok(Some(Routed::Redirect(location)))
}

/// Where a body's bytes go: a buffer, or the channel of a streamed response.
trait Out {
    fn put(&mut self, b: Bytes) -> io::Result<()>;
}

impl Out for BytesMut {
    fn put(&mut self, b: Bytes) -> io::Result<()> {
        self.extend_from_slice(&b);
        Ok(())
    }
}

/// A body gathered as the blocks' own buffers: no copy into one response buffer.
impl Out for Vec<Bytes> {
    fn put(&mut self, b: Bytes) -> io::Result<()> {
        if !b.is_empty() {
            self.push(b);
        }
        Ok(())
    }
}

/// A whole body held as several buffers (a file's leaves), sent one frame each with an exact
/// length, so hyper writes them with one `writev` instead of copying them together first.
struct Parts {
    parts: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl Parts {
    fn body(parts: Vec<Bytes>) -> Body {
        if parts.len() <= 1 {
            return parts
                .into_iter()
                .next()
                .map_or_else(Body::empty, Body::from);
        }
        let remaining = parts.iter().map(|b| b.len() as u64).sum();
        Body::new(Parts {
            parts: parts.into(),
            remaining,
        })
    }
}

impl http_body::Body for Parts {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let next = self.parts.pop_front();
        if let Some(b) = &next {
            self.remaining -= b.len() as u64;
        }
        std::task::Poll::Ready(next.map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// The sending end of a streamed body. Small writes (CAR sections) are gathered into chunks;
/// file leaves go out as they are, without a copy.
struct Sink {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl Sink {
    fn send(&mut self, b: Bytes) -> io::Result<()> {
        // A closed channel means the client went away: the error stops the producer.
        self.tx
            .blocking_send(Ok(b))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.send(b)
    }
}

impl Out for Sink {
    fn put(&mut self, b: Bytes) -> io::Result<()> {
        self.flush_buf()?;
        if b.is_empty() {
            return Ok(());
        }
        self.send(b)
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()
    }
}

type Producer = Box<dyn FnOnce(&mut Sink) -> Result<(), HttpError> + Send>;

/// Runs `produce` on the blocking pool, its output going to the body through a channel of
/// `stream_buffer` chunks. The request's permit is held until the producer is done. An error
/// after the headers went out ends the body early, which clients see as a broken transfer
/// (the spec's behaviour for a block found missing mid-stream).
fn stream(config: &Config, permit: OwnedSemaphorePermit, produce: Producer) -> Body {
    let (tx, mut rx) = mpsc::channel(config.stream_buffer.max(1));
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut sink = Sink {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let result = produce(&mut sink).and_then(|()| {
            sink.flush_buf()
                .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        });
        if let Err(e) = result {
            tracing::debug!("gateway stream ended early: {}", e.message);
            let _ = tx.blocking_send(Err(io::Error::other(e.message)));
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

enum ReplyBody {
    Empty,
    Full(Bytes),
    /// A whole body in pieces (see [`Parts`]).
    Parts(Vec<Bytes>),
    Stream(Producer),
}

/// A response decided on the blocking pool; the body may still be to produce.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: ReplyBody,
}

/// The request, as every response builder needs it.
struct Req<'a> {
    st: &'a AppState,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    query: Vec<(String, String)>,
    head: bool,
    path: ContentPath,
    memo: resolve::Memo,
    /// Set when this is the attempt to answer from memory alone.
    budget: Option<&'a Budget>,
    /// The gateway host of a subdomain request (origin-isolated), else `None`.
    subdomain: Option<String>,
}

impl Req<'_> {
    fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn blocks(&self) -> Blocks<'_> {
        Blocks(&*self.st.backend, Some(&self.memo), self.budget)
    }

    /// `Cache-Control` for content: only `/ipfs/` is immutable; an `/ipns/` TTL is unknown, so
    /// nothing is promised (the spec's advice).
    fn cache_control(&self) -> Option<&'static str> {
        (!self.path.mutable).then_some(IMMUTABLE)
    }
}

fn set(h: &mut HeaderMap, name: HeaderName, value: &str) {
    // Values built from request text may hold bytes a header cannot carry; such a header is
    // left out rather than failing the response.
    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
        h.insert(name, v);
    }
}

fn hdr(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

/// Decides the response to a request. With a `budget`, blocks come from memory only (see
/// [`Budget`]); the caller throws the answer away if the budget says it missed.
fn prepare(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    head: bool,
    route: &Route,
    budget: Option<&Budget>,
) -> Result<Reply, HttpError> {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .take(64)
            .collect();
    let path = ContentPath::parse(&route.path, st.config.max_path_segments)?;
    let req = Req {
        st,
        uri,
        headers,
        query,
        head,
        path,
        memo: resolve::Memo::default(),
        budget,
        subdomain: route.subdomain.clone(),
    };
    // A service worker registered at /ipfs/{cid} (no slash) would control every other CID.
    if req.header(hdr("service-worker")) == Some("script")
        && req.path.segments.is_empty()
        && !req.path.trailing_slash
    {
        return Err(HttpError::bad_request(
            "navigator.serviceWorker: registration is not allowed for this scope",
        ));
    }
    let (format, accept_params) = match req.query("format") {
        Some(name) => {
            let f = Format::from_name(name)
                .ok_or_else(|| HttpError::bad_request(format!("unsupported format {name:?}")))?;
            // Accept's parameters (CAR version, order, dups) count when it names the same type.
            let params = req
                .header(header::ACCEPT)
                .and_then(parse::parse_accept)
                .filter(|(af, _)| *af == f)
                .map(|(_, p)| p)
                .unwrap_or_default();
            (Some(f), params)
        }
        None => match req.header(header::ACCEPT).and_then(parse::parse_accept) {
            Some((f, p)) => (Some(f), p),
            None => (None, Vec::new()),
        },
    };
    let mut h = HeaderMap::new();
    set(&mut h, hdr("x-ipfs-path"), &req.path.display());
    if let Some(f) = format {
        if req.query("format") != Some(f.name()) {
            // Negotiated by Accept: name the URL that caches can key this variant on.
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &req.query {
                q.append_pair(k, v);
            }
            q.append_pair("format", f.name());
            set(
                &mut h,
                header::CONTENT_LOCATION,
                &format!("{}?{}", uri.path(), q.finish()),
            );
        }
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    if format == Some(Format::IpnsRecord) {
        return ipns_record(&req, h);
    }
    // `base` segments lead from the root CID to the content root (an IPNS value's path); the
    // request's own segments follow.
    let (root, segments, base) = if req.path.mutable {
        let target = st.backend.resolve_ipns(&req.path.root)?;
        let target = ContentPath::parse(&target, st.config.max_path_segments).map_err(|e| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{} resolved to a bad path: {}", req.path.root, e.message),
            )
        })?;
        if target.mutable {
            return Err(HttpError::new(
                StatusCode::NOT_IMPLEMENTED,
                "recursive /ipns/ resolution is not supported",
            ));
        }
        let base = target.segments.len();
        let mut segs = target.segments;
        segs.extend(req.path.segments.iter().cloned());
        (resolve::root_cid(&target.root)?, segs, base)
    } else {
        (
            resolve::root_cid(&req.path.root)?,
            req.path.segments.clone(),
            0,
        )
    };
    let only_if_cached = req
        .header(header::CACHE_CONTROL)
        .is_some_and(|v| v.to_ascii_lowercase().contains("only-if-cached"));
    if only_if_cached && !req.blocks().has(&root)? {
        return Err(HttpError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("{root} is not in this gateway's store"),
        ));
    }
    let resolved = match resolve::resolve(req.blocks(), root, &segments) {
        Ok(r) => r,
        // A missing path on an origin-isolated request: the root's _redirects may know it.
        Err(e)
            if e.status == StatusCode::NOT_FOUND && req.subdomain.is_some() && format.is_none() =>
        {
            return redirects_reply(&req, root, &segments[..base], &segments[base..], h, e);
        }
        Err(e) => return Err(e),
    };
    content_headers(&req, &resolved, &mut h);
    match format {
        None => default_reply(&req, &resolved, h),
        Some(Format::Car) => car_reply(&req, &resolved, &accept_params, h),
        Some(Format::Raw) => raw_reply(&req, &resolved, h),
        Some(Format::Tar) => Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            "tar responses are not implemented: use ?format=car",
        )),
        // IpnsRecord was answered before resolution; the rest are IPLD codecs.
        Some(f) => codec_reply(&req, &resolved, Some(f), h),
    }
}

/// `X-Ipfs-Roots` and `Cache-Control` of a resolved path.
fn content_headers(req: &Req<'_>, resolved: &Resolved, h: &mut HeaderMap) {
    let roots: Vec<String> = resolved.roots.iter().map(Cid::to_string).collect();
    set(h, hdr("x-ipfs-roots"), &roots.join(","));
    if let Some(cc) = req.cache_control() {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
    }
}

/// A `_redirects` failure: the spec's 500.
fn redirects_error(message: impl std::fmt::Display) -> HttpError {
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("trouble processing {}: {message}", redirects::FILE_NAME),
    )
}

/// A `_redirects` file that is not valid: the spec's 500, in Kubo's words.
fn unparsable(e: redirects::RedirectsError) -> HttpError {
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("could not parse {}: {e}", redirects::FILE_NAME),
    )
}

/// `missing` (a 404 for `rel`, the path below the content root at `base`) answered through the
/// content root's `_redirects` file, if it has one and a rule matches: a redirect, a rewrite
/// (200: the target served in place), or an error page (404, 410, 451: the target served with
/// that status). Anything else leaves the 404 as it was.
fn redirects_reply(
    req: &Req<'_>,
    root: Cid,
    base: &[String],
    rel: &[String],
    h: HeaderMap,
    missing: HttpError,
) -> Result<Reply, HttpError> {
    let Ok(content_root) = resolve::resolve(req.blocks(), root, base) else {
        return Err(missing);
    };
    let dir = content_root.terminal;
    if dir.codec() != codec::DAG_PB {
        return Err(missing);
    }
    let Ok(Some(file)) = reader::lookup(&req.blocks(), &dir, redirects::FILE_NAME) else {
        return Err(missing);
    };
    let stat = reader::stat(&req.blocks(), &file).map_err(redirects_error)?;
    if stat.kind != Kind::File {
        return Err(redirects_error("it is not a file"));
    }
    if stat.filesize > redirects::MAX_FILE_SIZE as u64 {
        return Err(unparsable(redirects::RedirectsError::TooLarge));
    }
    let mut text = BytesMut::with_capacity(stat.filesize as usize);
    Content::File(file)
        .write(req.blocks(), 0, stat.filesize, &mut text)
        .map_err(|e| redirects_error(e.message))?;
    let rules = Redirects::parse(&text).map_err(unparsable)?;
    let rel_refs: Vec<&str> = rel.iter().map(String::as_str).collect();
    let Some(hit) = rules.find(&rel_refs) else {
        return Err(missing);
    };
    let mut h = h;
    if (301..=308).contains(&hit.status) {
        set(&mut h, header::LOCATION, &hit.location(req.uri.query()));
        return Ok(Reply {
            status: StatusCode::from_u16(hit.status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
            headers: h,
            body: ReplyBody::Empty,
        });
    }
    let Some(target) = hit.path() else {
        return Err(redirects_error(format!(
            "status {} needs a path, not the URL {}",
            hit.status, hit.to
        )));
    };
    let target_segments =
        resolve::decode_segments(target, target, req.st.config.max_path_segments)?;
    let mut segments = base.to_vec();
    segments.extend(target_segments.iter().cloned());
    let page = hit.status != 200;
    let resolved = match resolve::resolve(req.blocks(), root, &segments) {
        Ok(r) => r,
        Err(e) if page => return Err(redirects_error(e.message)),
        Err(e) => return Err(e),
    };
    // The target is served as if it had been asked for (its name gives the content type). An
    // error page ignores the request's conditions and ranges.
    let mut headers = req.headers.clone();
    if page {
        headers.remove(header::RANGE);
        headers.remove(header::IF_NONE_MATCH);
    }
    let rewritten = Req {
        st: req.st,
        uri: req.uri,
        headers: &headers,
        query: req.query.clone(),
        head: req.head,
        path: ContentPath {
            mutable: req.path.mutable,
            root: req.path.root.clone(),
            segments: target_segments,
            // A rewritten directory is served, not redirected to a slash form of a URL that
            // does not exist.
            trailing_slash: true,
        },
        memo: resolve::Memo::default(),
        budget: req.budget,
        subdomain: req.subdomain.clone(),
    };
    content_headers(&rewritten, &resolved, &mut h);
    if !page {
        return default_reply(&rewritten, &resolved, h);
    }
    let t = resolved.terminal;
    let stat = reader::stat(&rewritten.blocks(), &t).map_err(redirects_error)?;
    if stat.kind != Kind::File {
        return Err(redirects_error(format!(
            "the {} page {target} is not a file",
            hit.status
        )));
    }
    let mut reply = file_reply(&rewritten, t, stat.filesize, Some("text/html"), h)?;
    reply.status = StatusCode::from_u16(hit.status).unwrap_or(StatusCode::NOT_FOUND);
    Ok(reply)
}

fn not_modified(req: &Req<'_>, etag: &str, h: &HeaderMap) -> Option<Reply> {
    let inm = req.header(header::IF_NONE_MATCH)?;
    parse::etag_matches(inm, etag).then(|| Reply {
        status: StatusCode::NOT_MODIFIED,
        headers: h.clone(),
        body: ReplyBody::Empty,
    })
}

/// `Content-Disposition` from `?filename=` and `?download=true` (the spec's rules, with the
/// RFC 8187 form for non-ASCII names), or `default` when neither asks for one.
fn disposition(req: &Req<'_>, default: Option<(&str, String)>) -> Option<String> {
    let download = req.query("download") == Some("true");
    let (kind, name) = match (req.query("filename"), default) {
        (Some(f), _) => (
            if download { "attachment" } else { "inline" },
            f.to_string(),
        ),
        (None, Some((kind, name))) => (if download { "attachment" } else { kind }, name),
        (None, None) if download => ("attachment", last_name(req)),
        (None, None) => return None,
    };
    if name.is_empty() {
        return Some(kind.to_string());
    }
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let utf8: String =
        percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC).collect();
    Some(format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{utf8}"
    ))
}

/// The name a download is saved under: the last path segment, else the root.
fn last_name(req: &Req<'_>) -> String {
    req.path
        .segments
        .last()
        .cloned()
        .unwrap_or_else(|| req.path.root.clone())
}

fn etag_digest(parts: &[&str]) -> String {
    let joined = parts.join("\0");
    let d = HashAlg::Sha2_256.digest(joined.as_bytes());
    d.digest()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a response body: one block in memory, or a UnixFS file read from the store.
#[derive(Clone)]
enum Content {
    Block(Bytes),
    File(Cid),
}

impl Content {
    /// Writes bytes `start..end` to `out`.
    fn write(
        &self,
        blocks: Blocks<'_>,
        start: u64,
        end: u64,
        out: &mut dyn Out,
    ) -> Result<(), HttpError> {
        let io = |e: io::Error| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        match self {
            Content::Block(b) => {
                let (s, e) = (start as usize, (end as usize).min(b.len()));
                out.put(b.slice(s.min(e)..e)).map_err(io)
            }
            Content::File(cid) => {
                for chunk in FileReader::new(&blocks, cid, start, Some(end - start)) {
                    out.put(chunk?).map_err(io)?;
                }
                Ok(())
            }
        }
    }
}

/// One piece of a body: bytes `start..end` of the content, or literal bytes (multipart headers).
type Part = (u64, u64, Option<Bytes>);

/// A body of `size` bytes of `content`, honouring `Range` (one range: 206 with
/// `Content-Range`; several: 206 `multipart/byteranges`; none satisfiable: 416). Bodies up to
/// the buffer limit are read here; larger ones are streamed.
fn body_reply(
    req: &Req<'_>,
    content: Content,
    size: u64,
    content_type: &str,
    mut h: HeaderMap,
) -> Result<Reply, HttpError> {
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let ranges = match req.header(header::RANGE) {
        Some(r) if !req.head => match parse::parse_range(r, req.st.config.max_ranges) {
            Ok(specs) => match parse::satisfiable(&specs, size) {
                Some(rs) => Some(rs),
                None => {
                    set(&mut h, header::CONTENT_RANGE, &format!("bytes */{size}"));
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    let msg = format!("range {r:?} is outside the {size} bytes of the content\n");
                    return Ok(Reply {
                        status: StatusCode::RANGE_NOT_SATISFIABLE,
                        headers: h,
                        body: ReplyBody::Full(Bytes::from(msg)),
                    });
                }
            },
            Err(e @ RangeError::Malformed) => {
                return Err(HttpError::bad_request(format!(
                    "invalid range request: {e}"
                )))
            }
            // RFC 9110 lets a server ignore a Range it will not serve; the whole body is fine.
            Err(RangeError::TooMany(_)) => None,
        },
        _ => None,
    };
    let blocks_arc = req.st.backend.clone();
    let limit = req.st.config.buffer_limit;
    let (status, length, parts): (StatusCode, u64, Vec<Part>) = match ranges {
        None => (StatusCode::OK, size, vec![(0, size, None)]),
        Some(rs) if rs.len() == 1 => {
            let (s, e) = rs[0];
            set(
                &mut h,
                header::CONTENT_RANGE,
                &format!("bytes {s}-{}/{size}", e - 1),
            );
            (StatusCode::PARTIAL_CONTENT, e - s, vec![(s, e, None)])
        }
        Some(rs) => {
            let boundary = format!(
                "ipfs-kit-{}",
                etag_digest(&[&format!("{rs:?}"), content_type])
            );
            let mut parts = Vec::new();
            let mut total = 0u64;
            for (s, e) in rs {
                let part_head = format!(
                    "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {s}-{}/{size}\r\n\r\n",
                    e - 1
                );
                total += part_head.len() as u64 + (e - s);
                parts.push((0, 0, Some(Bytes::from(part_head))));
                parts.push((s, e, None));
            }
            let tail = format!("\r\n--{boundary}--\r\n");
            total += tail.len() as u64;
            parts.push((0, 0, Some(Bytes::from(tail))));
            set(
                &mut h,
                header::CONTENT_TYPE,
                &format!("multipart/byteranges; boundary={boundary}"),
            );
            (StatusCode::PARTIAL_CONTENT, total, parts)
        }
    };
    if !h.contains_key(header::CONTENT_TYPE) {
        set(&mut h, header::CONTENT_TYPE, content_type);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if req.head {
        return Ok(Reply {
            status,
            headers: h,
            body: ReplyBody::Empty,
        });
    }
    let produce = move |blocks: Blocks<'_>, out: &mut dyn Out| -> Result<(), HttpError> {
        for (s, e, literal) in &parts {
            match literal {
                Some(b) => out.put(b.clone()).map_err(|e| {
                    HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                })?,
                None => content.write(blocks, *s, *e, out)?,
            }
        }
        Ok(())
    };
    if length <= limit {
        let mut parts = Vec::new();
        produce(req.blocks(), &mut parts)?;
        return Ok(Reply {
            status,
            headers: h,
            body: ReplyBody::Parts(parts),
        });
    }
    Ok(Reply {
        status,
        headers: h,
        body: ReplyBody::Stream(Box::new(move |sink: &mut Sink| {
            produce(Blocks(&*blocks_arc, None, None), sink)
        })),
    })
}

fn default_reply(req: &Req<'_>, r: &Resolved, h: HeaderMap) -> Result<Reply, HttpError> {
    let t = r.terminal;
    match t.codec() {
        codec::DAG_JSON | codec::DAG_CBOR | codec::JSON | codec::CBOR => {
            codec_reply(req, r, None, h)
        }
        codec::RAW | codec::DAG_PB => {
            let stat = reader::stat(&req.blocks(), &t)?;
            match stat.kind {
                Kind::File => file_reply(req, t, stat.filesize, None, h),
                Kind::Directory => dir_reply(req, t, h),
                Kind::Symlink => {
                    let target = stat.target.unwrap_or_default();
                    let mut h = h;
                    set(&mut h, header::ETAG, &format!("\"{t}\""));
                    if let Some(r) = not_modified(req, &format!("\"{t}\""), &h) {
                        return Ok(r);
                    }
                    let size = target.len() as u64;
                    body_reply(req, Content::Block(Bytes::from(target)), size, "inode/symlink", h)
                }
                Kind::Other => Err(HttpError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    format!("{t} is dag-pb without UnixFS data: request it with ?format=raw or ?format=dag-json"),
                )),
            }
        }
        other => Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "{t} has codec 0x{other:x}, which this gateway cannot deserialize: request it with ?format=raw or ?format=car"
            ),
        )),
    }
}

fn file_reply(
    req: &Req<'_>,
    cid: Cid,
    size: u64,
    forced_type: Option<&str>,
    mut h: HeaderMap,
) -> Result<Reply, HttpError> {
    let etag = format!("\"{cid}\"");
    set(&mut h, header::ETAG, &etag);
    if let Some(r) = not_modified(req, &etag, &h) {
        return Ok(r);
    }
    let name = req
        .query("filename")
        .map(str::to_string)
        .unwrap_or_else(|| req.path.segments.last().cloned().unwrap_or_default());
    let ctype = match forced_type {
        Some(t) => t.to_string(),
        None => {
            // With the memo, this read of the first leaf is the one the body reuses.
            let head = if content_type::by_extension(&name).is_some() {
                Vec::new()
            } else {
                let mut head = BytesMut::new();
                Content::File(cid).write(req.blocks(), 0, size.min(SNIFF_LEN as u64), &mut head)?;
                head.to_vec()
            };
            content_type::detect(&name, &head)
        }
    };
    if let Some(d) = disposition(req, None) {
        set(&mut h, header::CONTENT_DISPOSITION, &d);
    }
    body_reply(req, Content::File(cid), size, &ctype, h)
}

fn dir_reply(req: &Req<'_>, dir: Cid, mut h: HeaderMap) -> Result<Reply, HttpError> {
    if !req.path.trailing_slash {
        // Relative links and service-worker scopes need the slash (the spec's normalization).
        let mut location = format!("{}/", req.uri.path());
        if let Some(q) = req.uri.query() {
            location.push('?');
            location.push_str(q);
        }
        set(&mut h, header::LOCATION, &location);
        return Ok(Reply {
            status: StatusCode::MOVED_PERMANENTLY,
            headers: h,
            body: ReplyBody::Empty,
        });
    }
    if let Some(index) = reader::lookup(&req.blocks(), &dir, "index.html")? {
        let stat = reader::stat(&req.blocks(), &index)?;
        if stat.kind == Kind::File {
            return file_reply(
                req,
                index,
                stat.filesize,
                Some("text/html; charset=utf-8"),
                h,
            );
        }
    }
    let page_no = match req.query("page") {
        None => 0,
        Some(p) => p
            .parse::<usize>()
            .map_err(|_| HttpError::bad_request(format!("invalid page {p:?}")))?,
    };
    let etag = format!(
        "\"DirIndex-{}_CID-{dir}{}\"",
        listing::LISTING_VERSION,
        if page_no > 0 {
            format!("_page-{page_no}")
        } else {
            String::new()
        }
    );
    set(&mut h, header::ETAG, &etag);
    if !req.path.mutable {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(LISTING_CACHE),
        );
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Some(r) = not_modified(req, &etag, &h) {
        return Ok(r);
    }
    if req.head {
        return Ok(Reply {
            status: StatusCode::OK,
            headers: h,
            body: ReplyBody::Empty,
        });
    }
    let page = listing::page(req.blocks(), &dir, page_no, req.st.config.dir_page_size)?;
    let gateway = req
        .subdomain
        .as_ref()
        .map(|g| format!("//{g}"))
        .unwrap_or_default();
    let html = listing::render(
        &req.path.display(),
        &dir,
        req.path.segments.is_empty(),
        &gateway,
        page_no,
        &page,
    );
    Ok(Reply {
        status: StatusCode::OK,
        headers: h,
        body: ReplyBody::Full(Bytes::from(html)),
    })
}

fn trustless_headers(h: &mut HeaderMap, etag: &str, disposition: &str) {
    set(h, header::ETAG, etag);
    set(h, header::CONTENT_DISPOSITION, disposition);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn raw_reply(req: &Req<'_>, r: &Resolved, mut h: HeaderMap) -> Result<Reply, HttpError> {
    let t = r.terminal;
    let d = disposition(req, Some(("attachment", format!("{t}.bin")))).unwrap_or_default();
    trustless_headers(&mut h, &format!("\"{t}.raw\""), &d);
    if let Some(reply) = not_modified(req, &format!("\"{t}.raw\""), &h) {
        return Ok(reply);
    }
    let bytes = req.blocks().get(&t)?;
    let size = bytes.len() as u64;
    body_reply(
        req,
        Content::Block(bytes),
        size,
        Format::Raw.media_type(),
        h,
    )
}

fn car_reply(
    req: &Req<'_>,
    r: &Resolved,
    accept_params: &[(String, String)],
    mut h: HeaderMap,
) -> Result<Reply, HttpError> {
    let params = CarParams::from_request(&req.query, accept_params)?;
    // Once the stream starts the status is 200 whatever happens: a missing terminal block must
    // be a 404 before that (the spec's rule for the root block).
    if !req.blocks().has(&r.terminal)? {
        return Err(HttpError::not_found(format!(
            "block {} not found",
            r.terminal
        )));
    }
    let name = match r.roots.len() {
        1 => format!("{}.car", r.root),
        _ => format!("{}_{}.car", r.root, last_name(req)),
    };
    let d = disposition(req, Some(("attachment", name))).unwrap_or_default();
    // Weak: the bytes depend on this implementation's walk, not only on the content.
    let etag = format!(
        "W/\"{}.car.{}\"",
        r.root,
        etag_digest(&[&req.path.display(), &params.etag_key()])
    );
    trustless_headers(&mut h, &etag, &d);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    set(&mut h, header::CONTENT_TYPE, &car::content_type(&params));
    if let Some(reply) = not_modified(req, &etag, &h) {
        return Ok(reply);
    }
    if req.head {
        return Ok(Reply {
            status: StatusCode::OK,
            headers: h,
            body: ReplyBody::Empty,
        });
    }
    let backend = req.st.backend.clone();
    let resolved = r.clone();
    Ok(Reply {
        status: StatusCode::OK,
        headers: h,
        body: ReplyBody::Stream(Box::new(move |sink: &mut Sink| {
            car::write_car(Blocks(&*backend, None, None), &resolved, &params, sink)
        })),
    })
}

/// dag-json, dag-cbor, json and cbor responses (and the default response for blocks of those
/// codecs). Without conversion a block is only served in its own codec, or as plain JSON/CBOR
/// when its codec is the dag- variant of it; anything else is 406 (IPIP-524).
fn codec_reply(
    req: &Req<'_>,
    r: &Resolved,
    format: Option<Format>,
    mut h: HeaderMap,
) -> Result<Reply, HttpError> {
    let t = r.terminal;
    let c = t.codec();
    let own = match c {
        codec::DAG_JSON => Some(Format::DagJson),
        codec::DAG_CBOR => Some(Format::DagCbor),
        codec::JSON => Some(Format::Json),
        codec::CBOR => Some(Format::Cbor),
        _ => None,
    };
    let want = format.or(own).ok_or_else(|| {
        HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("{t} has no IPLD response type"),
        )
    })?;
    let as_is = Some(want) == own
        || (want == Format::Json && c == codec::DAG_JSON)
        || (want == Format::Cbor && c == codec::DAG_CBOR);
    let target = match want {
        Format::DagJson => codec::DAG_JSON,
        Format::DagCbor => codec::DAG_CBOR,
        _ => 0,
    };
    let convertible = req.st.config.allow_codec_conversion
        && target != 0
        && matches!(c, codec::DAG_PB | codec::DAG_CBOR | codec::DAG_JSON);
    if !as_is && !convertible {
        // A UnixFS file holding JSON may be served as application/json (the spec allows it).
        if want == Format::Json && matches!(c, codec::DAG_PB | codec::RAW) {
            let stat = reader::stat(&req.blocks(), &t)?;
            if stat.kind == Kind::File {
                return file_reply(req, t, stat.filesize, Some(Format::Json.media_type()), h);
            }
        }
        return Err(HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "format {} requested but {t} has codec {}: codec conversion is not enabled; fetch the block with ?format=raw and convert it client-side",
                want.name(),
                codec::name(c).unwrap_or("unknown")
            ),
        ));
    }
    let etag = format!("\"{t}.{}\"", want.name());
    let binary = matches!(want, Format::DagCbor | Format::Cbor);
    let ext = if binary { "cbor" } else { "json" };
    let d = disposition(
        req,
        Some((
            if binary { "attachment" } else { "inline" },
            format!("{t}.{ext}"),
        )),
    )
    .unwrap_or_default();
    trustless_headers(&mut h, &etag, &d);
    if let Some(reply) = not_modified(req, &etag, &h) {
        return Ok(reply);
    }
    let block = req.blocks().get(&t)?;
    let bytes = if as_is {
        block
    } else {
        Bytes::from(ipld::transcode(c, target, &block).map_err(|e| {
            HttpError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!("cannot convert {t}: {e}"),
            )
        })?)
    };
    let size = bytes.len() as u64;
    body_reply(req, Content::Block(bytes), size, want.media_type(), h)
}

fn ipns_record(req: &Req<'_>, mut h: HeaderMap) -> Result<Reply, HttpError> {
    if !req.path.mutable || !req.path.segments.is_empty() {
        return Err(HttpError::bad_request(
            "ipns-record is only available for /ipns/{name}, without a path",
        ));
    }
    let name = &req.path.root;
    let record = req
        .st
        .backend
        .ipns_record(name)?
        .ok_or_else(|| HttpError::not_found(format!("no IPNS record for {name}")))?;
    let etag = format!("\"{}\"", etag_digest(&[&String::from_utf8_lossy(&record)]));
    let d =
        disposition(req, Some(("attachment", format!("{name}.ipns-record")))).unwrap_or_default();
    trustless_headers(&mut h, &etag, &d);
    if let Some(reply) = not_modified(req, &etag, &h) {
        return Ok(reply);
    }
    let size = record.len() as u64;
    body_reply(
        req,
        Content::Block(Bytes::from(record)),
        size,
        Format::IpnsRecord.media_type(),
        h,
    )
}

/// Delegated routing (`/routing/v1/…`, see [`crate::routing`]): within the concurrency limit,
/// with a `PUT` body of at most [`crate::routing::MAX_PUT`] bytes, answered on the blocking pool.
async fn routing_request(st: AppState, request: axum::extract::Request) -> Response {
    let Ok(permit) = st.permits.clone().try_acquire_owned() else {
        return HttpError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response();
    };
    let (parts, body) = request.into_parts();
    let body = if parts.method == Method::PUT {
        match axum::body::to_bytes(body, crate::routing::MAX_PUT).await {
            Ok(b) => Some(b),
            Err(_) => {
                return HttpError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "an IPNS record is at most 10 KiB",
                )
                .into_response()
            }
        }
    } else {
        None
    };
    let backend = st.backend.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        crate::routing::serve(
            &*backend,
            &parts.method,
            parts.uri.path(),
            &parts.headers,
            body,
        )
    })
    .await;
    answer.unwrap_or_else(|_| {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request failed").into_response()
    })
}
