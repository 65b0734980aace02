//! The commands that need the libp2p network: `swarm/*`, `bitswap/*`, `pubsub/*`,
//! `routing/*` (and the older `dht/*` names), `stats/bw`, `id <peer>`, and `bootstrap/*`, which
//! edits the config and works offline too. Output is Kubo's, field by field.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use axum::response::Response;
use serde_json::{json, Value};

use crate::server::{blocking, json_response, stream_response};
use crate::{Backend, BootstrapEdit, Limits, Request, RpcError};

/// A connected peer, as `swarm/peers` lists it.
#[derive(Clone, Debug)]
pub struct SwarmPeer {
    /// The peer ID.
    pub peer: String,
    /// The remote address.
    pub addr: String,
    /// Whether we dialed (Kubo's `Direction` 2) or they did (1).
    pub outbound: bool,
    /// The last ping round trip, when measured.
    pub latency: Option<std::time::Duration>,
}

/// A pubsub message for `pubsub/sub`.
#[derive(Clone, Debug)]
pub struct PubsubMessage {
    /// The publisher's peer ID.
    pub from: String,
    /// The payload.
    pub data: Vec<u8>,
    /// The publisher's sequence number.
    pub seqno: Vec<u8>,
    /// The topic.
    pub topic: String,
}

/// One line of `ping`, as Kubo's `PingResult`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingLine {
    /// Whether the line reports success.
    pub success: bool,
    /// The round trip in nanoseconds (Go's `time.Duration`), for a pong.
    pub time_ns: u64,
    /// A status, error or summary; empty for a pong.
    pub text: String,
}

/// `stats/bw` figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bandwidth {
    /// Bytes received.
    pub total_in: u64,
    /// Bytes sent.
    pub total_out: u64,
    /// Bytes received per second, recently.
    pub rate_in: f64,
    /// Bytes sent per second, recently.
    pub rate_out: f64,
}

/// What the network commands need from a running node. Calls block (they run on the blocking
/// pool); streaming ones call `emit` per item and stop when it fails (the client went away).
pub trait NetworkApi: Send + Sync {
    /// Dials a multiaddr; returns the peer ID.
    fn connect(&self, addr: &str) -> Result<String, RpcError>;
    /// Closes connections to the peer the multiaddr (or bare peer ID) names; returns it.
    fn disconnect(&self, addr: &str) -> Result<String, RpcError>;
    /// Connected peers.
    fn peers(&self) -> Result<Vec<SwarmPeer>, RpcError>;
    /// Known addresses by peer.
    fn known_addrs(&self) -> Result<BTreeMap<String, Vec<String>>, RpcError>;
    /// (listen addresses, announced addresses).
    fn local_addrs(&self) -> Result<(Vec<String>, Vec<String>), RpcError>;
    /// `id` of another peer (what identify told us), in Kubo's shape.
    fn peer_id_info(&self, peer: &str) -> Result<Value, RpcError>;
    /// `bitswap/stat` in Kubo's shape.
    fn bitswap_stat(&self) -> Result<Value, RpcError>;
    /// Our wantlist, or a peer's wants from us.
    fn wantlist(&self, peer: Option<&str>) -> Result<Vec<String>, RpcError>;
    /// `bitswap/ledger` in Kubo's shape.
    fn ledger(&self, peer: &str) -> Result<Value, RpcError>;
    /// Publishes a message.
    fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), RpcError>;
    /// Subscribes and emits messages until `emit` fails. `emit(None)` sends the response
    /// headers (call it once subscribed) and probes whether the client is still there (call it
    /// now and then while nothing arrives).
    fn subscribe(
        &self,
        topic: &str,
        emit: &mut dyn FnMut(Option<PubsubMessage>) -> io::Result<()>,
    ) -> Result<(), RpcError>;
    /// Topics subscribed to.
    fn topics(&self) -> Result<Vec<String>, RpcError>;
    /// Pubsub peers, on a topic or any.
    fn pubsub_peers(&self, topic: Option<&str>) -> Result<Vec<String>, RpcError>;
    /// Finds providers; emits (peer, addresses) as found.
    fn find_providers(
        &self,
        cid: &str,
        limit: usize,
        emit: &mut dyn FnMut(String, Vec<String>) -> io::Result<()>,
    ) -> Result<(), RpcError>;
    /// Addresses of a peer.
    fn find_peer(&self, peer: &str) -> Result<Vec<String>, RpcError>;
    /// Announces provider records (the DAG under each CID when `recursive`) and waits until
    /// they are sent; returns how many keys.
    fn provide(&self, cids: &[String], recursive: bool) -> Result<usize, RpcError>;
    /// Runs the reprovider now and waits for it (`bitswap reprovide`, `routing reprovide`).
    fn reprovide(&self) -> Result<(), RpcError>;
    /// `stats/provide` in Kubo's shape.
    fn provide_stat(&self) -> Result<Value, RpcError>;
    /// `stats/bw` figures: overall, for one protocol, or for one peer.
    fn bandwidth(&self, protocol: Option<&str>, peer: Option<&str>) -> Result<Bandwidth, RpcError>;
    /// Pings a peer (`count` times) and emits Kubo's lines; an error after the first line ends
    /// the stream with it.
    fn ping(
        &self,
        peer: &str,
        count: usize,
        emit: &mut dyn FnMut(PingLine) -> io::Result<()>,
    ) -> Result<(), RpcError>;
    /// `routing get`: the best valid value under a textual key (`/ipns/<name>`, `/pk/<id>`).
    fn get_value(&self, key: &str) -> Result<Vec<u8>, RpcError>;
    /// `routing put`: validates `value` for the key and puts it to the DHT; returns the peer
    /// ID the key names.
    fn put_value(&self, key: &str, value: Vec<u8>) -> Result<String, RpcError>;
    /// `dht query`: the peers closest to a peer ID, nearest first, with their addresses.
    fn closest_peers(&self, peer: &str) -> Result<Vec<(String, Vec<String>)>, RpcError>;
}

