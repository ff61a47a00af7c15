//! Issuing, resending and revoking upload links. The link is stored before the SMS is
//! sent, so a provider failure leaves a usable link and a failed message on the call.

use std::str::FromStr;
use std::sync::Arc;

use serde_json::json;
use upgate_gateway::control_link::LinkState;
use upgate_gateway::token::{self, LinkId};

use super::idempotency::Begun;
use super::{audit_op, ServiceError};
use super::{call_prefix, get, numbered, put, Actor, Service};
use crate::db::{Durable, Op, Tree};
use crate::ids::new_id;
use crate::model::{Call, Link, SmsMessage, SmsStatus};
use crate::redact::{hide, mask_numbers, mask_phone};
use crate::settings::sms_body;
use crate::sms::text::analyze;
use upgate_gateway::sys::now;

fn gone(link: &Link, t: u64) -> ServiceError {
    ServiceError::LinkNotActive(link.state_at(t))
}

/// A link as issued or resent: its record, its URL (shown here and texted, never stored)
/// and the message that carried it.
#[derive(Debug, Clone)]
pub struct IssuedLink {
    pub link: Link,
    pub url: String,
    pub sms: SmsMessage,
}

impl Service {
    /// `https://HOST/u/TOKEN`, recomputed from the stored fields: the token is never stored.
    pub fn link_url(&self, link: &Link) -> Result<String, ServiceError> {
        let keys = self.keys.current();
        let key = keys.links.get(link.key_id).ok_or(ServiceError::LinkKeyRetired)?;
        let id = LinkId::from_str(&link.id).map_err(|_| ServiceError::NotFound("link"))?;
        Ok(format!(
            "{}/u/{}",
            self.public_url,
            token::issue(key, &id, link.expires_at)
        ))
    }

    /// Stores a new active link for the call and supersedes the call's earlier one. Only the
    /// call's latest link can be active (each new one supersedes the one before), so this reads
    /// one link whatever the call's age. Returns what resolves once the link is durable: wait
    /// for it before texting the link to anyone.
    fn create_link(&self, actor: &Actor, call_id: &str) -> Result<(Link, Call, Durable), ServiceError> {
        // The superseded link is read and written back: hold the lock across both, or a file
        // committed on it in between would be lost.
        let w = self.write_lock();
        let call = self.call(&actor.account_id, call_id)?;
        let assistant = self.assistant(&actor.account_id, &call.assistant_id)?;
        let s = &assistant.file_upload;
        if !self.plan_has_sms(&actor.account_id)? {
            return Err(ServiceError::PlanLacksSms);
        }
        if !s.enabled {
            return Err(ServiceError::FileUploadDisabled);
        }
        // Last check before anything is written: a refused text leaves no new link behind.
        self.admit_sms(&actor.account_id, &call.caller_number)?;
        let t = now();
        let id = LinkId::random().map_err(|_| ServiceError::NoRandomness)?;
        let link = Link {
            id: id.to_string(),
            account_id: actor.account_id.clone(),
            call_id: call.id.clone(),
            state: LinkState::Active,
            key_id: self.keys.current().links.current().id(),
            created_at: t,
            expires_at: t + s.link_ttl_seconds,
            message: s.message.clone(),
            allowed_types: s.allowed_types.clone(),
            max_file_bytes: s.max_file_bytes,
            max_files: s.max_files,
            files_received: 0,
            ended_at: None,
            leases: Vec::new(),
        };
        let prefix = call_prefix(&call.account_id, &call.id);
        let mut ops = Vec::new();
        if let Some((_, latest)) = self.db.scan_prefix_rev(Tree::CallLinks, &prefix, 1)?.pop() {
            if let Some(mut old) = get::<Link>(&*self.db, Tree::Links, &latest)? {
                if old.state_at(t) == LinkState::Active {
                    old.state = LinkState::Superseded;
                    old.ended_at = Some(t);
                    ops.push(put(Tree::Links, old.id.as_bytes(), &old));
                }
            }
        }
        // The record before its index entry: a reader that sees the entry finds the link.
        ops.push(put(Tree::Links, link.id.as_bytes(), &link));
        let seq = self.db.next_id()?;
        ops.push(Op::Put(
            Tree::CallLinks,
            numbered(&prefix, seq),
            link.id.as_bytes().to_vec(),
        ));
        ops.push(audit_op(
            &*self.db,
            &actor.token_id,
            &actor.account_id,
            "link.issue",
            &link.id,
            json!({"call_id": call.id}),
        )?);
        let durable = self.commit(w, ops)?;
        Ok((link, call, durable))
    }

