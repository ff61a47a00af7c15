//! Why the service refused or failed, as a type that knows nothing of HTTP. The control API
//! and the operator CLI turn it into a problem document in one place
//! (`api/problems.rs`); the service only says what happened.

use upgate_gateway::control_link::LinkState;

use crate::db::DbError;
use crate::repo::RepoError;
use crate::settings::RuleError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    // --- any concern -----------------------------------------------------------------
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

    // --- accounts --------------------------------------------------------------------
    #[error("invalid account name")]
    InvalidAccountName,
    #[error("unknown plan {plan:?}")]
    UnknownPlan { plan: String, known: Vec<String> },

    // --- assistants ------------------------------------------------------------------
    /// The settings break these rules (the first is the headline).
    #[error("settings refused: {}", .0.first().map_or("", |e| e.code))]
    Settings(Vec<RuleError>),

    // --- calls -----------------------------------------------------------------------
    #[error("caller number not in E.164 form")]
    InvalidPhoneNumber,
    #[error("invalid {0}")]
    InvalidId(&'static str),
    #[error("no such assistant")]
    UnknownAssistant,

    // --- tokens ----------------------------------------------------------------------
    /// `detail` is the rule the name breaks, in a sentence.
    #[error("{detail}")]
    InvalidTokenName { detail: String },
    #[error("{detail}")]
    InvalidExpiry { detail: String },

    // --- links and their SMS -----------------------------------------------------------
    #[error("the link is {}", .0.as_str())]
    LinkNotActive(LinkState),
    #[error("the link's signing key was retired")]
    LinkKeyRetired,
    #[error("the account's plan has no SMS")]
    PlanLacksSms,
    #[error("file upload is disabled for the assistant")]
    FileUploadDisabled,
    /// Texts to this number or from this account are over the hourly allowance.
    #[error("SMS allowance used; try again in {wait} s")]
    SmsRateLimited { wait: u64 },
    #[error("invalid Idempotency-Key")]
    InvalidIdempotencyKey,
    #[error("Idempotency-Key used for another request")]
    IdempotencyKeyReused,
    #[error("Idempotency-Key in use by a request in progress")]
    IdempotencyKeyInUse,

    // --- files -----------------------------------------------------------------------
    /// The object store failed; the detail is for logs.
    #[error("storage failed: {0}")]
    StorageUnavailable(String),
    /// A stored file failed its integrity check (tampered, or another file's bytes).
    #[error("stored file failed its integrity check")]
    FileIntegrity,

    // --- operator: gateways and keys -----------------------------------------------------
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
