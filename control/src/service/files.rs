//! File metadata, the contact's files, and what a download needs: the right secret key and
//! an audit entry written before the first byte leaves.

use serde_json::json;
use upgate_gateway::seal::{unwrap_key, Header, Opener};

use super::{Actor, FileError, Service, ServiceError};
use crate::account_keys::is_account_key;
use crate::ids::is_e164;
use crate::model::FileRecord;
use crate::repo::lists::Page;
use upgate_gateway::storage::ObjectKey;
use upgate_gateway::sys::now;

/// A preview is a JPEG of at most 1280 px a side: far below this.
const MAX_PREVIEW_BYTES: u64 = 16 << 20;

impl Service {
    /// A file of this account; another account's file is "not found".
    pub async fn file_for(&self, account_id: &str, file_id: &str) -> Result<FileRecord, ServiceError> {
        if ObjectKey::parse(file_id).is_none() {
            return Err(ServiceError::NotFound("file"));
        }
        self.repos
            .files
            .file(account_id, file_id)
            .await?
            .ok_or(ServiceError::NotFound("file"))
    }

    /// The file and its signed statement, rebuilt from the record and its link exactly as
    /// it was signed; `NotFound("attestation")` for a file stored before attestations.
    pub async fn attestation(
        &self,
        actor: &Actor,
        file_id: &str,
    ) -> Result<(FileRecord, String), ServiceError> {
        let account_id = &actor.account_id;
        let file = self.visible_file(actor, file_id).await?;
        let Some(a) = &file.attestation else {
            return Err(ServiceError::NotFound("attestation"));
        };
        let link = self
            .repos
            .issue
            .account_link(account_id, &file.link_id)
            .await?
            .ok_or(ServiceError::NotFound("attestation"))?;
        let statement = crate::attest::statement(
            &crate::attest::Stated::record(&file, &link),
            a.key_id,
            a.attested_at,
        );
        Ok((file, statement))
    }

    /// Removes stored objects that no file record names: uploads cut off between storage and
    /// the record by a crash. Run at start, before the gateway takes uploads.
    /// Deletes objects no file record names and that are older than `grace`: an upload that
    /// died between storing its object and recording it. With gateways run apart, one may be
    /// between those two steps right now, so its object is young: the grace spares it.
    pub async fn sweep_orphans(
        &self,
        store: &dyn upgate_gateway::storage::ObjectStore,
        grace: std::time::Duration,
    ) -> Result<usize, ServiceError> {
        let listed = store
            .list()
            .await
            .map_err(|e| ServiceError::from(FileError::StorageUnavailable(e.to_string())))?;
        let cutoff = now().saturating_sub(grace.as_secs());
        let mut removed = 0;
        for object in listed {
            if object.modified >= cutoff && !grace.is_zero() {
                continue;
            }
            // A sidecar lives as long as its file's record.
            if !self.repos.files.recorded(object.key.owner().as_str()).await? {
                if let Err(e) = store.delete(&object.key).await {
                    tracing::warn!(error = %e, "could not remove an orphaned object");
                    continue;
                }
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A page of the files a caller's number sent to the actor's account, newest first;
    /// those in quarantine for reviewers only.
    pub async fn contact_files(
        &self,
        actor: &Actor,
        e164: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<FileRecord>, ServiceError> {
        if !is_e164(e164) {
            return Err(ServiceError::NotFound("contact"));
        }
        let quarantined = actor.role == crate::model::Role::Reviewer;
        Ok(self
            .repos
            .lists
            .contact_files_page(&actor.account_id, e164, before, limit, quarantined)
            .await?)
    }

    /// Unwraps the file's data key with the storage secret its header names, after checking
    /// the header belongs to this file id (another file's ciphertext is refused).
    pub fn opener(&self, file: &FileRecord, header: Header) -> Result<Opener, ServiceError> {
        self.opener_for(file, &file.id, header)
    }

    /// The opener of one of `file`'s objects (itself or a sidecar), whose header must name
    /// `object`: a sidecar's bytes never pass for the file's, nor one file's for another's.
    fn opener_for(&self, file: &FileRecord, object: &str, header: Header) -> Result<Opener, ServiceError> {
        let integrity = |why: String| {
            tracing::error!(file_id = %file.id, %why, "sealed object refused");
            ServiceError::from(FileError::Integrity)
        };
        header
            .check_file_id(object)
            .map_err(|e| integrity(e.to_string()))?;
        let key_id = header.key_id();
        let secret = if is_account_key(key_id) {
            // Only the file's own account's key may open it, whatever a header says.
            match self.keys.accounts().secret(key_id) {
                Some(secret) if self.keys.accounts().owner(key_id).as_deref() == Some(&file.account_id) => {
                    secret
                }
                Some(_) => return Err(integrity(format!("key {key_id} is another account's"))),
                None => return Err(FileError::Shredded.into()),
            }
        } else {
            let keys = self.keys.current();
            keys.storage
                .get(&key_id)
                .cloned()
                .ok_or_else(|| integrity(format!("no storage key {key_id}")))?
        };
        let key = unwrap_key(&header, &secret).map_err(|e| integrity(e.to_string()))?;
        Ok(Opener::new(header, key))
    }

    /// An image's thumbnail or preview (JPEG), decrypted whole (they are small), for whoever
    /// may see the file. Not audited as a download: it is not the caller's bytes.
    pub async fn preview(
        &self,
        store: &dyn upgate_gateway::storage::ObjectStore,
        actor: &Actor,
        file_id: &str,
        side: upgate_gateway::storage::Sidecar,
    ) -> Result<Vec<u8>, ServiceError> {
        let file = self.visible_file(actor, file_id).await?;
        let key = ObjectKey::parse(&file.id)
            .filter(|_| file.previews)
            .ok_or(ServiceError::NotFound("preview"))?
            .sidecar(side);
        let unavailable = |e: upgate_gateway::storage::StorageError| {
            ServiceError::from(FileError::StorageUnavailable(e.to_string()))
        };
        let len = store.len(&key).await.map_err(unavailable)?;
        if len > MAX_PREVIEW_BYTES {
            return Err(FileError::Integrity.into());
        }
        let sealed = store.read_at(&key, 0, len as usize).await.map_err(unavailable)?;
        let header = Header::parse(&sealed).map_err(|_| ServiceError::from(FileError::Integrity))?;
        let opener = self.opener_for(&file, key.as_str(), header)?;
        let mut reader = upgate_gateway::seal::DecryptReader::new(std::io::Cursor::new(sealed), len, opener)
            .map_err(|_| ServiceError::from(FileError::Integrity))?;
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut plain)
            .map_err(|_| ServiceError::from(FileError::Integrity))?;
        Ok(plain)
    }

    /// Every download is in the audit log, with who, what and which bytes.
    pub async fn audit_download(
        &self,
        actor: &Actor,
        file: &FileRecord,
        range: Option<(u64, u64)>,
    ) -> Result<(), ServiceError> {
        let mut detail = json!({
            "call_id": file.call_id,
            "name": file.name,
            "range": range.map(|(a, b)| format!("{a}-{b}")),
            "role": actor.role.as_str(),
        });
        if let Some(q) = file.quarantine.as_ref().filter(|_| file.in_quarantine()) {
            // Admins read the audit log too, and a file in quarantine is the reviewers' alone:
            // its name stays out.
            detail["name"] = serde_json::Value::Null;
            detail["quarantine"] = q.state.as_str().into();
        }
        self.repos
            .audit
            .append(actor.note("file.download", &file.id, detail))
            .await?;
        self.metrics.downloads.inc();
        Ok(())
    }
}
