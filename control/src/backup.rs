//! `upgate backup` and `upgate restore`: a consistent copy of a control plane's data
//! directory in one file, encrypted with the operator's passphrase (`crypt`).
//!
//! What a backup holds, as a tar archive inside the encryption:
//!
//! | entry | what |
//! | --- | --- |
//! | `manifest.json` | format version, when, which upgate, counts, the store's next id |
//! | `store/<tree>` | every entry of one tree of the metadata store, copied under the store's write lock |
//! | `data/keys/...`, `data/internal/...`, `data/tls/...` | the instance keys and certificates (link, storage, attestation keys; the internal API's CA) |
//! | `objects/<file id>` | with local storage, each recorded file's sealed object (still sealed) |
//!
//! What it leaves out on purpose: `keys/accounts/`, the per-account keys. A shredded
//! account must stay unreadable in every backup made before its deletion, so those keys
//! are kept only in the live data directory (and its mirror): a restore takes them from
//! there (`--keyring`). See docs/backup.md.

mod crypt;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use upgate_gateway::storage::{ObjectKey, ObjectStore};

use crate::account_keys::{account_key_dir, is_account_key};
use crate::db::{Kv, Op, SledKv, Tree};
use crate::model::FileRecord;
use crate::service::Service;
pub use crypt::{CryptError, MIN_PASSPHRASE};

const FORMAT: u32 = 1;
/// Data-directory subdirectories a backup carries (besides the store).
const DATA_DIRS: [&str; 3] = ["keys", "internal", "tls"];

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Crypt(#[from] CryptError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> BackupError {
    BackupError::Failed(e.to_string())
}

impl From<std::io::Error> for BackupError {
    fn from(e: std::io::Error) -> BackupError {
        failed(e)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    created_at: u64,
    upgate: String,
    next_id: u64,
    files: usize,
    objects: usize,
}

/// What a backup wrote.
#[derive(Debug, Serialize)]
pub struct Written {
    pub files: usize,
    /// Sealed objects in the file (local storage only; with S3 they stay in the bucket).
    pub objects: usize,
    pub bytes: u64,
}

/// Writes a backup of the running (or stopped) control plane to `to`, which must not exist.
/// The store is copied in one instant; objects are read after, and a file deleted in
/// between (retention) is left out with its record kept (the restore drops such records).
pub async fn backup(svc: &Service, to: &Path, passphrase: &str) -> Result<Written, BackupError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(CryptError::WeakPassphrase.into());
    }
    let partial = partial_path(to)?;
    let snapshot = svc.repos.lifecycle.snapshot().await.map_err(failed)?;
    let files: Vec<FileRecord> = snapshot
        .trees
        .iter()
        .filter(|(t, _)| *t == Tree::Files)
        .flat_map(|(_, entries)| entries.iter())
        .map(|(_, v)| crate::repo::sled_keys::decode(Tree::Files, v).map_err(failed))
        .collect::<Result<_, _>>()?;
    let objects = svc.backed_up_objects();
    let data_dir = svc.keys.data_dir().to_path_buf();
    let passphrase = zeroize::Zeroizing::new(passphrase.to_string());
    let handle = tokio::runtime::Handle::current();
    let to = to.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let result = (|| {
            let file = create_private(&partial)?;
            let mut tar = tar::Builder::new(crypt::SealWriter::new(file, &passphrase)?);
            let mut objects_written = 0;
            let mut entries = Vec::new();
            if let Some(store) = &objects {
                for f in &files {
                    let Some(file) = ObjectKey::parse(&f.id) else { continue };
                    let sidecars = f.previews.then_some(upgate_gateway::storage::Sidecar::ALL);
                    let keys = std::iter::once(file.clone()).chain(sidecars.into_iter().flatten().map(|s| file.sidecar(s)));
                    for key in keys {
                        match handle.block_on(store.len(&key)) {
                            Ok(len) => entries.push((key, len)),
                            Err(e) => tracing::warn!(error = %e, "an object was gone when the backup came to it; left out"),
                        }
                    }
                }
            }
            let manifest = Manifest {
                format: FORMAT,
                created_at: upgate_gateway::sys::now(),
                upgate: env!("CARGO_PKG_VERSION").into(),
                next_id: snapshot.next_id,
                files: files.len(),
                objects: entries.len(),
            };
            append(&mut tar, "manifest.json", &serde_json::to_vec(&manifest).map_err(failed)?)?;
            for (tree, rows) in &snapshot.trees {
                let mut bytes = Vec::new();
                for (k, v) in rows {
                    for part in [k, v] {
                        bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
                        bytes.extend_from_slice(part);
                    }
                }
                append(&mut tar, &format!("store/{}", tree.name()), &bytes)?;
            }
            for dir in DATA_DIRS {
                append_dir(&mut tar, &data_dir, Path::new(dir))?;
            }
            if let Some(store) = &objects {
                for (key, len) in entries {
                    let reader = ObjectReader {
                        store: store.clone(),
                        handle: handle.clone(),
                        key: key.clone(),
                        offset: 0,
                        len,
                    };
                    let mut header = entry_header(len);
                    tar.append_data(&mut header, format!("objects/{}", key.as_str()), reader)?;
                    objects_written += 1;
                }
            }
            let file = tar.into_inner()?.finish()?;
            file.sync_all()?;
            let bytes = file.metadata()?.len();
            // Under its real name only when whole: a cut-off backup never looks like one.
            std::fs::hard_link(&partial, &to)?;
            sync_parent(&to)?;
            Ok(Written {
                files: files.len(),
                objects: objects_written,
                bytes,
            })
        })();
        let _ = std::fs::remove_file(&partial);
        result
    })
    .await
    .map_err(failed)?
}

