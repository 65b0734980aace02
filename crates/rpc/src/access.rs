//! Who may call the API: Kubo's `API.Authorizations` secrets with their allowed path prefixes,
//! and the browser checks (Origin, Referer, User-Agent) that keep web pages from driving a
//! local node, with CORS only for origins the operator lists.
//!
//! These run before the method check and before any command, so a refused request changes
//! nothing.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

/// One named secret and the path prefixes it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The name it was configured under (for logs).
    pub name: String,
    /// The exact `Authorization` header value that carries it.
    pub header: String,
    /// Path prefixes (`/api/v0/pin`) it may call; `/api/v0/version` is always allowed.
    pub allowed_paths: Vec<String>,
}

impl Authorization {
    /// Parses Kubo's secret syntax: `bearer:TOKEN`, `basic:USER:PASSWORD`, `basic:BASE64`, or a
    /// bare token (taken as bearer).
    pub fn from_secret(
        name: &str,
        secret: &str,
        allowed_paths: Vec<String>,
    ) -> Result<Authorization, String> {
        let header = match secret.split_once(':') {
            None => format!("Bearer {secret}"),
            Some(("bearer", token)) => format!("Bearer {token}"),
            Some(("basic", rest)) if rest.contains(':') => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(rest)
            ),
            Some(("basic", encoded)) => format!("Basic {encoded}"),
            Some((kind, _)) => {
                return Err(format!(
                    "authorization {name:?}: unknown secret type {kind:?} (use bearer:TOKEN or basic:USER:PASSWORD)"
                ))
            }
        };
        if header.ends_with(' ') {
            return Err(format!("authorization {name:?}: empty secret"));
        }
        Ok(Authorization {
            name: name.to_string(),
            header,
            allowed_paths,
        })
    }
}

/// The API's access rules.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// When not empty, every request must carry one of these secrets.
    pub authorizations: Vec<Authorization>,
    /// Browser origins (`https://app.example`, or `*`) allowed to call the API, with CORS
    /// headers. The node's own origin is always allowed.
    pub allowed_origins: Vec<String>,
    /// Extra headers put on every response (Kubo's `API.HTTPHeaders`).
    pub headers: Vec<(String, String)>,
}

const DENIED: &str = "Kubo RPC Access Denied: Please provide a valid authorization token as defined in the API.Authorizations configuration.";

fn plain(status: StatusCode, message: &str) -> Response {
    let mut resp = (status, format!("{message}\n")).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

impl Access {
    /// Checks the secret: `None` if the request may go on, else the refusal. A request with no
    /// credentials gets 401 (with a challenge), a wrong or too narrow one 403.
    pub(crate) fn authorize(&self, path: &str, headers: &HeaderMap) -> Option<Response> {
        if self.authorizations.is_empty() {
            return None;
        }
        let Some(given) = headers.get(header::AUTHORIZATION) else {
            let mut resp = plain(StatusCode::UNAUTHORIZED, DENIED);
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ipfs-kit\", Basic realm=\"ipfs-kit\""),
            );
            return Some(resp);
        };
        let allowed = self
            .authorizations
            .iter()
            .filter(|a| constant_time_eq(a.header.as_bytes(), given.as_bytes()))
            .any(|a| {
                path == "/api/v0/version"
                    || a.allowed_paths.iter().any(|p| path.starts_with(p.as_str()))
            });
        (!allowed).then(|| plain(StatusCode::FORBIDDEN, DENIED))
    }

    fn origin_allowed(&self, origin: &str, headers: &HeaderMap) -> bool {
        if self.allowed_origins.iter().any(|o| o == "*" || o == origin) {
            return true;
        }
        // The node's own origin: a page it serves calling back home.
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
    }

    /// Go-ipfs-cmds' browser checks: a cross-origin request, a foreign Referer, or a browser
    /// request with neither is refused, so a web page cannot drive the node.
    pub(crate) fn check_browser(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        let get = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
        if let Some(origin) = get(header::ORIGIN) {
            return (!self.origin_allowed(origin, headers))
                .then(|| plain(StatusCode::FORBIDDEN, "403 - Forbidden"));
        }
        if let Some(referer) = get(header::REFERER) {
            let origin = referer_origin(referer);
            return (!self.origin_allowed(origin, headers))
                .then(|| plain(StatusCode::FORBIDDEN, "403 - Forbidden"));
        }
        let browser = get(header::USER_AGENT)
            .is_some_and(|ua| ua.starts_with("Mozilla") && !ua.contains("Electron"));
        (method == Method::POST && browser).then(|| plain(StatusCode::FORBIDDEN, "403 - Forbidden"))
    }

    /// A CORS preflight's answer, when the request is one.
    pub(crate) fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        Some(resp)
    }

    /// Headers every answer carries: the configured ones, and CORS for an allowed origin.
    pub(crate) fn decorate(&self, request_headers: &HeaderMap, resp: &mut Response) {
        let h = resp.headers_mut();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                header::HeaderName::try_from(k.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) {
                h.insert(k, v);
            }
        }
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("X-Stream-Output, X-Chunked-Output, X-Content-Length"),
        );
        if let Some(origin) = request_headers.get(header::ORIGIN) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// `scheme://host[:port]` of a Referer URL.
