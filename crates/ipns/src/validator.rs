//! The DHT record validator Kubo's DHT applies to value records (`PUT_VALUE`, `GET_VALUE`):
//! only the `/ipns/` and `/pk/` namespaces, an IPNS record checked against its name (boxo's
//! `ipns.Validator`), a public key against its peer ID, and Kubo's `Select` to choose the best
//! of several valid values. No I/O: the network crate stores and moves what passes here.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use ipfs_kit_ipns::{validator, Keypair, Record, RecordOptions};
//! let key = Keypair::generate().unwrap();
//! let name = key.public().peer_id().to_name();
//! let opts = |seq| RecordOptions {
//!     sequence: seq,
//!     validity: SystemTime::now() + Duration::from_secs(3600),
//!     ttl: Duration::from_secs(60),
//!     v1_compat: false,
//! };
//! let old = Record::create(&key, b"/ipfs/bafkqaaa", &opts(1)).unwrap().encode();
//! let new = Record::create(&key, b"/ipfs/bafkqaaa", &opts(2)).unwrap().encode();
//! let k = validator::key_from_text(&format!("/ipns/{name}")).unwrap();
//! validator::validate(&k, &new, SystemTime::now()).unwrap();
//! assert_eq!(validator::select(&k, &[&old, &new]), Some(1));
//! ```

use std::cmp::Ordering;
use std::time::SystemTime;

use crate::{Name, PeerId, PublicKey, Record};

/// Largest value accepted: the IPNS record limit (a `/pk/` value, a public key, is smaller).
pub const MAX_VALUE_BYTES: usize = crate::MAX_RECORD_SIZE;
/// Longest key accepted: a namespace and a peer ID multihash (identity keys are ≤ 42 bytes).
pub const MAX_KEY_BYTES: usize = 128;

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The key is not `/ipns/<peer ID bytes>` or `/pk/<peer ID bytes>`.
    #[error("invalid record keytype")]
    BadKey,
    /// The value is over [`MAX_VALUE_BYTES`].
    #[error("record value of {0} bytes is too large")]
    TooLarge(usize),
    /// An IPNS record that does not validate for its name.
    #[error(transparent)]
    Ipns(#[from] crate::Error),
    /// A `/pk/` value that is not the key the peer ID names.
    #[error("public key does not match the peer ID")]
    KeyMismatch,
    /// The value is worse than the record already held (lower sequence or older).
    #[error("a better record for this key is already stored")]
    Outdated,
}

/// The namespace and subject of a record key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// `/ipns/<multihash>`: an IPNS record of this name.
    Ipns(Name),
    /// `/pk/<multihash>`: the public key of this peer.
    PublicKey(PeerId),
}

/// Splits a binary routing key (`/ipns/` or `/pk/` followed by multihash bytes).
pub fn parse_key(key: &[u8]) -> Result<RecordKind, RecordError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(RecordError::BadKey);
    }
    let peer = |rest: &[u8]| {
        let mh = ipfs_kit_block::Multihash::from_bytes(rest).map_err(|_| RecordError::BadKey)?;
        PeerId::from_multihash(mh).map_err(|_| RecordError::BadKey)
    };
    if let Some(rest) = key.strip_prefix(b"/ipns/") {
        Ok(RecordKind::Ipns(peer(rest)?.to_name()))
    } else if let Some(rest) = key.strip_prefix(b"/pk/") {
        Ok(RecordKind::PublicKey(peer(rest)?))
    } else {
        Err(RecordError::BadKey)
    }
}

/// The binary key a textual one names: `/ipns/<peer ID or name>` or `/pk/<peer ID>` (what
/// `routing get|put` take; Kubo's `escapeDhtKey`).
pub fn key_from_text(text: &str) -> Result<Vec<u8>, RecordError> {
    let (ns, id) = if let Some(rest) = text.strip_prefix("/ipns/") {
        ("/ipns/", rest)
    } else if let Some(rest) = text.strip_prefix("/pk/") {
        ("/pk/", rest)
    } else {
        return Err(RecordError::BadKey);
    };
    if id.is_empty() || id.contains('/') {
        return Err(RecordError::BadKey);
    }
    let peer: PeerId = id.parse().map_err(|_| RecordError::BadKey)?;
    let mut key = ns.as_bytes().to_vec();
    key.extend_from_slice(&peer.multihash().to_bytes());
    Ok(key)
}

