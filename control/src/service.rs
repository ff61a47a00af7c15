//! The control plane's operations, independent of HTTP: accounts, tokens, assistants,
//! calls, links, files and the audit log. Writes are serialized by one lock so every
//! read-modify-write sees the state it changes; each is one atomic batch, written under the
//! lock and made durable after it (`Service::commit`): the lock never spans a flush, and
//! concurrent writers share flushes. Nobody is answered before their batch is durable.

mod call_layout;
mod calls;
mod error;
mod files;
#[cfg(test)]
mod fixture;
mod gateway_credentials;
mod gateway_link;
mod idempotency;
mod key_admin;
mod links;
mod sms_window;
mod tokens;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use ring::digest;
use serde::de::DeserializeOwned;
use serde::Serialize;
use upgate_config::Plan;

use crate::db::{DbError, Durable, Kv, Op, Tree};
use crate::ids::new_id;
use crate::keys::KeyRing;
use crate::model::{Account, Assistant, AuditEntry, Role};
use crate::settings::{self, FileUploadSettings};
use crate::sms::SmsProvider;
use upgate_gateway::metrics::Metrics;
use upgate_gateway::sys::now;

pub use calls::{CallDetails, CallInput};
pub use error::ServiceError;
pub use gateway_credentials::GatewayCredential;
pub use gateway_link::InProcess;
pub use links::{blocking, IssuedLink};
pub use tokens::{last_used_due, NewToken, Refused, LAST_USED_EVERY};

/// An assistant with what its account's plan allows.
#[derive(Debug, Clone)]
pub struct AssistantDetails {
    pub assistant: Assistant,
    /// File upload can be on only when the plan includes SMS.
    pub sms_available: bool,
}

/// Who is asking: the token's account and role, and its id for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub account_id: String,
    pub role: Role,
    pub token_id: String,
    /// When the token expires: tokens it creates expire no later.
    pub expires_at: Option<u64>,
}

/// A claim's lease lasts this long unless renewed: long enough that a renewal every third
/// of it survives a slow control plane, short enough that a dead gateway's slot comes back
/// within a minute.
pub const DEFAULT_LEASE_TTL_SECS: u64 = 60;

pub struct Service {
    pub(crate) db: Arc<dyn Kv>,
    pub(crate) plans: BTreeMap<String, Plan>,
    pub(crate) keys: KeyRing,
    pub(crate) sms: Arc<dyn SmsProvider>,
    pub(crate) public_url: String,
    pub(crate) metrics: Metrics,
    sms_window: sms_window::SmsWindow,
    write: Arc<Mutex<()>>,
    /// The links as gateways use them (claims, stored files, refusals).
    pub(crate) links: Arc<dyn crate::repo::LinkRepo>,
    /// Stored files' records.
    pub(crate) files: Arc<dyn crate::repo::FileRepo>,
    /// How long a claimed file slot is held without a renewal (see `gateway_link`).
    pub(crate) lease_ttl: std::sync::atomic::AtomicU64,
    /// How deep the scanner proved it scans, when one runs in this process: settings that
    /// allow larger files are refused.
    scan_depth: std::sync::OnceLock<Box<dyn Fn() -> Option<u64> + Send + Sync>>,
}

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
    let mut key = format!("{account_id}/").into_bytes();
    key.extend_from_slice(&seq.to_be_bytes());
    Ok(put(Tree::Audit, key, &entry))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

impl Service {
    pub fn new(
        db: Arc<dyn Kv>,
        plans: BTreeMap<String, Plan>,
        keys: KeyRing,
        sms: Arc<dyn SmsProvider>,
        public_url: String,
        metrics: Metrics,
        sms_limits: upgate_config::SmsLimits,
    ) -> Service {
        let write = Arc::new(Mutex::new(()));
        let links = Arc::new(crate::repo::SledLinks::new(db.clone(), write.clone()));
        let files = Arc::new(crate::repo::SledFiles::new(db.clone()));
        Service {
            db,
            plans,
            keys,
            sms,
            public_url,
            metrics,
            sms_window: sms_window::SmsWindow::new(sms_limits),
            write,
            links,
            files,
            lease_ttl: AtomicU64::new(DEFAULT_LEASE_TTL_SECS),
            scan_depth: std::sync::OnceLock::new(),
        }
    }

