//! Kubo's names for the config: the view Kubo clients see (`config/show`, `config KEY`), and
//! setting values under those names.
//!
//! Kubo spells a setting in PascalCase (`Datastore.HashOnRead`), config.toml in snake_case
//! (`datastore.verify_reads`). A Kubo key names one of our settings when [`kubo_name`] of that
//! setting is the key exactly; a key naming none of ours is kept in [`Config::extra`] under its
//! Kubo name, so clients can store anything Kubo lets them store. The entries of map settings
//! (`API.Authorizations.<name>`, `API.HTTPHeaders.<header>`) keep their names as given.
//!
//! Two Kubo settings are spread differently from ours: `Addresses.API` and `Addresses.Gateway`
//! are a string when they hold one address (Kubo's `Strings` type), and CORS origins are the
//! `Access-Control-Allow-Origin` entry of `API.HTTPHeaders` (ours: `api.allowed_origins`).
//!
//! ```
//! use ipfs_kit_node::Config;
//! let c = Config::default().with_kubo("Datastore.HashOnRead", false.into()).unwrap();
//! assert!(!c.datastore.verify_reads);
//! let c = c.with_kubo("Fruit", "banana".into()).unwrap();
//! assert_eq!(c.kubo_get("Fruit").unwrap(), "banana");
//! assert_eq!(c.kubo_get("Addresses.API").unwrap(), "/ip4/127.0.0.1/tcp/5001");
//! ```

use serde_json::{Map, Value};

use super::Config;
use crate::Error;

/// Our names whose Kubo spelling is not simply their PascalCase.
const RENAMES: &[(&str, &str)] = &[
    ("api", "API"),
    ("peer_id", "PeerID"),
    ("private_key", "PrivKey"),
    ("verify_reads", "HashOnRead"),
    ("storage_gc_watermark", "StorageGCWatermark"),
    ("gc_period", "GCPeriod"),
    ("http_headers", "HTTPHeaders"),
    ("hamt_threshold", "UnixFSHAMTDirectorySizeThreshold"),
];

/// Kubo keys that Kubo moved, with their current name: reading or writing the old key reads
/// or writes the setting under its new one, as Kubo migrates the old key at startup.
const MOVED: &[(&str, &str)] = &[
    (
        "Internal.UnixFSShardingSizeThreshold",
        "Import.UnixFSHAMTDirectorySizeThreshold",
    ),
    // Kubo's network settings, which live in our `[network]` section.
    ("Bootstrap", "Network.Bootstrap"),
    ("Routing.Type", "Network.Routing"),
    ("Pubsub.Enabled", "Network.Pubsub"),
    ("Discovery.MDNS.Enabled", "Network.Mdns"),
    ("Swarm.ConnMgr.LowWater", "Network.ConnLowWater"),
    ("Swarm.ConnMgr.HighWater", "Network.ConnHighWater"),
    ("Swarm.ConnMgr.GracePeriod", "Network.ConnGracePeriod"),
    ("Reprovider.Strategy", "Network.ReproviderStrategy"),
    ("Reprovider.Interval", "Network.ReproviderInterval"),
    ("Swarm.RelayClient.Enabled", "Network.RelayClient"),
    ("Swarm.RelayClient.StaticRelays", "Network.StaticRelays"),
    ("Swarm.RelayService.Enabled", "Network.RelayService"),
    ("Swarm.EnableHolePunching", "Network.HolePunching"),
    ("AutoNAT.ServiceMode", "Network.AutonatServiceMode"),
    (
        "Routing.AcceleratedDHTClient",
        "Network.AcceleratedDhtClient",
    ),
];

/// `key` with a moved Kubo key (any case) replaced by its current name.
fn current_key(key: &str) -> &str {
    MOVED
        .iter()
        .find(|(old, _)| old.eq_ignore_ascii_case(key))
        .map_or(key, |(_, new)| new)
}

