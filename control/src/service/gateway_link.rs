//! The control plane's side of [`ControlLink`]: what the gateway may ask about links.
//! Quotas hold exactly: claims are counted under the write lock together with stored files.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use upgate_gateway::control_link::{
    Claim, ControlError, ControlLink, KeySet, LinkState, LinkView, NewFile, Refusal, ScanStatus,
};
use upgate_gateway::token::LinkId;

use super::{call_prefix, decode, get, numbered, put, scoped, Service};
use crate::db::{Durable, Op, Tree};
use crate::model::{Call, CallEvent, Event, FileRecord, Link, UploadRefused};
use crate::settings::allowed_kinds;
use upgate_gateway::sys::{now, random};

/// The most events a call keeps; older ones are dropped and counted.
const MAX_CALL_EVENTS: u64 = 100;

fn unavailable(e: impl std::fmt::Display) -> ControlError {
    ControlError::Unavailable(e.to_string())
}

/// A claimed file slot: held until `expires_at` unless renewed, released, or committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub expires_at: u64,
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

/// A link's leases, split into the live ones (their numbers) and deletes for the ended ones.
struct Leases {
    live: Vec<u64>,
    ended: Vec<Op>,
}

// Every call below runs on the caller's task: the store work before a durable wait is a few
// in-memory reads and one write, shorter than a hand-off to a blocking thread, and the wait
// itself is a future that holds no thread. The write lock is a std mutex held only for that
// in-memory part, never across an await. Lease writes are not waited for: a lease lost in a
// crash only frees its slot early, and the commit checks the quota again.
impl Service {
    fn stored_link(&self, id: &LinkId) -> Result<Link, ControlError> {
        get::<Link>(&*self.db, Tree::Links, id.to_string().as_bytes())
            .map_err(unavailable)?
            .ok_or(ControlError::UnknownLink)
    }

    fn leases(&self, link_id: &str, t: u64) -> Result<Leases, ControlError> {
        let mut leases = Leases {
            live: Vec::new(),
            ended: Vec::new(),
        };
        for (key, value) in self
            .db
            .scan_prefix(Tree::Leases, &lease_prefix(link_id))
            .map_err(unavailable)?
        {
            let lease: Lease = decode(Tree::Leases, &value).map_err(unavailable)?;
            match lease_number(&key) {
                Some(n) if lease.expires_at > t => leases.live.push(n),
                _ => leases.ended.push(Op::Delete(Tree::Leases, key)),
            }
        }
        Ok(leases)
    }

    pub(crate) fn gateway_key_set(&self) -> KeySet {
        self.keys.current().gateway_set()
    }

    /// How many slots of a link are held by uploads in flight at `t`.
    pub(crate) fn uploads_in_flight(&self, link_id: &str, t: u64) -> Result<u32, crate::db::DbError> {
        let mut live = 0;
        for (_, value) in self.db.scan_prefix(Tree::Leases, &lease_prefix(link_id))? {
            live += u32::from(decode::<Lease>(Tree::Leases, &value)?.expires_at > t);
        }
        Ok(live)
    }

    #[cfg(test)]
    pub(crate) fn pending(&self, link_id: &str) -> u32 {
        self.uploads_in_flight(link_id, now()).unwrap()
    }

