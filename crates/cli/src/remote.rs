//! Running commands through a daemon's RPC API, as Kubo's CLI does when a daemon holds the
//! repo: the same command line, sent to `/api/v0` over TCP or a Unix socket, with the answer
//! printed as the local command prints it.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use ipfs_kit_node::daemon::Listen;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::names::{self, FilesCmd, KeyCmd, NameCmd};
use crate::{progress_bar, AddArgs, BlockCmd, Cmd, ConfigCmd, DagCmd, PinCmd, RepoCmd};

/// A daemon's API endpoint.
pub struct Api {
    target: Listen,
    auth: Option<String>,
    rt: tokio::runtime::Runtime,
}

/// Upload bodies are produced on a thread and handed over in chunks this size, at most
/// `UPLOAD_QUEUE` of them in flight.
const UPLOAD_CHUNK: usize = 256 << 10;
const UPLOAD_QUEUE: usize = 8;

type Upload = BoxBody<Bytes, io::Error>;

/// Where the API file says the daemon listens, if it exists: Kubo's `$IPFS_PATH/api`.
pub fn api_file(repo: &Path) -> Result<Option<String>> {
    let path = repo.join("api");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 2048 => bail!("{}: API file too large", path.display()),
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

impl Api {
    /// An endpoint for `multiaddr`, with `auth` in Kubo's secret syntax (`bearer:TOKEN`,
    /// `basic:USER:PASSWORD`). Nothing is dialled yet.
    pub fn new(multiaddr: &str, auth: Option<&str>) -> Result<Api> {
        let target = Listen::parse(multiaddr)?;
        let auth = auth
            .map(|s| ipfs_kit_rpc::Authorization::from_secret("--api-auth", s, Vec::new()))
            .transpose()
            .map_err(anyhow::Error::msg)?
            .map(|a| a.header);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start the async runtime")?;
        Ok(Api { target, auth, rt })
    }

    /// Whether a daemon answers there (a stale API file names one that is gone).
    pub fn is_up(&self) -> bool {
        self.rt.block_on(async {
            match &self.target {
                Listen::Tcp(a) => tokio::net::TcpStream::connect(a).await.is_ok(),
                Listen::Unix(p) => tokio::net::UnixStream::connect(p).await.is_ok(),
            }
        })
    }

    async fn send(
        &self,
        cmd: &str,
        query: &[(&str, String)],
        body: Option<(String, Upload)>,
    ) -> Result<hyper::Response<Incoming>> {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in query {
            q.append_pair(k, v);
        }
        let uri = format!("/api/v0/{cmd}?{}", q.finish());
        // `TE: trailers`: a command that fails after its output started then says why in an
        // `X-Stream-Error` trailer, instead of the connection just breaking.
        let mut req = hyper::Request::post(uri)
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::TE, "trailers");
        if let Some(a) = &self.auth {
            req = req.header(hyper::header::AUTHORIZATION, a);
        }
        let where_ = || format!("connect to the daemon's API at {}", self.target.multiaddr());
        match &self.target {
            Listen::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .with_context(where_)?;
                send_on(s, req, body).await
            }
            Listen::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .with_context(where_)?;
                send_on(s, req, body).await
            }
        }
    }

    /// Calls `cmd` and hands each body chunk to `sink`; errors carry the daemon's message.
    fn call(
        &self,
        cmd: &str,
        query: &[(&str, String)],
        body: Option<(String, Upload)>,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.rt.block_on(async {
            let resp = self.send(cmd, query, body).await?;
            let status = resp.status();
            let mut body = resp.into_body();
            if !status.is_success() {
                let bytes = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes);
                let message = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v["Message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| text.trim().to_string());
                bail!("{message}");
            }
            while let Some(frame) = body.frame().await {
                let frame = frame.context("the daemon's answer broke off")?;
                if let Some(data) = frame.data_ref() {
                    sink(data)?;
                } else if let Some(err) = frame.trailers_ref().and_then(|t| t.get("X-Stream-Error"))
                {
                    bail!("{}", String::from_utf8_lossy(err.as_bytes()));
                }
            }
            Ok(())
        })
    }

    /// Calls `cmd` and returns its one JSON value.
    pub(crate) fn json(&self, cmd: &str, query: &[(&str, String)]) -> Result<Value> {
        self.json_with(cmd, query, None)
    }

    /// Calls `cmd` with an upload `body` and returns its one JSON value.
    fn json_with(
        &self,
        cmd: &str,
        query: &[(&str, String)],
        body: Option<(String, Upload)>,
    ) -> Result<Value> {
        let mut buf = Vec::new();
        self.call(cmd, query, body, &mut |d| {
            buf.extend_from_slice(d);
            Ok(())
        })?;
        serde_json::from_slice(&buf).context("the daemon's answer is not JSON")
    }

    /// Calls `cmd`, whose answer is empty on success (the `files` edits).
    fn done(
        &self,
        cmd: &str,
        query: &[(&str, String)],
        body: Option<(String, Upload)>,
    ) -> Result<()> {
        self.call(cmd, query, body, &mut |_| Ok(()))
    }

    /// Calls `cmd` and hands each JSON line of its answer to `each`, as they arrive.
    pub(crate) fn lines(
        &self,
        cmd: &str,
        query: &[(&str, String)],
        body: Option<(String, Upload)>,
        each: &mut dyn FnMut(Value) -> Result<()>,
    ) -> Result<()> {
        let mut pending = Vec::new();
        self.call(cmd, query, body, &mut |d| {
            pending.extend_from_slice(d);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v: Value =
                    serde_json::from_slice(&line).context("the daemon's answer is not JSON")?;
                if v["Type"] == "error" {
                    bail!("{}", v["Message"].as_str().unwrap_or("error"));
                }
                each(v)?;
            }
            Ok(())
        })
    }

    /// Calls `cmd` and copies its answer to `out`.
    fn copy(&self, cmd: &str, query: &[(&str, String)], out: &mut dyn Write) -> Result<()> {
        self.call(cmd, query, None, &mut |d| Ok(out.write_all(d)?))
    }
}

