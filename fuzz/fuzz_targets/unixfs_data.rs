//! Feeds arbitrary bytes to the UnixFS `Data` protobuf decoder. Any input may be rejected; none may
//! panic. Whatever decodes must survive a round trip: decode(encode(data)) == data.

#![no_main]

use ipfs_kit_unixfs::pb::Data;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Data::decode(data) else {
        return;
    };
    let encoded = msg.encode();
    let again = Data::decode(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded unixfs data does not decode: {e}; data {msg:?}"));
    assert_eq!(again, msg, "unixfs data round trip changed the message");
});
