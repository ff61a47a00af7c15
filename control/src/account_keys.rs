//! Per-account storage keys: what makes crypto-shredding possible.
//!
//! Gateways seal each file for the X25519 key of the account its link belongs to (the
//! claim hands them its public half). Only these secrets open the account's files, so
//! destroying them ([`AccountKeys::shred`]) makes every copy of those files unreadable:
//! objects left in a bucket's versions or replicas, and the objects in old backups.
//!
//! The secrets live in `data_dir/keys/accounts/<account>.<generation>.<key id>.secret`, one
//! 0600 file each, and nowhere else: backups leave this directory out on purpose
//! (docs/backup.md). The account's highest generation is its current key; older ones stay
//! to open older files until the account's data ends. `upgate keys rotate storage` starts a
//! new generation for every account.
//! Files rather than store records, because a deleted file is gone from the file system,
//! while a deleted sled value lingers in its log until compaction.
//!
//! Account key ids are random in the upper half of `u32`, so they never meet the instance
//! storage keys (ids from 1 up, which still open files sealed before account keys existed)
//! and a shredded id is not handed out again in practice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use upgate_gateway::keys::{key_dir, read_key32, KeyError};
use upgate_gateway::seal::{RecipientPublicKey, RecipientSecretKey};
use upgate_gateway::tls::write_private;

/// The lowest account key id; instance storage keys stay below it.
pub const FIRST_ACCOUNT_KEY_ID: u32 = 1 << 31;

/// Whether a header's key id names an account key (else an instance storage key).
pub fn is_account_key(key_id: u32) -> bool {
    key_id >= FIRST_ACCOUNT_KEY_ID
}

/// The directory the account keys live in.
pub fn account_key_dir(data_dir: &Path) -> PathBuf {
    key_dir(data_dir).join("accounts")
}

struct Held {
    account: String,
    generation: u32,
    secret: RecipientSecretKey,
}

#[derive(Default)]
struct Ring {
    by_id: HashMap<u32, Held>,
    /// The key new files of each account are sealed for: its highest generation.
    current: HashMap<String, u32>,
}

pub struct AccountKeys {
    dir: PathBuf,
    ring: RwLock<Ring>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `<account>.<generation>.<id>.secret` -> (account, generation, id).
fn parse_name(name: &str) -> Option<(&str, u32, u32)> {
    let stem = name.strip_suffix(".secret")?;
    let mut parts = stem.split('.');
    let (account, generation, id) = (parts.next()?, parts.next()?, parts.next()?);
    let (generation, id): (u32, u32) = (generation.parse().ok()?, id.parse().ok()?);
    (parts.next().is_none() && is_account_key(id) && crate::ids::is_own_id(account, "acc"))
        .then_some((account, generation, id))
}

fn file_name(account: &str, generation: u32, id: u32) -> String {
    format!("{account}.{generation}.{id}.secret")
}

impl AccountKeys {
    /// Loads every account key in `data_dir/keys/accounts`, creating the directory.
    pub fn open(data_dir: &Path) -> Result<AccountKeys, KeyError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = account_key_dir(data_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        let mut ring = Ring::default();
        let mut found: Vec<(String, u32, u32, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue; // a temporary left by a crash mid-write: never a whole key
            }
            let (account, generation, id) =
                parse_name(name).ok_or_else(|| KeyError::Malformed(entry.path()))?;
            found.push((account.to_string(), generation, id, entry.path()));
        }
        // Lowest generation first, so each account's last one inserted is its current key.
        found.sort_by_key(|(account, generation, _, _)| (account.clone(), *generation));
        for (account, generation, id, path) in found {
            let secret = RecipientSecretKey::from_bytes(id, read_key32(&path)?);
            ring.current.insert(account.clone(), id);
            ring.by_id.insert(
                id,
                Held {
                    account,
                    generation,
                    secret,
                },
            );
        }
        Ok(AccountKeys {
            dir,
            ring: RwLock::new(ring),
        })
    }

