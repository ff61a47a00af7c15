//! [`ListRepo`] on the embedded store: the account's calls (`CallsByTime`), files
//! (`AccountFiles`) and audit log (`Audit`), newest first, a page at a time. A cursor is
//! the key the last page ended on, without the account's prefix: a client cannot point it
//! into another account (the prefix is ours to add), and a forged one is only a place in
//! the account's own list.

use async_trait::async_trait;

use super::lists::{AuditFilter, CallFilter, ListRepo, Page};
use super::sled_by_time::{contact_prefix, quarantined_file_id};
use super::sled_keys::{call_prefix, decode, get, numbered, scoped};
use super::sled_store::SledStore;
use super::RepoError;
use crate::db::{Op, Tree};
use crate::model::{ApiToken, AuditEntry, Call, CallEvent, Event, FileRecord, Session, User};

/// Marks a store whose calls and files are in the list indexes.
const INDEXED_KEY: &[u8] = b"lists_indexed";
/// Index entries read for one page at most, so a filter that matches little cannot make
/// one request walk the whole account: the page comes back short, with a cursor.
const SCAN_FACTOR: usize = 10;

/// `account/created_at/call id`: the call's entry in `CallsByTime`.
pub(crate) fn call_time_key(call: &Call) -> Vec<u8> {
    let mut key = numbered(&scoped(&call.account_id, ""), call.created_at);
    key.extend_from_slice(call.id.as_bytes());
    key
}

/// `account/seq`: a file's entry in `AccountFiles`, `seq` being its `CallFiles` sequence.
pub(crate) fn account_file_key(account_id: &str, seq: u64) -> Vec<u8> {
    numbered(&scoped(account_id, ""), seq)
}

/// The sequence at the end of a `CallFiles` key.
pub(crate) fn seq_of(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8).map(|at| &key[at..])?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

impl SledStore {
    /// Puts the calls and files of a store written before the list indexes existed into
    /// them, once; the marker last, so a crash part way indexes again.
    pub fn index_lists(&self) -> Result<usize, RepoError> {
        if self.db.get(Tree::Meta, INDEXED_KEY)?.is_some() {
            return Ok(0);
        }
        let _w = self.lock();
        let mut entries = Vec::new();
        for (_, value) in self.db.scan_prefix(Tree::Calls, b"")? {
            let call: Call = decode(Tree::Calls, &value)?;
            entries.push(Op::Put(Tree::CallsByTime, call_time_key(&call), vec![]));
        }
        for (key, file_id) in self.db.scan_prefix(Tree::CallFiles, b"")? {
            let account = key.split(|b| *b == b'/').next().unwrap_or_default();
            let (Ok(account), Some(seq)) = (std::str::from_utf8(account), seq_of(&key)) else {
                continue;
            };
            entries.push(Op::Put(
                Tree::AccountFiles,
                account_file_key(account, seq),
                file_id,
            ));
        }
        self.write_index(entries, INDEXED_KEY)
    }

    /// One page of an index read newest first. `keep` turns an index entry into a record,
    /// skips it, or ends the list there.
    /// `prefix` is the list's own part of the index (an account's, or a caller's or a
    /// user's within it); cursors are what follows it.
    pub(super) fn page<T>(
        &self,
        tree: Tree,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
        mut keep: impl FnMut(&[u8], &[u8]) -> Result<Keep<T>, RepoError>,
    ) -> Result<Page<T>, RepoError> {
        let mut start = before.map(|b| [prefix, b].concat());
        let mut items = Vec::new();
        let mut room = limit.saturating_mul(SCAN_FACTOR);
        let cursor = |key: Option<Vec<u8>>| key.map(|k| k[prefix.len()..].to_vec());
        loop {
            if room == 0 {
                return Ok(Page {
                    items,
                    next: cursor(start),
                });
            }
            let want = (limit - items.len()).min(room);
            let batch = self.db.scan_rev_before(tree, prefix, start.as_deref(), want)?;
            let ended = batch.len() < want;
            room -= batch.len();
            for (key, value) in batch {
                match keep(&key, &value)? {
                    Keep::Item(item) => items.push(item),
                    Keep::Skip => {}
                    Keep::End => return Ok(Page { items, next: None }),
                }
                start = Some(key);
                if items.len() == limit {
                    // A full page at the very end of the index says so, rather than
                    // sending the client for an empty one.
                    let more = !self
                        .db
                        .scan_rev_before(tree, prefix, start.as_deref(), 1)?
                        .is_empty();
                    return Ok(Page {
                        items,
                        next: if more { cursor(start) } else { None },
                    });
                }
            }
            if ended {
                return Ok(Page { items, next: None });
            }
        }
    }
}

