//! The records the control plane keeps, as stored (JSON in the store) and as the API shows
//! them. Link tokens and API tokens are never stored: a copy of the database opens nothing.

mod users;

use serde::{Deserialize, Serialize};
use upgate_gateway::control_link::{LinkState, ScanVerdict};

use crate::settings::FileUploadSettings;
pub use users::{Session, SigninLink, User, UserChange};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub created_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Settings and tokens; also calls, links, metadata and the audit log. Not downloads.
    Admin,
    /// The voice platform: calls and links.
    Integration,
    /// The security team: files, downloads, audit.
    Reviewer,
    /// Read-only metadata.
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "integration" => Some(Role::Integration),
            "reviewer" => Some(Role::Reviewer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Integration => "integration",
            Role::Reviewer => "reviewer",
            Role::Viewer => "viewer",
        }
    }
}

/// An API token's record, found by the SHA-256 of the token; the token itself is not kept.
/// Records written before names, expiry and revocation existed read as unnamed, never
/// expiring, never used and not revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub account_id: String,
    pub role: Role,
    pub hash: String,
    pub created_at: u64,
    /// A label for people ("voice platform, prod"); never the secret.
    #[serde(default)]
    pub name: Option<String>,
    /// Refused from this second on; `None` never expires.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// When it last authenticated a request, to the minute (see `LAST_USED_EVERY`).
    #[serde(default)]
    pub last_used_at: Option<u64>,
    /// Refused from this second on.
    #[serde(default)]
    pub revoked_at: Option<u64>,
}

/// Where a token stands; derived, never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

impl ApiToken {
    /// Revoked wins over expired: it is the stronger statement, and it was someone's act.
    pub fn status_at(&self, now: u64) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at.is_some_and(|t| now >= t) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assistant {
    pub account_id: String,
    pub id: String,
    pub file_upload: FileUploadSettings,
    pub updated_at: u64,
}

/// Something that happened on a call that staff should see (e.g. a refused upload).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallEvent {
    pub at: u64,
    /// Stored as `"kind": "<snake_case name>", "detail": {...}`.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened on a call, with its details typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Event {
    /// The gateway refused a file for what it is; the caller was told why.
    UploadRefused(UploadRefused),
    /// A link was issued for the call (its SMS is a separate event).
    LinkIssued { link_id: String, expires_at: u64 },
    /// A newer link replaced this one.
    LinkSuperseded { link_id: String, by: String },
    /// Staff or the platform revoked the link.
    LinkRevoked { link_id: String },
    /// The caller's page was shown for the first time (in a browser that kept the link's
    /// cookie: a link-preview bot that fetches the texted address does not count).
    LinkOpened { link_id: String },
    /// The link's lifetime ran out while it was active; `unused` when no file came on it.
    LinkExpired {
        link_id: String,
        files_stored: u32,
        unused: bool,
    },
    /// The caller pressed "I'm finished", or the link's last file slot was filled.
    LinkFinished { link_id: String },
    /// An upload took one of the link's file slots.
    UploadStarted { link_id: String },
    /// A file was stored on the call.
    FileStored(FileArrived),
    /// A file arrived while no trusted clamd could scan it: it is kept sealed in quarantine,
    /// unscanned and seen by reviewers only, until the control plane scans it.
    FileQuarantined(FileArrived),
    /// A quarantined file was scanned clean: it is on the call like any stored file now.
    FileReleased(FileDecided),
    /// A quarantined file was scanned and a signature matched: it stays in quarantine.
    FileInfected(FileDecided),
    /// A quarantined file was read by the scanner, which gave no verdict on it (one of its
    /// limits): it stays in quarantine for a reviewer.
    FileUnscannable(FileDecided),
    /// The link's SMS was handed to the provider, or the provider refused it.
    SmsSent { sms_id: String, link_id: String },
    SmsFailed {
        sms_id: String,
        link_id: String,
        /// The carrier's error code, when the carrier reported the failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    /// The carrier reported the text delivered to the phone.
    SmsDelivered { sms_id: String, link_id: String },
    /// The carrier could not deliver it (phone off for too long, blocked, unknown number).
    SmsUndelivered {
        sms_id: String,
        link_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
}

/// A file that came on a link: stored, or kept in quarantine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileArrived {
    pub link_id: String,
    pub file_id: String,
    pub size: u64,
    #[serde(rename = "type")]
    pub kind: upgate_gateway::upload::sniff::Kind,
    pub scan: ScanVerdict,
}

/// The verdict of a quarantined file's scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDecided {
    pub link_id: String,
    pub file_id: String,
    pub scan: ScanVerdict,
}