fn partial_path(to: &Path) -> Result<PathBuf, BackupError> {
    if to.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists; a backup never overwrites a file",
            to.display()
        )));
    }
    let name = to
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| BackupError::Refused("--to names no file".into()))?;
    Ok(to.with_file_name(format!(".{name}.partial")))
}

fn create_private(path: &Path) -> Result<std::fs::File, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    Ok(std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?)
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(parent)?.sync_all()
}

fn entry_header(len: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(0o600);
    header.set_mtime(upgate_gateway::sys::now());
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<(), BackupError> {
    let mut header = entry_header(bytes.len() as u64);
    tar.append_data(&mut header, name, bytes)?;
    Ok(())
}

/// Every regular file under `root/rel`, as `data/rel/...`; the account keys excepted.
fn append_dir<W: Write>(tar: &mut tar::Builder<W>, root: &Path, rel: &Path) -> Result<(), BackupError> {
    let dir = root.join(rel);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(()); // not every data directory has every subdirectory
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let rel = rel.join(&name);
        let kind = entry.file_type()?;
        if rel == Path::new("keys/accounts") || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if kind.is_dir() {
            append_dir(tar, root, &rel)?;
        } else if kind.is_file() {
            let bytes = zeroize::Zeroizing::new(std::fs::read(entry.path())?);
            append(tar, &format!("data/{}", rel.display()), &bytes)?;
        }
    }
    Ok(())
}

/// An object read in pieces from the store, for a synchronous writer.
struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    handle: tokio::runtime::Handle,
    key: ObjectKey,
    offset: u64,
    len: u64,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min(1 << 20).min((self.len - self.offset) as usize);
        if want == 0 {
            return Ok(0);
        }
        let piece = self
            .handle
            .block_on(self.store.read_at(&self.key, self.offset, want))
            .map_err(std::io::Error::other)?;
        if piece.is_empty() {
            return Err(std::io::Error::other("the object ended early"));
        }
        buf[..piece.len()].copy_from_slice(&piece);
        self.offset += piece.len() as u64;
        Ok(piece.len())
    }
}

/// What a restore rebuilt.
#[derive(Debug, Serialize)]
pub struct Restored {
    pub files: usize,
    pub objects: usize,
    /// Account keys taken from `--keyring`.
    pub account_keys: usize,
    /// Files whose account key is not in the keyring: shredded (their account was deleted
    /// after the backup), or the keyring given was not the right one.
    pub unreadable: usize,
}

/// Rebuilds a data directory from a backup. `data_dir` must not exist or be empty;
/// `objects_dir` is where local storage keeps objects (`None` with S3: they are in the
/// bucket); `keyring` is a copy of the live `keys/accounts` directory.
pub async fn restore(
    from: &Path,
    passphrase: &str,
    data_dir: &Path,
    objects_dir: Option<&Path>,
    keyring: Option<&Path>,
) -> Result<Restored, BackupError> {
    if std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(BackupError::Refused(format!(
            "{} is not empty; restore into a new directory",
            data_dir.display()
        )));
    }
    let file =
        std::fs::File::open(from).map_err(|e| BackupError::Refused(format!("{}: {e}", from.display())))?;
    let reader = crypt::open(file, passphrase)?;
    let objects: Option<Arc<dyn ObjectStore>> = match objects_dir {
        Some(dir) => Some(Arc::new(upgate_gateway::storage::LocalStore::open(dir)?)),
        None => None,
    };
    let (data_dir, keyring) = (data_dir.to_path_buf(), keyring.map(Path::to_path_buf));
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || restore_from(reader, &data_dir, objects, keyring.as_deref(), &handle))
        .await
        .map_err(failed)?
}

