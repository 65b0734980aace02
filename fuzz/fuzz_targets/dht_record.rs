//! Feeds arbitrary DHT records to the validator Kubo's DHT applies to `PUT_VALUE` and
//! `GET_VALUE` (`ipfs_kit_ipns::validator`): an arbitrary key (in the `/ipns/`, `/pk/` or any
//! namespace) and one or two arbitrary values. Any input may be refused; none may panic. A
//! value that validates must be selectable, selection must name one of the values given and
//! never one that does not parse, and the textual key forms must round trip.
//!
//! Input layout: byte 0 picks the namespace, byte 1 the key length, then the key bytes, then
//! two bytes (big-endian) of the first value's length, the first value, and the second value.

#![no_main]

use std::time::{Duration, SystemTime};

use ipfs_kit_ipns::validator::{key_from_text, parse_key, select, validate, RecordKind};
use ipfs_kit_ipns::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [ns, len, rest @ ..] = data else { return };
    let len = (*len as usize).min(rest.len());
    let (key_tail, values) = rest.split_at(len);
    let mut key = match ns % 3 {
        0 => b"/ipns/".to_vec(),
        1 => b"/pk/".to_vec(),
        _ => Vec::new(),
    };
    key.extend_from_slice(key_tail);
    let (v1, v2) = match values {
        [hi, lo, rest @ ..] => {
            rest.split_at((usize::from(*hi) << 8 | usize::from(*lo)).min(rest.len()))
        }
        _ => (values, &values[..0]),
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let kind = parse_key(&key);
    if let Ok(kind) = &kind {
        // The textual form names the same binary key.
        let text = match kind {
            RecordKind::Ipns(name) => format!("/ipns/{name}"),
            RecordKind::PublicKey(peer) => format!("/pk/{peer}"),
        };
        assert_eq!(
            key_from_text(&text).ok().as_deref(),
            Some(&key[..]),
            "{text}"
        );
    }
    for v in [v1, v2] {
        if validate(&key, v, now).is_ok() {
            assert!(kind.is_ok(), "a value validated under an unparsable key");
            assert_eq!(
                select(&key, &[v]),
                Some(0),
                "a valid value is not selectable"
            );
            if let Ok(RecordKind::Ipns(_)) = kind {
                assert!(Record::decode(v).is_ok());
            }
        }
    }
    if let Some(i) = select(&key, &[v1, v2]) {
        assert!(i < 2);
        if let Ok(RecordKind::Ipns(_)) = kind {
            let chosen = if i == 0 { v1 } else { v2 };
            assert!(
                Record::decode(chosen).is_ok(),
                "selected a value that does not parse"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(values) {
        if let Ok(k) = key_from_text(text) {
            assert!(
                parse_key(&k).is_ok(),
                "key_from_text made a key parse_key refuses"
            );
        }
    }
});
