//! The node identity: an Ed25519 key pair and the libp2p peer ID derived from it.

use base64::Engine;
use ipfs_kit_block::Multihash;

use crate::Error;

/// libp2p's key-type number for Ed25519 in its key protobufs.
const KEY_TYPE_ED25519: u8 = 1;

/// A freshly generated identity.
pub struct Identity {
    /// The peer ID (`12D3KooW…`).
    pub peer_id: String,
    /// The private key as base64 of the libp2p `PrivateKey` protobuf (64-byte ed25519 keypair).
    pub private_key: String,
}

/// The peer ID of an Ed25519 public key: the identity multihash of the libp2p `PublicKey`
/// protobuf, in base58btc.
pub fn peer_id(public: &[u8; 32]) -> String {
    let mut proto = vec![0x08, KEY_TYPE_ED25519, 0x12, 32];
    proto.extend_from_slice(public);
    let mh = Multihash::<64>::wrap(0x00, &proto).unwrap_or_default();
    multibase::Base::Base58Btc.encode(mh.to_bytes())
}

/// Generates a new Ed25519 identity from the OS random source.
pub fn generate() -> Result<Identity, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Identity(e.to_string()))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let mut proto = vec![0x08, KEY_TYPE_ED25519, 0x12, 64];
    proto.extend_from_slice(&key.to_keypair_bytes());
    Ok(Identity {
        peer_id: peer_id(&public),
        private_key: base64::engine::general_purpose::STANDARD.encode(proto),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_look_like_kubo() {
        let id = generate().unwrap();
        assert!(id.peer_id.starts_with("12D3KooW"), "{}", id.peer_id);
        assert_eq!(id.peer_id.len(), 52);
    }
}
