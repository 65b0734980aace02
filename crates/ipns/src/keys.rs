//! Keys, peer IDs and IPNS names, in libp2p's encodings (libp2p `peer-ids` spec):
//! `PublicKey`/`PrivateKey` protobufs `{1: KeyType, 2: Data}`, the peer ID as the multihash of
//! the public key protobuf (identity when it is at most 42 bytes, as Ed25519 keys are, otherwise
//! sha2-256, as RSA keys are), and the IPNS name as a CIDv1 with codec libp2p-key in base36.
//!
//! Two key types: Ed25519 (data: the 32-byte public key; private: seed ‖ public key) and RSA
//! (public data: DER SubjectPublicKeyInfo; private data: DER PKCS#1 `RSAPrivateKey`; signatures:
//! RSASSA-PKCS1-v1_5 over SHA-256), with go-libp2p's size bounds of 2048 to 8192 bits.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use ipfs_kit_block::{Cid, HashAlg, Multihash, IDENTITY};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::sha2::Sha256;
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use crate::pb::{for_each_field, put_bytes, put_uint, Value};
use crate::Error;

/// libp2p's `KeyType` number for RSA.
pub const KEY_TYPE_RSA: u64 = 0;
/// libp2p's `KeyType` number for Ed25519.
pub const KEY_TYPE_ED25519: u64 = 1;
/// Multicodec of a CID naming a libp2p public key (IPNS names).
pub const LIBP2P_KEY: u64 = 0x72;
/// A public key protobuf up to this size is inlined in the peer ID (identity multihash).
const MAX_INLINE_KEY: usize = 42;
/// Size of a new RSA key when none is asked for (Kubo's `DefaultRSALen`).
pub const RSA_DEFAULT_BITS: usize = 2048;
/// Smallest RSA modulus accepted, generated or read (go-libp2p's `MinRsaKeyBits`).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, generated or read (go-libp2p's limit).
pub const RSA_MAX_BITS: usize = 8192;

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
    let mut out = Vec::with_capacity(data.len() + 8);
    put_uint(&mut out, 1, kind);
    put_bytes(&mut out, 2, data);
    out
}

/// A key algorithm ipfs-kit can generate, store and sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Ed25519 (Kubo's default).
    Ed25519,
    /// RSA, PKCS#1 v1.5 signatures over SHA-256 (legacy `Qm…` identities).
    Rsa,
}

impl KeyType {
    /// libp2p's `KeyType` number.
    pub fn code(self) -> u64 {
        match self {
            KeyType::Ed25519 => KEY_TYPE_ED25519,
            KeyType::Rsa => KEY_TYPE_RSA,
        }
    }

    /// Kubo's name for it (`key gen --type`).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa => "rsa",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = Error;

    /// Kubo's `--type` names, `rsa` and `ed25519`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "ed25519" => Ok(KeyType::Ed25519),
            "rsa" => Ok(KeyType::Rsa),
            other => Err(Error::UnrecognizedKeyType(other.to_string())),
        }
    }
}

/// go-libp2p's bounds on an RSA modulus.
fn check_rsa_bits(bits: usize) -> Result<(), Error> {
    if bits < RSA_MIN_BITS {
        return Err(Error::RsaKeyTooSmall);
    }
    if bits > RSA_MAX_BITS {
        return Err(Error::RsaKeyTooBig);
    }
    Ok(())
}

fn rsa_bits(key: &impl PublicKeyParts) -> usize {
    key.n().bit_width_vartime() as usize
}

/// The OS random source, as the `rsa` crate's generator and signer take it.
struct OsRng;

/// The OS random source failed.
#[derive(Debug)]
struct RngFailed;

impl fmt::Display for RngFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the OS random source failed")
    }
}

impl std::error::Error for RngFailed {}

impl rsa::rand_core::TryRng for OsRng {
    type Error = RngFailed;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst).map_err(|_| RngFailed)
    }
}

impl rsa::rand_core::TryCryptoRng for OsRng {}

/// An RSA public key with its DER SubjectPublicKeyInfo, as it goes into the key protobuf.
#[derive(Clone)]
struct RsaPublic {
    key: rsa::PublicKey,
    /// The key re-encoded (as go-libp2p re-marshals it): the peer ID hashes these bytes.
    spki: Vec<u8>,
}

