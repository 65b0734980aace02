//! The `Host` header: which requests are subdomain-gateway requests (`{root}.ipfs.localhost`),
//! which path-gateway requests move to a subdomain (`localhost/ipfs/{cid}`), and the subdomain
//! URL of a content path (subdomain gateway spec).
//!
//! Only hostnames configured as subdomain gateways (`Config::subdomain_hosts`, default
//! `localhost`, as Kubo's default `Gateway.PublicGateways`) take part; any other host (an IP
//! address such as `127.0.0.1`, a name not configured) is a plain path gateway.

use ipfs_kit_block::{parse_cid, Cid, Multihash};

/// Longest DNS label (RFC 1034).
pub(crate) const DNS_LABEL_MAX: usize = 63;
/// Multicodec of a CID naming a libp2p public key.
const LIBP2P_KEY: u64 = 0x72;

/// How a request's host is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostMode {
    /// `{root}.{ns}.{gateway}`: the content root comes from the host, the URL path is below it.
    Subdomain {
        /// The gateway's own host, with the port if the request had one (`localhost:8080`).
        gateway: String,
        /// `ipfs`, `ipns`, or another namespace label (`p2p`, `ipld`), which is not served.
        ns: String,
        /// The content root label(s): a CID, an IPNS name, or a DNSLink name.
        root: String,
    },
    /// The host of a subdomain gateway itself: `/ipfs/` and `/ipns/` paths move to subdomains.
    GatewayHost {
        /// The host, with the port if the request had one.
        gateway: String,
    },
    /// Any other host: a path gateway.
    Path,
}

/// Splits `host[:port]` into the host and the `:port` suffix (empty without one). IPv6
/// literals (`[::1]:8080`) come back whole with no port split off: they are never gateway
/// names.
fn split_port(host: &str) -> (&str, &str) {
    if host.starts_with('[') {
        return (host, "");
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => (&host[..i], &host[i..]),
        _ => (host, ""),
    }
}

fn is_known(name: &str, known: &[String]) -> bool {
    known.iter().any(|k| k.eq_ignore_ascii_case(name))
}

/// Classifies `host` (the `Host` or `X-Forwarded-Host` value) against the configured subdomain
/// gateway hostnames.
pub(crate) fn classify(host: &str, known: &[String]) -> HostMode {
    let (name, port) = split_port(host.trim());
    // Only hostname characters: a root label must never carry '/', '%', '?' or the like into
    // the content path built from it.
    let hostname_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if name.is_empty() || known.is_empty() || !hostname_chars {
        return HostMode::Path;
    }
    if is_known(name, known) {
        return HostMode::GatewayHost {
            gateway: format!("{name}{port}"),
        };
    }
    // {root}.{ns}.{gateway}: find the longest known gateway name the host ends with, keeping
    // at least a root label and a namespace label before it. The root may span labels (a
    // DNSLink name).
    let labels: Vec<&str> = name.split('.').collect();
    for i in 2..labels.len() {
        let gateway = labels[i..].join(".");
        if !is_known(&gateway, known) {
            continue;
        }
        let ns = labels[i - 1].to_ascii_lowercase();
        if !matches!(ns.as_str(), "ipfs" | "ipns" | "p2p" | "ipld") {
            continue;
        }
        let root = labels[..i - 1].join(".");
        if root.is_empty() {
            continue;
        }
        return HostMode::Subdomain {
            gateway: format!("{gateway}{port}"),
            ns,
            root,
        };
    }
    HostMode::Path
}

/// Why a content root cannot be put in a subdomain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TooLong(pub String);

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CID incompatible with DNS label length limit of {DNS_LABEL_MAX}: {}",
            self.0
        )
    }
}

/// The text of `cid` that fits a DNS label: `text` itself when it fits, else the CIDv1 in
/// base36; when that does not fit either, there is none (the spec says 400).
pub(crate) fn dns_label(text: &str, cid: &Cid) -> Result<String, TooLong> {
    if text.len() <= DNS_LABEL_MAX {
        return Ok(text.to_string());
    }
    let v1 = Cid::new_v1(cid.codec(), *cid.hash());
    let b36 = v1
        .to_string_of_base(multibase::Base::Base36Lower)
        .map_err(|_| TooLong(text.to_string()))?;
    if b36.len() <= DNS_LABEL_MAX {
        Ok(b36)
    } else {
        Err(TooLong(b36))
    }
}

