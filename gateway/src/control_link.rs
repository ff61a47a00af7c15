//! What the gateway asks of the control plane, as a trait: in one process it is a direct
//! call, in split mode a client of the internal API ([`client`]). The gateway never sees
//! the store. Every type here is also the internal API's wire format ([`wire`]).

pub mod client;
pub mod wire;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::scanner::Proof;
use crate::token::LinkId;
use crate::upload::sniff::Kind;

/// Where a link stands. Each end state has its own page for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Active,
    /// The caller finished, or the file quota is used.
    Used,
    Expired,
    Revoked,
    /// A newer link for the same call replaced this one.
    Superseded,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Active => "active",
            LinkState::Used => "used",
            LinkState::Expired => "expired",
            LinkState::Revoked => "revoked",
            LinkState::Superseded => "superseded",
        }
    }
}

/// What the caller's page needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    pub state: LinkState,
    /// The assistant's message, shown as what is asked for.
    pub message: String,
    pub allowed: Vec<Kind>,
    pub max_file_bytes: u64,
    pub max_files: u32,
    pub files_received: u32,
    pub expires_at: u64,
}

/// A reserved file slot on a link, held as a lease: quotas hold exactly under concurrent
/// uploads, and a gateway that dies mid-upload gives the slot back when the lease ends.
/// The gateway renews it while the upload runs ([`ControlLink::renew`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub link_id: LinkId,
    /// Random, so leases from before a control-plane restart never collide with new ones.
    pub lease: u64,
    /// How long the lease lasts from its last renewal, in seconds.
    pub ttl_secs: u64,
    /// The key this upload is sealed for: its account's own (see the control plane's
    /// `account_keys`), so destroying that key shreds the account's files. Absent from a
    /// control plane of before account keys: the instance storage key is used then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<crate::keys::StoragePublic>,
}

impl Claim {
    /// The key to seal this upload for: the account's, else the instance's current one.
    pub fn seal_for(&self, instance: crate::seal::RecipientPublicKey) -> crate::seal::RecipientPublicKey {
        self.recipient
            .as_ref()
            .map_or(instance, |k| crate::seal::RecipientPublicKey {
                key_id: k.key_id,
                bytes: k.public,
            })
    }
}

/// What the scanner said of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    /// A proven clamd read the whole file and found nothing.
    Clean,
    /// A signature matched (only in refusal records: infected files are not kept).
    Infected,
    /// Not scanned: scanning is off, or clamd gave no verdict on this file.
    NotScanned,
    /// Kept sealed in quarantine, unscanned, because no trusted clamd could be asked
    /// (`scanner.on_unavailable = "quarantine"`); the control plane scans it when one is back.
    Unscanned,
}

/// The scanner's word on a file. Made only by the constructors below, so a clean verdict
/// always names the engine (and database) of a clamd that proved itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanVerdict {
    status: ScanStatus,
    /// The engine and database version that gave the verdict, e.g. "ClamAV 1.4.6/27000/...".
    engine: Option<String>,
    /// The signature name for an infected file, or why a file was not scanned.
    detail: Option<String>,
    scanned_at: u64,
}

impl ScanVerdict {
    pub fn clean(proof: &Proof, now: u64) -> ScanVerdict {
        ScanVerdict::by(ScanStatus::Clean, Some(proof), None, now)
    }

    pub fn infected(proof: &Proof, signature: String, now: u64) -> ScanVerdict {
        ScanVerdict::by(ScanStatus::Infected, Some(proof), Some(signature), now)
    }

    /// Not scanned: by a proven clamd that gave no verdict on the file, or by none at all.
    pub fn not_scanned(proof: Option<&Proof>, reason: String, now: u64) -> ScanVerdict {
        ScanVerdict::by(ScanStatus::NotScanned, proof, Some(reason), now)
    }

    /// Held for a later scan: no trusted clamd could be asked when the file arrived.
    pub fn unscanned(reason: String, now: u64) -> ScanVerdict {
        ScanVerdict::by(ScanStatus::Unscanned, None, Some(reason), now)
    }