    /// How long a gateway's claim on a file slot lasts between renewals.
    pub fn set_lease_ttl(&self, ttl: std::time::Duration) {
        self.lease_ttl
            .store(ttl.as_secs().max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Tells settings checks how deep the scanner proved it scans (`None`: nothing proved).
    pub fn set_scan_depth(&self, depth: impl Fn() -> Option<u64> + Send + Sync + 'static) {
        let _ = self.scan_depth.set(Box::new(depth));
    }

    pub(crate) fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `ops` under `lock`, releases it, and returns what resolves once they are
    /// durable. The lock covers the read-modify-write, not the flush: the next writer reads
    /// this batch at once, and its own durable wait covers this batch too (flushes cover
    /// every write made before them).
    pub(crate) fn commit(
        &self,
        lock: std::sync::MutexGuard<'_, ()>,
        ops: Vec<Op>,
    ) -> Result<Durable, DbError> {
        self.db.write(ops)?;
        drop(lock);
        Ok(self.db.durable())
    }

    /// A request refused for its role: who, where, which permission, and why.
    pub fn audit_denied(
        &self,
        actor: &Actor,
        route: &str,
        method: &str,
        permission: &str,
        code: &str,
    ) -> Result<(), ServiceError> {
        let w = self.write_lock();
        let op = audit_op(
            &*self.db,
            &actor.token_id,
            &actor.account_id,
            "access.denied",
            route,
            serde_json::json!({
                "method": method,
                "route": route,
                "permission": permission,
                "role": actor.role.as_str(),
                "code": code,
            }),
        )?;
        self.commit(w, vec![op])?.wait()?;
        Ok(())
    }

    // --- operator: accounts ------------------------------------------------------------

    pub fn create_account(&self, name: &str, plan: &str) -> Result<Account, ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || crate::hidden_chars::first_hidden(name).is_some()
        {
            return Err(ServiceError::InvalidAccountName);
        }
        if !self.plans.contains_key(plan) {
            return Err(ServiceError::UnknownPlan {
                plan: plan.into(),
                known: self.plans.keys().cloned().collect(),
            });
        }
        let account = Account {
            id: new_id("acc"),
            name: name.into(),
            plan: plan.into(),
            created_at: now(),
        };
        let w = self.write_lock();
        let audit = audit_op(
            &*self.db,
            "operator",
            &account.id,
            "account.create",
            &account.id,
            serde_json::json!({"plan": plan}),
        )?;
        self.commit(
            w,
            vec![put(Tree::Accounts, account.id.as_bytes(), &account), audit],
        )?
        .wait()?;
        Ok(account)
    }

    pub fn account(&self, id: &str) -> Result<Option<Account>, ServiceError> {
        // Checked against our own id shape before any storage call, like every outside id.
        if !crate::ids::is_own_id(id, "acc") {
            return Ok(None);
        }
        Ok(get(&*self.db, Tree::Accounts, id.as_bytes())?)
    }

    fn plan_has_sms(&self, account_id: &str) -> Result<bool, ServiceError> {
        let account = self
            .account(account_id)?
            .ok_or(ServiceError::NotFound("account"))?;
        Ok(self.plans.get(&account.plan).is_some_and(|p| p.sms))
    }

    /// Counts a text about to be sent, or refuses it (429) when the number or the account has
    /// had its allowance this hour.
    pub(crate) fn admit_sms(&self, account_id: &str, number: &str) -> Result<(), ServiceError> {
        self.sms_window
            .admit(account_id, number, now())
            .map_err(|wait| ServiceError::SmsRateLimited { wait })
    }

    // --- assistants ----------------------------------------------------------------------

    pub fn put_assistant(
        &self,
        actor: &Actor,
        id: &str,
        settings: FileUploadSettings,
    ) -> Result<(Assistant, bool), ServiceError> {
        let mut errors = settings::validate(&settings, self.plan_has_sms(&actor.account_id)?);
        let depth = self.scan_depth.get().and_then(|depth| depth());
        if let Some(depth) = depth.filter(|d| settings.enabled && settings.max_file_bytes > *d) {
            errors.push(settings::rule(
                "max_file_bytes_over_scanner_depth",
                "max_file_bytes",
                format!(
                    "The virus scanner proves it scans files up to {depth} bytes; choose at most that, \
                     or ask the operator to raise clamd's StreamMaxLength, MaxFileSize and MaxScanSize."
                ),
            ));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Settings(errors));
        }
        let key = scoped(&actor.account_id, id);
        let w = self.write_lock();
        let existed = self.db.get(Tree::Assistants, &key)?.is_some();
        let assistant = Assistant {
            account_id: actor.account_id.clone(),
            id: id.into(),
            file_upload: settings,
            updated_at: now(),
        };
        let audit = audit_op(
            &*self.db,
            &actor.token_id,
            &actor.account_id,
            "assistant.update",
            id,
            serde_json::to_value(&assistant.file_upload).unwrap_or_default(),
        )?;
        self.commit(w, vec![put(Tree::Assistants, key, &assistant), audit])?
            .wait()?;
        Ok((assistant, !existed))
    }

    pub fn assistant(&self, account_id: &str, id: &str) -> Result<Assistant, ServiceError> {
        get(&*self.db, Tree::Assistants, &scoped(account_id, id))?.ok_or(ServiceError::NotFound("assistant"))
    }

    /// The assistant and whether its account's plan lets it text links.
    pub fn assistant_details(&self, assistant: Assistant) -> Result<AssistantDetails, ServiceError> {
        Ok(AssistantDetails {
            sms_available: self.plan_has_sms(&assistant.account_id)?,
            assistant,
        })
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit(&self, account_id: &str, limit: usize) -> Result<Vec<AuditEntry>, ServiceError> {
        let entries = self
            .db
            .scan_prefix_rev(Tree::Audit, format!("{account_id}/").as_bytes(), limit)?;
        Ok(entries
            .into_iter()
            .map(|(_, v)| decode(Tree::Audit, &v))
            .collect::<Result<_, _>>()?)
    }
}
