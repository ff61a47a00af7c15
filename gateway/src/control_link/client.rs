//! The gateway's side of the internal API: [`ControlLink`] over HTTPS to the control plane.
//! The control plane is trusted by its certificate (the operator's CA file, or the public
//! roots); the gateway proves itself with the credential `upgate gateway-credential create`
//! printed, as a bearer token. Any failure to get an answer is `Unavailable`: the caller
//! gets a 503 with Retry-After and the link is not spent.

use std::time::Duration;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::wire::{self, Answer, Call, Reply, Request};
use super::{
    Claim, ControlError, ControlLink, KeySet, LinkState, LinkView, NewFile, Refusal, ReportOutcome, SmsReport,
};
use crate::token::LinkId;

/// How long a call may take in all. Calls are small; a control plane this slow is down
/// for the caller's purposes, and the page says to try again.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub struct RemoteControl {
    http: reqwest::Client,
    url: String,
    authorization: Zeroizing<String>,
}

impl RemoteControl {
    /// `base_url` is the internal API's origin (`https://control.internal:8444`). With a
    /// `ca_pem`, only certificates it issued (or it itself) are trusted.
    pub fn new(base_url: &str, ca_pem: Option<&[u8]>, credential: &str) -> Result<RemoteControl, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true);
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("the control plane CA file: {e}"))?;
            if certs.is_empty() {
                return Err("the control plane CA file holds no certificate".into());
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        let base = base_url.trim_end_matches('/');
        if !base.starts_with("https://") {
            return Err(format!("the control plane URL {base:?} must start with https://"));
        }
        Ok(RemoteControl {
            http,
            url: format!("{base}{}", wire::PATH),
            authorization: Zeroizing::new(format!("Bearer {}", credential.trim())),
        })
    }

    async fn call(&self, request: Request) -> Result<Answer, ControlError> {
        let down = |e: &dyn std::fmt::Display| ControlError::Unavailable(e.to_string());
        let body = serde_json::to_vec(&Call {
            v: wire::VERSION,
            request,
        })
        .map_err(|e| down(&e))?;
        let resp = self
            .http
            .post(&self.url)
            .header(http::header::AUTHORIZATION, self.authorization.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            // Without the URL: it is ours, but the error's chain is enough to act on.
            .map_err(|e| down(&e.without_url()))?;
        let status = resp.status();
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            return Err(ControlError::Unavailable(
                "the control plane refused this gateway's credential (revoked or mistyped?)".into(),
            ));
        }
        if !status.is_success() {
            return Err(ControlError::Unavailable(format!(
                "the control plane answered {status}"
            )));
        }
        let bytes = resp.bytes().await.map_err(|e| down(&e.without_url()))?;
        let reply: Reply = serde_json::from_slice(&bytes).map_err(|e| down(&e))?;
        match reply.answer {
            Answer::UnknownLink => Err(ControlError::UnknownLink),
            Answer::Unavailable { detail } => Err(ControlError::Unavailable(detail)),
            Answer::WrongVersion { supported } => Err(ControlError::Unavailable(format!(
                "the control plane speaks internal API version {supported}, this gateway {}",
                wire::VERSION
            ))),
            answer => Ok(answer),
        }
    }
}

fn unexpected(answer: Answer) -> ControlError {
    ControlError::Unavailable(format!("unexpected answer from the control plane: {answer:?}"))
}

#[async_trait]
impl ControlLink for RemoteControl {
    async fn link(&self, id: &LinkId) -> Result<LinkView, ControlError> {
        match self.call(Request::Link { link_id: *id }).await? {
            Answer::Link { view } => Ok(view),
            other => Err(unexpected(other)),
        }
    }

    async fn claim(&self, id: &LinkId) -> Result<Result<Claim, LinkState>, ControlError> {
        match self.call(Request::Claim { link_id: *id }).await? {
            Answer::Claimed { claim } => Ok(Ok(claim)),
            Answer::NotActive { state } => Ok(Err(state)),
            other => Err(unexpected(other)),
        }
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, ControlError> {
        match self.call(Request::Renew { claim: claim.clone() }).await? {
            Answer::Renewed { held } => Ok(held),
            other => Err(unexpected(other)),
        }
    }

    async fn release(&self, claim: &Claim) {
        // If this fails the lease ends by itself; the slot comes back then.
        if let Err(e) = self.call(Request::Release { claim: claim.clone() }).await {
            tracing::warn!(error = %e, "could not release a slot; its lease will end by itself");
        }
    }

    async fn commit(
        &self,
        claim: &Claim,
        file: NewFile,
    ) -> Result<Result<LinkState, LinkState>, ControlError> {
        let request = Request::Commit {
            claim: claim.clone(),
            file,
        };
        match self.call(request).await? {
            Answer::State { state } => Ok(Ok(state)),
            Answer::NotActive { state } => Ok(Err(state)),
            other => Err(unexpected(other)),
        }
    }

    async fn refused(&self, id: &LinkId, refusal: Refusal) {
        let request = Request::Refused {
            link_id: *id,
            refusal,
        };
        if let Err(e) = self.call(request).await {
            tracing::error!(error = %e, "could not record a refused upload");
        }
    }

    async fn finish(&self, id: &LinkId) -> Result<LinkState, ControlError> {
        match self.call(Request::Finish { link_id: *id }).await? {
            Answer::State { state } => Ok(state),
            other => Err(unexpected(other)),
        }
    }

    async fn opened(&self, id: &LinkId) {
        // A control plane of an older build does not know this call: it answers a parse
        // error, and the page is shown all the same.
        if let Err(e) = self.call(Request::Opened { link_id: *id }).await {
            tracing::warn!(error = %e, "could not record a link's first opening");
        }
    }

    async fn keys(&self) -> Result<KeySet, ControlError> {
        match self.call(Request::Keys).await? {
            Answer::Keys { keys } => Ok(keys),
            other => Err(unexpected(other)),
        }
    }

    async fn sms_report(&self, report: SmsReport) -> Result<ReportOutcome, ControlError> {
        match self.call(Request::SmsReport { report }).await? {
            Answer::Report { outcome } => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }
}
