//! The repo's TOML config: what it holds, its defaults, and dotted-key access for
//! `ipfs-kit config get|set`. Kubo's spellings of the same settings (`Addresses.API`), and the
//! free-form `[extra]` table for Kubo settings this node stores but does not use, are in
//! [`kubo`].

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::Error;

pub mod kubo;

/// The whole config file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The node's identity.
    pub identity: Identity,
    /// Block storage settings.
    pub datastore: Datastore,
    /// Default import settings for `add`.
    pub import: Import,
    /// Where the node's services listen (used by the daemon).
    pub addresses: Addresses,
    /// Who may use the RPC API, and its limits.
    pub api: Api,
    /// The libp2p network: peers, routing, pubsub, connection limits.
    pub network: Network,
    /// IPNS over the network: republishing, IPNS over pubsub, the resolve cache.
    pub ipns: Ipns,
    /// The object storage tier (S3 and compatibles) behind the local block store; off while
    /// `bucket` is empty.
    pub object_storage: ObjectStorage,
    /// How content moves between tiers by heat.
    pub tiering: Tiering,
    /// Settings under Kubo's names that ipfs-kit does not use (`Fruit`, `Addresses.Swarm`,
    /// `Discovery.MDNS.Enabled`…), kept so that Kubo clients can store and read them back. Only
    /// this table is free-form; the sections above reject unknown keys, so a typo in a setting
    /// the node does use is an error rather than silently ignored.
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub extra: toml::Table,
}

/// RPC API access and limits (Kubo's `API` section, plus the bounds Kubo leaves open).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    /// Named secrets, as Kubo's `API.Authorizations`. When any is set, every request must
    /// carry one, and may only call the path prefixes it lists.
    pub authorizations: std::collections::BTreeMap<String, ApiAuthorization>,
    /// Browser origins (`https://app.example`, or `*`) allowed to call the API, with CORS
    /// headers. None by default: pages from other origins are refused.
    pub allowed_origins: Vec<String>,
    /// Extra headers put on every API response, each with one or more values (a plain string
    /// is read as one value).
    #[serde(deserialize_with = "one_or_many")]
    pub http_headers: BTreeMap<String, Vec<String>>,
    /// Requests served at once; more are refused with 429.
    pub max_concurrent_requests: usize,
    /// Open connections per listener; more wait to be accepted.
    pub max_connections: usize,
    /// Largest upload (`add`, `dag import`, …), in bytes.
    pub max_upload_bytes: u64,
    /// Seconds an upload may send nothing, or a client read nothing, before its request is cut.
    pub stall_timeout_secs: u64,
    /// Seconds a client has to send its request headers.
    pub header_timeout_secs: u64,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            authorizations: Default::default(),
            allowed_origins: Vec::new(),
            http_headers: Default::default(),
            max_concurrent_requests: 256,
            max_connections: 1024,
            max_upload_bytes: 64 << 30,
            stall_timeout_secs: 60,
            header_timeout_secs: 30,
        }
    }
}

/// Reads a map whose values are a string or a list of strings, as Kubo's header maps are
/// lists and older ipfs-kit configs wrote single strings.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let map = BTreeMap::<String, OneOrMany>::deserialize(d)?;
    Ok(map
        .into_iter()
        .map(|(k, v)| match v {
            OneOrMany::One(s) => (k, vec![s]),
            OneOrMany::Many(v) => (k, v),
        })
        .collect())
}

/// One named API secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiAuthorization {
    /// `bearer:TOKEN` or `basic:USER:PASSWORD`, as Kubo writes them.
    pub auth_secret: String,
    /// Path prefixes this secret may call, such as `/api/v0` (everything) or `/api/v0/cat`.
    pub allowed_paths: Vec<String>,
}

/// The node's libp2p identity.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Identity {
    /// The peer ID derived from the key (`12D3KooW…`).
    pub peer_id: String,
    /// The Ed25519 private key as a base64 libp2p protobuf, as in Kubo's `Identity.PrivKey`.
    pub private_key: String,
}