impl SledStore {
    /// Whether what the call gathered is what `filter` asks for: files (that the reader
    /// may see), refused uploads. Read only when asked.
    fn gathered_as_asked(&self, call: &Call, filter: &CallFilter) -> Result<bool, RepoError> {
        let prefix = call_prefix(&call.account_id, &call.id);
        if let Some(want) = filter.has_files {
            let mut has = false;
            for (_, id) in self.db.scan_prefix(Tree::CallFiles, &prefix)? {
                let file = get::<FileRecord>(&*self.db, Tree::Files, &id)?;
                if file.is_some_and(|f| filter.sees_quarantine || !f.in_quarantine()) {
                    has = true;
                    break;
                }
            }
            if has != want {
                return Ok(false);
            }
        }
        if let Some(want) = filter.has_refusals {
            // Refusals are the call's own events; a call that never had one skips the read.
            let mut has = false;
            if call.events_next > 0 {
                for (_, value) in self.db.scan_prefix(Tree::CallEvents, &prefix)? {
                    let event: CallEvent = decode(Tree::CallEvents, &value)?;
                    if matches!(event.event, Event::UploadRefused(_)) {
                        has = true;
                        break;
                    }
                }
            }
            if has != want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The file an index entry names, if it is still recorded and `wanted`.
    fn file_item(
        &self,
        file_id: &[u8],
        wanted: impl Fn(&FileRecord) -> bool,
    ) -> Result<Keep<FileRecord>, RepoError> {
        let file = get::<FileRecord>(&*self.db, Tree::Files, file_id)?;
        Ok(file.filter(|f| wanted(f)).map_or(Keep::Skip, Keep::Item))
    }
}

/// What to do with one index entry.
pub(super) enum Keep<T> {
    Item(T),
    Skip,
    /// Nothing further down the index can match.
    End,
}

#[async_trait]
impl ListRepo for SledStore {
    async fn calls_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
        filter: CallFilter,
    ) -> Result<Page<Call>, RepoError> {
        let account = account_id.to_string();
        self.off(move |s| {
            // `to` bounds the key range from above; `from` ends the walk.
            let upper = match (&before, filter.to) {
                (Some(b), _) => Some(b.clone()),
                (None, Some(to)) => Some(to.to_be_bytes().to_vec()),
                (None, None) => None,
            };
            let skip = scoped(&account, "").len() + 8;
            s.page(
                Tree::CallsByTime,
                &scoped(&account, ""),
                upper.as_deref(),
                limit,
                |key, _| {
                    let id = String::from_utf8_lossy(key.get(skip..).unwrap_or_default());
                    let Some(call) = get::<Call>(&*s.db, Tree::Calls, &scoped(&account, &id))? else {
                        return Ok(Keep::Skip);
                    };
                    if filter.from.is_some_and(|from| call.created_at < from) {
                        return Ok(Keep::End);
                    }
                    let wanted = filter
                        .assistant_id
                        .as_deref()
                        .is_none_or(|a| a == call.assistant_id)
                        && filter.to.is_none_or(|to| call.created_at < to)
                        && s.gathered_as_asked(&call, &filter)?;
                    Ok(if wanted { Keep::Item(call) } else { Keep::Skip })
                },
            )
        })
        .await
    }

    async fn files_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
        quarantined: bool,
    ) -> Result<Page<FileRecord>, RepoError> {
        let account = account_id.to_string();
        self.off(move |s| {
            s.page(
                Tree::AccountFiles,
                &scoped(&account, ""),
                before.as_deref(),
                limit,
                |_, file_id| {
                    let file = get::<FileRecord>(&*s.db, Tree::Files, file_id)?;
                    Ok(
                        match file.filter(|f| f.account_id == account && (quarantined || !f.in_quarantine()))
                        {
                            Some(f) => Keep::Item(f),
                            None => Keep::Skip,
                        },
                    )
                },
            )
        })
        .await
    }

