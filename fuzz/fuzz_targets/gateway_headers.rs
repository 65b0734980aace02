//! The gateway's parsers of client input: `Range`, `entity-bytes`, `Accept`, `If-None-Match`.
//! None may panic, and what they accept must stay within the content they describe.
#![no_main]

use ipfs_kit_gateway::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first two bytes choose a content size, so range resolution is exercised too.
    let size = data
        .iter()
        .take(2)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if let Ok(specs) = parse::parse_range(text, 16) {
        assert!(!specs.is_empty() && specs.len() <= 16);
        if let Some(ranges) = parse::satisfiable(&specs, size) {
            for (start, end) in ranges {
                assert!(start < end && end <= size);
            }
        }
    }
    if let Some(eb) = parse::parse_entity_bytes(text) {
        if let Some((start, end)) = eb.resolve(size) {
            assert!(start < end && end <= size);
        }
    }
    let _ = parse::parse_accept(text);
    let _ = parse::etag_matches(text, "\"bafkqaaa\"");
});
