//! `ipfs-kit`: the command line of the ipfs-kit node. Glue only: parse arguments, open the repo,
//! call the node, print what Kubo would print.

mod names;
mod network;

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ipfs_kit_block::{codec, parse_cid, HashAlg};
use ipfs_kit_node::{AddOptions, Added, Config, ImportFlags, InitOptions, RefsOptions, Repo};
use ipfs_kit_pin::PinType;
use ipfs_kit_unixfs::{ImportProfile, Kind};

mod remote;
mod storage;

/// ipfs-kit: an IPFS node and toolkit. Content addressing identical to Kubo's, a crash-safe
/// repo, pins, GC and CAR import/export.
#[derive(Parser)]
#[command(name = "ipfs-kit", version, about, long_about = None)]
struct Cli {
    /// The repo directory.
    #[arg(long, global = true, env = "IPFS_KIT_PATH", value_name = "PATH")]
    repo_dir: Option<PathBuf>,
    /// Send the command to this daemon's RPC API (/ip4/ADDR/tcp/PORT or /unix/PATH) instead of
    /// opening the repo. Without it, a running daemon (named in the repo's `api` file) is used
    /// when there is one.
    #[arg(long, value_name = "MULTIADDR")]
    api: Option<String>,
    /// The secret for an API that requires one: bearer:TOKEN or basic:USER:PASSWORD.
    #[arg(
        long,
        env = "IPFS_KIT_API_AUTH",
        value_name = "SECRET",
        hide_env_values = true
    )]
    api_auth: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a new repo (config, identity, block store) at the repo path.
    Init {
        /// Profiles, comma-separated: `public` (join the public IPFS network: Kubo's
        /// bootstrap peers, mDNS, swarm on all interfaces) and/or the default import profile:
        /// unixfs-v0-2015 (Kubo's CIDs), unixfs-v1-2025 or kubo-v0.22. The default is private.
        #[arg(long)]
        profile: Option<String>,
    },
    /// Show or edit the repo config.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Import files, directories or stdin as UnixFS, printing each CID.
    Add(AddArgs),
    /// Write a file's bytes to stdout.
    Cat {
        /// /ipfs/CID[/path] or CID[/path].
        path: String,
        /// Byte offset to start at.
        #[arg(short, long, default_value_t = 0)]
        offset: u64,
        /// Maximum number of bytes to write.
        #[arg(short, long)]
        length: Option<u64>,
    },
    /// Write a file or directory to the local file system.
    Get {
        /// /ipfs/CID[/path] or CID[/path].
        path: String,
        /// Where to write it (default: the last path segment, or the CID; with --archive,
        /// that name plus `.tar`).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Write one tar archive instead of files (`-o -` writes it to stdout).
        #[arg(short, long)]
        archive: bool,
    },
    /// List a directory: CID, size and name of each entry (directories end with /).
    Ls {
        /// /ipfs/CID[/path] or CID[/path].
        path: String,
    },
    /// Resolve a path to the CID at its end.
    Resolve {
        /// /ipfs/CID[/path].
        path: String,
    },
    /// Work with raw blocks.
    #[command(subcommand)]
    Block(BlockCmd),
    /// Work with IPLD nodes (dag-cbor, dag-json, dag-pb, raw) and CAR files.
    #[command(subcommand)]
    Dag(DagCmd),
    /// List the links of a node (`refs local`: every block in the repo).
    Refs(RefsArgs),
    /// Keep content from garbage collection.
    #[command(subcommand)]
    Pin(PinCmd),
    /// Repo maintenance: gc, stat, verify.
    #[command(subcommand)]
    Repo(RepoCmd),
    /// Storage tiers: each tier's usage, where a DAG's blocks live, moving a DAG between the
    /// local disk and object storage.
    #[command(subcommand)]
    Storage(storage::StorageCmd),
    /// Run the node: Kubo's RPC API (TCP and Unix sockets) and the HTTP gateway until SIGINT or
    /// SIGTERM.
    Daemon {
        /// RPC API listen multiaddrs, overriding addresses.api (e.g. /ip4/127.0.0.1/tcp/5001 or
        /// /unix/PATH); repeat for several.
        #[arg(long = "api", value_name = "MULTIADDR")]
        api: Vec<String>,
        /// Serve the RPC API on a non-loopback address although no authorization is configured.
        #[arg(long)]
        allow_remote_api: bool,
        /// Gateway listen multiaddrs, overriding addresses.gateway (default
        /// /ip4/127.0.0.1/tcp/8080); repeat for several.
        #[arg(long = "gateway", value_name = "MULTIADDR")]
        gateway: Vec<String>,
        /// Serve the gateway on a non-loopback address.
        #[arg(long)]
        allow_remote_gateway: bool,
        /// Initialize the repo first when there is none.
        #[arg(long)]
        init: bool,
        /// Do not start the libp2p network: content is served from the repo only.
        #[arg(long)]
        offline: bool,
        /// Swarm listen multiaddrs, overriding addresses.swarm (e.g. /ip4/127.0.0.1/tcp/0 for a
        /// free port); repeat for several.
        #[arg(long = "swarm", value_name = "MULTIADDR")]
        swarm: Vec<String>,
        /// Turn on gossipsub pubsub (network.pubsub).
        #[arg(long)]
        enable_pubsub_experiment: bool,
        /// IPNS over pubsub as well as the DHT (ipns.use_pubsub; turns pubsub on).
        #[arg(long)]
        enable_namesys_pubsub: bool,
        /// DHT participation, overriding network.routing: dht (auto), dhtclient, dhtserver, none.
        #[arg(long, value_name = "TYPE")]
        routing: Option<String>,
        /// Collect garbage by itself once the repo passes datastore.storage_gc_watermark
        /// percent (90) of datastore.storage_max (10GB), checked every datastore.gc_period (1h).
        #[arg(long)]
        enable_gc: bool,
    },
    /// The mutable file system (MFS): mkdir, write, read, ls, stat, cp, mv, rm, flush, chcid.
    #[command(subcommand)]
    Files(names::FilesCmd),
    /// Named Ed25519 keys for IPNS: gen, list, rename, rm, import, export.
    #[command(subcommand)]
    Key(names::KeyCmd),
    /// IPNS: publish a path under a key's name, resolve names (the DHT and pubsub when the
    /// daemon runs), IPNS over pubsub.
    #[command(subcommand)]
    Name(names::NameCmd),
    /// Show the node's identity (its addresses and protocols when the daemon runs), or what
    /// identify told us about another peer.
    Id {
        /// Another peer's ID.
        peer: Option<String>,
    },
    /// Connections to other peers: connect, disconnect, peers, addrs (needs the daemon).
    #[command(subcommand)]
    Swarm(network::SwarmCmd),
    /// The block exchange: stat, wantlist, ledger (needs the daemon).
    #[command(subcommand)]
    Bitswap(network::BitswapCmd),
    /// Gossipsub messages: pub, sub, ls, peers (needs the daemon, started with
    /// --enable-pubsub-experiment or network.pubsub = true).
    #[command(subcommand)]
    Pubsub(network::PubsubCmd),
    /// The Kademlia DHT: findprovs, findpeer, provide, get, put (needs the daemon).
    #[command(subcommand)]
    Routing(network::RoutingCmd),
    /// DHT queries: query (the peers closest to a peer ID; needs the daemon).
    #[command(subcommand)]
    Dht(network::DhtCmd),
    /// The peers the daemon dials at start: list, add, rm (none by default: the node is private
    /// until told otherwise).
    #[command(subcommand)]
    Bootstrap(network::BootstrapCmd),
    /// Send echo requests to a peer over libp2p's ping protocol (needs the daemon).
    Ping(network::PingArgs),
    /// Network statistics: bw (bandwidth), provide (needs the daemon).
    #[command(subcommand)]
    Stats(network::StatsCmd),
    /// Show the ipfs-kit version.
    Version,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the whole config (the private key and the object storage secret redacted).
    Show,
    /// Print one value, by dotted key: config.toml's (import.profile) or Kubo's
    /// (Addresses.API, or any key Kubo clients stored).
    Get {
        /// Dotted key.
        key: String,
    },
    /// Set one value, by dotted key. With config.toml's keys the value is parsed as TOML, with
    /// Kubo's as JSON, or else taken as a string.
    Set {
        /// Dotted key.
        key: String,
        /// New value.
        value: String,
    },
}

