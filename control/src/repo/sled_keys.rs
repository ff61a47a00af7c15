//! How the sled repositories spell keys and values: JSON records, keys scoped by account
//! and call, sequences in big-endian so keys sort in number order.

use serde::de::DeserializeOwned;
use serde::Serialize;
use upgate_gateway::sys::now;

use crate::db::{DbError, Kv, Op, Tree};
use crate::model::AuditEntry;

pub(crate) fn decode<T: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> Result<T, DbError> {
    // Where and what kind, never serde's message: it quotes the offending value, which can
    // be a caller's number or a file name, and this error goes to the log.
    serde_json::from_slice(bytes).map_err(|e| {
        DbError::Corrupt(format!(
            "{}: {:?} error at line {} column {}",
            tree.name(),
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

pub(crate) fn get<T: DeserializeOwned>(db: &dyn Kv, tree: Tree, key: &[u8]) -> Result<Option<T>, DbError> {
    db.get(tree, key)?.map(|v| decode(tree, &v)).transpose()
}

pub(crate) fn put<T: Serialize>(tree: Tree, key: impl Into<Vec<u8>>, value: &T) -> Op {
    Op::Put(
        tree,
        key.into(),
        serde_json::to_vec(value).expect("records serialize"),
    )
}

/// `account/rest`: every per-account key starts with the account id, so no query can
/// wander into another account's records.
pub(crate) fn scoped(account_id: &str, rest: &str) -> Vec<u8> {
    format!("{account_id}/{rest}").into_bytes()
}

/// `account/call/`: the prefix of everything a call gathers (links, messages, files, events).
/// Neither id can hold a `/`, so one call's prefix never covers another's.
pub(crate) fn call_prefix(account_id: &str, call_id: &str) -> Vec<u8> {
    format!("{account_id}/{call_id}/").into_bytes()
}

/// `prefix` followed by `n` big-endian: keys that sort in number order.
pub(crate) fn numbered(prefix: &[u8], n: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// An audit entry as one op of a batch: `account/sequence` in `Audit`.
pub(crate) fn audit_op(
    db: &dyn Kv,
    actor: &str,
    account_id: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<Op, DbError> {
    let seq = db.next_id()?;
    let entry = AuditEntry {
        seq,
        at: now(),
        account_id: account_id.into(),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        detail,
    };
    Ok(put(Tree::Audit, numbered(&scoped(account_id, ""), seq), &entry))
}
