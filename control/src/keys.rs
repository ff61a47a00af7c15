//! The control plane's key material: generated on first start, loaded on every start,
//! rotated and retired by the operator (`upgate keys ...`). It holds the storage secret
//! keys; gateways get only the public half, over the internal API (see gateway::keys).
//!
//! On disk, one file per key in `data_dir/keys`, named by kind and id; the newest id of a
//! kind is the current key. Rotation writes a new file and reloads; nothing is rewritten,
//! so a crash mid-rotation leaves either the old set or the new one.

use std::collections::HashMap;
use std::path::Path;

use upgate_gateway::control_link::{KeySet, WireLinkKey};
use upgate_gateway::keys::StoragePublic;
use upgate_gateway::keys::{key_dir, list_keys, read_key32, KeyError, LINK_KEY_PREFIX, STORAGE_PUB_PREFIX};
use upgate_gateway::seal::RecipientSecretKey;
use upgate_gateway::tls::{write_new, write_private};
use upgate_gateway::token::{LinkKey, LinkKeyring};

pub struct ControlKeys {
    /// Ed25519 keys that sign scan attestations, oldest first; the newest signs.
    pub attestation: Vec<crate::attest::AttestKey>,
    pub links: LinkKeyring,
    /// The link keys' bytes, for gateways (over the internal API) to verify links with.
    pub link_secrets: Vec<WireLinkKey>,
    /// Every storage key by id, so files sealed before a rotation still open.
    pub storage: HashMap<u32, RecipientSecretKey>,
}

/// Attestation keys: `attest-{id}.seed`, the Ed25519 seed (the public key derives from it).
const ATTEST_PREFIX: &str = "attest-";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the first link key and storage key pair if the key directory has none.
pub fn ensure_keys(data_dir: &Path) -> Result<(), KeyError> {
    let dir = key_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    if list_keys(&dir, LINK_KEY_PREFIX, ".key")?.is_empty() {
        let secret: [u8; 32] = upgate_gateway::sys::random().map_err(|_| KeyError::Missing("random"))?;
        let path = dir.join(format!("{LINK_KEY_PREFIX}1.key"));
        write_private(&path, &secret).map_err(io(&path))?;
    }
    if list_keys(&dir, ATTEST_PREFIX, ".seed")?.is_empty() {
        let seed: zeroize::Zeroizing<[u8; 32]> =
            zeroize::Zeroizing::new(upgate_gateway::sys::random().map_err(|_| KeyError::Missing("random"))?);
        let path = dir.join(format!("{ATTEST_PREFIX}1.seed"));
        write_private(&path, &*seed).map_err(io(&path))?;
    }
    if list_keys(&dir, STORAGE_PUB_PREFIX, ".secret")?.is_empty() {
        let key = RecipientSecretKey::generate(1);
        let secret_path = dir.join(format!("{STORAGE_PUB_PREFIX}1.secret"));
        write_private(&secret_path, &key.to_bytes()).map_err(io(&secret_path))?;
        let pub_path = dir.join(format!("{STORAGE_PUB_PREFIX}1.pub"));
        let _ = std::fs::remove_file(&pub_path);
        write_new(&pub_path, &key.public().bytes, 0o644).map_err(io(&pub_path))?;
    }
    Ok(())
}

pub fn load_control_keys(data_dir: &Path) -> Result<ControlKeys, KeyError> {
    let dir = key_dir(data_dir);
    let mut link_secrets = Vec::new();
    for (id, path) in list_keys(&dir, LINK_KEY_PREFIX, ".key")? {
        let id = u8::try_from(id).map_err(|_| KeyError::Malformed(path.clone()))?;
        link_secrets.push(WireLinkKey {
            id,
            secret: read_key32(&path)?,
        });
    }
    // Every link key verifies (old links stay valid after rotation); the newest signs.
    let current = link_secrets
        .last()
        .map(|k| k.id)
        .ok_or(KeyError::Missing("link"))?;
    let links = LinkKeyring::new(
        link_secrets
            .iter()
            .map(|k| LinkKey::new(k.id, &k.secret))
            .collect(),
        current,
    )
    .map_err(|_| KeyError::Malformed(dir.clone()))?;
    let mut storage = HashMap::new();
    for (id, path) in list_keys(&dir, STORAGE_PUB_PREFIX, ".secret")? {
        storage.insert(id, RecipientSecretKey::from_bytes(id, read_key32(&path)?));
    }
    if storage.is_empty() {
        return Err(KeyError::Missing("storage secret"));
    }
    let mut attestation = Vec::new();
    for (id, path) in list_keys(&dir, ATTEST_PREFIX, ".seed")? {
        let seed = zeroize::Zeroizing::new(read_key32(&path)?);
        attestation.push(
            crate::attest::AttestKey::from_seed(id, &seed)
                .ok_or_else(|| KeyError::Malformed(path.clone()))?,
        );
    }
    if attestation.is_empty() {
        return Err(KeyError::Missing("attestation"));
    }
    Ok(ControlKeys {
        attestation,
        links,
        link_secrets,
        storage,
    })
}