async fn send_on<S>(
    stream: S,
    req: hyper::http::request::Builder,
    body: Option<(String, Upload)>,
) -> Result<hyper::Response<Incoming>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake with the daemon")?;
    tokio::spawn(conn);
    let req = match body {
        Some((content_type, upload)) => req
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(upload)?,
        None => req.body(Empty::new().map_err(|never| match never {}).boxed())?,
    };
    sender
        .send_request(req)
        .await
        .context("request to the daemon")
}

/// One part of a multipart upload.
enum Part {
    File(PathBuf),
    Stdin,
    Directory,
    Symlink(String),
}

/// Streams `parts` (each with its name in the upload) as a multipart body, read on a thread.
fn multipart(parts: Vec<(String, Part)>) -> (String, Upload) {
    let boundary = format!("ipfs-kit-{:016x}", rand_u64());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let (tx, mut rx) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(UPLOAD_QUEUE);
    std::thread::spawn(move || {
        let send = |b: Vec<u8>| tx.blocking_send(Ok(Frame::data(Bytes::from(b)))).is_ok();
        for (name, part) in parts {
            let kind = match part {
                Part::Directory => "application/x-directory",
                Part::Symlink(_) => "application/symlink",
                Part::File(_) | Part::Stdin => "application/octet-stream",
            };
            let encoded: String =
                percent_encoding::utf8_percent_encode(&name, NAME_ESCAPES).to_string();
            let head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{encoded}\"\r\nContent-Type: {kind}\r\n\r\n"
            );
            if !send(head.into_bytes()) {
                return;
            }
            let reader: Option<Box<dyn Read>> = match part {
                Part::File(p) => match std::fs::File::open(&p) {
                    Ok(f) => Some(Box::new(f)),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(io::Error::new(
                            e.kind(),
                            format!("open {}: {e}", p.display()),
                        )));
                        return;
                    }
                },
                Part::Stdin => Some(Box::new(io::stdin())),
                Part::Symlink(target) => {
                    if !send(target.into_bytes()) {
                        return;
                    }
                    None
                }
                Part::Directory => None,
            };
            if let Some(mut r) = reader {
                loop {
                    let mut buf = vec![0u8; UPLOAD_CHUNK];
                    match r.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            if !send(buf) {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    }
                }
            }
            if !send(b"\r\n".to_vec()) {
                return;
            }
        }
        let _ = send(format!("--{boundary}--\r\n").into_bytes());
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (content_type, StreamBody::new(stream).boxed())
}

/// Characters escaped in part names: the server decodes `%XX` and `+`.
const NAME_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b'%')
    .add(b'+')
    .add(b'"')
    .add(b'\r')
    .add(b'\n');

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    // A boundary only has to be unlikely to occur in the data; time is a fine fallback.
    if getrandom::fill(&mut b).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(b)
}

