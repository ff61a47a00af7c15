//! [`QuarantineRepo`] on the embedded store: `Quarantine` keys `account/` + since + file id
//! (`sled_by_time`), whose value is the state, so the rescan finds the held files without
//! reading the others.

use async_trait::async_trait;
use serde_json::json;
use upgate_gateway::control_link::{ScanStatus, ScanVerdict};

use super::quarantine::QuarantineRepo;
use super::sled_by_time::{quarantine_entry, quarantine_key, quarantined_file_id};
use super::sled_events::event_ops;
use super::sled_keys::{audit_op, get, put};
use super::{RepoError, SledStore};
use crate::attest::Attestation;
use crate::db::{Op, Tree};
use crate::model::{Event, FileDecided, FileRecord, QuarantineState};

#[async_trait]
impl QuarantineRepo for SledStore {
    async fn held(&self, limit: usize) -> Result<Vec<FileRecord>, RepoError> {
        let held = QuarantineState::Held.as_str().as_bytes();
        let mut files = Vec::new();
        for (key, state) in self.db.scan_prefix(Tree::Quarantine, b"")? {
            if files.len() >= limit {
                break;
            }
            if state == held {
                files.extend(get::<FileRecord>(
                    &*self.db,
                    Tree::Files,
                    quarantined_file_id(&key),
                )?);
            }
        }
        files.sort_by_key(|f| f.received_at);
        Ok(files)
    }

    async fn held_count(&self) -> Result<usize, RepoError> {
        let held = QuarantineState::Held.as_str().as_bytes();
        Ok(self
            .db
            .scan_prefix(Tree::Quarantine, b"")?
            .iter()
            .filter(|(_, state)| state == held)
            .count())
    }

    async fn decide(
        &self,
        file_id: &str,
        verdict: ScanVerdict,
        attestation: Option<Attestation>,
        t: u64,
    ) -> Result<Option<FileRecord>, RepoError> {
        let state = match verdict.status() {
            ScanStatus::Clean => QuarantineState::Released,
            ScanStatus::Infected => QuarantineState::Infected,
            ScanStatus::NotScanned => QuarantineState::Unscannable,
            // Still no verdict: nothing to decide.
            ScanStatus::Unscanned => return Ok(None),
        };
        let file = {
            let _w = self.lock();
            let Some(mut file) = get::<FileRecord>(&*self.db, Tree::Files, file_id.as_bytes())? else {
                return Ok(None);
            };
            let Some(q) = file
                .quarantine
                .as_mut()
                .filter(|q| q.state == QuarantineState::Held)
            else {
                return Ok(None);
            };
            q.state = state;
            q.decided_at = Some(t);
            file.scan = verdict.clone();
            // A statement over the old verdict would no longer verify: without a new one
            // there is none.
            file.attestation = attestation;
            let decided = FileDecided {
                link_id: file.link_id.clone(),
                file_id: file.id.clone(),
                scan: verdict,
            };
            let event = match state {
                QuarantineState::Released => Event::FileReleased(decided),
                QuarantineState::Infected => Event::FileInfected(decided),
                _ => Event::FileUnscannable(decided),
            };
            let mut ops = vec![
                put(Tree::Files, file.id.as_bytes(), &file),
                quarantine_entry(&file)
                    .unwrap_or_else(|| Op::Delete(Tree::Quarantine, quarantine_key(&file))),
                audit_op(
                    &*self.db,
                    "scanner",
                    &file.account_id,
                    "file.rescan",
                    &file.id,
                    json!({"call_id": file.call_id, "scan": file.scan.status(), "quarantine": state.as_str()}),
                )?,
            ];
            ops.extend(event_ops(&*self.db, &file.account_id, &file.call_id, t, [event])?);
            self.db.write(ops)?;
            file
        };
        self.db.durable().await?;
        Ok(Some(file))
    }

    async fn review(
        &self,
        account_id: &str,
        file_id: &str,
        release: bool,
        by: &str,
        t: u64,
    ) -> Result<Option<FileRecord>, RepoError> {
        let file = {
            let _w = self.lock();
            let Some(mut file) = get::<FileRecord>(&*self.db, Tree::Files, file_id.as_bytes())? else {
                return Ok(None);
            };
            if file.account_id != account_id {
                return Ok(None);
            }
            let Some(q) = file
                .quarantine
                .as_mut()
                .filter(|q| matches!(q.state, QuarantineState::Held | QuarantineState::Unscannable))
            else {
                return Ok(None);
            };
            q.state = if release {
                QuarantineState::Released
            } else {
                QuarantineState::Blocked
            };
            q.decided_at = Some(t);
            q.decided_by = Some(by.to_string());
            let state = q.state;
            let mut ops = vec![
                put(Tree::Files, file.id.as_bytes(), &file),
                quarantine_entry(&file)
                    .unwrap_or_else(|| Op::Delete(Tree::Quarantine, quarantine_key(&file))),
                audit_op(
                    &*self.db,
                    by,
                    &file.account_id,
                    if release { "file.release" } else { "file.block" },
                    &file.id,
                    json!({"call_id": file.call_id, "scan": file.scan.status(), "quarantine": state.as_str()}),
                )?,
            ];
            if release {
                let event = Event::FileReleased(FileDecided {
                    link_id: file.link_id.clone(),
                    file_id: file.id.clone(),
                    scan: file.scan.clone(),
                });
                ops.extend(event_ops(&*self.db, &file.account_id, &file.call_id, t, [event])?);
            }
            self.db.write(ops)?;
            file
        };
        self.db.durable().await?;
        Ok(Some(file))
    }
}
