//! Feeds arbitrary bytes to the IPNS record parser and verifier. Any input may be rejected; none
//! may panic. A record that parses must re-encode to bytes that parse to the same record.

#![no_main]

use std::time::SystemTime;

use ipfs_kit_ipns::{Keypair, Record};
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
});
