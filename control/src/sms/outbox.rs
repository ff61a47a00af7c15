//! The development provider: one JSON line per message in `sms-outbox.jsonl`, so a developer
//! can open the link without a carrier. The log line says a message was written, to a masked
//! number, never its body: the body holds the link.
//!
//! A message counts as sent once its line is on disk. Lines are appended on the caller's
//! task (one `write` to the page cache) and made durable by a shared `fdatasync`: group
//! commit, as the store does, because one sync per message capped link issuance at the
//! disk's sync rate (docs/performance.md, S12).

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Accepted, SmsError, SmsProvider};
use crate::db::{DbError, GroupCommit};
use crate::redact::mask_phone;

pub struct Outbox {
    path: PathBuf,
    /// Opened by the first message and kept open (append only) for the next ones.
    file: Arc<Mutex<Option<Open>>>,
    group: GroupCommit,
}

/// The open outbox and which file it is, to notice when a developer deletes or moves it.
struct Open {
    file: Arc<File>,
    id: (u64, u64),
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

impl Outbox {
    pub fn new(path: PathBuf) -> Outbox {
        let file: Arc<Mutex<Option<Open>>> = Arc::default();
        let synced = file.clone();
        let flush = Box::new(move || {
            let current = synced
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|o| o.file.clone());
            // Nothing opened, nothing written: nothing to sync.
            current
                .map_or(Ok(()), |f| f.sync_data())
                .map_err(|e| e.to_string())
        });
        let group = GroupCommit::new("upgate-outbox-sync", flush)
            .expect("the outbox's sync thread starts (the process is out of threads otherwise)");
        Outbox { path, file, group }
    }

    /// The outbox file, opened again when the one we hold is no longer at the path (a
    /// developer cleared it): lines must land where they will be read.
    fn current(&self) -> std::io::Result<Arc<File>> {
        let mut open = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let at_path = std::fs::metadata(&self.path).ok().map(|m| file_id(&m));
        if let Some(o) = open.as_ref().filter(|o| Some(o.id) == at_path) {
            return Ok(o.file.clone());
        }
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        let o = open.insert(Open {
            id: file_id(&file.metadata()?),
            file: Arc::new(file),
        });
        Ok(o.file.clone())
    }

    /// Appends one line; the `Durable` for it comes after, from the group.
    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        // One write per line keeps lines whole with concurrent senders (O_APPEND).
        (&*self.current()?).write_all(line)
    }
}

#[async_trait]
impl SmsProvider for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    async fn send(&self, to: &str, body: &str) -> Result<Accepted, SmsError> {
        let id = crate::ids::new_id("outbox");
        let line = serde_json::json!({"id": id, "at": upgate_gateway::sys::now(), "to": to, "body": body});
        let unwritable = |e: String| SmsError::Unreachable(format!("cannot write the outbox: {e}"));
        self.append(format!("{line}\n").as_bytes())
            .map_err(|e| unwritable(e.to_string()))?;
        // The group's error is the store's type; what failed here is the outbox's sync.
        self.group.durable().await.map_err(|e| match e {
            DbError::Engine(detail) | DbError::Corrupt(detail) => unwritable(detail),
        })?;
        tracing::info!(to = %mask_phone(to), outbox = %self.path.display(), "SMS written to the outbox");
        Ok(Accepted { provider_id: id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_messages_are_whole_lines_and_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Arc::new(Outbox::new(dir.path().join("sms-outbox.jsonl")));
        let sends: Vec<_> = (0..200)
            .map(|n| {
                let outbox = outbox.clone();
                tokio::spawn(async move { outbox.send(&format!("+4915100000{n:03}"), &"x".repeat(n)).await })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for s in sends {
            ids.insert(s.await.unwrap().unwrap().provider_id);
        }
        let text = std::fs::read_to_string(dir.path().join("sms-outbox.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 200);
        for line in &lines {
            let to = line["to"].as_str().unwrap();
            let n: usize = to[to.len() - 3..].parse().unwrap();
            assert_eq!(
                line["body"].as_str().unwrap().len(),
                n,
                "a line holds its own message"
            );
            assert!(ids.contains(line["id"].as_str().unwrap()));
        }
        // Every send waited for a sync, and they shared them.
        let syncs = outbox.group.flushes();
        assert!((1..200).contains(&syncs), "{syncs} syncs for 200 messages");
    }

    #[tokio::test]
    async fn an_unwritable_outbox_is_a_failed_send() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: the open fails.
        std::fs::create_dir(dir.path().join("sms-outbox.jsonl")).unwrap();
        let outbox = Outbox::new(dir.path().join("sms-outbox.jsonl"));
        match outbox.send("+4915100000000", "hello").await {
            Err(SmsError::Unreachable(e)) => assert!(e.contains("cannot write the outbox"), "{e}"),
            other => panic!("expected a failed send, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_deleted_outbox_is_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sms-outbox.jsonl");
        let outbox = Outbox::new(path.clone());
        outbox.send("+4915100000001", "first").await.unwrap();
        std::fs::remove_file(&path).unwrap();
        outbox.send("+4915100000002", "second").await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("second"));
    }
}