/// Removes the value at the nested key `parts` (any case), and the maps left empty on the way.
fn take_path(m: &mut Map<String, Value>, parts: &[&str]) -> Option<Value> {
    let (first, rest) = parts.split_first()?;
    let key = existing_key(m, first)?;
    if rest.is_empty() {
        return m.remove(&key);
    }
    let Some(Value::Object(inner)) = m.get_mut(&key) else {
        return None;
    };
    let value = take_path(inner, rest);
    if inner.is_empty() {
        m.remove(&key);
    }
    value
}

/// Moves the values of moved keys in a whole Kubo config to their current place. Like Kubo, it
/// refuses the old and the new key set to different values (the new one left at its default
/// counts as unset).
fn move_keys(root: &mut Map<String, Value>) -> Result<(), Error> {
    let default = Config::default().kubo_view(false)?;
    for (old, new) in MOVED {
        let parts: Vec<&str> = old.split('.').collect();
        let Some(value) = take_path(root, &parts) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let Some((new_section, new_name)) = new.split_once('.') else {
            continue;
        };
        let section_key = existing_key(root, new_section).unwrap_or_else(|| new_section.into());
        let section = root
            .entry(section_key)
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(section) = section else {
            return Err(bad(format!("{new_section} must be a map")));
        };
        let name_key = existing_key(section, new_name).unwrap_or_else(|| new_name.to_string());
        let shown_default = default.get(new_section).and_then(|s| s.get(new_name));
        match section.get(&name_key) {
            Some(v) if !v.is_null() && Some(v) != shown_default && *v != value => {
                return Err(bad(format!(
                    "{old} (renamed to {new}) and {new} are both set, to different values"
                )));
            }
            _ => {
                section.insert(name_key, value);
            }
        }
    }
    Ok(())
}

/// The header under which Kubo keeps its CORS origins; ours is `api.allowed_origins`.
const ALLOW_ORIGIN: &str = "Access-Control-Allow-Origin";

/// Kubo settings clients read that the node has no value of its own for, with what it shows
/// when none is stored: it runs no swarm yet, so it listens on no swarm address. Storing the
/// shown value is storing nothing, so a shown config sent back adds nothing to `extra`.
const SHOWN_DEFAULTS: &[(&str, &str)] = &[];

fn is_shown_default(section: &str, name: &str, v: &Value) -> bool {
    SHOWN_DEFAULTS.contains(&(section, name)) && *v == Value::Array(Vec::new())
}

/// Kubo's spelling of one of our names: `verify_reads` -> `HashOnRead`, `max_connections` ->
/// `MaxConnections`.
pub fn kubo_name(ours: &str) -> String {
    if let Some((_, k)) = RENAMES.iter().find(|(o, _)| *o == ours) {
        return (*k).to_string();
    }
    ours.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// Which of `ours` the Kubo key `kubo` names, if any.
fn our_name<'a>(kubo: &str, ours: impl IntoIterator<Item = &'a String>) -> Option<&'a str> {
    ours.into_iter()
        .find(|o| kubo_name(o) == kubo)
        .map(String::as_str)
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Config(msg.into())
}

fn json_err(e: serde_json::Error) -> Error {
    bad(e.to_string())
}

/// The key of `m` that `part` names: itself, else one equal but for case (Kubo matches config
/// keys case-insensitively, so `addresses.api` finds `Addresses.API`).
fn existing_key(m: &Map<String, Value>, part: &str) -> Option<String> {
    if m.contains_key(part) {
        return Some(part.to_string());
    }
    m.keys().find(|k| k.eq_ignore_ascii_case(part)).cloned()
}

/// JSON to TOML. `null` in an object means "not set" and is dropped; TOML has no null, so one
/// in an array is refused. Integers beyond `i64` do not fit TOML either.
fn to_toml(v: &Value, path: &str) -> Result<toml::Value, Error> {
    Ok(match v {
        Value::Null => return Err(bad(format!("{path}: null is not a storable value"))),
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.is_u64(), n.as_f64()) {
            (Some(i), _, _) => toml::Value::Integer(i),
            (None, false, Some(f)) => toml::Value::Float(f),
            _ => return Err(bad(format!("{path}: {n} is too large"))),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| to_toml(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => toml::Value::Table(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| Ok((k.clone(), to_toml(v, &format!("{path}.{k}"))?)))
                .collect::<Result<_, Error>>()?,
        ),
    })
}