/// A peer ID in the legacy base58 form (`12D3KooW…`, `Qm…`) as a multihash.
fn base58_peer_id(s: &str) -> Option<Multihash<64>> {
    if !(s.starts_with('1') || s.starts_with("Qm")) {
        return None;
    }
    let bytes = multibase::Base::Base58Btc.decode(s).ok()?;
    Multihash::from_bytes(&bytes).ok()
}

/// The case-insensitive label of a content root for namespace `ns`: an `/ipfs/` CID as CIDv1
/// in base32; an `/ipns/` peer ID or key CID as a CIDv1 with codec libp2p-key in base36 (so an
/// Ed25519 key fits one label); base36 when base32 is too long. `Ok(None)`: not a CID (a
/// DNSLink name, or garbage the path gateway will refuse), left as it is.
pub(crate) fn root_label(ns: &str, root: &str) -> Result<Option<String>, TooLong> {
    let peer_ns = matches!(ns, "ipns" | "p2p");
    let cid = if peer_ns {
        match base58_peer_id(root) {
            Some(mh) => Some(Cid::new_v1(LIBP2P_KEY, mh)),
            None => parse_cid(root).ok(),
        }
    } else {
        parse_cid(root).ok()
    };
    let Some(cid) = cid else {
        return Ok(None);
    };
    let (codec, base) = if peer_ns {
        (LIBP2P_KEY, multibase::Base::Base36Lower)
    } else {
        (cid.codec(), multibase::Base::Base32Lower)
    };
    let v1 = Cid::new_v1(codec, *cid.hash());
    let text = v1
        .to_string_of_base(base)
        .map_err(|_| TooLong(root.to_string()))?;
    dns_label(&text, &v1).map(Some)
}