    async fn assistants_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<crate::model::Assistant>, RepoError> {
        let account = account_id.to_string();
        self.off(move |s| {
            s.page(
                Tree::Assistants,
                &scoped(&account, ""),
                before.as_deref(),
                limit,
                |_, value| Ok(Keep::Item(decode(Tree::Assistants, value)?)),
            )
        })
        .await
    }

    async fn audit_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
        filter: AuditFilter,
    ) -> Result<Page<AuditEntry>, RepoError> {
        let prefix = scoped(account_id, "");
        self.off(move |s| {
            s.page(Tree::Audit, &prefix, before.as_deref(), limit, |_, value| {
                let entry: AuditEntry = decode(Tree::Audit, value)?;
                Ok(if filter.keeps(&entry) {
                    Keep::Item(entry)
                } else {
                    Keep::Skip
                })
            })
        })
        .await
    }

    async fn contact_files_page(
        &self,
        account_id: &str,
        number: &str,
        before: Option<Vec<u8>>,
        limit: usize,
        quarantined: bool,
    ) -> Result<Page<FileRecord>, RepoError> {
        let prefix = contact_prefix(account_id, number);
        self.off(move |s| {
            s.page(Tree::Contacts, &prefix, before.as_deref(), limit, |_, file_id| {
                s.file_item(file_id, |f| quarantined || !f.in_quarantine())
            })
        })
        .await
    }

    async fn quarantine_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<FileRecord>, RepoError> {
        let prefix = scoped(account_id, "");
        self.off(move |s| {
            s.page(Tree::Quarantine, &prefix, before.as_deref(), limit, |key, _| {
                s.file_item(quarantined_file_id(key), |_| true)
            })
        })
        .await
    }

    async fn tokens_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<ApiToken>, RepoError> {
        let prefix = scoped(account_id, "");
        self.off(move |s| {
            s.page(Tree::TokenIds, &prefix, before.as_deref(), limit, |_, hash| {
                Ok(get::<ApiToken>(&*s.db, Tree::Tokens, hash)?.map_or(Keep::Skip, Keep::Item))
            })
        })
        .await
    }

    async fn users_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<User>, RepoError> {
        let prefix = scoped(account_id, "");
        self.off(move |s| {
            s.page(Tree::Users, &prefix, before.as_deref(), limit, |_, value| {
                Ok(Keep::Item(decode(Tree::Users, value)?))
            })
        })
        .await
    }

    async fn sessions_page(
        &self,
        account_id: &str,
        user_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<Session>, RepoError> {
        let prefix = scoped(account_id, &format!("{user_id}/"));
        self.off(move |s| {
            s.page(
                Tree::UserSessions,
                &prefix,
                before.as_deref(),
                limit,
                |_, hash| Ok(get::<Session>(&*s.db, Tree::Sessions, hash)?.map_or(Keep::Skip, Keep::Item)),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::db::Kv;
    use crate::repo::lists::ListRepo;
    use crate::service::fixture::fixture;

    #[tokio::test]
    async fn a_store_from_before_the_list_indexes_is_indexed_once_at_open() {
        let f = fixture().await;
        let account = f.actor.account_id.clone();
        for call in ["a", "b"] {
            f.link_on_call(call, "+14155550123").await;
        }
        // As a store written by an earlier upgate: no index entries, no marker.
        let mut ops = vec![Op::Delete(Tree::Meta, INDEXED_KEY.to_vec())];
        for tree in [Tree::CallsByTime, Tree::AccountFiles] {
            ops.extend(
                f.db.scan_prefix(tree, b"")
                    .unwrap()
                    .into_iter()
                    .map(|(k, _)| Op::Delete(tree, k)),
            );
        }
        f.db.apply(ops).unwrap();
        let store = SledStore::new(f.db.clone(), Arc::new(Mutex::new(())));
        let empty = store
            .calls_page(&account, None, 10, Default::default())
            .await
            .unwrap();
        assert!(empty.items.is_empty());

        assert_eq!(store.index_lists().unwrap(), 2);
        let page = store
            .calls_page(&account, None, 10, Default::default())
            .await
            .unwrap();
        let ids: Vec<&str> = page.items.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(store.index_lists().unwrap(), 0, "once");
    }
}
