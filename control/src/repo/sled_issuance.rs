//! [`IssueRepo`] on the embedded store: a link in `Links` by id and in `CallLinks` under its
//! call; a message in `Sms` by id and in `CallSms` under its call.

use async_trait::async_trait;
use upgate_gateway::control_link::LinkState;

use super::sled_events::event_ops;
use super::sled_expiry::expiry_entry;
use super::sled_keys::{call_prefix, decode, get, numbered, put};
use super::{AuditNote, IssueRepo, RepoError, SledStore};
use crate::db::{Op, Tree};
use crate::model::{Event, Link, SmsMessage, SmsStatus};

impl SledStore {
    fn own_link(&self, account_id: &str, link_id: &str) -> Result<Option<Link>, RepoError> {
        Ok(get::<Link>(&*self.db, Tree::Links, link_id.as_bytes())?.filter(|l| l.account_id == account_id))
    }
}

#[async_trait]
impl IssueRepo for SledStore {
    async fn issue(&self, link: &Link, audit: AuditNote) -> Result<(), RepoError> {
        let prefix = call_prefix(&link.account_id, &link.call_id);
        let durable = {
            // The superseded link is read and written back: under the lock, or a file
            // committed on it in between would be lost. Only the call's latest link can be
            // active, so this reads one link whatever the call's age.
            let _w = self.lock();
            let mut ops = Vec::new();
            let mut events = Vec::new();
            if let Some((_, latest)) = self.db.scan_prefix_rev(Tree::CallLinks, &prefix, 1)?.pop() {
                if let Some(mut old) = get::<Link>(&*self.db, Tree::Links, &latest)? {
                    if old.state_at(link.created_at) == LinkState::Active {
                        old.state = LinkState::Superseded;
                        old.ended_at = Some(link.created_at);
                        ops.push(put(Tree::Links, old.id.as_bytes(), &old));
                        let superseded = Event::LinkSuperseded {
                            link_id: old.id.clone(),
                            by: link.id.clone(),
                        };
                        events.push(superseded);
                    }
                }
            }
            // The record before its index entry: a reader that sees the entry finds the link.
            ops.push(put(Tree::Links, link.id.as_bytes(), link));
            let seq = self.db.next_id()?;
            ops.push(Op::Put(
                Tree::CallLinks,
                numbered(&prefix, seq),
                link.id.as_bytes().to_vec(),
            ));
            ops.push(expiry_entry(link));
            ops.push(self.audit(audit)?);
            events.push(Event::LinkIssued {
                link_id: link.id.clone(),
                expires_at: link.expires_at,
            });
            // Both links are on the same call.
            ops.extend(event_ops(
                &*self.db,
                &link.account_id,
                &link.call_id,
                link.created_at,
                events,
            )?);
            self.write(ops)?
        };
        Ok(durable.await?)
    }

    async fn account_link(&self, account_id: &str, link_id: &str) -> Result<Option<Link>, RepoError> {
        self.own_link(account_id, link_id)
    }

    async fn revoke(
        &self,
        account_id: &str,
        link_id: &str,
        t: u64,
        audit: AuditNote,
    ) -> Result<Option<Link>, RepoError> {
        let (link, durable) = {
            let _w = self.lock();
            let Some(mut link) = self.own_link(account_id, link_id)? else {
                return Ok(None);
            };
            if link.state_at(t) != LinkState::Active {
                return Ok(Some(link));
            }
            link.state = LinkState::Revoked;
            link.ended_at = Some(t);
            let mut ops = vec![put(Tree::Links, link.id.as_bytes(), &link), self.audit(audit)?];
            let revoked = Event::LinkRevoked {
                link_id: link.id.clone(),
            };
            ops.extend(event_ops(&*self.db, account_id, &link.call_id, t, [revoked])?);
            let durable = self.write(ops)?;
            (link, durable)
        };
        durable.await?;
        Ok(Some(link))
    }

