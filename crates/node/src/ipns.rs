//! `name publish` and `name resolve` (see docs/keys-ipns.md and docs/network.md).
//!
//! The repo keeps the records of its own keys. Online, publishing also puts the record to the
//! DHT (and to its pubsub topic when IPNS over pubsub is on), and resolving a name this node
//! does not publish asks the network: the DHT (and pubsub), every record validated, the best
//! one cached for its TTL. A republisher re-signs and re-puts the node's records periodically.
//! Offline, publishing needs `allow_offline` and resolving knows only the repo's records.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use ipfs_kit_ipns::{Name, Record, RecordOptions};
use parking_lot::Mutex;
use redb::{ReadableDatabase, TableDefinition};

use crate::config::Ipns as IpnsConfig;
use crate::{meta_err, Error, Repo};

/// IPNS records by name: multihash bytes of the name → record protobuf.
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ipns_records");

/// How many `/ipns/` hops a recursive resolve follows (Kubo's default depth limit).
const MAX_DEPTH: usize = 32;

/// Kubo's message for publishing without the network.
pub const OFFLINE_PUBLISH: &str = "can't publish while offline: pass `--allow-offline` to override or `--allow-delegated` if Ipns.DelegatedPublishers are set up";

/// Options of `name publish`, with Kubo's defaults.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// Key name (`self`: the node identity).
    pub key: String,
    /// How long the record is valid.
    pub lifetime: Duration,
    /// Cache TTL written into the record.
    pub ttl: Duration,
    /// Check that the path resolves before publishing.
    pub resolve: bool,
    /// Publish although the node is offline, or online with no peer to take the record (it
    /// is then kept here only).
    pub allow_offline: bool,
    /// Also write the V1 record fields.
    pub v1_compat: bool,
    /// An explicit sequence number (must exceed the stored record's).
    pub sequence: Option<u64>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            key: crate::keys::SELF_KEY.to_string(),
            lifetime: Duration::from_secs(48 * 3600),
            ttl: Duration::from_secs(3600),
            resolve: true,
            allow_offline: false,
            v1_compat: true,
            sequence: None,
        }
    }
}

/// Parses a Go duration (`48h`, `1h30m`, `500ms`, `1.5h`), as Kubo's `--lifetime` and `--ttl`.
pub fn parse_go_duration(s: &str) -> Result<Duration, Error> {
    Ok(ipfs_kit_ipns::parse_go_duration(s)?)
}

impl Repo {
    /// The stored record of `name`, if any (not verified).
    pub fn ipns_record(&self, name: &Name) -> Result<Option<Record>, Error> {
        let tx = self.meta.begin_read().map_err(meta_err)?;
        let table = match tx.open_table(RECORDS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(meta_err(e)),
        };
        let key = name.peer_id().multihash().to_bytes();
        let Some(v) = table.get(key.as_slice()).map_err(meta_err)? else {
            return Ok(None);
        };
        Ok(Some(Record::decode(v.value())?))
    }

    fn put_ipns_record(&self, name: &Name, record: &Record) -> Result<(), Error> {
        let tx = self.meta.begin_write().map_err(meta_err)?;
        {
            let mut t = tx.open_table(RECORDS).map_err(meta_err)?;
            let key = name.peer_id().multihash().to_bytes();
            t.insert(key.as_slice(), record.encode().as_slice())
                .map_err(meta_err)?;
        }
        tx.commit().map_err(meta_err)
    }

    /// Signs a record pointing `opts.key`'s name at `path` and stores it. Returns the name and
    /// the published value.
    pub fn name_publish(&self, path: &str, opts: &PublishOptions) -> Result<(Name, String), Error> {
        let online = self.online();
        if !opts.allow_offline && online.is_none() {
            return Err(Error::Invalid(OFFLINE_PUBLISH.into()));
        }
        let value = normalize_path(path)?;
        if opts.resolve {
            self.resolve(&value)?;
        }
        let key = self.keypair(&opts.key)?;
        let name = key.public().peer_id().to_name();
        let previous = self.ipns_record(&name)?;
        let sequence = match (&previous, opts.sequence) {
            (Some(p), Some(s)) if s <= p.sequence() => {
                return Err(Error::Invalid(format!(
                    "sequence number must be greater than the current record sequence {}",
                    p.sequence()
                )))
            }
            (_, Some(s)) => s,
            (Some(p), None) if p.value() == value.as_bytes() => p.sequence(),
            (Some(p), None) => p.sequence().saturating_add(1),
            (None, None) => 0,
        };
        let record = Record::create(
            &key,
            value.as_bytes(),
            &RecordOptions {
                sequence,
                validity: SystemTime::now() + opts.lifetime,
                ttl: opts.ttl,
                v1_compat: opts.v1_compat,
            },
        )?;
        if let Some(online) = online {
            if let Err(e) = online.publish_record(&name, &record) {
                if !opts.allow_offline {
                    return Err(Error::Invalid(format!("{OFFLINE_PUBLISH} ({e})")));
                }
                tracing::warn!("{name}: kept here only, the network did not take it: {e}");
            }
        }
        self.put_ipns_record(&name, &record)?;
        Ok((name, value))
    }

