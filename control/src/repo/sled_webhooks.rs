//! [`WebhookRepo`] on the embedded store: endpoints in `WebhookEndpoints` (`account/id`),
//! deliveries in `WebhookDeliveries` (`account/endpoint/event id`), and the pending ones
//! again in `WebhookDue` by when they are due (`next_at/account/endpoint/event id`), so the
//! dispatcher reads only what is due.

use async_trait::async_trait;

use super::sled_keys::{decode, get, numbered, put, scoped};
use super::webhooks::{Attempt, WebhookRepo};
use super::{AuditNote, RepoError, SledStore};
use crate::db::{Op, Tree};
use crate::model::EventRecord;
use crate::webhooks::records::{Delivery, DeliveryState, Endpoint};

/// `account/endpoint/`: the prefix of an endpoint's deliveries.
fn deliveries_of(account_id: &str, id: &str) -> Vec<u8> {
    format!("{account_id}/{id}/").into_bytes()
}

fn delivery_key(d: &Delivery) -> Vec<u8> {
    numbered(&deliveries_of(&d.account_id, &d.endpoint_id), d.event_id)
}

/// `next_at`, then the delivery's key: due entries sort by when they are due.
fn due_key(d: &Delivery) -> Vec<u8> {
    let mut key = d.next_at.to_be_bytes().to_vec();
    key.extend_from_slice(&delivery_key(d));
    key
}

/// The writes that store `d` as it now is, its due entry with it while pending.
fn save(d: &Delivery, ops: &mut Vec<Op>) {
    ops.push(put(Tree::WebhookDeliveries, delivery_key(d), d));
    if d.state == DeliveryState::Pending {
        ops.push(Op::Put(Tree::WebhookDue, due_key(d), vec![]));
    }
}

/// The writes that take `d`'s due entry away (it is being changed or deleted).
fn unschedule(d: &Delivery, ops: &mut Vec<Op>) {
    if d.state == DeliveryState::Pending {
        ops.push(Op::Delete(Tree::WebhookDue, due_key(d)));
    }
}

impl SledStore {
    fn stored_endpoint(&self, account_id: &str, id: &str) -> Result<Option<Endpoint>, RepoError> {
        Ok(get(&*self.db, Tree::WebhookEndpoints, &scoped(account_id, id))?)
    }

    fn stored_deliveries(&self, account_id: &str, id: &str) -> Result<Vec<Delivery>, RepoError> {
        self.db
            .scan_prefix(Tree::WebhookDeliveries, &deliveries_of(account_id, id))?
            .into_iter()
            .map(|(_, v)| Ok(decode(Tree::WebhookDeliveries, &v)?))
            .collect()
    }
}

#[async_trait]
impl WebhookRepo for SledStore {
    async fn put_endpoint(&self, endpoint: &Endpoint, audit: AuditNote) -> Result<(), RepoError> {
        let durable = {
            let _w = self.lock();
            let key = scoped(&endpoint.account_id, &endpoint.id);
            self.write(vec![
                put(Tree::WebhookEndpoints, key, endpoint),
                self.audit(audit)?,
            ])?
        };
        Ok(durable.await?)
    }

    async fn endpoint(&self, account_id: &str, id: &str) -> Result<Option<Endpoint>, RepoError> {
        self.stored_endpoint(account_id, id)
    }

    async fn endpoints(&self, account_id: &str) -> Result<Vec<Endpoint>, RepoError> {
        let prefix = scoped(account_id, "");
        self.off(move |s| {
            s.db.scan_prefix(Tree::WebhookEndpoints, &prefix)?
                .into_iter()
                .map(|(_, v)| Ok(decode(Tree::WebhookEndpoints, &v)?))
                .collect()
        })
        .await
    }

    async fn delete_endpoint(&self, account_id: &str, id: &str, audit: AuditNote) -> Result<bool, RepoError> {
        let durable = {
            let _w = self.lock();
            if self.stored_endpoint(account_id, id)?.is_none() {
                return Ok(false);
            }
            let mut ops = vec![Op::Delete(Tree::WebhookEndpoints, scoped(account_id, id))];
            for d in self.stored_deliveries(account_id, id)? {
                unschedule(&d, &mut ops);
                ops.push(Op::Delete(Tree::WebhookDeliveries, delivery_key(&d)));
            }
            ops.push(self.audit(audit)?);
            self.write(ops)?
        };
        durable.await?;
        Ok(true)
    }