/// Block storage settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Datastore {
    /// Bytes after which a segment file is closed and a new one started.
    pub segment_size: u64,
    /// Re-hash every block read from disk and refuse to serve one that does not match.
    pub verify_reads: bool,
    /// `repo gc` rewrites a segment once this fraction of it is garbage.
    pub compact_dead_ratio: f64,
    /// Memory for the daemon's cache of verified blocks (an ARC cache), as a byte size
    /// (`256MiB`, `1GB`, `0`); `0` turns it off. A hit is served without disk I/O or
    /// re-hashing. One-shot commands do not use it.
    #[serde(deserialize_with = "string_or_integer")]
    pub block_cache_size: String,
    /// Keep newly written blocks in the OS page cache too. Off: once on disk they leave it,
    /// which makes taking in large content several times cheaper (see `docs/storage.md`).
    pub cache_writes: bool,
    /// The repo's size limit (Kubo's `Datastore.StorageMax`, `10GB`): with `daemon
    /// --enable-gc`, garbage collection runs once the local disk holds more than
    /// `storage_gc_watermark` percent of it.
    pub storage_max: String,
    /// The percentage of `storage_max` past which `daemon --enable-gc` collects garbage (90).
    pub storage_gc_watermark: u64,
    /// How often `daemon --enable-gc` checks the repo's size (a Go duration, `1h`).
    pub gc_period: String,
}

impl Default for Datastore {
    fn default() -> Self {
        Datastore {
            segment_size: 256 << 20,
            verify_reads: true,
            compact_dead_ratio: 0.5,
            block_cache_size: "256MiB".into(),
            cache_writes: false,
            storage_max: "10GB".into(),
            storage_gc_watermark: 90,
            gc_period: "1h".into(),
        }
    }
}

impl Datastore {
    /// [`Datastore::storage_max`] in bytes.
    pub fn storage_max_bytes(&self) -> Result<u64, Error> {
        parse_byte_size(&self.storage_max)
            .map_err(|e| Error::Config(format!("datastore.storage_max: {e}")))
    }

    /// The local disk bytes past which `daemon --enable-gc` collects garbage.
    pub fn gc_threshold(&self) -> Result<u64, Error> {
        if self.storage_gc_watermark > 100 {
            return Err(Error::Config(
                "datastore.storage_gc_watermark is a percentage: 0 to 100".into(),
            ));
        }
        Ok(
            (u128::from(self.storage_max_bytes()?) * u128::from(self.storage_gc_watermark) / 100)
                as u64,
        )
    }

    /// [`Datastore::gc_period`], parsed.
    pub fn gc_period(&self) -> Result<std::time::Duration, Error> {
        positive_duration("datastore.gc_period", &self.gc_period)
    }

    /// [`Datastore::block_cache_size`] in bytes.
    pub fn block_cache_bytes(&self) -> Result<u64, Error> {
        parse_byte_size(&self.block_cache_size)
            .map_err(|e| Error::Config(format!("datastore.block_cache_size: {e}")))
    }
}

/// Default import settings; command-line flags override them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Import {
    /// The named import profile: `unixfs-v0-2015` (Kubo's default), `unixfs-v1-2025` or
    /// `kubo-v0.22`.
    pub profile: String,
    /// The estimated directory size past which `add` and MFS make a directory a HAMT shard, as
    /// a byte size (`256KiB`, `1B`, `1024`); `0` turns sharding off. Kubo's
    /// `Import.UnixFSHAMTDirectorySizeThreshold` (formerly `Internal.UnixFSShardingSizeThreshold`).
    #[serde(deserialize_with = "string_or_integer")]
    pub hamt_threshold: String,
}

impl Default for Import {
    fn default() -> Self {
        Import {
            profile: "unixfs-v0-2015".into(),
            hamt_threshold: "256KiB".into(),
        }
    }
}

impl Import {
    /// [`Import::hamt_threshold`] in bytes.
    pub fn hamt_threshold_bytes(&self) -> Result<u64, Error> {
        parse_byte_size(&self.hamt_threshold)
            .map_err(|e| Error::Config(format!("import.hamt_threshold: {e}")))
    }
}

/// Reads a string, or an integer as its decimal digits (Kubo's byte sizes take either).
fn string_or_integer<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StringOrInteger {
        String(String),
        Integer(u64),
    }
    Ok(match StringOrInteger::deserialize(d)? {
        StringOrInteger::String(s) => s,
        StringOrInteger::Integer(n) => n.to_string(),
    })
}

/// Parses a byte size the way Kubo's config does (go-humanize's `ParseBytes`): a decimal
/// number, commas allowed, then an optional unit, case-insensitive, with or without a space:
/// `B`, SI `kB`/`K`, `MB`/`M`… (powers of 1000) or IEC `KiB`/`Ki`, `MiB`/`Mi`… (powers of 1024),
/// up to exa.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(s.len());
    let number: String = s[..digits].chars().filter(|c| *c != ',').collect();
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a byte size such as 256KiB"))?;
    let unit = s[digits..].trim().to_ascii_lowercase();
    let si = ["k", "m", "g", "t", "p", "e"];
    let scale = match unit.as_str() {
        "" | "b" => 1.0,
        u => {
            let (prefix, iec) = match u.strip_suffix('b').unwrap_or(u) {
                p if p.ends_with('i') => (&p[..p.len() - 1], true),
                p => (p, false),
            };
            let power = si
                .iter()
                .position(|x| *x == prefix)
                .ok_or_else(|| format!("unknown size unit {:?} in {s:?}", &s[digits..]))?;
            let base: f64 = if iec { 1024.0 } else { 1000.0 };
            base.powi(power as i32 + 1)
        }
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(bytes as u64)
}

