//! The control plane's side of [`ControlLink`]: what the gateway may ask about links. The
//! store work is the [`LinkRepo`](crate::repo::LinkRepo)'s (one transaction per call,
//! quotas exact under concurrent claims); this adapter adds the clock, the lease's number
//! and ttl, the check on verdicts from elsewhere, and the mapping to `ControlError`.

use std::sync::Arc;

use async_trait::async_trait;
use upgate_gateway::control_link::{
    Claim, ControlError, ControlLink, KeySet, LinkState, LinkView, NewFile, Refusal, ReportOutcome,
    ScanStatus, SmsReport,
};
use upgate_gateway::sys::{now, random};
use upgate_gateway::token::LinkId;

use super::Service;
use crate::repo::RepoError;
use crate::settings::allowed_kinds;

fn unavailable(e: impl std::fmt::Display) -> ControlError {
    ControlError::Unavailable(e.to_string())
}

/// A repository answer: `None` (no such link) is `UnknownLink`, a store failure is
/// `Unavailable`.
fn known<T>(answer: Result<Option<T>, RepoError>) -> Result<T, ControlError> {
    answer.map_err(unavailable)?.ok_or(ControlError::UnknownLink)
}

impl Service {
    pub(crate) fn gateway_key_set(&self) -> KeySet {
        self.keys.current().gateway_set()
    }

    /// How many slots of a link are held by uploads in flight at `t`.
    pub(crate) async fn uploads_in_flight(&self, link_id: &str, t: u64) -> Result<u32, RepoError> {
        self.repos.links.uploads_in_flight(link_id, t).await
    }

    #[cfg(test)]
    pub(crate) async fn pending(&self, link_id: &str) -> u32 {
        self.uploads_in_flight(link_id, now()).await.unwrap()
    }

    fn ttl(&self) -> u64 {
        self.lease_ttl.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The in-process control link: the gateway calls the service directly.
pub struct InProcess(pub Arc<Service>);

#[async_trait]
impl ControlLink for InProcess {
    async fn link(&self, id: &LinkId) -> Result<LinkView, ControlError> {
        let link = known(self.0.repos.links.link(id).await)?;
        Ok(LinkView {
            state: link.state_at(now()),
            allowed: allowed_kinds(&link.allowed_types),
            message: link.message,
            max_file_bytes: link.max_file_bytes,
            max_files: link.max_files,
            files_received: link.files_received,
            expires_at: link.expires_at,
        })
    }

    async fn claim(&self, id: &LinkId) -> Result<Result<Claim, LinkState>, ControlError> {
        // The file is sealed for its account's own key, so that deleting the account can
        // shred it. A link that is gone has no account to ask for: its state answers below.
        let recipient = match self.0.repos.links.link(id).await.map_err(unavailable)? {
            Some(link) => Some(
                self.0
                    .keys
                    .accounts()
                    .recipient(&link.account_id)
                    .map(|k| upgate_gateway::keys::StoragePublic {
                        key_id: k.key_id,
                        public: k.bytes,
                    })
                    .map_err(unavailable)?,
            ),
            None => None,
        };
        let claim = Claim {
            link_id: *id,
            // Random, so leases from before a restart never collide with new ones.
            lease: random::<8>().map(u64::from_be_bytes).map_err(unavailable)?,
            ttl_secs: self.0.ttl(),
            recipient,
        };
        Ok(known(self.0.repos.links.claim(&claim, now()).await)?.map(|()| claim))
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, ControlError> {
        // The lease's length is the control plane's to say, whatever the gateway sends.
        let claim = Claim {
            ttl_secs: self.0.ttl(),
            ..claim.clone()
        };
        self.0.repos.links.renew(&claim, now()).await.map_err(unavailable)
    }

    async fn release(&self, claim: &Claim) {
        if let Err(e) = self.0.repos.links.release(claim).await {
            tracing::error!(error = %e, "could not release a slot; its lease will end by itself");
        }
    }

    async fn commit(
        &self,
        claim: &Claim,
        file: NewFile,
    ) -> Result<Result<LinkState, LinkState>, ControlError> {
        // Only an object key names a file: it is also the storage path, checked here as
        // strictly as everywhere else.
        if upgate_gateway::storage::ObjectKey::parse(&file.file_id).is_none() {
            return Err(ControlError::Unavailable(
                "a file id that is not an object key".into(),
            ));
        }
        // Sealed for an account key that was destroyed while it came in (the account's last
        // file reached its retention): recorded, it could never be opened. Refused instead,
        // so the caller sends it again, sealed for the account's new key.
        if crate::account_keys::is_account_key(file.key_id)
            && self.0.keys.accounts().secret(file.key_id).is_none()
        {
            return Err(ControlError::Unavailable(
                "the file was sealed for an account key destroyed meanwhile".into(),
            ));
        }
        // Never record "clean" without the engine that said so, whoever sent the file.
        if file.verdict.status() == ScanStatus::Clean && !file.verdict.is_trustworthy_clean() {
            return Err(ControlError::Unavailable(
                "a clean verdict without its scanner engine".into(),
            ));
        }
        // Signed before the store's lock is taken: what it states (the file as the gateway
        // reports it, the link's policy, fixed at issue) does not change under the lock.
        let t = now();
        let link = self
            .0
            .repos
            .links
            .link(&claim.link_id)
            .await
            .map_err(unavailable)?;
        let first = link.as_ref().is_some_and(|l| l.files_received == 0);
        let attestation = link.map(|link| {
            let keys = self.0.keys.current();
            let key = keys
                .attestation
                .last()
                .expect("a key ring always has an attestation key");
            crate::attest::attest(key, &file, &link, t)
        });
        // Durable when this returns: the gateway answers 201 only after it.
        let held = file.verdict.status() == ScanStatus::Unscanned;
        let recorded = known(self.0.repos.links.record_file(claim, file, attestation, t).await)?;
        if held && recorded.is_ok() {
            self.0.metrics.quarantine.with_label_values(&["held"]).inc();
            if !self.0.rescans() {
                // Kept safe (reviewers only), but nothing here will scan it: say so loudly.
                tracing::error!(
                    "a gateway kept a file in quarantine, but this control plane has no scanner.clamd to scan it: it stays held until one is configured"
                );
            }
        }
        if first && recorded.is_ok() {
            self.0
                .metrics
                .link_funnel
                .with_label_values(&["file_stored"])
                .inc();
        }
        Ok(recorded)
    }

    async fn refused(&self, id: &LinkId, refusal: Refusal) {
        if let Err(e) = known(self.0.repos.links.record_refusal(id, refusal, now()).await) {
            tracing::error!(error = %e, "could not record a refused upload");
        }
    }

    async fn finish(&self, id: &LinkId) -> Result<LinkState, ControlError> {
        known(self.0.repos.links.finish(id, now()).await)
    }

    async fn opened(&self, id: &LinkId) {
        match known(self.0.repos.links.opened(id, now()).await) {
            Ok(true) => self.0.metrics.link_funnel.with_label_values(&["opened"]).inc(),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not record a link's first opening"),
        }
    }

    async fn keys(&self) -> Result<KeySet, ControlError> {
        Ok(self.0.gateway_key_set())
    }

    async fn sms_report(&self, report: SmsReport) -> Result<ReportOutcome, ControlError> {
        self.0
            .sms_report(report)
            .await
            .map_err(|e| ControlError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
#[path = "link_suite.rs"]
mod link_suite;
