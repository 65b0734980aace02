//! Feeds arbitrary bytes to the IPNS record parser and verifier. Any input may be rejected; none
//! may panic. A record that parses must re-encode to bytes that parse to the same record. A
//! record carrying a public key (RSA or Ed25519) is also verified against that key's own name,
//! so key parsing and both signature schemes see fuzzed input, not only the name-mismatch path.

#![no_main]

use std::time::SystemTime;

use ipfs_kit_ipns::{Keypair, PublicKey, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = Record::decode(data) else {
        return;
    };
    let again = Record::decode(&record.encode())
        .unwrap_or_else(|e| panic!("re-encoded record does not parse: {e}"));
    assert_eq!(again, record, "IPNS record round trip changed the record");
    let name = Keypair::from_seed(&[0; 32]).public().peer_id().to_name();
    let _ = record.verify(&name, SystemTime::UNIX_EPOCH);
    if let Some(Ok(key)) = record.public_key().map(PublicKey::from_protobuf) {
        let own = key.peer_id().to_name();
        let _ = record.verify(&own, SystemTime::UNIX_EPOCH);
        // A key that parses re-encodes to a key that parses to the same key.
        let again = PublicKey::from_protobuf(&key.to_protobuf())
            .unwrap_or_else(|e| panic!("re-encoded public key does not parse: {e}"));
        assert_eq!(again, key, "public key round trip changed the key");
    }
});