    /// The key the account's new files are sealed for, made on the account's first upload.
    pub fn recipient(&self, account: &str) -> Result<RecipientPublicKey, KeyError> {
        if let Some(key) = self.current_public(account) {
            return Ok(key);
        }
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = ring.current.get(account) {
            return Ok(ring.by_id[id].secret.public());
        }
        self.create(&mut ring, account, 1)
    }

    /// A new current key for every account that has one; older ones stay to open older
    /// files. Returns how many accounts got one.
    pub fn rotate_all(&self) -> Result<usize, KeyError> {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        let current: Vec<(String, u32)> = ring
            .current
            .iter()
            .map(|(account, id)| (account.clone(), ring.by_id[id].generation))
            .collect();
        for (account, generation) in &current {
            self.create(&mut ring, account, generation + 1)?;
        }
        Ok(current.len())
    }

    /// Makes, writes and holds a new current key of `account`.
    fn create(
        &self,
        ring: &mut Ring,
        account: &str,
        generation: u32,
    ) -> Result<RecipientPublicKey, KeyError> {
        let id = loop {
            let bytes: [u8; 4] = upgate_gateway::sys::random().map_err(|_| KeyError::Missing("random"))?;
            let id = u32::from_be_bytes(bytes) | FIRST_ACCOUNT_KEY_ID;
            if !ring.by_id.contains_key(&id) {
                break id;
            }
        };
        let secret = RecipientSecretKey::try_generate(id).map_err(|_| KeyError::Missing("random"))?;
        let path = self.dir.join(file_name(account, generation, id));
        let bytes = zeroize::Zeroizing::new(secret.to_bytes());
        write_private(&path, &*bytes).map_err(io(&path))?;
        let public = secret.public();
        ring.current.insert(account.to_string(), id);
        ring.by_id.insert(
            id,
            Held {
                account: account.to_string(),
                generation,
                secret,
            },
        );
        Ok(public)
    }

    fn current_public(&self, account: &str) -> Option<RecipientPublicKey> {
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        let id = ring.current.get(account)?;
        Some(ring.by_id[id].secret.public())
    }

    /// The secret of an account key, if it still exists.
    pub fn secret(&self, key_id: u32) -> Option<RecipientSecretKey> {
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        ring.by_id.get(&key_id).map(|h| h.secret.clone())
    }

    /// Which account a key belongs to.
    pub fn owner(&self, key_id: u32) -> Option<String> {
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        ring.by_id.get(&key_id).map(|h| h.account.clone())
    }

    /// Whether the account has a key now.
    pub fn has_key(&self, account: &str) -> bool {
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        ring.current.contains_key(account)
    }

    /// Destroys every key of the account: each file is overwritten with zeros, synced,
    /// unlinked, and the directory synced, before this returns. Files sealed for them can
    /// never be opened again, wherever a copy of them is. Returns how many keys went.
    pub fn shred(&self, account: &str) -> Result<usize, KeyError> {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        let ids: Vec<(u32, u32)> = ring
            .by_id
            .iter()
            .filter(|(_, h)| h.account == account)
            .map(|(id, h)| (*id, h.generation))
            .collect();
        for (id, generation) in &ids {
            destroy(&self.dir.join(file_name(account, *generation, *id)))?;
            ring.by_id.remove(id);
        }
        ring.current.remove(account);
        if !ids.is_empty() {
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir))?;
        }
        Ok(ids.len())
    }
}

