//! Feeds arbitrary bytes to the `_redirects` parser and matcher: the input up to the first NUL
//! is the file, the rest a request path. Any file may be refused; none may panic. A rule that
//! matches must give a printable-ASCII target and `Location` (they go into a header as they
//! are), with one of the spec's status codes.

#![no_main]

use ipfs_kit_gateway::redirects::Redirects;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (file, path) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(rules) = Redirects::parse(file) else {
        return;
    };
    let path = String::from_utf8_lossy(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(hit) = rules.find(&segments) {
        assert!(
            [200, 301, 302, 303, 307, 308, 404, 410, 451].contains(&hit.status),
            "status {}",
            hit.status
        );
        assert!(hit.to.bytes().all(|b| b.is_ascii_graphic()), "{:?}", hit.to);
        let location = hit.location(Some("q=a b&r=%ff"));
        assert!(location.bytes().all(|b| b.is_ascii_graphic()), "{location:?}");
        if let Some(p) = hit.path() {
            assert!(p.starts_with('/'));
        }
    }
});