impl ControlKeys {
    /// What a gateway gets: link keys and storage *public* keys, derived from the secrets
    /// here (never typed in by hand), and never a secret that opens a file.
    pub fn gateway_set(&self) -> KeySet {
        let mut storage: Vec<StoragePublic> = self
            .storage
            .values()
            .map(|secret| {
                let public = secret.public();
                StoragePublic {
                    key_id: public.key_id,
                    public: public.bytes,
                }
            })
            .collect();
        storage.sort_by_key(|k| k.key_id);
        KeySet {
            link_keys: self.link_secrets.clone(),
            current_link: self.links.current().id(),
            current_storage: storage.last().map_or(0, |k| k.key_id),
            storage,
        }
    }
}

#[cfg(test)]
mod tests {
    use upgate_gateway::keys::GatewayKeys;
    use upgate_gateway::seal::{unwrap_key, Header, Opener, Sealer};

    use super::*;

    /// Seals with exactly what a gateway is given, and returns (sealed bytes, header).
    fn seal_as_gateway(data_dir: &Path, plaintext: &[u8]) -> (Vec<u8>, Header) {
        let gw = GatewayKeys::from_set(&load_control_keys(data_dir).unwrap().gateway_set()).unwrap();
        let mut sealer = Sealer::new(&gw.storage, "f_00112233445566778899aabbccddeeff").unwrap();
        let mut out = sealer.header().to_vec();
        let header = Header::parse(sealer.header()).unwrap();
        sealer.push(plaintext, &mut out);
        let _data_key_dropped_after_the_upload = sealer.finish(&mut out);
        (out, header)
    }

    #[test]
    fn the_gateways_key_material_cannot_open_a_stored_file() {
        let dir = tempfile::tempdir().unwrap();
        ensure_keys(dir.path()).unwrap();
        let (sealed, header) = seal_as_gateway(dir.path(), b"a signed contract");

        // Every 32-byte value the gateway can read (link keys, the storage public key),
        // tried as the X25519 secret, fails to unwrap the file's key.
        let keys = key_dir(dir.path());
        let mut gateway_files = list_keys(&keys, LINK_KEY_PREFIX, ".key").unwrap();
        gateway_files.extend(list_keys(&keys, STORAGE_PUB_PREFIX, ".pub").unwrap());
        assert_eq!(gateway_files.len(), 2);
        for (_, path) in gateway_files {
            let candidate = RecipientSecretKey::from_bytes(header.key_id(), read_key32(&path).unwrap());
            assert!(
                unwrap_key(&header, &candidate).is_err(),
                "{} opened a file",
                path.display()
            );
        }

        // The control plane's secret opens it.
        let control = load_control_keys(dir.path()).unwrap();
        let key = unwrap_key(&header, &control.storage[&header.key_id()]).unwrap();
        let opener = Opener::new(header.clone(), key);
        let count = opener.segment_count(sealed.len() as u64).unwrap();
        let start = opener.segment_offset(0) as usize;
        assert_eq!(count, 1);
        assert_eq!(
            opener.open_segment(0, true, &sealed[start..]).unwrap(),
            b"a signed contract"
        );
    }

    #[test]
    fn keys_are_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        ensure_keys(dir.path()).unwrap();
        let first = std::fs::read(key_dir(dir.path()).join("link-1.key")).unwrap();
        ensure_keys(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(key_dir(dir.path()).join("link-1.key")).unwrap(),
            first,
            "a restart keeps the keys"
        );
        for name in ["link-1.key", "storage-1.secret"] {
            let mode = std::fs::metadata(key_dir(dir.path()).join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{name} is readable by others");
        }
    }
}

/// What kind of key an operator command is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// HMAC keys that sign link tokens.
    Link,
    /// X25519 key pairs that files are sealed for.
    Storage,
    /// Ed25519 keys that sign scan attestations.
    Attestation,
}

impl KeyKind {
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "link" => Some(KeyKind::Link),
            "storage" => Some(KeyKind::Storage),
            "attestation" => Some(KeyKind::Attestation),
            _ => None,
        }
    }
}

/// One key as `upgate keys list` shows it (never its bytes).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub kind: KeyKind,
    pub id: u32,
    /// Seconds since the epoch when the key file was written.
    pub created_at: u64,
    /// `current` (signs or seals new things) or `old` (still verifies or opens).
    pub state: &'static str,
}

