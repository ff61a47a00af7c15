//! The control plane's operations, independent of HTTP and of the store: accounts, tokens,
//! assistants, calls, links, files and the audit log. The service checks and decides; each
//! change it makes is one repository call (`crate::repo`), which is one transaction, durable
//! before it returns. Nobody is answered before what they changed is durable.

mod calls;
mod error;
mod events;
mod files;
#[cfg(test)]
pub(crate) mod fixture;
mod gateway_credentials;
mod gateway_link;
mod idempotency;
mod key_admin;
mod lifecycle;
mod links;
mod quarantine;
#[cfg(test)]
pub(crate) use quarantine::tests as quarantine_tests;
mod reports;
#[cfg(test)]
mod resumable_expiry;
mod sms_reports;
mod sms_window;
mod tokens;
pub mod users;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use ring::digest;
use upgate_config::Plan;

use crate::ids::new_id;
use crate::keys::KeyRing;
use crate::model::{Account, Assistant, AuditEntry, Role};
use crate::repo::{AuditNote, Repos};
use crate::settings::{self, FileUploadSettings};
use crate::sms::SmsProvider;
use upgate_gateway::metrics::Metrics;
use upgate_gateway::scanner::Depth;
use upgate_gateway::sys::now;

pub use calls::{CallDetails, CallInput};
pub use error::{
    AccountError, AssistantError, CallError, FileError, IdempotencyError, LinkError, OperatorError,
    ServiceError, TokenError, UserError, WebhookError,
};
pub use gateway_credentials::GatewayCredential;
pub use gateway_link::InProcess;
pub use links::IssuedLink;
pub use reports::{FollowUpReport, MAX_WINDOW_SECONDS as MAX_REPORT_WINDOW_SECONDS};
pub use tokens::{last_used_due, NewToken, Refused, LAST_USED_EVERY};
pub use users::{actor_for, NewUser, SignInAttempt, SignedIn};
pub use webhooks::{WebhookInput, WebhookPatch};

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

impl Actor {
    /// The audit entry for something this actor did in its account.
    pub fn note(&self, action: &'static str, target: &str, detail: serde_json::Value) -> AuditNote {
        AuditNote {
            account_id: self.account_id.clone(),
            actor: self.token_id.clone(),
            action,
            target: target.into(),
            detail,
        }
    }
}

/// A claim's lease lasts this long unless renewed: long enough that a renewal every third
/// of it survives a slow control plane, short enough that a dead gateway's slot comes back
/// within a minute.
pub const DEFAULT_LEASE_TTL_SECS: u64 = 60;

pub struct Service {
    /// The store, one repository per concern.
    pub(crate) repos: Repos,
    pub(crate) plans: BTreeMap<String, Plan>,
    pub(crate) keys: KeyRing,
    pub(crate) sms: Arc<dyn SmsProvider>,
    pub(crate) public_url: String,
    pub(crate) metrics: Metrics,
    sms_window: sms_window::SmsWindow,
    /// One key change (rotation, retirement) at a time: each rewrites the key files.
    key_change: tokio::sync::Mutex<()>,
    /// How long a claimed file slot is held without a renewal (see `gateway_link`).
    pub(crate) lease_ttl: std::sync::atomic::AtomicU64,
    /// Where webhooks may go and how long they are retried (`set_webhooks`).
    webhooks: std::sync::OnceLock<upgate_config::WebhooksConfig>,
    /// How deep the scanner proved it scans, when one runs in this process: settings that
    /// allow larger files are refused.
    scan_depth: std::sync::OnceLock<Box<dyn Fn() -> Option<Depth> + Send + Sync>>,
    /// The deployment's largest file (`uploads.max_file_size`): settings above are refused.
    max_file_bytes: AtomicU64,
    /// Whether a rescan runs beside this control plane (see `quarantine`).
    rescans: std::sync::atomic::AtomicBool,
    /// Where files are stored, for deleting them (retention, account deletion).
    objects: std::sync::OnceLock<(Arc<dyn upgate_gateway::storage::ObjectStore>, bool)>,
    /// Where staff open the console (`set_console_url`).
    console_url: std::sync::OnceLock<String>,
    /// Failed console sign-ins, by user and by address.
    signin_limits: users::SigninLimits,
    /// Argon2id runs allowed at once (`users::ARGON_AT_ONCE`).
    argon_slots: tokio::sync::Semaphore,
    /// Argon2id runs so far: what the tests count to show a made-up link costs none.
    argon_runs: AtomicU64,
}

