//! Keys, peer IDs and IPNS names, in libp2p's encodings (libp2p `peer-ids` spec):
//! `PublicKey`/`PrivateKey` protobufs `{1: KeyType, 2: Data}`, the peer ID as the multihash of
//! the public key protobuf (identity when it is at most 42 bytes, as Ed25519 keys are, otherwise
//! sha2-256), and the IPNS name as a CIDv1 with codec libp2p-key in base36.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use ipfs_kit_block::{Cid, HashAlg, Multihash, IDENTITY};

use crate::pb::{for_each_field, put_bytes, put_uint, Value};
use crate::Error;

/// libp2p's `KeyType` number for Ed25519.
pub const KEY_TYPE_ED25519: u64 = 1;
/// Multicodec of a CID naming a libp2p public key (IPNS names).
pub const LIBP2P_KEY: u64 = 0x72;
/// A public key protobuf up to this size is inlined in the peer ID (identity multihash).
const MAX_INLINE_KEY: usize = 42;

/// PKCS#8 v1 DER prefix of an Ed25519 private key (RFC 8410): the seed follows.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// PKCS#8 v2 (OneAsymmetricKey with the public key) prefix, as OpenSSL 3 may write it.
const PKCS8_V2_PREFIX: [u8; 16] = [
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Reads a libp2p key protobuf into (type, data).
fn decode_key_pb(bytes: &[u8]) -> Result<(u64, Vec<u8>), Error> {
    let (mut kind, mut data) = (None, None);
    for_each_field(bytes, "key", &mut |field, v| {
        match (field, v) {
            (1, Value::Varint(t)) => kind = Some(t),
            (2, Value::Bytes(b)) => data = Some(b.to_vec()),
            _ => {}
        }
        Ok(())
    })
    .map_err(|e| Error::InvalidKey(e.to_string()))?;
    match (kind, data) {
        (Some(k), Some(d)) => Ok((k, d)),
        _ => Err(Error::InvalidKey(
            "key protobuf lacks its type or data".into(),
        )),
    }
}

fn encode_key_pb(kind: u64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 4);
    put_uint(&mut out, 1, kind);
    put_bytes(&mut out, 2, data);
    out
}

/// An Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The libp2p `PublicKey` protobuf.
    pub fn to_protobuf(&self) -> Vec<u8> {
        encode_key_pb(KEY_TYPE_ED25519, self.0.as_bytes())
    }

    /// Reads a libp2p `PublicKey` protobuf (Ed25519 only).
    pub fn from_protobuf(bytes: &[u8]) -> Result<Self, Error> {
        let (kind, data) = decode_key_pb(bytes)?;
        if kind != KEY_TYPE_ED25519 {
            return Err(Error::UnsupportedKeyType(kind));
        }
        let raw: [u8; 32] = data.as_slice().try_into().map_err(|_| {
            Error::InvalidKey(format!("ed25519 public key of {} bytes", data.len()))
        })?;
        VerifyingKey::from_bytes(&raw)
            .map(PublicKey)
            .map_err(|e| Error::InvalidKey(e.to_string()))
    }

    /// The raw 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The peer ID of this key.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key_protobuf(&self.to_protobuf())
    }

    /// Checks an Ed25519 signature over `msg`.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(msg, &sig).is_ok()
    }
}

/// An Ed25519 key pair.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "Keypair({})", self.public().peer_id())
    }
}

