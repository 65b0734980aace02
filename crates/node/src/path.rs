//! IPFS paths as users type them: `CID`, `CID/a/b`, `/ipfs/CID/a/b`.

use std::fmt;
use std::str::FromStr;

use ipfs_kit_block::{parse_cid, Cid};

use crate::Error;

/// A parsed `/ipfs/` path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpfsPath {
    /// The root CID.
    pub root: Cid,
    /// The path segments below the root (no empty segments).
    pub segments: Vec<String>,
}

impl FromStr for IpfsPath {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::InvalidPath(s.to_string(), why.to_string());
        let trimmed = s.trim();
        let rest = if let Some(r) = trimmed.strip_prefix("/ipfs/") {
            r
        } else if trimmed.starts_with("/ipns/") {
            return Err(bad(
                "/ipns paths need the network, which this node does not have yet",
            ));
        } else if trimmed.starts_with('/') {
            return Err(bad("paths must start with /ipfs/ or a CID"));
        } else {
            trimmed
        };
        let mut parts = rest.split('/');
        let first = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("no CID"))?;
        let root = parse_cid(first).map_err(|e| bad(&e.to_string()))?;
        let segments: Vec<String> = parts
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if segments.iter().any(|p| p == "." || p == "..") {
            return Err(bad("'.' and '..' are not allowed in IPFS paths"));
        }
        Ok(IpfsPath { root, segments })
    }
}

impl fmt::Display for IpfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/ipfs/{}", self.root)?;
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let cid = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
        for s in [cid.to_string(), format!("/ipfs/{cid}"), format!("{cid}/")] {
            let p: IpfsPath = s.parse().unwrap();
            assert_eq!(p.root.to_string(), cid);
            assert!(p.segments.is_empty());
        }
        let p: IpfsPath = format!("/ipfs/{cid}/a//b").parse().unwrap();
        assert_eq!(p.segments, ["a", "b"]);
        assert_eq!(p.to_string(), format!("/ipfs/{cid}/a/b"));
        for bad in [
            "",
            "/",
            "/ipfs/",
            "notacid",
            "/foo/bar",
            &format!("{cid}/../x"),
        ] {
            assert!(bad.parse::<IpfsPath>().is_err(), "{bad}");
        }
    }
}
