//! HTTP load against a running daemon: `rpc-cat` (the RPC API's `cat` over TCP and over the
//! Unix socket, interleaved) and `load` (a mixed soak of gateway reads, RPC reads and adds at
//! many connections, with the daemon's memory before and after).
//!
//! The client is hyper on persistent HTTP/1.1 connections, one task per connection, each
//! sending its next request when the previous answer has been read in full: a closed loop, so
//! the figures are what the server sustains, not what a queue absorbs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;

/// Where a server listens.
#[derive(Clone, Debug)]
pub enum Target {
    /// TCP.
    Tcp(SocketAddr),
    /// A Unix socket.
    Unix(PathBuf),
}

/// One request to send.
#[derive(Clone, Debug)]
pub struct Req {
    post: bool,
    uri: String,
    content_type: Option<String>,
    body: Bytes,
}

impl Req {
    fn get(uri: String) -> Req {
        Req {
            post: false,
            uri,
            content_type: None,
            body: Bytes::new(),
        }
    }

    fn post(uri: String) -> Req {
        Req {
            post: true,
            uri,
            content_type: None,
            body: Bytes::new(),
        }
    }

    /// An `add` of `data` as one multipart file part.
    fn add(data: &[u8]) -> Req {
        let boundary = "ipfs-kit-bench-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Req {
            post: true,
            uri: "/api/v0/add?pin=false".into(),
            content_type: Some(format!("multipart/form-data; boundary={boundary}")),
            body: body.into(),
        }
    }
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct Stats {
    latencies: Vec<Duration>,
    bytes: u64,
    errors: u64,
    elapsed: Duration,
    first_error: Option<String>,
}

impl Stats {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let mut v = self.latencies.clone();
        v.sort();
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v[i].as_secs_f64() * 1e3
    }

    fn json(&self) -> serde_json::Value {
        let secs = self.elapsed.as_secs_f64();
        json!({
            "requests": self.latencies.len(),
            "errors": self.errors,
            "first_error": self.first_error,
            "req_per_s": self.latencies.len() as f64 / secs,
            "mib_per_s": self.bytes as f64 / secs / (1 << 20) as f64,
            "p50_ms": self.percentile(0.5),
            "p99_ms": self.percentile(0.99),
        })
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Io for T {}

async fn connect(target: &Target) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let io: Box<dyn Io> = match target {
        Target::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a).await?;
            s.set_nodelay(true)?;
            Box::new(s)
        }
        Target::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
    };
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends requests from `next` on `conns` connections for `duration`; every answer must be 2xx.
pub fn run(
    target: &Target,
    conns: usize,
    duration: Duration,
    next: Arc<dyn Fn(u64) -> Req + Send + Sync>,
) -> Result<Stats> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..conns {
            let (target, stop, counter, next) =
                (target.clone(), stop.clone(), counter.clone(), next.clone());
            tasks.spawn(async move {
                let mut stats = Stats::default();
                let mut sender = None;
                while !stop.load(Ordering::Relaxed) {
                    let req = next(counter.fetch_add(1, Ordering::Relaxed));
                    let t = Instant::now();
                    let result: Result<u64> = async {
                        if sender.as_ref().is_none_or(
                            |s: &hyper::client::conn::http1::SendRequest<_>| s.is_closed(),
                        ) {
                            sender = Some(connect(&target).await?);
                        }
                        let s = sender.as_mut().context("connection")?;
                        s.ready().await?;
                        let mut b = hyper::Request::builder()
                            .method(if req.post { "POST" } else { "GET" })
                            .uri(&req.uri)
                            .header("host", "127.0.0.1");
                        if let Some(ct) = &req.content_type {
                            b = b.header("content-type", ct);
                        }
                        let resp = s.send_request(b.body(Full::new(req.body.clone()))?).await?;
                        let status = resp.status();
                        let body = resp.into_body().collect().await?.to_bytes();
                        if !status.is_success() {
                            bail!(
                                "{} {status}: {}",
                                req.uri,
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            );
                        }
                        Ok(body.len() as u64)
                    }
                    .await;
                    match result {
                        Ok(n) => {
                            stats.latencies.push(t.elapsed());
                            stats.bytes += n;
                        }
                        Err(e) => {
                            stats.errors += 1;
                            stats.first_error.get_or_insert_with(|| format!("{e:#}"));
                            sender = None;
                        }
                    }
                }
                stats
            });
        }
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Stats::default();
        while let Some(s) = tasks.join_next().await {
            let s = s?;
            all.latencies.extend(s.latencies);
            all.bytes += s.bytes;
            all.errors += s.errors;
            if all.first_error.is_none() {
                all.first_error = s.first_error;
            }
        }
        all.elapsed = start.elapsed();
        Ok(all)
    })
}

