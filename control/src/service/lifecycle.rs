//! The end of data: retention (files deleted when their assistant's `retention_days` have
//! passed) and account deletion, both ending in crypto-shredding: once an account has no
//! file left, or is deleted, its storage keys are destroyed (`account_keys`), so any copy of
//! its files anywhere (an old backup, a bucket's old versions or replicas) stays sealed.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use upgate_gateway::storage::{ObjectKey, ObjectStore};

use super::{FileError, Service, ServiceError};
use crate::repo::AuditNote;

const DAY: u64 = 24 * 3600;

/// What one retention run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted: usize,
    /// Accounts whose keys were destroyed because the run left them without a file.
    pub shredded: Vec<String>,
}

/// What deleting an account did.
#[derive(Debug, serde::Serialize)]
pub struct AccountDeleted {
    pub keys_destroyed: usize,
    pub files: usize,
    pub objects_deleted: usize,
}

impl Service {
    /// The object store, for the deletions here and for backups (set once by the
    /// composition root). `local`: objects on this machine's disk, which backups carry
    /// (a bucket keeps its own).
    pub fn set_objects(&self, store: Arc<dyn ObjectStore>, local: bool) {
        let _ = self.objects.set((store, local));
    }

    /// The store whose objects a backup carries: local storage only.
    pub fn backed_up_objects(&self) -> Option<Arc<dyn ObjectStore>> {
        self.objects
            .get()
            .filter(|(_, local)| *local)
            .map(|(s, _)| s.clone())
    }

    fn objects(&self) -> Result<&Arc<dyn ObjectStore>, ServiceError> {
        self.objects.get().map(|(s, _)| s).ok_or_else(|| {
            ServiceError::from(FileError::StorageUnavailable(
                "no object store configured for deletions".into(),
            ))
        })
    }

    /// Deletes every file whose retention has passed at `now`: the object first, then its
    /// record with an audit entry, so a run cut short leaves a record whose object is gone,
    /// which the next run deletes again. Stateless: after a restart the next run finds what
    /// is due from the records alone.
    pub async fn retention_run(&self, now: u64) -> Result<RetentionReport, ServiceError> {
        let objects = self.objects()?.clone();
        let mut report = RetentionReport::default();
        for account in self.repos.lifecycle.account_ids().await? {
            let cutoffs: HashMap<String, u64> = self
                .repos
                .lifecycle
                .assistants(&account)
                .await?
                .into_iter()
                .filter_map(|a| {
                    let days = a.file_upload.retention_days?;
                    Some((a.id, now.checked_sub(u64::from(days) * DAY)?))
                })
                .collect();
            if cutoffs.is_empty() {
                continue;
            }
            let due = self.repos.lifecycle.files_due(&account, &cutoffs).await?;
            if due.is_empty() {
                continue;
            }
            for file in &due {
                if let Some(key) = ObjectKey::parse(&file.id) {
                    upgate_gateway::storage::delete_with_sidecars(objects.as_ref(), &key)
                        .await
                        .map_err(|e| ServiceError::from(FileError::StorageUnavailable(e.to_string())))?;
                }
                let note = AuditNote {
                    account_id: account.clone(),
                    actor: "retention".into(),
                    action: "file.delete",
                    target: file.id.clone(),
                    detail: json!({
                        "call_id": file.call_id,
                        "received_at": file.received_at,
                        "reason": "retention",
                    }),
                };
                if self.repos.lifecycle.delete_file(file, note).await? {
                    report.deleted += 1;
                    self.metrics.retention_deleted.inc();
                }
            }
            if self.shred_if_empty(&account).await? {
                report.shredded.push(account);
            }
        }
        Ok(report)
    }

    /// Destroys the account's keys when it has no file left and no upload in flight (whose
    /// file is sealed for the current key). The next upload makes a new key.
    async fn shred_if_empty(&self, account: &str) -> Result<bool, ServiceError> {
        if self.repos.lifecycle.has_files(account).await?
            || self
                .repos
                .lifecycle
                .uploads_in_flight(account, upgate_gateway::sys::now())
                .await?
        {
            return Ok(false);
        }
        let destroyed = self
            .keys
            .accounts()
            .shred(account)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        if destroyed > 0 {
            tracing::info!(
                keys = destroyed,
                "retention left an account without files: its keys are destroyed"
            );
        }
        Ok(destroyed > 0)
    }