/// A list of strings as Kubo's `Strings` marshals it: one element as a plain string.
fn strings_to_kubo(v: Value) -> Value {
    match v {
        Value::Array(mut a) if a.len() == 1 => a.remove(0),
        other => other,
    }
}

/// Kubo's `Strings` (a string, `""` for none, or a list of strings) as a TOML list.
fn strings_from_kubo(v: &Value, path: &str) -> Result<toml::Value, Error> {
    let list = match v {
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![toml::Value::String(s.clone())],
        Value::Array(a) => a
            .iter()
            .map(|s| match s {
                Value::String(s) => Ok(toml::Value::String(s.clone())),
                _ => Err(bad(format!("{path}: expected strings"))),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(bad(format!(
                "{path}: expected a string or a list of strings"
            )))
        }
    };
    Ok(toml::Value::Array(list))
}

/// Renames the fields of each entry of a map setting (`API.Authorizations`) with `rename`.
fn rename_entries(v: Value, rename: impl Fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(name, entry)| {
                    let entry = match entry {
                        Value::Object(e) => {
                            Value::Object(e.into_iter().map(|(k, v)| (rename(&k), v)).collect())
                        }
                        other => other,
                    };
                    (name, entry)
                })
                .collect(),
        ),
        other => other,
    }
}

/// Our snake_case field names, section by section, as the config serialises.
fn our_fields() -> Result<Map<String, Value>, Error> {
    match serde_json::to_value(Config::default()).map_err(json_err)? {
        Value::Object(mut m) => {
            m.remove("extra");
            Ok(m)
        }
        _ => Err(bad("the config does not serialise as a map")),
    }
}

