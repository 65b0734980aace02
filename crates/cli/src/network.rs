//! The network commands (`swarm`, `bitswap`, `pubsub`, `routing`, `bootstrap`): all but
//! `bootstrap` talk to the running daemon, which owns the libp2p node.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Subcommand;
use ipfs_kit_node::Repo;
use ipfs_kit_rpc::BootstrapEdit;
use serde_json::Value;

use crate::remote::{self, Api};

/// Kubo's words for a network command run with no daemon.
pub(crate) const NEED_DAEMON: &str =
    "this command must be run in online mode. Try running 'ipfs-kit daemon' first";

/// `swarm`: connections to other peers.
#[derive(Subcommand, Debug)]
pub enum SwarmCmd {
    /// Open a connection to a peer: a multiaddr ending in /p2p/<peer ID>.
    Connect {
        /// Addresses to dial.
        #[arg(required = true)]
        addrs: Vec<String>,
    },
    /// Close every connection to the peers these multiaddrs (or peer IDs) name.
    Disconnect {
        /// Addresses or peer IDs.
        #[arg(required = true)]
        addrs: Vec<String>,
    },
    /// List connected peers, one address per line.
    Peers,
    /// Addresses: of known peers (no argument), or this node's.
    Addrs {
        /// `local` (announced) or `listen`.
        #[command(subcommand)]
        which: Option<AddrsCmd>,
    },
}

/// `swarm addrs local|listen`.
#[derive(Subcommand, Debug)]
pub enum AddrsCmd {
    /// The addresses this node announces.
    Local {
        /// Append /p2p/<our peer ID>.
        #[arg(long)]
        id: bool,
    },
    /// The addresses this node listens on.
    Listen,
}

/// `bitswap`: the block exchange.
#[derive(Subcommand, Debug)]
pub enum BitswapCmd {
    /// Counters, our wantlist and our bitswap partners.
    Stat,
    /// The blocks we want, or (with --peer) what a peer wants from us.
    Wantlist {
        /// A peer ID.
        #[arg(long, short)]
        peer: Option<String>,
    },
    /// What we exchanged with a peer.
    Ledger {
        /// The peer ID.
        peer: String,
    },
    /// Announce every key of the reprovider strategy to the DHT now, and wait.
    Reprovide,
}

