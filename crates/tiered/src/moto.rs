//! A real S3-compatible server for tests: moto's server mode (`moto[server]` from PyPI), one
//! process on a free loopback port, killed on drop. `IPFS_KIT_MOTO` names its `moto_server`
//! program (scripts/test.sh installs it). Tests of this and other crates start one each, so
//! nothing is shared between them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let Some(program) = std::env::var_os("IPFS_KIT_MOTO") else {
            if std::env::var_os("CI").is_some() {
                panic!("IPFS_KIT_MOTO is not set: CI must run the object storage tests");
            }
            eprintln!("IPFS_KIT_MOTO not set (scripts/test.sh installs moto): skipping");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = MotoServer { child, port };
        let give_up = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < give_up, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