    async fn enabled_endpoints(&self) -> Result<Vec<Endpoint>, RepoError> {
        self.off(|s| {
            let mut out = Vec::new();
            for (_, v) in s.db.scan_prefix(Tree::WebhookEndpoints, b"")? {
                let e: Endpoint = decode(Tree::WebhookEndpoints, &v)?;
                if e.enabled {
                    out.push(e);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn hand_out(&self, account_id: &str, id: &str, t: u64, limit: usize) -> Result<usize, RepoError> {
        let (durable, read) = {
            let _w = self.lock();
            let Some(mut endpoint) = self.stored_endpoint(account_id, id)? else {
                return Ok(0);
            };
            if !endpoint.enabled {
                return Ok(0);
            }
            let log = scoped(account_id, "");
            let start = numbered(&log, endpoint.cursor.saturating_add(1));
            let events = self.db.scan_from(Tree::Events, &log, &start, limit)?;
            let Some((last, _)) = events.last() else {
                return Ok(0);
            };
            let last = u64::from_be_bytes(last[last.len() - 8..].try_into().expect("8 bytes"));
            let mut ops = Vec::new();
            for (_, value) in &events {
                let event: EventRecord = decode(Tree::Events, value)?;
                if endpoint.wants(&event.event.kind()) {
                    let d = Delivery {
                        account_id: account_id.to_string(),
                        endpoint_id: id.to_string(),
                        event_id: event.id,
                        state: DeliveryState::Pending,
                        attempts: 0,
                        first_at: t,
                        next_at: t,
                        last_failure: None,
                    };
                    save(&d, &mut ops);
                }
            }
            endpoint.cursor = last;
            ops.push(put(Tree::WebhookEndpoints, scoped(account_id, id), &endpoint));
            (self.write(ops)?, events.len())
        };
        durable.await?;
        Ok(read)
    }

    async fn due(&self, t: u64, limit: usize) -> Result<Vec<Delivery>, RepoError> {
        let mut out = Vec::new();
        for (key, _) in self.db.scan_from(Tree::WebhookDue, b"", b"", limit)? {
            let Some(at) = key
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            if at > t {
                break;
            }
            if let Some(d) = get::<Delivery>(&*self.db, Tree::WebhookDeliveries, &key[8..])? {
                out.push(d);
            }
        }
        Ok(out)
    }

    async fn record_attempt(&self, delivery: &Delivery, attempt: Attempt) -> Result<(), RepoError> {
        let durable = {
            let _w = self.lock();
            let key = delivery_key(delivery);
            // Gone (the endpoint was deleted) or changed (replayed) meanwhile: not ours to write.
            let Some(mut d) = get::<Delivery>(&*self.db, Tree::WebhookDeliveries, &key)? else {
                return Ok(());
            };
            if d != *delivery {
                return Ok(());
            }
            let Some(mut endpoint) = self.stored_endpoint(&d.account_id, &d.endpoint_id)? else {
                return Ok(());
            };
            let mut ops = Vec::new();
            unschedule(&d, &mut ops);
            d.attempts += 1;
            match attempt {
                Attempt::Delivered { at } => {
                    endpoint.stats.delivered += 1;
                    endpoint.stats.last_success_at = Some(at);
                    ops.push(Op::Delete(Tree::WebhookDeliveries, key));
                }
                Attempt::Failed { failure, next } => {
                    endpoint.stats.failed_attempts += 1;
                    endpoint.stats.last_failure = Some(failure.clone());
                    d.last_failure = Some(failure);
                    match next {
                        Some(at) => d.next_at = at,
                        None => {
                            d.state = DeliveryState::Dead;
                            endpoint.stats.dead += 1;
                        }
                    }
                    save(&d, &mut ops);
                }
            }
            let endpoint_key = scoped(&endpoint.account_id, &endpoint.id);
            ops.push(put(Tree::WebhookEndpoints, endpoint_key, &endpoint));
            self.write(ops)?
        };
        Ok(durable.await?)
    }

    async fn deliveries(&self, account_id: &str, id: &str, limit: usize) -> Result<Vec<Delivery>, RepoError> {
        let prefix = deliveries_of(account_id, id);
        self.off(move |s| {
            s.db.scan_from(Tree::WebhookDeliveries, &prefix, &prefix, limit)?
                .into_iter()
                .map(|(_, v)| Ok(decode(Tree::WebhookDeliveries, &v)?))
                .collect()
        })
        .await
    }

    async fn replay(
        &self,
        account_id: &str,
        id: &str,
        event_ids: Option<&[u64]>,
        t: u64,
        audit: AuditNote,
    ) -> Result<usize, RepoError> {
        let (durable, n) = {
            let _w = self.lock();
            let Some(mut endpoint) = self.stored_endpoint(account_id, id)? else {
                return Ok(0);
            };
            let mut ops = Vec::new();
            let mut n = 0;
            for mut d in self.stored_deliveries(account_id, id)? {
                let chosen = event_ids.is_none_or(|ids| ids.contains(&d.event_id));
                if d.state != DeliveryState::Dead || !chosen {
                    continue;
                }
                d.state = DeliveryState::Pending;
                (d.attempts, d.first_at, d.next_at) = (0, t, t);
                save(&d, &mut ops);
                n += 1;
            }
            if n == 0 {
                return Ok(0);
            }
            endpoint.stats.dead = endpoint.stats.dead.saturating_sub(n as u64);
            ops.push(put(Tree::WebhookEndpoints, scoped(account_id, id), &endpoint));
            ops.push(self.audit(audit)?);
            (self.write(ops)?, n)
        };
        durable.await?;
        Ok(n)
    }
}
