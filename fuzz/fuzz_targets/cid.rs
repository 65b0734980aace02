//! Feeds arbitrary text to the CID parser and arbitrary bytes to the dag-cbor and dag-json
//! decoders. Any input may be rejected; none may panic. A parsed CID must print to a string that
//! parses back to the same CID.

#![no_main]

use ipfs_kit_block::{codec, ipld, parse_cid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(cid) = parse_cid(s) {
            let printed = cid.to_string();
            let again = parse_cid(&printed)
                .unwrap_or_else(|e| panic!("printed cid {printed:?} does not parse: {e}"));
            assert_eq!(again, cid, "cid changed through {printed:?}");
        }
    }
    let _ = ipld::decode(codec::DAG_CBOR, data);
    let _ = ipld::decode(codec::DAG_JSON, data);
});
