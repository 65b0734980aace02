//! The keystore: named Ed25519 and RSA keys under `$REPO/keystore`, one file per key (see
//! docs/keys-ipns.md). `self` is the node identity from the config and is never stored here.

use std::fs;
use std::path::PathBuf;

use base64::Engine;
use ipfs_kit_ipns::{KeyType, Keypair, PeerId, RSA_DEFAULT_BITS};

use crate::{Error, Repo};

/// The reserved name of the node's own key.
pub const SELF_KEY: &str = "self";
/// Longest key name accepted, in bytes.
const MAX_KEY_NAME: usize = 255;
const FILE_PREFIX: &str = "key_";

/// A named key as `key list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's name.
    pub name: String,
    /// Its peer ID (which also gives its IPNS name).
    pub id: PeerId,
}

/// How `key export` / `key import` encode a private key (Kubo's `--format` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyFormat {
    /// libp2p's `PrivateKey` protobuf (`libp2p-protobuf-cleartext`, Kubo's default).
    #[default]
    Libp2pProtobuf,
    /// Unencrypted PKCS#8 PEM (`pem-pkcs8-cleartext`).
    PemPkcs8,
}

impl KeyFormat {
    /// Parses Kubo's format names.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "libp2p-protobuf-cleartext" => Ok(KeyFormat::Libp2pProtobuf),
            "pem-pkcs8-cleartext" => Ok(KeyFormat::PemPkcs8),
            other => Err(Error::Invalid(format!(
                "unrecognized format {other:?}: use libp2p-protobuf-cleartext or pem-pkcs8-cleartext"
            ))),
        }
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Invalid(why.to_string()));
    if name.is_empty() {
        return bad("key names must be at least one character");
    }
    if name.len() > MAX_KEY_NAME {
        return bad("key names must be at most 255 bytes");
    }
    if name.contains('/') {
        return bad("key names may not contain slashes");
    }
    if name.starts_with('.') {
        return bad("key names may not begin with a period");
    }
    Ok(())
}

fn file_name(name: &str) -> String {
    let b32 = multibase::Base::Base32Lower.encode(name.as_bytes());
    format!("{FILE_PREFIX}{b32}")
}

fn name_of_file(file: &str) -> Option<String> {
    let b32 = file.strip_prefix(FILE_PREFIX)?;
    let bytes = multibase::Base::Base32Lower.decode(b32).ok()?;
    String::from_utf8(bytes).ok()
}

fn not_found(name: &str) -> Error {
    Error::Invalid(format!("no key named {name} was found"))
}

impl Repo {
    fn keystore_dir(&self) -> PathBuf {
        self.path.join("keystore")
    }

    fn key_path(&self, name: &str) -> PathBuf {
        self.keystore_dir().join(file_name(name))
    }

