//! IPNS records (IPNS record spec, V2 with optional V1 compatibility fields).
//!
//! Wire form: protobuf `IpnsEntry { 1 value, 2 signatureV1, 3 validityType, 4 validity,
//! 5 sequence, 6 ttl, 7 pubKey, 8 signatureV2, 9 data }`. `data` is dag-cbor
//! `{Value, Validity, ValidityType, Sequence, TTL}` and `signatureV2` signs
//! `"ipns-signature:" + data`; fields 1–6 and `signatureV1` are the legacy copies Kubo still
//! writes by default (`--v1compat`). Verification follows the spec: V2 signature required, V1
//! fields (when present) must equal the signed data, the record must not be expired.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use ipfs_kit_block::codec;
use ipfs_kit_block::ipld::{self, Ipld};

use crate::keys::{Keypair, Name, PublicKey};
use crate::pb::{for_each_field, put_bytes, put_uint, Value};
use crate::time::{format_rfc3339, parse_rfc3339};
use crate::Error;

/// Records over this many bytes are refused (the spec's limit).
pub const MAX_RECORD_SIZE: usize = 10 * 1024;

/// Prefix of the bytes `signatureV2` signs.
const SIGNATURE_V2_PREFIX: &[u8] = b"ipns-signature:";
/// The only validity type: the record is valid until an end of life.
const VALIDITY_EOL: u64 = 0;

/// What a new record says.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// Sequence number; a newer record of a name has a higher one.
    pub sequence: u64,
    /// End of life.
    pub validity: SystemTime,
    /// How long resolvers may cache the record.
    pub ttl: Duration,
    /// Also write the V1 fields and signature (Kubo's default, for old resolvers).
    pub v1_compat: bool,
}

/// The signed fields (the dag-cbor `data`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Signed {
    value: Vec<u8>,
    validity: Vec<u8>,
    validity_type: u64,
    sequence: u64,
    ttl: u64,
}

/// An IPNS record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    value_v1: Option<Vec<u8>>,
    signature_v1: Option<Vec<u8>>,
    validity_type_v1: Option<u64>,
    validity_v1: Option<Vec<u8>>,
    sequence_v1: Option<u64>,
    ttl_v1: Option<u64>,
    public_key: Option<Vec<u8>>,
    signature_v2: Vec<u8>,
    data: Vec<u8>,
    signed: Signed,
}

fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

impl Signed {
    /// Canonical dag-cbor: keys ordered by length, then bytes (TTL, Value, Sequence, Validity,
    /// ValidityType). Written by hand so the bytes are fixed by this code, not a library's map order.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.value.len() + self.validity.len());
        cbor_head(&mut out, 5, 5);
        let key = |out: &mut Vec<u8>, k: &str| {
            cbor_head(out, 3, k.len() as u64);
            out.extend_from_slice(k.as_bytes());
        };
        key(&mut out, "TTL");
        cbor_head(&mut out, 0, self.ttl);
        key(&mut out, "Value");
        cbor_head(&mut out, 2, self.value.len() as u64);
        out.extend_from_slice(&self.value);
        key(&mut out, "Sequence");
        cbor_head(&mut out, 0, self.sequence);
        key(&mut out, "Validity");
        cbor_head(&mut out, 2, self.validity.len() as u64);
        out.extend_from_slice(&self.validity);
        key(&mut out, "ValidityType");
        cbor_head(&mut out, 0, self.validity_type);
        out
    }

    fn decode(data: &[u8]) -> Result<Self, Error> {
        let bad = |why: &str| Error::InvalidRecord(format!("data: {why}"));
        let node = ipld::decode(codec::DAG_CBOR, data).map_err(|e| bad(&e.to_string()))?;
        let Ipld::Map(map) = node else {
            return Err(bad("not a map"));
        };
        let bytes = |m: &BTreeMap<String, Ipld>, k: &str| match m.get(k) {
            Some(Ipld::Bytes(b)) => Ok(b.clone()),
            _ => Err(bad(&format!("{k} missing or not bytes"))),
        };
        let uint = |m: &BTreeMap<String, Ipld>, k: &str| match m.get(k) {
            Some(Ipld::Integer(i)) => {
                u64::try_from(*i).map_err(|_| bad(&format!("{k} out of range")))
            }
            _ => Err(bad(&format!("{k} missing or not an integer"))),
        };
        Ok(Signed {
            value: bytes(&map, "Value")?,
            validity: bytes(&map, "Validity")?,
            validity_type: uint(&map, "ValidityType")?,
            sequence: uint(&map, "Sequence")?,
            ttl: uint(&map, "TTL")?,
        })
    }
}

