//! The control plane's side of [`ControlLink`]: what the gateway may ask about links.
//! Quotas hold exactly: claims are counted under the write lock together with stored files.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use upgate_gateway::control_link::{
    Claim, ControlError, ControlLink, LinkState, LinkView, NewFile, Refusal, ScanStatus,
};
use upgate_gateway::token::LinkId;

use super::{get, put, scoped, Service};
use crate::db::Tree;
use crate::model::{CallEvent, FileRecord, Link};
use crate::settings::allowed_kinds;
use upgate_gateway::routes::now;

/// The most events a call keeps; older ones are dropped and counted.
const MAX_CALL_EVENTS: usize = 100;

fn unavailable(e: impl std::fmt::Display) -> ControlError {
    ControlError::Unavailable(e.to_string())
}

/// Runs store work for the gateway on a blocking thread.
async fn run<T: Send + 'static>(
    svc: &Arc<Service>,
    f: impl FnOnce(&Service) -> Result<T, ControlError> + Send + 'static,
) -> Result<T, ControlError> {
    let svc = svc.clone();
    tokio::task::spawn_blocking(move || f(&svc))
        .await
        .map_err(unavailable)?
}

impl Service {
    fn stored_link(&self, id: &LinkId) -> Result<Link, ControlError> {
        get::<Link>(&*self.db, Tree::Links, id.to_string().as_bytes())
            .map_err(unavailable)?
            .ok_or(ControlError::UnknownLink)
    }

    fn pending(&self, link_id: &str) -> u32 {
        let pending = self.pending.lock().expect("pending lock");
        pending.get(link_id).map_or(0, |slots| slots.len() as u32)
    }

    /// Gives a claimed slot back; a second call for the same claim does nothing.
    fn unpend(&self, claim: &Claim) {
        let key = claim.link_id.to_string();
        let mut pending = self.pending.lock().expect("pending lock");
        if let Some(slots) = pending.get_mut(&key) {
            slots.remove(&claim.slot);
            if slots.is_empty() {
                pending.remove(&key);
            }
        }
    }
}

/// The in-process control link: the gateway calls the service directly.
pub struct InProcess(pub Arc<Service>);

#[async_trait]
impl ControlLink for InProcess {
    async fn link(&self, id: &LinkId) -> Result<LinkView, ControlError> {
        let id = *id;
        run(&self.0, move |svc| {
            let link = svc.stored_link(&id)?;
            Ok(LinkView {
                state: link.state_at(now()),
                message: link.message.clone(),
                allowed: allowed_kinds(&link.allowed_types),
                max_file_bytes: link.max_file_bytes,
                max_files: link.max_files,
                files_received: link.files_received,
                expires_at: link.expires_at,
            })
        })
        .await
    }

    async fn claim(&self, id: &LinkId) -> Result<Result<Claim, LinkState>, ControlError> {
        let id = *id;
        run(&self.0, move |svc| {
            let _w = svc.write_lock();
            let link = svc.stored_link(&id)?;
            let state = link.state_at(now());
            if state != LinkState::Active {
                return Ok(Err(state));
            }
            let key = link.id.clone();
            if link.files_received + svc.pending(&key) >= link.max_files {
                return Ok(Err(LinkState::Used));
            }
            let slot = svc.next_slot.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            svc.pending
                .lock()
                .expect("pending lock")
                .entry(key)
                .or_default()
                .insert(slot);
            Ok(Ok(Claim { link_id: id, slot }))
        })
        .await
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
        let id = claim.link_id;
        let claim = claim.clone();
        run(&self.0, move |svc| {
            let _w = svc.write_lock();
            let result = (|| {
                let mut link = svc.stored_link(&id)?;
                let t = now();
                let state = link.state_at(t);
                if state != LinkState::Active {
                    return Ok(Err(state));
                }
                let mut call: crate::model::Call =
                    get(&*svc.db, Tree::Calls, &scoped(&link.account_id, &link.call_id))
                        .map_err(unavailable)?
                        .ok_or(ControlError::UnknownLink)?;
                let record = FileRecord {
                    id: file.file_id.clone(),
                    account_id: link.account_id.clone(),
                    call_id: call.id.clone(),
                    link_id: link.id.clone(),
                    contact: call.caller_number.clone(),
                    name: file.display_name.clone(),
                    kind: file.kind.mime().into(),
                    size: file.size,
                    sha256: file.sha256.clone(),
                    scan: file.verdict.clone(),
                    key_id: file.key_id,
                    received_at: file.received_at,
                };
                link.files_received += 1;
                if link.files_received >= link.max_files {
                    link.state = LinkState::Used;
                    link.ended_at = Some(t);
                }
                call.file_ids.push(record.id.clone());
                let contact_key = format!("{}/{}/{}", link.account_id, call.caller_number, record.id);
                let audit = svc
                    .audit_op(
                        "gateway",
                        &link.account_id,
                        "file.store",
                        &record.id,
                        json!({"call_id": call.id, "scan": record.scan.status()}),
                    )
                    .map_err(unavailable)?;
                svc.db
                    .apply(vec![
                        put(Tree::Files, record.id.as_bytes(), &record),
                        put(Tree::Calls, scoped(&call.account_id, &call.id), &call),
                        put(Tree::Links, link.id.as_bytes(), &link),
                        crate::db::Op::Put(Tree::Contacts, contact_key.into_bytes(), vec![]),
                        audit,
                    ])
                    .map_err(unavailable)?;
                Ok(Ok(link.state))
            })();
            svc.unpend(&claim);
            result
        })
        .await
    }

    async fn refused(&self, id: &LinkId, refusal: Refusal) {
        let id = *id;
        let result = run(&self.0, move |svc| {
            let _w = svc.write_lock();
            let link = svc.stored_link(&id)?;
            let key = scoped(&link.account_id, &link.call_id);
            let Some(mut call) = get::<crate::model::Call>(&*svc.db, Tree::Calls, &key).map_err(unavailable)? else {
                return Ok(());
            };
            if call.events.len() >= MAX_CALL_EVENTS {
                // Bounded: a caller looping refused uploads cannot grow the record (and every
                // later write of it) without end. The count of what was dropped is kept.
                call.events.remove(0);
                call.events_dropped += 1;
            }
            call.events.push(CallEvent {
                at: now(),
                kind: "upload_refused".into(),
                detail: json!({"code": refusal.code, "name": refusal.display_name, "size": refusal.size, "scan": refusal.verdict, "link_id": link.id}),
            });
            svc.db.apply(vec![put(Tree::Calls, key, &call)]).map_err(unavailable)
        })
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "could not record a refused upload");
        }
    }

    async fn finish(&self, id: &LinkId) -> Result<LinkState, ControlError> {
        let id = *id;
        run(&self.0, move |svc| {
            let _w = svc.write_lock();
            let mut link = svc.stored_link(&id)?;
            let t = now();
            match link.state_at(t) {
                LinkState::Active => {
                    link.state = LinkState::Used;
                    link.ended_at = Some(t);
                    svc.db
                        .apply(vec![put(Tree::Links, link.id.as_bytes(), &link)])
                        .map_err(unavailable)?;
                    Ok(LinkState::Used)
                }
                other => Ok(other),
            }
        })
        .await
    }
}