/// Adds what `from` has and `into` lacks, recursively; `into` wins where both have a value.
fn merge_missing(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge_missing(a, b),
            (Some(_), _) => {}
            (None, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Whether `key` is in config.toml's spelling (`datastore.verify_reads`: its first segment is
/// one of our sections as written there) rather than Kubo's (`Datastore.HashOnRead`).
pub fn ours_spelling(key: &str) -> bool {
    let first = key.split('.').next().unwrap_or_default();
    [
        "identity",
        "datastore",
        "import",
        "addresses",
        "api",
        "network",
        "ipns",
        "object_storage",
        "tiering",
        "extra",
    ]
    .contains(&first)
}

impl Config {
    /// The value at `key`, in Kubo's spelling or config.toml's, secrets left out.
    pub fn lookup(&self, key: &str) -> Result<Value, Error> {
        if ours_spelling(key) {
            let mut redacted = self.clone();
            redacted.identity.private_key.clear();
            redacted.api.authorizations.clear();
            redacted.object_storage.secret_access_key.clear();
            serde_json::to_value(redacted.get(key)?).map_err(json_err)
        } else {
            self.kubo_get(key)
        }
    }

    /// A copy with `key` (Kubo's spelling or config.toml's) set to `value`.
    pub fn with_json(&self, key: &str, value: Value) -> Result<Config, Error> {
        if ours_spelling(key) {
            self.with_value(key, to_toml(&value, key)?)
        } else {
            self.with_kubo(key, value)
        }
    }

    /// The config as Kubo clients see it: Kubo's names, with the `extra` settings merged in.
    /// `redact` leaves out the secrets (`Identity.PrivKey`, `API.Authorizations`,
    /// `ObjectStorage.SecretAccessKey`), as every
    /// answer over the API must.
    pub fn kubo_view(&self, redact: bool) -> Result<Value, Error> {
        let Value::Object(ours) = serde_json::to_value(self).map_err(json_err)? else {
            return Err(bad("the config does not serialise as a map"));
        };
        let mut out = Map::new();
        for (section, fields) in ours {
            let Value::Object(fields) = fields else {
                continue;
            };
            if section == "extra" {
                continue;
            }
            let mut sec = Map::new();
            for (field, v) in fields {
                let v = match (section.as_str(), field.as_str()) {
                    ("addresses", "api" | "gateway") => strings_to_kubo(v),
                    ("api", "allowed_origins") => continue,
                    ("api", "authorizations")
                    | ("identity", "private_key")
                    | ("object_storage", "secret_access_key")
                        if redact =>
                    {
                        continue
                    }
                    ("api", "authorizations") => rename_entries(v, kubo_name),
                    _ => v,
                };
                sec.insert(kubo_name(&field), v);
            }
            out.insert(kubo_name(&section), Value::Object(sec));
        }
        if !self.api.allowed_origins.is_empty() {
            if let Some(Value::Object(h)) = out
                .get_mut("API")
                .and_then(|a| a.as_object_mut())
                .and_then(|a| a.get_mut("HTTPHeaders"))
            {
                h.insert(ALLOW_ORIGIN.into(), self.api.allowed_origins.clone().into());
            }
        }
        let Value::Object(extra) = serde_json::to_value(&self.extra).map_err(json_err)? else {
            return Err(bad("extra is not a map"));
        };
        merge_missing(&mut out, extra);
        for (section, name) in SHOWN_DEFAULTS {
            if let Some(Value::Object(a)) = out.get_mut(*section) {
                a.entry(*name).or_insert_with(|| Value::Array(Vec::new()));
            }
        }
        Ok(Value::Object(out))
    }

    /// The value at a Kubo key (`Addresses.API`, `Fruit`) in the redacted view.
    pub fn kubo_get(&self, key: &str) -> Result<Value, Error> {
        let key = current_key(key);
        let view = self.kubo_view(true)?;
        let mut cur = &view;
        for part in key.split('.') {
            cur = match cur {
                Value::Object(m) => existing_key(m, part).and_then(|k| m.get(&k)),
                _ => None,
            }
            .ok_or_else(|| bad(format!("no config key {key:?}")))?;
        }
        Ok(cur.clone())
    }

    /// A copy with the Kubo key `key` set to `value`: onto our setting where the key names one,
    /// into `extra` otherwise; maps on the way are made as needed. Validated as a whole.
    pub fn with_kubo(&self, key: &str, value: Value) -> Result<Config, Error> {
        let key = current_key(key);
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad(format!("bad config key {key:?}")));
        }
        let (last, path) = parts.split_last().ok_or_else(|| bad("empty config key"))?;
        let mut view = self.kubo_view(false)?;
        let mut cur = &mut view;
        for part in path {
            cur = match cur {
                Value::Object(m) => {
                    let k = existing_key(m, part).unwrap_or_else(|| (*part).to_string());
                    m.entry(k).or_insert_with(|| Value::Object(Map::new()))
                }
                _ => return Err(bad(format!("cannot set {key:?}: {part} is inside a value"))),
            };
        }
        match cur {
            Value::Object(m) => {
                let k = existing_key(m, last).unwrap_or_else(|| (*last).to_string());
                m.insert(k, value);
            }
            _ => return Err(bad(format!("cannot set {key:?}: its parent is not a map"))),
        }
        Config::from_kubo(&view).map_err(|e| match e {
            Error::Config(m) => bad(format!("{key}: {m}")),
            other => other,
        })
    }

    /// A config from its Kubo form: Kubo's names mapped onto ours, everything else kept in
    /// `extra`, then validated. `null` means "not set" (the default), as in Kubo's files.
    pub fn from_kubo(view: &Value) -> Result<Config, Error> {
        let Value::Object(root) = view else {
            return Err(bad("the config must be a JSON object"));
        };
        let mut root = root.clone();
        move_keys(&mut root)?;
        let fields = our_fields()?;
        let mut ours = toml::Table::new();
        let mut extra = toml::Table::new();
        for (key, value) in root.iter().filter(|(_, v)| !v.is_null()) {
            let Some(section) = our_name(key, fields.keys()) else {
                extra.insert(key.clone(), to_toml(value, key)?);
                continue;
            };
            let Value::Object(entries) = value else {
                return Err(bad(format!("{key} must be a map")));
            };
            let known: Vec<String> = match &fields[section] {
                Value::Object(f) => f.keys().cloned().collect(),
                _ => Vec::new(),
            };
            let mut sec = toml::Table::new();
            let mut sec_extra = toml::Table::new();
            for (name, v) in entries.iter().filter(|(_, v)| !v.is_null()) {
                let path = format!("{key}.{name}");
                let Some(field) = our_name(name, &known) else {
                    if !is_shown_default(key, name, v) {
                        sec_extra.insert(name.clone(), to_toml(v, &path)?);
                    }
                    continue;
                };
                let v = match (section, field) {
                    ("addresses", _) => strings_from_kubo(v, &path)?,
                    ("api", "authorizations") => {
                        let auth_fields = ["auth_secret".to_string(), "allowed_paths".to_string()];
                        let renamed = rename_entries(v.clone(), |k| {
                            our_name(k, &auth_fields).unwrap_or(k).to_string()
                        });
                        to_toml(&renamed, &path)?
                    }
                    ("api", "http_headers") => {
                        let Value::Object(h) = v else {
                            return Err(bad(format!("{path} must be a map")));
                        };
                        let mut headers = toml::Table::new();
                        for (name, values) in h.iter().filter(|(_, v)| !v.is_null()) {
                            let list = strings_from_kubo(values, &format!("{path}.{name}"))?;
                            if name.eq_ignore_ascii_case(ALLOW_ORIGIN) {
                                sec.insert("allowed_origins".into(), list);
                            } else {
                                headers.insert(name.clone(), list);
                            }
                        }
                        toml::Value::Table(headers)
                    }
                    _ => to_toml(v, &path)?,
                };
                sec.insert(field.to_string(), v);
            }
            ours.insert(section.to_string(), toml::Value::Table(sec));
            if !sec_extra.is_empty() {
                extra.insert(key.clone(), toml::Value::Table(sec_extra));
            }
        }
        let mut config: Config = toml::Value::Table(ours)
            .try_into()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        config.extra = extra;
        config.validate()?;
        Ok(config)
    }

    /// The config a client's whole replacement `new` (Kubo form) makes of this one, as
    /// `config/replace` does. The identity cannot change: a private key in `new` is refused
    /// (Kubo's rule), and so is another peer ID; the current identity is kept. Authorizations
    /// are never shown to clients, so a replacement that has none keeps the current ones:
    /// otherwise a show-edit-replace round trip would silently open the API to everyone.
    pub fn replaced_by_kubo(&self, new: Value) -> Result<Config, Error> {
        let Value::Object(mut new) = new else {
            return Err(bad("the config must be a JSON object"));
        };
        let current = match self.kubo_view(false)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Some(id) = new.get("Identity").and_then(Value::as_object) {
            if id.get("PrivKey").is_some_and(|k| !k.is_null() && k != "") {
                return Err(bad("setting private key with API is not supported"));
            }
            if let Some(p) = id.get("PeerID").filter(|p| !p.is_null() && *p != "") {
                if p.as_str() != Some(self.identity.peer_id.as_str()) {
                    return Err(bad("the peer ID cannot be changed"));
                }
            }
        }
        if let Some(id) = current.get("Identity") {
            new.insert("Identity".into(), id.clone());
        }
        let auth = current.get("API").and_then(|a| a.get("Authorizations"));
        if let Some(auth) = auth {
            let api = new
                .entry("API")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(api) = api {
                api.entry("Authorizations").or_insert_with(|| auth.clone());
            }
        }
        Config::from_kubo(&Value::Object(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_secrets() -> Config {
        let mut c = Config::default();
        c.identity.peer_id = "12D3KooWtest".into();
        c.identity.private_key = "c2VjcmV0".into();
        c.api.authorizations.insert(
            "alice".into(),
            super::super::ApiAuthorization {
                auth_secret: "bearer:token".into(),
                allowed_paths: vec!["/api/v0".into()],
            },
        );
        c
    }

    #[test]
    fn names_map_both_ways() {
        assert_eq!(kubo_name("verify_reads"), "HashOnRead");
        assert_eq!(kubo_name("max_upload_bytes"), "MaxUploadBytes");
        assert_eq!(kubo_name("api"), "API");
        assert_eq!(kubo_name("peer_id"), "PeerID");
        let fields = ["segment_size".to_string(), "verify_reads".to_string()];
        assert_eq!(our_name("HashOnRead", &fields), Some("verify_reads"));
        assert_eq!(our_name("SegmentSize", &fields), Some("segment_size"));
        // Only the exact spelling maps; anything else is a free-form key.
        assert_eq!(our_name("segmentSize", &fields), None);
        assert_eq!(our_name("VerifyReads", &fields), None);
    }

    #[test]
    fn view_uses_kubo_names_and_redacts() {
        let mut c = with_secrets();
        c.api.allowed_origins = vec!["https://app.example".into()];
        c.api.http_headers.insert("X-Test".into(), vec!["1".into()]);
        let v = c.kubo_view(true).unwrap();
        assert_eq!(v["Identity"], json!({ "PeerID": "12D3KooWtest" }));
        assert!(v["API"].get("Authorizations").is_none());
        assert_eq!(v["Addresses"]["API"], "/ip4/127.0.0.1/tcp/5001");
        assert_eq!(
            v["Addresses"]["Swarm"],
            json!(["/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"])
        );
        assert_eq!(v["Datastore"]["HashOnRead"], true);
        assert_eq!(
            v["API"]["HTTPHeaders"],
            json!({ "X-Test": ["1"], "Access-Control-Allow-Origin": ["https://app.example"] })
        );
        let full = c.kubo_view(false).unwrap();
        assert_eq!(full["Identity"]["PrivKey"], "c2VjcmV0");
        assert_eq!(
            full["API"]["Authorizations"]["alice"]["AuthSecret"],
            "bearer:token"
        );
        // The unredacted view converts back to the same config.
        assert_eq!(Config::from_kubo(&full).unwrap(), c);
    }

    #[test]
    fn set_maps_known_keys_and_keeps_the_rest() {
        let c = Config::default();
        let c = c
            .with_kubo("Addresses.API", "/ip4/127.0.0.1/tcp/5002".into())
            .unwrap();
        assert_eq!(c.addresses.api, ["/ip4/127.0.0.1/tcp/5002"]);
        let c = c
            .with_kubo(
                "addresses.gateway",
                json!(["/ip4/127.0.0.1/tcp/1", "/unix/x"]),
            )
            .unwrap();
        assert_eq!(c.addresses.gateway.len(), 2);
        assert_eq!(
            c.kubo_get("Addresses.Gateway")
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let c = c
            .with_kubo(
                "API.HTTPHeaders.Access-Control-Allow-Origin",
                json!(["http://example.io"]),
            )
            .unwrap();
        assert_eq!(c.api.allowed_origins, ["http://example.io"]);
        assert_eq!(
            c.kubo_get("API.HTTPHeaders.Access-Control-Allow-Origin")
                .unwrap(),
            json!(["http://example.io"])
        );
        let c = c.with_kubo("API.MaxConnections", 7.into()).unwrap();
        assert_eq!(c.api.max_connections, 7);
        // Unknown keys, top-level or inside a known section, go to `extra`.
        let c = c.with_kubo("Fruit", "banana".into()).unwrap();
        let c = c.with_kubo("Discovery.MDNS.Interval", 11.into()).unwrap();
        let c = c.with_kubo("Datastore.BloomFilterSize", 0.into()).unwrap();
        assert_eq!(c.kubo_get("Discovery.MDNS.Interval").unwrap(), 11);
        assert_eq!(c.kubo_get("Datastore.BloomFilterSize").unwrap(), 0);
        assert_eq!(c.extra["Fruit"].as_str(), Some("banana"));
        // ...and round-trip through config.toml.
        let text = c.to_toml().unwrap();
        assert!(text.contains("[extra"));
        let back = Config::from_toml(&text).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.kubo_get("Fruit").unwrap(), "banana");
        // Known settings stay strict.
        assert!(c.with_kubo("Datastore.HashOnRead", "yes".into()).is_err());
        assert!(c.with_kubo("Import.Profile", "nope".into()).is_err());
        assert!(c.with_kubo("Datastore", 5.into()).is_err());
        assert!(c.with_kubo("Fruit.Kind", 1.into()).is_err());
        assert!(c.with_kubo("a..b", 1.into()).is_err());
        assert!(c.with_kubo("Fruit", json!([null])).is_err());
        assert!(c.kubo_get("Bananas").is_err());
    }

    #[test]
    fn moved_keys_reach_their_new_place() {
        let c = Config::default();
        assert_eq!(
            c.kubo_get("Import.UnixFSHAMTDirectorySizeThreshold")
                .unwrap(),
            "256KiB"
        );
        let c = c
            .with_kubo("Internal.UnixFSShardingSizeThreshold", "1B".into())
            .unwrap();
        assert_eq!(c.import.hamt_threshold, "1B");
        assert!(c.extra.is_empty());
        assert_eq!(
            c.kubo_get("internal.unixfsshardingsizethreshold").unwrap(),
            "1B"
        );
        let c = c
            .with_kubo("Import.UnixFSHAMTDirectorySizeThreshold", 1024.into())
            .unwrap();
        assert_eq!(c.import.hamt_threshold, "1024");
        assert!(c
            .with_kubo("Import.UnixFSHAMTDirectorySizeThreshold", "big".into())
            .is_err());
        // A whole config in the old spelling, as Kubo's harness writes it.
        let r = Config::default()
            .replaced_by_kubo(json!({ "Internal": { "UnixFSShardingSizeThreshold": "1B" } }))
            .unwrap();
        assert_eq!(r.import.hamt_threshold, "1B");
        assert!(r.extra.is_empty());
        let r = Config::default()
            .replaced_by_kubo(json!({
                "Internal": { "UnixFSShardingSizeThreshold": "1B", "Other": 1 },
                "Import": { "UnixFSHAMTDirectorySizeThreshold": "256KiB" }
            }))
            .unwrap();
        assert_eq!(r.import.hamt_threshold, "1B");
        assert_eq!(r.kubo_get("Internal.Other").unwrap(), 1);
        assert!(Config::default()
            .replaced_by_kubo(json!({
                "Internal": { "UnixFSShardingSizeThreshold": "1B" },
                "Import": { "UnixFSHAMTDirectorySizeThreshold": "2B" }
            }))
            .is_err());
    }

    #[test]
    fn replace_keeps_identity_and_authorizations() {
        let c = with_secrets();
        let r = c
            .replaced_by_kubo(json!({ "Addresses": { "API": "/ip4/127.0.0.1/tcp/9" }, "Fruit": 1 }))
            .unwrap();
        assert_eq!(r.identity, c.identity);
        assert_eq!(r.api.authorizations, c.api.authorizations);
        assert_eq!(r.addresses.api, ["/ip4/127.0.0.1/tcp/9"]);
        assert_eq!(r.datastore, Config::default().datastore);
        assert_eq!(r.kubo_get("Fruit").unwrap(), 1);
        // What config/show gives, sent back, changes nothing.
        let shown = c.kubo_view(true).unwrap();
        assert_eq!(c.replaced_by_kubo(shown).unwrap(), c);
        assert!(c
            .replaced_by_kubo(json!({ "Identity": { "PrivKey": "other" } }))
            .is_err());
        assert!(c
            .replaced_by_kubo(json!({ "Identity": { "PeerID": "12D3KooWother" } }))
            .is_err());
        assert!(c.replaced_by_kubo(json!([1])).is_err());
    }
}
