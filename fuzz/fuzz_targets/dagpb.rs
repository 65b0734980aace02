//! Feeds arbitrary bytes to the strict dag-pb decoder. Any input may be rejected; none may panic.
//! Whatever decodes must survive a round trip: decode(encode(node)) == node, and the encoder's
//! size prediction must be exact.

#![no_main]

use ipfs_kit_block::dagpb::PbNode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(node) = PbNode::decode(data) else {
        return;
    };
    let encoded = node.encode();
    assert_eq!(
        encoded.len(),
        node.encoded_len(),
        "encoded_len disagrees with encode for {node:?}"
    );
    let again = PbNode::decode(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded node does not decode: {e}; node {node:?}"));
    assert_eq!(again, node, "dag-pb round trip changed the node");
});