/// A command-line value as JSON when it parses as JSON (`11`, `true`, `["a"]`), else the string
/// itself, as `config set` takes it.
fn json_or_string(value: &str) -> serde_json::Value {
    serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()))
}

/// Prints a config value: a string as itself, anything else as JSON.
fn print_json_value(out: &mut dyn Write, v: &serde_json::Value) -> Result<()> {
    match v.as_str() {
        Some(s) => writeln!(out, "{s}")?,
        None => writeln!(out, "{}", serde_json::to_string_pretty(v)?)?,
    }
    Ok(())
}

#[derive(Args)]
struct AddArgs {
    /// Files or directories to add; `-` or nothing reads stdin.
    paths: Vec<PathBuf>,
    /// Accepted for Kubo compatibility: directories are always added recursively.
    #[arg(short, long)]
    recursive: bool,
    /// A named import profile (default: the repo's import.profile).
    #[arg(long)]
    profile: Option<String>,
    /// CID version (0 or 1); 1 implies --raw-leaves unless it is given.
    #[arg(long)]
    cid_version: Option<u8>,
    /// Store leaves as raw blocks.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    raw_leaves: Option<bool>,
    /// size-N, rabin, rabin-AVG, rabin-MIN-AVG-MAX or buzhash.
    #[arg(short = 's', long)]
    chunker: Option<String>,
    /// Use the trickle layout instead of balanced.
    #[arg(short = 't', long)]
    trickle: bool,
    /// Maximum links per file node.
    #[arg(long)]
    max_file_links: Option<usize>,
    /// Shard directories with more entries than this.
    #[arg(long)]
    max_directory_links: Option<usize>,
    /// Fanout of HAMT-sharded directories (power of two, 8..=1024).
    #[arg(long)]
    max_hamt_fanout: Option<usize>,
    /// Hash function: sha2-256 or blake3 (not sha2-256 implies CIDv1).
    #[arg(long)]
    hash: Option<String>,
    /// Only compute the CIDs; store nothing.
    #[arg(short = 'n', long)]
    only_hash: bool,
    /// Wrap the added paths in a directory.
    #[arg(short = 'w', long)]
    wrap_with_directory: bool,
    /// Include files whose names start with a dot.
    #[arg(short = 'H', long)]
    hidden: bool,
    /// Pin what was added (recursively).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
    pin: bool,
    /// Print only CIDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print only the final root CID.
    #[arg(short = 'Q', long)]
    quieter: bool,
    /// Show a progress bar (on by default when stderr is a terminal).
    #[arg(short = 'p', long)]
    progress: bool,
}

