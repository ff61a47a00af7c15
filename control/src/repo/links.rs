//! The links as gateways use them. Every method is one transaction: what it reads and what
//! it writes are consistent with every other call, and a method that records something
//! returns only once it is durable. `None` means the link (or its call) does not exist.

use async_trait::async_trait;
use upgate_gateway::control_link::{Claim, LinkState, NewFile, Refusal};
use upgate_gateway::token::LinkId;

use super::RepoError;
use crate::model::Link;

#[async_trait]
pub trait LinkRepo: Send + Sync + 'static {
    async fn link(&self, id: &LinkId) -> Result<Option<Link>, RepoError>;

    /// Holds a file slot as a lease `claim.lease` until `t + claim.ttl_secs`, if the link is
    /// active at `t` and its files received and live leases leave room; else the state
    /// that refuses it (`Used` when the slots are taken).
    async fn claim(&self, claim: &Claim, t: u64) -> Result<Option<Result<(), LinkState>>, RepoError>;

    /// Extends a live lease to `t + ttl`; `false` (and the lease gone) once it has ended or
    /// its link has.
    async fn renew(&self, claim: &Claim, t: u64) -> Result<bool, RepoError>;

    /// Ends a lease; ending one that is gone does nothing.
    async fn release(&self, claim: &Claim) -> Result<(), RepoError>;

    /// Records a stored file on its link, call and contact, and ends its lease, durably.
    /// A claim whose lease has ended still records if the link has room beside the live
    /// leases. `Err(state)`: the link refused it (ended meanwhile, or full).
    async fn record_file(
        &self,
        claim: &Claim,
        file: NewFile,
        attestation: Option<crate::attest::Attestation>,
        t: u64,
    ) -> Result<Option<Result<LinkState, LinkState>>, RepoError>;

    /// Adds a refusal to the call's events (the newest 100 are kept), durably.
    async fn record_refusal(&self, id: &LinkId, refusal: Refusal, t: u64) -> Result<Option<()>, RepoError>;

    /// Ends an active link as used, durably; returns the state it is in afterwards.
    async fn finish(&self, id: &LinkId, t: u64) -> Result<Option<LinkState>, RepoError>;

    /// The caller's page was shown at `t`: the first time on an active link, this is kept
    /// with a `link_opened` event; later times change nothing. Not waited on for durability:
    /// lost in a crash, the mark and its event are lost together.
    /// `Some(true)` when this was the first opening.
    async fn opened(&self, id: &LinkId, t: u64) -> Result<Option<bool>, RepoError>;

    /// How many leases on the link are live at `t`.
    async fn uploads_in_flight(&self, link_id: &str, t: u64) -> Result<u32, RepoError>;
}