/// Listening addresses, as multiaddrs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Addresses {
    /// The RPC API (`/ip4/…/tcp/…` or `/unix/PATH`).
    pub api: Vec<String>,
    /// The HTTP gateway.
    pub gateway: Vec<String>,
    /// The libp2p swarm (`/ip4/…/tcp/…`, `/ip4/…/udp/…/quic-v1`). Loopback by default: the node
    /// is reachable from this machine only until told otherwise.
    pub swarm: Vec<String>,
    /// Addresses announced to peers instead of the swarm listen addresses, when set.
    pub announce: Vec<String>,
}

impl Default for Addresses {
    fn default() -> Self {
        Addresses {
            api: vec!["/ip4/127.0.0.1/tcp/5001".into()],
            gateway: vec!["/ip4/127.0.0.1/tcp/8080".into()],
            swarm: vec![
                "/ip4/127.0.0.1/tcp/4001".into(),
                "/ip4/127.0.0.1/udp/4001/quic-v1".into(),
            ],
            announce: Vec::new(),
        }
    }
}

/// The libp2p network. Private by default: no bootstrap peers, no mDNS, so the node talks only
/// to peers it is told about (`swarm connect`, this list, cluster peers).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// Peers dialed at start (`/ip4/…/tcp/…/p2p/<id>`), as Kubo's `Bootstrap`.
    pub bootstrap: Vec<String>,
    /// DHT participation, as Kubo's `Routing.Type`: `dht` (auto), `dhtclient`, `dhtserver` or
    /// `none`.
    pub routing: String,
    /// Gossipsub pubsub (Kubo's `Pubsub.Enabled`; the daemon's `--enable-pubsub-experiment`).
    pub pubsub: bool,
    /// Local-network discovery (Kubo's `Discovery.MDNS.Enabled`).
    pub mdns: bool,
    /// Connection manager: trim to this many peers…
    pub conn_low_water: usize,
    /// …when more than this many are connected…
    pub conn_high_water: usize,
    /// …sparing connections younger than this (a Go duration such as `20s`).
    pub conn_grace_period: String,
    /// Seconds a `cat`, `get`, `pin add` or gateway request waits for a block from the network.
    pub fetch_timeout_secs: u64,
    /// What the reprovider announces (Kubo's `Reprovider.Strategy`): `all` (every stored
    /// block), `pinned` (pinned DAGs, every block) or `roots` (pin roots only).
    pub reprovider_strategy: String,
    /// How often every key is announced again (Kubo's `Reprovider.Interval`, a Go duration);
    /// `0` turns the reprovider off. Provider records live 48 hours.
    pub reprovider_interval: String,
    /// Dial and listen through circuit relays (Kubo's `Swarm.RelayClient.Enabled`).
    pub relay_client: bool,
    /// Relays (`/…/p2p/<id>`) to listen through when AutoNAT finds the node unreachable
    /// (Kubo's `Swarm.RelayClient.StaticRelays`).
    pub static_relays: Vec<String>,
    /// Relay connections for other peers (Kubo's `Swarm.RelayService.Enabled`). Off by default:
    /// a relay spends its bandwidth on strangers.
    pub relay_service: bool,
    /// Turn relayed connections into direct ones with DCUtR (Kubo's
    /// `Swarm.EnableHolePunching`).
    pub hole_punching: bool,
    /// Dial peers back for their AutoNAT probes: `enabled` or `disabled` (Kubo's
    /// `AutoNAT.ServiceMode`). This node's own reachability is probed either way.
    pub autonat_service_mode: String,
    /// Provide in batches: crawl the DHT once, then send each key's K closest peers its record
    /// directly (Kubo's `Routing.AcceleratedDHTClient`, on here by default). Off: one DHT lookup
    /// per key, as Kubo's default provider.
    pub accelerated_dht_client: bool,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            bootstrap: Vec::new(),
            routing: "dht".into(),
            pubsub: false,
            mdns: false,
            conn_low_water: 32,
            conn_high_water: 96,
            conn_grace_period: "20s".into(),
            fetch_timeout_secs: 60,
            reprovider_strategy: "all".into(),
            reprovider_interval: "22h".into(),
            relay_client: true,
            static_relays: Vec::new(),
            relay_service: false,
            hole_punching: true,
            autonat_service_mode: "enabled".into(),
            accelerated_dht_client: true,
        }
    }
}

