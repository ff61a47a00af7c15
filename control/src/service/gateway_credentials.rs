//! Gateway credentials: what a gateway run apart presents to the internal API. Minted by
//! the operator (`upgate gateway-credential create --name gw1`, printed once, only its
//! hash kept), listed, revoked. Deployment-wide, not per account: a gateway serves every
//! account's links.

use serde::{Deserialize, Serialize};

use super::{token_hash, OperatorError, Service, ServiceError};
use crate::ids::{is_own_id, new_id};
use crate::repo::RepoError;
use upgate_gateway::sys::{now, random, secrets_equal};

const PREFIX: &str = "gwc";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayCredential {
    pub id: String,
    pub name: String,
    /// SHA-256 of the whole credential, hex.
    pub hash: String,
    pub created_at: u64,
    pub revoked_at: Option<u64>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The credential's id: `gwc_` + 16 hex, before the `.` that starts the secret.
fn credential_id(presented: &str) -> Option<&str> {
    let (id, secret) = presented.split_once('.')?;
    (is_own_id(id, PREFIX) && secret.len() == 64).then_some(id)
}

impl Service {
    /// Mints a credential; the second value is the only time the secret is seen.
    pub async fn create_gateway_credential(
        &self,
        name: &str,
    ) -> Result<(GatewayCredential, String), ServiceError> {
        if !valid_name(name) {
            return Err(OperatorError::InvalidGatewayName.into());
        }
        let secret: [u8; 32] = random().map_err(|_| ServiceError::NoRandomness)?;
        let id = new_id(PREFIX);
        let presented = format!("{id}.{}", hex::encode(secret));
        let record = GatewayCredential {
            id: id.clone(),
            name: name.into(),
            hash: token_hash(&presented),
            created_at: now(),
            revoked_at: None,
        };
        self.repos.credentials.create_credential(&record).await?;
        Ok((record, presented))
    }

    pub async fn gateway_credentials(&self) -> Result<Vec<GatewayCredential>, ServiceError> {
        Ok(self.repos.credentials.credentials().await?)
    }

    /// Refuses the credential from now on; a second revoke changes nothing.
    pub async fn revoke_gateway_credential(&self, id: &str) -> Result<GatewayCredential, ServiceError> {
        self.repos
            .credentials
            .revoke_credential(id, now())
            .await?
            .ok_or(ServiceError::NotFound("gateway credential"))
    }

    /// The gateway's name if `presented` is a live credential. Compared in constant time.
    pub async fn check_gateway_credential(&self, presented: &str) -> Result<Option<String>, RepoError> {
        let Some(id) = credential_id(presented) else {
            return Ok(None);
        };
        let Some(record) = self.repos.credentials.credential(id).await? else {
            return Ok(None);
        };
        let matches = secrets_equal(token_hash(presented).as_bytes(), record.hash.as_bytes());
        Ok((matches && record.revoked_at.is_none()).then_some(record.name))
    }
}

#[cfg(test)]
mod tests {
    use crate::service::fixture::fixture;

    #[tokio::test]
    async fn a_credential_works_until_revoked_and_nothing_else_works() {
        let f = fixture().await;
        let (record, secret) = f.svc.create_gateway_credential("gw1").await.unwrap();
        assert_eq!(
            f.svc.check_gateway_credential(&secret).await.unwrap().as_deref(),
            Some("gw1")
        );
        // The hash is kept, never the secret.
        let listed = f.svc.gateway_credentials().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!crate::api::views::gateway_credential_json(&listed[0])
            .to_string()
            .contains(&secret[20..]));
        // One character off, another id, no secret, garbage: refused.
        let mut wrong = secret.clone().into_bytes();
        let last = wrong.len() - 1;
        wrong[last] = if wrong[last] == b'0' { b'1' } else { b'0' };
        let (other, _) = f.svc.create_gateway_credential("gw2").await.unwrap();
        for bad in [
            String::from_utf8(wrong).unwrap(),
            format!("{}.{}", other.id, &secret[secret.find('.').unwrap() + 1..]),
            record.id.clone(),
            String::new(),
            "gwc_0123456789abcdef.short".into(),
        ] {
            assert_eq!(
                f.svc.check_gateway_credential(&bad).await.unwrap(),
                None,
                "{bad:?}"
            );
        }
        f.svc.revoke_gateway_credential(&record.id).await.unwrap();
        assert_eq!(f.svc.check_gateway_credential(&secret).await.unwrap(), None);
        assert!(f.svc.create_gateway_credential("no spaces").await.is_err());
    }
}
