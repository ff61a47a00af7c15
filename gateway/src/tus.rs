//! Resumable uploads (tus 1.0): what the gateway keeps of each upload between requests.
//! An upload is an upload [`Session`] plus where it stands: its declared length, the bytes
//! taken so far, its slot on the link (a claim whose lease is renewed while the upload
//! exists) and when it expires if nobody resumes it. Ids are 128 random bits, compared only
//! as map keys, and never become a path (the spool is named by the session's own key).
//!
//! The state lives in this gateway's memory and spool: a client that resumes on another
//! gateway (or after a restart) is told the upload is unknown (404) and starts it again;
//! docs/decisions.md says why partial uploads are not shared between gateways yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::control_link::{Claim, ControlLink, LeaseKeeper};
use crate::token::LinkId;
use crate::upload::Session;

/// An upload nobody touched for this long is dropped and its slot given back.
pub const IDLE_SECS: u64 = 3600;

/// One resumable upload.
pub struct TusUpload {
    pub link_id: LinkId,
    /// `Upload-Length`.
    pub length: u64,
    /// `Upload-Offset`: bytes taken so far.
    pub offset: u64,
    /// Unix seconds after which it is dropped (refreshed by every PATCH).
    pub expires_at: u64,
    /// The storage key the session seals for.
    pub key_id: u32,
    /// `None` once the upload ended (stored or refused) while a request still held it.
    pub session: Option<Session>,
    pub claim: Claim,
    /// Renews the claim's lease while the upload lives; dropped with it.
    _lease: LeaseKeeper,
    /// When it was created: a stored upload's duration counts from here.
    pub started: std::time::Instant,
}

impl TusUpload {
    pub fn new(
        link_id: LinkId,
        length: u64,
        session: Session,
        key_id: u32,
        claim: Claim,
        control: Arc<dyn ControlLink>,
        expires_at: u64,
    ) -> TusUpload {
        TusUpload {
            link_id,
            length,
            offset: 0,
            expires_at,
            key_id,
            session: Some(session),
            _lease: LeaseKeeper::start(control, claim.clone()),
            claim,
            started: std::time::Instant::now(),
        }
    }
}

pub type Shared = Arc<tokio::sync::Mutex<TusUpload>>;
/// An upload's expiry, readable and movable without its lock.
pub type Expiry = Arc<std::sync::atomic::AtomicU64>;

struct Entry {
    link_id: LinkId,
    /// Read without the upload's lock (a PATCH may hold it for minutes).
    expires_at: Expiry,
    upload: Shared,
}

/// The uploads this gateway holds.
#[derive(Default)]
pub struct TusUploads(Mutex<HashMap<String, Entry>>);

impl TusUploads {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the upload under a new id; returns the id, the upload and the handle to its
    /// expiry (`None`: the system random generator failed).
    pub fn insert(&self, upload: TusUpload) -> Option<(String, Shared, Expiry)> {
        let bytes: [u8; 16] = crate::sys::random().ok()?;
        let id = hex::encode(bytes);
        let expires = Arc::new(std::sync::atomic::AtomicU64::new(upload.expires_at));
        let link_id = upload.link_id;
        let shared = Arc::new(tokio::sync::Mutex::new(upload));
        let entry = Entry {
            link_id,
            expires_at: expires.clone(),
            upload: shared.clone(),
        };
        self.map().insert(id.clone(), entry);
        Some((id, shared, expires))
    }

    /// The upload with this id, if it belongs to `link`: another link's id is unknown.
    pub fn get(&self, id: &str, link: &LinkId) -> Option<(Shared, Expiry)> {
        let map = self.map();
        let e = map.get(id).filter(|e| e.link_id == *link)?;
        Some((e.upload.clone(), e.expires_at.clone()))
    }

    /// Forgets the upload; its session (and spool) goes when the last handle does.
    pub fn remove(&self, id: &str) -> Option<Shared> {
        self.map().remove(id).map(|e| e.upload)
    }

    /// Removes and returns every upload expired at `now`.
    pub fn take_expired(&self, now: u64) -> Vec<Shared> {
        let mut map = self.map();
        let ids: Vec<String> = map
            .iter()
            .filter(|(_, e)| e.expires_at.load(std::sync::atomic::Ordering::Relaxed) <= now)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| map.remove(&id))
            .map(|e| e.upload)
            .collect()
    }

    /// Drops the uploads expired at `now`: each one's spool goes with its session, and its
    /// slot back to its link. Returns how many.
    pub fn drop_expired(&self, control: &Arc<dyn ControlLink>, now: u64) -> usize {
        let expired = self.take_expired(now);
        let n = expired.len();
        for upload in expired {
            let control = control.clone();
            tokio::spawn(async move {
                let mut upload = upload.lock().await;
                upload.session = None;
                control.release(&upload.claim).await;
            });
        }
        if n > 0 {
            tracing::info!(uploads = n, "expired resumable uploads dropped");
        }
        n
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
