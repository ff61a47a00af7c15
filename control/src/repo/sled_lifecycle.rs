//! [`LifecycleRepo`] on the embedded store.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::lifecycle::{LifecycleRepo, Snapshot};
use super::sled_by_time::{contact_key, quarantine_key};
use super::sled_keys::{call_prefix, decode, scoped};
use super::sled_store::SledStore;
use super::{AuditNote, RepoError};
use crate::db::{Op, Tree};
use crate::model::{Assistant, Call, FileRecord, Link};

/// Trees whose keys all start with `account/`.
const SCOPED: [Tree; 19] = [
    Tree::TokenIds,
    Tree::Assistants,
    Tree::Calls,
    Tree::Contacts,
    Tree::Audit,
    Tree::Idempotency,
    Tree::CallLinks,
    Tree::CallSms,
    Tree::CallFiles,
    Tree::CallEvents,
    Tree::Events,
    Tree::CallEventIds,
    Tree::WebhookEndpoints,
    Tree::WebhookDeliveries,
    Tree::Quarantine,
    Tree::CallsByTime,
    Tree::AccountFiles,
    Tree::Users,
    Tree::UserSessions,
];

/// Deletes go in batches of this many ops, each under the lock on its own, so a large
/// account does not stop every writer for the whole purge.
const BATCH: usize = 1000;