/// `pubsub`: gossipsub messaging (the daemon needs --enable-pubsub-experiment or
/// network.pubsub).
#[derive(Subcommand, Debug)]
pub enum PubsubCmd {
    /// Publish a message read from FILE (or standard input).
    Pub {
        /// The topic.
        topic: String,
        /// The message; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Print messages on a topic as they arrive, until interrupted.
    Sub {
        /// The topic.
        topic: String,
    },
    /// Topics this node is subscribed to.
    Ls,
    /// Peers we exchange pubsub messages with (on TOPIC, or any).
    Peers {
        /// The topic.
        topic: Option<String>,
    },
}

/// `routing`: the Kademlia DHT.
#[derive(Subcommand, Debug)]
pub enum RoutingCmd {
    /// Find peers that provide a CID.
    Findprovs {
        /// The CID.
        cid: String,
        /// Stop after this many.
        #[arg(long, short = 'n', default_value_t = 20)]
        num_providers: u64,
    },
    /// Find the addresses of a peer.
    Findpeer {
        /// The peer ID.
        peer: String,
    },
    /// Announce to the DHT that this node provides CIDs (stored here), and wait.
    Provide {
        /// The CIDs.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Provide every block of each DAG.
        #[arg(long, short)]
        recursive: bool,
    },
    /// Print the best value stored under a key (`/ipns/<name>`, `/pk/<peer ID>`).
    Get {
        /// The key.
        key: String,
    },
    /// Put a value (an IPNS record, a public key) under a key, validated first.
    Put {
        /// The key.
        key: String,
        /// The value; `-` or nothing reads standard input.
        file: Option<PathBuf>,
    },
    /// Announce every key of the reprovider strategy now, and wait.
    Reprovide,
}

/// `dht`: Kademlia queries.
#[derive(Subcommand, Debug)]
pub enum DhtCmd {
    /// The peers closest to a peer ID in the DHT.
    Query {
        /// The peer ID.
        peer: String,
    },
}

/// `ping`: round trips to a peer over libp2p's ping protocol.
#[derive(clap::Args, Debug)]
pub struct PingArgs {
    /// A peer ID, or a multiaddr ending in /p2p/<peer ID>.
    pub peer: String,
    /// Number of pings.
    #[arg(long, short = 'n', default_value_t = 10)]
    pub count: i64,
}

/// `stats`: network statistics.
#[derive(Subcommand, Debug)]
pub enum StatsCmd {
    /// Bandwidth: totals and rates, overall, for one protocol or for one peer.
    Bw {
        /// One peer's traffic.
        #[arg(long, short)]
        peer: Option<String>,
        /// One protocol's traffic, such as /ipfs/bitswap/1.2.0.
        #[arg(long, short = 't')]
        proto: Option<String>,
        /// Print the figures every interval until interrupted.
        #[arg(long)]
        poll: bool,
        /// The interval for --poll (500ms, 1s, 1m).
        #[arg(long, short, default_value = "1s")]
        interval: String,
    },
    /// Providing: keys provided, time taken, the last reprovide.
    Provide,
}

/// `bootstrap`: the peers the daemon dials at start (network.bootstrap).
#[derive(Subcommand, Debug)]
pub enum BootstrapCmd {
    /// Show the list.
    List,
    /// Add peers (multiaddrs ending in /p2p/<peer ID>); --default adds Kubo's public list.
    Add {
        /// Addresses.
        addrs: Vec<String>,
        /// Add the public IPFS bootstrap peers (never on machines that must stay private).
        #[arg(long)]
        default: bool,
    },
    /// Remove peers; --all empties the list.
    Rm {
        /// Addresses.
        addrs: Vec<String>,
        /// Remove every peer.
        #[arg(long)]
        all: bool,
    },
}

/// A network command, for dispatch.
pub enum NetCmd {
    /// `swarm …`.
    Swarm(SwarmCmd),
    /// `bitswap …`.
    Bitswap(BitswapCmd),
    /// `pubsub …`.
    Pubsub(PubsubCmd),
    /// `routing …`.
    Routing(RoutingCmd),
    /// `dht …`.
    Dht(DhtCmd),
    /// `bootstrap …`.
    Bootstrap(BootstrapCmd),
    /// `ping …`.
    Ping(PingArgs),
    /// `stats …`.
    Stats(StatsCmd),
}

/// Bytes as go-humanize writes them (SI units), as Kubo prints bandwidth.
fn human_bytes(n: f64) -> String {
    if n < 10.0 {
        return format!("{:.0} B", n.max(0.0));
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let e = (n.log10() / 3.0).floor().min(6.0) as i32;
    let v = n / 1000f64.powi(e);
    if v < 10.0 {
        format!("{v:.1} {}", units[e as usize])
    } else {
        format!("{v:.0} {}", units[e as usize])
    }
}

fn print_bw(out: &mut dyn Write, v: &Value) -> Result<()> {
    let n = |k: &str| v[k].as_f64().unwrap_or(0.0);
    writeln!(out, "Bandwidth")?;
    writeln!(out, "TotalIn: {}", human_bytes(n("TotalIn")))?;
    writeln!(out, "TotalOut: {}", human_bytes(n("TotalOut")))?;
    writeln!(out, "RateIn: {}/s", human_bytes(n("RateIn")))?;
    writeln!(out, "RateOut: {}/s", human_bytes(n("RateOut")))?;
    Ok(())
}

fn arg(v: &str) -> (&'static str, String) {
    ("arg", v.to_string())
}

/// Kubo's multibase (base64url) for pubsub topics.
fn topic(t: &str) -> (&'static str, String) {
    ("arg", multibase::encode(multibase::Base::Base64Url, t))
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn print_lines(out: &mut dyn Write, lines: &[String]) -> Result<()> {
    for l in lines {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

/// The edit a `bootstrap` subcommand asks for (`None`: list).
fn bootstrap_edit(cmd: BootstrapCmd) -> Option<BootstrapEdit> {
    match cmd {
        BootstrapCmd::List => None,
        BootstrapCmd::Add { default: true, .. } => Some(BootstrapEdit::AddDefault),
        BootstrapCmd::Add { addrs, .. } => Some(BootstrapEdit::Add(addrs)),
        BootstrapCmd::Rm { all: true, .. } => Some(BootstrapEdit::RemoveAll),
        BootstrapCmd::Rm { addrs, .. } => Some(BootstrapEdit::Remove(addrs)),
    }
}

/// Runs a network command with no daemon: only `bootstrap`, which edits the config.
pub fn run_local(repo: &Repo, cmd: NetCmd, out: &mut dyn Write) -> Result<()> {
    let NetCmd::Bootstrap(cmd) = cmd else {
        bail!("{NEED_DAEMON}");
    };
    print_lines(out, &repo.bootstrap(bootstrap_edit(cmd))?)
}

/// Runs a network command through the daemon.
pub fn run_remote(api: &Api, cmd: NetCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        NetCmd::Swarm(c) => match c {
            SwarmCmd::Connect { addrs } => {
                let q: Vec<_> = addrs.iter().map(|a| arg(a)).collect();
                print_lines(out, &strings(&api.json("swarm/connect", &q)?, "Strings"))?;
            }
            SwarmCmd::Disconnect { addrs } => {
                let q: Vec<_> = addrs.iter().map(|a| arg(a)).collect();
                print_lines(out, &strings(&api.json("swarm/disconnect", &q)?, "Strings"))?;
            }
            SwarmCmd::Peers => {
                let v = api.json("swarm/peers", &[])?;
                for p in v["Peers"].as_array().into_iter().flatten() {
                    let (addr, peer) = (p["Addr"].as_str(), p["Peer"].as_str());
                    writeln!(out, "{}/p2p/{}", addr.unwrap_or(""), peer.unwrap_or(""))?;
                }
            }
            SwarmCmd::Addrs { which: None } => {
                let v = api.json("swarm/addrs", &[])?;
                for (peer, addrs) in v["Addrs"].as_object().into_iter().flatten() {
                    let addrs: Vec<&str> = addrs
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    writeln!(out, "{peer} ({})", addrs.len())?;
                    for a in addrs {
                        writeln!(out, "\t{a}")?;
                    }
                }
            }
            SwarmCmd::Addrs {
                which: Some(AddrsCmd::Local { id }),
            } => {
                let v = api.json("swarm/addrs/local", &[("id", id.to_string())])?;
                print_lines(out, &strings(&v, "Strings"))?;
            }
            SwarmCmd::Addrs {
                which: Some(AddrsCmd::Listen),
            } => {
                let v = api.json("swarm/addrs/listen", &[])?;
                print_lines(out, &strings(&v, "Strings"))?;
            }
        },
        NetCmd::Bitswap(c) => match c {
            BitswapCmd::Stat => {
                let v = api.json("bitswap/stat", &[])?;
                let n = |k: &str| v[k].as_u64().unwrap_or(0);
                writeln!(out, "bitswap status")?;
                writeln!(out, "\tblocks received: {}", n("BlocksReceived"))?;
                writeln!(out, "\tblocks sent: {}", n("BlocksSent"))?;
                writeln!(out, "\tdata received: {}", n("DataReceived"))?;
                writeln!(out, "\tdata sent: {}", n("DataSent"))?;
                writeln!(out, "\tdup blocks received: {}", n("DupBlksReceived"))?;
                writeln!(out, "\tdup data received: {}", n("DupDataReceived"))?;
                let wants: Vec<&Value> = v["Wantlist"].as_array().into_iter().flatten().collect();
                writeln!(out, "\twantlist [{} keys]", wants.len())?;
                for w in wants {
                    writeln!(out, "\t\t{}", w["/"].as_str().unwrap_or(""))?;
                }
                let peers = strings(&v, "Peers");
                writeln!(out, "\tpartners [{}]", peers.len())?;
                for p in peers {
                    writeln!(out, "\t\t{p}")?;
                }
            }
            BitswapCmd::Wantlist { peer } => {
                let q: Vec<_> = peer.iter().map(|p| ("peer", p.clone())).collect();
                let v = api.json("bitswap/wantlist", &q)?;
                for k in v["Keys"].as_array().into_iter().flatten() {
                    writeln!(out, "{}", k["/"].as_str().unwrap_or(""))?;
                }
            }
            BitswapCmd::Ledger { peer } => {
                let v = api.json("bitswap/ledger", &[arg(&peer)])?;
                writeln!(out, "Ledger for {}", v["Peer"].as_str().unwrap_or(""))?;
                writeln!(out, "Debt ratio:\t{}", v["Value"])?;
                writeln!(out, "Exchanges:\t{}", v["Exchanged"])?;
                writeln!(out, "Bytes sent:\t{}", v["Sent"])?;
                writeln!(out, "Bytes received:\t{}", v["Recv"])?;
            }
            BitswapCmd::Reprovide => {
                api.lines("bitswap/reprovide", &[], None, &mut |_| Ok(()))?;
            }
        },
        NetCmd::Pubsub(c) => match c {
            PubsubCmd::Pub { topic: t, file } => {
                api.lines(
                    "pubsub/pub",
                    &[topic(&t)],
                    Some(remote::input_part(&file)),
                    &mut |_| Ok(()),
                )?;
            }
            PubsubCmd::Sub { topic: t } => {
                api.lines("pubsub/sub", &[topic(&t)], None, &mut |v| {
                    let data = v["data"].as_str().unwrap_or("");
                    let bytes = multibase::decode(data).map(|(_, b)| b).unwrap_or_default();
                    out.write_all(&bytes)?;
                    out.write_all(b"\n")?;
                    out.flush()?;
                    Ok(())
                })?;
            }
            PubsubCmd::Ls => {
                let v = api.json("pubsub/ls", &[])?;
                for t in strings(&v, "Strings") {
                    let name = multibase::decode(&t)
                        .ok()
                        .and_then(|(_, b)| String::from_utf8(b).ok())
                        .unwrap_or(t);
                    writeln!(out, "{name}")?;
                }
            }
            PubsubCmd::Peers { topic: t } => {
                let q: Vec<_> = t.iter().map(|t| topic(t)).collect();
                print_lines(out, &strings(&api.json("pubsub/peers", &q)?, "Strings"))?;
            }
        },
        NetCmd::Routing(c) => match c {
            RoutingCmd::Findprovs { cid, num_providers } => {
                let q = [arg(&cid), ("num-providers", num_providers.to_string())];
                api.lines("routing/findprovs", &q, None, &mut |v| {
                    for r in v["Responses"].as_array().into_iter().flatten() {
                        writeln!(out, "{}", r["ID"].as_str().unwrap_or(""))?;
                    }
                    Ok(())
                })?;
            }
            RoutingCmd::Findpeer { peer } => {
                api.lines("routing/findpeer", &[arg(&peer)], None, &mut |v| {
                    for r in v["Responses"].as_array().into_iter().flatten() {
                        for a in r["Addrs"].as_array().into_iter().flatten() {
                            writeln!(out, "{}", a.as_str().unwrap_or(""))?;
                        }
                    }
                    Ok(())
                })?;
            }
            RoutingCmd::Provide { cids, recursive } => {
                let mut q: Vec<_> = cids.iter().map(|c| arg(c)).collect();
                q.push(("recursive", recursive.to_string()));
                api.lines("routing/provide", &q, None, &mut |_| Ok(()))?;
            }
            RoutingCmd::Get { key } => {
                api.lines("routing/get", &[arg(&key)], None, &mut |v| {
                    use base64::Engine as _;
                    let extra = v["Extra"].as_str().unwrap_or("");
                    let value = base64::engine::general_purpose::STANDARD
                        .decode(extra)
                        .map_err(std::io::Error::other)?;
                    out.write_all(&value)?;
                    Ok(())
                })?;
            }
            RoutingCmd::Put { key, file } => {
                api.lines(
                    "routing/put",
                    &[arg(&key)],
                    Some(remote::input_part(&file)),
                    &mut |v| {
                        writeln!(out, "{}", v["ID"].as_str().unwrap_or(""))?;
                        Ok(())
                    },
                )?;
            }
            RoutingCmd::Reprovide => {
                api.lines("routing/reprovide", &[], None, &mut |_| Ok(()))?;
            }
        },
        NetCmd::Dht(DhtCmd::Query { peer }) => {
            api.lines("dht/query", &[arg(&peer)], None, &mut |v| {
                if v["Type"].as_u64() == Some(2) {
                    writeln!(out, "{}", v["ID"].as_str().unwrap_or(""))?;
                }
                Ok(())
            })?;
        }
        NetCmd::Ping(a) => {
            let q = [arg(&a.peer), ("count", a.count.to_string())];
            api.lines("ping", &q, None, &mut |v| {
                let text = v["Text"].as_str().unwrap_or("");
                if !text.is_empty() {
                    writeln!(out, "{text}")?;
                } else if v["Success"].as_bool() == Some(true) {
                    let ms = v["Time"].as_f64().unwrap_or(0.0) / 1e6;
                    writeln!(out, "Pong received: time={ms:.2} ms")?;
                } else {
                    writeln!(out, "Pong failed")?;
                }
                out.flush()?;
                Ok(())
            })?;
        }
        NetCmd::Stats(StatsCmd::Bw {
            peer,
            proto,
            poll,
            interval,
        }) => {
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(p) = peer {
                q.push(("peer", p));
            }
            if let Some(p) = proto {
                q.push(("proto", p));
            }
            if poll {
                q.push(("poll", "true".into()));
                q.push(("interval", interval));
                api.lines("stats/bw", &q, None, &mut |v| {
                    print_bw(out, &v)?;
                    out.flush()?;
                    Ok(())
                })?;
            } else {
                print_bw(out, &api.json("stats/bw", &q)?)?;
            }
        }
        NetCmd::Stats(StatsCmd::Provide) => {
            let v = api.json("stats/provide", &[])?;
            let ms = |k: &str| v[k].as_f64().unwrap_or(0.0) / 1e6;
            writeln!(out, "TotalProvides:          {}", v["TotalProvides"])?;
            writeln!(
                out,
                "AvgProvideDuration:     {:.3}ms",
                ms("AvgProvideDuration")
            )?;
            writeln!(
                out,
                "LastReprovideDuration:  {:.3}ms",
                ms("LastReprovideDuration")
            )?;
            writeln!(
                out,
                "LastReprovideBatchSize: {}",
                v["LastReprovideBatchSize"]
            )?;
        }
        NetCmd::Bootstrap(c) => {
            let v = match c {
                BootstrapCmd::List => api.json("bootstrap/list", &[])?,
                BootstrapCmd::Add { addrs, default } => {
                    let mut q: Vec<_> = addrs.iter().map(|a| arg(a)).collect();
                    if default {
                        q.push(("default", "true".into()));
                    }
                    api.json("bootstrap/add", &q)?
                }
                BootstrapCmd::Rm { addrs, all } => {
                    let mut q: Vec<_> = addrs.iter().map(|a| arg(a)).collect();
                    if all {
                        q.push(("all", "true".into()));
                    }
                    api.json("bootstrap/rm", &q)?
                }
            };
            print_lines(out, &strings(&v, "Peers"))?;
        }
    }
    Ok(())
}
