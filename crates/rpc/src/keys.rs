//! `key/*`: the keystore over the RPC API, with Kubo's JSON shapes.

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::{blocking, json_response};
use crate::upload;
use crate::{Backend, Limits, Request, RpcError};

/// A key as `key/*` report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// Its name (`self` for the node identity).
    pub name: String,
    /// Its IPNS name, base36 CIDv1 (`k51…`).
    pub id: String,
    /// Its peer ID in base58 (`12D3KooW…`), for `ipns-base=b58mh`.
    pub peer_id: String,
}

/// Largest key file accepted by `key/import`.
const MAX_KEY_FILE: usize = 64 << 10;

/// The `Id` to print for `key`, per `ipns-base` (base36 unless `b58mh`).
pub(crate) fn key_id(req: &Request, key: &KeyEntry) -> String {
    match req.string(&["ipns-base"]) {
        Some("b58mh") => key.peer_id.clone(),
        _ => key.id.clone(),
    }
}

fn entry(req: &Request, k: &KeyEntry) -> serde_json::Value {
    json!({ "Name": k.name, "Id": key_id(req, k) })
}

/// Answers `key/<sub>`.
pub(crate) async fn run(
    b: Arc<dyn Backend>,
    limits: Limits,
    received: prometheus_client::metrics::counter::Counter,
    cmd: &str,
    req: Request,
    request: axum::extract::Request,
) -> Result<Response, RpcError> {
    Ok(match cmd {
        "key/gen" => {
            let name = req.arg(0, "name")?.to_string();
            let kind = req.string(&["type", "t"]).unwrap_or("ed25519").to_string();
            // `size` means nothing for Ed25519 (ipfshttpclient always sends 2048).
            let size = req.int(&["size", "s"])?;
            let k = blocking(move || b.key_gen(&name, &kind, size)).await?;
            json_response(&entry(&req, &k))
        }
        "key/list" => {
            let keys = blocking(move || b.key_list()).await?;
            let keys: Vec<_> = keys.iter().map(|k| entry(&req, k)).collect();
            json_response(&json!({ "Keys": keys }))
        }
        "key/rename" => {
            let old = req.arg(0, "name")?.to_string();
            let new = req.arg(1, "newName")?.to_string();
            let force = req.flag(&["force", "f"], false)?;
            let was = old.clone();
            let (k, overwrite) = blocking(move || b.key_rename(&old, &new, force)).await?;
            json_response(
                &json!({ "Was": was, "Now": k.name, "Id": key_id(&req, &k), "Overwrite": overwrite }),
            )
        }
        "key/rm" => {
            req.arg(0, "name")?;
            let names = req.args.clone();
            let keys = blocking(move || b.key_rm(&names)).await?;
            let keys: Vec<_> = keys.iter().map(|k| entry(&req, k)).collect();
            json_response(&json!({ "Keys": keys }))
        }
        "key/import" => {
            let name = req.arg(0, "name")?.to_string();
            let mut upload = upload::from_request(request, &limits, received, "key").await?;
            let k = blocking(move || {
                let data = upload.first_file(MAX_KEY_FILE, "key")?;
                b.key_import(&name, data)
            })
            .await?;
            json_response(&entry(&req, &k))
        }
        "key/export" => {
            let name = req.arg(0, "name")?.to_string();
            let format = req
                .string(&["format", "f"])
                .unwrap_or("libp2p-protobuf-cleartext")
                .to_string();
            let bytes = blocking(move || b.key_export(&name, &format)).await?;
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        _ => {
            return Err(RpcError::request(
                StatusCode::NOT_FOUND,
                "404 page not found",
            ))
        }
    })
}