/// The parts for `add PATHS`: each directory before its entries, entries by name, dotfiles
/// only with `hidden`.
fn add_parts(paths: &[PathBuf], hidden: bool) -> Result<Vec<(String, Part)>> {
    fn walk(path: &Path, name: String, hidden: bool, out: &mut Vec<(String, Part)>) -> Result<()> {
        let meta =
            std::fs::symlink_metadata(path).with_context(|| format!("read {}", path.display()))?;
        if meta.is_symlink() {
            let target = std::fs::read_link(path)?;
            out.push((name, Part::Symlink(target.to_string_lossy().into_owned())));
        } else if meta.is_dir() {
            out.push((name.clone(), Part::Directory));
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .with_context(|| format!("list {}", path.display()))?
                .collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let n = e.file_name().to_string_lossy().into_owned();
                if hidden || !n.starts_with('.') {
                    walk(&e.path(), format!("{name}/{n}"), hidden, out)?;
                }
            }
        } else {
            out.push((name, Part::File(path.to_path_buf())));
        }
        Ok(())
    }
    let mut parts = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            parts.push((String::new(), Part::Stdin));
            continue;
        }
        let name = p
            .canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| p.to_string_lossy().into_owned());
        walk(p, name, hidden, &mut parts)?;
    }
    Ok(parts)
}

fn flag(name: &'static str, on: bool) -> Option<(&'static str, String)> {
    on.then(|| (name, "true".to_string()))
}