fn restore_from(
    reader: impl Read,
    data_dir: &Path,
    objects: Option<Arc<dyn ObjectStore>>,
    keyring: Option<&Path>,
    handle: &tokio::runtime::Handle,
) -> Result<Restored, BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    let db = SledKv::open(&data_dir.join("meta")).map_err(failed)?;
    let mut archive = tar::Archive::new(reader);
    let mut manifest: Option<Manifest> = None;
    let mut restored_objects = 0;
    let scratch = data_dir.join(".restore");
    std::fs::DirBuilder::new().mode(0o700).create(&scratch)?;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if name == "manifest.json" {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            let m: Manifest = serde_json::from_slice(&bytes).map_err(failed)?;
            if m.format != FORMAT {
                return Err(BackupError::Refused(format!(
                    "backup format {} (upgate {}): this upgate reads format {FORMAT}",
                    m.format, m.upgate
                )));
            }
            manifest = Some(m);
        } else if manifest.is_none() {
            return Err(BackupError::Failed(
                "the backup does not start with its manifest".into(),
            ));
        } else if let Some(tree) = name.strip_prefix("store/") {
            let tree = Tree::ALL
                .into_iter()
                .find(|t| t.name() == tree)
                .ok_or_else(|| BackupError::Failed(format!("unknown store tree {tree}")))?;
            restore_tree(&db, tree, &mut entry)?;
        } else if let Some(rel) = name.strip_prefix("data/") {
            restore_data_file(data_dir, rel, &mut entry)?;
        } else if let Some(id) = name.strip_prefix("objects/") {
            let key = ObjectKey::parse_any(id)
                .ok_or_else(|| BackupError::Failed(format!("bad object name {id}")))?;
            if let Some(store) = &objects {
                let tmp = scratch.join(id);
                let mut out = create_private(&tmp)?;
                std::io::copy(&mut entry, &mut out)?;
                out.sync_all()?;
                handle.block_on(store.commit(&key, &tmp)).map_err(failed)?;
                restored_objects += 1;
            }
        } else {
            return Err(BackupError::Failed(format!("unexpected entry {name}")));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let manifest = manifest.ok_or_else(|| BackupError::Failed("the backup is empty".into()))?;
    db.advance_ids_past(manifest.next_id).map_err(failed)?;
    let account_keys = match keyring {
        Some(dir) => copy_keyring(dir, &account_key_dir(data_dir))?,
        None => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(account_key_dir(data_dir))?;
            0
        }
    };
    let keys = crate::account_keys::AccountKeys::open(data_dir).map_err(failed)?;
    let mut files = 0;
    let mut unreadable = 0;
    for (_, v) in db.scan_prefix(Tree::Files, b"").map_err(failed)? {
        let f: FileRecord = crate::repo::sled_keys::decode(Tree::Files, &v).map_err(failed)?;
        files += 1;
        if is_account_key(f.key_id) && keys.secret(f.key_id).is_none() {
            unreadable += 1;
        }
    }
    db.durable().wait().map_err(failed)?;
    Ok(Restored {
        files,
        objects: restored_objects,
        account_keys,
        unreadable,
    })
}

fn restore_tree(db: &SledKv, tree: Tree, entry: &mut impl Read) -> Result<(), BackupError> {
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    fn take(rest: &mut &[u8], tree: Tree) -> Result<Vec<u8>, BackupError> {
        let damaged = || BackupError::Failed(format!("store tree {} is damaged", tree.name()));
        let len = rest.get(..4).ok_or_else(damaged)?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let part = rest.get(4..4 + len).ok_or_else(damaged)?.to_vec();
        *rest = &rest[4 + len..];
        Ok(part)
    }
    let mut rest = &bytes[..];
    let mut ops = Vec::new();
    while !rest.is_empty() {
        let key = take(&mut rest, tree)?;
        let value = take(&mut rest, tree)?;
        ops.push(Op::Put(tree, key, value));
        if ops.len() == 1000 {
            db.write(std::mem::take(&mut ops)).map_err(failed)?;
        }
    }
    db.write(ops).map_err(failed)?;
    Ok(())
}

/// A file of the data directory: only under the directories a backup carries, never
/// outside them (`..`), never an account key.
fn restore_data_file(data_dir: &Path, rel: &str, entry: &mut impl Read) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    let path = Path::new(rel);
    let plain = path
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    let top = path.components().next().and_then(|c| c.as_os_str().to_str());
    if !plain || !top.is_some_and(|t| DATA_DIRS.contains(&t)) || path.starts_with("keys/accounts") {
        return Err(BackupError::Failed(format!("unexpected entry data/{rel}")));
    }
    let target = data_dir.join(path);
    if let Some(parent) = target.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    entry.read_to_end(&mut bytes)?;
    // Public halves and certificates are readable by others, as upgate writes them.
    let public = rel.ends_with(".pub") || rel.ends_with(".crt");
    upgate_gateway::tls::write_new(&target, &bytes, if public { 0o644 } else { 0o600 })?;
    Ok(())
}

fn copy_keyring(from: &Path, to: &Path) -> Result<usize, BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)?;
    let mut copied = 0;
    let entries = std::fs::read_dir(from)
        .map_err(|e| BackupError::Refused(format!("--keyring {}: {e}", from.display())))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".secret") {
            continue;
        }
        let bytes = zeroize::Zeroizing::new(std::fs::read(entry.path())?);
        upgate_gateway::tls::write_private(&to.join(name), &bytes)?;
        copied += 1;
    }
    Ok(copied)
}
