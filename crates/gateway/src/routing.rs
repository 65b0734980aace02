//! Delegated routing over HTTP ([IPIP-337], [IPIP-379], [IPIP-417]), served beside the gateway:
//!
//! - `GET /routing/v1/providers/{cid}`: `{"Providers":[{"Schema":"peer","ID","Addrs",
//!   "Protocols"}]}`, or one such object per line with `Accept: application/x-ndjson`;
//! - `GET /routing/v1/peers/{peer-id}`: `{"Peers":[…]}` (or NDJSON) for one peer;
//! - `GET /routing/v1/ipns/{name}`: the signed record (`application/vnd.ipfs.ipns-record`),
//!   `Cache-Control: max-age` its TTL, an `Etag` from its bytes;
//! - `PUT /routing/v1/ipns/{name}`: a signed record, validated for the name and published.
//!
//! No results is 404 (the spec's "must"); JSON answers are cut at 100 entries; every answer
//! carries `Access-Control-Allow-Origin: *` (the spec's CORS rule) and `Vary: Accept`.
//! Cache lifetimes follow boxo's server: 5 minutes with results, 15 seconds without, both
//! usable stale for 48 hours.
//!
//! [IPIP-337]: https://specs.ipfs.tech/ipips/ipip-0337/
//! [IPIP-379]: https://specs.ipfs.tech/ipips/ipip-0379/
//! [IPIP-417]: https://specs.ipfs.tech/ipips/ipip-0417/

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::{Backend, Error, RoutingPeer};

/// Entries a JSON (not streamed) answer holds at most (the spec's "SHOULD be limited to 100").
pub const JSON_LIMIT: usize = 100;
/// Entries a streamed (NDJSON) answer holds at most.
pub const STREAM_LIMIT: usize = 1000;
/// Largest IPNS record a `PUT` may carry (the record spec's limit).
pub const MAX_PUT: usize = 10 * 1024;

const NDJSON: &str = "application/x-ndjson";
const IPNS_RECORD: &str = "application/vnd.ipfs.ipns-record";
const FOUND_CACHE: &str =
    "public, max-age=300, stale-while-revalidate=172800, stale-if-error=172800";
const NOT_FOUND_CACHE: &str =
    "public, max-age=15, stale-while-revalidate=172800, stale-if-error=172800";

/// Whether `path` is a delegated routing path.
pub(crate) fn is_routing(path: &str) -> bool {
    path.starts_with("/routing/v1/")
}

