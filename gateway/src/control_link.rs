//! What the gateway asks of the control plane, as a trait: in one process it is a direct
//! call, in split mode a client of the internal API. The gateway never sees the store.

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
#[derive(Debug, Clone)]
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

/// A reserved file slot on a link: quotas hold exactly under concurrent uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub link_id: LinkId,
    pub slot: u64,
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
#[derive(Debug, Clone)]
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
}

/// An upload the gateway refused for what the file is (infected, wrong type, too large,
/// unprovable content): recorded on the call so staff can see what the caller tried.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: &'static str,
    pub display_name: String,
    /// Bytes received before the refusal (the whole file, unless refused early).
    pub size: u64,
    pub verdict: Option<ScanVerdict>,
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

#[async_trait]
pub trait ControlLink: Send + Sync + 'static {
    /// The link as the caller's page shows it; no side effects (a GET never spends a link).
    async fn link(&self, id: &LinkId) -> Result<LinkView, ControlError>;
    /// Reserves a file slot, or says why the link takes no more files.
    async fn claim(&self, id: &LinkId) -> Result<Result<Claim, LinkState>, ControlError>;
    /// Gives a slot back after a failed upload: a failed upload never spends a link.
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
    /// The caller is done: the link is used from now on.
    async fn finish(&self, id: &LinkId) -> Result<LinkState, ControlError>;
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