/// A daemon on a throwaway repo, listening on an ephemeral TCP port, a Unix socket and (when
/// the binary has one) an ephemeral gateway port.
pub struct Daemon {
    child: Child,
    /// The RPC API over TCP.
    pub tcp: Target,
    /// The RPC API over its Unix socket.
    pub unix: Target,
    /// The gateway, if served.
    pub gateway: Option<Target>,
    _dir: tempfile::TempDir,
}

fn tcp_of(line: &str) -> Option<Target> {
    let rest = line.split("/ip4/").nth(1)?;
    let (ip, port) = rest.split_once("/tcp/")?;
    format!("{ip}:{}", port.trim())
        .parse()
        .ok()
        .map(Target::Tcp)
}

impl Daemon {
    /// Starts `bin daemon --init` and waits until it is ready.
    pub fn start(bin: &Path, work: &Path) -> Result<Daemon> {
        std::fs::create_dir_all(work)?;
        let dir = tempfile::tempdir_in(work)?;
        let repo = dir.path().join("repo");
        let sock = dir.path().join("api.sock");
        let mut child = Command::new(bin)
            .args([
                "daemon",
                "--init",
                "--gateway",
                "/ip4/127.0.0.1/tcp/0",
                "--swarm",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
            ])
            .arg(format!("/unix{}", sock.display()))
            .env("IPFS_KIT_PATH", &repo)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let out = child.stdout.take().context("daemon stdout")?;
        let (mut tcp, mut gateway) = (None, None);
        for line in BufReader::new(out).lines() {
            let line = line?;
            if line.starts_with("RPC API server listening on /ip4/") {
                tcp = tcp_of(&line);
            } else if line.starts_with("Gateway server listening on /ip4/") {
                gateway = tcp_of(&line);
            } else if line == "Daemon is ready" {
                break;
            }
        }
        Ok(Daemon {
            child,
            tcp: tcp.context("the daemon printed no TCP API address")?,
            unix: Target::Unix(sock),
            gateway,
            _dir: dir,
        })
    }

    /// Resident and peak memory of the daemon, KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Adds `data` through the API and returns its CID.
    pub fn add(&self, data: &[u8]) -> Result<String> {
        let mut req = Req::add(data);
        req.uri = "/api/v0/add?pin=true".into();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let body = rt.block_on(async {
            let mut s = connect(&self.tcp).await?;
            let r = hyper::Request::post(&req.uri)
                .header("host", "127.0.0.1")
                .header("content-type", req.content_type.clone().unwrap_or_default())
                .body(Full::new(req.body.clone()))?;
            let resp = s.send_request(r).await?;
            anyhow::Ok(resp.into_body().collect().await?.to_bytes())
        })?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        v["Hash"]
            .as_str()
            .map(str::to_string)
            .context("add answered no Hash")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `n` pseudo-random bytes (xorshift), distinct per `seed`.
pub(crate) fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `cat` of a 4 KiB and a 1 MiB file over TCP and over the Unix socket, interleaved.
pub fn rpc_cat(bin: &Path, work: &Path, conns: usize, secs: u64, runs: usize) -> Result<()> {
    let d = Daemon::start(bin, work)?;
    let load_before = crate::loadavg();
    let mut report = Vec::new();
    for (label, size) in [("4KiB", 4usize << 10), ("1MiB", 1 << 20)] {
        let cid = d.add(&pseudo_random(size, size as u64))?;
        let uri = format!("/api/v0/cat?arg={cid}");
        let next: Arc<dyn Fn(u64) -> Req + Send + Sync> = Arc::new(move |_| Req::post(uri.clone()));
        let (mut tcp, mut unix) = (Vec::new(), Vec::new());
        // One warm-up each, then A/B/A/B.
        run(&d.tcp, conns, Duration::from_secs(1), next.clone())?;
        run(&d.unix, conns, Duration::from_secs(1), next.clone())?;
        for _ in 0..runs {
            for (target, into) in [(&d.tcp, &mut tcp), (&d.unix, &mut unix)] {
                let s = run(target, conns, Duration::from_secs(secs), next.clone())?;
                if s.errors > 0 {
                    bail!("{label}: {} errors, first: {:?}", s.errors, s.first_error);
                }
                into.push(s.json());
            }
        }
        let med = |v: &[serde_json::Value], k: &str| {
            median(v.iter().filter_map(|x| x[k].as_f64()).collect())
        };
        for (name, v) in [("tcp", &tcp), ("unix", &unix)] {
            report.push(json!({
                "file": label, "transport": name, "connections": conns,
                "req_per_s": med(v, "req_per_s"), "mib_per_s": med(v, "mib_per_s"),
                "p50_ms": med(v, "p50_ms"), "p99_ms": med(v, "p99_ms"), "runs": v,
            }));
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "bench": "rpc-cat", "seconds_per_run": secs, "runs": runs,
            "load_before": load_before, "load_after": crate::loadavg(), "results": report,
        }))?
    );
    Ok(())
}

