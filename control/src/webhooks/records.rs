//! What the store keeps for webhooks: the endpoints an account registered (with their
//! secrets and where in the event log they are), and the deliveries not yet done: pending
//! ones waiting for their next attempt, and dead letters. A delivered event leaves no
//! record behind, only the endpoint's counters.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// `whk_` and 16 hex digits.
    pub id: String,
    pub account_id: String,
    pub url: String,
    /// The event kinds delivered; empty delivers every kind.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// The newest last; during a rotation's overlap the older one signs too.
    pub secrets: Vec<Secret>,
    pub created_at: u64,
    pub updated_at: u64,
    /// The last id of the account's event log handed to deliveries: an endpoint gets the
    /// events written after it was registered, each once.
    pub cursor: u64,
    #[serde(default)]
    pub stats: Stats,
}

impl Endpoint {
    /// The secrets that sign at `t`.
    pub fn signing_secrets(&self, t: u64) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|end| t < end))
            .map(|s| s.secret.as_str())
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|k| k == kind)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    pub secret: String,
    pub created_at: u64,
    /// Set when a newer secret replaced it: it signs until then.
    pub expires_at: Option<u64>,
}

/// The endpoint's history in numbers, for its failure view.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dead: u64,
    pub last_success_at: Option<u64>,
    pub last_failure: Option<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub at: u64,
    pub event_id: u64,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// What went wrong, for the admin (never the secret, never the body).
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    /// Retried for `webhooks.retry_for` without success; kept until replayed.
    Dead,
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub account_id: String,
    pub endpoint_id: String,
    pub event_id: u64,
    pub state: DeliveryState,
    pub attempts: u32,
    /// When the first attempt was due: retries go on until `retry_for` after it.
    pub first_at: u64,
    pub next_at: u64,
    pub last_failure: Option<Failure>,
}

/// The message id a receiver deduplicates by: the same for every attempt of an event, and
/// distinct across accounts that may share a receiver.
pub fn message_id(account_id: &str, event_id: u64) -> String {
    format!("msg_{account_id}_{event_id}")
}
