//! Bitswap messages from hostile peers: decoding never panics, and what decodes re-encodes to
//! something that decodes to the same message (blocks are always named by their bytes).
#![no_main]

use ipfs_kit_bitswap::message::{Dialect, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data) {
        let again = Message::decode(&msg.encode(Dialect::V120)).expect("re-encoded message decodes");
        assert_eq!(again, msg);
        for b in &msg.blocks {
            assert!(ipfs_kit_block::verify_multihash(b.cid().hash(), b.data()).is_ok());
        }
    }
});