/// Every event kind, as webhooks subscribe to them.
pub const EVENT_KINDS: [&str; 17] = [
    "link_issued",
    "sms_sent",
    "sms_failed",
    "sms_delivered",
    "sms_undelivered",
    "link_opened",
    "upload_started",
    "file_stored",
    "file_quarantined",
    "file_released",
    "file_infected",
    "file_unscannable",
    "upload_refused",
    "link_finished",
    "link_expired",
    "link_revoked",
    "link_superseded",
];

impl Event {
    /// The event's name as the API and the event streams spell it (`link_issued`, …).
    pub fn kind(&self) -> String {
        let value = serde_json::to_value(self).expect("events serialize");
        value["kind"]
            .as_str()
            .expect("every event has a kind")
            .to_string()
    }
}

/// One entry of an account's event log: what happened on which call, numbered in the
/// order the changes were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Increases with every event of the account, in the order they became visible.
    pub id: u64,
    pub at: u64,
    pub call_id: String,
    #[serde(flatten)]
    pub event: Event,
}

/// The fields but `code` default when absent: records from the first builds lack some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadRefused {
    pub code: upgate_gateway::control_link::RefusalCode,
    /// The caller's file name, cleaned.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub scan: Option<ScanVerdict>,
    #[serde(default)]
    pub link_id: String,
    /// The sentence the caller was shown, in their language (`lang`); absent on records
    /// from before it was kept.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lang: String,
}

/// A call's own fields. What it gathers (links, messages, files, events) is kept under the
/// call's key prefix in trees of their own (`db::Tree::CallLinks` and the rest), so no write
/// costs more as the call ages; `repo/sled_call_layout.rs` moves records of the older layout,
/// which held id lists, there at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub account_id: String,
    pub id: String,
    pub assistant_id: String,
    pub caller_number: String,
    pub created_at: u64,
    /// The number the next event gets; the events kept are `events_dropped..events_next`.
    pub events_next: u64,
    /// Events dropped to keep the call bounded (oldest first).
    pub events_dropped: u64,
}

/// A link as stored. `Expired` is derived from `expires_at` the moment it passes, and
/// stored shortly after by the expiry sweeper, in the batch of its `link_expired` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    pub id: String,
    pub account_id: String,
    pub call_id: String,
    pub state: LinkState,
    pub key_id: u8,
    pub created_at: u64,
    pub expires_at: u64,
    /// The assistant's message and limits at issue time: later settings changes do not
    /// change what a caller was already promised.
    pub message: String,
    pub allowed_types: Vec<String>,
    pub max_file_bytes: u64,
    pub max_files: u32,
    pub files_received: u32,
    pub ended_at: Option<u64>,
    /// When the caller's page was first shown; absent until then (and on older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<u64>,
    /// File slots held by uploads in flight: each until its expiry unless renewed, ended
    /// by the upload's commit or release. Kept on the link so that a claim is one read and
    /// one write of the record it changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseHold>,
}

/// One claimed slot on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHold {
    pub lease: u64,
    pub expires_at: u64,
}