fn signature_v1_payload(value: &[u8], validity: &[u8]) -> Vec<u8> {
    // Value, validity, then the validity type's protobuf enum name, as go-ipns signed it.
    let mut msg = Vec::with_capacity(value.len() + validity.len() + 3);
    msg.extend_from_slice(value);
    msg.extend_from_slice(validity);
    msg.extend_from_slice(b"EOL");
    msg
}

impl Record {
    /// Creates and signs a record pointing at `value` (a path such as `/ipfs/CID`).
    pub fn create(key: &Keypair, value: &[u8], opts: &RecordOptions) -> Result<Self, Error> {
        let ttl = u64::try_from(opts.ttl.as_nanos())
            .map_err(|_| Error::InvalidRecord("ttl too large".into()))?;
        let signed = Signed {
            value: value.to_vec(),
            validity: format_rfc3339(opts.validity).into_bytes(),
            validity_type: VALIDITY_EOL,
            sequence: opts.sequence,
            ttl,
        };
        let data = signed.encode();
        let mut msg = SIGNATURE_V2_PREFIX.to_vec();
        msg.extend_from_slice(&data);
        let signature_v2 = key.sign(&msg)?;
        let v1 = opts.v1_compat;
        let signature_v1 = if v1 {
            Some(key.sign(&signature_v1_payload(&signed.value, &signed.validity))?)
        } else {
            None
        };
        let public = key.public();
        let record = Record {
            value_v1: v1.then(|| signed.value.clone()),
            signature_v1,
            validity_type_v1: v1.then_some(VALIDITY_EOL),
            validity_v1: v1.then(|| signed.validity.clone()),
            sequence_v1: v1.then_some(signed.sequence),
            ttl_v1: v1.then_some(signed.ttl),
            // Ed25519 keys are inlined in the name, so the record does not carry them (as
            // Kubo); an RSA name is a hash, so the record must carry the key to be verifiable.
            public_key: public
                .peer_id()
                .public_key()
                .is_none()
                .then(|| public.to_protobuf()),
            signature_v2,
            data,
            signed,
        };
        let len = record.encode().len();
        if len > MAX_RECORD_SIZE {
            return Err(Error::RecordTooLarge(len));
        }
        Ok(record)
    }