/// IPNS over the network (Kubo's `Ipns` section, under the same names).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Ipns {
    /// How often the daemon re-signs and re-puts the records of its keys (a Go duration;
    /// Kubo's `Ipns.RepublishPeriod`, 4h). `0` turns the republisher off.
    pub republish_period: String,
    /// How long republished records stay valid (Kubo's `Ipns.RecordLifetime`, 48h).
    pub record_lifetime: String,
    /// IPNS over pubsub as well as the DHT (Kubo's `Ipns.UsePubsub`; the daemon's
    /// `--enable-namesys-pubsub`, which also turns pubsub on).
    pub use_pubsub: bool,
    /// Names whose resolved records are cached, each for its record's TTL (Kubo's
    /// `Ipns.ResolveCacheSize`, 128).
    pub resolve_cache_size: usize,
}

impl Default for Ipns {
    fn default() -> Self {
        Ipns {
            republish_period: "4h".into(),
            record_lifetime: "48h".into(),
            use_pubsub: false,
            resolve_cache_size: 128,
        }
    }
}

/// An S3-compatible bucket as a colder tier of blocks (docs/tiered.md). Credentials left empty
/// come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectStorage {
    /// The bucket; empty: no object storage tier.
    pub bucket: String,
    /// A key prefix inside the bucket (blocks go under `<prefix>/blocks/`).
    pub prefix: String,
    /// The endpoint (`http://127.0.0.1:9000` for a local server); empty for AWS.
    pub endpoint: String,
    /// The region; empty for `us-east-1`.
    pub region: String,
    /// The access key ID; empty: from the environment.
    pub access_key_id: String,
    /// The secret access key; empty: from the environment. Never shown by `config show`.
    pub secret_access_key: String,
    /// `bucket.endpoint/key` requests instead of path-style `endpoint/bucket/key`.
    pub virtual_hosted_style: bool,
    /// The bucket may lose objects by itself (a lifecycle rule expires them): pinned content
    /// moved there keeps its copy on the local disk, so a pin always has a durable copy.
    pub volatile: bool,
    /// Block bytes the bucket should hold at most (`1TiB`); `0`: no limit. Past
    /// `high_watermark` of it, the coldest blocks nothing keeps (no pin, not the MFS root) are
    /// deleted from the bucket, which leaves them to the network, until under `low_watermark`.
    #[serde(deserialize_with = "string_or_integer")]
    pub capacity: String,
    /// See `capacity` (0.9).
    pub high_watermark: f64,
    /// See `capacity` (0.8).
    pub low_watermark: f64,
}

impl Default for ObjectStorage {
    fn default() -> Self {
        ObjectStorage {
            bucket: String::new(),
            prefix: String::new(),
            endpoint: String::new(),
            region: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            virtual_hosted_style: false,
            volatile: false,
            capacity: "0".into(),
            high_watermark: 0.9,
            low_watermark: 0.8,
        }
    }
}

impl ObjectStorage {
    /// `capacity` in bytes; 0 for no limit.
    pub fn capacity_bytes(&self) -> Result<u64, Error> {
        limit_bytes("object_storage.capacity", &self.capacity)
    }

    /// The tier's client settings, or `None` when no bucket is set.
    pub fn tier_config(&self) -> Option<ipfs_kit_tiered::ObjectConfig> {
        if self.bucket.is_empty() {
            return None;
        }
        let mut c = ipfs_kit_tiered::ObjectConfig::new(&self.bucket, &self.endpoint);
        c.prefix = self.prefix.clone();
        c.region = self.region.clone();
        c.access_key_id = (!self.access_key_id.is_empty()).then(|| self.access_key_id.clone());
        c.secret_access_key =
            (!self.secret_access_key.is_empty()).then(|| self.secret_access_key.clone());
        c.virtual_hosted_style = self.virtual_hosted_style;
        Some(c)
    }
}