fn add(api: &Api, args: &AddArgs, out: &mut dyn Write) -> Result<()> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.paths.clone()
    };
    let q: Vec<(&str, String)> = [
        flag("only-hash", args.only_hash),
        flag("wrap-with-directory", args.wrap_with_directory),
        flag("trickle", args.trickle),
        Some(("pin", args.pin.to_string())),
        Some(("progress", "true".to_string())),
        args.cid_version.map(|v| ("cid-version", v.to_string())),
        args.raw_leaves.map(|v| ("raw-leaves", v.to_string())),
        args.chunker.clone().map(|v| ("chunker", v)),
        args.hash.clone().map(|v| ("hash", v)),
        args.profile.clone().map(|v| ("profile", v)),
        args.max_file_links
            .map(|v| ("max-file-links", v.to_string())),
        args.max_directory_links
            .map(|v| ("max-directory-links", v.to_string())),
        args.max_hamt_fanout
            .map(|v| ("max-hamt-fanout", v.to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let stdin = paths.iter().any(|p| p.as_os_str() == "-");
    let total = (!stdin).then(|| crate::total_size(&paths, args.hidden));
    let show = (args.progress || io::IsTerminal::is_terminal(&io::stderr()))
        && !args.quiet
        && !args.quieter;
    let bar = progress_bar(show, total);
    let body = multipart(add_parts(&paths, args.hidden)?);
    let (mut done, mut last) = (0u64, None::<String>);
    let mut current = (String::new(), 0u64);
    api.lines("add", &q, Some(body), &mut |v| {
        let name = v["Name"].as_str().unwrap_or_default().to_string();
        if let Some(bytes) = v["Bytes"].as_u64() {
            if current.0 != name {
                done += current.1;
                current = (name, 0);
            }
            current.1 = bytes;
            bar.set_position(done + bytes);
            return Ok(());
        }
        let hash = v["Hash"].as_str().unwrap_or_default().to_string();
        let name = if stdin && name.is_empty() {
            hash.clone()
        } else {
            name
        };
        bar.suspend(|| crate::print_added(args, &hash, &name, out))?;
        last = Some(hash);
        Ok(())
    })?;
    bar.finish_and_clear();
    if args.quieter {
        if let Some(last) = last {
            writeln!(out, "{last}")?;
        }
    }
    Ok(())
}

pub(crate) fn input_part(file: &Option<PathBuf>) -> (String, Upload) {
    let part = match file {
        Some(p) if p.as_os_str() != "-" => Part::File(p.clone()),
        _ => Part::Stdin,
    };
    multipart(vec![(String::new(), part)])
}

fn arg(v: &str) -> (&'static str, String) {
    ("arg", v.to_string())
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Runs `cmd` through the daemon. Commands that need the repo itself say so.
pub fn run(api: &Api, cmd: Cmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        Cmd::Add(args) => add(api, &args, out)?,
        Cmd::Cat {
            path,
            offset,
            length,
        } => {
            let mut q = vec![arg(&path), ("offset", offset.to_string())];
            q.extend(length.map(|l| ("length", l.to_string())));
            api.copy("cat", &q, out)?;
        }
        Cmd::Get {
            path,
            output,
            archive,
        } => {
            let name = path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(&path);
            let q = [arg(&path), ("archive", "true".to_string())];
            if archive && output.as_ref().is_some_and(|o| o.as_os_str() == "-") {
                api.copy("get", &q, out)?;
                return Ok(());
            }
            let target = output.unwrap_or_else(|| {
                PathBuf::from(if archive {
                    format!("{name}.tar")
                } else {
                    name.to_string()
                })
            });
            if std::fs::symlink_metadata(&target).is_ok() {
                bail!("{} already exists", target.display());
            }
            let tmp = tempfile_near(&target)?;
            let result = if archive {
                save_archive(api, &q, &tmp)
            } else {
                extract_streaming(api, &q, name, &tmp)
            };
            if let Err(e) = result.and_then(|()| Ok(std::fs::rename(&tmp, &target)?)) {
                remove_any(&tmp);
                return Err(e);
            }
            if archive {
                writeln!(out, "Saving archive to {}", target.display())?;
            } else {
                writeln!(out, "Saving file(s) to {}", target.display())?;
            }
        }
        Cmd::Ls { path } => {
            let v = api.json("ls", &[arg(&path)])?;
            for l in v["Objects"][0]["Links"].as_array().into_iter().flatten() {
                if l["Type"] == 1 {
                    writeln!(out, "{} - {}/", str_of(&l["Hash"]), str_of(&l["Name"]))?;
                } else {
                    writeln!(
                        out,
                        "{} {} {}",
                        str_of(&l["Hash"]),
                        l["Size"],
                        str_of(&l["Name"])
                    )?;
                }
            }
        }
        Cmd::Resolve { path } | Cmd::Dag(DagCmd::Resolve { path }) => {
            let v = api.json("resolve", &[arg(&path)])?;
            writeln!(out, "{}", str_of(&v["Path"]))?;
        }
        Cmd::Block(b) => match b {
            BlockCmd::Put {
                file,
                cid_codec,
                mhtype,
                format,
                allow_big_block,
                pin,
            } => {
                let mut q = vec![("cid-codec", cid_codec), ("mhtype", mhtype)];
                q.extend(format.map(|f| ("format", f)));
                q.extend(flag("allow-big-block", allow_big_block));
                q.extend(flag("pin", pin));
                let mut key = String::new();
                api.lines("block/put", &q, Some(input_part(&file)), &mut |v| {
                    key = str_of(&v["Key"]).to_string();
                    Ok(())
                })?;
                writeln!(out, "{key}")?;
            }
            BlockCmd::Get { cid } => api.copy("block/get", &[arg(&cid)], out)?,
            BlockCmd::Stat { cid } => {
                let v = api.json("block/stat", &[arg(&cid)])?;
                writeln!(out, "Key: {}\nSize: {}", str_of(&v["Key"]), v["Size"])?;
            }
            BlockCmd::Rm { cids, force, quiet } => {
                let mut q: Vec<_> = cids.iter().map(|c| arg(c)).collect();
                q.extend(flag("force", force));
                let mut failures = Vec::new();
                api.lines("block/rm", &q, None, &mut |v| {
                    match v["Error"].as_str() {
                        Some(e) => {
                            failures.push(format!("cannot remove {}: {e}", str_of(&v["Hash"])))
                        }
                        None if !quiet => writeln!(out, "removed {}", str_of(&v["Hash"]))?,
                        None => {}
                    }
                    Ok(())
                })?;
                if !failures.is_empty() {
                    bail!("{}", failures.join("; "));
                }
            }
        },
        Cmd::Dag(d) => match d {
            DagCmd::Put {
                file,
                input_codec,
                store_codec,
                hash,
                pin,
                allow_big_block,
            } => {
                let mut q = vec![
                    ("input-codec", input_codec),
                    ("store-codec", store_codec),
                    ("hash", hash),
                ];
                q.extend(flag("pin", pin));
                q.extend(flag("allow-big-block", allow_big_block));
                let mut cid = String::new();
                api.lines("dag/put", &q, Some(input_part(&file)), &mut |v| {
                    cid = str_of(&v["Cid"]["/"]).to_string();
                    Ok(())
                })?;
                writeln!(out, "{cid}")?;
            }
            DagCmd::Get { path, output_codec } => {
                api.copy(
                    "dag/get",
                    &[arg(&path), ("output-codec", output_codec)],
                    out,
                )?;
            }
            DagCmd::Export { path } => api.copy("dag/export", &[arg(&path)], out)?,
            DagCmd::Import {
                files,
                pin_roots,
                stats,
            } => {
                let parts = if files.is_empty() {
                    vec![(String::new(), Part::Stdin)]
                } else {
                    files
                        .iter()
                        .map(|f| {
                            let part = if f.as_os_str() == "-" {
                                Part::Stdin
                            } else {
                                Part::File(f.clone())
                            };
                            (String::new(), part)
                        })
                        .collect()
                };
                let q = [
                    ("pin-roots", pin_roots.to_string()),
                    ("stats", stats.to_string()),
                ];
                let mut failed = false;
                api.lines("dag/import", &q, Some(multipart(parts)), &mut |v| {
                    if let Some(root) = v.get("Root") {
                        let cid = str_of(&root["Cid"]["/"]);
                        match str_of(&root["PinErrorMsg"]) {
                            "" => writeln!(out, "Pinned root\t{cid}\tsuccess")?,
                            e => {
                                failed = true;
                                writeln!(out, "Pinned root\t{cid}\tFAILED: {e}")?;
                            }
                        }
                    }
                    if let Some(s) = v.get("Stats") {
                        writeln!(
                            out,
                            "Imported {} blocks ({} bytes)",
                            s["BlockCount"], s["BlockBytesCount"]
                        )?;
                    }
                    Ok(())
                })?;
                if failed {
                    bail!("some roots could not be pinned");
                }
            }
            DagCmd::Resolve { .. } => {}
        },
        Cmd::Refs(r) => {
            let (cmd, q) = if r.local() {
                ("refs/local", Vec::new())
            } else {
                let mut q: Vec<_> = r.paths.iter().map(|p| arg(p)).collect();
                q.extend(flag("recursive", r.recursive));
                q.extend(flag("unique", r.unique));
                q.extend(flag("edges", r.edges));
                q.push(("format", r.format.clone()));
                q.push(("max-depth", r.max_depth.to_string()));
                ("refs", q)
            };
            api.lines(cmd, &q, None, &mut |v| {
                // Kubo's CLI stops at a walk's error, after the refs before it.
                if let Some(e) = v["Err"].as_str().filter(|e| !e.is_empty()) {
                    bail!("{e}");
                }
                Ok(writeln!(out, "{}", str_of(&v["Ref"]))?)
            })?;
        }
        Cmd::Pin(p) => match p {
            PinCmd::Add { paths, recursive } => {
                let mut q: Vec<_> = paths.iter().map(|p| arg(p)).collect();
                q.push(("recursive", recursive.to_string()));
                let how = if recursive { "recursively" } else { "directly" };
                let v = api.json("pin/add", &q)?;
                for c in v["Pins"].as_array().into_iter().flatten() {
                    writeln!(out, "pinned {} {how}", str_of(c))?;
                }
            }
            PinCmd::Rm { paths, recursive } => {
                let mut q: Vec<_> = paths.iter().map(|p| arg(p)).collect();
                q.push(("recursive", recursive.to_string()));
                let v = api.json("pin/rm", &q)?;
                for c in v["Pins"].as_array().into_iter().flatten() {
                    writeln!(out, "unpinned {}", str_of(c))?;
                }
            }
            PinCmd::Ls { paths, kind, quiet } => {
                let mut q: Vec<_> = paths.iter().map(|p| arg(p)).collect();
                q.push(("type", kind));
                let v = api.json("pin/ls", &q)?;
                let mut keys: Vec<_> = v["Keys"].as_object().into_iter().flatten().collect();
                keys.sort_by(|a, b| a.0.cmp(b.0));
                for (cid, t) in keys {
                    if quiet {
                        writeln!(out, "{cid}")?;
                    } else {
                        writeln!(out, "{cid} {}", str_of(&t["Type"]))?;
                    }
                }
            }
            PinCmd::Verify { .. } => bail!(
                "pin verify reads the repo directly: stop the daemon first (or run `repo verify`)"
            ),
        },
        Cmd::Storage(c) => crate::storage::remote(api, c, out)?,
        Cmd::Repo(r) => match r {
            RepoCmd::Gc { quiet } => {
                api.lines("repo/gc", &[], None, &mut |v| {
                    if !quiet {
                        writeln!(out, "removed {}", str_of(&v["Key"]["/"]))?;
                    }
                    Ok(())
                })?;
            }
            RepoCmd::Stat => {
                let v = api.json("repo/stat", &[])?;
                writeln!(out, "NumObjects: {}", v["NumObjects"])?;
                writeln!(out, "RepoSize:   {}", v["RepoSize"])?;
                writeln!(out, "StorageMax: {}", v["StorageMax"])?;
                writeln!(out, "RepoPath:   {}", str_of(&v["RepoPath"]))?;
                writeln!(out, "Version:    {}", str_of(&v["Version"]))?;
            }
            RepoCmd::Verify => {
                api.lines("repo/verify", &[], None, &mut |v| {
                    Ok(writeln!(
                        out,
                        "verified repo integrity: {} blocks",
                        v["Progress"]
                    )?)
                })?;
            }
        },
        Cmd::Id { peer } => {
            let q: Vec<_> = peer.iter().map(|p| arg(p)).collect();
            let v = api.json("id", &q)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Cmd::Swarm(c) => crate::network::run_remote(api, crate::network::NetCmd::Swarm(c), out)?,
        Cmd::Bitswap(c) => {
            crate::network::run_remote(api, crate::network::NetCmd::Bitswap(c), out)?
        }
        Cmd::Pubsub(c) => crate::network::run_remote(api, crate::network::NetCmd::Pubsub(c), out)?,
        Cmd::Dht(c) => crate::network::run_remote(api, crate::network::NetCmd::Dht(c), out)?,
        Cmd::Routing(c) => {
            crate::network::run_remote(api, crate::network::NetCmd::Routing(c), out)?
        }
        Cmd::Bootstrap(c) => {
            crate::network::run_remote(api, crate::network::NetCmd::Bootstrap(c), out)?
        }
        Cmd::Ping(a) => crate::network::run_remote(api, crate::network::NetCmd::Ping(a), out)?,
        Cmd::Stats(c) => crate::network::run_remote(api, crate::network::NetCmd::Stats(c), out)?,
        Cmd::Config(c) => match c {
            ConfigCmd::Show => {
                let v = api.json("config/show", &[])?;
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            }
            ConfigCmd::Get { key } => {
                let v = api.json("config", &[arg(&key)])?;
                crate::print_json_value(out, &v["Value"])?;
            }
            ConfigCmd::Set { key, value } => {
                let v = crate::json_or_string(&value);
                let mut q = vec![arg(&key)];
                match &v {
                    serde_json::Value::String(s) => q.push(arg(s)),
                    other => {
                        q.push(arg(&other.to_string()));
                        q.push(("json", "true".to_string()));
                    }
                }
                api.json("config", &q)?;
            }
        },
        Cmd::Files(c) => files(api, c, out)?,
        Cmd::Key(c) => key(api, c, out)?,
        Cmd::Name(c) => name(api, c, out)?,
        Cmd::Init { .. } | Cmd::Daemon { .. } | Cmd::Version => {
            bail!("this command runs locally, not through the API")
        }
    }
    Ok(())
}

/// The `cid-version` and `hash` options of the `files` commands that make nodes.
fn cid_options(cid_version: Option<u8>, hash: Option<String>) -> Vec<(&'static str, String)> {
    let mut q: Vec<_> = cid_version
        .map(|v| ("cid-version", v.to_string()))
        .into_iter()
        .collect();
    q.extend(hash.map(|h| ("hash", h)));
    q
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_default()
}

/// `files` through the daemon, printing what the local command prints.
fn files(api: &Api, cmd: FilesCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        FilesCmd::Ls { path, long } => {
            let v = api.json("files/ls", &[arg(&path), ("long", "true".to_string())])?;
            for e in v["Entries"].as_array().into_iter().flatten() {
                let (name, cid) = (str_of(&e["Name"]), str_of(&e["Hash"]));
                names::print_ls_entry(out, name, e["Type"] == 1, cid, u64_of(&e["Size"]), long)?;
            }
        }
        FilesCmd::Stat { path, hash, size } => {
            let v = api.json("files/stat", &[arg(&path)])?;
            let stat = names::Stat {
                cid: str_of(&v["Hash"]).to_string(),
                dir: v["Type"] == "directory",
                size: u64_of(&v["Size"]),
                cumulative_size: u64_of(&v["CumulativeSize"]),
                blocks: u64_of(&v["Blocks"]),
            };
            names::print_stat(out, &stat, hash, size)?;
        }
        FilesCmd::Read {
            path,
            offset,
            count,
        } => {
            let mut q = vec![arg(&path), ("offset", offset.to_string())];
            q.extend(count.map(|n| ("count", n.to_string())));
            api.copy("files/read", &q, out)?;
        }
        FilesCmd::Write { path, file, flags } => {
            let mut q = vec![arg(&path), ("offset", flags.offset.to_string())];
            q.extend(flag("create", flags.create));
            q.extend(flag("parents", flags.parents));
            q.extend(flag("truncate", flags.truncate));
            q.extend(flags.count.map(|n| ("count", n.to_string())));
            q.extend(flags.raw_leaves.map(|r| ("raw-leaves", r.to_string())));
            q.extend(cid_options(flags.cid_version, flags.hash));
            api.done("files/write", &q, Some(input_part(&file)))?;
        }
        FilesCmd::Mkdir {
            path,
            parents,
            cid_version,
            hash,
        } => {
            let mut q = vec![arg(&path)];
            q.extend(flag("parents", parents));
            q.extend(cid_options(cid_version, hash));
            api.done("files/mkdir", &q, None)?;
        }
        FilesCmd::Cp {
            source,
            dest,
            parents,
        } => {
            let mut q = vec![arg(&source), arg(&dest)];
            q.extend(flag("parents", parents));
            api.done("files/cp", &q, None)?;
        }
        FilesCmd::Mv { source, dest } => api.done("files/mv", &[arg(&source), arg(&dest)], None)?,
        FilesCmd::Rm {
            paths,
            recursive,
            force,
        } => {
            let mut q: Vec<_> = paths.iter().map(|p| arg(p)).collect();
            q.extend(flag("recursive", recursive));
            q.extend(flag("force", force));
            api.done("files/rm", &q, None)?;
        }
        FilesCmd::Flush { path } => {
            let v = api.json("files/flush", &[arg(&path)])?;
            writeln!(out, "{}", str_of(&v["Cid"]))?;
        }
        FilesCmd::Chcid {
            path,
            cid_version,
            hash,
        } => {
            let mut q = vec![arg(&path)];
            q.extend(cid_options(cid_version, hash));
            api.done("files/chcid", &q, None)?;
        }
    }
    Ok(())
}

/// The `Keys` of a `key/*` answer.
fn keys_of(v: &Value) -> impl Iterator<Item = &Value> {
    v["Keys"].as_array().into_iter().flatten()
}

/// `key` through the daemon, printing what the local command prints.
fn key(api: &Api, cmd: KeyCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        KeyCmd::Gen { name, kind, size } => {
            let mut q = vec![arg(&name), ("type", kind)];
            if let Some(size) = size {
                q.push(("size", size.to_string()));
            }
            let v = api.json("key/gen", &q)?;
            writeln!(out, "{}", str_of(&v["Id"]))?;
        }
        KeyCmd::List { l } => {
            for k in keys_of(&api.json("key/list", &[])?) {
                names::print_key(out, str_of(&k["Name"]), str_of(&k["Id"]), l)?;
            }
        }
        KeyCmd::Rename {
            name,
            new_name,
            force,
        } => {
            let mut q = vec![arg(&name), arg(&new_name)];
            q.extend(flag("force", force));
            let v = api.json("key/rename", &q)?;
            let overwrite = v["Overwrite"].as_bool().unwrap_or(false);
            names::print_renamed(out, str_of(&v["Id"]), str_of(&v["Now"]), overwrite)?;
        }
        KeyCmd::Rm { names } => {
            let q: Vec<_> = names.iter().map(|n| arg(n)).collect();
            for k in keys_of(&api.json("key/rm", &q)?) {
                writeln!(out, "{}", str_of(&k["Id"]))?;
            }
        }
        KeyCmd::Import { name, file } => {
            let body = multipart(vec![(String::new(), Part::File(file))]);
            let v = api.json_with("key/import", &[arg(&name)], Some(body))?;
            writeln!(out, "{}", str_of(&v["Id"]))?;
        }
        KeyCmd::Export {
            name,
            output,
            format,
        } => {
            let mut bytes = Vec::new();
            api.copy("key/export", &[arg(&name), ("format", format)], &mut bytes)?;
            names::write_key_file(&name, output, &bytes)?;
        }
    }
    Ok(())
}

/// `name` through the daemon, printing what the local command prints.
fn name(api: &Api, cmd: NameCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        NameCmd::Publish {
            path,
            key,
            allow_offline,
            lifetime,
            ttl,
            resolve,
        } => {
            let mut q = vec![
                arg(&path),
                ("key", key),
                ("lifetime", lifetime),
                ("ttl", ttl),
                ("resolve", resolve.to_string()),
            ];
            q.extend(flag("allow-offline", allow_offline));
            let v = api.json("name/publish", &q)?;
            names::print_published(out, str_of(&v["Name"]), str_of(&v["Value"]))?;
        }
        NameCmd::Resolve { name, recursive } => {
            let mut q: Vec<_> = name.iter().map(|n| arg(n)).collect();
            q.push(("recursive", recursive.to_string()));
            let v = api.json("name/resolve", &q)?;
            writeln!(out, "{}", str_of(&v["Path"]))?;
        }
        NameCmd::Pubsub(c) => match c {
            names::NamePubsubCmd::State => {
                let v = api.json("name/pubsub/state", &[])?;
                let on = v["Enabled"].as_bool().unwrap_or(false);
                writeln!(out, "{}", if on { "enabled" } else { "disabled" })?;
            }
            names::NamePubsubCmd::Subs => {
                let v = api.json("name/pubsub/subs", &[])?;
                for s in v["Strings"].as_array().into_iter().flatten() {
                    writeln!(out, "{}", str_of(s))?;
                }
            }
            names::NamePubsubCmd::Cancel { name } => {
                let v = api.json("name/pubsub/cancel", &[arg(&name)])?;
                let done = v["Canceled"].as_bool().unwrap_or(false);
                writeln!(out, "{}", if done { "canceled" } else { "no subscription" })?;
            }
        },
    }
    Ok(())
}