impl Link {
    /// The state as the caller and the API see it now.
    pub fn state_at(&self, now: u64) -> LinkState {
        if self.state == LinkState::Active && now >= self.expires_at {
            LinkState::Expired
        } else {
            self.state
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsStatus {
    /// Handed to the provider (or the outbox).
    Sent,
    /// The provider refused or could not be reached.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmsMessage {
    pub id: String,
    pub account_id: String,
    pub call_id: String,
    pub link_id: String,
    pub to: String,
    pub provider: String,
    pub provider_id: Option<String>,
    pub status: SmsStatus,
    pub error: Option<String>,
    pub encoding: String,
    pub segments: usize,
    pub created_at: u64,
    /// What the carrier last reported (absent until it reports, and for providers that
    /// do not), with its error code and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<crate::sms::Delivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub id: String,
    pub account_id: String,
    pub call_id: String,
    pub link_id: String,
    pub contact: String,
    pub name: String,
    /// Stored and shown as its media type.
    #[serde(rename = "type")]
    pub kind: upgate_gateway::upload::sniff::Kind,
    pub size: u64,
    pub sha256: String,
    pub scan: ScanVerdict,
    pub key_id: u32,
    pub received_at: u64,
    /// The signed statement of what was checked (absent on files stored before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<crate::attest::Attestation>,
    /// Present on a file that came in while no trusted clamd could scan it (absent on every
    /// other file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<Quarantine>,
    /// A thumbnail and a preview are stored beside it (`ObjectKey::sidecar`): images only,
    /// and only those stored since previews exist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub previews: bool,
}

impl FileRecord {
    /// Held in quarantine: waiting for its scan, or kept there by its verdict. Only
    /// reviewers see such a file; everyone sees a released one.
    pub fn in_quarantine(&self) -> bool {
        self.quarantine
            .as_ref()
            .is_some_and(|q| q.state != QuarantineState::Released)
    }
}

/// A file's time in quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    pub state: QuarantineState,
    /// When it came in, unscanned.
    pub since: u64,
    /// Why it could not be scanned then.
    pub reason: String,
    /// When the scan that decided its state ran; absent while it is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<u64>,
    /// The reviewer (user id) who released or blocked it by hand; absent when a scan decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineState {
    /// Waiting for a trusted clamd.
    Held,
    /// Scanned clean: out of quarantine, the record says it was there.
    Released,
    /// Scanned, a signature matched: kept, for reviewers only.
    Infected,
    /// Scanned, no verdict (over one of clamd's limits): kept, for reviewers only.
    Unscannable,
    /// A reviewer decided to keep it out, whatever a later scan would say: kept, for
    /// reviewers only, never rescanned.
    Blocked,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Held => "held",
            QuarantineState::Released => "released",
            QuarantineState::Infected => "infected",
            QuarantineState::Unscannable => "unscannable",
            QuarantineState::Blocked => "blocked",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: u64,
    pub account_id: String,
    /// The API token id (never the token), "operator" (the CLI) or "gateway" (stored files).
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written before these fields were typed read back the same, and are written
    /// back byte for byte as they were: no migration, and an older build can still read them.
    #[test]
    fn typed_records_keep_the_stored_spelling() {
        let event = r#"{"at":5,"kind":"upload_refused","detail":{"code":"infected","name":"a.pdf","size":3,"scan":null,"link_id":"00112233445566778899aabb"}}"#;
        let parsed: CallEvent = serde_json::from_str(event).unwrap();
        assert!(
            matches!(&parsed.event, Event::UploadRefused(r) if r.code == upgate_gateway::control_link::RefusalCode::Infected)
        );
        assert_eq!(serde_json::to_string(&parsed).unwrap(), event);
        let file = r#"{"id":"f_00112233445566778899aabbccddeeff","account_id":"acc_1","call_id":"c","link_id":"l","contact":"+14155550123","name":"a.jpg","type":"image/jpeg","size":1,"sha256":"00","scan":{"status":"not_scanned","engine":null,"detail":"off","scanned_at":1},"key_id":1,"received_at":2}"#;
        let parsed: FileRecord = serde_json::from_str(file).unwrap();
        assert_eq!(parsed.kind, upgate_gateway::upload::sniff::Kind::Jpeg);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), file);
        // A kind or a code we do not know is an error, not a string passed along.
        assert!(serde_json::from_str::<FileRecord>(&file.replace("image/jpeg", "text/html")).is_err());
        assert!(serde_json::from_str::<CallEvent>(&event.replace("infected", "bad")).is_err());
    }
}
