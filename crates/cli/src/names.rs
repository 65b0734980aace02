//! `ipfs-kit files`, `ipfs-kit key` and `ipfs-kit name`: MFS, the keystore and IPNS on the repo,
//! printing what Kubo prints.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use ipfs_kit_node::{parse_go_duration, KeyFormat, PublishOptions, Repo, WriteOptions};
use ipfs_kit_unixfs::Kind;

/// `files` subcommands.
#[derive(Subcommand)]
pub enum FilesCmd {
    /// List a directory (or show a file).
    Ls {
        /// MFS path (default /).
        #[arg(default_value = "/")]
        path: String,
        /// Show type, CID and size.
        #[arg(short, long)]
        long: bool,
    },
    /// Show a node's CID, size, cumulative size, child count and type.
    Stat {
        /// MFS path or /ipfs/ path.
        path: String,
        /// Print only the CID.
        #[arg(long)]
        hash: bool,
        /// Print only the cumulative size.
        #[arg(long)]
        size: bool,
    },
    /// Write a file's bytes to stdout.
    Read {
        /// MFS path.
        path: String,
        /// Byte offset to start at.
        #[arg(short, long, default_value_t = 0)]
        offset: u64,
        /// Maximum number of bytes to read.
        #[arg(short = 'n', long)]
        count: Option<u64>,
    },
    /// Write a local file (or stdin) into an MFS file.
    Write {
        /// MFS path.
        path: String,
        /// Input file; `-` or nothing for stdin.
        file: Option<PathBuf>,
        /// Byte offset to write at.
        #[arg(short, long, default_value_t = 0)]
        offset: u64,
        /// Create the file if it does not exist.
        #[arg(short = 'e', long)]
        create: bool,
        /// Create missing parent directories.
        #[arg(short, long)]
        parents: bool,
        /// Truncate the file before writing.
        #[arg(short, long)]
        truncate: bool,
        /// Write at most this many bytes.
        #[arg(short = 'n', long)]
        count: Option<u64>,
        /// Store leaves as raw blocks.
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        raw_leaves: Option<bool>,
        /// CID version of the file.
        #[arg(long)]
        cid_version: Option<u8>,
        /// Hash function of the file.
        #[arg(long)]
        hash: Option<String>,
    },
    /// Make a directory.
    Mkdir {
        /// MFS path.
        path: String,
        /// Make parent directories as needed; no error if it exists.
        #[arg(short, long)]
        parents: bool,
        /// CID version of the new directories.
        #[arg(long)]
        cid_version: Option<u8>,
        /// Hash function of the new directories.
        #[arg(long)]
        hash: Option<String>,
    },
    /// Copy an MFS or /ipfs/ path into MFS (DST ending in / copies into that directory).
    Cp {
        /// Source.
        source: String,
        /// Destination.
        dest: String,
        /// Make parent directories as needed.
        #[arg(short, long)]
        parents: bool,
    },
    /// Move (rename) within MFS.
    Mv {
        /// Source.
        source: String,
        /// Destination.
        dest: String,
    },
    /// Remove files or directories.
    Rm {
        /// MFS paths.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Remove directories recursively.
        #[arg(short, long)]
        recursive: bool,
        /// Ignore missing paths; remove directories too.
        #[arg(long)]
        force: bool,
    },
    /// Print the CID at a path (every edit is already durable).
    Flush {
        /// MFS path (default /).
        #[arg(default_value = "/")]
        path: String,
    },
    /// Change a directory's CID version or hash function.
    Chcid {
        /// MFS path (default /).
        #[arg(default_value = "/")]
        path: String,
        /// CID version.
        #[arg(long)]
        cid_version: Option<u8>,
        /// Hash function.
        #[arg(long)]
        hash: Option<String>,
    },
}

