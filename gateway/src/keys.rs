//! Key files in the data directory, as both planes read them. The gateway loads only what
//! lets it verify links and *seal*: link keys and the storage public key, never the secret.

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

/// Loads every link key (old links stay valid after rotation) and the newest storage public key.
pub fn load_gateway_keys(data_dir: &Path) -> Result<GatewayKeys, KeyError> {
    let dir = key_dir(data_dir);
    let mut links = Vec::new();
    for (id, path) in list_keys(&dir, LINK_KEY_PREFIX, ".key")? {
        let id = u8::try_from(id).map_err(|_| KeyError::Malformed(path.clone()))?;
        links.push(LinkKey::new(id, &read_key32(&path)?));
    }
    let current = links.last().map(LinkKey::id).ok_or(KeyError::Missing("link"))?;
    let links = LinkKeyring::new(links, current).map_err(|_| KeyError::Malformed(dir.clone()))?;
    let (key_id, path) = list_keys(&dir, STORAGE_PUB_PREFIX, ".pub")?
        .pop()
        .ok_or(KeyError::Missing("storage"))?;
    let storage = RecipientPublicKey {
        key_id,
        bytes: read_key32(&path)?,
    };
    Ok(GatewayKeys { links, storage })
}
