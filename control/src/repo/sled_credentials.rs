//! [`CredentialRepo`] on the embedded store: `GatewayCredentials` by credential id.

use async_trait::async_trait;

use super::sled_keys::{decode, get, put};
use super::{CredentialRepo, RepoError, SledStore};
use crate::db::Tree;
use crate::service::GatewayCredential;

#[async_trait]
impl CredentialRepo for SledStore {
    async fn create_credential(&self, credential: &GatewayCredential) -> Result<(), RepoError> {
        let durable = self.write(vec![put(
            Tree::GatewayCredentials,
            credential.id.as_bytes(),
            credential,
        )])?;
        Ok(durable.await?)
    }

    async fn credential(&self, id: &str) -> Result<Option<GatewayCredential>, RepoError> {
        Ok(get(&*self.db, Tree::GatewayCredentials, id.as_bytes())?)
    }

    async fn credentials(&self) -> Result<Vec<GatewayCredential>, RepoError> {
        self.db
            .scan_prefix(Tree::GatewayCredentials, b"")?
            .iter()
            .map(|(_, v)| Ok(decode(Tree::GatewayCredentials, v)?))
            .collect()
    }

    async fn revoke_credential(&self, id: &str, t: u64) -> Result<Option<GatewayCredential>, RepoError> {
        let (record, durable) = {
            let _w = self.lock();
            let Some(mut record) =
                get::<GatewayCredential>(&*self.db, Tree::GatewayCredentials, id.as_bytes())?
            else {
                return Ok(None);
            };
            if record.revoked_at.is_some() {
                return Ok(Some(record));
            }
            record.revoked_at = Some(t);
            let durable = self.write(vec![put(Tree::GatewayCredentials, id.as_bytes(), &record)])?;
            (record, durable)
        };
        durable.await?;
        Ok(Some(record))
    }
}