/// A mixed soak: gateway GETs (when served), RPC `cat`s and small adds on `conns` connections.
pub fn soak(
    bin: &Path,
    work: &Path,
    conns: usize,
    secs: u64,
    adds: bool,
    rounds: usize,
) -> Result<()> {
    let d = Daemon::start(bin, work)?;
    let files: Vec<String> = (0..16)
        .map(|i| {
            d.add(&pseudo_random(
                if i % 2 == 0 { 4 << 10 } else { 1 << 20 },
                i + 1,
            ))
        })
        .collect::<Result<_>>()?;
    let (rss_before, _) = d.rss_kib();
    let load_before = crate::loadavg();
    let files = Arc::new(files);
    let mut results = Vec::new();
    // The RPC side: two cats for every add.
    let f = files.clone();
    let rpc: Arc<dyn Fn(u64) -> Req + Send + Sync> = Arc::new(move |n| match n % 3 {
        2 if adds => Req::add(&pseudo_random(8 << 10, n)),
        _ => Req::post(format!("/api/v0/cat?arg={}", f[n as usize % f.len()])),
    });
    let (rpc_conns, gw_conns) = match d.gateway {
        Some(_) => (conns / 2, conns - conns / 2),
        None => (conns, 0),
    };
    let gw_target = d.gateway.clone();
    let f = files.clone();
    let gw: Arc<dyn Fn(u64) -> Req + Send + Sync> =
        Arc::new(move |n| Req::get(format!("/ipfs/{}", f[n as usize % f.len()])));
    let duration = Duration::from_secs(secs);
    // Several rounds on one daemon: memory that keeps growing round after round would be a
    // leak; a plateau is the bounded working set.
    let mut rss_after_round = Vec::new();
    for _ in 0..rounds.max(1) {
        let (gw, rpc) = (gw.clone(), rpc.clone());
        std::thread::scope(|s| -> Result<()> {
            let gw_run = gw_target
                .as_ref()
                .map(|t| s.spawn(move || run(t, gw_conns, duration, gw)));
            let rpc_stats = run(&d.tcp, rpc_conns, duration, rpc)?;
            results.push(json!({ "side": "rpc (2 cat : 1 add of 8 KiB)", "connections": rpc_conns, "stats": rpc_stats.json() }));
            if let Some(h) = gw_run {
                let g = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("gateway load panicked"))??;
                results.push(
                    json!({ "side": "gateway GET", "connections": gw_conns, "stats": g.json() }),
                );
            }
            Ok(())
        })?;
        rss_after_round.push(d.rss_kib().0);
    }
    let (rss_after, peak) = d.rss_kib();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "bench": "soak", "seconds": secs, "connections": conns,
            "rss_kib_before": rss_before, "rss_kib_after": rss_after, "rss_kib_peak": peak,
            "rss_kib_after_each_round": rss_after_round,
            "load_before": load_before, "load_after": crate::loadavg(), "results": results,
        }))?
    );
    Ok(())
}
