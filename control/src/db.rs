//! The metadata store behind our own small trait: named trees of byte keys and values,
//! atomic multi-tree batches that are durable when `apply` returns. sled implements it
//! today; the conformance suite below is what any replacement (redb) must pass.
//!
//! Durability is group-committed (`group.rs`): `write` makes a batch visible, `durable`
//! gives a handle that resolves once a flush covering it has run, and concurrent writers share
//! flushes. A caller that holds a lock for its read-modify-write writes under the lock and
//! waits for durability after releasing it, so the lock never spans a flush.

mod group;
mod sled_kv;

pub use group::{Durable, GroupCommit};
pub use sled_kv::SledKv;

/// The trees the control plane keeps. Keys are chosen so prefix scans answer the queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// account id -> Account
    Accounts,
    /// SHA-256 of the token -> ApiToken
    Tokens,
    /// account id / token id -> SHA-256 of the token: an account's tokens, by id
    TokenIds,
    /// account id / assistant id -> Assistant
    Assistants,
    /// account id / call id -> Call (its own fields only: what the call gathers is below)
    Calls,
    /// link id -> Link
    Links,
    /// sms id -> SmsMessage
    Sms,
    /// file id -> FileRecord
    Files,
    /// account id / e164 / file id -> (empty): the contact's files
    Contacts,
    /// account id / sequence (big-endian) -> AuditEntry
    Audit,
    /// account id / Idempotency-Key -> what the key was used for
    Idempotency,
    /// account id / call id / sequence (big-endian) -> link id: the call's links, in issue order
    CallLinks,
    /// account id / call id / sequence (big-endian) -> sms id: the call's messages
    CallSms,
    /// account id / call id / sequence (big-endian) -> file id: the call's files
    CallFiles,
    /// account id / call id / event number (big-endian) -> CallEvent: the newest 100
    CallEvents,
    /// name -> value: facts about the store itself (its layout version)
    Meta,
    /// credential id -> GatewayCredential: who may use the internal API
    GatewayCredentials,
    /// account id / event id (big-endian) -> EventRecord: the account's event log, written
    /// in the batch of the change each event describes
    Events,
    /// account id / call id / event id (big-endian) -> (empty): a call's events in the log
    CallEventIds,
    /// expiry (big-endian seconds) / link id -> (empty): links whose expiry is still to be
    /// announced, soonest first, for the sweeper
    LinkExpiry,
    /// account id / endpoint id -> webhooks::records::Endpoint
    WebhookEndpoints,
    /// account id / endpoint id / event id (big-endian) -> Delivery: pending and dead ones
    WebhookDeliveries,
    /// next attempt (big-endian seconds) / the delivery's key -> (empty): pending deliveries,
    /// soonest first, for the dispatcher
    WebhookDue,
    /// provider / the provider's message id -> sms id: delivery reports find their message
    SmsByProvider,
    /// account id / file id -> the quarantine state ("held", "infected", "unscannable"):
    /// files in quarantine, for reviewers and, while held, for the rescan
    Quarantine,
    /// account id / created_at (big-endian seconds) / call id -> (empty): the account's
    /// calls in the order they came, for the paginated list
    CallsByTime,
    /// account id / sequence (big-endian, the file's `CallFiles` sequence) -> file id: the
    /// account's files in the order they came, for the paginated list
    AccountFiles,
    /// account id / user id -> User: the console's staff
    Users,
    /// lowercased email -> account id / user id: who signs in with which address
    UserEmails,
    /// SHA-256 of the session secret -> Session: signed-in browsers
    Sessions,
    /// account id / user id / session id -> SHA-256 of its secret: a user's sessions, by id
    UserSessions,
    /// SHA-256 of the link token -> SigninLink: one-time links to choose a password
    SigninLinks,
}

impl Tree {
    pub const ALL: [Tree; 32] = [
        Tree::Accounts,
        Tree::Tokens,
        Tree::TokenIds,
        Tree::Assistants,
        Tree::Calls,
        Tree::Links,
        Tree::Sms,
        Tree::Files,
        Tree::Contacts,
        Tree::Audit,
        Tree::Idempotency,
        Tree::CallLinks,
        Tree::CallSms,
        Tree::CallFiles,
        Tree::CallEvents,
        Tree::Meta,
        Tree::GatewayCredentials,
        Tree::Events,
        Tree::CallEventIds,
        Tree::LinkExpiry,
        Tree::WebhookEndpoints,
        Tree::WebhookDeliveries,
        Tree::WebhookDue,
        Tree::SmsByProvider,
        Tree::Quarantine,
        Tree::CallsByTime,
        Tree::AccountFiles,
        Tree::Users,
        Tree::UserEmails,
        Tree::Sessions,
        Tree::UserSessions,
        Tree::SigninLinks,
    ];