#[derive(Subcommand)]
enum BlockCmd {
    /// Store the bytes of a file (or stdin) as one block and print its CID.
    Put {
        /// File to read; `-` or nothing for stdin.
        file: Option<PathBuf>,
        /// Codec of the new CID: raw, dag-pb, dag-cbor, dag-json.
        #[arg(long, default_value = "raw")]
        cid_codec: String,
        /// Multihash function: sha2-256 or blake3.
        #[arg(long, default_value = "sha2-256")]
        mhtype: String,
        /// Legacy: `v0` stores a dag-pb CIDv0 block.
        #[arg(long)]
        format: Option<String>,
        /// Allow blocks over 1 MiB.
        #[arg(long)]
        allow_big_block: bool,
        /// Pin the block.
        #[arg(long)]
        pin: bool,
    },
    /// Write a block's bytes to stdout.
    Get {
        /// The block's CID.
        cid: String,
    },
    /// Print a block's CID and size.
    Stat {
        /// The block's CID.
        cid: String,
    },
    /// Remove blocks (pinned ones are refused).
    Rm {
        /// CIDs to remove.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Ignore blocks that are not there.
        #[arg(short, long)]
        force: bool,
        /// Print nothing on success.
        #[arg(short, long)]
        quiet: bool,
    },
}

#[derive(Subcommand)]
enum DagCmd {
    /// Store an IPLD node read from a file or stdin.
    Put {
        /// File to read; `-` or nothing for stdin.
        file: Option<PathBuf>,
        /// Codec of the input: dag-json, dag-cbor, json, dag-pb, raw.
        #[arg(long, default_value = "dag-json")]
        input_codec: String,
        /// Codec to store as: dag-cbor, dag-json, dag-pb, raw.
        #[arg(long, default_value = "dag-cbor")]
        store_codec: String,
        /// Hash function.
        #[arg(long, default_value = "sha2-256")]
        hash: String,
        /// Pin the node.
        #[arg(long)]
        pin: bool,
        /// Allow blocks over 1 MiB.
        #[arg(long)]
        allow_big_block: bool,
    },
    /// Print an IPLD node (or the value at a path inside it).
    Get {
        /// CID[/path].
        path: String,
        /// Output codec: dag-json, dag-cbor, raw, dag-pb.
        #[arg(long, default_value = "dag-json")]
        output_codec: String,
    },
    /// Write the DAG under a CID to stdout as a CARv1.
    Export {
        /// The root.
        path: String,
    },
    /// Import CARv1/CARv2 files (or stdin); all blocks are verified first.
    Import {
        /// CAR files; `-` or nothing for stdin.
        files: Vec<PathBuf>,
        /// Pin the roots recursively.
        #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
        pin_roots: bool,
        /// Print block and byte counts.
        #[arg(long)]
        stats: bool,
    },
    /// Resolve a path to a CID.
    Resolve {
        /// /ipfs/CID[/path].
        path: String,
    },
}