impl RsaPublic {
    fn new(key: rsa::PublicKey) -> Result<Self, Error> {
        check_rsa_bits(rsa_bits(&key))?;
        let spki = key
            .to_public_key_der()
            .map_err(|e| Error::InvalidKey(format!("rsa public key: {e}")))?
            .into_vec();
        Ok(RsaPublic { key, spki })
    }
}

#[derive(Clone)]
enum PublicInner {
    Ed25519(VerifyingKey),
    Rsa(Box<RsaPublic>),
}

/// A public key: Ed25519 or RSA.
#[derive(Clone)]
pub struct PublicKey(PublicInner);

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (PublicInner::Ed25519(a), PublicInner::Ed25519(b)) => a == b,
            (PublicInner::Rsa(a), PublicInner::Rsa(b)) => a.spki == b.spki,
            _ => false,
        }
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.key_type(), self.peer_id())
    }
}

impl PublicKey {
    /// Its algorithm.
    pub fn key_type(&self) -> KeyType {
        match self.0 {
            PublicInner::Ed25519(_) => KeyType::Ed25519,
            PublicInner::Rsa(_) => KeyType::Rsa,
        }
    }

    /// The libp2p `PublicKey` protobuf.
    pub fn to_protobuf(&self) -> Vec<u8> {
        match &self.0 {
            PublicInner::Ed25519(k) => encode_key_pb(KEY_TYPE_ED25519, k.as_bytes()),
            PublicInner::Rsa(k) => encode_key_pb(KEY_TYPE_RSA, &k.spki),
        }
    }

    /// Reads a libp2p `PublicKey` protobuf (Ed25519 or RSA of 2048 to 8192 bits).
    pub fn from_protobuf(bytes: &[u8]) -> Result<Self, Error> {
        let (kind, data) = decode_key_pb(bytes)?;
        match kind {
            KEY_TYPE_ED25519 => {
                let raw: [u8; 32] = data.as_slice().try_into().map_err(|_| {
                    Error::InvalidKey(format!("ed25519 public key of {} bytes", data.len()))
                })?;
                VerifyingKey::from_bytes(&raw)
                    .map(|k| PublicKey(PublicInner::Ed25519(k)))
                    .map_err(|e| Error::InvalidKey(e.to_string()))
            }
            KEY_TYPE_RSA => {
                let key = rsa::PublicKey::from_public_key_der(&data)
                    .map_err(|e| Error::InvalidKey(format!("rsa public key: {e}")))?;
                Ok(PublicKey(PublicInner::Rsa(Box::new(RsaPublic::new(key)?))))
            }
            other => Err(Error::UnsupportedKeyType(other)),
        }
    }

    /// The peer ID of this key.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key_protobuf(&self.to_protobuf())
    }

    /// Checks a signature over `msg`: Ed25519 (strict), or RSASSA-PKCS1-v1_5 with SHA-256.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> bool {
        match &self.0 {
            PublicInner::Ed25519(k) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                k.verify_strict(msg, &sig).is_ok()
            }
            PublicInner::Rsa(k) => k.key.pkcs1v15_verify::<Sha256>(msg, signature).is_ok(),
        }
    }
}

/// An RSA private key with its public half and its PKCS#1 DER encoding.
#[derive(Clone)]
struct RsaKeypair {
    key: rsa::PrivateKey,
    public: PublicKey,
    /// PKCS#1 `RSAPrivateKey` DER: the `Data` of the private key protobuf.
    pkcs1: Zeroizing<Vec<u8>>,
}

impl RsaKeypair {
    fn new(key: rsa::PrivateKey) -> Result<Self, Error> {
        let public = RsaPublic::new(key.to_public_key())?;
        let pkcs1 = key
            .to_pkcs1_der()
            .map_err(|e| Error::InvalidKey(format!("rsa private key: {e}")))?;
        Ok(RsaKeypair {
            key,
            public: PublicKey(PublicInner::Rsa(Box::new(public))),
            pkcs1: Zeroizing::new(pkcs1.as_bytes().to_vec()),
        })
    }
}

#[derive(Clone)]
enum KeypairInner {
    Ed25519(Box<SigningKey>),
    Rsa(Box<RsaKeypair>),
}

/// A key pair: Ed25519 or RSA.
#[derive(Clone)]
pub struct Keypair(KeypairInner);

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(
            f,
            "Keypair({}, {})",
            self.key_type(),
            self.public().peer_id()
        )
    }
}

