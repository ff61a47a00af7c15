//! The stages after the last byte, the same for every transport: scan the sealed spool,
//! commit it to storage, record it on the link.

use super::previews::Previews;
use super::{scan_spool, Received, Seen, UploadError};
use crate::control_link::{Claim, ControlLink, LinkState, NewFile, Refusal, RefusalCode, ScanVerdict};
use crate::scanner::{Scan, Scanner};
use crate::storage::ObjectStore;
use crate::sys::now;

/// Where a received file goes.
pub struct Sinks<'a> {
    pub scanner: &'a Scanner,
    pub store: &'a dyn ObjectStore,
    pub control: &'a dyn ControlLink,
    /// `scanner.on_unavailable = "quarantine"`: a file no trusted clamd could scan is kept
    /// sealed as unscanned (the control plane holds it and scans it later) instead of refused.
    pub quarantine: bool,
}

/// Why a file was not stored, and the refusal to record on the call when it was the file's
/// fault.
pub type Failed = (UploadError, Option<Refusal>);

/// The refusal to record on the call for an upload that failed before it was received
/// whole, if the file itself was at fault.
pub fn refusal_of(e: &UploadError, seen: Seen) -> Option<Refusal> {
    Some(Refusal {
        code: e.refusal_code().filter(|_| e.is_content_refusal())?,
        display_name: seen.name.unwrap_or_default(),
        size: seen.bytes,
        verdict: None,
        message: String::new(),
        lang: String::new(),
    })
}

/// Scan, commit to storage, record on the link. On any failure nothing stays behind (the
/// claim is the transport's to give back, with the refusal if there is one).
pub async fn settle(
    sinks: &Sinks<'_>,
    claim: &Claim,
    key_id: u32,
    r: Received,
) -> Result<(NewFile, LinkState), Failed> {
    let Received {
        key,
        spool,
        display_name,
        kind,
        size,
        sha256,
        opener,
        previews,
    } = r;
    let scanned = scan_spool(
        sinks.scanner,
        spool.path().to_path_buf(),
        spool.written(),
        size,
        opener,
    )
    .await
    .map_err(|e| (UploadError::Internal(e.to_string()), None))?;
    let verdict = match scanned {
        Scan::Off => ScanVerdict::not_scanned(None, "scanning is off: no clamd configured".into(), now()),
        Scan::Clean(proof) => ScanVerdict::clean(&proof, now()),
        Scan::Infected { signature, proof } => {
            tracing::warn!(%signature, "infected upload refused");
            let verdict = ScanVerdict::infected(&proof, signature.clone(), now());
            let refusal = Refusal {
                code: RefusalCode::Infected,
                display_name,
                size,
                verdict: Some(verdict),
                message: String::new(),
                lang: String::new(),
            };
            return Err((UploadError::Infected(signature), Some(refusal)));
        }
        Scan::NotScanned { reason, proof } => {
            let verdict = ScanVerdict::not_scanned(Some(&proof), reason.clone(), now());
            let refusal = Refusal {
                code: RefusalCode::Unscannable,
                display_name,
                size,
                verdict: Some(verdict),
                message: String::new(),
                lang: String::new(),
            };
            return Err((UploadError::Unscannable(reason), Some(refusal)));
        }
        Scan::Unavailable(reason) if sinks.quarantine => {
            // The scanner's own words (its address, what to fix) stay in the log: the verdict
            // goes back to the caller and out in events.
            tracing::warn!(%reason, "scanner unavailable: the file is kept in quarantine, unscanned");
            ScanVerdict::unscanned("no trusted scanner was available".into(), now())
        }
        Scan::Unavailable(reason) => return Err((UploadError::ScannerUnavailable(reason), None)),
    };
    // The previews first: a file is never recorded as having previews that are not stored.
    let previews = store_previews(sinks.store, spool.path(), previews).await;
    sinks
        .store
        .commit(&key, spool.path())
        .await
        .map_err(|e| (UploadError::Internal(e.to_string()), None))?;
    spool.kept();
    let file = NewFile {
        file_id: key.as_str().to_string(),
        display_name,
        kind,
        size,
        sha256,
        verdict,
        key_id,
        received_at: now(),
        previews,
    };
    match sinks.control.commit(claim, file.clone()).await {
        Ok(Ok(state)) => Ok((file, state)),
        Ok(Err(state)) => {
            // The link ended meanwhile: the file is on no record, so it is not kept.
            if let Err(e) = crate::storage::delete_with_sidecars(sinks.store, &key).await {
                tracing::error!(error = %e, "could not delete an unrecorded object; the start-up sweep will");
            }
            Err((UploadError::LinkGone(state), None))
        }
        Err(e) => {
            // We cannot tell whether the record was written (a flush can fail after the
            // transaction applied), so the object stays: if no record names it, the start-up
            // sweep removes it; if one does, it can still be downloaded.
            Err((UploadError::Internal(e.to_string()), None))
        }
    }
}

/// Stores the sealed previews (written beside the spool, synced, then committed like a
/// file). Whether all of them were stored: a failure costs the console its thumbnail, not
/// the caller their upload. Ones stored before a failure are left for the orphan sweep.
async fn store_previews(
    store: &dyn crate::storage::ObjectStore,
    spool: &std::path::Path,
    previews: Previews,
) -> bool {
    if previews.sealed.is_empty() {
        return false;
    }
    for (key, bytes) in previews.sealed {
        let path = spool.with_file_name(format!("{}.part", key.as_str()));
        let written = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::File::create(&path)?;
                f.write_all(&bytes)?;
                f.sync_all()
            }
        })
        .await;
        let stored = match written {
            Ok(Ok(())) => store.commit(&key, &path).await.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, "a preview could not be stored; the file is kept without");
            let _ = std::fs::remove_file(&path);
            return false;
        }
    }
    true
}
