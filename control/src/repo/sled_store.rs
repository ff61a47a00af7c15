//! What every sled repository shares: the store, and the one lock its writers hold for a
//! read-modify-write. Work runs on the caller's task: sled reads are memory-speed, and the
//! durable wait after a write is a future that holds no thread. The lock is held only for
//! the in-memory part, never across an await. Scans that can grow with the data (a whole
//! tree, an account's audit log) go to a blocking thread instead ([`SledStore::off`]).

use std::sync::{Arc, Mutex, MutexGuard};

use super::event_bus::{Announcing, EventBus};
use super::sled_keys::audit_op;
use super::{AuditNote, RepoError};
use crate::db::{Durable, Kv, Op};

#[derive(Clone)]
pub struct SledStore {
    pub(super) db: Arc<dyn Kv>,
    write: Arc<Mutex<()>>,
    pub(super) bus: Arc<EventBus>,
}

impl SledStore {
    /// `write` is the lock every writer of this store holds for its read-modify-write. The
    /// store is wrapped so that its writes wake the event log's readers: repositories that
    /// share it take it from [`SledStore::db`].
    pub fn new(db: Arc<dyn Kv>, write: Arc<Mutex<()>>) -> SledStore {
        let bus = Arc::new(EventBus::default());
        let db = Arc::new(Announcing {
            inner: db,
            bus: bus.clone(),
        });
        SledStore { db, write, bus }
    }

    /// The store as this repository writes it (announcing events).
    pub fn db(&self) -> Arc<dyn Kv> {
        self.db.clone()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `ops` while the caller holds the lock; the caller awaits the returned
    /// handle after releasing it. Concurrent writers share the flush.
    pub(super) fn write(&self, ops: Vec<Op>) -> Result<Durable, RepoError> {
        self.db.write(ops)?;
        Ok(self.db.durable())
    }

    /// Writes the entries of a new index built from older records, in batches of a bounded
    /// size, then `marker` in `Meta`: a crash part way builds it again at the next open.
    /// Returns how many entries it wrote.
    pub(super) fn write_index(&self, entries: Vec<Op>, marker: &[u8]) -> Result<usize, RepoError> {
        for chunk in entries.chunks(1024) {
            self.write(chunk.to_vec())?.wait()?;
        }
        self.write(vec![Op::Put(crate::db::Tree::Meta, marker.to_vec(), vec![1])])?
            .wait()?;
        Ok(entries.len())
    }

    /// The audit entry for `note`, as one op of the batch it describes.
    pub(super) fn audit(&self, note: AuditNote) -> Result<Op, RepoError> {
        Ok(audit_op(
            &*self.db,
            &note.actor,
            &note.account_id,
            note.action,
            &note.target,
            note.detail,
        )?)
    }

    /// Runs `f` on a blocking thread: for scans whose length grows with the data.
    pub(super) async fn off<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SledStore) -> Result<T, RepoError> + Send + 'static,
    ) -> Result<T, RepoError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| RepoError::Store(crate::db::DbError::Engine(e.to_string())))?
    }
}