    fn ttl(&self) -> u64 {
        self.lease_ttl.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lease_op(&self, claim: &Claim, t: u64) -> Op {
        put(
            Tree::Leases,
            lease_key(claim),
            &Lease {
                expires_at: t + claim.ttl_secs,
            },
        )
    }

    fn claim_slot(&self, id: &LinkId) -> Result<Result<Claim, LinkState>, ControlError> {
        let w = self.write_lock();
        let link = self.stored_link(id)?;
        let t = now();
        let state = link.state_at(t);
        if state != LinkState::Active {
            return Ok(Err(state));
        }
        let Leases { live, mut ended } = self.leases(&link.id, t)?;
        if link.files_received + live.len() as u32 >= link.max_files {
            if !ended.is_empty() {
                self.db.write(ended).map_err(unavailable)?;
            }
            return Ok(Err(LinkState::Used));
        }
        let claim = Claim {
            link_id: *id,
            lease: random::<8>().map(u64::from_be_bytes).map_err(unavailable)?,
            ttl_secs: self.ttl(),
        };
        ended.push(self.lease_op(&claim, t));
        self.db.write(ended).map_err(unavailable)?;
        drop(w);
        Ok(Ok(claim))
    }

    fn renew_lease(&self, claim: &Claim) -> Result<bool, ControlError> {
        let w = self.write_lock();
        let t = now();
        let held = match get::<Lease>(&*self.db, Tree::Leases, &lease_key(claim)).map_err(unavailable)? {
            Some(lease) => {
                lease.expires_at > t && self.stored_link(&claim.link_id)?.state_at(t) == LinkState::Active
            }
            None => false,
        };
        let op = if held {
            self.lease_op(claim, t)
        } else {
            Op::Delete(Tree::Leases, lease_key(claim))
        };
        self.db.write(vec![op]).map_err(unavailable)?;
        drop(w);
        Ok(held)
    }

    /// Gives a claimed slot back; a second call for the same claim does nothing.
    fn unpend(&self, claim: &Claim) {
        let _w = self.write_lock();
        if let Err(e) = self.db.write(vec![Op::Delete(Tree::Leases, lease_key(claim))]) {
            tracing::error!(error = %e, "could not release a slot; its lease will end by itself");
        }
    }

    /// Records the file and ends its lease in one batch under the lock, so a concurrent claim
    /// counts the file exactly once (leased or received). Returns the link's state after it
    /// and what resolves once the record is durable.
    fn record_file(
        &self,
        claim: &Claim,
        file: NewFile,
    ) -> Result<Result<(LinkState, Durable), LinkState>, ControlError> {
        let w = self.write_lock();
        let result = (|| {
            let mut link = self.stored_link(&claim.link_id)?;
            let t = now();
            let state = link.state_at(t);
            if state != LinkState::Active {
                return Ok(Err(state));
            }
            // A claim whose lease ended (its renewals were lost) may still record the file,
            // but only if the link has room beside the uploads that hold leases now.
            let Leases { live, ended } = self.leases(&link.id, t)?;
            let own = live.contains(&claim.lease);
            let others = live.len() as u32 - u32::from(own);
            if !own && link.files_received + others >= link.max_files {
                return Ok(Err(LinkState::Used));
            }
            let call: Call = get(&*self.db, Tree::Calls, &scoped(&link.account_id, &link.call_id))
                .map_err(unavailable)?
                .ok_or(ControlError::UnknownLink)?;
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
            let audit = self
                .audit_op(
                    "gateway",
                    &link.account_id,
                    "file.store",
                    &record.id,
                    json!({"call_id": call.id, "scan": record.scan.status()}),
                )
                .map_err(unavailable)?;
            let seq = self.db.next_id().map_err(unavailable)?;
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
            self.db.write(ops).map_err(unavailable)?;
            Ok(Ok(link.state))
        })();
        drop(w);
        if matches!(result, Ok(Err(_))) {
            self.unpend(claim);
        }
        result.map(|r| r.map(|state| (state, self.db.durable())))
    }

    /// Adds the refusal to the call's events, dropping the oldest past the bound.
    fn record_refusal(&self, id: &LinkId, refusal: Refusal) -> Result<Option<Durable>, ControlError> {
        let w = self.write_lock();
        let link = self.stored_link(id)?;
        let key = scoped(&link.account_id, &link.call_id);
        let Some(mut call) = get::<Call>(&*self.db, Tree::Calls, &key).map_err(unavailable)? else {
            return Ok(None);
        };
        let prefix = call_prefix(&link.account_id, &link.call_id);
        let mut ops = Vec::new();
        if call.events_next - call.events_dropped >= MAX_CALL_EVENTS {
            // Bounded: a caller looping refused uploads cannot grow the call without end.
            // The count of what was dropped is kept.
            ops.push(Op::Delete(
                Tree::CallEvents,
                numbered(&prefix, call.events_dropped),
            ));
            call.events_dropped += 1;
        }
        let event = CallEvent {
            at: now(),
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
        self.commit(w, ops).map(Some).map_err(unavailable)
    }

    fn finish_link(&self, id: &LinkId) -> Result<(LinkState, Option<Durable>), ControlError> {
        let w = self.write_lock();
        let mut link = self.stored_link(id)?;
        let t = now();
        match link.state_at(t) {
            LinkState::Active => {
                link.state = LinkState::Used;
                link.ended_at = Some(t);
                let durable = self
                    .commit(w, vec![put(Tree::Links, link.id.as_bytes(), &link)])
                    .map_err(unavailable)?;
                Ok((LinkState::Used, Some(durable)))
            }
            other => Ok((other, None)),
        }
    }
}

/// The in-process control link: the gateway calls the service directly.
pub struct InProcess(pub Arc<Service>);

#[async_trait]
impl ControlLink for InProcess {
    async fn link(&self, id: &LinkId) -> Result<LinkView, ControlError> {
        let link = self.0.stored_link(id)?;
        Ok(LinkView {
            state: link.state_at(now()),
            allowed: allowed_kinds(&link.allowed_types),
            message: link.message,
            max_file_bytes: link.max_file_bytes,
            max_files: link.max_files,
            files_received: link.files_received,
            expires_at: link.expires_at,
        })
    }

    async fn claim(&self, id: &LinkId) -> Result<Result<Claim, LinkState>, ControlError> {
        self.0.claim_slot(id)
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, ControlError> {
        self.0.renew_lease(claim)
    }

    async fn release(&self, claim: &Claim) {
        self.0.unpend(claim);
    }

    async fn commit(
        &self,
        claim: &Claim,
        file: NewFile,
    ) -> Result<Result<LinkState, LinkState>, ControlError> {
        // Never record "clean" without the engine that said so, whoever sent the file.
        if file.verdict.status() == ScanStatus::Clean && !file.verdict.is_trustworthy_clean() {
            return Err(ControlError::Unavailable(
                "a clean verdict without its scanner engine".into(),
            ));
        }
        match self.0.record_file(claim, file)? {
            Ok((state, durable)) => {
                // The gateway answers 201 only after this: the record is durable by then.
                durable.await.map_err(unavailable)?;
                Ok(Ok(state))
            }
            Err(state) => Ok(Err(state)),
        }
    }

    async fn refused(&self, id: &LinkId, refusal: Refusal) {
        let result = match self.0.record_refusal(id, refusal) {
            Ok(Some(durable)) => durable.await.map_err(unavailable),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "could not record a refused upload");
        }
    }

    async fn finish(&self, id: &LinkId) -> Result<LinkState, ControlError> {
        let (state, durable) = self.0.finish_link(id)?;
        if let Some(durable) = durable {
            durable.await.map_err(unavailable)?;
        }
        Ok(state)
    }

    async fn keys(&self) -> Result<KeySet, ControlError> {
        Ok(self.0.gateway_key_set())
    }
}

#[cfg(test)]
#[path = "link_suite.rs"]
mod link_suite;
