//! [`IdempotencyRepo`] on the embedded store: `Idempotency` by `account/key`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::idempotency::{Begun, IN_FLIGHT_SECONDS, KEEP_SECONDS};
use super::sled_keys::{get, put, scoped};
use super::{IdempotencyRepo, RepoError, SledStore};
use crate::db::{Op, Tree};

#[derive(Debug, Serialize, Deserialize)]
struct Used {
    /// Method and path the key was first used with.
    request: String,
    created_at: u64,
    /// What the request produced; `None` while it runs.
    link_id: Option<String>,
    sms_id: Option<String>,
}

#[async_trait]
impl IdempotencyRepo for SledStore {
    async fn begin(&self, account_id: &str, key: &str, request: &str, t: u64) -> Result<Begun, RepoError> {
        let db_key = scoped(account_id, key);
        // Whatever is answered is durable first: a replay may show what the first request
        // wrote a moment ago, not yet flushed.
        let (durable, begun) = {
            let _w = self.lock();
            let existing = get::<Used>(&*self.db, Tree::Idempotency, &db_key)?.filter(|u| {
                let age = t.saturating_sub(u.created_at);
                age < KEEP_SECONDS && (u.link_id.is_some() || age < IN_FLIGHT_SECONDS)
            });
            match existing {
                Some(used) if used.request != request => return Ok(Begun::Reused),
                Some(Used {
                    link_id: Some(link_id),
                    sms_id: Some(sms_id),
                    ..
                }) => (self.db.durable(), Begun::Replay { link_id, sms_id }),
                Some(_) => return Ok(Begun::InUse),
                None => {
                    let used = Used {
                        request: request.into(),
                        created_at: t,
                        link_id: None,
                        sms_id: None,
                    };
                    (
                        self.write(vec![put(Tree::Idempotency, db_key, &used)])?,
                        Begun::Fresh,
                    )
                }
            }
        };
        durable.await?;
        Ok(begun)
    }

    async fn done(&self, account_id: &str, key: &str, link_id: &str, sms_id: &str) -> Result<(), RepoError> {
        let db_key = scoped(account_id, key);
        let durable = {
            let _w = self.lock();
            let Some(mut used) = get::<Used>(&*self.db, Tree::Idempotency, &db_key)? else {
                return Ok(());
            };
            used.link_id = Some(link_id.into());
            used.sms_id = Some(sms_id.into());
            self.write(vec![put(Tree::Idempotency, db_key, &used)])?
        };
        Ok(durable.await?)
    }

    async fn abort(&self, account_id: &str, key: &str) -> Result<(), RepoError> {
        let durable = {
            let _w = self.lock();
            self.write(vec![Op::Delete(Tree::Idempotency, scoped(account_id, key))])?
        };
        Ok(durable.await?)
    }
}