/// Checks `value` as a record for `key` at time `now`, as Kubo's validators do: an IPNS record
/// must be signed (V2) by the name's key, agree with its V1 fields and not have expired; a
/// public key must hash to the peer ID.
pub fn validate(key: &[u8], value: &[u8], now: SystemTime) -> Result<(), RecordError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(RecordError::TooLarge(value.len()));
    }
    match parse_key(key)? {
        RecordKind::Ipns(name) => {
            Record::decode(value)?.verify(&name, now)?;
            Ok(())
        }
        RecordKind::PublicKey(peer) => {
            let pk = PublicKey::from_protobuf(value).map_err(|_| RecordError::KeyMismatch)?;
            if pk.peer_id() != peer {
                return Err(RecordError::KeyMismatch);
            }
            Ok(())
        }
    }
}

/// The index of the best of `values` for `key`, as Kubo's `Select`: for IPNS the highest
/// sequence, then the latest end of life, then the greatest bytes; for public keys the first.
/// Values that do not parse are never chosen; `None` when none parses. Validity is the
/// caller's business (only validated values should be compared).
pub fn select(key: &[u8], values: &[&[u8]]) -> Option<usize> {
    match parse_key(key).ok()? {
        RecordKind::PublicKey(_) => (!values.is_empty()).then_some(0),
        RecordKind::Ipns(_) => {
            let mut best: Option<(usize, u64, SystemTime)> = None;
            for (i, v) in values.iter().enumerate() {
                let Ok(r) = Record::decode(v) else {
                    continue;
                };
                let Ok(eol) = r.validity() else { continue };
                let better = match best {
                    None => true,
                    Some((b, seq, beol)) => match r.sequence().cmp(&seq) {
                        Ordering::Greater => true,
                        Ordering::Less => false,
                        Ordering::Equal => match eol.cmp(&beol) {
                            Ordering::Greater => true,
                            Ordering::Less => false,
                            Ordering::Equal => v.cmp(&values[b]) == Ordering::Greater,
                        },
                    },
                };
                if better {
                    best = Some((i, r.sequence(), eol));
                }
            }
            best.map(|b| b.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keypair, RecordOptions};
    use proptest::prelude::*;
    use std::time::Duration;

    fn record(key: &Keypair, seq: u64, valid_secs: u64, value: &[u8]) -> Vec<u8> {
        Record::create(
            key,
            value,
            &RecordOptions {
                sequence: seq,
                validity: SystemTime::UNIX_EPOCH + Duration::from_secs(valid_secs),
                ttl: Duration::from_secs(60),
                v1_compat: true,
            },
        )
        .unwrap()
        .encode()
    }

    const NOW: u64 = 1_700_000_000;
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
    }

    #[test]
    fn keys_parse_and_print() {
        let key = Keypair::from_seed(&[3; 32]);
        let name = key.public().peer_id().to_name();
        let bin = key_from_text(&format!("/ipns/{name}")).unwrap();
        assert_eq!(bin, name.routing_key());
        assert_eq!(parse_key(&bin).unwrap(), RecordKind::Ipns(name));
        let by_peer = key_from_text(&format!("/ipns/{}", name.peer_id())).unwrap();
        assert_eq!(by_peer, bin);
        let pk = key_from_text(&format!("/pk/{}", name.peer_id())).unwrap();
        assert_eq!(
            parse_key(&pk).unwrap(),
            RecordKind::PublicKey(*name.peer_id())
        );
        for bad in [
            "/ipfs/x",
            "/ipns/",
            "/ipns/nope",
            "/v/12D3",
            "ipns/x",
            "/ipns/a/b",
        ] {
            assert!(key_from_text(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_key(b"/other/abc"), Err(RecordError::BadKey));
        assert_eq!(parse_key(b"/ipns/\x12\x20short"), Err(RecordError::BadKey));
    }

    #[test]
    fn ipns_records_validate_against_their_name_only() {
        let key = Keypair::from_seed(&[1; 32]);
        let other = Keypair::from_seed(&[2; 32]);
        let k = key.public().peer_id().to_name().routing_key();
        let good = record(&key, 1, NOW + 3600, b"/ipfs/bafkqaaa");
        validate(&k, &good, now()).unwrap();
        // Signed by another key, expired, garbage, oversize, wrong namespace.
        let foreign = record(&other, 1, NOW + 3600, b"/ipfs/bafkqaaa");
        assert!(validate(&k, &foreign, now()).is_err());
        let expired = record(&key, 1, NOW - 1, b"/ipfs/bafkqaaa");
        assert!(matches!(
            validate(&k, &expired, now()),
            Err(RecordError::Ipns(crate::Error::Expired(_)))
        ));
        assert!(validate(&k, b"garbage", now()).is_err());
        assert!(matches!(
            validate(&k, &vec![0; MAX_VALUE_BYTES + 1], now()),
            Err(RecordError::TooLarge(_))
        ));
        let mut v = b"/v/".to_vec();
        v.extend_from_slice(&k[6..]);
        assert_eq!(validate(&v, &good, now()), Err(RecordError::BadKey));
    }

    #[test]
    fn public_keys_validate_against_their_peer_id() {
        let key = Keypair::from_seed(&[1; 32]);
        let other = Keypair::from_seed(&[2; 32]);
        let pid = key.public().peer_id();
        let k = key_from_text(&format!("/pk/{pid}")).unwrap();
        validate(&k, &key.public().to_protobuf(), now()).unwrap();
        assert_eq!(
            validate(&k, &other.public().to_protobuf(), now()),
            Err(RecordError::KeyMismatch)
        );
        assert_eq!(
            validate(&k, b"\x08\x01", now()),
            Err(RecordError::KeyMismatch)
        );
        assert_eq!(select(&k, &[b"a", b"b"]), Some(0));
        assert_eq!(select(&k, &[]), None);
    }

    #[test]
    fn selection_prefers_sequence_then_validity_then_bytes() {
        let key = Keypair::from_seed(&[1; 32]);
        let k = key.public().peer_id().to_name().routing_key();
        let s1 = record(&key, 1, NOW + 100, b"/ipfs/a");
        let s2 = record(&key, 2, NOW + 50, b"/ipfs/b");
        let s2_later = record(&key, 2, NOW + 60, b"/ipfs/c");
        assert_eq!(select(&k, &[&s1, &s2]), Some(1));
        assert_eq!(select(&k, &[&s2, &s1]), Some(0));
        assert_eq!(select(&k, &[&s2, &s2_later, &s1]), Some(1));
        assert_eq!(select(&k, &[b"junk", &s1]), Some(1));
        assert_eq!(select(&k, &[b"junk"]), None);
        // Same sequence and validity: the greater bytes win, whatever the order.
        let x = record(&key, 3, NOW + 70, b"/ipfs/x");
        let y = record(&key, 3, NOW + 70, b"/ipfs/y");
        let want = if x > y { 0 } else { 1 };
        assert_eq!(select(&k, &[&x, &y]), Some(want));
        assert_eq!(select(&k, &[&y, &x]), Some(1 - want));
    }

    #[test]
    fn records_boxo_wrote_validate_or_fail_as_their_names_say() {
        // The spec's fixtures (written by boxo, Kubo's library), checked at a time within
        // their validity: the good ones pass; a broken V2 signature or V1 value, and V1-only
        // records, are refused.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_str().unwrap().to_string();
            let stem = file.trim_end_matches(".ipns-record");
            let (name, variant) = stem.split_once('_').unwrap_or((stem, "v1-v2"));
            let bytes = std::fs::read(&path).unwrap();
            let key = key_from_text(&format!("/ipns/{name}")).unwrap();
            let at = Record::decode(&bytes)
                .ok()
                .and_then(|r| r.validity().ok())
                .map(|eol| eol - Duration::from_secs(1))
                .unwrap_or_else(now);
            let result = validate(&key, &bytes, at);
            // A broken V1 signature does not matter: only the V2 one is checked (the spec).
            let good = matches!(variant, "v1-v2" | "v2" | "v1-v2-broken-signature-v1");
            assert_eq!(result.is_ok(), good, "{file}: {result:?}");
            if good {
                assert_eq!(select(&key, &[&bytes]), Some(0));
            }
            seen += 1;
        }
        assert!(seen >= 10);
    }

    proptest! {
        #[test]
        fn validate_and_select_never_panic(key in proptest::collection::vec(any::<u8>(), 0..64),
                                           value in proptest::collection::vec(any::<u8>(), 0..600),
                                           ns in 0u8..3) {
            let mut k = match ns { 0 => b"/ipns/".to_vec(), 1 => b"/pk/".to_vec(), _ => Vec::new() };
            k.extend_from_slice(&key);
            let _ = validate(&k, &value, now());
            let _ = select(&k, &[&value, &value]);
        }

        #[test]
        fn select_picks_the_highest_sequence(seqs in proptest::collection::vec(0u64..1000, 1..6)) {
            let key = Keypair::from_seed(&[4; 32]);
            let k = key.public().peer_id().to_name().routing_key();
            let values: Vec<Vec<u8>> = seqs.iter().map(|s| record(&key, *s, NOW + 10, b"/ipfs/a")).collect();
            let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
            let i = select(&k, &refs).unwrap();
            prop_assert_eq!(seqs[i], *seqs.iter().max().unwrap());
        }
    }
}