    /// Re-signs the record of every key that has one (same value and sequence, valid for
    /// `lifetime` from now), stores it and puts it to the network. Returns how many names were
    /// republished; a name the network did not take is counted out and logged.
    pub fn republish(&self, lifetime: Duration) -> Result<usize, Error> {
        let Some(online) = self.online() else {
            return Ok(0);
        };
        let mut n = 0;
        for info in self.key_list()? {
            let name = info.id.to_name();
            let Some(old) = self.ipns_record(&name)? else {
                continue;
            };
            let key = self.keypair(&info.name)?;
            let record = Record::create(
                &key,
                old.value(),
                &RecordOptions {
                    sequence: old.sequence(),
                    validity: SystemTime::now() + lifetime,
                    ttl: old.ttl(),
                    v1_compat: old.has_v1_fields(),
                },
            )?;
            self.put_ipns_record(&name, &record)?;
            match online.publish_record(&name, &record) {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!("republish {name}: {e}"),
            }
        }
        Ok(n)
    }

    /// With IPNS over pubsub on, gives the network the stored, still valid record of each of
    /// this node's names, so a peer that joins a name's topic right after a restart can fetch
    /// it (Kubo's store stays empty until its republisher runs, a minute after start).
    /// Returns how many names are served.
    pub(crate) fn serve_own_names_over_pubsub(&self) -> Result<usize, Error> {
        let Some(online) = self.online() else {
            return Ok(0);
        };
        if !online.names.pubsub_enabled() {
            return Ok(0);
        }
        let now = SystemTime::now();
        let mut n = 0;
        for info in self.key_list()? {
            let name = info.id.to_name();
            let Some(record) = self
                .ipns_record(&name)?
                .filter(|r| r.verify(&name, now).is_ok())
            else {
                continue;
            };
            let (net, key) = (online.network().clone(), name.routing_key());
            match online.wait(async move { net.put_value_pubsub(key, record.encode()).await })? {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!("IPNS over pubsub for {name}: {e}"),
            }
        }
        Ok(n)
    }

    /// The best valid record of `name`: ours when this repo publishes it, else (online) the
    /// network's.
    fn best_record(&self, name: &Name) -> Result<Record, Error> {
        let now = SystemTime::now();
        if let Some(r) = self
            .ipns_record(name)?
            .filter(|r| r.verify(name, now).is_ok())
        {
            return Ok(r);
        }
        match self.online() {
            Some(online) => online.resolve_record(name),
            None => Err(Error::Invalid("could not resolve name".into())),
        }
    }

