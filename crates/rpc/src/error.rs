//! The one place errors become HTTP: Kubo's error body and status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Kubo's error classes (go-ipfs-cmds `ErrorType`), which decide the `Code` field and the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An ordinary failure of the command (500).
    Normal = 0,
    /// The request itself is wrong: a missing argument, a bad option (400).
    Client = 1,
    /// A bug (500).
    Implementation = 2,
    /// No such command (404).
    NotFound = 3,
    /// Too many requests (429).
    RateLimited = 4,
    /// Not allowed (403).
    Forbidden = 5,
}

/// An error as the RPC API reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// The message clients show.
    pub message: String,
    /// Its class.
    pub kind: ErrorKind,
}

impl RpcError {
    /// An ordinary command failure.
    pub fn normal(message: impl Into<String>) -> Self {
        RpcError {
            message: message.into(),
            kind: ErrorKind::Normal,
        }
    }

    /// A malformed request.
    pub fn client(message: impl Into<String>) -> Self {
        RpcError {
            message: message.into(),
            kind: ErrorKind::Client,
        }
    }

    /// An unknown command.
    pub fn not_found(message: impl Into<String>) -> Self {
        RpcError {
            message: message.into(),
            kind: ErrorKind::NotFound,
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Client => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Normal | ErrorKind::Implementation => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "Message": self.message,
            "Code": self.kind as u8,
            "Type": "error",
        });
        (self.status(), axum::Json(body)).into_response()
    }
}
