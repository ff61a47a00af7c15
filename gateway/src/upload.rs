//! `POST /u/{token}/files`: one file per request, streamed through the stages below, each
//! owning one concern. Every outcome has a status, a stable code and a sentence for the caller.

pub mod framing;
// Public for the fuzz targets (fuzz/fuzz_targets/).
pub mod part_head;
pub mod previews;
mod receive;
mod scan;
mod session;
mod settle;
pub mod sniff;
mod spool;

pub use receive::{receive, MULTIPART_OVERHEAD};
pub use scan::scan_spool;
pub use session::{Limits, Received, Seen, Session};
pub use settle::{refusal_of, settle, Failed, Sinks};
pub use spool::{sweep, Spool};

use http::StatusCode;

use crate::control_link::LinkState;
use crate::i18n::{fill, Text};
use crate::upload::sniff::{ContentError, Kind};

/// The largest file a multipart POST takes, whatever the link allows: a body that must
/// arrive in one go, with no resume, is kept to what a phone sends before its network
/// changes. Larger files go through tus (the caller's page does this by itself).
pub const MULTIPART_MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;

/// Why an upload was not stored. Each maps once to a status, a code and plain words.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The request is not a well-formed single-file multipart upload.
    #[error("malformed upload: {0}")]
    Malformed(&'static str),
    /// The file is over the link's size limit.
    #[error("file larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The bytes are not of a type the link allows (or not one we can prove at all).
    #[error("type not allowed")]
    TypeNotAllowed { allowed: Vec<Kind> },
    /// The bytes claim an allowed type but do not hold up (truncated, corrupt, a bomb, empty).
    #[error("content refused: {0}")]
    Content(#[from] ContentError),
    /// clamd found a signature; nothing is kept.
    #[error("infected: {0}")]
    Infected(String),
    /// clamd read the file but could not give a verdict on it (a limit hit): never kept.
    #[error("not scannable: {0}")]
    Unscannable(String),
    /// clamd could not be asked; the link stays usable.
    #[error("scanner unavailable: {0}")]
    ScannerUnavailable(String),
    /// The link ended (or ends) before this file could be accepted.
    #[error("link is {}", .0.as_str())]
    LinkGone(LinkState),
    /// The body stalled past the idle timeout or the connection broke.
    #[error("upload interrupted: {0}")]
    Interrupted(String),
    /// The body averaged less than the minimum rate: it would hold a slot for hours.
    #[error("upload too slow")]
    TooSlow,
    /// Too little disk left to take the file: refused before reading it.
    #[error("disk nearly full: {0}")]
    DiskLow(crate::disk::DiskLow),
    /// Our side failed (disk, storage, control plane): the caller may retry.
    #[error("internal failure: {0}")]
    Internal(String),
}

/// Every outcome an upload is counted under: stored, or the code of its failure.
pub const OUTCOMES: &[&str] = &[
    "stored",
    "malformed_upload",
    "file_too_large",
    "type_not_allowed",
    "empty_file",
    "content_invalid",
    "infected",
    "unscannable",
    "scanner_unavailable",
    "link_gone",
    "upload_interrupted",
    "upload_too_slow",
    "temporarily_unavailable",
    "insufficient_storage",
];

impl UploadError {
    pub fn status(&self) -> StatusCode {
        match self {
            UploadError::Malformed(_) => StatusCode::BAD_REQUEST,
            UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::TypeNotAllowed { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            UploadError::Content(e) if !e.is_caller_fault() => StatusCode::SERVICE_UNAVAILABLE,
            UploadError::Content(_) | UploadError::Infected(_) | UploadError::Unscannable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            UploadError::ScannerUnavailable(_) | UploadError::Internal(_) => StatusCode::SERVICE_UNAVAILABLE,
            UploadError::DiskLow(_) => StatusCode::INSUFFICIENT_STORAGE,
            UploadError::LinkGone(_) => StatusCode::GONE,
            UploadError::Interrupted(_) | UploadError::TooSlow => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// A refusal of the file itself (not of the request, not our failure): recorded on the
    /// call so staff can see what the caller tried to send.
    pub fn is_content_refusal(&self) -> bool {
        match self {
            UploadError::TooLarge { .. } | UploadError::TypeNotAllowed { .. } | UploadError::Infected(_) => {
                true
            }
            UploadError::Content(e) => e.is_caller_fault(),
            _ => false,
        }
    }

    /// The code a refusal of the file is recorded under on the call, if this is one.
    pub fn refusal_code(&self) -> Option<crate::control_link::RefusalCode> {
        use crate::control_link::RefusalCode as C;
        Some(match self {
            UploadError::TooLarge { .. } => C::FileTooLarge,
            UploadError::TypeNotAllowed { .. } => C::TypeNotAllowed,
            UploadError::Content(ContentError::Empty) => C::EmptyFile,
            UploadError::Content(e) if e.is_caller_fault() => C::ContentInvalid,
            UploadError::Infected(_) => C::Infected,
            UploadError::Unscannable(_) => C::Unscannable,
            _ => return None,
        })
    }

    /// The stable code clients and metrics use (each is in [`OUTCOMES`]).
    pub fn code(&self) -> &'static str {
        match self {
            UploadError::Malformed(_) => "malformed_upload",
            UploadError::TooLarge { .. } => "file_too_large",
            UploadError::TypeNotAllowed { .. } => "type_not_allowed",
            UploadError::Content(ContentError::Empty) => "empty_file",
            UploadError::Content(e) if !e.is_caller_fault() => "temporarily_unavailable",
            UploadError::Content(_) => "content_invalid",
            UploadError::Infected(_) => "infected",
            UploadError::Unscannable(_) => "unscannable",
            UploadError::ScannerUnavailable(_) => "scanner_unavailable",
            UploadError::LinkGone(_) => "link_gone",
            UploadError::Interrupted(_) => "upload_interrupted",
            UploadError::TooSlow => "upload_too_slow",
            UploadError::Internal(_) => "temporarily_unavailable",
            UploadError::DiskLow(_) => "insufficient_storage",
        }
    }

    /// One sentence the page shows to the caller, in their language.
    pub fn caller_message(&self, t: &Text) -> String {
        match self {
            UploadError::Malformed(_) => t.malformed.into(),
            UploadError::TooLarge { limit } => fill(t.too_large, &[("limit", &human_size(*limit, t))]),
            UploadError::TypeNotAllowed { allowed } => {
                fill(t.type_not_allowed, &[("types", &allowed_list(allowed, t))])
            }
            UploadError::Content(e) => e.caller_message(t).into(),
            UploadError::Infected(_) => t.infected.into(),
            UploadError::Unscannable(_) => t.unscannable.into(),
            UploadError::ScannerUnavailable(_) => t.scanner_unavailable.into(),
            UploadError::LinkGone(state) => link_gone_message(*state, t).into(),
            UploadError::Interrupted(_) => t.interrupted.into(),
            UploadError::TooSlow => t.too_slow.into(),
            UploadError::Internal(_) | UploadError::DiskLow(_) => t.not_saved.into(),
        }
    }
}

/// The multipart boundary of a request: one Content-Type, read strictly (`part_head::boundary`).
pub fn request_boundary(headers: &http::HeaderMap) -> Result<String, UploadError> {
    let mut types = headers.get_all(http::header::CONTENT_TYPE).iter();
    let (Some(ct), None) = (types.next(), types.next()) else {
        return Err(UploadError::Malformed("one multipart/form-data Content-Type"));
    };
    part_head::boundary(ct.as_bytes()).map_err(|e| UploadError::Malformed(e.0))
}

/// The caller's words for a link that takes no more files.
pub fn link_gone_message(state: LinkState, t: &Text) -> &'static str {
    match state {
        LinkState::Active => t.gone_active,
        LinkState::Used => t.gone_used,
        LinkState::Expired => t.gone_expired,
        LinkState::Revoked => t.gone_revoked,
        LinkState::Superseded => t.gone_superseded,
    }
}

/// "PDF, JPEG or PNG" (in the caller's language: "PDF, JPEG oder PNG").
pub fn allowed_list(allowed: &[Kind], t: &Text) -> String {
    let names: Vec<&str> = allowed.iter().map(|k| label(*k)).collect();
    match names.as_slice() {
        [] => "-".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} {} {last}", init.join(", "), t.or),
    }
}

/// "10 MB" for a caller ("10 Mo" in French): decimal units, as phones show file sizes.
pub fn human_size(bytes: u64, t: &Text) -> String {
    if bytes >= 1_000_000 {
        format!("{:.0} {}", bytes as f64 / 1_000_000.0, t.mb)
    } else {
        format!("{:.0} {}", (bytes as f64 / 1000.0).max(1.0), t.kb)
    }
}

/// The name a caller knows a kind by.
pub fn label(kind: Kind) -> &'static str {
    match kind {
        Kind::Pdf => "PDF",
        Kind::Jpeg => "JPEG",
        Kind::Png => "PNG",
        Kind::Gif => "GIF",
        Kind::Webp => "WebP",
    }
}

#[cfg(test)]
mod outcome_tests {
    use super::*;

    /// Every failure's code is a counted outcome, so its series exists from the start.
    #[test]
    fn every_code_is_an_outcome() {
        use crate::control_link::LinkState;
        let errors = [
            UploadError::Malformed("x"),
            UploadError::TooLarge { limit: 1 },
            UploadError::TypeNotAllowed { allowed: vec![] },
            UploadError::Content(ContentError::Empty),
            UploadError::Infected("x".into()),
            UploadError::Unscannable("x".into()),
            UploadError::ScannerUnavailable("x".into()),
            UploadError::LinkGone(LinkState::Used),
            UploadError::TooSlow,
            UploadError::Internal("x".into()),
        ];
        for e in errors {
            assert!(OUTCOMES.contains(&e.code()), "{}", e.code());
        }
    }
}
