//! The operator's key commands (`upgate keys list|rotate|retire`), on a running control
//! plane (over the operator socket) or a stopped one (on the data directory): a new key is
//! written, the ring reloaded, and gateways pick it up at their next key refresh.

use super::{OperatorError, Service, ServiceError};
use crate::keys::{self, KeyInfo, KeyKind};
use upgate_gateway::sys::now;

fn key_problem(e: impl std::fmt::Display) -> ServiceError {
    OperatorError::KeyChangeRefused {
        detail: e.to_string(),
    }
    .into()
}

impl Service {
    pub fn key_list(&self) -> Result<Vec<KeyInfo>, ServiceError> {
        keys::list(self.keys.data_dir()).map_err(key_problem)
    }

    /// A new current key of `kind`; links and files made under older keys keep working.
    pub async fn rotate_key(&self, kind: KeyKind) -> Result<u32, ServiceError> {
        let _changing = self.key_change.lock().await;
        let id = keys::rotate(self.keys.data_dir(), kind).map_err(key_problem)?;
        self.keys.reload().map_err(key_problem)?;
        if kind == KeyKind::Storage {
            // New files are sealed for their account's key: each account starts a new one.
            let accounts = self.keys.accounts().rotate_all().map_err(key_problem)?;
            tracing::info!(accounts, "account storage keys rotated");
        }
        tracing::info!(kind = ?kind, id, "key rotated");
        Ok(id)
    }

    /// Removes an old link key, refused while a live link was signed with it. Storage keys
    /// are never retired: stored files need them to open.
    pub async fn retire_key(&self, kind: KeyKind, id: u32) -> Result<(), ServiceError> {
        if kind == KeyKind::Storage {
            return Err(key_problem(
                "storage keys are never retired: the files sealed for them would no longer open",
            ));
        }
        if kind == KeyKind::Attestation {
            return Err(key_problem(
                "attestation keys are never retired: the statements they signed must stay checkable",
            ));
        }
        if u32::from(self.keys.current().links.current().id()) == id {
            return Err(key_problem(format!(
                "link key {id} is the current key; rotate first"
            )));
        }
        let _changing = self.key_change.lock().await;
        // New links take the current key, which cannot be retired, so a count of zero stays
        // zero (short of a link issued in the instant of a rotation, which the operator's
        // wait for old links to end covers).
        let live = self.repos.issue.live_links_signed_by(id, now()).await?;
        if live > 0 {
            return Err(key_problem(format!(
                "link key {id} still signs {live} live link(s); retire it once they have expired, been used or revoked"
            )));
        }
        keys::retire_link(self.keys.data_dir(), id).map_err(key_problem)?;
        self.keys.reload().map_err(key_problem)?;
        tracing::info!(id, "link key retired");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::fixture::fixture;
    use serde_json::json;

    #[tokio::test]
    async fn rotation_keeps_old_links_and_retirement_waits_for_them() {
        let f = fixture().await;
        let input = || {
            serde_json::from_value(json!({"assistant_id": "asst", "caller_number": "+14155550123"})).unwrap()
        };
        f.svc.put_call(&f.actor, "c", input()).await.unwrap();
        let old = f.svc.issue_link(f.actor.clone(), "c".into(), None).await.unwrap();
        assert_eq!(f.svc.rotate_key(KeyKind::Link).await.unwrap(), 2);
        assert_eq!(f.svc.rotate_key(KeyKind::Storage).await.unwrap(), 2);
        let states: Vec<(KeyKind, u32, &str)> = f
            .svc
            .key_list()
            .unwrap()
            .iter()
            .map(|k| (k.kind, k.id, k.state))
            .collect();
        assert_eq!(
            states,
            [
                (KeyKind::Link, 1, "old"),
                (KeyKind::Link, 2, "current"),
                (KeyKind::Storage, 1, "old"),
                (KeyKind::Storage, 2, "current"),
                (KeyKind::Attestation, 1, "current")
            ]
        );
        // The gateway's set: both link keys, both public keys, the new ones current; the
        // link issued before the rotation still verifies with it.
        let set = f.svc.gateway_key_set();
        assert_eq!((set.current_link, set.current_storage), (2, 2));
        assert_eq!(set.link_keys.len(), 2);
        let gateway = upgate_gateway::keys::GatewayKeys::from_set(&set).unwrap();
        let token = old.url.rsplit('/').next().unwrap();
        assert!(upgate_gateway::token::verify(&gateway.links, token, now()).is_ok());
        // The old link still verifies; retiring its key is refused while it is live.
        let err = f.svc.retire_key(KeyKind::Link, 1).await.unwrap_err();
        assert!(err.to_string().contains("1 live link"), "{err}");
        assert!(f
            .svc
            .retire_key(KeyKind::Link, 2)
            .await
            .unwrap_err()
            .to_string()
            .contains("current"));
        assert!(f.svc.retire_key(KeyKind::Storage, 1).await.is_err());
        // A new link for the call supersedes the old one: then the key can go.
        f.svc.put_call(&f.actor, "c", input()).await.unwrap();
        f.svc.issue_link(f.actor.clone(), "c".into(), None).await.unwrap();
        f.svc.retire_key(KeyKind::Link, 1).await.unwrap();
        assert_eq!(f.svc.gateway_key_set().link_keys.len(), 1);
        assert!(f
            .svc
            .retire_key(KeyKind::Link, 1)
            .await
            .unwrap_err()
            .to_string()
            .contains("no link key 1"));
    }
}