fn referer_origin(referer: &str) -> &str {
    let after_scheme = referer.find("://").map_or(0, |i| i + 3);
    match referer[after_scheme..].find('/') {
        Some(i) => &referer[..after_scheme + i],
        None => referer,
    }
}

/// Compares secrets without an early exit, so timing does not reveal how much of one matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_as_kubo_writes_them() {
        let a = |s| Authorization::from_secret("n", s, vec![]).map(|a| a.header);
        assert_eq!(a("bearer:tok").unwrap(), "Bearer tok");
        assert_eq!(a("tok").unwrap(), "Bearer tok");
        assert_eq!(a("basic:alice:pw").unwrap(), "Basic YWxpY2U6cHc=");
        assert_eq!(a("basic:YWxpY2U6cHc=").unwrap(), "Basic YWxpY2U6cHc=");
        assert!(a("digest:x").is_err());
        assert!(a("bearer:").is_err());
    }

    #[test]
    fn paths_are_prefixes_and_version_is_always_open() {
        let access = Access {
            authorizations: vec![Authorization::from_secret(
                "a",
                "bearer:t",
                vec!["/api/v0/pin".into()],
            )
            .unwrap()],
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        assert_eq!(
            access.authorize("/api/v0/pin/ls", &h).map(|r| r.status()),
            Some(StatusCode::UNAUTHORIZED)
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(access.authorize("/api/v0/pin/ls", &h).is_none());
        assert!(access.authorize("/api/v0/version", &h).is_none());
        assert_eq!(
            access.authorize("/api/v0/add", &h).map(|r| r.status()),
            Some(StatusCode::FORBIDDEN)
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(
            access.authorize("/api/v0/version", &h).map(|r| r.status()),
            Some(StatusCode::FORBIDDEN)
        );
    }

    #[test]
    fn browsers_need_an_allowed_origin() {
        let access = Access {
            allowed_origins: vec!["https://app.example".into()],
            ..Default::default()
        };
        let check = |pairs: &[(header::HeaderName, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(k.clone(), HeaderValue::from_static(v));
            }
            access.check_browser(&Method::POST, &h).is_none()
        };
        assert!(check(&[]));
        assert!(check(&[(header::ORIGIN, "https://app.example")]));
        assert!(!check(&[(header::ORIGIN, "https://evil.example")]));
        assert!(check(&[
            (header::HOST, "127.0.0.1:5001"),
            (header::ORIGIN, "http://127.0.0.1:5001")
        ]));
        assert!(!check(&[(header::REFERER, "https://evil.example/page")]));
        assert!(check(&[(header::REFERER, "https://app.example/x/y")]));
        assert!(!check(&[(header::USER_AGENT, "Mozilla/5.0")]));
        assert!(check(&[(header::USER_AGENT, "Mozilla/5.0 Electron/1")]));
    }
}
