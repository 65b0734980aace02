//! `name publish` and `name resolve` against the repo's own records (see docs/keys-ipns.md).
//! The node has no network yet, so it is always offline: publishing needs `allow_offline`, and
//! resolving only knows records published here.

use std::time::{Duration, SystemTime};

use ipfs_kit_ipns::{Name, Record, RecordOptions};
use redb::{ReadableDatabase, TableDefinition};

use crate::{Error, Repo};

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
    /// Publish although the node is offline (it always is, for now).
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

fn meta_err(e: impl std::fmt::Display) -> Error {
    Error::Meta(e.to_string())
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
        if !opts.allow_offline {
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
        self.put_ipns_record(&name, &record)?;
        Ok((name, value))
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
            let record = self
                .ipns_record(&parsed)?
                .ok_or_else(|| Error::Invalid("could not resolve name".into()))?;
            record.verify(&parsed, SystemTime::now())?;
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