impl Keypair {
    /// A new Ed25519 key from the OS random source.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// A new RSA key of `bits` bits (2048 to 8192; Kubo's errors outside) from the OS random
    /// source. Takes a noticeable time (tens of milliseconds to seconds): call it off any
    /// async executor.
    pub fn generate_rsa(bits: usize) -> Result<Self, Error> {
        check_rsa_bits(bits)?;
        let key = rsa::PrivateKey::new(&mut OsRng, bits).map_err(|e| match e {
            rsa::Error::Rng => Error::Random("rsa key generation".into()),
            other => Error::InvalidKey(format!("rsa key generation: {other}")),
        })?;
        Ok(Keypair(KeypairInner::Rsa(Box::new(RsaKeypair::new(key)?))))
    }

    /// A new key of `kind`; `rsa_bits` is the RSA size ([`RSA_DEFAULT_BITS`] when `None`) and
    /// is ignored for Ed25519, as in Kubo.
    pub fn generate_of(kind: KeyType, rsa_bits: Option<usize>) -> Result<Self, Error> {
        match kind {
            KeyType::Ed25519 => Self::generate(),
            KeyType::Rsa => Self::generate_rsa(rsa_bits.unwrap_or(RSA_DEFAULT_BITS)),
        }
    }

    /// The Ed25519 key of a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Keypair(KeypairInner::Ed25519(Box::new(SigningKey::from_bytes(
            seed,
        ))))
    }

    /// Its algorithm.
    pub fn key_type(&self) -> KeyType {
        match self.0 {
            KeypairInner::Ed25519(_) => KeyType::Ed25519,
            KeypairInner::Rsa(_) => KeyType::Rsa,
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        match &self.0 {
            KeypairInner::Ed25519(k) => PublicKey(PublicInner::Ed25519(k.verifying_key())),
            KeypairInner::Rsa(k) => k.public.clone(),
        }
    }

    /// Signs `msg` (Ed25519, or RSASSA-PKCS1-v1_5 over SHA-256 with blinding from the OS
    /// random source; the signature itself is deterministic either way).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.0 {
            KeypairInner::Ed25519(k) => Ok(k.sign(msg).to_bytes().to_vec()),
            KeypairInner::Rsa(k) => k
                .key
                .pkcs1v15_sign_with_rng::<Sha256, _>(&mut OsRng, msg)
                .map_err(|e| match e {
                    rsa::Error::Rng => Error::Random("rsa signature blinding".into()),
                    other => Error::InvalidKey(format!("rsa signature: {other}")),
                }),
        }
    }

    /// The libp2p `PrivateKey` protobuf: for Ed25519, data = seed followed by the public key
    /// (go-libp2p's 64-byte form); for RSA, data = the PKCS#1 DER private key. This is what
    /// Kubo's keystore files and `key export` hold.
    pub fn to_protobuf(&self) -> Vec<u8> {
        match &self.0 {
            KeypairInner::Ed25519(k) => encode_key_pb(KEY_TYPE_ED25519, &k.to_keypair_bytes()),
            KeypairInner::Rsa(k) => encode_key_pb(KEY_TYPE_RSA, &k.pkcs1),
        }
    }

    /// Reads a libp2p `PrivateKey` protobuf. Ed25519: go-libp2p's 64-byte form or its legacy
    /// 96-byte form (public key repeated), whose public half must match the seed. RSA: a
    /// two-prime PKCS#1 DER key of 2048 to 8192 bits whose components are consistent.
    pub fn from_protobuf(bytes: &[u8]) -> Result<Self, Error> {
        let (kind, data) = decode_key_pb(bytes)?;
        let data = Zeroizing::new(data);
        match kind {
            KEY_TYPE_ED25519 => Self::ed25519_from_keypair_bytes(&data),
            KEY_TYPE_RSA => {
                let key = rsa::PrivateKey::from_pkcs1_der(&data)
                    .map_err(|e| Error::InvalidKey(format!("rsa private key: {e}")))?;
                Self::from_rsa(key)
            }
            other => Err(Error::UnsupportedKeyType(other)),
        }
    }

    fn from_rsa(key: rsa::PrivateKey) -> Result<Self, Error> {
        check_rsa_bits(rsa_bits(&key))?;
        Ok(Keypair(KeypairInner::Rsa(Box::new(RsaKeypair::new(key)?))))
    }

    fn ed25519_from_keypair_bytes(data: &[u8]) -> Result<Self, Error> {
        if data.len() != 64 && data.len() != 96 {
            return Err(Error::InvalidKey(format!(
                "ed25519 private key of {} bytes",
                data.len()
            )));
        }
        let seed: [u8; 32] = data[..32]
            .try_into()
            .map_err(|_| Error::InvalidKey("short seed".into()))?;
        let key = SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes();
        if public[..] != data[32..64] || (data.len() == 96 && public[..] != data[64..]) {
            return Err(Error::InvalidKey(
                "public half does not match the private key".into(),
            ));
        }
        Ok(Keypair(KeypairInner::Ed25519(Box::new(key))))
    }

    /// The key as an unencrypted PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`), as
    /// Kubo's `key export --format=pem-pkcs8-cleartext` writes it.
    pub fn to_pkcs8_pem(&self) -> Result<String, Error> {
        match &self.0 {
            KeypairInner::Ed25519(k) => {
                let mut der = Zeroizing::new(PKCS8_V1_PREFIX.to_vec());
                der.extend_from_slice(k.as_bytes());
                let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_slice());
                Ok(format!(
                    "-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"
                ))
            }
            KeypairInner::Rsa(k) => k
                .key
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .map(|pem| pem.to_string())
                .map_err(|e| Error::InvalidKey(format!("rsa private key: {e}"))),
        }
    }

    /// Reads an unencrypted PKCS#8 PEM document holding an Ed25519 or RSA key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|r| r.strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or_else(|| Error::InvalidKey("not a PKCS#8 PEM private key".into()))?;
        let b64: Zeroizing<String> =
            Zeroizing::new(body.chars().filter(|c| !c.is_whitespace()).collect());
        let der = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| Error::InvalidKey(format!("PEM body: {e}")))?,
        );
        let seed = if der.len() == 48 && der[..16] == PKCS8_V1_PREFIX {
            &der[16..]
        } else if der.len() >= 48 && der[..16] == PKCS8_V2_PREFIX {
            &der[16..48]
        } else {
            let key = rsa::PrivateKey::from_pkcs8_der(&der).map_err(|e| {
                Error::InvalidKey(format!("not an ed25519 or rsa PKCS#8 private key ({e})"))
            })?;
            return Self::from_rsa(key);
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

    /// The public key, when the peer ID inlines it (Ed25519) and it is one ipfs-kit can use;
    /// `None` for a hashed key (RSA), which a record must then carry.
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
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One RSA key for this crate's tests, generated once per test process.
    pub(crate) fn test_rsa_key() -> Keypair {
        static KEY: std::sync::OnceLock<Keypair> = std::sync::OnceLock::new();
        KEY.get_or_init(|| Keypair::generate_rsa(RSA_DEFAULT_BITS).unwrap())
            .clone()
    }

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

    #[test]
    fn rsa_keys_encode_sign_and_name() {
        let key = test_rsa_key();
        assert_eq!(key.key_type(), KeyType::Rsa);
        // Reading and re-encoding gives back the same bytes, private and public.
        let private = key.to_protobuf();
        assert_eq!(
            Keypair::from_protobuf(&private).unwrap().to_protobuf(),
            private
        );
        let public = PublicKey::from_protobuf(&key.public().to_protobuf()).unwrap();
        assert_eq!(public, key.public());
        assert_eq!(public.to_protobuf(), key.public().to_protobuf());
        let id = public.peer_id();
        assert_eq!(id.multihash().code(), ipfs_kit_block::SHA2_256);
        assert!(id.public_key().is_none());
        assert!(id.to_string().starts_with("Qm"), "{id}");
        let name = id.to_name().to_string();
        assert!(name.starts_with("k2k4r8"), "{name}");
        assert_eq!(name.parse::<Name>().unwrap().peer_id(), &id);
        assert_eq!(id.to_string().parse::<PeerId>().unwrap(), id);
        let sig = key.sign(b"msg").unwrap();
        assert_eq!(sig.len(), 256);
        assert!(public.verify(b"msg", &sig));
        assert!(!public.verify(b"msh", &sig));
        assert!(!public.verify(b"msg", &sig[1..]));
        // PKCS#1 v1.5 signatures are deterministic.
        assert_eq!(key.sign(b"msg").unwrap(), sig);
        // An RSA signature is no Ed25519 signature and the other way round.
        let ed = Keypair::from_seed(&[3; 32]);
        assert!(!ed.public().verify(b"msg", &sig));
        assert!(!public.verify(b"msg", &ed.sign(b"msg").unwrap()));
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        assert!(pem.lines().all(|l| l.len() <= 64));
        let again = Keypair::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(again.to_protobuf(), private);
        assert!(format!("{key:?}").contains(&id.to_string()));
    }

    #[test]
    fn rsa_generation_and_size_bounds() {
        for (bits, err) in [
            (1024, Error::RsaKeyTooSmall),
            (2047, Error::RsaKeyTooSmall),
            (8193, Error::RsaKeyTooBig),
        ] {
            assert_eq!(Keypair::generate_rsa(bits).unwrap_err(), err);
        }
        assert_eq!(
            Error::RsaKeyTooSmall.to_string(),
            "rsa keys must be >= 2048 bits to be useful"
        );
        let key = Keypair::generate_of(KeyType::Rsa, None).unwrap();
        assert_eq!(key.key_type(), KeyType::Rsa);
        let pb = key.to_protobuf();
        assert_eq!(&pb[..2], &[0x08, 0x00]);
        let again = Keypair::from_protobuf(&pb).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(again.to_protobuf(), pb);
        let id = key.public().peer_id();
        assert!(id.to_string().starts_with("Qm") && id.to_string().len() == 46);
        assert!(key.public().verify(b"x", &key.sign(b"x").unwrap()));
        // A 2048-bit key's public protobuf is 299 bytes (DER SPKI 294 + header).
        assert_eq!(key.public().to_protobuf().len(), 299);
        assert_eq!(
            Keypair::generate_of(KeyType::Ed25519, Some(1024))
                .unwrap()
                .key_type(),
            KeyType::Ed25519
        );
    }

    #[test]
    fn key_type_names() {
        assert_eq!("rsa".parse::<KeyType>().unwrap(), KeyType::Rsa);
        assert_eq!("ed25519".parse::<KeyType>().unwrap(), KeyType::Ed25519);
        assert_eq!(
            "secp256k1".parse::<KeyType>().unwrap_err().to_string(),
            "unrecognized key type: secp256k1"
        );
        assert_eq!(KeyType::Rsa.code(), KEY_TYPE_RSA);
        // Secp256k1 and ECDSA keys (the spec's vectors) are refused by type.
        let secp = [
            0x08, 0x02, 0x12, 0x21, 0x03, 0x77, 0x77, 0xe9, 0x94, 0xe4, 0x52, 0xc2, 0x16, 0x04,
            0xf9, 0x1d, 0xe0, 0x93, 0xce, 0x41, 0x5f, 0x54, 0x32, 0xf7, 0x01, 0xdd, 0x8c, 0xd1,
            0xa7, 0xa6, 0xfe, 0xa0, 0xe6, 0x30, 0xbf, 0xca, 0x99,
        ];
        assert_eq!(
            PublicKey::from_protobuf(&secp).unwrap_err(),
            Error::UnsupportedKeyType(2)
        );
    }

    #[test]
    fn rejects_bad_rsa_keys() {
        // Truncated DER, a flipped modulus byte (inconsistent components), garbage data.
        let key = test_rsa_key();
        let private = key.to_protobuf();
        assert!(Keypair::from_protobuf(&private[..private.len() - 1]).is_err());
        let mut flipped = private.clone();
        flipped[40] ^= 0x01;
        assert!(Keypair::from_protobuf(&flipped).is_err());
        assert!(Keypair::from_protobuf(&[0x08, 0x00, 0x12, 0x02, 0x30, 0x00]).is_err());
        let public = key.public().to_protobuf();
        assert!(PublicKey::from_protobuf(&public[..public.len() - 3]).is_err());
        assert!(PublicKey::from_protobuf(&[0x08, 0x00, 0x12, 0x00]).is_err());
    }

    proptest! {
        #[test]
        fn key_encodings_round_trip(seed in any::<[u8; 32]>()) {
            let k = Keypair::from_seed(&seed);
            let again = Keypair::from_protobuf(&k.to_protobuf()).unwrap();
            prop_assert_eq!(again.public(), k.public());
            let pem = Keypair::from_pkcs8_pem(&k.to_pkcs8_pem().unwrap()).unwrap();
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
            let sig = k.sign(b"msg").unwrap();
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