    /// Deletes an account and everything it holds. Its keys go first: from that moment none
    /// of its files can be read anywhere, even if the rest is cut short (run it again).
    pub async fn delete_account(&self, account_id: &str) -> Result<AccountDeleted, ServiceError> {
        if !crate::ids::is_own_id(account_id, "acc") {
            return Err(ServiceError::NotFound("account"));
        }
        let keys_destroyed = self
            .keys
            .accounts()
            .shred(account_id)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let files = self
            .repos
            .lifecycle
            .purge_account(account_id)
            .await?
            .ok_or(ServiceError::NotFound("account"))?;
        // Objects last: any one left behind (a storage outage) is unreadable already, and
        // is an orphan the next start's sweep removes.
        let mut objects_deleted = 0;
        if let Ok(objects) = self.objects() {
            for id in &files {
                let Some(key) = ObjectKey::parse(id) else { continue };
                match upgate_gateway::storage::delete_with_sidecars(objects.as_ref(), &key).await {
                    Ok(()) => objects_deleted += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not delete an object of a deleted account; the orphan sweep will")
                    }
                }
            }
        }
        tracing::info!(keys = keys_destroyed, files = files.len(), "account deleted");
        Ok(AccountDeleted {
            keys_destroyed,
            files: files.len(),
            objects_deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use upgate_gateway::control_link::{ControlError, ControlLink, NewFile};
    use upgate_gateway::seal::{Header, Sealer};
    use upgate_gateway::storage::{LocalStore, ObjectKey, ObjectStore};

    use super::DAY;
    use crate::model::FileRecord;
    use crate::service::fixture::{fixture, Fixture};
    use crate::service::{FileError, InProcess, ServiceError};

    /// Objects on a local store of the fixture's own.
    async fn with_objects(f: &Fixture) -> (Arc<LocalStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        f.svc.set_objects(store.clone(), true);
        (store, dir)
    }

    async fn set_retention(f: &Fixture, assistant: &str, days: Option<u32>) {
        let settings = serde_json::from_value(json!({
            "enabled": true, "trigger": "When the caller has photos", "retention_days": days,
        }))
        .unwrap();
        f.svc.put_assistant(&f.actor, assistant, settings).await.unwrap();
    }

    /// A file sent on a new call of `assistant`, sealed for the key its claim names and
    /// stored as the gateway would; its record.
    async fn upload(f: &Fixture, store: &LocalStore, assistant: &str, call: &str) -> FileRecord {
        let input =
            serde_json::from_value(json!({"assistant_id": assistant, "caller_number": "+14155550123"}))
                .unwrap();
        f.svc.put_call(&f.actor, call, input).await.unwrap();
        let issued = f
            .svc
            .issue_link(f.actor.clone(), call.into(), None)
            .await
            .unwrap();
        let gw = InProcess(f.svc.clone());
        let claim = gw.claim(&issued.link.id.parse().unwrap()).await.unwrap().unwrap();
        let recipient = claim.seal_for(upgate_gateway::seal::RecipientPublicKey {
            key_id: 1,
            bytes: [9; 32],
        });
        assert!(
            crate::account_keys::is_account_key(recipient.key_id),
            "sealed for the account's key"
        );
        let file = NewFile {
            key_id: recipient.key_id,
            received_at: upgate_gateway::sys::now(),
            ..crate::repo::links_suite::file()
        };
        let mut sealer = Sealer::new(&recipient, &file.file_id).unwrap();
        let mut out = sealer.header().to_vec();
        sealer.push(b"%PDF-1.4 a sick note", &mut out);
        let _ = sealer.finish(&mut out);
        let spool = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(spool.path(), &out).unwrap();
        let key = ObjectKey::parse(&file.file_id).unwrap();
        store.commit(&key, spool.path()).await.unwrap();
        let id = file.file_id.clone();
        gw.commit(&claim, file).await.unwrap().unwrap();
        f.svc.file_for(&f.actor.account_id, &id).await.unwrap()
    }

    /// Stores stand-ins for the file's thumbnail and preview (their bytes do not matter here).
    async fn sidecars(store: &LocalStore, file: &FileRecord) -> Vec<ObjectKey> {
        let key = ObjectKey::parse(&file.id).unwrap();
        let mut keys = Vec::new();
        for side in upgate_gateway::storage::Sidecar::ALL {
            let spool = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(spool.path(), b"sealed preview").unwrap();
            let side = key.sidecar(side);
            store.commit(&side, spool.path()).await.unwrap();
            keys.push(side);
        }
        keys
    }

    async fn opens(f: &Fixture, store: &LocalStore, file: &FileRecord) -> Result<(), ServiceError> {
        let key = ObjectKey::parse(&file.id).unwrap();
        let head = store.read_at(&key, 0, 352).await.unwrap();
        f.svc.opener(file, Header::parse(&head).unwrap()).map(|_| ())
    }

    #[tokio::test]
    async fn a_file_is_deleted_when_its_retention_passes_and_not_a_second_before() {
        let f = fixture().await;
        let (store, _dir) = with_objects(&f).await;
        set_retention(&f, "asst", Some(2)).await;
        set_retention(&f, "keeper", None).await;
        let due = upload(&f, &store, "asst", "c1").await;
        let kept = upload(&f, &store, "keeper", "c2").await;
        let (due_sides, kept_sides) = (sidecars(&store, &due).await, sidecars(&store, &kept).await);
        let at = due.received_at + 2 * DAY;

        let early = f.svc.retention_run(at - 1).await.unwrap();
        assert_eq!(early.deleted, 0, "a second early");
        assert!(opens(&f, &store, &due).await.is_ok());

        let run = f.svc.retention_run(at).await.unwrap();
        assert_eq!(run.deleted, 1);
        assert!(run.shredded.is_empty(), "the account still has a file");
        let key = ObjectKey::parse(&due.id).unwrap();
        assert!(store.len(&key).await.is_err(), "the object is gone");
        for side in &due_sides {
            assert!(store.len(side).await.is_err(), "its previews too");
        }
        for side in &kept_sides {
            assert!(store.len(side).await.is_ok(), "another file's previews are kept");
        }
        // The start-up sweep keeps a recorded file's sidecars and removes an unrecorded one's.
        let stray = ObjectKey::random().sidecar(upgate_gateway::storage::Sidecar::Thumb);
        let spool = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(spool.path(), b"x").unwrap();
        store.commit(&stray, spool.path()).await.unwrap();
        assert_eq!(
            f.svc
                .sweep_orphans(store.as_ref(), std::time::Duration::ZERO)
                .await
                .unwrap(),
            1
        );
        assert!(store.len(&stray).await.is_err());
        assert!(store.len(&kept_sides[0]).await.is_ok());
        let account = &f.actor.account_id;
        assert!(matches!(
            f.svc.file_for(account, &due.id).await,
            Err(ServiceError::NotFound(_))
        ));
        let contact = f
            .svc
            .contact_files(&f.actor, "+14155550123", None, 500)
            .await
            .unwrap()
            .items;
        assert_eq!(contact.iter().map(|f| &f.id).collect::<Vec<_>>(), vec![&kept.id]);
        let audit = f.svc.audit(account, 100).await.unwrap();
        let entry = audit.iter().find(|e| e.action == "file.delete").expect("audited");
        assert_eq!(
            (entry.actor.as_str(), entry.target.as_str()),
            ("retention", due.id.as_str())
        );
        assert!(
            opens(&f, &store, &kept).await.is_ok(),
            "another assistant's file is kept"
        );

        // Nothing left to do: a second run (or one after a restart) deletes nothing more.
        assert_eq!(f.svc.retention_run(at + 10 * DAY).await.unwrap().deleted, 0);
    }

    #[tokio::test]
    async fn retention_that_ends_an_account_s_data_destroys_its_key() {
        let f = fixture().await;
        let (store, _dir) = with_objects(&f).await;
        set_retention(&f, "asst", Some(1)).await;
        let first = upload(&f, &store, "asst", "c1").await;
        // An old copy of the object (a bucket's earlier version, a backup) outlives it.
        let key = ObjectKey::parse(&first.id).unwrap();
        let copy = store.read_at(&key, 0, 1 << 20).await.unwrap();

        let run = f.svc.retention_run(first.received_at + DAY).await.unwrap();
        assert_eq!(run.shredded, vec![f.actor.account_id.clone()]);
        assert!(!f.svc.keys.accounts().has_key(&f.actor.account_id));
        let head = Header::parse(&copy).unwrap();
        assert!(
            f.svc.keys.accounts().secret(head.key_id()).is_none(),
            "the copy can never be opened"
        );

        // The account's next upload is sealed for a new key, and opens.
        let next = upload(&f, &store, "asst", "c2").await;
        assert_ne!(next.key_id, first.key_id);
        assert!(opens(&f, &store, &next).await.is_ok());
    }

    #[tokio::test]
    async fn a_file_sealed_for_a_key_destroyed_meanwhile_is_not_recorded() {
        let f = fixture().await;
        let link = f.link_on_call("c", "+14155550123").await;
        let gw = InProcess(f.svc.clone());
        let claim = gw.claim(&link).await.unwrap().unwrap();
        let key_id = claim.recipient.as_ref().unwrap().key_id;
        f.svc.keys.accounts().shred(&f.actor.account_id).unwrap();
        let file = NewFile {
            key_id,
            ..crate::repo::links_suite::file()
        };
        assert!(matches!(
            gw.commit(&claim, file).await,
            Err(ControlError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn deleting_an_account_shreds_its_keys_and_removes_all_it_held() {
        let f = fixture().await;
        let (store, _dir) = with_objects(&f).await;
        let file = upload(&f, &store, "asst", "c1").await;
        let account = f.actor.account_id.clone();
        let (_, token) = f
            .svc
            .create_token(
                &account,
                crate::model::Role::Admin,
                Default::default(),
                "operator",
            )
            .await
            .unwrap();
        let other = f.svc.create_account("B", "pro").await.unwrap();

        let done = f.svc.delete_account(&account).await.unwrap();
        assert_eq!((done.keys_destroyed, done.files, done.objects_deleted), (1, 1, 1));
        assert!(f.svc.account(&account).await.unwrap().is_none());
        assert!(
            f.svc.authenticate(&token).await.unwrap().is_err(),
            "its tokens are gone"
        );
        assert!(matches!(
            f.svc.file_for(&account, &file.id).await,
            Err(ServiceError::NotFound(_))
        ));
        assert!(f.svc.audit(&account, 10).await.unwrap().is_empty());
        let key = ObjectKey::parse(&file.id).unwrap();
        assert!(store.len(&key).await.is_err());
        assert!(
            f.svc.account(&other.id).await.unwrap().is_some(),
            "another account is untouched"
        );
        // Every record of the account is gone, in every tree.
        for tree in crate::db::Tree::ALL {
            use crate::db::Kv;
            for (k, v) in f.db.scan_prefix(tree, b"").unwrap() {
                let (k, v) = (String::from_utf8_lossy(&k), String::from_utf8_lossy(&v));
                assert!(
                    !k.contains(&account) && !v.contains(&account),
                    "{tree:?} still holds {k}"
                );
            }
        }
        assert!(matches!(
            f.svc.delete_account(&account).await,
            Err(ServiceError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_shredded_file_answers_gone_not_an_integrity_failure() {
        let f = fixture().await;
        let (store, _dir) = with_objects(&f).await;
        let file = upload(&f, &store, "asst", "c1").await;
        f.svc.keys.accounts().shred(&f.actor.account_id).unwrap();
        assert!(matches!(
            opens(&f, &store, &file).await,
            Err(ServiceError::File(FileError::Shredded))
        ));
    }
}