/// Kubo's answer to a command that needs the network on a node without one (`ErrNotOnline`).
pub(crate) const NOT_ONLINE: &str =
    "this command must be run in online mode. Try running 'ipfs daemon' first";
/// Kubo's CoreAPI wording of the same (`ErrOffline`), which pubsub answers with.
pub(crate) const OFFLINE_ACTION: &str =
    "this action must be run in online mode, try running 'ipfs daemon' first";

/// Command groups this module answers.
pub(crate) const GROUPS: &[&str] = &[
    "swarm",
    "ping",
    "routing",
    "dht",
    "provide",
    "bitswap",
    "stats/dht",
    "stats/provide",
    "pubsub",
    "p2p",
    "stats/bw",
    "stats/bitswap",
    "bootstrap",
];

/// The network commands as `commands` lists them.
pub(crate) const COMMANDS: &[&str] = &[
    "bitswap/ledger",
    "bitswap/reprovide",
    "bitswap/stat",
    "bitswap/wantlist",
    "bootstrap",
    "bootstrap/add",
    "bootstrap/add/default",
    "bootstrap/list",
    "bootstrap/rm",
    "bootstrap/rm/all",
    "dht/findpeer",
    "dht/findprovs",
    "dht/get",
    "dht/provide",
    "dht/put",
    "dht/query",
    "ping",
    "pubsub/ls",
    "pubsub/peers",
    "pubsub/pub",
    "pubsub/sub",
    "routing/findpeer",
    "routing/findprovs",
    "routing/get",
    "routing/provide",
    "routing/put",
    "routing/reprovide",
    "stats/bitswap",
    "stats/bw",
    "stats/provide",
    "swarm/addrs",
    "swarm/addrs/listen",
    "swarm/addrs/local",
    "swarm/connect",
    "swarm/disconnect",
    "swarm/peers",
];

/// Whether `cmd` is one of this module's.
pub(crate) fn is_network(cmd: &str) -> bool {
    GROUPS
        .iter()
        .any(|g| cmd == *g || cmd.starts_with(&format!("{g}/")))
}

/// Kubo's multibase for pubsub topics and payloads on the wire: base64url, no padding.
fn mb(bytes: &[u8]) -> String {
    multibase::encode(multibase::Base::Base64Url, bytes)
}

/// A pubsub topic from its multibase form (Kubo ≥0.11 requires it; a bare string is refused
/// with Kubo's hint).
fn topic_arg(s: &str) -> Result<String, RpcError> {
    let (_, bytes) = multibase::decode(s).map_err(|_| {
        RpcError::normal(format!(
            "pubsub topic {s:?} is not multibase-encoded (clients send topics as multibase since Kubo 0.11)"
        ))
    })?;
    String::from_utf8(bytes).map_err(|_| RpcError::normal("pubsub topic is not UTF-8"))
}

