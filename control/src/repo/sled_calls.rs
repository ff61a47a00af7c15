//! [`CallRepo`] on the embedded store: `Calls` by `account/call` holds the call's own
//! fields; what it gathers sits under the call's prefix `account/call/` in `CallLinks`,
//! `CallSms` and `CallFiles` (sequence -> id, in the order they came) and `CallEvents`
//! (event number -> event, the newest 100).

use async_trait::async_trait;

use super::sled_keys::{call_prefix, decode, get, put, scoped};
use super::sled_lists::call_time_key;
use super::{CallRepo, Gathered, RepoError, SledStore};
use crate::db::{Op, Tree};
use crate::model::{Call, CallEvent, FileRecord, Link, SmsMessage};

#[async_trait]
impl CallRepo for SledStore {
    async fn put_call(&self, call: Call) -> Result<(Call, bool), RepoError> {
        let key = scoped(&call.account_id, &call.id);
        let (durable, stored, created) = {
            let _w = self.lock();
            let (stored, created) = match get::<Call>(&*self.db, Tree::Calls, &key)? {
                Some(mut existing) => {
                    existing.assistant_id = call.assistant_id;
                    existing.caller_number = call.caller_number;
                    (existing, false)
                }
                None => (call, true),
            };
            let mut ops = vec![put(Tree::Calls, key, &stored)];
            if created {
                ops.push(Op::Put(Tree::CallsByTime, call_time_key(&stored), vec![]));
            }
            (self.write(ops)?, stored, created)
        };
        durable.await?;
        Ok((stored, created))
    }

    async fn call(&self, account_id: &str, call_id: &str) -> Result<Option<Call>, RepoError> {
        Ok(get(&*self.db, Tree::Calls, &scoped(account_id, call_id))?)
    }

    async fn calls_created(&self, account_id: &str, from: u64, to: u64) -> Result<Vec<Call>, RepoError> {
        let prefix = scoped(account_id, "");
        self.off(move |s| {
            let mut out = Vec::new();
            for (_, value) in s.db.scan_prefix(Tree::Calls, &prefix)? {
                let call: Call = decode(Tree::Calls, &value)?;
                if (from..to).contains(&call.created_at) {
                    out.push(call);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn gathered(&self, call: &Call) -> Result<Gathered, RepoError> {
        let prefix = call_prefix(&call.account_id, &call.id);
        let mut links = Vec::new();
        for (_, id) in self.db.scan_prefix(Tree::CallLinks, &prefix)? {
            if let Some(link) = get::<Link>(&*self.db, Tree::Links, &id)? {
                links.push(link);
            }
        }
        let mut sms = Vec::new();
        for (_, id) in self.db.scan_prefix(Tree::CallSms, &prefix)? {
            if let Some(m) = get::<SmsMessage>(&*self.db, Tree::Sms, &id)? {
                sms.push(m);
            }
        }
        let mut files = Vec::new();
        for (_, id) in self.db.scan_prefix(Tree::CallFiles, &prefix)? {
            if let Some(f) = get::<FileRecord>(&*self.db, Tree::Files, &id)? {
                files.push(f);
            }
        }
        let events = self
            .db
            .scan_prefix(Tree::CallEvents, &prefix)?
            .into_iter()
            .map(|(_, v)| decode::<CallEvent>(Tree::CallEvents, &v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Gathered {
            links,
            sms,
            files,
            events,
        })
    }
}
