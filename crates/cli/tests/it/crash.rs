//! Crash safety: `ipfs-kit` is killed with SIGKILL at many points during add, pin and gc. After
//! each kill the repo must open, `repo verify` and `pin verify` must pass, and everything an
//! earlier command acknowledged (printed its CID and exited 0) must still be there, pinned and
//! byte-identical.

use std::process::Stdio;
use std::time::Duration;

use crate::Node;

fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Runs `args`, killing it after `delay` unless it finished; returns stdout when it finished
/// successfully (an acknowledgement), `None` when it was killed or failed.
fn run_and_kill(node: &Node, args: &[&str], delay: Duration) -> Option<String> {
    let mut child = node
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(delay);
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn kill_9_during_add_pin_and_gc_loses_nothing_acknowledged() {
    let node = Node::new();
    node.ok(&["config", "set", "datastore.segment_size", "4194304"]);
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let mut killed = 0;
    for i in 0..16u64 {
        let data = content(i, (6 << 20) + (i as usize) * 4099);
        let file = node.dir.path().join(format!("f{i}.bin"));
        std::fs::write(&file, &data).expect("write");
        // Delays spread the kill over start-up, streaming, the group commit and the pin.
        let delay = Duration::from_millis(5 + (i * 37) % 180);
        if let Some(out) = run_and_kill(&node, &["add", "-Q", file.to_str().expect("p")], delay) {
            acked.push((out.trim().to_string(), data));
        } else {
            killed += 1;
        }
        match i % 4 {
            1 => {
                // Unpin the oldest acknowledged file, then gc, both under a kill. A killed unpin
                // may or may not have happened, so that file is no longer owed either way.
                if let Some((cid, _)) = acked.first().cloned() {
                    run_and_kill(&node, &["pin", "rm", &cid], Duration::from_millis(3 + i));
                    acked.remove(0);
                }
                run_and_kill(
                    &node,
                    &["repo", "gc"],
                    Duration::from_millis(2 + (i * 13) % 60),
                );
            }
            3 => {
                // Re-pin something already pinned while being killed: never loses the pin.
                if let Some((cid, _)) = acked.last() {
                    run_and_kill(&node, &["pin", "add", cid], Duration::from_millis(1 + i));
                }
            }
            _ => {}
        }
        node.ok(&["repo", "verify"]);
        node.ok(&["pin", "verify"]);
        let pins = node.ok(&["pin", "ls", "--type", "recursive", "-q"]);
        for (cid, bytes) in &acked {
            assert!(
                pins.contains(cid.as_str()),
                "acknowledged pin {cid} lost after kill {i}"
            );
            let out = node.cmd(&["cat", cid]).output().expect("cat");
            assert!(
                out.status.success(),
                "acknowledged {cid} unreadable after kill {i}"
            );
            assert!(
                out.stdout == *bytes,
                "acknowledged {cid} changed after kill {i}"
            );
        }
    }
    // The loop must have seen both outcomes, or it proved nothing about kills mid-write.
    assert!(!acked.is_empty(), "no add ever completed");
    assert!(killed > 0, "no add was ever killed");
}

#[test]
fn kill_9_during_mfs_writes_loses_nothing_acknowledged() {
    let node = Node::new();
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let mut killed = 0;
    for i in 0..12u64 {
        let data = content(100 + i, (3 << 20) + (i as usize) * 7919);
        let file = node.dir.path().join(format!("m{i}.bin"));
        std::fs::write(&file, &data).expect("write");
        let path = format!("/d{}/f{i}", i % 3);
        let delay = Duration::from_millis(5 + (i * 41) % 200);
        let args = [
            "files",
            "write",
            "--create",
            "--parents",
            &path,
            file.to_str().expect("p"),
        ];
        if run_and_kill(&node, &args, delay).is_some() {
            acked.push((path, data));
        } else {
            killed += 1;
        }
        if i % 4 == 2 {
            run_and_kill(&node, &["repo", "gc"], Duration::from_millis(3 + i * 7));
        }
        node.ok(&["repo", "verify"]);
        for (path, bytes) in &acked {
            let out = node.cmd(&["files", "read", path]).output().expect("read");
            assert!(
                out.status.success(),
                "acknowledged {path} lost after kill {i}"
            );
            assert!(
                out.stdout == *bytes,
                "acknowledged {path} changed after kill {i}"
            );
        }
    }
    // GC keeps what MFS holds.
    node.ok(&["repo", "gc"]);
    for (path, bytes) in &acked {
        assert!(
            node.cmd(&["files", "read", path])
                .output()
                .expect("read")
                .stdout
                == *bytes
        );
    }
    assert!(!acked.is_empty(), "no write ever completed");
    assert!(killed > 0, "no write was ever killed");
}