fn created(path: &Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Every key, link keys first, oldest first.
pub fn list(data_dir: &Path) -> Result<Vec<KeyInfo>, KeyError> {
    let dir = key_dir(data_dir);
    let mut out = Vec::new();
    for (kind, suffix) in [
        (KeyKind::Link, ".key"),
        (KeyKind::Storage, ".secret"),
        (KeyKind::Attestation, ".seed"),
    ] {
        let prefix = match kind {
            KeyKind::Link => LINK_KEY_PREFIX,
            KeyKind::Storage => STORAGE_PUB_PREFIX,
            KeyKind::Attestation => ATTEST_PREFIX,
        };
        let found = list_keys(&dir, prefix, suffix)?;
        let newest = found.last().map(|(id, _)| *id);
        for (id, path) in found {
            out.push(KeyInfo {
                kind,
                id,
                created_at: created(&path),
                state: if Some(id) == newest { "current" } else { "old" },
            });
        }
    }
    Ok(out)
}

/// Makes a new current key of `kind` with the next id; returns the id.
pub fn rotate(data_dir: &Path, kind: KeyKind) -> Result<u32, String> {
    let dir = key_dir(data_dir);
    match kind {
        KeyKind::Link => {
            let last = list_keys(&dir, LINK_KEY_PREFIX, ".key").map_err(|e| e.to_string())?;
            let next = last.last().map_or(1, |(id, _)| id + 1);
            // Link tokens carry the key id in one byte.
            if next > u32::from(u8::MAX) {
                return Err(
                    "link key ids are used up (255): retire old ones first is not enough, \
                    ids are never reused; see docs/keys.md"
                        .into(),
                );
            }
            let secret: zeroize::Zeroizing<[u8; 32]> =
                zeroize::Zeroizing::new(upgate_gateway::sys::random().map_err(|e| e.to_string())?);
            let path = dir.join(format!("{LINK_KEY_PREFIX}{next}.key"));
            write_private(&path, &*secret).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(next)
        }
        KeyKind::Attestation => {
            let last = list_keys(&dir, ATTEST_PREFIX, ".seed").map_err(|e| e.to_string())?;
            let next = last.last().map_or(1, |(id, _)| id + 1);
            let seed: zeroize::Zeroizing<[u8; 32]> =
                zeroize::Zeroizing::new(upgate_gateway::sys::random().map_err(|e| e.to_string())?);
            let path = dir.join(format!("{ATTEST_PREFIX}{next}.seed"));
            write_private(&path, &*seed).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(next)
        }
        KeyKind::Storage => {
            let last = list_keys(&dir, STORAGE_PUB_PREFIX, ".secret").map_err(|e| e.to_string())?;
            let next = last.last().map_or(1, |(id, _)| id + 1);
            let key = RecipientSecretKey::generate(next);
            // The secret decides which keys exist (gateways get public halves derived from
            // the secrets); the .pub file beside it is for people and tools. A .pub left
            // without its secret by a crash is stale: it goes before the new pair is written.
            let pub_path = dir.join(format!("{STORAGE_PUB_PREFIX}{next}.pub"));
            let _ = std::fs::remove_file(&pub_path);
            let secret_path = dir.join(format!("{STORAGE_PUB_PREFIX}{next}.secret"));
            write_private(&secret_path, &key.to_bytes())
                .map_err(|e| format!("{}: {e}", secret_path.display()))?;
            write_new(&pub_path, &key.public().bytes, 0o644)
                .map_err(|e| format!("{}: {e}", pub_path.display()))?;
            Ok(next)
        }
    }
}

/// Removes an old link key. The caller has checked that no live link uses it.
pub fn retire_link(data_dir: &Path, id: u32) -> Result<(), String> {
    let dir = key_dir(data_dir);
    let keys = list_keys(&dir, LINK_KEY_PREFIX, ".key").map_err(|e| e.to_string())?;
    let Some(newest) = keys.last().map(|(id, _)| *id) else {
        return Err("there are no link keys".into());
    };
    if id == newest {
        return Err(format!("link key {id} is the current key; rotate first"));
    }
    let Some((_, path)) = keys.into_iter().find(|(k, _)| *k == id) else {
        return Err(format!("there is no link key {id}"));
    };
    std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The control plane's keys as they are now, reloaded after a rotation or retirement.
pub struct KeyRing {
    data_dir: std::path::PathBuf,
    current: std::sync::RwLock<std::sync::Arc<ControlKeys>>,
    /// Each account's own storage key (crypto-shredding); changed by uploads and deletions,
    /// never by a reload.
    accounts: crate::account_keys::AccountKeys,
}

impl KeyRing {
    pub fn load(data_dir: &Path) -> Result<KeyRing, KeyError> {
        Ok(KeyRing {
            data_dir: data_dir.to_path_buf(),
            current: std::sync::RwLock::new(std::sync::Arc::new(load_control_keys(data_dir)?)),
            accounts: crate::account_keys::AccountKeys::open(data_dir)?,
        })
    }

    pub fn accounts(&self) -> &crate::account_keys::AccountKeys {
        &self.accounts
    }

    pub fn current(&self) -> std::sync::Arc<ControlKeys> {
        self.current.read().expect("key lock").clone()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Reads the key files again.
    pub fn reload(&self) -> Result<(), KeyError> {
        let keys = load_control_keys(&self.data_dir)?;
        *self.current.write().expect("key lock") = std::sync::Arc::new(keys);
        Ok(())
    }
}