    async fn record_sms(&self, message: &SmsMessage) -> Result<(), RepoError> {
        let (sms_id, link_id) = (message.id.clone(), message.link_id.clone());
        let event = match message.status {
            SmsStatus::Sent => Event::SmsSent { sms_id, link_id },
            SmsStatus::Failed => Event::SmsFailed {
                sms_id,
                link_id,
                error_code: None,
            },
        };
        let durable = {
            // The event's id is read and bumped: under the lock.
            let _w = self.lock();
            let seq = self.db.next_id()?;
            let mut ops = vec![
                put(Tree::Sms, message.id.as_bytes(), message),
                Op::Put(
                    Tree::CallSms,
                    numbered(&call_prefix(&message.account_id, &message.call_id), seq),
                    message.id.as_bytes().to_vec(),
                ),
            ];
            if let Some(provider_id) = &message.provider_id {
                let key = format!("{}/{provider_id}", message.provider).into_bytes();
                ops.push(Op::Put(Tree::SmsByProvider, key, message.id.as_bytes().to_vec()));
            }
            let (account, call) = (&message.account_id, &message.call_id);
            ops.extend(event_ops(&*self.db, account, call, message.created_at, [event])?);
            self.write(ops)?
        };
        Ok(durable.await?)
    }

    async fn record_delivery(
        &self,
        provider: &str,
        update: &crate::sms::DeliveryUpdate,
        t: u64,
    ) -> Result<Option<bool>, RepoError> {
        use crate::sms::Delivery;
        let durable = {
            let _w = self.lock();
            let key = format!("{provider}/{}", update.provider_id).into_bytes();
            let Some(sms_id) = self.db.get(Tree::SmsByProvider, &key)? else {
                return Ok(None);
            };
            let Some(mut message) = get::<SmsMessage>(&*self.db, Tree::Sms, &sms_id)? else {
                return Ok(None);
            };
            // Statuses only move forward, and a final one is final: a replayed or late
            // report changes nothing and announces nothing.
            if message
                .delivery
                .is_some_and(|now| now.is_final() || now >= update.status)
            {
                return Ok(Some(false));
            }
            message.delivery = Some(update.status);
            message.carrier_error = update.error_code.clone();
            message.delivery_at = Some(t);
            let mut ops = vec![put(Tree::Sms, message.id.as_bytes(), &message)];
            let (sms_id, link_id, error_code) = (
                message.id.clone(),
                message.link_id.clone(),
                update.error_code.clone(),
            );
            let event = match update.status {
                Delivery::Delivered => Some(Event::SmsDelivered { sms_id, link_id }),
                Delivery::Undelivered => Some(Event::SmsUndelivered {
                    sms_id,
                    link_id,
                    error_code,
                }),
                Delivery::Failed => Some(Event::SmsFailed {
                    sms_id,
                    link_id,
                    error_code,
                }),
                Delivery::Queued | Delivery::Sending | Delivery::Sent => None,
            };
            if let Some(event) = event {
                let (account, call) = (&message.account_id, &message.call_id);
                ops.extend(event_ops(&*self.db, account, call, t, [event])?);
            }
            self.write(ops)?
        };
        durable.await?;
        Ok(Some(true))
    }

    async fn sms(&self, account_id: &str, id: &str) -> Result<Option<SmsMessage>, RepoError> {
        Ok(get::<SmsMessage>(&*self.db, Tree::Sms, id.as_bytes())?.filter(|m| m.account_id == account_id))
    }

    async fn expire_due(&self, t: u64, limit: usize) -> Result<(usize, usize), RepoError> {
        SledStore::expire_due(self, t, limit).await
    }

    async fn live_links_signed_by(&self, key_id: u32, t: u64) -> Result<u64, RepoError> {
        self.off(move |s| {
            let mut live = 0;
            for (_, value) in s.db.scan_prefix(Tree::Links, b"")? {
                let link: Link = decode(Tree::Links, &value)?;
                if u32::from(link.key_id) == key_id && link.state_at(t) == LinkState::Active {
                    live += 1;
                }
            }
            Ok(live)
        })
        .await
    }
}
