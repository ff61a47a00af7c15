//! [`LinkRepo`] on the embedded store. Key layout: `Links` by link id; `Leases` by link id
//! and lease number; a stored file in `Files`, `CallFiles` (`account/call/` + sequence),
//! `Contacts` (`account/number/file`) and `Audit`; refusals in `CallEvents` under the call.
//!
//! Every method runs on the caller's task: the store work before a durable wait is a few
//! in-memory reads and one write, shorter than a hand-off to a blocking thread, and the
//! wait itself is a future that holds no thread. The service's write lock (shared with its
//! other writers of links) is held only for that in-memory part, never across an await.
//! Lease writes are not waited for: a lease lost in a crash only frees its slot early, and
//! `record_file` checks the quota again.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use upgate_gateway::control_link::{Claim, LinkState, NewFile, Refusal};
use upgate_gateway::token::LinkId;

use super::{LinkRepo, RepoError};
use crate::db::{Kv, Op, Tree};
use crate::model::{Call, CallEvent, Event, FileRecord, Link, UploadRefused};
use crate::service::{audit_op, call_prefix, decode, get, numbered, put, scoped};

/// The most events a call keeps; older ones are dropped and counted.
const MAX_CALL_EVENTS: u64 = 100;

/// A claimed file slot: held until `expires_at` unless renewed, released, or committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    expires_at: u64,
}

fn lease_prefix(link_id: &str) -> Vec<u8> {
    format!("{link_id}/").into_bytes()
}

fn lease_key(claim: &Claim) -> Vec<u8> {
    numbered(&lease_prefix(&claim.link_id.to_string()), claim.lease)
}

/// The lease number in a lease key (its last eight bytes).
fn lease_number(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

fn lease_op(claim: &Claim, t: u64) -> Op {
    put(
        Tree::Leases,
        lease_key(claim),
        &Lease {
            expires_at: t + claim.ttl_secs,
        },
    )
}

/// A link's leases: the live ones (their numbers) and deletes for the ended ones.
struct Leases {
    live: Vec<u64>,
    ended: Vec<Op>,
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

    fn leases(&self, link_id: &str, t: u64) -> Result<Leases, RepoError> {
        let mut leases = Leases {
            live: Vec::new(),
            ended: Vec::new(),
        };
        for (key, value) in self.db.scan_prefix(Tree::Leases, &lease_prefix(link_id))? {
            let lease: Lease = decode(Tree::Leases, &value)?;
            match lease_number(&key) {
                Some(n) if lease.expires_at > t => leases.live.push(n),
                _ => leases.ended.push(Op::Delete(Tree::Leases, key)),
            }
        }
        Ok(leases)
    }

    /// Writes the file record and everything that points at it, under the lock.
    fn write_file(
        &self,
        claim: &Claim,
        file: NewFile,
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
        let Leases { live, ended } = self.leases(&link.id, t)?;
        let own = live.contains(&claim.lease);
        let others = live.len() as u32 - u32::from(own);
        if !own && link.files_received + others >= link.max_files {
            return Ok(Some(Err(LinkState::Used)));
        }
        let Some(call) = get::<Call>(&*self.db, Tree::Calls, &scoped(&link.account_id, &link.call_id))?
        else {
            return Ok(None);
        };
        let record = FileRecord {
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
        };
        link.files_received += 1;
        if link.files_received >= link.max_files {
            link.state = LinkState::Used;
            link.ended_at = Some(t);
        }
        let contact_key = format!("{}/{}/{}", link.account_id, call.caller_number, record.id);
        let audit = audit_op(
            &*self.db,
            "gateway",
            &link.account_id,
            "file.store",
            &record.id,
            json!({"call_id": call.id, "scan": record.scan.status()}),
        )?;
        let seq = self.db.next_id()?;
        let mut ops = ended;
        ops.push(Op::Delete(Tree::Leases, lease_key(claim)));
        ops.extend([
            put(Tree::Files, record.id.as_bytes(), &record),
            Op::Put(
                Tree::CallFiles,
                numbered(&call_prefix(&call.account_id, &call.id), seq),
                record.id.as_bytes().to_vec(),
            ),
            put(Tree::Links, link.id.as_bytes(), &link),
            Op::Put(Tree::Contacts, contact_key.into_bytes(), vec![]),
            audit,
        ]);
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
        let Some(link) = self.stored(&claim.link_id)? else {
            return Ok(None);
        };
        let state = link.state_at(t);
        if state != LinkState::Active {
            return Ok(Some(Err(state)));
        }
        let Leases { live, mut ended } = self.leases(&link.id, t)?;
        if link.files_received + live.len() as u32 >= link.max_files {
            if !ended.is_empty() {
                self.db.write(ended)?;
            }
            return Ok(Some(Err(LinkState::Used)));
        }
        ended.push(lease_op(claim, t));
        self.db.write(ended)?;
        Ok(Some(Ok(())))
    }

    async fn renew(&self, claim: &Claim, t: u64) -> Result<bool, RepoError> {
        let _w = self.lock();
        let held = match get::<Lease>(&*self.db, Tree::Leases, &lease_key(claim))? {
            Some(lease) => {
                lease.expires_at > t
                    && self
                        .stored(&claim.link_id)?
                        .is_some_and(|l| l.state_at(t) == LinkState::Active)
            }
            None => false,
        };
        let op = if held {
            lease_op(claim, t)
        } else {
            Op::Delete(Tree::Leases, lease_key(claim))
        };
        self.db.write(vec![op])?;
        Ok(held)
    }

    async fn release(&self, claim: &Claim) -> Result<(), RepoError> {
        let _w = self.lock();
        self.db.write(vec![Op::Delete(Tree::Leases, lease_key(claim))])?;
        Ok(())
    }

    async fn record_file(
        &self,
        claim: &Claim,
        file: NewFile,
        t: u64,
    ) -> Result<Option<Result<LinkState, LinkState>>, RepoError> {
        // Under the lock, so a concurrent claim counts the file exactly once (leased or
        // received); the durable wait after it.
        let written = {
            let _w = self.lock();
            let written = self.write_file(claim, file, t);
            if matches!(written, Ok(Some(Err(_)))) {
                // Refused: its lease ends now rather than at expiry.
                self.db.write(vec![Op::Delete(Tree::Leases, lease_key(claim))])?;
            }
            written?
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
                }),
            };
            ops.push(put(Tree::CallEvents, numbered(&prefix, call.events_next), &event));
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
            self.db.write(vec![put(Tree::Links, link.id.as_bytes(), &link)])?;
        }
        self.db.durable().await?;
        Ok(Some(LinkState::Used))
    }

    async fn uploads_in_flight(&self, link_id: &str, t: u64) -> Result<u32, RepoError> {
        let mut live = 0;
        for (_, value) in self.db.scan_prefix(Tree::Leases, &lease_prefix(link_id))? {
            live += u32::from(decode::<Lease>(Tree::Leases, &value)?.expires_at > t);
        }
        Ok(live)
    }
}