pub fn token_hash(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

impl Service {
    pub fn new(
        repos: Repos,
        plans: BTreeMap<String, Plan>,
        keys: KeyRing,
        sms: Arc<dyn SmsProvider>,
        public_url: String,
        metrics: Metrics,
        sms_limits: upgate_config::SmsLimits,
    ) -> Service {
        Service {
            repos,
            plans,
            keys,
            sms,
            public_url,
            metrics,
            sms_window: sms_window::SmsWindow::new(sms_limits),
            key_change: tokio::sync::Mutex::new(()),
            lease_ttl: AtomicU64::new(DEFAULT_LEASE_TTL_SECS),
            webhooks: std::sync::OnceLock::new(),
            scan_depth: std::sync::OnceLock::new(),
            max_file_bytes: AtomicU64::new(upgate_config::DEFAULT_MAX_FILE_BYTES),
            rescans: Default::default(),
            objects: std::sync::OnceLock::new(),
            console_url: std::sync::OnceLock::new(),
            signin_limits: Default::default(),
            argon_slots: tokio::sync::Semaphore::new(users::ARGON_AT_ONCE),
            argon_runs: AtomicU64::new(0),
        }
    }

    /// The deployment's webhook settings (once, at start; the defaults until then).
    pub fn set_webhooks(&self, config: upgate_config::WebhooksConfig) {
        let _ = self.webhooks.set(config);
    }

    pub fn webhooks_config(&self) -> upgate_config::WebhooksConfig {
        self.webhooks.get().copied().unwrap_or_default()
    }

    /// The repositories, for the background workers that run beside the service.
    pub fn repos(&self) -> crate::repo::Repos {
        self.repos.clone()
    }

    /// How long a gateway's claim on a file slot lasts between renewals.
    pub fn set_lease_ttl(&self, ttl: std::time::Duration) {
        self.lease_ttl
            .store(ttl.as_secs().max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The deployment's largest file: assistant settings may not allow more.
    pub fn set_max_file_bytes(&self, bytes: u64) {
        self.max_file_bytes
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Tells settings checks how deep the scanner proved it scans (`None`: nothing proved).
    pub fn set_scan_depth(&self, depth: impl Fn() -> Option<Depth> + Send + Sync + 'static) {
        let _ = self.scan_depth.set(Box::new(depth));
    }

    /// A request refused for its role: who, where, which permission, and why.
    pub async fn audit_denied(
        &self,
        actor: &Actor,
        route: &str,
        method: &str,
        permission: &str,
        code: &str,
    ) -> Result<(), ServiceError> {
        let note = actor.note(
            "access.denied",
            route,
            serde_json::json!({
                "method": method,
                "route": route,
                "permission": permission,
                "role": actor.role.as_str(),
                "code": code,
            }),
        );
        Ok(self.repos.audit.append(note).await?)
    }

    // --- operator: accounts ------------------------------------------------------------

    pub async fn create_account(&self, name: &str, plan: &str) -> Result<Account, ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || crate::hidden_chars::first_hidden(name).is_some()
        {
            return Err(AccountError::InvalidName.into());
        }
        if !self.plans.contains_key(plan) {
            return Err(AccountError::UnknownPlan {
                plan: plan.into(),
                known: self.plans.keys().cloned().collect(),
            }
            .into());
        }
        let account = Account {
            id: new_id("acc"),
            name: name.into(),
            plan: plan.into(),
            created_at: now(),
        };
        let audit = AuditNote {
            account_id: account.id.clone(),
            actor: "operator".into(),
            action: "account.create",
            target: account.id.clone(),
            detail: serde_json::json!({"plan": plan}),
        };
        self.repos.accounts.create_account(&account, audit).await?;
        Ok(account)
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, ServiceError> {
        // Checked against our own id shape before any storage call, like every outside id.
        if !crate::ids::is_own_id(id, "acc") {
            return Ok(None);
        }
        Ok(self.repos.accounts.account(id).await?)
    }

    /// Whether the account's plan includes SMS (which file upload needs).
    pub async fn plan_sms(&self, account_id: &str) -> Result<bool, ServiceError> {
        self.plan_has_sms(account_id).await
    }

    async fn plan_has_sms(&self, account_id: &str) -> Result<bool, ServiceError> {
        let account = self
            .account(account_id)
            .await?
            .ok_or(ServiceError::NotFound("account"))?;
        Ok(self.plans.get(&account.plan).is_some_and(|p| p.sms))
    }

    /// Counts a text about to be sent, or refuses it (429) when the number or the account has
    /// had its allowance this hour.
    pub(crate) fn admit_sms(&self, account_id: &str, number: &str) -> Result<(), ServiceError> {
        self.sms_window
            .admit(account_id, number, now())
            .map_err(|wait| ServiceError::from(LinkError::SmsRateLimited { wait }))
    }

    // --- assistants ----------------------------------------------------------------------

    pub async fn put_assistant(
        &self,
        actor: &Actor,
        id: &str,
        settings: FileUploadSettings,
    ) -> Result<(Assistant, bool), ServiceError> {
        let ceiling = self.max_file_bytes.load(std::sync::atomic::Ordering::Relaxed);
        let mut errors = settings::validate(&settings, self.plan_has_sms(&actor.account_id).await?, ceiling);
        let depth = self.scan_depth.get().and_then(|depth| depth());
        if let Some(depth) = depth.filter(|d| settings.enabled && settings.max_file_bytes > d.bytes) {
            let bytes = depth.bytes;
            let detail = if depth.deepening {
                format!(
                    "The virus scanner has so far proved it scans files up to {bytes} bytes, and is \
                     proving deeper (files this large take clamd a while): try again in a minute."
                )
            } else {
                format!(
                    "The virus scanner proves it scans files up to {bytes} bytes; choose at most that, \
                     or ask the operator to raise clamd's StreamMaxLength, MaxFileSize and MaxScanSize."
                )
            };
            errors.push(settings::rule(
                "max_file_bytes_over_scanner_depth",
                "max_file_bytes",
                detail,
            ));
        }
        if !errors.is_empty() {
            return Err(AssistantError::Settings(errors).into());
        }
        let assistant = Assistant {
            account_id: actor.account_id.clone(),
            id: id.into(),
            file_upload: settings,
            updated_at: now(),
        };
        let audit = actor.note(
            "assistant.update",
            id,
            serde_json::to_value(&assistant.file_upload).unwrap_or_default(),
        );
        let created = self.repos.accounts.put_assistant(&assistant, audit).await?;
        Ok((assistant, created))
    }

    pub async fn assistant(&self, account_id: &str, id: &str) -> Result<Assistant, ServiceError> {
        self.repos
            .accounts
            .assistant(account_id, id)
            .await?
            .ok_or(ServiceError::NotFound("assistant"))
    }

    /// The assistant and whether its account's plan lets it text links.
    pub async fn assistant_details(&self, assistant: Assistant) -> Result<AssistantDetails, ServiceError> {
        Ok(AssistantDetails {
            sms_available: self.plan_has_sms(&assistant.account_id).await?,
            assistant,
        })
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit(&self, account_id: &str, limit: usize) -> Result<Vec<AuditEntry>, ServiceError> {
        Ok(self.repos.audit.recent(account_id, limit).await?)
    }
}