    /// The protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + 2 * self.data.len());
        if let Some(v) = &self.value_v1 {
            put_bytes(&mut out, 1, v);
        }
        if let Some(v) = &self.signature_v1 {
            put_bytes(&mut out, 2, v);
        }
        if let Some(v) = self.validity_type_v1 {
            put_uint(&mut out, 3, v);
        }
        if let Some(v) = &self.validity_v1 {
            put_bytes(&mut out, 4, v);
        }
        if let Some(v) = self.sequence_v1 {
            put_uint(&mut out, 5, v);
        }
        if let Some(v) = self.ttl_v1 {
            put_uint(&mut out, 6, v);
        }
        if let Some(v) = &self.public_key {
            put_bytes(&mut out, 7, v);
        }
        put_bytes(&mut out, 8, &self.signature_v2);
        put_bytes(&mut out, 9, &self.data);
        out
    }

    /// Parses a record. Refuses oversize input, malformed protobuf or data, and V1-only records
    /// (no `signatureV2`/`data`), which the spec no longer accepts. Does not check signatures or
    /// expiry: see [`Record::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_RECORD_SIZE {
            return Err(Error::RecordTooLarge(bytes.len()));
        }
        let mut r = Record {
            value_v1: None,
            signature_v1: None,
            validity_type_v1: None,
            validity_v1: None,
            sequence_v1: None,
            ttl_v1: None,
            public_key: None,
            signature_v2: Vec::new(),
            data: Vec::new(),
            signed: Signed {
                value: Vec::new(),
                validity: Vec::new(),
                validity_type: 0,
                sequence: 0,
                ttl: 0,
            },
        };
        let (mut sig2, mut data) = (None, None);
        for_each_field(bytes, "record", &mut |field, v| {
            match (field, v) {
                (1, Value::Bytes(b)) => r.value_v1 = Some(b.to_vec()),
                (2, Value::Bytes(b)) => r.signature_v1 = Some(b.to_vec()),
                (3, Value::Varint(n)) => r.validity_type_v1 = Some(n),
                (4, Value::Bytes(b)) => r.validity_v1 = Some(b.to_vec()),
                (5, Value::Varint(n)) => r.sequence_v1 = Some(n),
                (6, Value::Varint(n)) => r.ttl_v1 = Some(n),
                (7, Value::Bytes(b)) => r.public_key = Some(b.to_vec()),
                (8, Value::Bytes(b)) => sig2 = Some(b.to_vec()),
                (9, Value::Bytes(b)) => data = Some(b.to_vec()),
                (1..=9, _) => {
                    return Err(Error::InvalidRecord(format!(
                        "field {field} has the wrong wire type"
                    )))
                }
                _ => {}
            }
            Ok(())
        })?;
        let (Some(sig2), Some(data)) = (sig2, data) else {
            return Err(Error::InvalidRecord(
                "missing signatureV2 or data (V1-only records are not accepted)".into(),
            ));
        };
        r.signed = Signed::decode(&data)?;
        r.signature_v2 = sig2;
        r.data = data;
        Ok(r)
    }

    /// Checks the record for `name` at time `now`: the key is the name's, the V2 signature
    /// verifies, V1 fields (if any) equal the signed data, and the record has not expired.
    pub fn verify(&self, name: &Name, now: SystemTime) -> Result<(), Error> {
        let key = match &self.public_key {
            Some(pb) => {
                let key = PublicKey::from_protobuf(pb)?;
                if key.peer_id() != *name.peer_id() {
                    return Err(Error::WrongKey(name.to_string()));
                }
                key
            }
            None => name.peer_id().public_key().ok_or_else(|| {
                Error::InvalidRecord(
                    "no public key in the record and none inlined in the name".into(),
                )
            })??,
        };
        let mut msg = SIGNATURE_V2_PREFIX.to_vec();
        msg.extend_from_slice(&self.data);
        if !key.verify(&msg, &self.signature_v2) {
            return Err(Error::BadSignature);
        }
        let s = &self.signed;
        let mismatch = |f: &str| {
            Err(Error::InvalidRecord(format!(
                "V1 field {f} does not match the signed data"
            )))
        };
        if self.value_v1.as_ref().is_some_and(|v| *v != s.value) {
            return mismatch("value");
        }
        if self.validity_v1.as_ref().is_some_and(|v| *v != s.validity) {
            return mismatch("validity");
        }
        if self.validity_type_v1.is_some_and(|v| v != s.validity_type) {
            return mismatch("validityType");
        }
        if self.sequence_v1.is_some_and(|v| v != s.sequence) {
            return mismatch("sequence");
        }
        if self.ttl_v1.is_some_and(|v| v != s.ttl) {
            return mismatch("ttl");
        }
        let eol = self.validity()?;
        if now > eol {
            return Err(Error::Expired(self.validity_str().to_string()));
        }
        Ok(())
    }

    /// The value (a path), from the signed data.
    pub fn value(&self) -> &[u8] {
        &self.signed.value
    }

    /// The sequence number.
    pub fn sequence(&self) -> u64 {
        self.signed.sequence
    }

    /// The cache time to live.
    pub fn ttl(&self) -> Duration {
        Duration::from_nanos(self.signed.ttl)
    }

    /// The end of life as written in the record.
    pub fn validity_str(&self) -> &str {
        std::str::from_utf8(&self.signed.validity).unwrap_or("")
    }

    /// The end of life.
    pub fn validity(&self) -> Result<SystemTime, Error> {
        if self.signed.validity_type != VALIDITY_EOL {
            return Err(Error::InvalidRecord(format!(
                "unknown validity type {}",
                self.signed.validity_type
            )));
        }
        parse_rfc3339(self.validity_str())
    }

    /// The public key protobuf the record carries (`pubKey`), if any: present when the name
    /// does not inline the key (RSA).
    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }

    /// Whether the record carries the V1 fields.
    pub fn has_v1_fields(&self) -> bool {
        self.signature_v1.is_some()
    }

    /// The dag-cbor signed data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(seq: u64, v1: bool) -> RecordOptions {
        RecordOptions {
            sequence: seq,
            validity: SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000),
            ttl: Duration::from_secs(300),
            v1_compat: v1,
        }
    }

    #[test]
    fn rejects_tampering_wrong_key_expiry_and_size() {
        let key = Keypair::from_seed(&[1; 32]);
        let name = key.public().peer_id().to_name();
        let other = Keypair::from_seed(&[2; 32]).public().peer_id().to_name();
        let rec = Record::create(&key, b"/ipfs/bafkqaaa", &opts(3, true)).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        rec.verify(&name, now).unwrap();
        assert!(matches!(rec.verify(&other, now), Err(Error::BadSignature)));
        let late = SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_001);
        assert!(matches!(rec.verify(&name, late), Err(Error::Expired(_))));
        let mut v1_changed = rec.clone();
        v1_changed.value_v1 = Some(b"/ipfs/other".to_vec());
        let again = Record::decode(&v1_changed.encode()).unwrap();
        assert!(again.verify(&name, now).is_err());
        let mut bytes = rec.encode();
        let n = bytes.len();
        bytes[n - 3] ^= 0x01;
        assert!(Record::decode(&bytes).map_or(true, |r| r.verify(&name, now).is_err()));
        assert!(matches!(
            Record::decode(&vec![0u8; MAX_RECORD_SIZE + 1]),
            Err(Error::RecordTooLarge(_))
        ));
        assert!(matches!(
            Record::create(&key, &vec![b'a'; MAX_RECORD_SIZE], &opts(0, false)),
            Err(Error::RecordTooLarge(_))
        ));
        // A record embedding someone else's key is refused before any signature check.
        let mut foreign = rec.clone();
        foreign.public_key = Some(Keypair::from_seed(&[2; 32]).public().to_protobuf());
        assert!(matches!(
            foreign.verify(&name, now),
            Err(Error::WrongKey(_))
        ));
    }

    #[test]
    fn rsa_records_carry_their_key() {
        let key = crate::keys::tests::test_rsa_key();
        let name = key.public().peer_id().to_name();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for v1 in [true, false] {
            let rec = Record::create(&key, b"/ipfs/bafkqaaa", &opts(7, v1)).unwrap();
            assert_eq!(rec.public_key, Some(key.public().to_protobuf()));
            let parsed = Record::decode(&rec.encode()).unwrap();
            assert_eq!(parsed, rec);
            parsed.verify(&name, now).unwrap();
            assert!(parsed.encode().len() < MAX_RECORD_SIZE);
        }
        let rec = Record::create(&key, b"/ipfs/bafkqaaa", &opts(7, true)).unwrap();
        // Without its key the record cannot be checked against a hashed name.
        let mut keyless = rec.clone();
        keyless.public_key = None;
        assert!(matches!(
            keyless.verify(&name, now),
            Err(Error::InvalidRecord(_))
        ));
        // Another key (even one that signed the same data) does not hash to the name.
        let other = Keypair::from_seed(&[5; 32]);
        let mut swapped = Record::create(&other, b"/ipfs/bafkqaaa", &opts(7, true)).unwrap();
        swapped.public_key = Some(other.public().to_protobuf());
        assert!(matches!(
            swapped.verify(&name, now),
            Err(Error::WrongKey(_))
        ));
        // The right key with another key's signature fails the signature check.
        let mut resigned = rec.clone();
        resigned.signature_v2 = swapped.signature_v2.clone();
        assert!(matches!(
            resigned.verify(&name, now),
            Err(Error::BadSignature)
        ));
        // An Ed25519 record embeds no key.
        let ed = Record::create(&other, b"/ipfs/bafkqaaa", &opts(1, false)).unwrap();
        assert_eq!(ed.public_key, None);
    }

    #[test]
    fn data_encoding_matches_boxo() {
        let bytes = include_bytes!(
            "../tests/fixtures/k51qzi5uqu5dgh7y9l90nqs6tvnzcm9erbt8fhzg3fu79p5qt9zb2izvfu51ki.ipns-record"
        );
        let rec = Record::decode(bytes).unwrap();
        assert_eq!(rec.signed.encode(), rec.data);
    }

    proptest! {
        #[test]
        fn round_trip(seed in any::<[u8; 32]>(), value in proptest::collection::vec(any::<u8>(), 0..200),
                      seq in any::<u64>(), ttl in 0u64..1_000_000_000_000, v1 in any::<bool>()) {
            let key = Keypair::from_seed(&seed);
            let name = key.public().peer_id().to_name();
            let o = RecordOptions { ttl: Duration::from_nanos(ttl), ..opts(seq, v1) };
            let rec = Record::create(&key, &value, &o).unwrap();
            let parsed = Record::decode(&rec.encode()).unwrap();
            prop_assert_eq!(&parsed, &rec);
            prop_assert_eq!(parsed.value(), &value[..]);
            prop_assert_eq!(parsed.sequence(), seq);
            prop_assert_eq!(parsed.ttl(), Duration::from_nanos(ttl));
            prop_assert_eq!(parsed.has_v1_fields(), v1);
            parsed.verify(&name, SystemTime::UNIX_EPOCH).unwrap();
            // The hand-written dag-cbor is what the generic decoder reads back.
            prop_assert_eq!(Signed::decode(parsed.data()).unwrap(), rec.signed.clone());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(r) = Record::decode(&bytes) {
                let name = Keypair::from_seed(&[0; 32]).public().peer_id().to_name();
                let _ = r.verify(&name, SystemTime::UNIX_EPOCH);
            }
        }
    }
}
