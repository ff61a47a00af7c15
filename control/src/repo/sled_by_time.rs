//! The keys of the two indexes a person pages through by time: a caller's files
//! (`Contacts`: `account/number/` + received_at + file id -> file id) and the account's
//! quarantine (`Quarantine`: `account/` + since + file id -> state). Both are made from the
//! file's record alone, so whoever holds the record can write or delete its entries.
//!
//! Stores written before these keys held the time (`account/number/file id`,
//! `account/file id`) are rebuilt from `Files` once, at open.

use std::collections::BTreeMap;

use super::sled_keys::{decode, numbered, scoped};
use super::{RepoError, SledStore};
use crate::db::{Op, Tree};
use crate::model::{FileRecord, QuarantineState};

/// Marks a store whose `Contacts` and `Quarantine` keys hold the time.
const REKEYED: &[u8] = b"contacts_quarantine_by_time";

/// `account/number/`: the part of `Contacts` that is one caller's.
pub(crate) fn contact_prefix(account_id: &str, number: &str) -> Vec<u8> {
    scoped(account_id, &format!("{number}/"))
}

/// The file's entry in `Contacts`; its value is the file id.
pub(crate) fn contact_key(file: &FileRecord) -> Vec<u8> {
    let mut key = numbered(&contact_prefix(&file.account_id, &file.contact), file.received_at);
    key.extend_from_slice(file.id.as_bytes());
    key
}

/// The file's entry in `Quarantine` (whatever its state; its value says which).
pub(crate) fn quarantine_key(file: &FileRecord) -> Vec<u8> {
    let since = file.quarantine.as_ref().map_or(file.received_at, |q| q.since);
    let mut key = numbered(&scoped(&file.account_id, ""), since);
    key.extend_from_slice(file.id.as_bytes());
    key
}

/// The file id of a `Quarantine` key: after the account (which holds no `/`) and the time.
pub(crate) fn quarantined_file_id(key: &[u8]) -> &[u8] {
    let account_end = key.iter().position(|b| *b == b'/').map_or(key.len(), |at| at + 1);
    key.get(account_end + 8..).unwrap_or_default()
}

/// The entry that keeps `file` in the quarantine list, for its current state; `None` once
/// it is released (a released file is on its call like any other).
pub(crate) fn quarantine_entry(file: &FileRecord) -> Option<Op> {
    let state = file
        .quarantine
        .as_ref()
        .map_or(QuarantineState::Held, |q| q.state);
    (state != QuarantineState::Released).then(|| {
        Op::Put(
            Tree::Quarantine,
            quarantine_key(file),
            state.as_str().as_bytes().to_vec(),
        )
    })
}

impl SledStore {
    /// Rebuilds `Contacts` and `Quarantine` from the file records, once: entries that are
    /// not what a record says are deleted, the records' own are written, then the marker.
    /// A crash part way leaves the marker unwritten, and the next open does it again.
    pub fn rekey_by_time(&self) -> Result<usize, RepoError> {
        if self.db.get(Tree::Meta, REKEYED)?.is_some() {
            return Ok(0);
        }
        let _w = self.lock();
        let mut contacts = BTreeMap::new();
        let mut quarantine = BTreeMap::new();
        for (_, value) in self.db.scan_prefix(Tree::Files, b"")? {
            let file: FileRecord = decode(Tree::Files, &value)?;
            contacts.insert(contact_key(&file), file.id.clone().into_bytes());
            if file.quarantine.is_some() {
                if let Some(Op::Put(_, key, state)) = quarantine_entry(&file) {
                    quarantine.insert(key, state);
                }
            }
        }
        let mut ops = Vec::new();
        for (tree, wanted) in [(Tree::Contacts, &contacts), (Tree::Quarantine, &quarantine)] {
            for (key, _) in self.db.scan_prefix(tree, b"")? {
                if !wanted.contains_key(&key) {
                    ops.push(Op::Delete(tree, key));
                }
            }
        }
        ops.extend(contacts.into_iter().map(|(k, v)| Op::Put(Tree::Contacts, k, v)));
        ops.extend(
            quarantine
                .into_iter()
                .map(|(k, v)| Op::Put(Tree::Quarantine, k, v)),
        );
        self.write_index(ops, REKEYED)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::db::Kv;
    use crate::repo::lists::ListRepo;
    use crate::service::fixture::fixture;
    use crate::service::quarantine_tests::held;

    #[tokio::test]
    async fn a_store_with_the_old_keys_is_rekeyed_by_time_once_at_open() {
        let f = fixture().await;
        let account = f.actor.account_id.clone();
        let (first, second) = (held(&f, "a").await, held(&f, "b").await);
        // As a store written by an earlier upgate: `account/number/file id` with an empty
        // value, `account/file id` with the state; no marker.
        let mut ops = vec![Op::Delete(Tree::Meta, REKEYED.to_vec())];
        for tree in [Tree::Contacts, Tree::Quarantine] {
            for (key, _) in f.db.scan_prefix(tree, b"").unwrap() {
                ops.push(Op::Delete(tree, key));
            }
        }
        for id in [&first, &second] {
            let contact = scoped(&account, &format!("+14155550123/{id}"));
            ops.push(Op::Put(Tree::Contacts, contact, vec![]));
            ops.push(Op::Put(Tree::Quarantine, scoped(&account, id), b"held".to_vec()));
        }
        f.db.apply(ops).unwrap();
        let store = SledStore::new(f.db.clone(), Arc::new(Mutex::new(())));

        assert_eq!(store.rekey_by_time().unwrap(), 8, "4 stale entries out, 4 in");
        let contact = store
            .contact_files_page(&account, "+14155550123", None, 10, true)
            .await
            .unwrap();
        let mut ids: Vec<&str> = contact.items.iter().map(|f| f.id.as_str()).collect();
        let quarantine = store.quarantine_page(&account, None, 10).await.unwrap();
        let mut held_ids: Vec<&str> = quarantine.items.iter().map(|f| f.id.as_str()).collect();
        ids.sort_unstable();
        held_ids.sort_unstable();
        let mut want = [first.as_str(), second.as_str()];
        want.sort_unstable();
        assert_eq!((ids, held_ids), (want.to_vec(), want.to_vec()));
        for tree in [Tree::Contacts, Tree::Quarantine] {
            assert_eq!(
                f.db.scan_prefix(tree, b"").unwrap().len(),
                2,
                "no old key is left"
            );
        }
        assert_eq!(
            f.svc.held_files(10).await.unwrap().len(),
            2,
            "the rescan finds them"
        );
        assert_eq!(store.rekey_by_time().unwrap(), 0, "once");
    }

    #[test]
    fn a_quarantine_key_gives_back_its_file_id_whatever_bytes_the_time_has() {
        let mut key = scoped("acc_1", "");
        key.extend_from_slice(&u64::from_be_bytes(*b"//////\0/").to_be_bytes());
        key.extend_from_slice(b"f_0123");
        assert_eq!(quarantined_file_id(&key), b"f_0123");
    }
}
