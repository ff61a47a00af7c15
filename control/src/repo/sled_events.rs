//! [`EventRepo`] on the embedded store: `Events` by `account/id` (big-endian) and an index
//! of each call's ids in `CallEventIds`. The next id is one above the account's last key,
//! read under the write lock: a read costs far less than keeping a counter record, which
//! was one more insert in every batch (measured in S12). [`event_ops`] is how every writer
//! appends, inside its own batch.

use async_trait::async_trait;

use super::event_bus::{account_topic, call_topic, EventWatch};
use super::sled_keys::{call_prefix, decode, get, numbered, put, scoped};
use super::{EventRepo, RepoError, SledStore};
use crate::db::{DbError, Kv, Op, Tree};
use crate::model::{Event, EventRecord};

/// The ops that append `events` (in order) on `call_id` to the account's log, to go into
/// the batch of the change they describe: one call per batch and account, since the next
/// id is read from the store. Call only under the store's write lock: ids are then handed
/// out in the order batches become visible, so a reader that saw id N has seen all below.
pub(crate) fn event_ops(
    db: &dyn Kv,
    account_id: &str,
    call_id: &str,
    at: u64,
    events: impl IntoIterator<Item = Event>,
) -> Result<Vec<Op>, DbError> {
    let (log, calls) = (scoped(account_id, ""), call_prefix(account_id, call_id));
    let last = db.scan_prefix_rev(Tree::Events, &log, 1)?.pop();
    let first = last.and_then(|(key, _)| id_of(&key)).map_or(1, |last| last + 1);
    let mut ops = Vec::new();
    for (id, event) in (first..).zip(events) {
        let record = EventRecord {
            id,
            at,
            call_id: call_id.to_string(),
            event,
        };
        ops.push(put(Tree::Events, numbered(&log, id), &record));
        ops.push(Op::Put(Tree::CallEventIds, numbered(&calls, id), vec![]));
    }
    Ok(ops)
}

/// The id in a key that ends in a big-endian event id.
fn id_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

#[async_trait]
impl EventRepo for SledStore {
    async fn events_after(
        &self,
        account_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, RepoError> {
        let prefix = scoped(account_id, "");
        let start = numbered(&prefix, after.saturating_add(1));
        self.off(move |s| {
            s.db.scan_from(Tree::Events, &prefix, &start, limit)?
                .into_iter()
                .map(|(_, v)| Ok(decode(Tree::Events, &v)?))
                .collect()
        })
        .await
    }

    async fn last_id(&self, account_id: &str) -> Result<u64, RepoError> {
        let last = self
            .db
            .scan_prefix_rev(Tree::Events, &scoped(account_id, ""), 1)?
            .pop();
        Ok(last.and_then(|(key, _)| id_of(&key)).unwrap_or(0))
    }

    fn watch(&self, account_id: &str, call_id: Option<&str>) -> EventWatch {
        let topic = match call_id {
            Some(call_id) => call_topic(account_id, call_id),
            None => account_topic(account_id),
        };
        self.bus.watch(topic)
    }

    async fn call_events_after(
        &self,
        account_id: &str,
        call_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, RepoError> {
        let prefix = call_prefix(account_id, call_id);
        let start = numbered(&prefix, after.saturating_add(1));
        let account = scoped(account_id, "");
        self.off(move |s| {
            let mut out = Vec::new();
            for (key, _) in s.db.scan_from(Tree::CallEventIds, &prefix, &start, limit)? {
                let Some(id) = id_of(&key) else { continue };
                if let Some(record) = get::<EventRecord>(&*s.db, Tree::Events, &numbered(&account, id))? {
                    out.push(record);
                }
            }
            Ok(out)
        })
        .await
    }
}
