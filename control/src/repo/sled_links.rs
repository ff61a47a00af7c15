//! [`LinkRepo`] on the embedded store. Key layout: `Links` by link id, its leases inside
//! the record (a claim is one read and one write of the record it changes); a stored file
//! in `Files`, `CallFiles` (`account/call/` + sequence), `Contacts` (`account/number/file`)
//! and `Audit`; refusals in `CallEvents` under the call.
//!
//! Every method runs on the caller's task: the store work before a durable wait is a few
//! in-memory reads and one write, shorter than a hand-off to a blocking thread, and the
//! wait itself is a future that holds no thread. The service's write lock (shared with its
//! other writers of links) is held only for that in-memory part, never across an await.
//! Claims, renewals and releases are not waited for: a lease lost in a crash only frees
//! its slot early, and `record_file` checks the quota again.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::json;
use upgate_gateway::control_link::{Claim, LinkState, NewFile, Refusal, ScanStatus};
use upgate_gateway::token::LinkId;

use super::sled_by_time::{contact_key, quarantine_entry};
use super::sled_events::event_ops;
use super::sled_keys::{audit_op, call_prefix, get, numbered, put, scoped};
use super::{LinkRepo, RepoError};
use crate::db::{Kv, Op, Tree};
use crate::model::{
    Call, CallEvent, Event, FileArrived, FileRecord, LeaseHold, Link, Quarantine, QuarantineState,
    UploadRefused,
};

/// The most events a call keeps; older ones are dropped and counted.
const MAX_CALL_EVENTS: u64 = 100;

/// Drops the leases that have ended at `t`; true if any was dropped.
fn prune(link: &mut Link, t: u64) -> bool {
    let before = link.leases.len();
    link.leases.retain(|l| l.expires_at > t);
    link.leases.len() != before
}

/// Removes the claim's lease; true if it was there.
fn drop_lease(link: &mut Link, claim: &Claim) -> bool {
    let before = link.leases.len();
    link.leases.retain(|l| l.lease != claim.lease);
    link.leases.len() != before
}

fn save(link: &Link) -> Op {
    put(Tree::Links, link.id.as_bytes(), link)
}

pub struct SledLinks {
    db: Arc<dyn Kv>,
    write: Arc<Mutex<()>>,
}