/// Moving content between tiers by heat (docs/tiered.md, "Heat").
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tiering {
    /// How long until an access counts half (a Go duration, `24h`).
    pub heat_half_life: String,
    /// Heat at which a block read from object storage moves to the local disk (4: about four
    /// reads within a few hours); 0 never moves one.
    pub promote_at: f64,
    /// Block bytes the local disk tier should hold at most (`100GiB`); `0` or empty: no limit,
    /// nothing is demoted by itself.
    pub local_capacity: String,
    /// Past this fraction of `local_capacity`, the coldest blocks move to object storage…
    pub high_watermark: f64,
    /// …until the local disk is back under this fraction.
    pub low_watermark: f64,
    /// Keep pinned content on the local disk: demotion moves only unpinned blocks.
    pub pins_stay_local: bool,
    /// How often the daemon retries pending migrations and checks the watermarks (a Go
    /// duration, `1m`).
    pub interval: String,
}

impl Default for Tiering {
    fn default() -> Self {
        Tiering {
            heat_half_life: "24h".into(),
            promote_at: 4.0,
            local_capacity: "0".into(),
            high_watermark: 0.9,
            low_watermark: 0.8,
            pins_stay_local: false,
            interval: "1m".into(),
        }
    }
}

impl Tiering {
    /// `local_capacity` in bytes; 0 for no limit.
    pub fn local_capacity_bytes(&self) -> Result<u64, Error> {
        limit_bytes("tiering.local_capacity", &self.local_capacity)
    }

    /// The half-life, parsed.
    pub fn half_life(&self) -> Result<std::time::Duration, Error> {
        positive_duration("tiering.heat_half_life", &self.heat_half_life)
    }

    /// [`Tiering::interval`], parsed.
    pub fn interval(&self) -> Result<std::time::Duration, Error> {
        positive_duration("tiering.interval", &self.interval)
    }
}

/// The byte size `value` of the limit setting `name`; 0 (no limit) when empty.
fn limit_bytes(name: &str, value: &str) -> Result<u64, Error> {
    if value.trim().is_empty() {
        return Ok(0);
    }
    parse_byte_size(value).map_err(|e| Error::Config(format!("{name}: {e}")))
}

/// The Go duration `value` of setting `name`, which must be more than zero.
fn positive_duration(name: &str, value: &str) -> Result<std::time::Duration, Error> {
    match crate::parse_go_duration(value) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(Error::Config(format!(
            "{name} {value:?} must be a positive duration such as 1h"
        ))),
    }
}

/// Kubo's default bootstrap peers, which `init --profile public` puts in the config. Never used
/// by default: these machines, and tests, stay off the public network.
pub const PUBLIC_BOOTSTRAP: &[&str] = &[
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
    "/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
    "/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
];

/// The config profiles `init --profile` knows besides the import profiles.
pub const CONFIG_PROFILES: &[&str] = &["public"];

impl Config {
    /// Applies `init --profile` names, comma-separated as Kubo takes them: `public` joins the
    /// public IPFS network (Kubo's bootstrap peers, mDNS on, the DHT, swarm addresses on every
    /// interface); an import profile's name (`unixfs-v1-2025`, …) becomes the default import
    /// profile. An unknown name is an error and changes nothing.
    pub fn apply_profiles(&mut self, names: &str) -> Result<(), Error> {
        let mut next = self.clone();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "public" => {
                    next.network.bootstrap =
                        PUBLIC_BOOTSTRAP.iter().map(|s| s.to_string()).collect();
                    next.network.mdns = true;
                    next.network.routing = "dht".into();
                    next.addresses.swarm = vec![
                        "/ip4/0.0.0.0/tcp/4001".into(),
                        "/ip6/::/tcp/4001".into(),
                        "/ip4/0.0.0.0/udp/4001/quic-v1".into(),
                        "/ip6/::/udp/4001/quic-v1".into(),
                    ];
                }
                other if ipfs_kit_unixfs::ImportProfile::by_name(other).is_ok() => {
                    next.import.profile = other.to_string();
                }
                other => {
                    return Err(Error::Config(format!(
                        "unknown profile {other:?}: expected {} or an import profile ({})",
                        CONFIG_PROFILES.join(", "),
                        ipfs_kit_unixfs::ImportProfile::NAMES.join(", ")
                    )))
                }
            }
        }
        next.validate()?;
        *self = next;
        Ok(())
    }
}

