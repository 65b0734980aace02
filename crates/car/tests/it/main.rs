//! Reads the CAR fixtures shared with the interop client suite (go-car and lotus output), and
//! round-trips them through the writer.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ipfs_kit_block::{Bytes, Cid, HashAlg, IDENTITY};
use ipfs_kit_car::{CarReader, CarWriter, Error};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/clients/iic/fixtures/car")
}

/// Everything read from one CAR.
#[derive(Debug, Default)]
struct Contents {
    version: u64,
    roots: Vec<Cid>,
    /// Every section, in file order.
    sections: Vec<(Cid, Bytes)>,
    verified: usize,
    unverifiable: usize,
    /// Sections per multihash code.
    by_hash: BTreeMap<u64, usize>,
}

impl Contents {
    fn cids(&self) -> BTreeSet<Cid> {
        self.sections.iter().map(|(c, _)| *c).collect()
    }
}

/// Reads a whole CAR, verifying every block whose hash ipfs-kit can compute and reading the rest
/// unverified. Any other error fails the test.
fn read_fixture(path: &Path) -> Contents {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut reader = CarReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Contents {
        version: reader.version(),
        roots: reader.roots().to_vec(),
        ..Contents::default()
    };
    loop {
        match reader.next_block() {
            Ok(Some(block)) => {
                out.verified += 1;
                out.sections.push(block.into_parts());
            }
            Ok(None) => break,
            Err(Error::UnsupportedHash { cid, code }) => {
                assert!(
                    code != IDENTITY && HashAlg::from_code(code).is_none(),
                    "{cid}: 0x{code:x} should be verifiable"
                );
                out.unverifiable += 1;
                // The section was consumed; record its CID (the bytes come from a raw re-read).
                out.sections.push((cid, Bytes::new()));
            }
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    // Fill in the bytes of unverifiable blocks with a raw pass, which must agree on the CIDs.
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut raw = CarReader::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (cid, data) in &mut out.sections {
        let (raw_cid, raw_data) = raw
            .next_raw()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .unwrap_or_else(|| panic!("{}: raw pass ended early", path.display()));
        assert_eq!(*cid, raw_cid);
        *data = raw_data;
        *out.by_hash.entry(cid.hash().code()).or_default() += 1;
    }
    assert!(raw.next_raw().expect("read past the end").is_none());
    out
}

/// The fixtures, read once for all tests; `None` when the fixture directory is missing.
fn fixtures() -> Option<&'static BTreeMap<String, Contents>> {
    static ALL: OnceLock<Option<BTreeMap<String, Contents>>> = OnceLock::new();
    ALL.get_or_init(read_fixtures).as_ref()
}

fn read_fixtures() -> Option<BTreeMap<String, Contents>> {
    let dir = fixture_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipping: no fixture directory at {}", dir.display());
        return None;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "car"))
        .collect();
    paths.sort();
    let mut out = BTreeMap::new();
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let c = read_fixture(&path);
        let hashes: Vec<String> = c
            .by_hash
            .iter()
            .map(|(code, n)| format!("0x{code:x}: {n}"))
            .collect();
        println!(
            "{name}: car v{}, {} roots, {} blocks ({} verified, {} unverifiable; by multihash {})",
            c.version,
            c.roots.len(),
            c.sections.len(),
            c.verified,
            c.unverifiable,
            hashes.join(", ")
        );
        out.insert(name, c);
    }
    Some(out)
}

#[test]
fn fixtures_read_fully_and_roots_match_their_names() {
    let Some(all) = fixtures() else { return };
    assert!(
        !all.is_empty(),
        "no .car files in {}",
        fixture_dir().display()
    );

    for (name, c) in all {
        assert_eq!(c.verified + c.unverifiable, c.sections.len(), "{name}");
        // Every root is in the CAR, except where the name says the roots are "naked" (no
        // blocks) or a placeholder ("nulroot": the empty identity CID).
        if !name.contains("naked") && !name.contains("nulroot") {
            assert!(!c.roots.is_empty(), "{name} has no roots");
            let cids = c.cids();
            for root in &c.roots {
                assert!(cids.contains(root), "{name}: root {root} is not in the car");
            }
        }
        if name.contains("multiroot") {
            assert!(c.roots.len() > 1, "{name} has {} roots", c.roots.len());
        }
    }

    if let Some(c) = all.get("lotus_devnet_genesis_shuffled_nulroot") {
        // The placeholder root is the zero-length identity CID (raw codec), bafkqaaa.
        assert_eq!(c.roots.len(), 1);
        assert_eq!(c.roots[0].to_bytes(), [0x01, 0x55, 0x00, 0x00]);
        // Same blocks as the ordered genesis, in another order.
        if let Some(genesis) = all.get("lotus_devnet_genesis") {
            assert_eq!(c.cids(), genesis.cids());
            let order = |x: &Contents| x.sections.iter().map(|(c, _)| *c).collect::<Vec<_>>();
            assert_ne!(order(c), order(genesis));
        }
    }

    if let Some(c) = all.get("combined_naked_roots_genesis_and_128") {
        assert!(c.sections.is_empty());
        // The two roots are those of the genesis and of the 128-epoch export.
        let root_of = |n: &str| all.get(n).map(|x| x.roots.clone());
        if let (Some(g), Some(e)) = (
            root_of("lotus_devnet_genesis"),
            root_of("lotus_testnet_export_128"),
        ) {
            assert_eq!(c.roots, [g, e].concat());
        }
    }
}

#[test]
fn fixtures_round_trip_through_the_writer() {
    let Some(all) = fixtures() else { return };
    for (name, c) in all {
        let mut w = CarWriter::new(Vec::new(), &c.roots).unwrap();
        for (cid, data) in &c.sections {
            w.write(cid, data).unwrap();
        }
        let car = w.finish().unwrap();
        // go-car and lotus write the same canonical header and minimal varints we do.
        let original = std::fs::read(fixture_dir().join(format!("{name}.car"))).unwrap();
        assert_eq!(car, original, "{name} differs after a round trip");
    }
}

#[test]
fn truncated_fixture_is_an_error_unless_cut_between_sections() {
    let path = fixture_dir().join("lotus_devnet_genesis.car");
    let Ok(car) = std::fs::read(&path) else {
        println!("skipping: no {}", path.display());
        return;
    };
    // Offsets where a section (or the header) ends: a CARv1 cut there is a valid shorter CAR.
    let mut boundaries = BTreeSet::new();
    let mut reader = CarReader::new(&car[..]).unwrap();
    boundaries.insert(reader.bytes_read() as usize);
    while reader.next_raw().unwrap().is_some() {
        boundaries.insert(reader.bytes_read() as usize);
    }
    let mut cuts: BTreeSet<usize> = (0..car.len()).step_by(61).collect();
    for b in &boundaries {
        cuts.extend([b.saturating_sub(1), *b, b + 1]);
    }
    let mut errors = 0;
    for cut in cuts.into_iter().filter(|c| *c < car.len()) {
        let result = CarReader::new(&car[..cut]).and_then(|mut r| {
            while r.next_raw()?.is_some() {}
            Ok(())
        });
        match result {
            Ok(()) => assert!(boundaries.contains(&cut), "cut at {cut} read without error"),
            Err(e) => {
                assert!(matches!(e, Error::Truncated(_)), "cut at {cut}: {e}");
                errors += 1;
            }
        }
    }
    println!(
        "truncation: {errors} cuts of {} bytes gave errors",
        car.len()
    );
}