impl SledLinks {
    /// `write` is the lock every writer of links holds for its read-modify-write.
    pub fn new(db: Arc<dyn Kv>, write: Arc<Mutex<()>>) -> SledLinks {
        SledLinks { db, write }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stored(&self, id: &LinkId) -> Result<Option<Link>, RepoError> {
        Ok(get::<Link>(&*self.db, Tree::Links, id.to_string().as_bytes())?)
    }

    /// The link written back, with the event of what changed it: one batch.
    fn saved_with(&self, link: &Link, t: u64, event: Event) -> Result<Vec<Op>, RepoError> {
        let mut ops = vec![save(link)];
        ops.extend(event_ops(&*self.db, &link.account_id, &link.call_id, t, [event])?);
        Ok(ops)
    }

    /// Writes the file record and everything that points at it, under the lock.
    fn write_file(
        &self,
        claim: &Claim,
        file: NewFile,
        attestation: Option<crate::attest::Attestation>,
        t: u64,
    ) -> Result<Option<Result<LinkState, LinkState>>, RepoError> {
        let Some(mut link) = self.stored(&claim.link_id)? else {
            return Ok(None);
        };
        let state = link.state_at(t);
        if state != LinkState::Active {
            return Ok(Some(Err(state)));
        }
        // A claim whose lease ended (its renewals were lost) may still record the file,
        // but only if the link has room beside the uploads that hold leases now.
        prune(&mut link, t);
        let own = drop_lease(&mut link, claim);
        if !own && link.files_received + link.leases.len() as u32 >= link.max_files {
            return Ok(Some(Err(LinkState::Used)));
        }
        let Some(call) = get::<Call>(&*self.db, Tree::Calls, &scoped(&link.account_id, &link.call_id))?
        else {
            return Ok(None);
        };
        if self.db.get(Tree::Files, file.file_id.as_bytes())?.is_some() {
            return Err(RepoError::FileExists(file.file_id));
        }
        let mut record = FileRecord {
            id: file.file_id,
            account_id: link.account_id.clone(),
            call_id: call.id.clone(),
            link_id: link.id.clone(),
            contact: call.caller_number.clone(),
            name: file.display_name,
            kind: file.kind,
            size: file.size,
            sha256: file.sha256,
            scan: file.verdict,
            key_id: file.key_id,
            received_at: file.received_at,
            attestation,
            quarantine: None,
            previews: file.previews,
        };
        let mut ops = Vec::with_capacity(6);
        let held = record.scan.status() == ScanStatus::Unscanned;
        if held {
            // No trusted clamd could scan it: it is kept, but only reviewers see it until
            // the rescan decides.
            record.quarantine = Some(Quarantine {
                state: QuarantineState::Held,
                since: t,
                reason: record.scan.detail().unwrap_or_default().to_string(),
                decided_at: None,
                decided_by: None,
            });
            ops.extend(quarantine_entry(&record));
        }
        link.files_received += 1;
        let arrived = FileArrived {
            link_id: link.id.clone(),
            file_id: record.id.clone(),
            size: record.size,
            kind: record.kind,
            scan: record.scan.clone(),
        };
        let mut events = vec![if held {
            Event::FileQuarantined(arrived)
        } else {
            Event::FileStored(arrived)
        }];
        if link.files_received >= link.max_files {
            link.state = LinkState::Used;
            link.ended_at = Some(t);
            events.push(Event::LinkFinished {
                link_id: link.id.clone(),
            });
        }
        let audit = audit_op(
            &*self.db,
            "gateway",
            &link.account_id,
            if held { "file.quarantine" } else { "file.store" },
            &record.id,
            json!({"call_id": call.id, "scan": record.scan.status()}),
        )?;
        let seq = self.db.next_id()?;
        ops.extend([
            put(Tree::Files, record.id.as_bytes(), &record),
            Op::Put(
                Tree::CallFiles,
                numbered(&call_prefix(&call.account_id, &call.id), seq),
                record.id.as_bytes().to_vec(),
            ),
            Op::Put(
                Tree::AccountFiles,
                super::sled_lists::account_file_key(&call.account_id, seq),
                record.id.as_bytes().to_vec(),
            ),
            save(&link),
            Op::Put(
                Tree::Contacts,
                contact_key(&record),
                record.id.as_bytes().to_vec(),
            ),
            audit,
        ]);
        ops.extend(event_ops(&*self.db, &link.account_id, &call.id, t, events)?);
        self.db.write(ops)?;
        Ok(Some(Ok(link.state)))
    }
}

#[async_trait]
impl LinkRepo for SledLinks {
    async fn link(&self, id: &LinkId) -> Result<Option<Link>, RepoError> {
        self.stored(id)
    }

    async fn claim(&self, claim: &Claim, t: u64) -> Result<Option<Result<(), LinkState>>, RepoError> {
        let _w = self.lock();
        let Some(mut link) = self.stored(&claim.link_id)? else {
            return Ok(None);
        };
        let state = link.state_at(t);
        if state != LinkState::Active {
            return Ok(Some(Err(state)));
        }
        let pruned = prune(&mut link, t);
        if link.files_received + link.leases.len() as u32 >= link.max_files {
            if pruned {
                self.db.write(vec![save(&link)])?;
            }
            return Ok(Some(Err(LinkState::Used)));
        }
        link.leases.push(LeaseHold {
            lease: claim.lease,
            expires_at: t.saturating_add(claim.ttl_secs),
        });
        self.db.write(self.saved_with(
            &link,
            t,
            Event::UploadStarted {
                link_id: link.id.clone(),
            },
        )?)?;
        Ok(Some(Ok(())))
    }

    async fn renew(&self, claim: &Claim, t: u64) -> Result<bool, RepoError> {
        let _w = self.lock();
        let Some(mut link) = self.stored(&claim.link_id)? else {
            return Ok(false);
        };
        let active = link.state_at(t) == LinkState::Active;
        let held = match link.leases.iter_mut().find(|l| l.lease == claim.lease) {
            Some(l) if active && l.expires_at > t => {
                l.expires_at = t.saturating_add(claim.ttl_secs);
                true
            }
            _ => false,
        };
        let changed = if held {
            true
        } else {
            drop_lease(&mut link, claim) | prune(&mut link, t)
        };
        if changed {
            self.db.write(vec![save(&link)])?;
        }
        Ok(held)
    }

    async fn release(&self, claim: &Claim) -> Result<(), RepoError> {
        let _w = self.lock();
        if let Some(mut link) = self.stored(&claim.link_id)? {
            if drop_lease(&mut link, claim) {
                self.db.write(vec![save(&link)])?;
            }
        }
        Ok(())
    }

