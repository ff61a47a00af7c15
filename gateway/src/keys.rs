//! Keys as a gateway holds them (link keys and the storage *public* key, never a secret:
//! it can verify links and seal, not open), built from what the control plane hands out;
//! and the key-file naming the control plane's key directory uses.

use std::path::{Path, PathBuf};

use crate::seal::RecipientPublicKey;
use crate::token::{LinkKey, LinkKeyring};

/// `keys/link-<id>.key`: 32 random bytes, HMAC key for link tokens.
pub const LINK_KEY_PREFIX: &str = "link-";
/// `keys/storage-<id>.pub`: the control plane's X25519 public key files are sealed for.
pub const STORAGE_PUB_PREFIX: &str = "storage-";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key directory or a key file could not be read.
    #[error("cannot read key material in {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A key file has the wrong length or name.
    #[error("key file {0} is malformed")]
    Malformed(PathBuf),
    /// No key of that kind exists yet.
    #[error("no {0} key in the key directory; start the control plane once to generate keys")]
    Missing(&'static str),
}

/// What the gateway holds.
pub struct GatewayKeys {
    pub links: LinkKeyring,
    /// The newest storage key: new files are sealed for it.
    pub storage: RecipientPublicKey,
}

/// A storage public key as the control plane hands it out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoragePublic {
    pub key_id: u32,
    #[serde(with = "hex32")]
    pub public: [u8; 32],
}

/// 32-byte keys as 64 hex characters on the wire.
pub mod hex32 {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }

    use serde::Deserialize;
}

impl GatewayKeys {
    /// What a gateway holds, from what the control plane sent: checked whole (the current ids
    /// must be among the keys) before it replaces anything.
    pub fn from_set(set: &crate::control_link::KeySet) -> Result<GatewayKeys, String> {
        let links: Vec<LinkKey> = set
            .link_keys
            .iter()
            .map(|k| LinkKey::new(k.id, &k.secret))
            .collect();
        let links = LinkKeyring::new(links, set.current_link).map_err(|e| e.to_string())?;
        let current = set
            .storage
            .iter()
            .find(|k| k.key_id == set.current_storage)
            .ok_or("the current storage key is not among the keys sent")?;
        Ok(GatewayKeys {
            links,
            storage: RecipientPublicKey {
                key_id: current.key_id,
                bytes: current.public,
            },
        })
    }
}

/// The gateway's keys as they are now; replaced whole when the control plane rotates one.
/// A request takes the `Arc` once, so it verifies and seals with one consistent set.
pub struct KeyHolder(std::sync::RwLock<Option<std::sync::Arc<GatewayKeys>>>);

impl KeyHolder {
    /// `None`: a gateway run apart whose control plane has not handed out keys yet.
    pub fn new(keys: Option<GatewayKeys>) -> KeyHolder {
        KeyHolder(std::sync::RwLock::new(keys.map(std::sync::Arc::new)))
    }

    /// The keys, or `None` until the first set arrives.
    pub fn current(&self) -> Option<std::sync::Arc<GatewayKeys>> {
        self.0.read().expect("key lock").clone()
    }

    pub fn replace(&self, keys: GatewayKeys) {
        *self.0.write().expect("key lock") = Some(std::sync::Arc::new(keys));
    }
}

/// The directory where keys live under a data directory.
pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// Lists `(id, path)` of files named `<prefix><id><suffix>`, sorted by id.
pub fn list_keys(dir: &Path, prefix: &str, suffix: &str) -> Result<Vec<(u32, PathBuf)>, KeyError> {
    let io = |source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = name.strip_prefix(prefix).and_then(|r| r.strip_suffix(suffix)) {
            let id = id.parse().map_err(|_| KeyError::Malformed(entry.path()))?;
            found.push((id, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a file that must hold exactly 32 bytes.
pub fn read_key32(path: &Path) -> Result<[u8; 32], KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    bytes
        .try_into()
        .map_err(|_| KeyError::Malformed(path.to_path_buf()))
}
