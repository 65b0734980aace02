//! Multipart uploads (`add`), handed to the blocking backend as a stream of entries.
//!
//! An async task reads the multipart body and sends entries and data chunks through a bounded
//! channel; the backend pulls them on a blocking thread. The channel's bound is the only
//! buffering: a backend that stops reading stops the upload.

use std::io;
use std::time::Duration;

use axum::extract::Multipart;
use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::{Limits, RpcError};

/// What an uploaded entry is, from its part's content type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadKind {
    /// A file; its bytes follow.
    File,
    /// `application/x-directory`.
    Directory,
    /// `application/symlink`, with the target from the part's body.
    Symlink(String),
}

enum Msg {
    Entry(String, UploadKind),
    Data(Bytes),
    End,
    Failed(RpcError),
}

/// The receiving end of an upload, read on a blocking thread.
pub struct Upload {
    rx: mpsc::Receiver<Msg>,
    /// A message read while looking for the end of a file, kept for `next_entry`.
    stashed: Option<Msg>,
    chunk: Bytes,
    in_file: bool,
    ended: bool,
}

/// Options of `add`, as Kubo names them.
#[derive(Clone, Debug, Default)]
pub struct AddParams {
    /// `cid-version`.
    pub cid_version: Option<u8>,
    /// `raw-leaves`.
    pub raw_leaves: Option<bool>,
    /// `chunker`.
    pub chunker: Option<String>,
    /// `trickle`.
    pub trickle: bool,
    /// `hash`.
    pub hash: Option<String>,
    /// `only-hash`.
    pub only_hash: bool,
    /// `wrap-with-directory`.
    pub wrap: bool,
    /// `pin` (default true).
    pub pin: bool,
    /// `progress`: report bytes as they are read.
    pub progress: bool,
    /// `max-file-links`.
    pub max_file_links: Option<u64>,
    /// `max-directory-links`.
    pub max_directory_links: Option<u64>,
    /// `max-hamt-fanout`.
    pub max_hamt_fanout: Option<u64>,
    /// `profile` (ipfs-kit's import profile names).
    pub profile: Option<String>,
}

/// One line of `add`'s output stream.
#[derive(Clone, Debug, Serialize)]
pub struct AddEvent {
    /// The entry's path (for a single unnamed upload, its CID).
    #[serde(rename = "Name")]
    pub name: String,
    /// Its CID (absent on progress lines).
    #[serde(rename = "Hash", skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Cumulative size, as a decimal string, as Kubo sends it.
    #[serde(rename = "Size", skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Bytes read so far (progress lines only).
    #[serde(rename = "Bytes", skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl Upload {
    fn recv(&mut self) -> Msg {
        self.stashed
            .take()
            .or_else(|| self.rx.blocking_recv())
            .unwrap_or(Msg::Failed(RpcError::normal("upload ended unexpectedly")))
    }