const HEADER: &str = "\
# ipfs-kit repo config. Edit with `ipfs-kit config set KEY VALUE` or by hand.
#
# [identity]     the node's Ed25519 key and peer ID; keep private_key secret.
# [datastore]    segment_size (bytes per segment file), verify_reads (re-hash every block read),
#                compact_dead_ratio (gc rewrites a segment once this fraction is garbage),
#                block_cache_size (the daemon's memory cache of verified blocks, 256MiB; 0: off),
#                cache_writes (keep newly written blocks in the OS page cache; off),
#                storage_max (10GB), storage_gc_watermark (90) and gc_period (1h): with
#                `daemon --enable-gc`, gc runs once the repo passes 90% of storage_max.
# [import]       profile: unixfs-v0-2015 (Kubo's default CIDs), unixfs-v1-2025 (CIDv1, raw
#                leaves, 1 MiB chunks) or kubo-v0.22; `add` flags override it. hamt_threshold:
#                estimated directory size past which add and MFS shard a directory (256KiB;
#                1B shards every non-empty directory, 0 never shards).
# [addresses]    api, gateway and swarm listen multiaddrs for the daemon; announce (what peers
#                are told instead of the swarm addresses).
# [network]      bootstrap peers, routing (dht, dhtclient, dhtserver, none), pubsub, mdns, the
#                connection manager's water marks and grace period, fetch_timeout_secs;
#                reprovider_strategy (all, pinned, roots) and reprovider_interval (22h; 0: off);
#                relay_client, static_relays, relay_service, hole_punching, autonat_service_mode,
#                accelerated_dht_client (batched providing; false: one lookup per key).
# [ipns]         republish_period (4h; 0: off), record_lifetime (48h), use_pubsub (IPNS over
#                pubsub too), resolve_cache_size (names cached for their record's TTL).
# [object_storage] bucket (empty: no object storage tier), prefix, endpoint (empty: AWS),
#                region, access_key_id and secret_access_key (empty: the AWS_* environment),
#                virtual_hosted_style (else path-style requests), volatile (the bucket may
#                expire objects: pinned content keeps a local copy), capacity (0: no limit)
#                with high_watermark and low_watermark (0.9, 0.8: past 90% the coldest
#                unpinned blocks leave the bucket until under 80%). See docs/tiered.md.
# [tiering]      heat_half_life (24h: an access counts half after it), promote_at (heat at
#                which a block read from object storage moves to the local disk; 0: never),
#                local_capacity (0: no limit) with high_watermark and low_watermark (0.9, 0.8:
#                past 90% the coldest blocks move to object storage until under 80%),
#                pins_stay_local (demote only unpinned blocks), interval (1m: how often the
#                daemon retries pending migrations and checks the watermarks).
# [api]          authorizations (named secrets, Kubo's API.Authorizations: auth_secret
#                bearer:TOKEN or basic:USER:PASSWORD, allowed_paths such as /api/v0/cat),
#                allowed_origins (CORS), http_headers, and the request limits.
# [extra]        Kubo settings ipfs-kit stores for clients but does not use, under Kubo's names.
#
# Over the RPC API (`config KEY VALUE`) keys take Kubo's names (Addresses.API, Datastore.HashOnRead)
# or the ones here. import settings apply to the next add or files command; datastore, addresses, api and network settings
# take effect when the daemon restarts.

";