    /// Texts the link and records the message, whatever the provider says. The record is
    /// written, not yet durable: the request's last wait (in `keyed`) covers it.
    async fn text_link(&self, link: &Link, call: &Call) -> Result<SmsMessage, ServiceError> {
        let url = self.link_url(link)?;
        let body = sms_body(&link.message, &url);
        let info = analyze(&body);
        let sent = self.sms.send(&call.caller_number, &body).await;
        let (status, provider_id, error) = match sent {
            Ok(accepted) => {
                self.metrics.sms.with_label_values(&["sent"]).inc();
                (SmsStatus::Sent, Some(accepted.provider_id), None)
            }
            Err(e) => {
                self.metrics.sms.with_label_values(&["failed"]).inc();
                // A provider may quote what it was sent: the body and link go from the error
                // before it is kept (staff who may not see the link read the call), and the
                // number, which carriers echo, is masked in the log.
                let token = url.rsplit('/').next().unwrap_or_default();
                let error = hide(&e.to_string(), &[&body, &url, token]);
                tracing::warn!(
                    provider = self.sms.name(),
                    to = %mask_phone(&call.caller_number),
                    error = %mask_numbers(&error),
                    "SMS not sent"
                );
                (SmsStatus::Failed, None, Some(error))
            }
        };
        let message = SmsMessage {
            id: new_id("sms"),
            account_id: link.account_id.clone(),
            call_id: call.id.clone(),
            link_id: link.id.clone(),
            to: call.caller_number.clone(),
            provider: self.sms.name().into(),
            provider_id,
            status,
            error,
            encoding: info.encoding.as_str().into(),
            segments: info.segments,
            created_at: now(),
        };
        // Nothing is read back: the message and its place on the call are new keys, so no
        // lock is needed.
        let seq = self.db.next_id()?;
        self.db.write(vec![
            put(Tree::Sms, message.id.as_bytes(), &message),
            Op::Put(
                Tree::CallSms,
                numbered(&call_prefix(&call.account_id, &call.id), seq),
                message.id.as_bytes().to_vec(),
            ),
        ])?;
        Ok(message)
    }

    fn link_answer(&self, link: Link, sms: SmsMessage) -> Result<IssuedLink, ServiceError> {
        Ok(IssuedLink {
            url: self.link_url(&link)?,
            link,
            sms,
        })
    }

    /// Issues a link for the call and texts it. With an Idempotency-Key, a retry of the same
    /// request answers the first link and message again, texting nobody.
    pub async fn issue_link(
        self: &Arc<Self>,
        actor: Actor,
        call_id: String,
        idempotency_key: Option<String>,
    ) -> Result<IssuedLink, ServiceError> {
        let request = format!("POST /v1/calls/{call_id}/upload-links");
        let key = idempotency_key.map(|k| (actor.account_id.clone(), k));
        let this = self.clone();
        let work = async move {
            let (link, call, durable) = this.create_link(&actor, &call_id)?;
            // Stored for good before anyone is texted it.
            durable.await?;
            let sms = this.text_link(&link, &call).await?;
            Ok((link, sms))
        };
        self.keyed(key, request, work).await
    }