    /// The next entry's path and kind, or `None` when the upload is complete.
    pub fn next_entry(&mut self) -> Result<Option<(String, UploadKind)>, RpcError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            match self.recv() {
                Msg::Data(_) => continue,
                Msg::Entry(path, kind) => {
                    self.in_file = kind == UploadKind::File;
                    self.chunk = Bytes::new();
                    return Ok(Some((path, kind)));
                }
                Msg::End => {
                    self.ended = true;
                    return Ok(None);
                }
                Msg::Failed(e) => return Err(e),
            }
        }
    }

    /// The whole of the first file of the upload, refused past `limit` bytes.
    pub fn first_file(&mut self, limit: usize, what: &str) -> Result<Vec<u8>, RpcError> {
        loop {
            match self.next_entry()? {
                None => {
                    return Err(RpcError::request(
                        axum::http::StatusCode::BAD_REQUEST,
                        "file argument 'data' is required",
                    ))
                }
                Some((_, UploadKind::File)) => break,
                Some(_) => {}
            }
        }
        let mut data = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = self
                .read(&mut buf)
                .map_err(|e| RpcError::normal(e.to_string()))?;
            if n == 0 {
                return Ok(data);
            }
            if data.len() + n > limit {
                return Err(RpcError::normal(format!(
                    "{what} is over the limit of {limit} bytes"
                )));
            }
            data.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads bytes of the current file; 0 at its end.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            if !self.in_file {
                return Ok(0);
            }
            match self.recv() {
                Msg::Data(d) => self.chunk = d,
                Msg::Failed(e) => return Err(io::Error::other(e.message)),
                other => {
                    self.stashed = Some(other);
                    self.in_file = false;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// A part's path: query-unescaped (`+` is a space, `%2F` a slash), as Kubo reads it.
fn part_name(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Waits for the next piece of an upload, failing if the client sends nothing for `stall`.
async fn within<T, E: std::fmt::Display>(
    stall: Duration,
    next: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, RpcError> {
    match tokio::time::timeout(stall, next).await {
        Ok(r) => r.map_err(|e| RpcError::client(format!("bad multipart upload: {e}"))),
        Err(_) => Err(RpcError::client(format!(
            "upload stalled: nothing received for {}s",
            stall.as_secs()
        ))),
    }
}

/// Starts reading `multipart` on the runtime; returns the blocking end. The limits bound the
/// whole upload, the chunks buffered, and how long the client may pause; `received` counts
/// the bytes.
/// The multipart upload of `request`, read as [`start`] reads it; a body that is not multipart
/// is Kubo's 400 naming the missing file argument `field`.
pub(crate) async fn from_request(
    request: axum::extract::Request,
    limits: &Limits,
    received: Counter,
    field: &str,
) -> Result<Upload, RpcError> {
    use axum::extract::FromRequest;
    let multipart = Multipart::from_request(request, &()).await.map_err(|_| {
        RpcError::request(
            axum::http::StatusCode::BAD_REQUEST,
            format!("file argument '{field}' is required"),
        )
    })?;
    Ok(start(multipart, limits, received))
}

/// How long the rest of an upload is read and thrown away once the backend has stopped
/// reading it (it failed: a bad entry, a full disk). Closing a connection with the client's
/// bytes unread makes the kernel reset it, and the reset destroys the error answer already
/// sent before the client reads it: the client then reports "connection reset" instead of
/// what went wrong. Kubo's clients, curl and ours all upload the whole body before reading.
const LINGER: Duration = Duration::from_secs(10);

pub(crate) fn start(mut multipart: Multipart, limits: &Limits, received: Counter) -> Upload {
    let (tx, rx) = mpsc::channel(limits.stream_buffer.max(1));
    let (max_bytes, stall) = (limits.max_upload, limits.stall_timeout);
    tokio::spawn(async move {
        let mut total = 0u64;
        // Set when the backend stops reading: from then on the body is only drained.
        let mut gone: Option<tokio::time::Instant> = None;
        let result: Result<(), RpcError> = async {
            while let Some(mut field) = within(stall, multipart.next_field()).await? {
                if gone.is_some_and(|since| since.elapsed() > LINGER) {
                    return Ok(());
                }
                let name = part_name(field.file_name().or(field.name()).unwrap_or_default());
                let kind = match field.content_type() {
                    Some("application/x-directory" | "multipart/form-data" | "multipart/mixed") => {
                        UploadKind::Directory
                    }
                    Some("application/symlink") => {
                        let mut target = Vec::new();
                        while let Some(c) = within(stall, field.chunk()).await? {
                            target.extend_from_slice(&c);
                            if target.len() > 4096 {
                                return Err(RpcError::client(
                                    "symlink target longer than 4096 bytes",
                                ));
                            }
                        }
                        UploadKind::Symlink(String::from_utf8_lossy(&target).into_owned())
                    }
                    _ => UploadKind::File,
                };
                let is_file = kind == UploadKind::File;
                if gone.is_none() && tx.send(Msg::Entry(name, kind)).await.is_err() {
                    gone = Some(tokio::time::Instant::now());
                }
                if !is_file {
                    continue;
                }
                while let Some(chunk) = within(stall, field.chunk()).await? {
                    total += chunk.len() as u64;
                    received.inc_by(chunk.len() as u64);
                    if total > max_bytes {
                        return Err(RpcError::client(format!(
                            "upload exceeds the limit of {max_bytes} bytes"
                        )));
                    }
                    match gone {
                        Some(since) if since.elapsed() > LINGER => return Ok(()),
                        Some(_) => {}
                        None => {
                            if tx.send(Msg::Data(chunk)).await.is_err() {
                                gone = Some(tokio::time::Instant::now());
                            }
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        let _ = tx
            .send(match result {
                Ok(()) => Msg::End,
                Err(e) => Msg::Failed(e),
            })
            .await;
    });
    Upload {
        rx,
        stashed: None,
        chunk: Bytes::new(),
        in_file: false,
        ended: false,
    }
}
