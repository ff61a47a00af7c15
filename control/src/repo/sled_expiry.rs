//! Link expiry on the embedded store. A link expires by the clock, with no write; so that
//! the event log (and the streams that end on it) learns of it, each link is indexed by its
//! expiry in `LinkExpiry` when issued, and the sweeper turns each due entry into the
//! stored `Expired` state and a `link_expired` event, in one batch that also deletes the
//! entry: announced once, whatever the sweepers' number or timing.

use super::sled_events::event_ops;
use super::sled_keys::{decode, get, put};
use super::{RepoError, SledStore};
use crate::db::{Op, Tree};
use crate::model::{Event, Link};
use upgate_gateway::control_link::LinkState;

/// Marks the store as holding an expiry entry for every active link it had when this
/// build first opened it.
const INDEXED_KEY: &[u8] = b"link_expiry_indexed";

/// `expires_at` big-endian, then the link id: due entries are a prefix of the tree.
pub(crate) fn expiry_entry(link: &Link) -> Op {
    let mut key = link.expires_at.to_be_bytes().to_vec();
    key.extend_from_slice(link.id.as_bytes());
    Op::Put(Tree::LinkExpiry, key, vec![])
}

fn expiry_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(..8)?.try_into().ok()?))
}

impl SledStore {
    /// Indexes the links of a store written before the index existed that are active and
    /// not yet expired, once: later opens see the marker and skip the scan. Links that
    /// expired before are left as they were (their expiry is derived, and announcing months
    /// of them at once would flood the logs). Returns how many it indexed.
    pub fn index_link_expiry(&self) -> Result<usize, RepoError> {
        if self.db.get(Tree::Meta, INDEXED_KEY)?.is_some() {
            return Ok(0);
        }
        let t = upgate_gateway::sys::now();
        let _w = self.lock();
        let mut entries = Vec::new();
        for (_, value) in self.db.scan_prefix(Tree::Links, b"")? {
            let link: Link = decode(Tree::Links, &value)?;
            if link.state_at(t) == LinkState::Active {
                entries.push(expiry_entry(&link));
            }
        }
        self.write_index(entries, INDEXED_KEY)
    }

    /// Announces up to `limit` links whose expiry is at or before `t`: each one still active
    /// is stored as expired with its event; each that ended earlier just leaves the index.
    /// Durable when it returns; returns how many entries it handled and how many expired.
    pub(super) async fn expire_due(&self, t: u64, limit: usize) -> Result<(usize, usize), RepoError> {
        let due: Vec<Vec<u8>> = self
            .db
            .scan_from(Tree::LinkExpiry, b"", b"", limit)?
            .into_iter()
            .map(|(key, _)| key)
            .take_while(|key| expiry_of(key).is_some_and(|at| at <= t))
            .collect();
        if due.is_empty() {
            return Ok((0, 0));
        }
        let (handled, mut expired) = (due.len(), 0);
        for key in due {
            // One batch per link: `event_ops` numbers one batch per account at a time.
            let _w = self.lock();
            let mut ops = vec![Op::Delete(Tree::LinkExpiry, key.clone())];
            let id = &key[8..];
            // A record that does not decode must not stop every later expiry: it leaves the
            // index, and the log says so (the link's state is then derived as before).
            let stored = get::<Link>(&*self.db, Tree::Links, id).unwrap_or_else(|e| {
                tracing::error!(error = %e, "a link due to expire is unreadable; its expiry is not announced");
                None
            });
            if let Some(mut link) = stored {
                if link.state == LinkState::Active && link.expires_at <= t {
                    link.state = LinkState::Expired;
                    link.ended_at = Some(link.expires_at);
                    link.leases.clear();
                    ops.push(put(Tree::Links, link.id.as_bytes(), &link));
                    let event = Event::LinkExpired {
                        link_id: link.id.clone(),
                        files_stored: link.files_received,
                        unused: link.files_received == 0,
                    };
                    let (account, call) = (&link.account_id, &link.call_id);
                    ops.extend(event_ops(&*self.db, account, call, link.expires_at, [event])?);
                    expired += 1;
                }
            }
            self.db.write(ops)?;
        }
        self.db.durable().await?;
        Ok((handled, expired))
    }
}
