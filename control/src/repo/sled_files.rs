//! [`FileRepo`] on the embedded store: `Files` by file id.

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

    async fn recorded(&self, file_id: &str) -> Result<bool, RepoError> {
        Ok(self.db.get(Tree::Files, file_id.as_bytes())?.is_some())
    }
}