#[derive(Args)]
struct RefsArgs {
    /// CID[/path] (several: each in turn), or `local` for every block in the repo.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Follow links recursively.
    #[arg(short, long)]
    recursive: bool,
    /// Print each CID only once.
    #[arg(short, long)]
    unique: bool,
    /// Print each link as `<src> -> <dst>`.
    #[arg(short, long)]
    edges: bool,
    /// Print each link with this template of `<src>`, `<dst>` and `<linkname>`.
    #[arg(long, default_value = "<dst>")]
    format: String,
    /// With --recursive, list links at most this many levels down (-1: no limit).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    max_depth: i64,
}

impl RefsArgs {
    /// The line template: `--format`, or `<src> -> <dst>` with `--edges`, which Kubo refuses
    /// to combine with another format.
    fn template(&self) -> Result<String> {
        match (self.format.as_str(), self.edges) {
            (f, false) => Ok(f.to_string()),
            ("<dst>", true) => Ok("<src> -> <dst>".to_string()),
            (_, true) => bail!("using format argument with edges is not allowed"),
        }
    }

    /// Whether this is `refs local`.
    fn local(&self) -> bool {
        self.paths.len() == 1 && self.paths[0] == "local"
    }
}

#[derive(Subcommand)]
enum PinCmd {
    /// Pin content (recursively by default).
    Add {
        /// Paths to pin.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Pin the whole DAG (false: only the block itself).
        #[arg(short, long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
        recursive: bool,
    },
    /// Remove pins.
    Rm {
        /// Paths to unpin.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Also remove recursive pins.
        #[arg(short, long, num_args = 0..=1, default_missing_value = "true", default_value = "true")]
        recursive: bool,
    },
    /// List pins.
    Ls {
        /// Only these paths.
        paths: Vec<String>,
        /// direct, indirect, recursive or all.
        #[arg(short = 't', long = "type", default_value = "all")]
        kind: String,
        /// Print only CIDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Check that every pinned DAG is complete and intact.
    Verify {
        /// Also print pins that are fine.
        #[arg(long)]
        verbose: bool,
    },
}

#[derive(Subcommand)]
enum RepoCmd {
    /// Remove every block that no pin reaches.
    Gc {
        /// Print nothing.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print repo size figures.
    Stat,
    /// Re-hash every block and name the corrupt ones.
    Verify,
}

fn repo_path(cli_path: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = cli_path {
        return Ok(p.clone());
    }
    let home = std::env::var_os("HOME")
        .context("HOME is not set; pass --repo-dir or set IPFS_KIT_PATH")?;
    Ok(PathBuf::from(home).join(".ipfs-kit"))
}

fn read_input(file: &Option<PathBuf>) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    match file {
        Some(p) if p.as_os_str() != "-" => {
            data = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
        }
        _ => {
            io::stdin().read_to_end(&mut data).context("read stdin")?;
        }
    }
    Ok(data)
}

fn codec_arg(name: &str) -> Result<u64> {
    codec::from_name(name)
        .with_context(|| format!("unknown codec {name:?} (raw, dag-pb, dag-cbor, dag-json, json)"))
}

fn profile_for(args: &AddArgs, repo: &Repo) -> Result<ImportProfile> {
    Ok(repo.import_profile(&ImportFlags {
        profile: args.profile.clone(),
        cid_version: args.cid_version,
        raw_leaves: args.raw_leaves,
        chunker: args.chunker.clone(),
        trickle: args.trickle,
        max_file_links: args.max_file_links,
        max_directory_links: args.max_directory_links,
        max_hamt_fanout: args.max_hamt_fanout,
        hash: args.hash.clone(),
    })?)
}

fn total_size(paths: &[PathBuf], hidden: bool) -> u64 {
    fn walk(p: &std::path::Path, hidden: bool) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if meta.is_file() {
            return meta.len();
        }
        if !meta.is_dir() {
            return 0;
        }
        std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| hidden || !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| walk(&e.path(), hidden))
                    .sum()
            })
            .unwrap_or(0)
    }
    paths.iter().map(|p| walk(p, hidden)).sum()
}