    async fn record_file(
        &self,
        claim: &Claim,
        file: NewFile,
        attestation: Option<crate::attest::Attestation>,
        t: u64,
    ) -> Result<Option<Result<LinkState, LinkState>>, RepoError> {
        // Under the lock, so a concurrent claim counts the file exactly once (leased or
        // received); the durable wait after it.
        let written = {
            let _w = self.lock();
            let written = self.write_file(claim, file, attestation, t)?;
            if matches!(written, Some(Err(_))) {
                // Refused: its lease ends now rather than at expiry.
                if let Some(mut link) = self.stored(&claim.link_id)? {
                    if drop_lease(&mut link, claim) {
                        self.db.write(vec![save(&link)])?;
                    }
                }
            }
            written
        };
        if matches!(written, Some(Ok(_))) {
            self.db.durable().await?;
        }
        Ok(written)
    }

    async fn record_refusal(&self, id: &LinkId, refusal: Refusal, t: u64) -> Result<Option<()>, RepoError> {
        {
            let _w = self.lock();
            let Some(link) = self.stored(id)? else {
                return Ok(None);
            };
            let key = scoped(&link.account_id, &link.call_id);
            let Some(mut call) = get::<Call>(&*self.db, Tree::Calls, &key)? else {
                return Ok(None);
            };
            let prefix = call_prefix(&link.account_id, &link.call_id);
            let mut ops = Vec::new();
            if call.events_next - call.events_dropped >= MAX_CALL_EVENTS {
                // Bounded: a caller looping refused uploads cannot grow the call without
                // end. The count of what was dropped is kept.
                ops.push(Op::Delete(
                    Tree::CallEvents,
                    numbered(&prefix, call.events_dropped),
                ));
                call.events_dropped += 1;
            }
            let event = CallEvent {
                at: t,
                event: Event::UploadRefused(UploadRefused {
                    code: refusal.code,
                    name: refusal.display_name,
                    size: refusal.size,
                    scan: refusal.verdict,
                    link_id: link.id.clone(),
                    message: refusal.message,
                    lang: refusal.lang,
                }),
            };
            ops.push(put(Tree::CallEvents, numbered(&prefix, call.events_next), &event));
            ops.extend(event_ops(
                &*self.db,
                &link.account_id,
                &link.call_id,
                t,
                [event.event],
            )?);
            call.events_next += 1;
            ops.push(put(Tree::Calls, key, &call));
            self.db.write(ops)?;
        }
        self.db.durable().await?;
        Ok(Some(()))
    }

    async fn finish(&self, id: &LinkId, t: u64) -> Result<Option<LinkState>, RepoError> {
        {
            let _w = self.lock();
            let Some(mut link) = self.stored(id)? else {
                return Ok(None);
            };
            let state = link.state_at(t);
            if state != LinkState::Active {
                return Ok(Some(state));
            }
            link.state = LinkState::Used;
            link.ended_at = Some(t);
            link.leases.clear();
            self.db.write(self.saved_with(
                &link,
                t,
                Event::LinkFinished {
                    link_id: link.id.clone(),
                },
            )?)?;
        }
        self.db.durable().await?;
        Ok(Some(LinkState::Used))
    }

    async fn opened(&self, id: &LinkId, t: u64) -> Result<Option<bool>, RepoError> {
        let Some(link) = self.stored(id)? else {
            return Ok(None);
        };
        // Every page view asks; only the first on an active link writes, so the common case
        // is a read without the lock.
        if link.opened_at.is_some() || link.state_at(t) != LinkState::Active {
            return Ok(Some(false));
        }
        let _w = self.lock();
        let Some(mut link) = self.stored(id)? else {
            return Ok(None);
        };
        if link.opened_at.is_some() || link.state_at(t) != LinkState::Active {
            return Ok(Some(false));
        }
        link.opened_at = Some(t);
        let opened = Event::LinkOpened {
            link_id: link.id.clone(),
        };
        self.db.write(self.saved_with(&link, t, opened)?)?;
        Ok(Some(true))
    }

    async fn uploads_in_flight(&self, link_id: &str, t: u64) -> Result<u32, RepoError> {
        let link = get::<Link>(&*self.db, Tree::Links, link_id.as_bytes())?;
        Ok(link.map_or(0, |l| l.leases.iter().filter(|h| h.expires_at > t).count() as u32))
    }
}
