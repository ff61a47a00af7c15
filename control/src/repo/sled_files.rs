//! [`FileRepo`] on the embedded store: `Files` by file id, `Contacts` as
//! `account/number/file id` keys (written by `SledLinks::record_file`).

use std::sync::Arc;

use async_trait::async_trait;

use super::files::FileRepo;
use super::sled_keys::get;
use super::RepoError;
use crate::db::{Kv, Tree};
use crate::model::FileRecord;

pub struct SledFiles {
    db: Arc<dyn Kv>,
}

impl SledFiles {
    pub fn new(db: Arc<dyn Kv>) -> SledFiles {
        SledFiles { db }
    }
}

#[async_trait]
impl FileRepo for SledFiles {
    async fn file(&self, account_id: &str, file_id: &str) -> Result<Option<FileRecord>, RepoError> {
        Ok(get::<FileRecord>(&*self.db, Tree::Files, file_id.as_bytes())?
            .filter(|f| f.account_id == account_id))
    }

    async fn contact_files(&self, account_id: &str, number: &str) -> Result<Vec<FileRecord>, RepoError> {
        let prefix = format!("{account_id}/{number}/");
        let mut files = Vec::new();
        for (key, _) in self.db.scan_prefix(Tree::Contacts, prefix.as_bytes())? {
            if let Some(f) = get::<FileRecord>(&*self.db, Tree::Files, &key[prefix.len()..])? {
                files.push(f);
            }
        }
        // Keys sort by file id; a contact's files read best in the order they came.
        files.sort_by_key(|f| f.received_at);
        Ok(files)
    }

    async fn recorded(&self, file_id: &str) -> Result<bool, RepoError> {
        Ok(self.db.get(Tree::Files, file_id.as_bytes())?.is_some())
    }
}