    fn by(status: ScanStatus, proof: Option<&Proof>, detail: Option<String>, now: u64) -> ScanVerdict {
        ScanVerdict {
            status,
            engine: proof.map(|p| p.engine().to_string()),
            detail,
            scanned_at: now,
        }
    }

    pub fn status(&self) -> ScanStatus {
        self.status
    }

    pub fn engine(&self) -> Option<&str> {
        self.engine.as_deref()
    }

    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Whether this verdict may stand as clean: a clean status with the engine that gave it.
    /// Records from elsewhere (the store, a gateway over the wire) are checked with this.
    pub fn is_trustworthy_clean(&self) -> bool {
        self.status == ScanStatus::Clean && self.engine.as_deref().is_some_and(|e| e.starts_with("ClamAV "))
    }
}

/// A file that passed every check and is committed to storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFile {
    pub file_id: String,
    pub display_name: String,
    pub kind: Kind,
    pub size: u64,
    pub sha256: String,
    pub verdict: ScanVerdict,
    /// The storage key id it is sealed for.
    pub key_id: u32,
    pub received_at: u64,
    /// Whether its thumbnail and preview were stored beside it (images only). Absent from
    /// gateways older than previews: none.
    #[serde(default)]
    pub previews: bool,
}

/// Why a file was refused, as recorded on the call and shown to staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    FileTooLarge,
    TypeNotAllowed,
    EmptyFile,
    ContentInvalid,
    Infected,
    Unscannable,
}

/// An upload the gateway refused for what the file is (infected, wrong type, too large,
/// unprovable content): recorded on the call so staff can see what the caller tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: RefusalCode,
    pub display_name: String,
    /// Bytes received before the refusal (the whole file, unless refused early).
    pub size: u64,
    pub verdict: Option<ScanVerdict>,
    /// The sentence the caller was shown, and the language it is in (empty from gateways
    /// of builds before it was sent).
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub lang: String,
}

/// A delivery report an SMS provider posted to the gateway (`POST /hooks/sms/{provider}`),
/// handed to the control plane as it came: the gateway verifies nothing (the provider's
/// secret is the control plane's), and the control plane rebuilds the URL the provider
/// signed from its own public URL and `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsReport {
    pub provider: String,
    /// The path and query as received.
    pub path: String,
    /// The form body (UTF-8; at most 16 KiB).
    pub body: String,
    /// The headers a provider signs with (names in lower case), and no others.
    pub headers: Vec<(String, String)>,
}

/// Headers passed on with a report: the signature schemes of the providers we speak.
pub const REPORT_HEADERS: [&str; 5] = [
    "x-twilio-signature",
    "authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportOutcome {
    /// The message's status moved on.
    Applied,
    /// Verified, but it says nothing new (a replay, or older than what is known): ignored.
    Stale,
    /// Its signature does not verify.
    Forged,
    /// No such provider here, or no such message.
    Unknown,
}

/// Why the control plane could not answer; never the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The link does not exist (a valid MAC on a deleted link, or another deployment's key).
    #[error("unknown link")]
    UnknownLink,
    /// The store or the internal API failed.
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
}

/// The keys a gateway holds: every link key (to verify old and new links) and the storage
/// *public* keys (to seal). Never a storage secret: nothing here opens a stored file.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeySet {
    pub link_keys: Vec<WireLinkKey>,
    /// The id new links are signed with (the control plane signs; the gateway only verifies).
    pub current_link: u8,
    pub storage: Vec<crate::keys::StoragePublic>,
    /// The storage key new files are sealed for.
    pub current_storage: u32,
}

/// A link key as it travels to a gateway: only over the authenticated internal API.
#[derive(Clone, Serialize, Deserialize, zeroize::ZeroizeOnDrop)]
pub struct WireLinkKey {
    #[zeroize(skip)]
    pub id: u8,
    #[serde(with = "crate::keys::hex32")]
    pub secret: [u8; 32],
}

