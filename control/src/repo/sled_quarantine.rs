//! [`QuarantineRepo`] on the embedded store: `Quarantine` keys `account/file id`, whose
//! value is the state, so the rescan finds the held files without reading the others.

use async_trait::async_trait;
use serde_json::json;
use upgate_gateway::control_link::{ScanStatus, ScanVerdict};

use super::quarantine::QuarantineRepo;
use super::sled_events::event_ops;
use super::sled_keys::{audit_op, get, put, scoped};
use super::{RepoError, SledStore};
use crate::attest::Attestation;
use crate::db::{Op, Tree};
use crate::model::{Event, FileDecided, FileRecord, QuarantineState};

/// The index entry of a file in quarantine, for its current state (written with the record).
pub(crate) fn quarantine_entry(file: &FileRecord) -> Op {
    let state = file
        .quarantine
        .as_ref()
        .map_or(QuarantineState::Held, |q| q.state);
    Op::Put(
        Tree::Quarantine,
        scoped(&file.account_id, &file.id),
        state.as_str().as_bytes().to_vec(),
    )
}

/// The file id at the end of an `account/file id` key.
fn file_id_of(key: &[u8]) -> &[u8] {
    key.rsplit(|b| *b == b'/').next().unwrap_or(key)
}

impl SledStore {
    fn quarantined_records(
        &self,
        prefix: &[u8],
        only_held: bool,
        limit: usize,
    ) -> Result<Vec<FileRecord>, RepoError> {
        let mut files = Vec::new();
        for (key, state) in self.db.scan_prefix(Tree::Quarantine, prefix)? {
            if only_held && state != QuarantineState::Held.as_str().as_bytes() {
                continue;
            }
            if let Some(file) = get::<FileRecord>(&*self.db, Tree::Files, file_id_of(&key))? {
                files.push(file);
            }
            if files.len() >= limit {
                break;
            }
        }
        files.sort_by_key(|f| f.received_at);
        Ok(files)
    }
}

#[async_trait]
impl QuarantineRepo for SledStore {
    async fn held(&self, limit: usize) -> Result<Vec<FileRecord>, RepoError> {
        self.quarantined_records(b"", true, limit)
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

    async fn quarantined(&self, account_id: &str) -> Result<Vec<FileRecord>, RepoError> {
        self.quarantined_records(&scoped(account_id, ""), false, usize::MAX)
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
                if state == QuarantineState::Released {
                    Op::Delete(Tree::Quarantine, scoped(&file.account_id, &file.id))
                } else {
                    quarantine_entry(&file)
                },
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
                if release {
                    Op::Delete(Tree::Quarantine, scoped(&file.account_id, &file.id))
                } else {
                    quarantine_entry(&file)
                },
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
