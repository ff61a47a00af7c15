//! `upgate store migrate --from local --to s3`: copies every sealed object from a local
//! objects directory to the configured bucket, verified, and resumable: an object already
//! in the bucket with the same bytes is skipped; one that differs (a copy cut short by a
//! crash cannot be, S3 objects are whole, but a wrong one can) is copied again. Objects
//! are copied as they are, still sealed: the migration never sees plaintext or keys.
//! The local copies stay until the operator removes them (docs/deployment.md).

use std::path::Path;

use futures_util::TryStreamExt;
use ring::digest;
use upgate_gateway::storage::{ObjectKey, ObjectStore, StorageError};

/// What one run did.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Copied now (absent from the bucket, or different there).
    pub copied: u64,
    /// Already in the bucket with the same bytes.
    pub already_there: u64,
    pub bytes_copied: u64,
}

async fn sha256(store: &dyn ObjectStore, key: &ObjectKey, len: u64) -> Result<Vec<u8>, StorageError> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut stream = store.read_range(key, 0, len).await?;
    while let Some(piece) = stream.try_next().await? {
        ctx.update(&piece);
    }
    Ok(ctx.finish().as_ref().to_vec())
}

/// The SHA-256 of the object in `to`, if it is there with `len` bytes.
async fn existing(to: &dyn ObjectStore, key: &ObjectKey, len: u64) -> Result<Option<Vec<u8>>, String> {
    match to.len(key).await {
        Ok(n) if n == len => sha256(to, key, len).await.map(Some).map_err(|e| e.to_string()),
        Ok(_) | Err(StorageError::NotFound) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Copies every object of `from` into `to`. `scratch` holds one object at a time on its
/// way (it must be on a disk with room for the largest file).
pub async fn migrate(from: &dyn ObjectStore, to: &dyn ObjectStore, scratch: &Path) -> Result<Report, String> {
    let mut report = Report::default();
    let listed = from
        .list()
        .await
        .map_err(|e| format!("listing the source: {e}"))?;
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    for object in listed {
        let key = &object.key;
        let fail = |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", key.as_str());
        let len = from.len(key).await.map_err(|e| fail("reading the source", &e))?;
        let source = sha256(from, key, len)
            .await
            .map_err(|e| fail("reading the source", &e))?;
        if existing(to, key, len).await? == Some(source.clone()) {
            report.already_there += 1;
            continue;
        }
        let spool = scratch.join(format!("migrate-{}", key.as_str()));
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&spool).map_err(|e| fail("scratch file", &e))?;
            let mut stream = from
                .read_range(key, 0, len)
                .await
                .map_err(|e| fail("reading the source", &e))?;
            while let Some(piece) = stream
                .try_next()
                .await
                .map_err(|e| fail("reading the source", &e))?
            {
                file.write_all(&piece).map_err(|e| fail("scratch file", &e))?;
            }
            file.sync_all().map_err(|e| fail("scratch file", &e))?;
        }
        let committed = to.commit(key, &spool).await;
        let _ = std::fs::remove_file(&spool);
        committed.map_err(|e| fail("writing the destination", &e))?;
        // Read back and compare before counting it: "copied" means verified.
        if existing(to, key, len).await? != Some(source) {
            return Err(fail(
                "verifying the copy",
                &"the bytes in the destination differ from the source",
            ));
        }
        report.copied += 1;
        report.bytes_copied += len;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use upgate_gateway::storage::LocalStore;

    fn put(scratch: &Path, key: &ObjectKey, bytes: &[u8]) -> std::path::PathBuf {
        let p = scratch.join(format!("in-{}", key.as_str()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[tokio::test]
    async fn a_second_run_copies_only_what_is_missing_or_different() {
        let dir = tempfile::tempdir().unwrap();
        let from = LocalStore::open(&dir.path().join("a")).unwrap();
        let to = LocalStore::open(&dir.path().join("b")).unwrap();
        let keys: Vec<ObjectKey> = (0..3).map(|_| ObjectKey::random()).collect();
        for (i, key) in keys.iter().enumerate() {
            let spool = put(dir.path(), key, &vec![i as u8 + 1; 1000 * (i + 1)]);
            from.commit(key, &spool).await.unwrap();
        }
        let scratch = dir.path().join("scratch");
        let first = migrate(&from, &to, &scratch).await.unwrap();
        assert_eq!(
            (first.copied, first.already_there, first.bytes_copied),
            (3, 0, 6000)
        );
        // One lost, one damaged (same length, other bytes): both copied again, one kept.
        to.delete(&keys[0]).await.unwrap();
        let spool = put(dir.path(), &keys[1], &[9u8; 2000]);
        to.commit(&keys[1], &spool).await.unwrap();
        let second = migrate(&from, &to, &scratch).await.unwrap();
        assert_eq!((second.copied, second.already_there), (2, 1));
        for key in &keys {
            let len = from.len(key).await.unwrap();
            assert_eq!(
                sha256(&from, key, len).await.unwrap(),
                sha256(&to, key, len).await.unwrap()
            );
        }
        assert_eq!(
            std::fs::read_dir(&scratch).unwrap().count(),
            0,
            "no scratch file is left"
        );
    }
}
