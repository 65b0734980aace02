//! `name/*`: IPNS publish and resolve over the RPC API, with Kubo's JSON shapes.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::server::{blocking, json_response, ndjson_response};
use crate::{Backend, Request, RpcError};

/// Options of `name/publish`, as Kubo names them; strings are Go durations.
#[derive(Clone, Debug, Default)]
pub struct NamePublish {
    /// `key`/`k` (default `self`).
    pub key: String,
    /// `lifetime`/`t` (default 48h).
    pub lifetime: Option<String>,
    /// `ttl`.
    pub ttl: Option<String>,
    /// `resolve` (default true).
    pub resolve: bool,
    /// `allow-offline`.
    pub allow_offline: bool,
    /// `v1compat` (default true).
    pub v1_compat: bool,
    /// `sequence`.
    pub sequence: Option<u64>,
}

/// Kubo's answer when IPNS over pubsub is off.
pub(crate) const PUBSUB_OFF: &str = "IPNS pubsub subsystem is not enabled";

/// Answers `name/<sub>`.
pub(crate) async fn run(
    b: Arc<dyn Backend>,
    cmd: &str,
    req: Request,
) -> Result<Response, RpcError> {
    Ok(match cmd {
        "name/publish" => {
            let path = req.arg(0, "ipfs-path")?.to_string();
            let opts = NamePublish {
                key: req.string(&["key", "k"]).unwrap_or("self").to_string(),
                lifetime: req.string(&["lifetime", "t"]).map(str::to_string),
                ttl: req.string(&["ttl"]).map(str::to_string),
                resolve: req.flag(&["resolve"], true)?,
                allow_offline: req.flag(&["allow-offline"], false)?,
                v1_compat: req.flag(&["v1compat"], true)?,
                sequence: req.uint(&["sequence"])?,
            };
            let b58 = req.string(&["ipns-base"]) == Some("b58mh");
            let (name, peer_id, value) = blocking(move || b.name_publish(&path, &opts)).await?;
            json_response(&json!({ "Name": if b58 { peer_id } else { name }, "Value": value }))
        }
        "name/resolve" => {
            let name = req.args.first().cloned();
            let recursive = req.flag(&["recursive", "r"], true)?;
            let stream = req.flag(&["stream", "s"], false)?;
            let path = blocking(move || b.name_resolve(name.as_deref(), recursive)).await?;
            if stream {
                ndjson_response([json!({ "Path": path })])
            } else {
                json_response(&json!({ "Path": path }))
            }
        }
        "name/pubsub/state" => json_response(&json!({ "Enabled": b.ipns_pubsub_enabled() })),
        "name/pubsub/subs" => {
            let subs = blocking(move || b.ipns_pubsub_subs()).await?;
            json_response(&json!({ "Strings": subs }))
        }
        "name/pubsub/cancel" => {
            let name = req.arg(0, "name")?.to_string();
            let canceled = blocking(move || b.ipns_pubsub_cancel(&name)).await?;
            json_response(&json!({ "Canceled": canceled }))
        }
        _ => {
            return Err(RpcError::request(
                StatusCode::NOT_FOUND,
                "404 page not found",
            ))
        }
    })
}