    fn ensure_keystore(&self) -> Result<PathBuf, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.keystore_dir();
        if !dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        Ok(dir)
    }

    fn sync_keystore(&self) -> Result<(), Error> {
        let dir = self.keystore_dir();
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(format!("sync {}", dir.display()), e))
    }

    /// The key pair called `name`; `self` is the node identity.
    pub fn keypair(&self, name: &str) -> Result<Keypair, Error> {
        if name == SELF_KEY {
            let pb = base64::engine::general_purpose::STANDARD
                .decode(&self.config().identity.private_key)
                .map_err(|e| Error::Identity(format!("private key in config: {e}")))?;
            return Ok(Keypair::from_protobuf(&pb)?);
        }
        check_name(name)?;
        let path = self.key_path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(name)),
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        Ok(Keypair::from_protobuf(&bytes)?)
    }

    /// Kubo's checks of a new key's name: not `self`, valid, not taken.
    fn check_new_name(&self, name: &str) -> Result<(), Error> {
        if name == SELF_KEY {
            return Err(Error::Invalid(format!(
                "cannot create key with name '{SELF_KEY}'"
            )));
        }
        check_name(name)?;
        if self.key_path(name).exists() {
            return Err(Error::Invalid(format!(
                "key with name '{name}' already exists"
            )));
        }
        Ok(())
    }

    fn store_key(&self, name: &str, key: &Keypair) -> Result<KeyInfo, Error> {
        self.check_new_name(name)?;
        self.ensure_keystore()?;
        let path = self.key_path(name);
        crate::write_atomic_mode(&path, &key.to_protobuf(), 0o600)?;
        Ok(KeyInfo {
            name: name.to_string(),
            id: key.public().peer_id(),
        })
    }

    /// Generates and stores a new key called `name`, as Kubo's `key gen`: `kind` is `ed25519`
    /// or `rsa`; `size` is the RSA modulus in bits (`None` or -1: 2048; 2048 to 8192 accepted)
    /// and is ignored for Ed25519. The name is checked before the (slow, for RSA) generation.
    pub fn key_gen(&self, name: &str, kind: &str, size: Option<i64>) -> Result<KeyInfo, Error> {
        self.check_new_name(name)?;
        let kind: KeyType = kind.parse()?;
        let bits = match size {
            None | Some(-1) => RSA_DEFAULT_BITS,
            // Out-of-range sizes get go-libp2p's errors from the generator.
            Some(n) => usize::try_from(n).unwrap_or(0),
        };
        self.store_key(name, &Keypair::generate_of(kind, Some(bits))?)
    }

    /// Stores an exported key (protobuf or PEM, told apart by content) as `name`.
    pub fn key_import(&self, name: &str, bytes: &[u8]) -> Result<KeyInfo, Error> {
        let key = if bytes.starts_with(b"-----BEGIN") {
            let pem = std::str::from_utf8(bytes)
                .map_err(|_| Error::Invalid("PEM key is not UTF-8".into()))?;
            Keypair::from_pkcs8_pem(pem)?
        } else {
            Keypair::from_protobuf(bytes)?
        };
        self.store_key(name, &key)
    }

    /// The private key `name` in `format`.
    pub fn key_export(&self, name: &str, format: KeyFormat) -> Result<Vec<u8>, Error> {
        let key = self.keypair(name)?;
        Ok(match format {
            KeyFormat::Libp2pProtobuf => key.to_protobuf(),
            KeyFormat::PemPkcs8 => key.to_pkcs8_pem()?.into_bytes(),
        })
    }

    /// Every key: `self` first, then the keystore's keys by name.
    pub fn key_list(&self) -> Result<Vec<KeyInfo>, Error> {
        let mut out = vec![KeyInfo {
            name: SELF_KEY.to_string(),
            id: self.keypair(SELF_KEY)?.public().peer_id(),
        }];
        let dir = self.keystore_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(name_of_file))
            .collect();
        names.sort();
        for name in names {
            out.push(KeyInfo {
                id: self.keypair(&name)?.public().peer_id(),
                name,
            });
        }
        Ok(out)
    }

    /// Renames a key; returns it under its new name and whether an existing key was replaced.
    pub fn key_rename(&self, old: &str, new: &str, force: bool) -> Result<(KeyInfo, bool), Error> {
        if old == SELF_KEY {
            return Err(Error::Invalid(format!(
                "cannot rename key with name '{SELF_KEY}'"
            )));
        }
        if new == SELF_KEY {
            return Err(Error::Invalid(format!(
                "cannot overwrite key with name '{SELF_KEY}'"
            )));
        }
        check_name(new)?;
        let key = self.keypair(old)?;
        let info = KeyInfo {
            name: new.to_string(),
            id: key.public().peer_id(),
        };
        if old == new {
            return Ok((info, false));
        }
        let to = self.key_path(new);
        let overwrite = to.exists();
        if overwrite && !force {
            return Err(Error::Invalid(
                "key by that name already exists, refusing to overwrite".into(),
            ));
        }
        fs::rename(self.key_path(old), &to)
            .map_err(|e| Error::io(format!("rename key {old}"), e))?;
        self.sync_keystore()?;
        Ok((info, overwrite))
    }

    /// Removes keys; all names are checked before any is removed.
    pub fn key_rm(&self, names: &[String]) -> Result<Vec<KeyInfo>, Error> {
        let mut out = Vec::new();
        for name in names {
            if name == SELF_KEY {
                return Err(Error::Invalid(format!(
                    "cannot remove key with name '{SELF_KEY}'"
                )));
            }
            out.push(KeyInfo {
                name: name.clone(),
                id: self.keypair(name)?.public().peer_id(),
            });
        }
        for k in &out {
            let path = self.key_path(&k.name);
            fs::remove_file(&path).map_err(|e| Error::io(format!("remove key {}", k.name), e))?;
        }
        if !out.is_empty() {
            self.sync_keystore()?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_hide_temporaries() {
        for name in ["a", "My Key", "ключ", "x.y"] {
            assert_eq!(name_of_file(&file_name(name)).as_deref(), Some(name));
        }
        assert_eq!(name_of_file(".key_mfrgg.tmp"), None);
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(".hidden").is_err());
        assert!(check_name(&"x".repeat(256)).is_err());
    }
}
