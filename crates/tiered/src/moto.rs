//! Real S3-compatible servers for tests, each one process on a free loopback port, killed on
//! drop; tests of this and other crates start one each, so nothing is shared between them.
//!
//! - [`MotoServer`]: moto's server mode (`moto[server]` from PyPI; `IPFS_KIT_MOTO` names its
//!   `moto_server` program). Keeps objects in memory.
//! - [`S3rver`]: s3rver (npm; `IPFS_KIT_S3RVER` names its `s3rver` program). Keeps objects
//!   in a directory, so it can be killed and started again with its bucket intact: the test of
//!   object storage going away and coming back.
//!
//! scripts/test.sh installs both.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The program named by `var`, or `None` (saying why on stderr) when it is not set. Under CI
/// (`CI` set) a missing server is a failure, not a skip.
fn server_program(var: &str) -> Option<std::ffi::OsString> {
    let program = std::env::var_os(var);
    if program.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{var} is not set: CI must run the object storage tests");
        }
        eprintln!("{var} not set (scripts/test.sh installs the S3 test servers): skipping");
    }
    program
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts `cmd` and waits up to 30 s for it to listen on `port`.
fn spawn_listening(mut cmd: Command, port: u16) -> Child {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the S3 test server");
    let give_up = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > give_up || matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            panic!("the S3 test server did not start listening on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A running moto server.
pub struct MotoServer {
    child: Child,
    port: u16,
}

impl MotoServer {
    /// Starts one, or returns `None` (saying why on stderr) when `IPFS_KIT_MOTO` is not set.
    /// Under CI (`CI` set) a missing server is a failure, not a skip.
    ///
    /// # Panics
    /// When the server cannot be started or does not listen within 30 s.
    pub fn start() -> Option<MotoServer> {
        let program = server_program("IPFS_KIT_MOTO")?;
        let port = free_port();
        let mut cmd = Command::new(program);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        Some(MotoServer {
            child: spawn_listening(cmd, port),
            port,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` with a plain S3 `PUT /bucket` (object_store has no call for it).
    ///
    /// # Panics
    /// When the server does not answer 200.
    pub fn create_bucket(&self, bucket: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("reply");
        assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A running (or killed, see [`S3rver::kill`]) s3rver with one bucket, whose objects live in
/// a directory the caller owns.
pub struct S3rver {
    child: Option<Child>,
    program: std::ffi::OsString,
    dir: PathBuf,
    bucket: String,
    port: u16,
}

impl S3rver {
    /// The access key ID and secret s3rver accepts.
    pub const CREDENTIALS: (&'static str, &'static str) = ("S3RVER", "S3RVER");

    /// Starts one serving `bucket` from `dir`, or returns `None` when `IPFS_KIT_S3RVER` is
    /// not set (a failure under CI).
    ///
    /// # Panics
    /// When the server cannot be started or does not listen within 30 s.
    pub fn start(dir: &Path, bucket: &str) -> Option<S3rver> {
        let mut server = S3rver {
            child: None,
            program: server_program("IPFS_KIT_S3RVER")?,
            dir: dir.to_path_buf(),
            bucket: bucket.to_string(),
            port: free_port(),
        };
        server.restart();
        Some(server)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): requests are refused until [`S3rver::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }

    /// Starts the server again on the same port and directory (a no-op while it runs).
    ///
    /// # Panics
    /// When it does not listen within 30 s.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            return;
        }
        let mut cmd = Command::new(&self.program);
        // s3rver's listing continuation tokens use DES, which OpenSSL 3 keeps in its legacy
        // provider.
        cmd.env("NODE_OPTIONS", "--openssl-legacy-provider")
            .arg("--directory")
            .arg(&self.dir)
            .args(["--address", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--configure-bucket", &self.bucket]);
        self.child = Some(spawn_listening(cmd, self.port));
    }
}

impl Drop for S3rver {
    fn drop(&mut self) {
        self.kill();
    }
}
