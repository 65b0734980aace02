//! The one place errors become HTTP, as go-ipfs-cmds does it: a command's failure is the JSON
//! body `{"Message","Code","Type":"error"}` (status 400 for code 1, else 500); a request that
//! never reached a command (unknown command, wrong method, missing argument, bad option) is a
//! plain-text body with its own status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Kubo's error classes (go-ipfs-cmds `ErrorType`), which decide the `Code` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command failed (500).
    Normal = 0,
    /// The request is wrong (400).
    Client = 1,
    /// A bug (500).
    Implementation = 2,
    /// Too many requests.
    RateLimited = 3,
    /// Not allowed.
    Forbidden = 4,
}

/// An error as the RPC API reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// The message clients show.
    pub message: String,
    /// Its class.
    pub kind: ErrorKind,
    /// Set for errors raised before a command ran: sent as plain text with this status.
    pub plain: Option<StatusCode>,
}

impl RpcError {
    /// A command failure (JSON, 500).
    pub fn normal(message: impl Into<String>) -> Self {
        RpcError {
            message: message.into(),
            kind: ErrorKind::Normal,
            plain: None,
        }
    }

    /// A command refusing its input (JSON, 400).
    pub fn client(message: impl Into<String>) -> Self {
        RpcError {
            message: message.into(),
            kind: ErrorKind::Client,
            plain: None,
        }
    }

    /// A request rejected before any command ran (plain text).
    pub fn request(status: StatusCode, message: impl Into<String>) -> Self {
        RpcError {
            message: message.into(),
            kind: ErrorKind::Client,
            plain: Some(status),
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match (self.plain, self.kind) {
            (Some(s), _) => s,
            (None, ErrorKind::Client) => StatusCode::BAD_REQUEST,
            (None, _) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let status = self.status();
        if self.plain.is_some() {
            let mut resp = (status, format!("{}\n", self.message)).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return resp;
        }
        let body = serde_json::json!({
            "Message": self.message,
            "Code": self.kind as u8,
            "Type": "error",
        });
        let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
        bytes.push(b'\n');
        (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
    }
}