impl std::fmt::Debug for KeySet {
    // By hand: link secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field(
                "link_key_ids",
                &self.link_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .field("current_link", &self.current_link)
            .field("storage", &self.storage)
            .field("current_storage", &self.current_storage)
            .finish()
    }
}

#[async_trait]
pub trait ControlLink: Send + Sync + 'static {
    /// The link as the caller's page shows it; no side effects (a GET never spends a link).
    async fn link(&self, id: &LinkId) -> Result<LinkView, ControlError>;
    /// Reserves a file slot, or says why the link takes no more files.
    async fn claim(&self, id: &LinkId) -> Result<Result<Claim, LinkState>, ControlError>;
    /// Extends the claim's lease by its ttl from now. `Ok(false)`: the lease is gone (it
    /// ended, or the link did), and the upload should stop.
    async fn renew(&self, claim: &Claim) -> Result<bool, ControlError>;
    /// Gives a slot back after a failed upload: a failed upload never spends a link. If this
    /// cannot reach the control plane, the lease ends by itself.
    async fn release(&self, claim: &Claim);
    /// Records a stored file on the call and the contact. Refused if the link ended meanwhile,
    /// in which case the gateway deletes the object.
    async fn commit(
        &self,
        claim: &Claim,
        file: NewFile,
    ) -> Result<Result<LinkState, LinkState>, ControlError>;
    /// Records a refused upload on the call.
    async fn refused(&self, id: &LinkId, refusal: Refusal);
    /// The caller's page was shown. Best effort, like `refused`: the control plane keeps the
    /// first opening of an active link as an event, and a page is never refused for this.
    async fn opened(&self, id: &LinkId);
    /// The caller is done: the link is used from now on.
    async fn finish(&self, id: &LinkId) -> Result<LinkState, ControlError>;
    /// The keys this gateway needs now (at start, and again to pick up a rotation).
    async fn keys(&self) -> Result<KeySet, ControlError>;
    /// A provider's delivery report, to verify and apply.
    async fn sms_report(&self, report: SmsReport) -> Result<ReportOutcome, ControlError>;
}

/// Renews a claim's lease while an upload runs; dropping it stops renewing (the upload's
/// end then commits or releases the claim). Renewals run every third of the ttl, so one
/// lost renewal does not end the lease.
pub struct LeaseKeeper(tokio::task::JoinHandle<()>);

impl LeaseKeeper {
    pub fn start(link: std::sync::Arc<dyn ControlLink>, claim: Claim) -> LeaseKeeper {
        let every = std::time::Duration::from_secs(claim.ttl_secs.max(3) / 3);
        LeaseKeeper(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                match link.renew(&claim).await {
                    Ok(true) => {}
                    Ok(false) => {
                        // The commit decides: it records the file if the link still has room.
                        tracing::warn!("an upload's lease ended before the upload did");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew an upload's lease"),
                }
            }
        }))
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_without_an_engine_is_never_a_trustworthy_clean() {
        let from_elsewhere: ScanVerdict =
            serde_json::from_str(r#"{"status":"clean","engine":null,"detail":null,"scanned_at":1}"#).unwrap();
        assert_eq!(from_elsewhere.status(), ScanStatus::Clean);
        assert!(!from_elsewhere.is_trustworthy_clean());
        let empty: ScanVerdict =
            serde_json::from_str(r#"{"status":"clean","engine":"","detail":null,"scanned_at":1}"#).unwrap();
        assert!(!empty.is_trustworthy_clean());
        let named: ScanVerdict = serde_json::from_str(
            r#"{"status":"clean","engine":"ClamAV 1.4.6","detail":null,"scanned_at":1}"#,
        )
        .unwrap();
        assert!(named.is_trustworthy_clean());
        let off = ScanVerdict::not_scanned(None, "scanning is off".into(), 1);
        assert!(!off.is_trustworthy_clean());
    }
}
