//! Issuing, resending and revoking upload links. The link is stored before the SMS is
//! sent, so a provider failure leaves a usable link and a failed message on the call.

use std::str::FromStr;
use std::sync::Arc;

use serde_json::json;
use upgate_gateway::control_link::LinkState;
use upgate_gateway::token::{self, LinkId};

use super::{Actor, IdempotencyError, LinkError, Service, ServiceError};
use crate::ids::new_id;
use crate::model::{Call, Link, SmsMessage, SmsStatus};
use crate::redact::{hide, mask_numbers, mask_phone};
use crate::repo::Begun;
use crate::settings::sms_body;
use crate::sms::text::analyze;
use upgate_gateway::sys::now;

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
        let key = keys.links.get(link.key_id).ok_or(LinkError::KeyRetired)?;
        let id = LinkId::from_str(&link.id).map_err(|_| ServiceError::NotFound("link"))?;
        Ok(format!(
            "{}/u/{}",
            self.public_url,
            token::issue(key, &id, link.expires_at)
        ))
    }

    /// Stores a new active link for the call, superseding the call's earlier one; durable
    /// when it returns, so it can be texted.
    async fn create_link(&self, actor: &Actor, call_id: &str) -> Result<(Link, Call), ServiceError> {
        let call = self.call(&actor.account_id, call_id).await?;
        let assistant = self.assistant(&actor.account_id, &call.assistant_id).await?;
        let s = &assistant.file_upload;
        if !self.plan_has_sms(&actor.account_id).await? {
            return Err(LinkError::PlanLacksSms.into());
        }
        if !s.enabled {
            return Err(LinkError::FileUploadDisabled.into());
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
            opened_at: None,
            leases: Vec::new(),
        };
        let audit = actor.note("link.issue", &link.id, json!({"call_id": call.id}));
        self.repos.issue.issue(&link, audit).await?;
        Ok((link, call))
    }

    /// Texts the link and records the message, whatever the provider says.
    async fn text_link(&self, link: &Link, call: &Call) -> Result<SmsMessage, ServiceError> {
        let url = self.link_url(link)?;
        let body = sms_body(&link.message, &url);
        let info = analyze(&body);
        let sent = self.sms.send(&call.caller_number, &body).await;
        let (status, provider_id, error) = match sent {
            Ok(accepted) => {
                self.metrics.sms.with_label_values(&["sent"]).inc();
                self.metrics.link_funnel.with_label_values(&["sent"]).inc();
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
            delivery: None,
            carrier_error: None,
            delivery_at: None,
        };
        self.repos.issue.record_sms(&message).await?;
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
            // Stored for good before anyone is texted it.
            let (link, call) = this.create_link(&actor, &call_id).await?;
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
        new_link: bool,
        idempotency_key: Option<String>,
    ) -> Result<IssuedLink, ServiceError> {
        let request = format!("POST /v1/upload-links/{link_id}/resend new_link={new_link}");
        let key = idempotency_key.map(|k| (actor.account_id.clone(), k));
        let this = self.clone();
        let work = async move {
            let link = this.link_for(&actor.account_id, &link_id).await?;
            // A link that still works is texted again; one that ended (or a new one asked
            // for) is replaced by a new link on the same call, as issuing would.
            if new_link || link.state_at(now()) != LinkState::Active {
                let (link, call) = this.create_link(&actor, &link.call_id).await?;
                let sms = this.text_link(&link, &call).await?;
                return Ok((link, sms));
            }
            let call = this.call(&actor.account_id, &link.call_id).await?;
            this.admit_sms(&actor.account_id, &call.caller_number)?;
            let audit = actor.note("link.resend", &link.id, json!({}));
            this.repos.audit.append(audit).await?;
            let sms = this.text_link(&link, &call).await?;
            Ok((link, sms))
        };
        self.keyed(key, request, work).await
    }

    /// Runs `work` at most once per (account, Idempotency-Key) and answers with the link and
    /// message it produced.
    async fn keyed(
        self: &Arc<Self>,
        key: Option<(String, String)>,
        request: String,
        work: impl std::future::Future<Output = Result<(Link, SmsMessage), ServiceError>>,
    ) -> Result<IssuedLink, ServiceError> {
        let Some((account_id, key)) = key else {
            let (link, sms) = work.await?;
            return self.link_answer(link, sms);
        };
        match self.idempotency_begin(&account_id, &key, &request).await? {
            Begun::Replay { link_id, sms_id } => {
                let link = self.link_for(&account_id, &link_id).await?;
                let sms = self
                    .repos
                    .issue
                    .sms(&account_id, &sms_id)
                    .await?
                    .ok_or(ServiceError::NotFound("message"))?;
                self.link_answer(link, sms)
            }
            Begun::Reused => Err(IdempotencyError::KeyReused.into()),
            Begun::InUse => Err(IdempotencyError::KeyInUse.into()),
            Begun::Fresh => match work.await {
                Ok((link, sms)) => {
                    self.repos
                        .idempotency
                        .done(&account_id, &key, &link.id, &sms.id)
                        .await?;
                    self.link_answer(link, sms)
                }
                Err(problem) => {
                    self.repos.idempotency.abort(&account_id, &key).await?;
                    Err(problem)
                }
            },
        }
    }

    pub async fn revoke_link(&self, actor: &Actor, link_id: &str) -> Result<Link, ServiceError> {
        if LinkId::from_str(link_id).is_err() {
            return Err(ServiceError::NotFound("link"));
        }
        let audit = actor.note("link.revoke", link_id, json!({}));
        self.repos
            .issue
            .revoke(&actor.account_id, link_id, now(), audit)
            .await?
            .ok_or(ServiceError::NotFound("link"))
    }

    /// A link of this account; another account's link is "not found".
    pub async fn link_for(&self, account_id: &str, link_id: &str) -> Result<Link, ServiceError> {
        if LinkId::from_str(link_id).is_err() {
            return Err(ServiceError::NotFound("link"));
        }
        self.repos
            .issue
            .account_link(account_id, link_id)
            .await?
            .ok_or(ServiceError::NotFound("link"))
    }
}