    /// The tree's place in [`Tree::ALL`] (the declaration order; a test holds them equal).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Tree::Accounts => "accounts",
            Tree::Tokens => "tokens",
            Tree::TokenIds => "token_ids",
            Tree::Assistants => "assistants",
            Tree::Calls => "calls",
            Tree::Links => "links",
            Tree::Sms => "sms",
            Tree::Files => "files",
            Tree::Contacts => "contacts",
            Tree::Audit => "audit",
            Tree::Idempotency => "idempotency",
            Tree::CallLinks => "call_links",
            Tree::CallSms => "call_sms",
            Tree::CallFiles => "call_files",
            Tree::CallEvents => "call_events",
            Tree::Meta => "meta",
            Tree::GatewayCredentials => "gateway_credentials",
            Tree::Events => "events",
            Tree::CallEventIds => "call_event_ids",
            Tree::LinkExpiry => "link_expiry",
            Tree::WebhookEndpoints => "webhook_endpoints",
            Tree::WebhookDeliveries => "webhook_deliveries",
            Tree::WebhookDue => "webhook_due",
            Tree::SmsByProvider => "sms_by_provider",
            Tree::Quarantine => "quarantine",
            Tree::CallsByTime => "calls_by_time",
            Tree::AccountFiles => "account_files",
            Tree::Users => "users",
            Tree::UserEmails => "user_emails",
            Tree::Sessions => "sessions",
            Tree::UserSessions => "user_sessions",
            Tree::SigninLinks => "signin_links",
        }
    }
}

/// A key and its value, as scans return them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One write in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    Put(Tree, Vec<u8>, Vec<u8>),
    Delete(Tree, Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The engine failed; the detail is for logs.
    #[error("metadata store failed: {0}")]
    Engine(String),
    /// A stored record did not decode: a bug or corruption, never the client's fault.
    #[error("stored record unreadable: {0}")]
    Corrupt(String),
}

pub trait Kv: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, DbError>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, DbError>;
    /// The last `limit` entries whose key starts with `prefix`, newest (highest key) first.
    fn scan_prefix_rev(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, DbError> {
        self.scan_rev_before(tree, prefix, None, limit)
    }
    /// At most `limit` entries whose key starts with `prefix` and sorts below `before`
    /// (all of them when `None`), highest first: a page of a list read newest first,
    /// resumed below the last key the previous page ended on.
    fn scan_rev_before(
        &self,
        tree: Tree,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, DbError>;
    /// The first `limit` entries whose key starts with `prefix` and is `start` or above, in
    /// key order: a page of a log, resumed after the last key seen.
    fn scan_from(&self, tree: Tree, prefix: &[u8], start: &[u8], limit: usize)
        -> Result<Vec<Entry>, DbError>;
    /// Applies every op or none. Readers see it at once (a reader that does not hold the
    /// service's write lock may see it partly applied while this runs: write records before
    /// the index entries that point at them); it is durable once a [`Durable`] asked for
    /// after this returned has resolved.
    fn write(&self, ops: Vec<Op>) -> Result<(), DbError>;
    /// Resolves once every `write` that returned before this call is durable. Concurrent
    /// callers share flushes; a failed flush fails every caller it covered.
    fn durable(&self) -> Durable;
    /// Applies every op or none, and returns only once it is durable.
    fn apply(&self, ops: Vec<Op>) -> Result<(), DbError> {
        self.write(ops)?;
        self.durable().wait()
    }
    /// A number never returned before, also across restarts.
    fn next_id(&self) -> Result<u64, DbError>;
}

#[cfg(test)]
pub mod conformance;

#[cfg(test)]
mod tests {
    use super::Tree;

    #[test]
    fn trees_are_listed_in_declaration_order_with_distinct_names() {
        for (i, t) in Tree::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
        let mut names: Vec<&str> = Tree::ALL.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Tree::ALL.len());
    }
}
