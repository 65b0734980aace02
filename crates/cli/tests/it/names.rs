//! `ipfs-kit files`, `key` and `name` on a repo, as a user types them.

use crate::Node;

#[test]
fn cli_files_keys_and_names() {
    let node = Node::new();
    node.ok(&["files", "mkdir", "-p", "/docs/a"]);
    let out = node.run_stdin(&["files", "write", "-e", "/docs/a/hi.txt"], b"Hello world");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(node.ok(&["files", "read", "/docs/a/hi.txt"]), "Hello world");
    assert_eq!(node.ok(&["files", "ls", "/docs/a"]), "hi.txt\n");
    // Kubo's MFS CID for this content.
    assert_eq!(
        node.ok(&["files", "stat", "--hash", "/docs/a/hi.txt"])
            .trim(),
        "Qmetpc7cZmN25Wcc6R27cGCAvCDqCS5GjHG4v7xABEfpmJ"
    );
    let stat = node.ok(&["files", "stat", "/docs"]);
    assert!(
        stat.contains("Type: directory") && stat.contains("ChildBlocks: 1"),
        "{stat}"
    );
    node.ok(&["files", "mv", "/docs/a/hi.txt", "/hi.txt"]);
    node.ok(&["files", "cp", "/hi.txt", "/docs/"]);
    node.fails(&["files", "rm", "/docs"], "use -r to remove directories");
    node.ok(&["files", "rm", "-r", "/docs"]);
    node.fails(&["files", "read", "/docs/hi.txt"], "file does not exist");
    let root = node.ok(&["files", "flush"]);
    assert!(root.trim().starts_with("Qm"));

    let id = node.ok(&["key", "gen", "mykey"]);
    assert!(id.starts_with("k51"), "{id}");
    assert_eq!(node.ok(&["key", "list"]), "self\nmykey\n");
    node.fails(&["key", "gen", "mykey"], "already exists");
    node.fails(
        &["key", "gen", "--type", "rsa", "--size", "1024", "r"],
        "rsa keys must be >= 2048 bits to be useful",
    );
    node.fails(
        &["key", "gen", "--type", "dsa", "r"],
        "unrecognized key type: dsa",
    );
    let rsa = node.ok(&["key", "gen", "--type=rsa", "rsakey"]);
    assert!(rsa.starts_with("k2k4r8"), "{rsa}");
    assert_eq!(node.ok(&["key", "list"]), "self\nmykey\nrsakey\n");
    node.ok(&["key", "rm", "rsakey"]);

    let cid = node.ok(&[
        "add",
        "-Q",
        node.dir
            .path()
            .join("repo/config.toml")
            .to_str()
            .expect("p"),
    ]);
    let cid = cid.trim();
    node.fails(&["name", "publish", cid], "can't publish while offline");
    let out = node.ok(&["name", "publish", "--allow-offline", "--key", "mykey", cid]);
    assert_eq!(out, format!("Published to {}: /ipfs/{cid}\n", id.trim()));
    assert_eq!(
        node.ok(&["name", "resolve", id.trim()]),
        format!("/ipfs/{cid}\n")
    );
    node.fails(&["name", "resolve"], "could not resolve name");
}