/// A fresh temporary path next to `target`, so the final rename stays on one file system.
fn tempfile_near(target: &Path) -> Result<PathBuf> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(dir.join(format!(".{name}.{:x}.part", rand_u64())))
}

/// Writes the tar `get` answers to `path`, as it is.
fn save_archive(api: &Api, q: &[(&str, String)], path: &Path) -> Result<()> {
    let mut w = io::BufWriter::new(std::fs::File::create(path)?);
    api.copy("get", q, &mut w)?;
    w.flush()?;
    Ok(())
}

/// Chunks of the answer in flight between the HTTP reader and the unpacking thread.
const EXTRACT_QUEUE: usize = 64;

/// Unpacks `get`'s tar at `target` while it arrives: the HTTP reader hands chunks to an
/// unpacking thread, so fetching and writing files overlap instead of following each other
/// through a temporary tar file. The daemon's answer decides the outcome: a transfer that
/// breaks off fails even if it broke at an entry boundary and the tar looked complete.
fn extract_streaming(api: &Api, q: &[(&str, String)], root: &str, target: &Path) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(EXTRACT_QUEUE);
    let (root_owned, target_owned) = (root.to_string(), target.to_path_buf());
    let unpacker = std::thread::Builder::new()
        .name("get-unpack".into())
        .spawn(move || {
            let mut reader = ChunkReader {
                rx,
                chunk: Vec::new(),
                pos: 0,
            };
            let result = extract(&mut reader, &root_owned, &target_owned);
            // After the tar's end only padding follows: take it, so the sender finishes. On
            // failure the receiver is dropped instead, which stops the transfer.
            if result.is_ok() {
                while reader.rx.recv().is_ok() {}
            }
            result
        })
        .context("start the unpacking thread")?;
    let fetched = api.call("get", q, None, &mut |d| {
        tx.send(d.to_vec())
            .map_err(|_| anyhow::anyhow!("the unpacking thread stopped"))
    });
    drop(tx);
    let unpacked = unpacker
        .join()
        .map_err(|_| anyhow::anyhow!("the unpacking thread panicked"))?;
    // An unpacking error explains a stopped thread better than the send failure it caused.
    unpacked.and(fetched)
}

/// A `Read` over byte chunks sent from another thread; the end of the channel is the end of
/// the stream.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => (self.chunk, self.pos) = (c, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Removes a file or directory tree left by a failed `get`, best effort.
fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Unpacks the tar the daemon sent, its root entry `root` landing at `target`. Entries must
/// stay under the root: a tar from a daemon is outside input like any other.
fn extract(tar: &mut dyn io::Read, root: &str, target: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_mtime(true);
    archive.set_preserve_permissions(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rel = path
            .strip_prefix(root)
            .with_context(|| format!("the archive holds {} outside {root}", path.display()))?;
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            bail!("the archive holds an unsafe path {}", path.display());
        }
        let dest = target.join(rel);
        // An earlier entry may have been a symlink: never write through one.
        let mut dir = dest.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(target)) {
            if std::fs::symlink_metadata(d).is_ok_and(|m| m.is_symlink()) {
                bail!("the archive writes through the symlink {}", d.display());
            }
            dir = d.parent();
        }
        entry
            .unpack(&dest)
            .with_context(|| format!("write {}", dest.display()))?;
    }
    Ok(())
}