/// The subdomain URL of `/{ns}/{root}{rest}?{query}` on `gateway` (host and port):
/// `http[s]://{label}.{ns}.{gateway}{rest}?{query}`. `rest` is the still-encoded URL path
/// after the root (empty or starting with `/`). `Ok(None)` when the path has no root or the
/// namespace is not one a subdomain serves.
pub(crate) fn subdomain_url(
    gateway: &str,
    ns: &str,
    root: &str,
    rest: &str,
    query: Option<&str>,
    https: bool,
) -> Result<Option<String>, TooLong> {
    if root.is_empty() || !matches!(ns, "ipfs" | "ipns") {
        return Ok(None);
    }
    let label = root_label(ns, root)?.unwrap_or_else(|| root.to_string());
    let scheme = if https { "https" } else { "http" };
    let path = if rest.is_empty() { "/" } else { rest };
    let mut url = format!("{scheme}://{label}.{ns}.{gateway}{path}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["localhost".to_string()]
    }

    #[test]
    fn hosts_are_classified() {
        let k = known();
        assert_eq!(
            classify("localhost:8080", &k),
            HostMode::GatewayHost {
                gateway: "localhost:8080".into()
            }
        );
        assert_eq!(
            classify("LocalHost", &k),
            HostMode::GatewayHost {
                gateway: "LocalHost".into()
            }
        );
        assert_eq!(
            classify("bafkqaaa.ipfs.localhost:8080", &k),
            HostMode::Subdomain {
                gateway: "localhost:8080".into(),
                ns: "ipfs".into(),
                root: "bafkqaaa".into()
            }
        );
        assert_eq!(
            classify("en.wikipedia-on-ipfs.org.ipns.localhost", &k),
            HostMode::Subdomain {
                gateway: "localhost".into(),
                ns: "ipns".into(),
                root: "en.wikipedia-on-ipfs.org".into()
            }
        );
        assert_eq!(
            classify("x.p2p.localhost", &k),
            HostMode::Subdomain {
                gateway: "localhost".into(),
                ns: "p2p".into(),
                root: "x".into()
            }
        );
        for path in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "example.com",
            "ipfs.localhost",
            "bafkqaaa.foo.localhost",
            "",
            "bafkqaaa.ipfs.localhost.evil.com",
            "a/b.ipns.localhost",
            "a%2e%2e.ipns.localhost",
            "a?x.ipfs.localhost",
        ] {
            assert_eq!(classify(path, &k), HostMode::Path, "{path}");
        }
        assert_eq!(classify("bafkqaaa.ipfs.localhost", &[]), HostMode::Path);
        // A configured multi-label gateway name.
        let dweb = vec!["dweb.link".to_string()];
        assert_eq!(
            classify("bafkqaaa.ipfs.dweb.link", &dweb),
            HostMode::Subdomain {
                gateway: "dweb.link".into(),
                ns: "ipfs".into(),
                root: "bafkqaaa".into()
            }
        );
    }

    #[test]
    fn roots_become_dns_labels() {
        // The spec's example: a CIDv0 becomes the base32 CIDv1.
        assert_eq!(
            root_label("ipfs", "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR").unwrap(),
            Some("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into())
        );
        // Peer IDs in any form become base36 libp2p-key CIDs.
        let k51 = "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam";
        let key = parse_cid(k51).unwrap();
        // The same key as a base32 CID, and with the wrong codec (dag-pb), which is fixed.
        let b32 = key.to_string();
        let dag_pb = Cid::new_v1(0x70, *key.hash()).to_string();
        for form in [
            "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d",
            k51,
            &b32,
            &dag_pb,
        ] {
            assert_eq!(
                root_label("ipns", form).unwrap().as_deref(),
                Some(k51),
                "{form}"
            );
        }
        // RSA peer IDs too (k2k4r8…, 56 characters).
        let rsa = root_label("ipns", "QmR275SgfFSeocVsGXXBnQ1QP4YHLSoXdYSXKHQM8PJxhX")
            .unwrap()
            .unwrap();
        assert!(
            rsa.starts_with("k2k4r8") && rsa.len() <= DNS_LABEL_MAX,
            "{rsa}"
        );
        // DNSLink names and garbage are left alone.
        assert_eq!(
            root_label("ipns", "en.wikipedia-on-ipfs.org").unwrap(),
            None
        );
        assert_eq!(root_label("ipfs", "not-a-cid").unwrap(), None);
        // A sha2-512 CID fits in no label, in base32 or base36.
        let sha512 =
            Cid::new_v1(0x55, ipfs_kit_block::HashAlg::Sha2_512.digest(b"hello")).to_string();
        let err = root_label("ipfs", &sha512).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("CID incompatible with DNS label length limit of 63: k"));
    }

    #[test]
    fn long_base32_falls_back_to_base36() {
        // A dag-json blake2b-256 CIDv1 (2-byte codec, 3-byte hash code) is 64 characters in
        // base32 and fits in base36.
        let mh = Multihash::wrap(0xb220, &[7u8; 32]).unwrap();
        let cid = Cid::new_v1(0x0129, mh);
        let b32 = cid.to_string();
        assert!(b32.len() > DNS_LABEL_MAX, "{}", b32.len());
        let label = root_label("ipfs", &b32).unwrap().unwrap();
        assert!(label.starts_with('k') && label.len() <= DNS_LABEL_MAX);
        assert_eq!(parse_cid(&label).unwrap(), cid);
    }

    #[test]
    fn subdomain_urls() {
        assert_eq!(
            subdomain_url(
                "localhost:8080",
                "ipfs",
                "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR",
                "/a%20b/c",
                Some("format=raw"),
                false
            )
            .unwrap()
            .unwrap(),
            "http://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi.ipfs.localhost:8080/a%20b/c?format=raw"
        );
        assert_eq!(
            subdomain_url("localhost", "ipfs", "bafkqaaa", "", None, true)
                .unwrap()
                .unwrap(),
            "https://bafkqaaa.ipfs.localhost/"
        );
        assert_eq!(
            subdomain_url("localhost", "ipns", "example.org", "/x/", Some(""), false)
                .unwrap()
                .unwrap(),
            "http://example.org.ipns.localhost/x/"
        );
        assert_eq!(
            subdomain_url("localhost", "ipfs", "", "", None, false).unwrap(),
            None
        );
        assert_eq!(
            subdomain_url("localhost", "p2p", "x", "", None, false).unwrap(),
            None
        );
    }
}