impl SledStore {
    fn values(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Vec<u8>>, RepoError> {
        Ok(self
            .db
            .scan_prefix(tree, prefix)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    fn delete_all(&self, ops: Vec<Op>) -> Result<(), RepoError> {
        for chunk in ops.chunks(BATCH) {
            let durable = {
                let _w = self.lock();
                self.write(chunk.to_vec())?
            };
            durable.wait()?;
        }
        Ok(())
    }
}

#[async_trait]
impl LifecycleRepo for SledStore {
    async fn account_ids(&self) -> Result<Vec<String>, RepoError> {
        self.off(|s| {
            Ok(s.db
                .scan_prefix(Tree::Accounts, b"")?
                .into_iter()
                .filter_map(|(k, _)| String::from_utf8(k).ok())
                .collect())
        })
        .await
    }

    async fn assistants(&self, account_id: &str) -> Result<Vec<Assistant>, RepoError> {
        let prefix = scoped(account_id, "");
        self.off(move |s| {
            s.db.scan_prefix(Tree::Assistants, &prefix)?
                .iter()
                .map(|(_, v)| Ok(decode(Tree::Assistants, v)?))
                .collect()
        })
        .await
    }

    async fn files_due(
        &self,
        account_id: &str,
        cutoffs: &HashMap<String, u64>,
    ) -> Result<Vec<FileRecord>, RepoError> {
        let (account_id, cutoffs) = (account_id.to_string(), cutoffs.clone());
        self.off(move |s| {
            let mut due = Vec::new();
            for (_, v) in s.db.scan_prefix(Tree::Calls, &scoped(&account_id, ""))? {
                let call: Call = decode(Tree::Calls, &v)?;
                let Some(&cutoff) = cutoffs.get(&call.assistant_id) else {
                    continue;
                };
                for id in s.values(Tree::CallFiles, &call_prefix(&account_id, &call.id))? {
                    let Some(bytes) = s.db.get(Tree::Files, &id)? else {
                        continue;
                    };
                    let file: FileRecord = decode(Tree::Files, &bytes)?;
                    if file.received_at <= cutoff {
                        due.push(file);
                    }
                }
            }
            Ok(due)
        })
        .await
    }

    async fn delete_file(&self, file: &FileRecord, audit: AuditNote) -> Result<bool, RepoError> {
        let durable = {
            let _w = self.lock();
            if self.db.get(Tree::Files, file.id.as_bytes())?.is_none() {
                return Ok(false);
            }
            let mut ops = vec![Op::Delete(Tree::Files, file.id.as_bytes().to_vec())];
            for (key, value) in self
                .db
                .scan_prefix(Tree::CallFiles, &call_prefix(&file.account_id, &file.call_id))?
            {
                if value == file.id.as_bytes() {
                    if let Some(seq) = super::sled_lists::seq_of(&key) {
                        let listed = super::sled_lists::account_file_key(&file.account_id, seq);
                        ops.push(Op::Delete(Tree::AccountFiles, listed));
                    }
                    ops.push(Op::Delete(Tree::CallFiles, key));
                }
            }
            ops.push(Op::Delete(Tree::Contacts, contact_key(file)));
            ops.push(Op::Delete(Tree::Quarantine, quarantine_key(file)));
            ops.push(self.audit(audit)?);
            self.write(ops)?
        };
        durable.wait()?;
        Ok(true)
    }

    async fn uploads_in_flight(&self, account_id: &str, t: u64) -> Result<bool, RepoError> {
        let prefix = scoped(account_id, "");
        self.off(move |s| {
            for id in s.values(Tree::CallLinks, &prefix)? {
                let Some(bytes) = s.db.get(Tree::Links, &id)? else {
                    continue;
                };
                let link: Link = decode(Tree::Links, &bytes)?;
                if link.leases.iter().any(|l| l.expires_at > t) {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn has_files(&self, account_id: &str) -> Result<bool, RepoError> {
        Ok(!self
            .db
            .scan_from(Tree::CallFiles, &scoped(account_id, ""), b"", 1)?
            .is_empty())
    }

    async fn purge_account(&self, account_id: &str) -> Result<Option<Vec<String>>, RepoError> {
        let account_id = account_id.to_string();
        self.off(move |s| {
            if s.db.get(Tree::Accounts, account_id.as_bytes())?.is_none() {
                return Ok(None);
            }
            let prefix = scoped(&account_id, "");
            let mut ops = Vec::new();
            // Records named by the account's index entries first, the indexes after: a purge
            // cut short is finished by running it again.
            let files: Vec<Vec<u8>> = s.values(Tree::CallFiles, &prefix)?;
            let links: HashSet<Vec<u8>> = s.values(Tree::CallLinks, &prefix)?.into_iter().collect();
            let sms: HashSet<Vec<u8>> = s.values(Tree::CallSms, &prefix)?.into_iter().collect();
            ops.extend(files.iter().map(|id| Op::Delete(Tree::Files, id.clone())));
            ops.extend(links.iter().map(|id| Op::Delete(Tree::Links, id.clone())));
            ops.extend(sms.iter().map(|id| Op::Delete(Tree::Sms, id.clone())));
            for hash in s.values(Tree::TokenIds, &prefix)? {
                ops.push(Op::Delete(Tree::Tokens, hash));
            }
            for hash in s.values(Tree::UserSessions, &prefix)? {
                ops.push(Op::Delete(Tree::Sessions, hash));
            }
            for (key, value) in s.db.scan_prefix(Tree::Users, &prefix)? {
                let user: crate::model::User = super::sled_keys::decode(Tree::Users, &value)?;
                if s.db.get(Tree::UserEmails, user.email.as_bytes())?.as_deref() == Some(&key[..]) {
                    ops.push(Op::Delete(Tree::UserEmails, user.email.into_bytes()));
                }
            }
            for (key, value) in s.db.scan_prefix(Tree::SigninLinks, b"")? {
                let link: crate::model::SigninLink = super::sled_keys::decode(Tree::SigninLinks, &value)?;
                if link.account_id == account_id {
                    ops.push(Op::Delete(Tree::SigninLinks, key));
                }
            }
            // Small index trees keyed by time: entries that point at the account's records.
            for (key, _) in s.db.scan_prefix(Tree::LinkExpiry, b"")? {
                if key.len() > 8 && links.contains(&key[8..]) {
                    ops.push(Op::Delete(Tree::LinkExpiry, key));
                }
            }
            for (key, _) in s.db.scan_prefix(Tree::WebhookDue, b"")? {
                if key.len() > 8 && key[8..].starts_with(&prefix) {
                    ops.push(Op::Delete(Tree::WebhookDue, key));
                }
            }
            for (key, value) in s.db.scan_prefix(Tree::SmsByProvider, b"")? {
                if sms.contains(&value) {
                    ops.push(Op::Delete(Tree::SmsByProvider, key));
                }
            }
            for tree in SCOPED {
                for (key, _) in s.db.scan_prefix(tree, &prefix)? {
                    ops.push(Op::Delete(tree, key));
                }
            }
            ops.push(Op::Delete(Tree::Accounts, account_id.as_bytes().to_vec()));
            s.delete_all(ops)?;
            Ok(Some(
                files
                    .into_iter()
                    .filter_map(|id| String::from_utf8(id).ok())
                    .collect(),
            ))
        })
        .await
    }

    async fn snapshot(&self) -> Result<Snapshot, RepoError> {
        self.off(|s| {
            let _w = s.lock();
            let mut trees = Vec::with_capacity(Tree::ALL.len());
            for tree in Tree::ALL {
                trees.push((tree, s.db.scan_prefix(tree, b"")?));
            }
            let next_id = s.db.next_id()?;
            Ok(Snapshot { trees, next_id })
        })
        .await
    }
}
