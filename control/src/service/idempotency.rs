//! `Idempotency-Key` on the requests that text a caller: a voice platform that retries after
//! a timeout gets the first answer again instead of a second SMS and a superseded link.
//! Only ids are kept, never the answer itself: the answer holds the link, which is rebuilt.

use serde::{Deserialize, Serialize};

use super::ServiceError;
use super::{get, put, scoped, Service};
use crate::db::{Durable, Op, Tree};
use upgate_gateway::sys::now;

/// How long a key is remembered.
const KEEP_SECONDS: u64 = 24 * 3600;
/// A key whose request never finished (a crash) is free again after this.
const IN_FLIGHT_SECONDS: u64 = 60;

#[derive(Debug, Serialize, Deserialize)]
struct Used {
    /// Method and path the key was first used with.
    request: String,
    created_at: u64,
    /// What the request produced; `None` while it runs.
    link_id: Option<String>,
    sms_id: Option<String>,
}

/// Where a request with a key stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Begun {
    /// First use: go ahead, then call `idempotency_done`.
    Fresh,
    /// Seen and finished: answer with this link and message again.
    Replay { link_id: String, sms_id: String },
}

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

impl Service {
    /// Claims the key, or says to replay or refuse. The claim is written, not yet durable: the
    /// request's own durable waits (the link's, before texting) cover it.
    pub fn idempotency_begin(
        &self,
        account_id: &str,
        key: &str,
        request: &str,
    ) -> Result<Begun, ServiceError> {
        if !valid_key(key) {
            return Err(ServiceError::InvalidIdempotencyKey);
        }
        let db_key = scoped(account_id, key);
        let _w = self.write_lock();
        let t = now();
        let existing = get::<Used>(&*self.db, Tree::Idempotency, &db_key)?.filter(|u| {
            let age = t.saturating_sub(u.created_at);
            age < KEEP_SECONDS && (u.link_id.is_some() || age < IN_FLIGHT_SECONDS)
        });
        match existing {
            Some(used) if used.request != request => Err(ServiceError::IdempotencyKeyReused),
            Some(Used {
                link_id: Some(link_id),
                sms_id: Some(sms_id),
                ..
            }) => Ok(Begun::Replay { link_id, sms_id }),
            Some(_) => Err(ServiceError::IdempotencyKeyInUse),
            None => {
                let used = Used {
                    request: request.into(),
                    created_at: t,
                    link_id: None,
                    sms_id: None,
                };
                self.db.write(vec![put(Tree::Idempotency, db_key, &used)])?;
                Ok(Begun::Fresh)
            }
        }
    }

    /// Records what the keyed request produced; durable with the request's last wait, before
    /// it answers.
    pub fn idempotency_done(
        &self,
        account_id: &str,
        key: &str,
        link_id: &str,
        sms_id: &str,
    ) -> Result<(), ServiceError> {
        let db_key = scoped(account_id, key);
        let _w = self.write_lock();
        if let Some(mut used) = get::<Used>(&*self.db, Tree::Idempotency, &db_key)? {
            used.link_id = Some(link_id.into());
            used.sms_id = Some(sms_id.into());
            self.db.write(vec![put(Tree::Idempotency, db_key, &used)])?;
        }
        Ok(())
    }

    /// Frees a key whose request failed, so the retry can run.
    pub fn idempotency_abort(&self, account_id: &str, key: &str) -> Result<Durable, ServiceError> {
        let w = self.write_lock();
        Ok(self.commit(w, vec![Op::Delete(Tree::Idempotency, scoped(account_id, key))])?)
    }
}