impl Config {
    /// Parses and validates a config file's text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Config =
            toml::from_str(text).map_err(|e| Error::Config(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The file text: a commented header and the settings.
    pub fn to_toml(&self) -> Result<String, Error> {
        let body = toml::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        Ok(format!("{HEADER}{body}"))
    }

    /// Checks values that TOML types alone do not constrain.
    pub fn validate(&self) -> Result<(), Error> {
        ipfs_kit_unixfs::ImportProfile::by_name(&self.import.profile)
            .map_err(|e| Error::Config(format!("import.profile: {e}")))?;
        self.import.hamt_threshold_bytes()?;
        self.datastore.block_cache_bytes()?;
        if !(0.0..=1.0).contains(&self.datastore.compact_dead_ratio) {
            return Err(Error::Config(
                "datastore.compact_dead_ratio must be between 0 and 1".into(),
            ));
        }
        for (name, a) in &self.api.authorizations {
            ipfs_kit_rpc::Authorization::from_secret(name, &a.auth_secret, Vec::new())
                .map_err(|e| Error::Config(format!("api.authorizations: {e}")))?;
        }
        if self.api.max_concurrent_requests == 0 || self.api.max_connections == 0 {
            return Err(Error::Config(
                "api.max_concurrent_requests and api.max_connections must be at least 1".into(),
            ));
        }
        crate::net::validate(&self.addresses, &self.network)?;
        crate::ipns::validate(&self.ipns)?;
        self.tiering.half_life()?;
        self.tiering.interval()?;
        self.tiering.local_capacity_bytes()?;
        self.datastore.gc_threshold()?;
        self.datastore.gc_period()?;
        self.object_storage.capacity_bytes()?;
        for (section, low, high) in [
            (
                "tiering",
                self.tiering.low_watermark,
                self.tiering.high_watermark,
            ),
            (
                "object_storage",
                self.object_storage.low_watermark,
                self.object_storage.high_watermark,
            ),
        ] {
            if !(0.0 < low && low <= high && high <= 1.0) {
                return Err(Error::Config(format!(
                    "{section} watermarks must satisfy 0 < low_watermark <= high_watermark <= 1"
                )));
            }
        }
        if !(self.tiering.promote_at.is_finite() && self.tiering.promote_at >= 0.0) {
            return Err(Error::Config(
                "tiering.promote_at must be a number, 0 or more".into(),
            ));
        }
        if !self.object_storage.bucket.is_empty()
            && !self.object_storage.endpoint.is_empty()
            && !self.object_storage.endpoint.starts_with("http://")
            && !self.object_storage.endpoint.starts_with("https://")
        {
            return Err(Error::Config(format!(
                "object_storage.endpoint {:?} must be an http:// or https:// URL",
                self.object_storage.endpoint
            )));
        }
        if self.datastore.segment_size < 1 << 20 {
            return Err(Error::Config(
                "datastore.segment_size must be at least 1048576".into(),
            ));
        }
        Ok(())
    }

    /// The value at a dotted key such as `datastore.verify_reads`.
    pub fn get(&self, key: &str) -> Result<toml::Value, Error> {
        let mut cur = toml::Value::try_from(self).map_err(|e| Error::Config(e.to_string()))?;
        for part in key.split('.') {
            cur = match cur {
                toml::Value::Table(mut t) => t
                    .remove(part)
                    .ok_or_else(|| Error::Config(format!("no config key {key:?}")))?,
                _ => return Err(Error::Config(format!("no config key {key:?}"))),
            };
        }
        Ok(cur)
    }

    /// A copy with `key` set to `value` (parsed as TOML when it parses, else taken as a string),
    /// validated as a whole.
    pub fn with(&self, key: &str, value: &str) -> Result<Config, Error> {
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        self.with_value(key, parsed)
    }

    /// A copy with the existing `key` set to `parsed`, validated as a whole.
    pub fn with_value(&self, key: &str, parsed: toml::Value) -> Result<Config, Error> {
        let mut root = toml::Value::try_from(self).map_err(|e| Error::Config(e.to_string()))?;
        let parts: Vec<&str> = key.split('.').collect();
        let (last, path) = parts
            .split_last()
            .ok_or_else(|| Error::Config("empty config key".into()))?;
        let mut cur = &mut root;
        for part in path {
            cur = match cur {
                toml::Value::Table(t) => t
                    .get_mut(*part)
                    .ok_or_else(|| Error::Config(format!("no config key {key:?}")))?,
                _ => return Err(Error::Config(format!("no config key {key:?}"))),
            };
        }
        match cur {
            toml::Value::Table(t) if t.contains_key(*last) => {
                t.insert((*last).to_string(), parsed);
            }
            _ => return Err(Error::Config(format!("no config key {key:?}"))),
        }
        let text = toml::to_string(&root).map_err(|e| Error::Config(e.to_string()))?;
        Config::from_toml(&text).map_err(|e| Error::Config(format!("{key}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_set() {
        let c = Config::default();
        let text = c.to_toml().unwrap();
        assert_eq!(Config::from_toml(&text).unwrap(), c);
        let c2 = c.with("datastore.verify_reads", "false").unwrap();
        assert!(!c2.datastore.verify_reads);
        let c3 = c.with("import.profile", "unixfs-v1-2025").unwrap();
        assert_eq!(
            c3.get("import.profile").unwrap().as_str(),
            Some("unixfs-v1-2025")
        );
        assert!(c.with("import.profile", "nope").is_err());
        assert!(c.with("datastore.verify_reads", "\"yes\"").is_err());
        assert!(c.with("no.such", "1").is_err());
        assert!(c.get("datastore.nope").is_err());
        let c4 = c.with("import.hamt_threshold", "1B").unwrap();
        assert_eq!(c4.import.hamt_threshold_bytes().unwrap(), 1);
        let c5 = c.with("import.hamt_threshold", "1024").unwrap();
        assert_eq!(c5.import.hamt_threshold, "1024");
        assert!(c.with("import.hamt_threshold", "lots").is_err());
        assert_eq!(c.import.hamt_threshold_bytes().unwrap(), 256 * 1024);
        assert_eq!(c.datastore.block_cache_bytes().unwrap(), 256 << 20);
        let c6 = c.with("datastore.block_cache_size", "0").unwrap();
        assert_eq!(c6.datastore.block_cache_bytes().unwrap(), 0);
        let c7 = c.with("datastore.block_cache_size", "\"1GB\"").unwrap();
        assert_eq!(c7.datastore.block_cache_bytes().unwrap(), 1_000_000_000);
        assert!(c.with("datastore.block_cache_size", "lots").is_err());
        assert_eq!(c.kubo_get("Datastore.BlockCacheSize").unwrap(), "256MiB");
    }

    #[test]
    fn init_profiles() {
        let mut c = Config::default();
        c.apply_profiles("public").unwrap();
        assert_eq!(c.network.bootstrap.len(), PUBLIC_BOOTSTRAP.len());
        assert!(c.network.mdns);
        assert_eq!(c.network.routing, "dht");
        assert!(c
            .addresses
            .swarm
            .iter()
            .all(|a| a.contains("0.0.0.0") || a.contains("/::/")));
        let mut d = Config::default();
        d.apply_profiles("unixfs-v1-2025, public").unwrap();
        assert_eq!(d.import.profile, "unixfs-v1-2025");
        assert!(d.network.mdns);
        let mut e = Config::default();
        let err = e.apply_profiles("public,nope").unwrap_err().to_string();
        assert!(err.contains("unknown profile \"nope\""), "{err}");
        assert_eq!(e, Config::default(), "an unknown name changes nothing");
        // The private default stays private.
        let f = Config::default();
        assert!(f.network.bootstrap.is_empty() && !f.network.mdns);
    }

    #[test]
    fn kubo_names_of_the_network_settings() {
        let c = Config::default();
        assert_eq!(c.kubo_get("Reprovider.Strategy").unwrap(), "all");
        assert_eq!(c.kubo_get("Reprovider.Interval").unwrap(), "22h");
        assert_eq!(c.kubo_get("Routing.Type").unwrap(), "dht");
        assert_eq!(c.kubo_get("Bootstrap").unwrap(), serde_json::json!([]));
        assert_eq!(c.kubo_get("Swarm.ConnMgr.HighWater").unwrap(), 96);
        let older = c
            .clone()
            .with_kubo("Routing.Type", "dhtserver".into())
            .unwrap()
            .with_kubo("Discovery.MDNS.Enabled", true.into())
            .unwrap()
            .with_kubo("Swarm.ConnMgr.LowWater", 10.into())
            .unwrap()
            .with_kubo("Swarm.ConnMgr.GracePeriod", "1m".into())
            .unwrap()
            .with_kubo("Pubsub.Enabled", true.into())
            .unwrap();
        let n = &older.network;
        assert_eq!(n.routing, "dhtserver");
        assert!(n.mdns && n.pubsub);
        assert_eq!((n.conn_low_water, n.conn_grace_period.as_str()), (10, "1m"));
        assert!(c.with_kubo("Routing.Type", "fastest".into()).is_err());
        let c = c
            .with_kubo("Reprovider.Strategy", "roots".into())
            .unwrap()
            .with_kubo("Swarm.RelayService.Enabled", true.into())
            .unwrap()
            .with_kubo("AutoNAT.ServiceMode", "disabled".into())
            .unwrap();
        assert_eq!(c.network.reprovider_strategy, "roots");
        assert!(c.network.relay_service);
        assert_eq!(c.network.autonat_service_mode, "disabled");
        assert!(c.with_kubo("Reprovider.Strategy", "flat".into()).is_err());
        assert!(c.with_kubo("Reprovider.Interval", "soon".into()).is_err());
        // A whole Kubo config carrying the nested names lands on ours.
        let mut view = c.kubo_view(false).unwrap();
        view["Swarm"] = serde_json::json!({"RelayClient": {"Enabled": false}});
        let back = Config::from_kubo(&view).unwrap();
        assert!(!back.network.relay_client);
        assert!(back.extra.get("Swarm").is_none());
    }

    #[test]
    fn byte_sizes_parse_like_kubo() {
        for (text, bytes) in [
            ("1B", 1),
            ("0", 0),
            ("256KiB", 262_144),
            ("256kib", 262_144),
            ("1KB", 1000),
            ("1 kB", 1000),
            ("1K", 1000),
            ("1Ki", 1024),
            ("1.5MiB", 1_572_864),
            ("2GB", 2_000_000_000),
            ("1,024", 1024),
            ("1EiB", 1 << 60),
        ] {
            assert_eq!(parse_byte_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "KiB", "1 XB", "1ZiB", "-1", "1.2.3B"] {
            assert!(parse_byte_size(bad).is_err(), "{bad}");
        }
    }
}
