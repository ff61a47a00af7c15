//! `POST /u/{token}/files`: one file per request, streamed through the stages below, each
//! owning one concern. Every outcome has a status, a stable code and a sentence for the caller.

pub mod framing;
// Public for the fuzz targets (fuzz/fuzz_targets/).
pub mod part_head;
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
use crate::upload::sniff::{ContentError, Kind};

/// The largest file any link may accept: settings refuse more, and clamd must prove it
/// scans this deep (see `scanner`).
pub const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;

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

    /// The stable code clients and metrics use.
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

    /// One sentence the page shows to the caller.
    pub fn caller_message(&self) -> String {
        match self {
            UploadError::Malformed(_) => "Something went wrong sending this file. Please try again.".into(),
            UploadError::TooLarge { limit } => {
                format!("This file is too large. The limit is {}. Please choose a smaller file.", human_size(*limit))
            }
            UploadError::TypeNotAllowed { allowed } => format!(
                "This kind of file can't be accepted here. Please send {}.",
                allowed_list(allowed)
            ),
            UploadError::Content(e) => e.caller_message().into(),
            UploadError::Infected(_) => {
                "Our virus scanner flagged this file as harmful, so it was not kept. Please send a different file."
                    .into()
            }
            UploadError::Unscannable(_) => {
                "Our virus scanner couldn't check this file, so it can't be accepted. Please send a smaller or simpler file."
                    .into()
            }
            UploadError::ScannerUnavailable(_) => {
                "We couldn't check your file just now. Please try again in a few minutes; your link still works."
                    .into()
            }
            UploadError::LinkGone(state) => link_gone_message(*state).into(),
            UploadError::Interrupted(_) => {
                "The connection was interrupted before the file arrived. Please try again.".into()
            }
            UploadError::TooSlow => {
                "Your connection is too slow to send this file right now. Please try again with a better signal or on Wi-Fi."
                    .into()
            }
            UploadError::Internal(_) | UploadError::DiskLow(_) => {
                "We couldn't save your file just now. Please try again in a few minutes; your link still works."
                    .into()
            }
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
pub fn link_gone_message(state: LinkState) -> &'static str {
    match state {
        LinkState::Active => "This link is ready for your files.",
        LinkState::Used => {
            "This link has already been used. If you need to send more, please ask for a new link."
        }
        LinkState::Expired => "This link has expired. Please ask for a new link.",
        LinkState::Revoked => {
            "This link has been cancelled. Please ask for a new link if you still need to send files."
        }
        LinkState::Superseded => {
            "A newer link was sent to you. Please use the most recent link in your messages."
        }
    }
}

/// "PDF, JPEG or PNG".
pub fn allowed_list(allowed: &[Kind]) -> String {
    let names: Vec<&str> = allowed.iter().map(|k| label(*k)).collect();
    match names.as_slice() {
        [] => "nothing".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// "10 MB" for a caller: decimal units, as phones show file sizes.
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.0} MB", bytes as f64 / 1_000_000.0)
    } else {
        format!("{:.0} KB", (bytes as f64 / 1000.0).max(1.0))
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