/// `key` subcommands.
#[derive(Subcommand)]
pub enum KeyCmd {
    /// Generate a new Ed25519 key and print its IPNS name.
    Gen {
        /// Key name.
        name: String,
        /// Key type (only ed25519).
        #[arg(short = 't', long = "type", default_value = "ed25519")]
        kind: String,
    },
    /// List key names (with -l, their IPNS names too).
    List {
        /// Show IPNS names.
        #[arg(short)]
        l: bool,
    },
    /// Rename a key.
    Rename {
        /// Current name.
        name: String,
        /// New name.
        new_name: String,
        /// Overwrite a key with the new name.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove keys.
    Rm {
        /// Key names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Import a key file (libp2p protobuf or PKCS#8 PEM).
    Import {
        /// Name for the key.
        name: String,
        /// Key file.
        file: PathBuf,
    },
    /// Export a key to a file (default NAME.key).
    Export {
        /// Key name.
        name: String,
        /// Output file.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// libp2p-protobuf-cleartext or pem-pkcs8-cleartext.
        #[arg(long, default_value = "libp2p-protobuf-cleartext")]
        format: String,
    },
}

/// `name` subcommands.
#[derive(Subcommand)]
pub enum NameCmd {
    /// Sign and store an IPNS record pointing a key's name at a path.
    Publish {
        /// /ipfs/ or /ipns/ path (or a CID).
        path: String,
        /// Key to publish with.
        #[arg(short, long, default_value = "self")]
        key: String,
        /// Publish although the node is offline (it always is, for now).
        #[arg(long)]
        allow_offline: bool,
        /// How long the record is valid (Go duration).
        #[arg(short = 't', long, default_value = "48h")]
        lifetime: String,
        /// Cache TTL written into the record (Go duration).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Check that the path resolves before publishing.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        resolve: bool,
    },
    /// Resolve a name (default: the node's own) to a path.
    Resolve {
        /// IPNS name or /ipns/ path.
        name: Option<String>,
        /// Resolve until the result is not an IPNS name.
        #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
        recursive: bool,
    },
}

/// Runs a `files` subcommand.
pub fn files(repo: &Repo, cmd: FilesCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        FilesCmd::Ls { path, long } => {
            for e in repo.files_ls(&path)? {
                if long {
                    let slash = if e.kind == Kind::Directory { "/" } else { "" };
                    writeln!(out, "{}{slash}\t{}\t{}", e.name, e.cid, e.size)?;
                } else {
                    writeln!(out, "{}", e.name)?;
                }
            }
        }
        FilesCmd::Stat { path, hash, size } => {
            let s = repo.files_stat(&path)?;
            if hash {
                writeln!(out, "{}", s.cid)?;
            } else if size {
                writeln!(out, "{}", s.cumulative_size)?;
            } else {
                let kind = if s.kind == Kind::Directory {
                    "directory"
                } else {
                    "file"
                };
                writeln!(
                    out,
                    "{}\nSize: {}\nCumulativeSize: {}\nChildBlocks: {}\nType: {kind}",
                    s.cid, s.size, s.cumulative_size, s.blocks
                )?;
            }
        }
        FilesCmd::Read {
            path,
            offset,
            count,
        } => {
            repo.files_read(&path, offset, count, out)?;
        }
        FilesCmd::Write {
            path,
            file,
            offset,
            create,
            parents,
            truncate,
            count,
            raw_leaves,
            cid_version,
            hash,
        } => {
            let opts = WriteOptions {
                offset,
                create,
                parents,
                truncate,
                count,
                raw_leaves,
                cid_version,
                hash,
            };
            match file {
                Some(p) if p.as_os_str() != "-" => {
                    let mut f =
                        std::fs::File::open(&p).with_context(|| format!("open {}", p.display()))?;
                    repo.files_write(&path, &mut f, &opts)?;
                }
                _ => repo.files_write(&path, &mut io::stdin().lock(), &opts)?,
            }
        }
        FilesCmd::Mkdir {
            path,
            parents,
            cid_version,
            hash,
        } => repo.files_mkdir(&path, parents, cid_version, hash.as_deref())?,
        FilesCmd::Cp {
            source,
            dest,
            parents,
        } => repo.files_cp(&source, &dest, parents)?,
        FilesCmd::Mv { source, dest } => repo.files_mv(&source, &dest)?,
        FilesCmd::Rm {
            paths,
            recursive,
            force,
        } => repo.files_rm(&paths, recursive, force)?,
        FilesCmd::Flush { path } => writeln!(out, "{}", repo.files_flush(&path)?)?,
        FilesCmd::Chcid {
            path,
            cid_version,
            hash,
        } => repo.files_chcid(&path, cid_version, hash.as_deref())?,
    }
    Ok(())
}

/// Runs a `key` subcommand.
pub fn key(repo: &Repo, cmd: KeyCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        KeyCmd::Gen { name, kind } => {
            if kind != "ed25519" {
                bail!("only ed25519 keys are supported by ipfs-kit");
            }
            writeln!(out, "{}", repo.key_gen(&name)?.id.to_name())?;
        }
        KeyCmd::List { l } => {
            for k in repo.key_list()? {
                if l {
                    writeln!(out, "{} {}", k.id.to_name(), k.name)?;
                } else {
                    writeln!(out, "{}", k.name)?;
                }
            }
        }
        KeyCmd::Rename {
            name,
            new_name,
            force,
        } => {
            let (k, overwrite) = repo.key_rename(&name, &new_name, force)?;
            let note = if overwrite { " (overwrote a key)" } else { "" };
            writeln!(out, "Key {} renamed to {}{note}", k.id.to_name(), k.name)?;
        }
        KeyCmd::Rm { names } => {
            for k in repo.key_rm(&names)? {
                writeln!(out, "{}", k.id.to_name())?;
            }
        }
        KeyCmd::Import { name, file } => {
            let mut bytes = Vec::new();
            std::fs::File::open(&file)
                .and_then(|f| f.take(64 << 10).read_to_end(&mut bytes))
                .with_context(|| format!("read {}", file.display()))?;
            writeln!(out, "{}", repo.key_import(&name, &bytes)?.id.to_name())?;
        }
        KeyCmd::Export {
            name,
            output,
            format,
        } => {
            let bytes = repo.key_export(&name, KeyFormat::from_name(&format)?)?;
            let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}.key")));
            if path.exists() {
                bail!("{} already exists", path.display());
            }
            ipfs_kit_node::write_atomic_mode(&path, &bytes, 0o600)?;
        }
    }
    Ok(())
}

/// Runs a `name` subcommand.
pub fn name(repo: &Repo, cmd: NameCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        NameCmd::Publish {
            path,
            key,
            allow_offline,
            lifetime,
            ttl,
            resolve,
        } => {
            let opts = PublishOptions {
                key,
                lifetime: parse_go_duration(&lifetime)?,
                ttl: parse_go_duration(&ttl)?,
                resolve,
                allow_offline,
                ..PublishOptions::default()
            };
            let (name, value) = repo.name_publish(&path, &opts)?;
            writeln!(out, "Published to {name}: {value}")?;
        }
        NameCmd::Resolve { name, recursive } => {
            let name = match name {
                Some(n) => n,
                None => repo
                    .keypair("self")?
                    .public()
                    .peer_id()
                    .to_name()
                    .to_string(),
            };
            writeln!(out, "{}", repo.name_resolve(&name, recursive)?)?;
        }
    }
    Ok(())
}
