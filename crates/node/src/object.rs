//! Kubo's legacy `object` commands: dag-pb nodes edited link by link. Kept because clients
//! and the conformance suite still use them; new code should use `dag` and MFS.

use ipfs_kit_block::dagpb::{PbLink, PbNode};
use ipfs_kit_block::{codec, Cid, HashAlg};

use crate::{Error, Repo};

/// One edit of `object patch`, or a fresh node.
#[derive(Clone, Debug)]
pub enum ObjectEdit {
    /// A new node: empty, or an empty UnixFS directory for the `unixfs-dir` template.
    New {
        /// `unixfs-dir` or none.
        template: Option<String>,
    },
    /// Adds (or replaces) the link `name` to `target`.
    AddLink {
        /// The link name.
        name: String,
        /// The linked node.
        target: Cid,
    },
    /// Removes the links named `name`.
    RmLink {
        /// The link name.
        name: String,
    },
    /// Replaces the data field.
    SetData(Vec<u8>),
    /// Appends to the data field.
    AppendData(Vec<u8>),
}

/// The data field of an empty UnixFS directory (`Type: Directory`).
const UNIXFS_DIR: &[u8] = &[0x08, 0x01];

impl Repo {
    /// Applies `edit` to the dag-pb node at `root` (ignored for `New`), stores the result with
    /// the root's CID version (v0 for a new node, as Kubo) and returns its CID.
    pub fn object_edit(&self, root: Option<&str>, edit: ObjectEdit) -> Result<Cid, Error> {
        let (mut node, version) = match (&edit, root) {
            (ObjectEdit::New { .. }, _) => (PbNode::default(), 0),
            (_, Some(path)) => {
                let cid = self.resolve(path)?;
                if cid.codec() != codec::DAG_PB {
                    return Err(Error::Invalid(format!("{cid} is not a dag-pb node")));
                }
                (
                    PbNode::decode(&self.block_bytes(&cid)?)?,
                    cid.version() as u8,
                )
            }
            (_, None) => return Err(Error::Invalid("no node to edit".into())),
        };
        match edit {
            ObjectEdit::New { template } => match template.as_deref() {
                None | Some("") => {}
                Some("unixfs-dir") => node.data = Some(UNIXFS_DIR.to_vec().into()),
                Some(t) => {
                    return Err(Error::Invalid(format!(
                        "template {t:?} not found (unixfs-dir is the one template)"
                    )))
                }
            },
            ObjectEdit::AddLink { name, target } => {
                let tsize = self.cumulative_size(&target)?;
                node.links
                    .retain(|l| l.name.as_deref() != Some(name.as_str()));
                node.links.push(PbLink {
                    cid: target,
                    name: Some(name),
                    tsize: Some(tsize),
                });
                // dag-pb keeps links sorted by name; a stable sort keeps equal names in order.
                node.links.sort_by(|a, b| {
                    a.name
                        .as_deref()
                        .unwrap_or("")
                        .as_bytes()
                        .cmp(b.name.as_deref().unwrap_or("").as_bytes())
                });
            }
            ObjectEdit::RmLink { name } => {
                let before = node.links.len();
                node.links
                    .retain(|l| l.name.as_deref() != Some(name.as_str()));
                if node.links.len() == before {
                    return Err(Error::Invalid(format!("no link by that name: {name:?}")));
                }
            }
            ObjectEdit::SetData(d) => node.data = Some(d.into()),
            ObjectEdit::AppendData(d) => {
                let mut data = node.data.map(|b| b.to_vec()).unwrap_or_default();
                data.extend_from_slice(&d);
                node.data = Some(data.into());
            }
        }
        self.block_put(
            node.encode(),
            codec::DAG_PB,
            HashAlg::Sha2_256,
            version,
            false,
            false,
        )
    }

    /// A block's size plus the Tsizes of its links: what a link to it records.
    fn cumulative_size(&self, cid: &Cid) -> Result<u64, Error> {
        let bytes = self.block_bytes(cid)?;
        if cid.codec() != codec::DAG_PB {
            return Ok(bytes.len() as u64);
        }
        let node = PbNode::decode(&bytes)?;
        Ok(bytes.len() as u64 + node.links.iter().filter_map(|l| l.tsize).sum::<u64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_match_kubos_cids() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(&dir.path().join("r"), Default::default()).unwrap();
        // Kubo's well-known CIDs for `object new` and `object new unixfs-dir`.
        let empty = repo
            .object_edit(None, ObjectEdit::New { template: None })
            .unwrap();
        assert_eq!(
            empty.to_string(),
            "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
        );
        let dir_cid = repo
            .object_edit(
                None,
                ObjectEdit::New {
                    template: Some("unixfs-dir".into()),
                },
            )
            .unwrap();
        assert_eq!(
            dir_cid.to_string(),
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
        );
        let root = dir_cid.to_string();
        let with = repo
            .object_edit(
                Some(&root),
                ObjectEdit::AddLink {
                    name: "e".into(),
                    target: empty,
                },
            )
            .unwrap();
        let node = PbNode::decode(&repo.block_bytes(&with).unwrap()).unwrap();
        assert_eq!(node.links.len(), 1);
        assert_eq!(node.links[0].tsize, Some(0));
        let back = repo
            .object_edit(
                Some(&with.to_string()),
                ObjectEdit::RmLink { name: "e".into() },
            )
            .unwrap();
        assert_eq!(back, dir_cid);
        assert!(repo
            .object_edit(
                Some(&root),
                ObjectEdit::RmLink {
                    name: "nope".into()
                }
            )
            .is_err());
        let data = repo
            .object_edit(Some(&root), ObjectEdit::AppendData(b"x".to_vec()))
            .unwrap();
        let node = PbNode::decode(&repo.block_bytes(&data).unwrap()).unwrap();
        assert_eq!(node.data.as_deref(), Some(&[0x08, 0x01, b'x'][..]));
    }
}
