//! MFS, keys and IPNS through the repo: persistence across reopen, GC, Kubo's errors.

use std::os::unix::fs::PermissionsExt;

use ipfs_kit_node::{
    AddOptions, ImportFlags, InitOptions, KeyFormat, PublishOptions, Repo, WriteOptions,
};
use ipfs_kit_unixfs::{ImportProfile, Kind, Layout};

fn repo() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repo::init(&dir.path().join("repo"), InitOptions::default()).expect("init");
    (dir, repo)
}

fn write(repo: &Repo, path: &str, data: &[u8], opts: WriteOptions) {
    repo.files_write(path, &mut &data[..], &opts)
        .expect("files write");
}

fn read(repo: &Repo, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    repo.files_read(path, 0, None, &mut out)
        .expect("files read");
    out
}

fn create() -> WriteOptions {
    WriteOptions {
        create: true,
        ..Default::default()
    }
}

#[test]
fn mfs_edits_read_back_and_survive_reopen() {
    let (dir, repo) = repo();
    assert_eq!(
        repo.files_stat("/").unwrap().cid.to_string(),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
    repo.files_mkdir("/a/b", true, None, None).unwrap();
    write(&repo, "/a/b/f", b"hello", create());
    assert_eq!(read(&repo, "/a/b/f"), b"hello");
    // Overwrite in the middle and extend; then past the end with a zero-filled gap.
    write(
        &repo,
        "/a/b/f",
        b"LLOW",
        WriteOptions {
            offset: 2,
            ..Default::default()
        },
    );
    assert_eq!(read(&repo, "/a/b/f"), b"heLLOW");
    write(
        &repo,
        "/a/b/f",
        b"!",
        WriteOptions {
            offset: 8,
            ..Default::default()
        },
    );
    assert_eq!(read(&repo, "/a/b/f"), b"heLLOW\0\0!");
    write(
        &repo,
        "/a/b/f",
        b"xy",
        WriteOptions {
            truncate: true,
            ..Default::default()
        },
    );
    assert_eq!(read(&repo, "/a/b/f"), b"xy");
    write(
        &repo,
        "/a/b/f",
        b"abcdef",
        WriteOptions {
            count: Some(3),
            truncate: true,
            ..Default::default()
        },
    );
    assert_eq!(read(&repo, "/a/b/f"), b"abc");
    let mut part = Vec::new();
    repo.files_read("/a/b/f", 1, Some(1), &mut part).unwrap();
    assert_eq!(part, b"b");

    let st = repo.files_stat("/a/b/f").unwrap();
    assert_eq!((st.kind, st.size), (Kind::File, 3));
    let ls = repo.files_ls("/a/b").unwrap();
    assert_eq!(ls.len(), 1);
    assert_eq!(
        (ls[0].name.as_str(), ls[0].kind, ls[0].size),
        ("f", Kind::File, 3)
    );

    repo.files_mv("/a/b/f", "/a/g").unwrap();
    repo.files_cp("/a/g", "/a/b/", false).unwrap();
    assert_eq!(read(&repo, "/a/b/g"), b"abc");
    let root = repo.files_flush("/").unwrap();
    drop(repo);

    let repo = Repo::open(&dir.path().join("repo")).unwrap();
    assert_eq!(repo.files_flush("/").unwrap(), root);
    assert_eq!(read(&repo, "/a/g"), b"abc");
    repo.files_rm(&["/a".into()], true, false).unwrap();
    assert!(repo.files_stat("/a").is_err());
    assert_eq!(
        repo.files_stat("/").unwrap().cid.to_string(),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
}

#[test]
fn mfs_errors_are_kubos_and_change_nothing() {
    let (_dir, repo) = repo();
    repo.files_mkdir("/d", false, None, None).unwrap();
    write(&repo, "/d/f", b"x", create());
    let before = repo.files_flush("/").unwrap();
    let msg = |r: Result<(), ipfs_kit_node::Error>| r.unwrap_err().to_string();
    assert_eq!(
        msg(repo.files_mkdir("d", false, None, None)),
        "paths must start with a leading slash"
    );
    assert_eq!(
        msg(repo.files_mkdir("/d", false, None, None)),
        "file already exists"
    );
    assert_eq!(
        msg(repo.files_mkdir("/x/y", false, None, None)),
        "file does not exist"
    );
    assert_eq!(
        msg(repo.files_write("/d/nope", &mut &b"x"[..], &WriteOptions::default())),
        "file does not exist"
    );
    assert_eq!(
        msg(repo.files_rm(&["/d".into()], false, false)),
        "\"/d\" is a directory, use -r to remove directories"
    );
    assert_eq!(
        msg(repo.files_rm(&["/".into()], true, false)),
        "cannot delete root"
    );
    assert_eq!(
        msg(repo.files_rm(&["/zz".into()], true, false)),
        "file does not exist"
    );
    assert_eq!(
        msg(repo.files_cp("/d/f", "/d/f", false)),
        "directory already has entry by that name"
    );
    assert!(repo.files_read("/d", 0, None, &mut Vec::new()).is_err());
    assert_eq!(
        msg(repo.files_write("/d/f/g", &mut &b"x"[..], &create())),
        "cannot access d/f/g: Not a directory"
    );
    assert!(repo.files_stat("/d/f/g").is_err());
    repo.files_rm(&["/zz".into()], true, true).unwrap();
    assert_eq!(repo.files_flush("/").unwrap(), before);
}

#[test]
fn mfs_cids_match_the_importer() {
    let (_dir, repo) = repo();
    let data = b"hello world\n";
    // A directory holding an added file is the directory `add -w` builds.
    let added = repo
        .add_reader(&mut &data[..], &AddOptions::default())
        .unwrap();
    repo.files_cp(&format!("/ipfs/{}", added.cid), "/hello.txt", false)
        .unwrap();
    let wrapped = {
        let mut blocks = Vec::new();
        let profile = ImportProfile::default();
        let mut im = ipfs_kit_unixfs::Importer::new(&profile, &mut blocks);
        im.directory(vec![ipfs_kit_unixfs::DirEntry {
            name: "hello.txt".into(),
            node: added.clone(),
        }])
        .unwrap()
    };
    assert_eq!(repo.files_flush("/").unwrap(), wrapped.cid);
    // Kubo's MFS CID for "Hello world" written to a new file (interface-ipfs-core's vector).
    write(&repo, "/hw.txt", b"Hello world", create());
    assert_eq!(
        repo.files_stat("/hw.txt").unwrap().cid.to_string(),
        "Qmetpc7cZmN25Wcc6R27cGCAvCDqCS5GjHG4v7xABEfpmJ"
    );
    repo.files_rm(&["/hw.txt".into()], false, false).unwrap();
    // A fresh write is a trickle DAG, as Kubo's MFS writes are.
    write(&repo, "/w.txt", data, create());
    let trickle = ImportProfile {
        layout: Layout::Trickle,
        ..ImportProfile::default()
    };
    let mut blocks = Vec::new();
    let expect = ipfs_kit_unixfs::Importer::new(&trickle, &mut blocks)
        .file(&mut &data[..])
        .unwrap();
    assert_eq!(repo.files_stat("/w.txt").unwrap().cid, expect.cid);
    // CIDv1 directories stay CIDv1; chcid turns the root into one.
    repo.files_mkdir("/v1", false, Some(1), None).unwrap();
    assert!(repo
        .files_stat("/v1")
        .unwrap()
        .cid
        .to_string()
        .starts_with("bafy"));
    repo.files_chcid("/", Some(1), None).unwrap();
    assert!(repo
        .files_flush("/")
        .unwrap()
        .to_string()
        .starts_with("bafy"));
}

#[test]
fn mfs_directories_shard_over_the_threshold() {
    let (_dir, repo) = repo();
    let added = repo
        .add_reader(&mut &b"x"[..], &AddOptions::default())
        .unwrap();
    // 940 links of 250-byte names and 34-byte CIDs pass the 256 KiB estimate.
    let names: Vec<String> = (0..940)
        .map(|i| format!("{i:05}{}", "n".repeat(245)))
        .collect();
    for n in &names {
        repo.files_cp(&format!("/ipfs/{}", added.cid), &format!("/big/{n}"), true)
            .unwrap();
    }
    let big = repo.files_stat("/big").unwrap().cid;
    assert!(ipfs_kit_unixfs::reader::stat(&repo, &big).unwrap().sharded);
    assert_eq!(read(&repo, &format!("/big/{}", names[939])), b"x");
    assert_eq!(repo.files_ls("/big").unwrap().len(), 940);
    // The same entries built at once give the same shard.
    let entries = names
        .iter()
        .map(|n| ipfs_kit_unixfs::DirEntry {
            name: n.clone(),
            node: added.clone(),
        })
        .collect();
    let mut blocks = Vec::new();
    let profile = ImportProfile::default();
    let direct = ipfs_kit_unixfs::Importer::new(&profile, &mut blocks)
        .directory(entries)
        .unwrap();
    assert_eq!(direct.cid, big);
    // Removing entries below the threshold turns it back into a plain directory.
    let gone: Vec<String> = names[..200].iter().map(|n| format!("/big/{n}")).collect();
    repo.files_rm(&gone, false, false).unwrap();
    let small = repo.files_stat("/big").unwrap().cid;
    assert!(
        !ipfs_kit_unixfs::reader::stat(&repo, &small)
            .unwrap()
            .sharded
    );
}

/// Sets the HAMT threshold through Kubo's old key name, as interface-ipfs-core's harness does.
fn set_threshold(repo: &Repo, size: &str) {
    repo.update_config(|c| c.with_kubo("Internal.UnixFSShardingSizeThreshold", size.into()))
        .expect("set threshold");
}

fn sharded(repo: &Repo, path: &str) -> bool {
    let cid = repo.files_stat(path).expect("stat").cid;
    ipfs_kit_unixfs::reader::stat(repo, &cid)
        .expect("unixfs stat")
        .sharded
}

#[test]
fn mfs_sharding_follows_the_configured_threshold() {
    let (_dir, repo) = repo();
    set_threshold(&repo, "1B");
    assert_eq!(
        repo.config()
            .kubo_get("Import.UnixFSHAMTDirectorySizeThreshold")
            .unwrap(),
        "1B"
    );
    // 1B: an empty directory is basic, any other is a HAMT, up to the root.
    repo.files_mkdir("/d", false, None, None).unwrap();
    assert!(!sharded(&repo, "/d"));
    assert!(sharded(&repo, "/"));
    write(&repo, "/d/f", b"x", create());
    assert!(sharded(&repo, "/d"));
    write(&repo, "/d/g", b"y", create());
    repo.files_mv("/d/g", "/d/h").unwrap();
    assert!(sharded(&repo, "/d"));
    assert_eq!(read(&repo, "/d/h"), b"y");
    repo.files_rm(&["/d/f".into(), "/d/h".into()], false, false)
        .unwrap();
    assert!(!sharded(&repo, "/d"));
    // What MFS builds is what `add` builds with the same threshold.
    write(&repo, "/d/f", b"x", create());
    let f = repo.files_stat("/d/f").unwrap().cid;
    let added = {
        let mut blocks = Vec::new();
        let profile = ImportProfile {
            hamt_threshold: 1,
            ..ImportProfile::default()
        };
        let mut im = ipfs_kit_unixfs::Importer::new(&profile, &mut blocks);
        let node = ipfs_kit_unixfs::Node {
            cid: f,
            filesize: 1,
            tsize: repo.files_stat("/d/f").unwrap().cumulative_size,
        };
        im.directory(vec![ipfs_kit_unixfs::DirEntry {
            name: "f".into(),
            node,
        }])
        .unwrap()
    };
    assert_eq!(repo.files_stat("/d").unwrap().cid, added.cid);

    // Back at 256 KiB, a HAMT far below the threshold stays one while it grows or keeps its
    // size, and turns basic when an edit shrinks it (boxo's DynamicDirectory).
    set_threshold(&repo, "256KiB");
    write(&repo, "/d/g", b"y", create());
    assert!(sharded(&repo, "/d"));
    write(&repo, "/d/g", b"z", create());
    assert!(sharded(&repo, "/d"));
    repo.files_rm(&["/d/g".into()], false, false).unwrap();
    assert!(!sharded(&repo, "/d"));
    // A basic directory past the threshold is not sharded by a removal, only when an entry is put.
    set_threshold(&repo, "1B");
    repo.files_rm(&["/d/f".into()], false, false).unwrap();
    assert!(!sharded(&repo, "/d"));
    set_threshold(&repo, "256KiB");
    for n in ["a", "b", "c"] {
        write(&repo, &format!("/d/{n}"), n.as_bytes(), create());
    }
    assert!(!sharded(&repo, "/d"));
    set_threshold(&repo, "1B");
    repo.files_rm(&["/d/a".into()], false, false).unwrap();
    assert!(!sharded(&repo, "/d"));
    write(&repo, "/d/a", b"a", create());
    assert!(sharded(&repo, "/d"));
    // chcid keeps the shape.
    repo.files_chcid("/d", Some(1), None).unwrap();
    assert!(sharded(&repo, "/d"));
    // 0 turns sharding off: directories stay basic however big.
    set_threshold(&repo, "0");
    repo.files_mkdir("/e", false, None, None).unwrap();
    write(&repo, "/e/a", b"a", create());
    assert!(!sharded(&repo, "/e"));
}

#[test]
fn add_shards_by_the_configured_threshold() {
    let (dir, repo) = repo();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/a"), b"a").unwrap();
    std::fs::write(src.join("b"), b"b").unwrap();
    // The daemon and the CLI make an add's profile from the repo's config, as here.
    let root = |repo: &Repo| {
        let opts = AddOptions {
            profile: repo.import_profile(&ImportFlags::default()).unwrap(),
            ..AddOptions::default()
        };
        let added = repo
            .add_paths(std::slice::from_ref(&src), &opts, &mut |_| {}, &mut |_| {})
            .unwrap();
        added.last().unwrap().cid
    };
    let plain = root(&repo);
    assert!(
        !ipfs_kit_unixfs::reader::stat(&repo, &plain)
            .unwrap()
            .sharded
    );
    set_threshold(&repo, "1B");
    let hamt = root(&repo);
    assert!(ipfs_kit_unixfs::reader::stat(&repo, &hamt).unwrap().sharded);
    assert_eq!(
        ipfs_kit_unixfs::reader::list(&repo, &hamt).unwrap().len(),
        2
    );
}

#[test]
fn gc_keeps_mfs_content() {
    let (_dir, repo) = repo();
    write(&repo, "/kept", b"in mfs only", create());
    let cid = repo.files_stat("/kept").unwrap().cid;
    repo.gc().unwrap();
    assert_eq!(read(&repo, "/kept"), b"in mfs only");
    repo.files_rm(&["/kept".into()], false, false).unwrap();
    let removed = repo.gc().unwrap();
    assert!(removed.contains(&cid));
}

#[test]
fn keys_live_in_the_keystore() {
    let (dir, repo) = repo();
    let k = repo.key_gen("k1", "ed25519", None).unwrap();
    assert!(k.id.to_string().starts_with("12D3KooW"));
    let file = std::fs::read_dir(dir.path().join("repo/keystore"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    let names: Vec<String> = repo
        .key_list()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["self", "k1"]);
    assert_eq!(
        repo.key_gen("k1", "ed25519", None).unwrap_err().to_string(),
        "key with name 'k1' already exists"
    );
    assert_eq!(
        repo.key_gen("self", "rsa", None).unwrap_err().to_string(),
        "cannot create key with name 'self'"
    );
    let (renamed, overwrote) = repo.key_rename("k1", "k2", false).unwrap();
    assert_eq!((renamed.id, overwrote), (k.id, false));
    let pem = repo.key_export("k2", KeyFormat::PemPkcs8).unwrap();
    let pb = repo.key_export("k2", KeyFormat::Libp2pProtobuf).unwrap();
    assert_eq!(repo.key_import("k3", &pem).unwrap().id, k.id);
    assert!(repo.key_import("k4", &pb[..10]).is_err());
    let removed = repo.key_rm(&["k2".into(), "k3".into()]).unwrap();
    assert_eq!(removed.len(), 2);
    assert_eq!(
        repo.key_rm(&["k2".into()]).unwrap_err().to_string(),
        "no key named k2 was found"
    );
    assert!(repo.key_rm(&["self".into()]).is_err());
    assert_eq!(repo.key_import("k5", &pb).unwrap().id, k.id);
}

#[test]
fn rsa_keys_in_the_keystore_and_in_names() {
    let (dir, repo) = repo();
    for (size, message) in [
        (Some(1024), "rsa keys must be >= 2048 bits to be useful"),
        (Some(-5), "rsa keys must be >= 2048 bits to be useful"),
        (Some(8200), "rsa keys must be <= 8192 bits"),
    ] {
        assert_eq!(
            repo.key_gen("r", "rsa", size).unwrap_err().to_string(),
            message
        );
    }
    assert_eq!(
        repo.key_gen("r", "secp256k1", None)
            .unwrap_err()
            .to_string(),
        "unrecognized key type: secp256k1"
    );
    // The name is checked before the type, as Kubo does.
    assert_eq!(
        repo.key_gen("self", "dsa", None).unwrap_err().to_string(),
        "cannot create key with name 'self'"
    );
    let k = repo.key_gen("r", "rsa", Some(-1)).unwrap();
    assert!(k.id.to_string().starts_with("Qm"), "{}", k.id);
    assert!(k.id.to_name().to_string().starts_with("k2k4r8"));
    let path = dir.path().join("repo/keystore").join(
        std::fs::read_dir(dir.path().join("repo/keystore"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name(),
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The file is the PrivateKey protobuf with type RSA (0), as Kubo's keystore holds.
    assert_eq!(&std::fs::read(&path).unwrap()[..2], &[0x08, 0x00]);
    // Both export formats import back to the same key.
    let pb = repo.key_export("r", KeyFormat::Libp2pProtobuf).unwrap();
    let pem = repo.key_export("r", KeyFormat::PemPkcs8).unwrap();
    assert!(pem.starts_with(b"-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(repo.key_import("r-pb", &pb).unwrap().id, k.id);
    assert_eq!(repo.key_import("r-pem", &pem).unwrap().id, k.id);
    let (renamed, _) = repo.key_rename("r", "r2", false).unwrap();
    assert_eq!(renamed.id, k.id);
    let listed: Vec<_> = repo
        .key_list()
        .unwrap()
        .into_iter()
        .map(|k| (k.name, k.id))
        .collect();
    assert_eq!(
        listed[1..],
        [
            ("r-pb".to_string(), k.id),
            ("r-pem".to_string(), k.id),
            ("r2".to_string(), k.id)
        ]
    );
    // An IPNS record signed with the RSA key resolves through its k2k4r8 name and carries the key.
    let added = repo
        .add_reader(&mut &b"rsa target\n"[..], &AddOptions::default())
        .unwrap();
    let opts = PublishOptions {
        allow_offline: true,
        key: "r2".into(),
        ..Default::default()
    };
    let (name, value) = repo.name_publish(&added.cid.to_string(), &opts).unwrap();
    assert_eq!(name, k.id.to_name());
    assert_eq!(repo.name_resolve(&name.to_string(), true).unwrap(), value);
    assert_eq!(
        repo.name_resolve(&format!("/ipns/{}", k.id), true).unwrap(),
        value
    );
    let record = repo.ipns_record(&name).unwrap().unwrap();
    assert!(record.public_key().is_some());
    let removed = repo.key_rm(&["r2".into(), "r-pb".into()]).unwrap();
    assert!(removed.iter().all(|r| r.id == k.id));
}

#[test]
fn names_publish_and_resolve_locally() {
    let (dir, repo) = repo();
    let added = repo
        .add_reader(&mut &b"ipns target\n"[..], &AddOptions::default())
        .unwrap();
    let path = format!("/ipfs/{}", added.cid);
    let err = repo
        .name_publish(&path, &PublishOptions::default())
        .unwrap_err();
    assert!(err.to_string().starts_with("can't publish while offline"));
    let opts = PublishOptions {
        allow_offline: true,
        ..Default::default()
    };
    let (name, value) = repo.name_publish(&added.cid.to_string(), &opts).unwrap();
    assert_eq!(value, path);
    assert!(name.to_string().starts_with("k51"));
    assert_eq!(repo.name_resolve(&name.to_string(), true).unwrap(), path);
    assert_eq!(repo.ipns_record(&name).unwrap().unwrap().sequence(), 0);
    // A key's name pointing at self's name resolves through both.
    repo.key_gen("other", "ed25519", None).unwrap();
    let other = PublishOptions {
        key: "other".into(),
        ..opts.clone()
    };
    let (name2, _) = repo.name_publish(&format!("/ipns/{name}"), &other).unwrap();
    assert_eq!(
        repo.name_resolve(&format!("/ipns/{name2}"), true).unwrap(),
        path
    );
    assert_eq!(
        repo.name_resolve(&name2.to_string(), false).unwrap(),
        format!("/ipns/{name}")
    );
    let mut out = Vec::new();
    repo.cat(&format!("/ipns/{name2}"), 0, None, &mut out)
        .unwrap();
    assert_eq!(out, b"ipns target\n");
    // A new value bumps the sequence; the record survives a reopen.
    let dir_cid = repo
        .add_reader(&mut &b"v2"[..], &AddOptions::default())
        .unwrap()
        .cid;
    repo.name_publish(&dir_cid.to_string(), &opts).unwrap();
    drop(repo);
    let repo = Repo::open(&dir.path().join("repo")).unwrap();
    assert_eq!(repo.ipns_record(&name).unwrap().unwrap().sequence(), 1);
    assert_eq!(
        repo.name_resolve(&name.to_string(), true).unwrap(),
        format!("/ipfs/{dir_cid}")
    );
    let unknown = ipfs_kit_ipns::Keypair::from_seed(&[9; 32])
        .public()
        .peer_id()
        .to_name();
    assert_eq!(
        repo.name_resolve(&unknown.to_string(), true)
            .unwrap_err()
            .to_string(),
        "could not resolve name"
    );
    let low = PublishOptions {
        sequence: Some(1),
        ..opts
    };
    assert!(repo.name_publish(&dir_cid.to_string(), &low).is_err());
}