fn response(status: StatusCode, content_type: &str, body: impl Into<Body>) -> Response {
    let mut r = (status, body.into()).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, PUT, OPTIONS"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

fn text(status: StatusCode, message: &str) -> Response {
    response(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

fn with_cache(mut r: Response, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}

fn backend_error(e: Error) -> Response {
    match e {
        Error::NotFound(m) => with_cache(text(StatusCode::NOT_FOUND, &m), NOT_FOUND_CACHE),
        Error::Timeout(m) => text(StatusCode::GATEWAY_TIMEOUT, &m),
        Error::NotImplemented(m) => text(StatusCode::NOT_IMPLEMENTED, &m),
        Error::Internal(m) => text(StatusCode::INTERNAL_SERVER_ERROR, &m),
        Error::Invalid(m) => text(StatusCode::BAD_REQUEST, &m),
    }
}

fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.split(';').next().unwrap_or_default().trim() == NDJSON)
}

fn peer_json(p: &RoutingPeer) -> serde_json::Value {
    serde_json::json!({
        "Schema": "peer",
        "ID": p.id,
        "Addrs": p.addrs,
        "Protocols": p.protocols,
    })
}

/// A list of peer records as JSON under `field`, or NDJSON when asked for.
fn peers_response(field: &str, peers: &[RoutingPeer], ndjson: bool) -> Response {
    if peers.is_empty() {
        return with_cache(
            text(StatusCode::NOT_FOUND, "no records found"),
            NOT_FOUND_CACHE,
        );
    }
    let r = if ndjson {
        let mut body = Vec::new();
        for p in peers.iter().take(STREAM_LIMIT) {
            body.extend_from_slice(peer_json(p).to_string().as_bytes());
            body.push(b'\n');
        }
        response(StatusCode::OK, NDJSON, body)
    } else {
        let list: Vec<_> = peers.iter().take(JSON_LIMIT).map(peer_json).collect();
        let body = serde_json::json!({ field: list }).to_string();
        response(StatusCode::OK, "application/json", body)
    };
    with_cache(r, FOUND_CACHE)
}

/// Answers a `/routing/v1/` request. Backend calls block; call this off the async runtime.
pub(crate) fn serve(
    backend: &dyn Backend,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Option<Bytes>,
) -> Response {
    if method == Method::OPTIONS {
        return response(StatusCode::OK, "text/plain; charset=utf-8", "");
    }
    let rest = path.trim_start_matches("/routing/v1/");
    let (kind, arg) = rest.split_once('/').unwrap_or((rest, ""));
    let arg = match percent_encoding::percent_decode_str(arg).decode_utf8() {
        Ok(a) => a.into_owned(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "path is not UTF-8"),
    };
    let get = method == Method::GET || method == Method::HEAD;
    if arg.is_empty() || arg.contains('/') {
        return text(StatusCode::BAD_REQUEST, &format!("unknown path {path}"));
    }
    let ndjson = wants_ndjson(headers);
    match (kind, get) {
        ("providers", true) => {
            let cid = match ipfs_kit_block::parse_cid(&arg) {
                Ok(c) => c,
                Err(e) => return text(StatusCode::BAD_REQUEST, &format!("invalid CID: {e}")),
            };
            let limit = if ndjson { STREAM_LIMIT } else { JSON_LIMIT };
            match backend.find_providers(&cid, limit) {
                Ok(peers) => peers_response("Providers", &peers, ndjson),
                Err(e) => backend_error(e),
            }
        }
        ("peers", true) => match backend.find_peer(&arg) {
            Ok(peer) => peers_response("Peers", peer.as_slice(), ndjson),
            Err(e) => backend_error(e),
        },
        ("ipns", true) => get_ipns(backend, &arg),
        ("ipns", false) if method == Method::PUT => put_ipns(backend, &arg, headers, body),
        (_, true) => text(StatusCode::BAD_REQUEST, &format!("unknown path {path}")),
        _ => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("method {method} not allowed on {path}"),
            );
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, OPTIONS"),
            );
            r
        }
    }
}

fn get_ipns(backend: &dyn Backend, name: &str) -> Response {
    let record = match backend.ipns_record(name) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return with_cache(
                text(StatusCode::NOT_FOUND, &format!("no IPNS record for {name}")),
                "public, max-age=60",
            )
        }
        Err(e) => return backend_error(e),
    };
    // The record's own TTL, when it parses and has one; the spec's 60 s otherwise.
    let ttl = ipfs_kit_ipns::Record::decode(&record)
        .ok()
        .map(|r| r.ttl().as_secs())
        .filter(|s| *s > 0)
        .unwrap_or(60);
    let etag = format!(
        "\"{}\"",
        ipfs_kit_block::HashAlg::Sha2_256
            .digest(&record)
            .digest()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut r = with_cache(
        response(StatusCode::OK, IPNS_RECORD, record),
        &format!("public, max-age={ttl}"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn put_ipns(
    backend: &dyn Backend,
    name: &str,
    headers: &HeaderMap,
    body: Option<Bytes>,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.split(';').next().unwrap_or_default().trim() != IPNS_RECORD {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            &format!("send the record with Content-Type: {IPNS_RECORD}"),
        );
    }
    let Some(body) = body else {
        return text(StatusCode::BAD_REQUEST, "the request has no record");
    };
    match backend.put_ipns_record(name, &body) {
        Ok(()) => response(StatusCode::OK, "text/plain; charset=utf-8", ""),
        Err(e) => backend_error(e),
    }
}
