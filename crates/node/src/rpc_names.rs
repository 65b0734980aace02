//! The `files/*`, `key/*` and `name/*` side of [`crate::daemon::NodeBackend`]: the repo's MFS,
//! keystore and IPNS in the RPC API's terms.

use std::io::{Read, Write};

use ipfs_kit_rpc::{FilesEntry, FilesStat, FilesWrite, KeyEntry, NamePublish, RpcError};
use ipfs_kit_unixfs::Kind;

use crate::{parse_go_duration, Error, KeyFormat, KeyInfo, PublishOptions, Repo, WriteOptions};

fn rpc(e: Error) -> RpcError {
    RpcError::normal(e.to_string())
}

fn key_entry(k: KeyInfo) -> KeyEntry {
    KeyEntry {
        name: k.name,
        id: k.id.to_name().to_string(),
        peer_id: k.id.to_string(),
    }
}

pub(crate) fn files_stat(repo: &Repo, path: &str) -> Result<FilesStat, RpcError> {
    let s = repo.files_stat(path).map_err(rpc)?;
    Ok(FilesStat {
        hash: s.cid.to_string(),
        size: s.size,
        cumulative_size: s.cumulative_size,
        blocks: s.blocks,
        kind: match s.kind {
            Kind::Directory => "directory",
            Kind::Symlink => "symlink",
            _ => "file",
        }
        .to_string(),
    })
}

pub(crate) fn files_ls(repo: &Repo, path: &str) -> Result<Vec<FilesEntry>, RpcError> {
    Ok(repo
        .files_ls(path)
        .map_err(rpc)?
        .into_iter()
        .map(|e| FilesEntry {
            name: e.name,
            kind: u8::from(e.kind == Kind::Directory),
            size: e.size,
            hash: e.cid.to_string(),
        })
        .collect())
}

pub(crate) fn files_read(
    repo: &Repo,
    path: &str,
    offset: u64,
    count: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), RpcError> {
    repo.files_read(path, offset, count, out)
        .map(|_| ())
        .map_err(rpc)
}

pub(crate) fn files_write(
    repo: &Repo,
    path: &str,
    data: &mut dyn Read,
    o: &FilesWrite,
) -> Result<(), RpcError> {
    let opts = WriteOptions {
        offset: o.offset,
        create: o.create,
        parents: o.parents,
        truncate: o.truncate,
        count: o.count,
        raw_leaves: o.raw_leaves,
        cid_version: o.cid_version,
        hash: o.hash.clone(),
    };
    repo.files_write(path, data, &opts).map_err(rpc)
}

pub(crate) fn key_gen(
    repo: &Repo,
    name: &str,
    kind: &str,
    size: Option<i64>,
) -> Result<KeyEntry, RpcError> {
    repo.key_gen(name, kind, size).map(key_entry).map_err(rpc)
}

pub(crate) fn key_list(repo: &Repo) -> Result<Vec<KeyEntry>, RpcError> {
    Ok(repo
        .key_list()
        .map_err(rpc)?
        .into_iter()
        .map(key_entry)
        .collect())
}

pub(crate) fn key_rename(
    repo: &Repo,
    old: &str,
    new: &str,
    force: bool,
) -> Result<(KeyEntry, bool), RpcError> {
    let (k, overwrite) = repo.key_rename(old, new, force).map_err(rpc)?;
    Ok((key_entry(k), overwrite))
}

pub(crate) fn key_rm(repo: &Repo, names: &[String]) -> Result<Vec<KeyEntry>, RpcError> {
    Ok(repo
        .key_rm(names)
        .map_err(rpc)?
        .into_iter()
        .map(key_entry)
        .collect())
}

pub(crate) fn key_import(repo: &Repo, name: &str, data: &[u8]) -> Result<KeyEntry, RpcError> {
    repo.key_import(name, data).map(key_entry).map_err(rpc)
}

pub(crate) fn key_export(repo: &Repo, name: &str, format: &str) -> Result<Vec<u8>, RpcError> {
    let format = KeyFormat::from_name(format).map_err(rpc)?;
    repo.key_export(name, format).map_err(rpc)
}

pub(crate) fn name_publish(
    repo: &Repo,
    path: &str,
    o: &NamePublish,
) -> Result<(String, String, String), RpcError> {
    let defaults = PublishOptions::default();
    let duration = |v: &Option<String>, d| match v {
        Some(s) => parse_go_duration(s).map_err(rpc),
        None => Ok(d),
    };
    let opts = PublishOptions {
        key: o.key.clone(),
        lifetime: duration(&o.lifetime, defaults.lifetime)?,
        ttl: duration(&o.ttl, defaults.ttl)?,
        resolve: o.resolve,
        allow_offline: o.allow_offline,
        v1_compat: o.v1_compat,
        sequence: o.sequence,
    };
    let (name, value) = repo.name_publish(path, &opts).map_err(rpc)?;
    Ok((name.to_string(), name.peer_id().to_string(), value))
}

pub(crate) fn name_resolve(
    repo: &Repo,
    name: Option<&str>,
    recursive: bool,
) -> Result<String, RpcError> {
    let own;
    let name = match name {
        Some(n) => n,
        None => {
            own = repo
                .keypair(crate::keys::SELF_KEY)
                .map_err(rpc)?
                .public()
                .peer_id()
                .to_name()
                .to_string();
            &own
        }
    };
    repo.name_resolve(name, recursive).map_err(rpc)
}
