//! IPNS records produced by Kubo/boxo (the gateway-conformance fixtures, copied into
//! tests/fixtures): each must parse, and verify or be refused exactly as the spec says.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use ipfs_kit_ipns::{Error, Name, Record};

fn fixture(file: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every fixture: its name (from the file name) and the outcome the spec asks for.
fn check(file: &str) -> Result<Record, Error> {
    let name: Name = file.split(['_', '.']).next().unwrap_or("").parse()?;
    let rec = Record::decode(&fixture(file))?;
    rec.verify(&name, SystemTime::now())?;
    Ok(rec)
}

#[test]
fn valid_records_from_boxo_verify() {
    for (file, value) in [
        (
            "k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w_v1-v2.ipns-record",
            "/ipfs/bafkqaddwgevxmmraojswg33smq",
        ),
        (
            "k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f_v2.ipns-record",
            "/ipfs/bafkqadtwgiww63tmpeqhezldn5zgi",
        ),
        // Only the V1 signature is broken: V1 signatures are no longer checked.
        (
            "k51qzi5uqu5dilgf7gorsh9vcqqq4myo6jd4zmqkuy9pxyxi5fua3uf7axph4y_v1-v2-broken-signature-v1.ipns-record",
            "/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmi",
        ),
        (
            "k51qzi5uqu5dh71qgwangrt6r0nd4094i88nsady6qgd1dhjcyfsaqmpp143ab.ipns-record",
            "/ipfs/bafkreidfdrlkeq4m4xnxuyx6iae76fdm4wgl5d4xzsb77ixhyqwumhz244",
        ),
        // Made by `ipfs name publish --allow-offline -t 876000h --key=self`.
        (
            "k51qzi5uqu5dgh7y9l90nqs6tvnzcm9erbt8fhzg3fu79p5qt9zb2izvfu51ki.ipns-record",
            "/ipfs/bafyaaeykceeaeeqlnbswy3dpo5xxe3debimaw",
        ),
        (
            "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d.ipns-record",
            "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
        ),
        (
            "k51qzi5uqu5djokp3m1keo36hoxtd6u3a1d2rg1camf6al7p3huy63dojlm57c.ipns-record",
            "/ipfs/bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui/root2",
        ),
        (
            "k51qzi5uqu5dlxdsdu5fpuu7h69wu4ohp32iwm9pdt9nq3y5rpn3ln9j12zfhe.ipns-record",
            "/ipfs/bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui",
        ),
        (
            "k51qzi5uqu5dghjous0agrwavl8vzl64xckoqzwqeqwudfr74kfd11zcyk3b7l.ipns-record",
            "/ipfs/bafyreibs4utpgbn7uqegmd2goqz4bkyflre2ek2iwv743fhvylwi4zeeim",
        ),
        (
            "k51qzi5uqu5dhjghbwdvbo6mi40htrq6e2z4pwgp15pgv3ho1azvidttzh8yy2.ipns-record",
            "/ipfs/baguqeeram5ujjqrwheyaty3w5gdsmoz6vittchvhk723jjqxk7hakxkd47xq",
        ),
    ] {
        let rec = check(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(std::str::from_utf8(rec.value()).unwrap(), value, "{file}");
        // Re-encoding what was parsed gives back the very bytes boxo wrote.
        assert_eq!(rec.encode(), fixture(file), "{file}");
    }
}

#[test]
fn broken_records_from_boxo_are_refused() {
    let v1_only = "k51qzi5uqu5dm4tm0wt8srkg9h9suud4wuiwjimndrkydqm81cqtlb5ak6p7ku_v1.ipns-record";
    assert!(matches!(check(v1_only), Err(Error::InvalidRecord(_))));
    let bad_v2 = "k51qzi5uqu5diamp7qnnvs1p1gzmku3eijkeijs3418j23j077zrkok63xdm8c_v1-v2-broken-signature-v2.ipns-record";
    assert!(matches!(check(bad_v2), Err(Error::BadSignature)));
    let bad_value = "k51qzi5uqu5dlmit2tuwdvnx4sbnyqgmvbxftl0eo3f33wwtb9gr7yozae9kpw_v1-v2-broken-v1-value.ipns-record";
    assert!(matches!(check(bad_value), Err(Error::InvalidRecord(_))));
}

#[test]
fn rsa_record_from_kubo_verifies_with_its_embedded_key() {
    // Kubo's RSA-keyed record (gateway-conformance t0124): the name is a sha2-256 peer ID, so
    // the record carries the public key; the key must hash to the name and sign the data.
    let file = "QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3.ipns-record";
    let rec = check(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(
        rec.value(),
        b"/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
    );
    assert_eq!(rec.sequence(), 0);
    assert_eq!(rec.validity_str(), "2123-04-12T13:43:57.238038Z");
    assert_eq!(rec.encode(), fixture(file));
    // Another name (an Ed25519 one) is refused: the embedded key does not hash to it.
    let other: Name = "k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w"
        .parse()
        .unwrap();
    assert!(matches!(
        rec.verify(&other, SystemTime::now()),
        Err(Error::WrongKey(_))
    ));
}

#[test]
fn fixture_validity_and_ttl_are_read() {
    let file = "k51qzi5uqu5dgh7y9l90nqs6tvnzcm9erbt8fhzg3fu79p5qt9zb2izvfu51ki.ipns-record";
    let rec = Record::decode(&fixture(file)).unwrap();
    assert_eq!(rec.sequence(), 1);
    assert_eq!(rec.ttl(), Duration::from_secs(60));
    assert_eq!(rec.validity_str(), "2123-03-17T12:44:50.801257Z");
    assert_eq!(
        ipfs_kit_ipns::format_rfc3339(rec.validity().unwrap()),
        rec.validity_str()
    );
    let name: Name = "k51qzi5uqu5dgh7y9l90nqs6tvnzcm9erbt8fhzg3fu79p5qt9zb2izvfu51ki"
        .parse()
        .unwrap();
    let after = SystemTime::UNIX_EPOCH + Duration::from_secs(5_000_000_000);
    assert!(matches!(rec.verify(&name, after), Err(Error::Expired(_))));
}