impl Keypair {
    /// A new key from the OS random source.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The key of a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Keypair(SigningKey::from_bytes(seed))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.0.sign(msg).to_bytes().to_vec()
    }

    /// The libp2p `PrivateKey` protobuf: type Ed25519, data = seed followed by the public key
    /// (go-libp2p's 64-byte form, which Kubo's keystore files and `key export` hold).
    pub fn to_protobuf(&self) -> Vec<u8> {
        encode_key_pb(KEY_TYPE_ED25519, &self.0.to_keypair_bytes())
    }

    /// Reads a libp2p `PrivateKey` protobuf. Accepts go-libp2p's 64-byte form and its legacy
    /// 96-byte form (public key repeated); the public half must match the seed.
    pub fn from_protobuf(bytes: &[u8]) -> Result<Self, Error> {
        let (kind, data) = decode_key_pb(bytes)?;
        if kind != KEY_TYPE_ED25519 {
            return Err(Error::UnsupportedKeyType(kind));
        }
        if data.len() != 64 && data.len() != 96 {
            return Err(Error::InvalidKey(format!(
                "ed25519 private key of {} bytes",
                data.len()
            )));
        }
        let seed: [u8; 32] = data[..32]
            .try_into()
            .map_err(|_| Error::InvalidKey("short seed".into()))?;
        let key = Self::from_seed(&seed);
        if key.public().to_bytes()[..] != data[32..64] {
            return Err(Error::InvalidKey(
                "public half does not match the private key".into(),
            ));
        }
        Ok(key)
    }

    /// The key as an unencrypted PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> String {
        let mut der = PKCS8_V1_PREFIX.to_vec();
        der.extend_from_slice(self.0.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
    }

    /// Reads an unencrypted PKCS#8 PEM document holding an Ed25519 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|r| r.strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or_else(|| Error::InvalidKey("not a PKCS#8 PEM private key".into()))?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| Error::InvalidKey(format!("PEM body: {e}")))?;
        let seed = if der.len() == 48 && der[..16] == PKCS8_V1_PREFIX {
            &der[16..]
        } else if der.len() >= 48 && der[..16] == PKCS8_V2_PREFIX {
            &der[16..48]
        } else {
            return Err(Error::InvalidKey(
                "only ed25519 PKCS#8 keys are supported".into(),
            ));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| Error::InvalidKey("short seed".into()))?;
        Ok(Self::from_seed(&seed))
    }
}

/// A libp2p peer ID: the multihash of a public key protobuf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(Multihash<64>);

impl PeerId {
    /// The peer ID of a public key protobuf (any key type).
    pub fn from_public_key_protobuf(proto: &[u8]) -> Self {
        let mh = if proto.len() <= MAX_INLINE_KEY {
            Multihash::wrap(IDENTITY, proto).unwrap_or_default()
        } else {
            HashAlg::Sha2_256.digest(proto)
        };
        PeerId(mh)
    }

    /// A peer ID from its multihash (identity or sha2-256, as libp2p allows).
    pub fn from_multihash(mh: Multihash<64>) -> Result<Self, Error> {
        match mh.code() {
            IDENTITY if mh.size() as usize <= MAX_INLINE_KEY => Ok(PeerId(mh)),
            ipfs_kit_block::SHA2_256 if mh.size() == 32 => Ok(PeerId(mh)),
            code => Err(Error::InvalidKey(format!(
                "multihash 0x{code:x} of {} bytes is not a peer ID",
                mh.size()
            ))),
        }
    }

    /// The multihash.
    pub fn multihash(&self) -> &Multihash<64> {
        &self.0
    }

    /// The public key, when the peer ID inlines it (Ed25519) and it is one ipfs-kit can use.
    pub fn public_key(&self) -> Option<Result<PublicKey, Error>> {
        (self.0.code() == IDENTITY).then(|| PublicKey::from_protobuf(self.0.digest()))
    }

    /// The IPNS name of this peer.
    pub fn to_name(self) -> Name {
        Name(self)
    }

    /// The CIDv1 (codec libp2p-key) naming this peer.
    pub fn to_cid(&self) -> Cid {
        Cid::new_v1(LIBP2P_KEY, self.0)
    }
}

/// Base58btc, as `ipfs id` prints it (`12D3KooW...`).
impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&multibase::Base::Base58Btc.encode(self.0.to_bytes()))
    }
}

impl FromStr for PeerId {
    type Err = Error;