/// Overwrites a key file in place and removes it. The overwrite is for file systems that
/// leave an unlinked file's blocks readable; on a copy-on-write or flash device it is no
/// guarantee, which is why the keys directory belongs on an encrypted volume (docs/backup.md).
fn destroy(path: &Path) -> Result<(), KeyError> {
    use std::io::Write;
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(mut f) => {
            f.write_all(&[0u8; 32])
                .and_then(|()| f.sync_all())
                .map_err(io(path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    }
    std::fs::remove_file(path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use upgate_gateway::seal::{unwrap_key, Header, Sealer};

    const A: &str = "acc_00112233445566aa";
    const B: &str = "acc_00112233445566bb";

    #[test]
    fn an_account_gets_one_key_that_survives_a_restart_and_opens_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let keys = AccountKeys::open(dir.path()).unwrap();
        let a = keys.recipient(A).unwrap();
        assert!(is_account_key(a.key_id));
        assert_eq!(keys.recipient(A).unwrap(), a, "the same key until shredded");
        let b = keys.recipient(B).unwrap();
        assert_ne!(a, b);
        assert_eq!(keys.owner(a.key_id).as_deref(), Some(A));

        let reopened = AccountKeys::open(dir.path()).unwrap();
        assert_eq!(reopened.recipient(A).unwrap(), a);
        let sealer = Sealer::new(&a, "f_00112233445566778899aabbccddeeff").unwrap();
        let header = Header::parse(sealer.header()).unwrap();
        let secret = reopened.secret(a.key_id).unwrap();
        assert!(unwrap_key(&header, &secret).is_ok());
        let other = reopened.secret(b.key_id).unwrap();
        assert!(unwrap_key(&header, &other).is_err());
    }

    #[test]
    fn shredding_destroys_the_account_keys_only_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let keys = AccountKeys::open(dir.path()).unwrap();
        let a = keys.recipient(A).unwrap();
        let b = keys.recipient(B).unwrap();
        assert_eq!(keys.shred(A).unwrap(), 1);
        assert!(keys.secret(a.key_id).is_none());
        assert!(!keys.has_key(A));
        assert!(keys.secret(b.key_id).is_some());
        let reopened = AccountKeys::open(dir.path()).unwrap();
        assert!(reopened.secret(a.key_id).is_none(), "gone from disk too");
        assert!(reopened.secret(b.key_id).is_some());
        let names: Vec<String> = std::fs::read_dir(account_key_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![format!("{B}.1.{}.secret", b.key_id)]);
        // The next upload of the account gets a new key, not the old one back.
        let again = keys.recipient(A).unwrap();
        assert_ne!(again.key_id, a.key_id);
        assert_eq!(keys.shred("acc_0000000000000000").unwrap(), 0);
    }

    #[test]
    fn rotation_gives_every_account_a_new_current_key_and_keeps_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let keys = AccountKeys::open(dir.path()).unwrap();
        let a1 = keys.recipient(A).unwrap();
        let b1 = keys.recipient(B).unwrap();
        assert_eq!(keys.rotate_all().unwrap(), 2);
        let a2 = keys.recipient(A).unwrap();
        assert_ne!(a2, a1);
        assert_ne!(keys.recipient(B).unwrap(), b1);
        assert!(
            keys.secret(a1.key_id).is_some(),
            "the old key still opens old files"
        );
        // The current key survives a restart: the generation decides, not the file's age.
        keys.rotate_all().unwrap();
        let a3 = keys.recipient(A).unwrap();
        let reopened = AccountKeys::open(dir.path()).unwrap();
        assert_eq!(reopened.recipient(A).unwrap(), a3);
        assert_eq!(reopened.shred(A).unwrap(), 3, "every generation goes");
    }

    #[test]
    fn stray_files_are_refused_and_crash_temporaries_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = account_key_dir(dir.path());
        std::fs::create_dir_all(&keys_dir).unwrap();
        std::fs::write(
            keys_dir.join(".acc_00112233445566aa.1.2147483649.secret.tmp"),
            b"x",
        )
        .unwrap();
        assert!(AccountKeys::open(dir.path()).is_ok());
        std::fs::write(keys_dir.join("acc_00112233445566aa.1.5.secret"), [0u8; 32]).unwrap();
        assert!(matches!(
            AccountKeys::open(dir.path()),
            Err(KeyError::Malformed(_))
        ));
    }
}