    /// The signed record of `name` as bytes (for `/routing/v1/ipns/` and `?format=ipns-record`),
    /// `None` when neither this node nor the network has a valid one.
    pub fn ipns_record_bytes(&self, name: &Name) -> Result<Option<Vec<u8>>, Error> {
        match self.best_record(name) {
            Ok(r) => Ok(Some(r.encode())),
            Err(Error::Invalid(_)) | Err(Error::Network(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Resolves an IPNS name (`k51…`, `12D3Koo…`, `/ipns/…`, optionally with a path after it)
    /// through the local records: one step, or with `recursive` until an `/ipfs/` path.
    pub fn name_resolve(&self, name: &str, recursive: bool) -> Result<String, Error> {
        let mut current = if name.starts_with("/ipns/") {
            name.to_string()
        } else {
            format!("/ipns/{name}")
        };
        for _ in 0..MAX_DEPTH {
            let rest = &current["/ipns/".len()..];
            let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let parsed: Name = head.parse()?;
            let record = self.best_record(&parsed)?;
            let value = std::str::from_utf8(record.value())
                .map_err(|_| Error::Invalid("IPNS record value is not UTF-8".into()))?;
            let mut next = value.trim_end_matches('/').to_string();
            if !tail.is_empty() {
                next = format!("{next}/{tail}");
            }
            if !recursive || !next.starts_with("/ipns/") {
                return Ok(next);
            }
            current = next;
        }
        Err(Error::Invalid(format!(
            "could not resolve name: more than {MAX_DEPTH} /ipns/ hops"
        )))
    }

    /// Turns an `/ipns/…` path into the `/ipfs/…` path it names (other paths unchanged).
    pub(crate) fn expand_ipns(&self, path: &str) -> Result<String, Error> {
        if path.trim().starts_with("/ipns/") {
            self.name_resolve(path.trim(), true)
        } else {
            Ok(path.to_string())
        }
    }
}

/// Checks the `[ipns]` settings.
pub(crate) fn validate(c: &IpnsConfig) -> Result<(), Error> {
    for (key, v) in [
        ("ipns.republish_period", &c.republish_period),
        ("ipns.record_lifetime", &c.record_lifetime),
    ] {
        ipfs_kit_ipns::parse_go_duration(v)
            .map_err(|_| Error::Config(format!("{key}: {v:?} is not a duration such as 4h")))?;
    }
    Ok(())
}

/// The online half of the name system: the resolve cache, and whether names also travel
/// over pubsub (the network keeps what it hears there: see `ipfs_kit_net::Network::
/// follow_value`). Lives in [`crate::Online`].
pub(crate) struct NameSys {
    /// Resolved records by name, each until its TTL (or end of life) passes. Bounded by
    /// `capacity`; the entry closest to expiry goes first.
    cache: Mutex<HashMap<Name, (Record, Instant)>>,
    capacity: usize,
    /// IPNS over pubsub is on.
    pubsub: bool,
}

impl NameSys {
    pub(crate) fn new(config: &IpnsConfig, pubsub: bool) -> Self {
        NameSys {
            cache: Mutex::new(HashMap::new()),
            capacity: config.resolve_cache_size,
            pubsub,
        }
    }

    fn cached(&self, name: &Name) -> Option<Record> {
        let mut cache = self.cache.lock();
        match cache.get(name) {
            Some((r, until)) if *until > Instant::now() => Some(r.clone()),
            Some(_) => {
                cache.remove(name);
                None
            }
            None => None,
        }
    }

    fn remember(&self, name: Name, record: &Record) {
        if self.capacity == 0 {
            return;
        }
        let now = SystemTime::now();
        let left = record
            .validity()
            .ok()
            .and_then(|eol| eol.duration_since(now).ok())
            .unwrap_or_default();
        let ttl = record.ttl().min(left);
        if ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock();
        if cache.len() >= self.capacity && !cache.contains_key(&name) {
            let t = Instant::now();
            cache.retain(|_, (_, until)| *until > t);
            if cache.len() >= self.capacity {
                if let Some(first) = cache.iter().min_by_key(|(_, (_, u))| *u).map(|(n, _)| *n) {
                    cache.remove(&first);
                }
            }
        }
        cache.insert(name, (record.clone(), Instant::now() + ttl));
    }

    /// Whether IPNS over pubsub is on.
    pub(crate) fn pubsub_enabled(&self) -> bool {
        self.pubsub
    }
}

impl crate::Online {
    /// Puts `record` of `name` to the DHT (and its `/pk/` key record when the name does not
    /// inline the key), and to the pubsub value store when IPNS over pubsub is on. Fails
    /// when neither took it.
    pub(crate) fn publish_record(&self, name: &Name, record: &Record) -> Result<(), Error> {
        let (net, key, value) = (self.network().clone(), name.routing_key(), record.encode());
        let pk = record.public_key().map(|pk| {
            let mut k = b"/pk/".to_vec();
            k.extend_from_slice(&name.peer_id().multihash().to_bytes());
            (k, pk.to_vec())
        });
        let pubsub = self.names.pubsub_enabled();
        let timeout = self.fetch_timeout;
        let result = self.wait(async move {
            // Over pubsub the record is kept, served to peers that join the name's topic, and
            // published; like Kubo's parallel router, either way taking it counts.
            let over_pubsub = match pubsub {
                true => match net.put_value_pubsub(key.clone(), value.clone()).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("IPNS over pubsub: {e}");
                        false
                    }
                },
                false => false,
            };
            if let Some((k, v)) = pk {
                let _ = tokio::time::timeout(timeout, net.put_record(k, v)).await;
            }
            let dht = tokio::time::timeout(timeout, net.put_record(key, value))
                .await
                .unwrap_or_else(|_| Err(ipfs_kit_net::Error::Routing("put timed out".into())));
            match dht {
                Err(e) if over_pubsub => {
                    tracing::debug!("IPNS publish: only over pubsub: {e}");
                    Ok(())
                }
                other => other,
            }
        })?;
        result.map_err(|e| Error::Network(e.to_string()))?;
        self.names.remember(*name, record);
        Ok(())
    }

    /// The best valid record of `name` on the network: the cache, else the DHT and (when on)
    /// pubsub, which follows the name from now on; a better record heard over pubsub replaces
    /// a cached one at once.
    pub(crate) fn resolve_record(&self, name: &Name) -> Result<Record, Error> {
        let (net, key, pubsub) = (
            self.network().clone(),
            name.routing_key(),
            self.names.pubsub_enabled(),
        );
        let now = SystemTime::now();
        let heard = |net: &ipfs_kit_net::Network| {
            net.pubsub_value(&key)
                .and_then(|v| Record::decode(&v).ok())
                .filter(|r| r.verify(name, now).is_ok())
        };
        if let Some(cached) = self.names.cached(name) {
            // The first resolve followed the name already; nothing to wait for.
            let best = match heard(&net) {
                Some(h) => best_of(name, vec![cached, h])?,
                None => cached,
            };
            self.names.remember(*name, &best);
            return Ok(best);
        }
        let timeout = self.timeout()?;
        let (net2, key2) = (net.clone(), key.clone());
        let found = self.wait(async move {
            // Asking the name's pubsub peers runs alongside the DHT lookup.
            let follow = async {
                if pubsub {
                    if let Err(e) = net2.follow_value(key2.clone()).await {
                        tracing::warn!("IPNS over pubsub: {e}");
                    }
                }
            };
            let lookup = async {
                tokio::time::timeout(timeout, net2.get_record(key2.clone()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ipfs_kit_net::Error::Routing("routing: not found".into()))
                    })
            };
            tokio::join!(follow, lookup).1
        })?;
        let mut candidates: Vec<Record> = Vec::new();
        match found {
            Ok(bytes) => match Record::decode(&bytes) {
                Ok(r) if r.verify(name, now).is_ok() => candidates.push(r),
                _ => {}
            },
            Err(e) => tracing::debug!("resolve {name} in the DHT: {e}"),
        }
        candidates.extend(heard(&net));
        let best = best_of(name, candidates)?;
        self.names.remember(*name, &best);
        Ok(best)
    }

    /// The names followed over pubsub, sorted; `None` when IPNS over pubsub is off.
    pub(crate) fn pubsub_names(&self) -> Result<Option<Vec<Name>>, Error> {
        if !self.names.pubsub_enabled() {
            return Ok(None);
        }
        let net = self.network().clone();
        let keys = self
            .wait(async move { net.followed_values().await })?
            .map_err(|e| Error::Network(e.to_string()))?;
        let mut names: Vec<Name> = keys
            .iter()
            .filter_map(|k| match ipfs_kit_net::records::parse_key(k) {
                Ok(ipfs_kit_net::records::RecordKind::Ipns(name)) => Some(name),
                _ => None,
            })
            .collect();
        names.sort();
        Ok(Some(names))
    }

    /// Stops following `name` over pubsub: `None` when IPNS over pubsub is off, else
    /// whether it was followed.
    pub(crate) fn pubsub_cancel(&self, name: &Name) -> Result<Option<bool>, Error> {
        if !self.names.pubsub_enabled() {
            return Ok(None);
        }
        let (net, key) = (self.network().clone(), name.routing_key());
        let was = self
            .wait(async move { net.unfollow_value(key).await })?
            .map_err(|e| Error::Network(e.to_string()))?;
        self.names.cache.lock().remove(name);
        Ok(Some(was))
    }
}

/// The best of `candidates` (each already verified for `name`).
fn best_of(name: &Name, candidates: Vec<Record>) -> Result<Record, Error> {
    let encoded: Vec<Vec<u8>> = candidates.iter().map(|r| r.encode()).collect();
    let refs: Vec<&[u8]> = encoded.iter().map(|v| v.as_slice()).collect();
    ipfs_kit_net::records::select(&name.routing_key(), &refs)
        .and_then(|i| candidates.into_iter().nth(i))
        .ok_or_else(|| Error::Invalid("could not resolve name".into()))
}

/// `CID[/p]`, `/ipfs/CID[/p]` or `/ipns/NAME[/p]` as the value to publish.
fn normalize_path(path: &str) -> Result<String, Error> {
    let p = path.trim();
    if let Some(rest) = p.strip_prefix("/ipns/") {
        let head = rest.split('/').next().unwrap_or_default();
        head.parse::<Name>()?;
        return Ok(p.trim_end_matches('/').to_string());
    }
    let parsed: crate::IpfsPath = p.parse()?;
    Ok(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("48h").unwrap(),
            Duration::from_secs(172_800)
        );
        assert_eq!(
            parse_go_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_go_duration("5000ms").unwrap(), Duration::from_secs(5));
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "h", "10", "1x", "-1h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
