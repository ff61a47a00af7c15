//! Wakes the readers of the event log when it grows. The log is the only source of events:
//! a wake says "read again after the last id you saw", never what happened, so a reader
//! that misses a wake, or gets two, still sees every event once. Writes are announced by
//! [`Announcing`], the store as every repository writes through it: no writer can append
//! an event and forget to wake the streams.
//!
//! A topic is an account (`account/`) or one of its calls (`account/call/`). Topics exist
//! while someone watches them, so the bus holds one entry per watched call, not per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::db::{DbError, Durable, Entry, Kv, Op, Tree};

#[derive(Default)]
pub struct EventBus {
    topics: Mutex<HashMap<Vec<u8>, watch::Sender<u64>>>,
}

impl EventBus {
    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, watch::Sender<u64>>> {
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts watching `topic`. Subscribe before reading the log: an event written after
    /// the subscription wakes [`EventWatch::changed`] even if it came before the read.
    pub fn watch(self: &Arc<Self>, topic: Vec<u8>) -> EventWatch {
        let rx = self
            .topics()
            .entry(topic.clone())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        EventWatch {
            rx,
            bus: self.clone(),
            topic,
        }
    }

    /// Wakes the watchers of `topic`: the log holds events up to `id`.
    fn publish(&self, topic: &[u8], id: u64) {
        if let Some(tx) = self.topics().get(topic) {
            tx.send_replace(id);
        }
    }

    /// How many topics are watched now (for tests and the stream gauge).
    pub fn watched(&self) -> usize {
        self.topics().len()
    }
}

/// One reader's subscription to a topic; the topic goes when its last watcher does.
pub struct EventWatch {
    rx: watch::Receiver<u64>,
    bus: Arc<EventBus>,
    topic: Vec<u8>,
}

impl EventWatch {
    /// Resolves when the topic got events since the last call (or since the subscription).
    pub async fn changed(&mut self) {
        // The sender lives in the bus's map for as long as this receiver does.
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        let mut topics = self.bus.topics();
        // This receiver still counts while it is being dropped.
        if topics.get(&self.topic).is_some_and(|tx| tx.receiver_count() <= 1) {
            topics.remove(&self.topic);
        }
    }
}

/// The topics of an account and of one of its calls.
pub fn account_topic(account_id: &str) -> Vec<u8> {
    format!("{account_id}/").into_bytes()
}

pub fn call_topic(account_id: &str, call_id: &str) -> Vec<u8> {
    format!("{account_id}/{call_id}/").into_bytes()
}

/// The store, announcing each event a batch appends once the batch is visible. Writers of
/// events hold the store's write lock, so announcements go out in id order.
pub struct Announcing {
    pub inner: Arc<dyn Kv>,
    pub bus: Arc<EventBus>,
}

impl Kv for Announcing {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        self.inner.get(tree, key)
    }
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, DbError> {
        self.inner.scan_prefix(tree, prefix)
    }
    fn scan_rev_before(
        &self,
        tree: Tree,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        self.inner.scan_rev_before(tree, prefix, before, limit)
    }
    fn scan_from(
        &self,
        tree: Tree,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        self.inner.scan_from(tree, prefix, start, limit)
    }
    fn write(&self, ops: Vec<Op>) -> Result<(), DbError> {
        // `account/call/<id, 8 bytes big-endian>`: the index entry every event has.
        let appended: Vec<(Vec<u8>, u64)> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Put(Tree::CallEventIds, key, _) if key.len() > 8 => {
                    let (call, id) = key.split_at(key.len() - 8);
                    Some((call.to_vec(), u64::from_be_bytes(id.try_into().ok()?)))
                }
                _ => None,
            })
            .collect();
        self.inner.write(ops)?;
        for (call, id) in appended {
            let account = call
                .iter()
                .position(|&b| b == b'/')
                .map_or(&call[..], |i| &call[..=i]);
            self.bus.publish(account, id);
            self.bus.publish(&call, id);
        }
        Ok(())
    }
    fn durable(&self) -> Durable {
        self.inner.durable()
    }
    fn next_id(&self) -> Result<u64, DbError> {
        self.inner.next_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_topic_lives_as_long_as_its_watchers() {
        let bus = Arc::new(EventBus::default());
        let a = bus.watch(call_topic("acc", "c1"));
        let b = bus.watch(call_topic("acc", "c1"));
        assert_eq!(bus.watched(), 1);
        drop(a);
        assert_eq!(bus.watched(), 1);
        drop(b);
        assert_eq!(bus.watched(), 0);
    }

    #[tokio::test]
    async fn a_publish_wakes_the_topic_s_watchers_and_no_other() {
        let bus = Arc::new(EventBus::default());
        let mut mine = bus.watch(call_topic("acc", "c1"));
        let mut other = bus.watch(call_topic("acc", "c2"));
        bus.publish(&call_topic("acc", "c1"), 7);
        tokio::time::timeout(std::time::Duration::from_secs(5), mine.changed())
            .await
            .expect("woken");
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(50), other.changed()).await;
        assert!(quiet.is_err(), "another call's watcher stays asleep");
    }
}
