//! Webhook endpoints as admins manage them: register (the secret shown once), change,
//! rotate the secret with an overlap, disable, delete; see what failed and replay dead
//! letters. Delivery itself is the dispatcher's (`webhooks::worker`).

use serde::Deserialize;
use serde_json::json;
use upgate_gateway::sys::now;

use super::{Actor, Service, ServiceError, WebhookError};
use crate::ids::new_id;
use crate::model::EVENT_KINDS;
use crate::webhooks::records::{Delivery, Endpoint, Secret};
use crate::webhooks::{sign, target};

/// Endpoints per account: enough for a platform, a CRM and a test receiver, and a bound on
/// what one account can make the dispatcher do.
const MAX_ENDPOINTS: usize = 20;
/// The longest a rotated secret keeps signing beside its successor.
const MAX_OVERLAP_SECONDS: u64 = 7 * 24 * 3600;
/// Deliveries listed in the failure view.
const LISTED: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: String,
    /// Kinds to deliver; empty or absent delivers all.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl Service {
    /// Checks a URL as the dispatcher will: its form, then its name resolved now (a name
    /// that does not resolve, or resolves to a private address, is refused).
    async fn checked_url(&self, url: &str) -> Result<String, ServiceError> {
        let allow = self.webhooks_config().allow_private_targets;
        let parsed = target::check_url(url, allow).map_err(|r| WebhookError::InvalidUrl(r.0))?;
        if let Some(url::Host::Domain(host)) = parsed.host() {
            let port = parsed.port_or_known_default().unwrap_or(443);
            target::resolve(host, port, allow)
                .await
                .map_err(|r| WebhookError::InvalidUrl(r.0))?;
        }
        Ok(parsed.to_string())
    }

    fn checked_kinds(kinds: Vec<String>) -> Result<Vec<String>, ServiceError> {
        let mut kinds = kinds;
        if let Some(bad) = kinds.iter().find(|k| !EVENT_KINDS.contains(&k.as_str())) {
            return Err(WebhookError::UnknownEventType(bad.clone()).into());
        }
        kinds.sort();
        kinds.dedup();
        Ok(kinds)
    }

    /// Registers an endpoint; returns it and its secret, which is never shown again. It
    /// gets the events written from now on.
    pub async fn create_webhook(
        &self,
        actor: &Actor,
        input: WebhookInput,
    ) -> Result<(Endpoint, String), ServiceError> {
        let url = self.checked_url(&input.url).await?;
        let event_types = Self::checked_kinds(input.event_types)?;
        let account = &actor.account_id;
        if self.repos.webhooks.endpoints(account).await?.len() >= MAX_ENDPOINTS {
            return Err(WebhookError::TooMany.into());
        }
        let secret = sign::new_secret().map_err(|_| ServiceError::NoRandomness)?;
        let t = now();
        let endpoint = Endpoint {
            id: new_id("whk"),
            account_id: account.clone(),
            url,
            event_types,
            enabled: input.enabled,
            secrets: vec![Secret {
                secret: secret.clone(),
                created_at: t,
                expires_at: None,
            }],
            created_at: t,
            updated_at: t,
            cursor: self.repos.events.last_id(account).await?,
            stats: Default::default(),
        };
        // The URL's query may hold a receiver's own token: the audit keeps the host only.
        let host = url::Url::parse(&endpoint.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string));
        let audit = actor.note("webhook.create", &endpoint.id, json!({"host": host}));
        self.repos.webhooks.put_endpoint(&endpoint, audit).await?;
        Ok((endpoint, secret))
    }

    pub async fn webhooks(&self, account_id: &str) -> Result<Vec<Endpoint>, ServiceError> {
        Ok(self.repos.webhooks.endpoints(account_id).await?)
    }

    pub async fn webhook(&self, account_id: &str, id: &str) -> Result<Endpoint, ServiceError> {
        self.repos
            .webhooks
            .endpoint(account_id, id)
            .await?
            .ok_or(ServiceError::NotFound("webhook"))
    }

    /// Changes what is given; a disabled endpoint keeps its place in the log and gets what
    /// was written meanwhile once enabled again.
    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: &str,
        patch: WebhookPatch,
    ) -> Result<Endpoint, ServiceError> {
        let mut endpoint = self.webhook(&actor.account_id, id).await?;
        if let Some(url) = patch.url {
            endpoint.url = self.checked_url(&url).await?;
        }
        if let Some(kinds) = patch.event_types {
            endpoint.event_types = Self::checked_kinds(kinds)?;
        }
        if let Some(enabled) = patch.enabled {
            endpoint.enabled = enabled;
        }
        endpoint.updated_at = now();
        let audit = actor.note("webhook.update", id, json!({"enabled": endpoint.enabled}));
        self.repos.webhooks.put_endpoint(&endpoint, audit).await?;
        Ok(endpoint)
    }

    pub async fn delete_webhook(&self, actor: &Actor, id: &str) -> Result<(), ServiceError> {
        let audit = actor.note("webhook.delete", id, json!({}));
        if self
            .repos
            .webhooks
            .delete_endpoint(&actor.account_id, id, audit)
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound("webhook"))
        }
    }

    /// A new secret, shown once; the ones before it sign beside it for `overlap_seconds`
    /// more (so receivers can switch without missing a delivery), then stop.
    pub async fn rotate_webhook_secret(
        &self,
        actor: &Actor,
        id: &str,
        overlap_seconds: u64,
    ) -> Result<(Endpoint, String), ServiceError> {
        if overlap_seconds > MAX_OVERLAP_SECONDS {
            return Err(WebhookError::InvalidOverlap.into());
        }
        let mut endpoint = self.webhook(&actor.account_id, id).await?;
        let secret = sign::new_secret().map_err(|_| ServiceError::NoRandomness)?;
        let t = now();
        let end = t + overlap_seconds;
        endpoint.secrets.retain(|s| s.expires_at.is_none_or(|e| t < e));
        for old in &mut endpoint.secrets {
            old.expires_at = Some(old.expires_at.map_or(end, |e| e.min(end)));
        }
        endpoint.secrets.push(Secret {
            secret: secret.clone(),
            created_at: t,
            expires_at: None,
        });
        endpoint.updated_at = t;
        let audit = actor.note(
            "webhook.rotate_secret",
            id,
            json!({"overlap_seconds": overlap_seconds}),
        );
        self.repos.webhooks.put_endpoint(&endpoint, audit).await?;
        Ok((endpoint, secret))
    }

    /// The endpoint's pending deliveries and dead letters.
    pub async fn webhook_deliveries(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<Vec<Delivery>, ServiceError> {
        self.webhook(account_id, id).await?;
        Ok(self.repos.webhooks.deliveries(account_id, id, LISTED).await?)
    }

    /// Dead letters (those of `event_ids`, or all) go out again, each with its original id.
    pub async fn replay_webhook(
        &self,
        actor: &Actor,
        id: &str,
        event_ids: Option<Vec<u64>>,
    ) -> Result<usize, ServiceError> {
        self.webhook(&actor.account_id, id).await?;
        let audit = actor.note("webhook.replay", id, json!({"event_ids": event_ids}));
        Ok(self
            .repos
            .webhooks
            .replay(&actor.account_id, id, event_ids.as_deref(), now(), audit)
            .await?)
    }
}