    /// Texts an active link again (a new message, the same link).
    pub async fn resend_link(
        self: &Arc<Self>,
        actor: Actor,
        link_id: String,
        idempotency_key: Option<String>,
    ) -> Result<IssuedLink, ServiceError> {
        let request = format!("POST /v1/upload-links/{link_id}/resend");
        let key = idempotency_key.map(|k| (actor.account_id.clone(), k));
        let this = self.clone();
        let work = async move {
            let link = this.link_for(&actor.account_id, &link_id)?;
            if link.state_at(now()) != LinkState::Active {
                return Err(gone(&link, now()));
            }
            let call = this.call(&actor.account_id, &link.call_id)?;
            this.admit_sms(&actor.account_id, &call.caller_number)?;
            let w = this.write_lock();
            let audit = audit_op(
                &*this.db,
                &actor.token_id,
                &actor.account_id,
                "link.resend",
                &link.id,
                json!({}),
            )?;
            this.commit(w, vec![audit])?.await?;
            let sms = this.text_link(&link, &call).await?;
            Ok((link, sms))
        };
        self.keyed(key, request, work).await
    }

    /// Runs `work` at most once per (account, Idempotency-Key) and answers with the link and
    /// message it produced, once everything the request wrote is durable (one shared wait for
    /// the message, the key's record and its answer).
    async fn keyed(
        self: &Arc<Self>,
        key: Option<(String, String)>,
        request: String,
        work: impl std::future::Future<Output = Result<(Link, SmsMessage), ServiceError>>,
    ) -> Result<IssuedLink, ServiceError> {
        let Some((account_id, key)) = key else {
            let (link, sms) = work.await?;
            self.db.durable().await?;
            return self.link_answer(link, sms);
        };
        match self.idempotency_begin(&account_id, &key, &request)? {
            Begun::Replay { link_id, sms_id } => {
                let link = self.link_for(&account_id, &link_id)?;
                let sms = get::<SmsMessage>(&*self.db, Tree::Sms, sms_id.as_bytes())?
                    .ok_or(ServiceError::NotFound("message"))?;
                // What is shown again may have been written a moment ago by the first request.
                self.db.durable().await?;
                self.link_answer(link, sms)
            }
            Begun::Fresh => match work.await {
                Ok((link, sms)) => {
                    self.idempotency_done(&account_id, &key, &link.id, &sms.id)?;
                    self.db.durable().await?;
                    self.link_answer(link, sms)
                }
                Err(problem) => {
                    self.idempotency_abort(&account_id, &key)?.await?;
                    Err(problem)
                }
            },
        }
    }

    pub fn revoke_link(&self, actor: &Actor, link_id: &str) -> Result<Link, ServiceError> {
        let w = self.write_lock();
        let mut link = self.link_for(&actor.account_id, link_id)?;
        let t = now();
        if link.state_at(t) == LinkState::Active {
            link.state = LinkState::Revoked;
            link.ended_at = Some(t);
            let audit = audit_op(
                &*self.db,
                &actor.token_id,
                &actor.account_id,
                "link.revoke",
                &link.id,
                json!({}),
            )?;
            self.commit(w, vec![put(Tree::Links, link.id.as_bytes(), &link), audit])?
                .wait()?;
        }
        Ok(link)
    }

    /// A link of this account; another account's link is "not found".
    pub fn link_for(&self, account_id: &str, link_id: &str) -> Result<Link, ServiceError> {
        if LinkId::from_str(link_id).is_err() {
            return Err(ServiceError::NotFound("link"));
        }
        get::<Link>(&*self.db, Tree::Links, link_id.as_bytes())?
            .filter(|l| l.account_id == account_id)
            .ok_or(ServiceError::NotFound("link"))
    }
}

/// Runs store work on a blocking thread.
pub async fn blocking<T: Send + 'static, E: From<ServiceError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| E::from(ServiceError::Internal(e.to_string())))?
}