fn progress_bar(show: bool, total: Option<u64>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// One line of `add` output, as Kubo prints it (shared by the local and the remote add).
fn print_added(args: &AddArgs, cid: &str, name: &str, out: &mut dyn Write) -> io::Result<()> {
    if args.quieter {
        Ok(())
    } else if args.quiet {
        writeln!(out, "{cid}")
    } else if name.is_empty() {
        writeln!(out, "added {cid}")
    } else {
        writeln!(out, "added {cid} {name}")
    }
}

fn cmd_add(repo: &Repo, args: &AddArgs) -> Result<()> {
    let opts = AddOptions {
        profile: profile_for(args, repo)?,
        only_hash: args.only_hash,
        wrap: args.wrap_with_directory,
        hidden: args.hidden,
        pin: args.pin && !args.only_hash,
    };
    let show = (args.progress || io::stderr().is_terminal()) && !args.quiet && !args.quieter;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let print =
        |a: &Added, out: &mut dyn Write| print_added(args, &a.cid.to_string(), &a.name, out);
    let stdin_only = args.paths.is_empty() || args.paths.iter().all(|p| p.as_os_str() == "-");
    if stdin_only {
        let bar = progress_bar(show, None);
        let node = {
            let mut stdin = ProgressReader {
                inner: io::stdin().lock(),
                bar: &bar,
            };
            repo.add_reader(&mut stdin, &opts)?
        };
        bar.finish_and_clear();
        let a = Added {
            name: node.cid.to_string(),
            cid: node.cid,
            size: node.tsize,
        };
        print(&a, &mut out)?;
        if args.quieter {
            writeln!(out, "{}", node.cid)?;
        }
        return Ok(());
    }
    if args.paths.iter().any(|p| p.as_os_str() == "-") {
        bail!("`-` (stdin) cannot be mixed with paths");
    }
    let bar = progress_bar(show, Some(total_size(&args.paths, args.hidden)));
    let mut io_err = None;
    let roots = repo.add_paths(&args.paths, &opts, &mut |n| bar.inc(n), &mut |a| {
        if io_err.is_none() {
            bar.suspend(|| {
                if let Err(e) = print(a, &mut out) {
                    io_err = Some(e);
                }
            });
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = io_err {
        return Err(e).context("write output");
    }
    if args.quieter {
        if let Some(last) = roots.last() {
            writeln!(out, "{}", last.cid)?;
        }
    }
    Ok(())
}

/// glibc's allocator hands the 256 KiB-1 MiB block buffers back to the kernel after each block
/// and faults fresh zeroed pages in for the next (16k `brk` calls per GiB read); mimalloc keeps
/// them, which halves the system time of `cat`. Without transparent huge pages (`no_thp`): with
/// them each fresh 2 MiB of heap is a huge-page fault that compacts and zeroes memory, which took
/// half the CPU of reading 256 MiB cold from the repo (0.9 s against 0.42 s; docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct ProgressReader<'a, R> {
    inner: R,
    bar: &'a ProgressBar,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn pin_types(kind: &str) -> Result<Vec<PinType>> {
    PinType::selection(kind).with_context(|| {
        format!("invalid type {kind:?}, must be one of direct, indirect, recursive or all")
    })
}

fn run(cli: Cli) -> Result<()> {
    let path = repo_path(&cli.repo_dir)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if let Cmd::Version = cli.cmd {
        writeln!(out, "ipfs-kit version {}", env!("CARGO_PKG_VERSION"))?;
        return Ok(());
    }
    if let Cmd::Init { profile } = &cli.cmd {
        let repo = Repo::init(
            &path,
            InitOptions {
                profile: profile.clone(),
            },
        )?;
        writeln!(out, "initialized ipfs-kit repo at {}", path.display())?;
        writeln!(out, "peer identity: {}", repo.config().identity.peer_id)?;
        return Ok(());
    }
    let local_only = matches!(cli.cmd, Cmd::Init { .. } | Cmd::Daemon { .. });
    if !local_only {
        let endpoint = match &cli.api {
            Some(a) => Some((a.clone(), true)),
            None => remote::api_file(&path)?.map(|a| (a, false)),
        };
        if let Some((addr, explicit)) = endpoint {
            let api = remote::Api::new(&addr, cli.api_auth.as_deref())?;
            // A stale api file (a daemon killed without cleanup) falls back to the repo.
            if explicit || api.is_up() {
                remote::run(&api, cli.cmd, &mut out)?;
                out.flush()?;
                return Ok(());
            }
        }
    }
    if let Cmd::Daemon {
        api,
        allow_remote_api,
        gateway,
        allow_remote_gateway,
        init,
        offline,
        swarm,
        enable_pubsub_experiment,
        enable_namesys_pubsub,
        routing,
        enable_gc,
    } = &cli.cmd
    {
        let repo = match Repo::open(&path) {
            Err(ipfs_kit_node::Error::NotInitialized(_)) if *init => {
                let repo = Repo::init(&path, InitOptions::default())?;
                writeln!(out, "initialized ipfs-kit repo at {}", path.display())?;
                repo
            }
            other => other?,
        };
        drop(out);
        let opts = ipfs_kit_node::daemon::DaemonOptions {
            api: api.clone(),
            allow_remote_api: *allow_remote_api,
            gateway: gateway.clone(),
            allow_remote_gateway: *allow_remote_gateway,
            shutdown_grace: None,
            offline: *offline,
            enable_gc: *enable_gc,
            net: ipfs_kit_node::NetOverrides {
                swarm: swarm.clone(),
                pubsub: *enable_pubsub_experiment,
                routing: routing.clone(),
                namesys_pubsub: *enable_namesys_pubsub,
            },
        };
        return daemon(repo, opts);
    }
    // One-shot commands read each block once: no memory cache (the daemon has one).
    let repo = Repo::open_with(&path, ipfs_kit_node::RepoOptions { block_cache: false })?;
    match cli.cmd {
        Cmd::Version | Cmd::Init { .. } | Cmd::Daemon { .. } => {}
        Cmd::Config(c) => match c {
            ConfigCmd::Show => {
                let mut cfg = Config::clone(&repo.config());
                cfg.identity.private_key = "<redacted>".into();
                if !cfg.object_storage.secret_access_key.is_empty() {
                    cfg.object_storage.secret_access_key = "<redacted>".into();
                }
                write!(out, "{}", cfg.to_toml()?)?;
            }
            ConfigCmd::Get { key } if ipfs_kit_node::config::kubo::ours_spelling(&key) => {
                let value = repo.config().get(&key)?;
                match value.as_str() {
                    Some(s) => writeln!(out, "{s}")?,
                    None => writeln!(out, "{value}")?,
                }
            }
            ConfigCmd::Get { key } => print_json_value(&mut out, &repo.config().kubo_get(&key)?)?,
            ConfigCmd::Set { key, value } => {
                let updated = if ipfs_kit_node::config::kubo::ours_spelling(&key) {
                    repo.config().with(&key, &value)?
                } else {
                    repo.config().with_kubo(&key, json_or_string(&value))?
                };
                repo.set_config(updated)?;
            }
        },
        Cmd::Add(args) => cmd_add(&repo, &args)?,
        Cmd::Cat {
            path,
            offset,
            length,
        } => {
            repo.cat(&path, offset, length, &mut out)?;
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
            if archive {
                let target = output.unwrap_or_else(|| PathBuf::from(format!("{name}.tar")));
                if target.as_os_str() == "-" {
                    let mut w = io::BufWriter::with_capacity(1 << 20, &mut out);
                    repo.get_tar(&path, &mut w)?;
                    w.flush()?;
                } else {
                    let f = std::fs::File::create_new(&target)
                        .with_context(|| format!("create {}", target.display()))?;
                    let mut w = io::BufWriter::with_capacity(1 << 20, f);
                    repo.get_tar(&path, &mut w)?;
                    w.into_inner()
                        .map_err(|e| e.into_error())
                        .and_then(|f| f.sync_all())
                        .with_context(|| format!("write {}", target.display()))?;
                    writeln!(out, "Saving archive to {}", target.display())?;
                }
            } else {
                let target = output.unwrap_or_else(|| PathBuf::from(name));
                repo.get(&path, &target)?;
                writeln!(out, "Saving file(s) to {}", target.display())?;
            }
        }
        Cmd::Ls { path } => {
            for e in repo.ls(&path)? {
                match e.kind {
                    Kind::Directory => writeln!(out, "{} - {}/", e.cid, e.name)?,
                    _ => writeln!(out, "{} {} {}", e.cid, e.size, e.name)?,
                }
            }
        }
        Cmd::Resolve { path } | Cmd::Dag(DagCmd::Resolve { path }) => {
            writeln!(out, "/ipfs/{}", repo.resolve(&path)?)?;
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
                let data = read_input(&file)?;
                let (codec, version) = match format.as_deref() {
                    Some("v0") => (codec::DAG_PB, 0),
                    Some(f) => (codec_arg(f)?, 1),
                    None => (codec_arg(&cid_codec)?, 1),
                };
                let cid = repo.block_put(
                    data,
                    codec,
                    HashAlg::from_name(&mhtype)?,
                    version,
                    allow_big_block,
                    pin,
                )?;
                writeln!(out, "{cid}")?;
            }
            BlockCmd::Get { cid } => {
                let cid = repo.resolve(&cid)?;
                out.write_all(&repo.block_bytes(&cid)?)?;
            }
            BlockCmd::Stat { cid } => {
                let s = repo.block_stat(&cid)?;
                writeln!(out, "Key: {}\nSize: {}", s.cid, s.size)?;
            }
            BlockCmd::Rm { cids, force, quiet } => {
                let cids = cids
                    .iter()
                    .map(|c| parse_cid(c))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut failures = Vec::new();
                for (cid, err) in repo.block_rm(&cids, force)? {
                    match err {
                        None if !quiet => writeln!(out, "removed {cid}")?,
                        None => {}
                        Some(e) => failures.push(format!("cannot remove {cid}: {e}")),
                    }
                }
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
                let data = read_input(&file)?;
                let cid = repo.dag_put(
                    &data,
                    codec_arg(&input_codec)?,
                    codec_arg(&store_codec)?,
                    HashAlg::from_name(&hash)?,
                    pin,
                    allow_big_block,
                )?;
                writeln!(out, "{cid}")?;
            }
            DagCmd::Get { path, output_codec } => {
                let bytes = repo.dag_get(&path, codec_arg(&output_codec)?)?;
                out.write_all(&bytes)?;
            }
            DagCmd::Export { path } => {
                let mut w = io::BufWriter::with_capacity(1 << 20, &mut out);
                repo.dag_export(&path, &mut w)?;
                w.flush()?;
            }
            DagCmd::Import {
                files,
                pin_roots,
                stats,
            } => {
                let mut opened: Vec<Box<dyn Read>> = Vec::new();
                for p in &files {
                    if p.as_os_str() == "-" {
                        opened.push(Box::new(io::stdin()));
                    } else {
                        let f = std::fs::File::open(p)
                            .with_context(|| format!("open {}", p.display()))?;
                        opened.push(Box::new(io::BufReader::with_capacity(1 << 20, f)));
                    }
                }
                if opened.is_empty() {
                    opened.push(Box::new(io::stdin()));
                }
                let inputs: Vec<&mut dyn Read> = opened
                    .iter_mut()
                    .map(|r| &mut **r as &mut dyn Read)
                    .collect();
                let result =
                    repo.dag_import(&mut ipfs_kit_node::CarReaders::new(inputs), pin_roots)?;
                let mut failed = false;
                if pin_roots {
                    for (root, err) in &result.roots {
                        match err {
                            None => writeln!(out, "Pinned root\t{root}\tsuccess")?,
                            Some(e) => {
                                failed = true;
                                writeln!(out, "Pinned root\t{root}\tFAILED: {e}")?;
                            }
                        }
                    }
                }
                if stats {
                    writeln!(
                        out,
                        "Imported {} blocks ({} bytes)",
                        result.blocks, result.bytes
                    )?;
                }
                if failed {
                    bail!("some roots could not be pinned");
                }
            }
            DagCmd::Resolve { .. } => {}
        },
        Cmd::Refs(r) if r.local() => {
            for c in repo.refs_local()? {
                writeln!(out, "{c}")?;
            }
        }
        Cmd::Refs(r) => {
            let template = r.template()?;
            let opts = RefsOptions {
                recursive: r.recursive,
                unique: r.unique,
                max_depth: u64::try_from(r.max_depth).ok(),
            };
            let mut walker = repo.refs_walker(opts);
            for root in repo.refs_roots(&r.paths)? {
                walker.walk(&root, &mut |e| {
                    writeln!(out, "{}", e.format(&template, |c| c.to_string()))
                        .map_err(|e| ipfs_kit_node::Error::Invalid(format!("write output: {e}")))
                })?;
            }
        }
        Cmd::Pin(p) => match p {
            PinCmd::Add { paths, recursive } => {
                for cid in repo.pin_add(&paths, recursive)? {
                    let how = if recursive { "recursively" } else { "directly" };
                    writeln!(out, "pinned {cid} {how}")?;
                }
            }
            PinCmd::Rm { paths, recursive } => {
                for cid in repo.pin_rm(&paths, recursive)? {
                    writeln!(out, "unpinned {cid}")?;
                }
            }
            PinCmd::Ls { paths, kind, quiet } => {
                for (cid, t) in repo.pin_ls(&paths, &pin_types(&kind)?)? {
                    if quiet {
                        writeln!(out, "{cid}")?;
                    } else {
                        writeln!(out, "{cid} {}", t.as_str())?;
                    }
                }
            }
            PinCmd::Verify { verbose } => {
                let mut broken = false;
                for check in repo.pin_verify()? {
                    if check.bad.is_empty() {
                        if verbose {
                            writeln!(out, "{} ok", check.root)?;
                        }
                        continue;
                    }
                    broken = true;
                    writeln!(out, "{} broken", check.root)?;
                    for (cid, why) in check.bad {
                        writeln!(out, "  {cid}: {why}")?;
                    }
                }
                if broken {
                    bail!("some pins are broken");
                }
            }
        },
        Cmd::Repo(r) => match r {
            RepoCmd::Gc { quiet } => {
                for cid in repo.gc()? {
                    if !quiet {
                        writeln!(out, "removed {cid}")?;
                    }
                }
            }
            RepoCmd::Stat => {
                let s = repo.repo_stat()?;
                writeln!(out, "NumObjects: {}", s.num_objects)?;
                writeln!(out, "RepoSize:   {}", s.repo_size)?;
                writeln!(
                    out,
                    "StorageMax: {}",
                    repo.config().datastore.storage_max_bytes()?
                )?;
                writeln!(out, "BlockBytes: {}", s.block_bytes)?;
                writeln!(out, "RepoPath:   {}", s.path)?;
                writeln!(
                    out,
                    "Version:    ipfs-kit-repo@{}",
                    ipfs_kit_node::REPO_VERSION
                )?;
            }
            RepoCmd::Verify => {
                let total = repo.blocks().stats()?.blocks;
                let bar = progress_bar(io::stderr().is_terminal(), Some(total));
                let (bad, n) = repo.repo_verify(&mut |k| bar.inc(k))?;
                bar.finish_and_clear();
                for (cid, why) in &bad {
                    writeln!(out, "block {cid} was corrupt ({why})")?;
                }
                if !bad.is_empty() {
                    bail!("verify complete, {} of {n} blocks were corrupt", bad.len());
                }
                writeln!(out, "verified repo integrity: {n} blocks")?;
            }
        },
        Cmd::Id { peer: None } => {
            writeln!(out, "{}", serde_json::to_string_pretty(&repo.id_info())?)?;
        }
        Cmd::Id { peer: Some(_) } => {
            bail!("this command must be run in online mode. Try running 'ipfs-kit daemon' first")
        }
        Cmd::Swarm(c) => network::run_local(&repo, network::NetCmd::Swarm(c), &mut out)?,
        Cmd::Bitswap(c) => network::run_local(&repo, network::NetCmd::Bitswap(c), &mut out)?,
        Cmd::Pubsub(c) => network::run_local(&repo, network::NetCmd::Pubsub(c), &mut out)?,
        Cmd::Routing(c) => network::run_local(&repo, network::NetCmd::Routing(c), &mut out)?,
        Cmd::Dht(c) => network::run_local(&repo, network::NetCmd::Dht(c), &mut out)?,
        Cmd::Bootstrap(c) => network::run_local(&repo, network::NetCmd::Bootstrap(c), &mut out)?,
        Cmd::Ping(a) => network::run_local(&repo, network::NetCmd::Ping(a), &mut out)?,
        Cmd::Stats(c) => network::run_local(&repo, network::NetCmd::Stats(c), &mut out)?,
        Cmd::Storage(c) => storage::offline(&repo, c, &mut out)?,
        Cmd::Files(c) => names::files(&repo, c, &mut out)?,
        Cmd::Key(c) => names::key(&repo, c, &mut out)?,
        Cmd::Name(c) => names::name(&repo, c, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// Runs the daemon on a small runtime until SIGINT or SIGTERM.
fn daemon(repo: Repo, opts: ipfs_kit_node::daemon::DaemonOptions) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Each request holds at most one blocking thread; past this many, requests wait their
        // turn instead of growing the process by a thread each. Every thread keeps its own
        // allocator heap of block-sized buffers (~8 MiB measured), so this bounds memory:
        // 64 threads held 550 MiB under 64 readers, 16 held 200 MiB at the same throughput.
        // 32 leaves room for uploads that wait on slow clients (cut after the stall timeout).
        .max_blocking_threads(32)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let repo = std::sync::Arc::new(repo);
    rt.block_on(ipfs_kit_node::daemon::serve(
        repo,
        opts,
        |addrs, gateway| {
            let mut out = io::stdout().lock();
            for a in addrs {
                let _ = writeln!(out, "RPC API server listening on {a}");
            }
            for a in gateway {
                let _ = writeln!(out, "Gateway server listening on {a}");
            }
            let _ = writeln!(out, "Daemon is ready");
            let _ = out.flush();
        },
        async {
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
            match term {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            eprintln!("Received interrupt signal, shutting down...");
        },
    ))?;
    Ok(())
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IPFS_KIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        // A closed stdout (`| head`) is not an error worth a message.
        if e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
        {
            std::process::exit(0);
        }
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}