    /// Accepts a base58 multihash (`12D3KooW...`, `Qm...`) or a CID with codec libp2p-key in any
    /// multibase (`k51...`, `bafz...`), optionally after `/ipns/` or `/p2p/`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::InvalidName(s.to_string(), why.to_string());
        let t = s.trim();
        let t = t
            .strip_prefix("/ipns/")
            .or_else(|| t.strip_prefix("/p2p/"))
            .unwrap_or(t);
        let t = t.split('/').next().unwrap_or_default();
        if t.starts_with("1") || t.starts_with("Qm") {
            let bytes = multibase::Base::Base58Btc
                .decode(t)
                .map_err(|e| bad(&e.to_string()))?;
            let mh = Multihash::from_bytes(&bytes).map_err(|e| bad(&e.to_string()))?;
            return PeerId::from_multihash(mh).map_err(|e| bad(&e.to_string()));
        }
        let cid = Cid::try_from(t).map_err(|e| bad(&e.to_string()))?;
        if cid.codec() != LIBP2P_KEY {
            return Err(bad(&format!(
                "can't convert a CID of codec 0x{:x} to a peer ID",
                cid.codec()
            )));
        }
        PeerId::from_multihash(*cid.hash()).map_err(|e| bad(&e.to_string()))
    }
}

/// An IPNS name: a peer ID printed as a base36 CIDv1 with codec libp2p-key (`k51...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(PeerId);

impl Name {
    /// The peer ID behind the name.
    pub fn peer_id(&self) -> &PeerId {
        &self.0
    }

    /// The routing key records are stored under: `/ipns/` + the multihash bytes.
    pub fn routing_key(&self) -> Vec<u8> {
        let mut k = b"/ipns/".to_vec();
        k.extend_from_slice(&self.0 .0.to_bytes());
        k
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self
            .0
            .to_cid()
            .to_string_of_base(multibase::Base::Base36Lower)
            .map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl FromStr for Name {
    type Err = Error;

    /// Any form [`PeerId`] parses.
    fn from_str(s: &str) -> Result<Self, Error> {
        s.parse().map(Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_name_forms_agree() {
        // From the gateway-conformance fixtures: one Ed25519 key in three spellings.
        let b58 = "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d";
        let k51 = "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam";
        let a: Name = b58.parse().unwrap();
        let b: Name = k51.parse().unwrap();
        let c: Name = format!("/ipns/{k51}").parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.to_string(), k51);
        assert_eq!(a.peer_id().to_string(), b58);
        assert!(a.peer_id().public_key().unwrap().is_ok());
        // A dag-pb CID is not a name.
        assert!(
            "bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui"
                .parse::<Name>()
                .is_err()
        );
        assert!("QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3"
            .parse::<Name>()
            .unwrap()
            .peer_id()
            .public_key()
            .is_none());
        for bad in ["", "k51", "12D3", "hello", "/ipns/"] {
            assert!(bad.parse::<Name>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_mismatched_private_key() {
        let k = Keypair::from_seed(&[7; 32]);
        let mut pb = k.to_protobuf();
        let last = pb.len() - 1;
        pb[last] ^= 1;
        assert!(Keypair::from_protobuf(&pb).is_err());
        assert!(Keypair::from_protobuf(&[0x08, 0x00, 0x12, 0x01, 0x00]).is_err());
        assert!(Keypair::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn key_encodings_round_trip(seed in any::<[u8; 32]>()) {
            let k = Keypair::from_seed(&seed);
            let again = Keypair::from_protobuf(&k.to_protobuf()).unwrap();
            prop_assert_eq!(again.public(), k.public());
            let pem = Keypair::from_pkcs8_pem(&k.to_pkcs8_pem()).unwrap();
            prop_assert_eq!(pem.public(), k.public());
            let public = PublicKey::from_protobuf(&k.public().to_protobuf()).unwrap();
            prop_assert_eq!(public, k.public());
            let id = k.public().peer_id();
            prop_assert!(id.to_string().starts_with("12D3KooW"));
            let name = id.to_name();
            prop_assert!(name.to_string().starts_with("k51qzi5uqu5"));
            prop_assert_eq!(name.to_string().parse::<Name>().unwrap(), name);
            prop_assert_eq!(id.to_string().parse::<PeerId>().unwrap(), id);
            prop_assert_eq!(id.public_key().unwrap().unwrap(), k.public());
            let sig = k.sign(b"msg");
            prop_assert!(k.public().verify(b"msg", &sig));
            prop_assert!(!k.public().verify(b"msh", &sig));
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128), s in ".{0,80}") {
            let _ = Keypair::from_protobuf(&bytes);
            let _ = PublicKey::from_protobuf(&bytes);
            let _ = s.parse::<Name>();
            let _ = Keypair::from_pkcs8_pem(&s);
        }
    }
}
