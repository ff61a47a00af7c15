//! [`AccountRepo`] on the embedded store: `Accounts` by id, `Assistants` by
//! `account/assistant`.

use async_trait::async_trait;

use super::sled_keys::{get, put, scoped};
use super::{AccountRepo, AuditNote, RepoError, SledStore};
use crate::db::Tree;
use crate::model::{Account, Assistant};

#[async_trait]
impl AccountRepo for SledStore {
    async fn create_account(&self, account: &Account, audit: AuditNote) -> Result<(), RepoError> {
        let durable = {
            let _w = self.lock();
            let ops = vec![
                put(Tree::Accounts, account.id.as_bytes(), account),
                self.audit(audit)?,
            ];
            self.write(ops)?
        };
        Ok(durable.await?)
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, RepoError> {
        Ok(get(&*self.db, Tree::Accounts, id.as_bytes())?)
    }

    async fn put_assistant(&self, assistant: &Assistant, audit: AuditNote) -> Result<bool, RepoError> {
        let key = scoped(&assistant.account_id, &assistant.id);
        let (durable, existed) = {
            let _w = self.lock();
            let existed = self.db.get(Tree::Assistants, &key)?.is_some();
            let ops = vec![put(Tree::Assistants, key, assistant), self.audit(audit)?];
            (self.write(ops)?, existed)
        };
        durable.await?;
        Ok(!existed)
    }

    async fn assistant(&self, account_id: &str, id: &str) -> Result<Option<Assistant>, RepoError> {
        Ok(get(&*self.db, Tree::Assistants, &scoped(account_id, id))?)
    }
}
