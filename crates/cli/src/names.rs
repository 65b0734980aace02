//! `ipfs-kit files`, `ipfs-kit key` and `ipfs-kit name`: MFS, the keystore and IPNS on the repo,
//! printing what Kubo prints.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
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
        /// How to write.
        #[command(flatten)]
        flags: WriteFlags,
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

/// The options of `files write`.
#[derive(Args, Clone, Debug)]
pub struct WriteFlags {
    /// Byte offset to write at.
    #[arg(short, long, default_value_t = 0)]
    pub offset: u64,
    /// Create the file if it does not exist.
    #[arg(short = 'e', long)]
    pub create: bool,
    /// Create missing parent directories.
    #[arg(short, long)]
    pub parents: bool,
    /// Truncate the file before writing.
    #[arg(short, long)]
    pub truncate: bool,
    /// Write at most this many bytes.
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// Store leaves as raw blocks.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub raw_leaves: Option<bool>,
    /// CID version of the file.
    #[arg(long)]
    pub cid_version: Option<u8>,
    /// Hash function of the file.
    #[arg(long)]
    pub hash: Option<String>,
}

impl From<WriteFlags> for WriteOptions {
    fn from(f: WriteFlags) -> Self {
        WriteOptions {
            offset: f.offset,
            create: f.create,
            parents: f.parents,
            truncate: f.truncate,
            count: f.count,
            raw_leaves: f.raw_leaves,
            cid_version: f.cid_version,
            hash: f.hash,
        }
    }
}

/// `key` subcommands.
#[derive(Subcommand)]
pub enum KeyCmd {
    /// Generate a new key (Ed25519 or RSA) and print its IPNS name.
    Gen {
        /// Key name.
        name: String,
        /// Key type: ed25519 or rsa.
        #[arg(short = 't', long = "type", default_value = "ed25519")]
        kind: String,
        /// Size of an RSA key in bits (2048 to 8192; default 2048).
        #[arg(short = 's', long = "size", allow_negative_numbers = true)]
        size: Option<i64>,
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
        /// Publish although the node is offline (or has no peer that takes the record).
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
    /// IPNS over pubsub: state, subs, cancel (needs the daemon).
    #[command(subcommand)]
    Pubsub(NamePubsubCmd),
}

/// `name pubsub`: IPNS over pubsub (`--enable-namesys-pubsub`, `ipns.use_pubsub`).
#[derive(Subcommand, Debug)]
pub enum NamePubsubCmd {
    /// Whether IPNS over pubsub is on.
    State,
    /// The names followed over pubsub.
    Subs,
    /// Stop following a name over pubsub.
    Cancel {
        /// The name (`/ipns/k51…` or `k51…`).
        name: String,
    },
}

/// Runs a `files` subcommand.
pub fn files(repo: &Repo, cmd: FilesCmd, out: &mut dyn Write) -> Result<()> {
    match cmd {
        FilesCmd::Ls { path, long } => {
            for e in repo.files_ls(&path)? {
                let dir = e.kind == Kind::Directory;
                print_ls_entry(out, &e.name, dir, &e.cid.to_string(), e.size, long)?;
            }
        }
        FilesCmd::Stat { path, hash, size } => {
            let s = repo.files_stat(&path)?;
            let stat = Stat {
                cid: s.cid.to_string(),
                dir: s.kind == Kind::Directory,
                size: s.size,
                cumulative_size: s.cumulative_size,
                blocks: s.blocks,
            };
            print_stat(out, &stat, hash, size)?;
        }
        FilesCmd::Read {
            path,
            offset,
            count,
        } => {
            repo.files_read(&path, offset, count, out)?;
        }
        FilesCmd::Write { path, file, flags } => {
            let opts = WriteOptions::from(flags);
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
        KeyCmd::Gen { name, kind, size } => {
            writeln!(out, "{}", repo.key_gen(&name, &kind, size)?.id.to_name())?;
        }
        KeyCmd::List { l } => {
            for k in repo.key_list()? {
                print_key(out, &k.name, &k.id.to_name().to_string(), l)?;
            }
        }
        KeyCmd::Rename {
            name,
            new_name,
            force,
        } => {
            let (k, overwrite) = repo.key_rename(&name, &new_name, force)?;
            print_renamed(out, &k.id.to_name().to_string(), &k.name, overwrite)?;
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
            write_key_file(&name, output, &bytes)?;
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
            print_published(out, &name.to_string(), &value)?;
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
        NameCmd::Pubsub(NamePubsubCmd::State) => writeln!(out, "disabled")?,
        NameCmd::Pubsub(_) => anyhow::bail!("{}", crate::network::NEED_DAEMON),
    }
    Ok(())
}

// What `files`, `key` and `name` print, shared by the local commands and the ones that go
// through a daemon, so both print the same.

/// A `files stat` answer, whichever side produced it.
pub(crate) struct Stat {
    pub cid: String,
    /// A directory (anything else prints as `file`, as Kubo does).
    pub dir: bool,
    pub size: u64,
    pub cumulative_size: u64,
    pub blocks: u64,
}

/// One `files ls` line: the name, or with `long` name (`/` after directories), CID and size.
pub(crate) fn print_ls_entry(
    out: &mut dyn Write,
    name: &str,
    dir: bool,
    cid: &str,
    size: u64,
    long: bool,
) -> Result<()> {
    if long {
        let slash = if dir { "/" } else { "" };
        writeln!(out, "{name}{slash}\t{cid}\t{size}")?;
    } else {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

/// `files stat`: everything, or only the CID (`hash`) or the cumulative size (`size`).
pub(crate) fn print_stat(out: &mut dyn Write, s: &Stat, hash: bool, size: bool) -> Result<()> {
    if hash {
        writeln!(out, "{}", s.cid)?;
    } else if size {
        writeln!(out, "{}", s.cumulative_size)?;
    } else {
        let kind = if s.dir { "directory" } else { "file" };
        writeln!(
            out,
            "{}\nSize: {}\nCumulativeSize: {}\nChildBlocks: {}\nType: {kind}",
            s.cid, s.size, s.cumulative_size, s.blocks
        )?;
    }
    Ok(())
}

/// One `key list` line: the name, or with `l` the IPNS name and the name.
pub(crate) fn print_key(out: &mut dyn Write, name: &str, id: &str, l: bool) -> Result<()> {
    if l {
        writeln!(out, "{id} {name}")?;
    } else {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

/// What `key rename` prints.
pub(crate) fn print_renamed(
    out: &mut dyn Write,
    id: &str,
    name: &str,
    overwrite: bool,
) -> Result<()> {
    let note = if overwrite { " (overwrote a key)" } else { "" };
    writeln!(out, "Key {id} renamed to {name}{note}")?;
    Ok(())
}

/// What `name publish` prints.
pub(crate) fn print_published(out: &mut dyn Write, name: &str, value: &str) -> Result<()> {
    writeln!(out, "Published to {name}: {value}")?;
    Ok(())
}

/// Writes an exported key to `output` (default `NAME.key`), readable by its owner only, and
/// never over an existing file.
pub(crate) fn write_key_file(name: &str, output: Option<PathBuf>, bytes: &[u8]) -> Result<()> {
    let path = output.unwrap_or_else(|| PathBuf::from(format!("{name}.key")));
    if path.exists() {
        bail!("{} already exists", path.display());
    }
    ipfs_kit_node::write_atomic_mode(&path, bytes, 0o600)?;
    Ok(())
}
