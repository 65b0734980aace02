//! Feeds arbitrary bytes to the CAR reader (CARv1 and CARv2 paths) and reads to the end. Any
//! input may be rejected; none may panic, hang or allocate without bound.

#![no_main]

use ipfs_kit_car::{CarReader, ReaderConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits keep allocations cheap; the first byte picks the zero-length-section mode.
    let lenient = data.first().is_some_and(|b| b & 1 == 1);
    let config = ReaderConfig::default()
        .with_max_header_len(1 << 16)
        .with_max_block_len(1 << 20)
        .with_zero_length_section_as_eof(lenient);
    let Ok(mut reader) = CarReader::with_config(data, config) else {
        return;
    };
    let _ = (reader.version(), reader.roots().len(), reader.v2_header());
    // Verified reads until the reader stops; recoverable errors (bad hashes) keep it going.
    loop {
        match reader.next_block() {
            Ok(Some(block)) => {
                let _ = block.data().len();
            }
            Ok(None) => break,
            Err(e) if e.is_recoverable() => {}
            Err(_) => break,
        }
    }
    // Once finished or stopped, the reader must stay that way.
    assert!(!matches!(reader.next_raw(), Ok(Some(_))));
});
