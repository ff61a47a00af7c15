//! Why the service refused or failed, as types that know nothing of HTTP: one enum per
//! concern, gathered in [`ServiceError`] with what any concern can hit (the store, a missing
//! record). The control API and the operator CLI turn it into a problem document in one
//! place (`api/problems.rs`); the service only says what happened.

use upgate_gateway::control_link::LinkState;

use crate::db::DbError;
use crate::repo::RepoError;
use crate::settings::RuleError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The metadata store failed; never the client's fault.
    #[error("metadata store failed: {0}")]
    Store(#[from] DbError),
    /// No such record in the caller's account (or an id of the wrong shape).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The system random generator failed.
    #[error("the system random generator failed")]
    NoRandomness,
    /// A bug or a panic on a worker thread.
    #[error("internal failure: {0}")]
    Internal(String),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Assistant(#[from] AssistantError),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    User(#[from] UserError),
}

/// Console users and sign-in. Sign-in failures are one variant on purpose: a wrong
/// password, an unknown address and a disabled user look the same to whoever tries.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("invalid email address")]
    InvalidEmail,
    #[error("the email address is taken")]
    EmailTaken,
    #[error("unknown role")]
    UnknownRole,
    /// Admins invite admins, integrations and viewers; reviewers come from the operator.
    #[error("reviewers are granted by the operator")]
    ReviewerByOperator,
    #[error("{0}")]
    WeakPassword(&'static str),
    /// Unknown, used or expired: the same answer for each.
    #[error("sign-in link not valid")]
    SigninLinkInvalid,
    #[error("sign-in refused")]
    SignInRefused,
    /// The password was right and the user has a second factor: a code is needed.
    #[error("a code from the authenticator app is needed")]
    CodeNeeded,
    #[error("the code is wrong or was used")]
    CodeWrong,
    #[error("too many failed sign-ins; wait {wait} s")]
    RateLimited { wait: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not one a webhook may go to; the sentence says why.
    #[error("webhook URL refused: {0}")]
    InvalidUrl(String),
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    #[error("rotation overlap out of range")]
    InvalidOverlap,
    #[error("too many endpoints")]
    TooMany,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid account name")]
    InvalidName,
    #[error("unknown plan {plan:?}")]
    UnknownPlan { plan: String, known: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// The settings break these rules (the first is the headline).
    #[error("settings refused: {}", .0.first().map_or("", |e| e.code))]
    Settings(Vec<RuleError>),
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("caller number not in E.164 form")]
    InvalidPhoneNumber,
    #[error("invalid {0}")]
    InvalidId(&'static str),
    #[error("no such assistant")]
    UnknownAssistant,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `detail` is the rule the name breaks, in a sentence.
    #[error("{detail}")]
    InvalidName { detail: String },
    #[error("{detail}")]
    InvalidExpiry { detail: String },
}

/// Issuing, resending and texting links.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the link is {}", .0.as_str())]
    NotActive(LinkState),
    #[error("the link's signing key was retired")]
    KeyRetired,
    #[error("the account's plan has no SMS")]
    PlanLacksSms,
    #[error("file upload is disabled for the assistant")]
    FileUploadDisabled,
    /// Texts to this number or from this account are over the hourly allowance.
    #[error("SMS allowance used; try again in {wait} s")]
    SmsRateLimited { wait: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("invalid Idempotency-Key")]
    InvalidKey,
    #[error("Idempotency-Key used for another request")]
    KeyReused,
    #[error("Idempotency-Key in use by a request in progress")]
    KeyInUse,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The object store failed; the detail is for logs.
    #[error("storage failed: {0}")]
    StorageUnavailable(String),
    /// A stored file failed its integrity check (tampered, or another file's bytes).
    #[error("stored file failed its integrity check")]
    Integrity,
    /// The file's account key was destroyed (crypto-shredded): it can never be opened.
    #[error("the file's key was destroyed")]
    Shredded,
}

/// The operator's commands on gateways and keys.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("invalid gateway name")]
    InvalidGatewayName,
    /// A key rotation or retirement was refused; `detail` says why.
    #[error("{detail}")]
    KeyChangeRefused { detail: String },
}

impl From<RepoError> for ServiceError {
    fn from(e: RepoError) -> ServiceError {
        match e {
            RepoError::Store(e) => ServiceError::Store(e),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}