/// Kubo's routing query event types (`routing.QueryEventType`).
const QUERY_PROVIDER: u8 = 4;
const QUERY_FINAL_PEER: u8 = 2;
const QUERY_VALUE: u8 = 5;

fn strings(list: Vec<String>) -> Response {
    json_response(&json!({ "Strings": list }))
}

/// Runs a network command. `upload` is the request's body for the commands that take one
/// (`pubsub/pub`).
pub(crate) async fn run(
    b: Arc<dyn Backend>,
    limits: Limits,
    cmd: &str,
    req: Request,
    upload: Option<crate::Upload>,
) -> Result<Response, RpcError> {
    if cmd == "bootstrap" || cmd.starts_with("bootstrap/") {
        return bootstrap(b, cmd, req).await;
    }
    if b.network().is_none() {
        return Err(match cmd {
            "stats/bw" | "bitswap/stat" | "stats/bitswap" => {
                RpcError::client(format!("unable to run offline: {NOT_ONLINE}"))
            }
            c if c.starts_with("pubsub") => RpcError::normal(OFFLINE_ACTION),
            _ => RpcError::normal(NOT_ONLINE),
        });
    }
    // The network handle, inside a blocking call.
    fn net(b: &Arc<dyn Backend>) -> Result<&dyn NetworkApi, RpcError> {
        b.network().ok_or_else(|| RpcError::normal(NOT_ONLINE))
    }
    Ok(match cmd {
        "swarm/connect" | "swarm/disconnect" => {
            let addrs: Vec<String> = req.args.clone();
            if addrs.is_empty() {
                return Err(RpcError::client("argument \"address\" is required"));
            }
            let connect = cmd == "swarm/connect";
            let lines = blocking(move || {
                let n = net(&b)?;
                addrs
                    .iter()
                    .map(|a| {
                        let verb = if connect { "connect" } else { "disconnect" };
                        let peer = if connect {
                            n.connect(a)?
                        } else {
                            n.disconnect(a)?
                        };
                        Ok(format!("{verb} {peer} success"))
                    })
                    .collect::<Result<Vec<_>, RpcError>>()
            })
            .await?;
            strings(lines)
        }
        "swarm/peers" => {
            let peers = blocking(move || net(&b)?.peers()).await?;
            let latency = req.flag(&["latency"], false)? || req.flag(&["verbose", "v"], false)?;
            let direction =
                req.flag(&["direction"], false)? || req.flag(&["verbose", "v"], false)?;
            let list: Vec<Value> = peers
                .into_iter()
                .map(|p| {
                    let mut v = json!({ "Addr": p.addr, "Peer": p.peer });
                    if latency {
                        v["Latency"] =
                            json!(p.latency.map(|d| format!("{d:?}")).unwrap_or_default());
                    }
                    if direction {
                        v["Direction"] = json!(if p.outbound { 2 } else { 1 });
                    }
                    v
                })
                .collect();
            json_response(&json!({ "Peers": list }))
        }
        "swarm/addrs" => {
            let addrs = blocking(move || net(&b)?.known_addrs()).await?;
            json_response(&json!({ "Addrs": addrs }))
        }
        "swarm/addrs/local" | "swarm/addrs/listen" => {
            let with_id = req.flag(&["id"], false)?;
            let listen = cmd == "swarm/addrs/listen";
            let (addrs, id) = blocking(move || {
                let n = net(&b)?;
                let (l, a) = n.local_addrs()?;
                Ok((if listen { l } else { a }, b.id()?))
            })
            .await?;
            let peer = id["ID"].as_str().unwrap_or_default().to_string();
            strings(
                addrs
                    .into_iter()
                    .map(|a| {
                        if with_id {
                            format!("{a}/p2p/{peer}")
                        } else {
                            a
                        }
                    })
                    .collect(),
            )
        }
        "bitswap/stat" | "stats/bitswap" => {
            json_response(&blocking(move || net(&b)?.bitswap_stat()).await?)
        }
        "bitswap/wantlist" => {
            let peer = req.string(&["peer", "p"]).map(str::to_string);
            let keys = blocking(move || net(&b)?.wantlist(peer.as_deref())).await?;
            let keys: Vec<Value> = keys.into_iter().map(|k| json!({ "/": k })).collect();
            json_response(&json!({ "Keys": keys }))
        }
        "bitswap/ledger" => {
            let peer = req.arg(0, "peer")?.to_string();
            json_response(&blocking(move || net(&b)?.ledger(&peer)).await?)
        }
        "bitswap/reprovide" | "routing/reprovide" => {
            blocking(move || net(&b)?.reprovide()).await?;
            crate::server::ndjson_response(Vec::<Value>::new())
        }
        "stats/provide" => json_response(&blocking(move || net(&b)?.provide_stat()).await?),
        "ping" => {
            let peer = req.arg(0, "peer ID")?.to_string();
            let count = match req.string(&["count", "n"]) {
                None => 10,
                Some(c) => match c.parse::<i64>() {
                    Ok(n) if n > 0 => n as usize,
                    Ok(n) => {
                        return Err(RpcError::normal(format!(
                            "ping count must be greater than 0, was {n}"
                        )))
                    }
                    Err(_) => {
                        return Err(RpcError::client(format!("count: {c:?} is not an integer")))
                    }
                },
            };
            stream_response(limits, true, move |w| {
                net(&b)?.ping(&peer, count, &mut |l| {
                    let mut line = serde_json::to_vec(&json!({
                        "Success": l.success, "Time": l.time_ns, "Text": l.text,
                    }))
                    .map_err(io::Error::other)?;
                    line.push(b'\n');
                    w.write_all(&line)?;
                    w.flush()
                })
            })
            .await
        }
        "pubsub/pub" => {
            let topic = topic_arg(req.arg(0, "topic")?)?;
            let mut upload =
                upload.ok_or_else(|| RpcError::client("argument \"data\" is required"))?;
            blocking(move || {
                let data = upload.first_file(1 << 20, "data")?;
                net(&b)?.publish(&topic, data)
            })
            .await?;
            json_response(&json!({}))
        }
        "pubsub/sub" => {
            let topic = topic_arg(req.arg(0, "topic")?)?;
            stream_response(limits, true, move |w| {
                net(&b)?.subscribe(&topic, &mut |m| {
                    let Some(m) = m else { return w.flush() };
                    let mut line = serde_json::to_vec(&json!({
                        "from": m.from,
                        "data": mb(&m.data),
                        "seqno": mb(&m.seqno),
                        "topicIDs": [mb(m.topic.as_bytes())],
                    }))
                    .map_err(io::Error::other)?;
                    line.push(b'\n');
                    w.write_all(&line)
                })
            })
            .await
        }
        "pubsub/ls" => {
            let topics = blocking(move || net(&b)?.topics()).await?;
            strings(topics.iter().map(|t| mb(t.as_bytes())).collect())
        }
        "pubsub/peers" => {
            let topic = req.args.first().map(|t| topic_arg(t)).transpose()?;
            strings(blocking(move || net(&b)?.pubsub_peers(topic.as_deref())).await?)
        }
        "routing/findprovs" | "dht/findprovs" => {
            let cid = req.arg(0, "key")?.to_string();
            let limit = req.uint(&["num-providers", "n"])?.unwrap_or(20) as usize;
            if limit == 0 {
                return Err(RpcError::client(
                    "number of providers must be greater than 0",
                ));
            }
            stream_response(limits, true, move |w| {
                net(&b)?.find_providers(&cid, limit, &mut |peer, addrs| {
                    let mut line = serde_json::to_vec(&json!({
                        "Extra": "", "ID": "", "Type": QUERY_PROVIDER,
                        "Responses": [{ "ID": peer, "Addrs": addrs }],
                    }))
                    .map_err(io::Error::other)?;
                    line.push(b'\n');
                    w.write_all(&line)
                })
            })
            .await
        }
        "routing/findpeer" | "dht/findpeer" => {
            let peer = req.arg(0, "peerID")?.to_string();
            let p2 = peer.clone();
            let addrs = blocking(move || net(&b)?.find_peer(&p2)).await?;
            crate::server::ndjson_response(vec![json!({
                "Extra": "", "ID": "", "Type": QUERY_FINAL_PEER,
                "Responses": [{ "ID": peer, "Addrs": addrs }],
            })])
        }
        "routing/provide" | "dht/provide" => {
            let cids: Vec<String> = req.args.clone();
            if cids.is_empty() {
                return Err(RpcError::client("argument \"key\" is required"));
            }
            let recursive = req.flag(&["recursive", "r"], false)?;
            blocking(move || net(&b)?.provide(&cids, recursive)).await?;
            crate::server::ndjson_response(Vec::<Value>::new())
        }
        "routing/get" | "dht/get" => {
            let key = req.arg(0, "key")?.to_string();
            let value = blocking(move || net(&b)?.get_value(&key)).await?;
            use base64::Engine as _;
            crate::server::ndjson_response(vec![json!({
                "Extra": base64::engine::general_purpose::STANDARD.encode(value),
                "ID": "", "Responses": null, "Type": QUERY_VALUE,
            })])
        }
        "routing/put" | "dht/put" => {
            let key = req.arg(0, "key")?.to_string();
            let mut upload =
                upload.ok_or_else(|| RpcError::client("argument \"value-file\" is required"))?;
            let peer = blocking(move || {
                let value = upload.first_file(crate::MAX_ROUTING_VALUE, "value-file")?;
                net(&b)?.put_value(&key, value)
            })
            .await?;
            crate::server::ndjson_response(vec![json!({
                "Extra": "", "ID": peer, "Responses": null, "Type": QUERY_VALUE,
            })])
        }
        "dht/query" => {
            let peer = req.arg(0, "peerID")?.to_string();
            let peers = blocking(move || net(&b)?.closest_peers(&peer)).await?;
            crate::server::ndjson_response(
                peers
                    .into_iter()
                    .map(|(id, addrs)| {
                        json!({
                            "Extra": "", "ID": id, "Type": QUERY_FINAL_PEER,
                            "Responses": [{ "ID": id, "Addrs": addrs }],
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        }
        "stats/bw" => {
            let proto = req.string(&["proto", "t"]).map(str::to_string);
            let peer = req.string(&["peer", "p"]).map(str::to_string);
            if proto.is_some() && peer.is_some() {
                return Err(RpcError::normal("please only specify peer OR protocol"));
            }
            let poll = req.flag(&["poll"], false)?;
            let interval = match req.string(&["interval", "i"]) {
                None => std::time::Duration::from_secs(1),
                Some(i) => parse_interval(i)?,
            };
            let line = |bw: Bandwidth| {
                json!({
                    "TotalIn": bw.total_in, "TotalOut": bw.total_out,
                    "RateIn": bw.rate_in, "RateOut": bw.rate_out,
                })
            };
            if !poll {
                let bw =
                    blocking(move || net(&b)?.bandwidth(proto.as_deref(), peer.as_deref())).await?;
                return Ok(json_response(&line(bw)));
            }
            // `--poll`: one object per interval until the client goes away.
            stream_response(limits, true, move |w| loop {
                let bw = net(&b)?.bandwidth(proto.as_deref(), peer.as_deref())?;
                let mut bytes = serde_json::to_vec(&line(bw))
                    .map_err(|e| RpcError::normal(format!("encode: {e}")))?;
                bytes.push(b'\n');
                if w.write_all(&bytes).and_then(|_| w.flush()).is_err() {
                    return Ok(());
                }
                std::thread::sleep(interval);
            })
            .await
        }
        _ => {
            return Err(RpcError::normal(format!(
                "{cmd} is not supported by ipfs-kit yet"
            )))
        }
    })
}

/// `stats/bw`'s `interval`: a Go duration of at least 10 ms (`500ms`, `2s`, `1m`).
fn parse_interval(s: &str) -> Result<std::time::Duration, RpcError> {
    let bad = || RpcError::client(format!("interval: {s:?} is not a duration such as 1s"));
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let n: f64 = s[..split].parse().map_err(|_| bad())?;
    let secs = match &s[split..] {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(RpcError::client("interval must be between 10ms and 24h"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `bootstrap list|add|add/default|rm|rm/all`: edits `network.bootstrap` in the config.
async fn bootstrap(b: Arc<dyn Backend>, cmd: &str, req: Request) -> Result<Response, RpcError> {
    let args = req.args.clone();
    let edit = match cmd {
        "bootstrap" | "bootstrap/list" => None,
        "bootstrap/add/default" => Some(BootstrapEdit::AddDefault),
        "bootstrap/add" if req.flag(&["default"], false)? => Some(BootstrapEdit::AddDefault),
        "bootstrap/add" => Some(BootstrapEdit::Add(args)),
        "bootstrap/rm/all" => Some(BootstrapEdit::RemoveAll),
        "bootstrap/rm" if req.flag(&["all"], false)? => Some(BootstrapEdit::RemoveAll),
        "bootstrap/rm" => Some(BootstrapEdit::Remove(args)),
        _ => return Err(RpcError::normal(format!("unknown command {cmd:?}"))),
    };
    let peers = blocking(move || b.bootstrap(edit)).await?;
    Ok(json_response(&json!({ "Peers": peers })))
}
