//! Gateway credentials for the internal API (only their hashes are stored).

use async_trait::async_trait;

use super::RepoError;
use crate::service::GatewayCredential;

#[async_trait]
pub trait CredentialRepo: Send + Sync + 'static {
    /// Stores a new credential; durable.
    async fn create_credential(&self, credential: &GatewayCredential) -> Result<(), RepoError>;

    async fn credential(&self, id: &str) -> Result<Option<GatewayCredential>, RepoError>;

    /// Every credential, revoked ones included, by id.
    async fn credentials(&self) -> Result<Vec<GatewayCredential>, RepoError>;

    /// Revokes it at `t`; one already revoked is returned unchanged. Durable.
    async fn revoke_credential(&self, id: &str, t: u64) -> Result<Option<GatewayCredential>, RepoError>;
}
