//! The dispatcher: every round it hands each enabled endpoint its new events, then attempts
//! the deliveries that are due, a bounded number at once, and records each outcome. It runs
//! beside the API on its own task; nothing waits for it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use upgate_config::WebhooksConfig;
use upgate_gateway::metrics::Metrics;
use upgate_gateway::sys::now;

use super::records::{message_id, Delivery, Failure};
use super::{retry, sign, target};
use crate::repo::webhooks::Attempt;
use crate::repo::{RepoError, Repos};

/// How often the dispatcher looks for new events and due deliveries.
const ROUND: Duration = Duration::from_millis(250);
/// Events handed to an endpoint per read of the log.
const HAND_OUT: usize = 200;
/// Deliveries attempted per round (at once).
const PER_ROUND: usize = 32;
/// A receiver has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Dispatcher {
    repos: Repos,
    client: reqwest::Client,
    config: WebhooksConfig,
    metrics: Metrics,
}

impl Dispatcher {
    pub fn new(repos: Repos, config: WebhooksConfig, metrics: Metrics) -> Result<Dispatcher, reqwest::Error> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(target::Guarded {
                allow_private: config.allow_private_targets,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("upgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Dispatcher {
            repos,
            client,
            config,
            metrics,
        })
    }

    /// Rounds, for good.
    pub async fn run(self) {
        let this = Arc::new(self);
        loop {
            if let Err(e) = this.round().await {
                tracing::warn!(error = %e, "a webhook round failed; the next one tries again");
            }
            tokio::time::sleep(ROUND).await;
        }
    }

    /// One round: hand out new events, then attempt what is due.
    pub async fn round(self: &Arc<Self>) -> Result<(), RepoError> {
        let t = now();
        for endpoint in self.repos.webhooks.enabled_endpoints().await? {
            while self
                .repos
                .webhooks
                .hand_out(&endpoint.account_id, &endpoint.id, t, HAND_OUT)
                .await?
                == HAND_OUT
            {}
        }
        let mut attempts = tokio::task::JoinSet::new();
        for delivery in self.repos.webhooks.due(t, PER_ROUND).await? {
            let this = self.clone();
            attempts.spawn(async move { this.attempt(delivery).await });
        }
        while let Some(done) = attempts.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "a webhook attempt could not be recorded");
            }
        }
        Ok(())
    }

    async fn attempt(&self, delivery: Delivery) -> Result<(), RepoError> {
        let (account, endpoint_id) = (&delivery.account_id, &delivery.endpoint_id);
        let Some(endpoint) = self.repos.webhooks.endpoint(account, endpoint_id).await? else {
            return Ok(());
        };
        let event = self
            .repos
            .events
            .events_after(account, delivery.event_id - 1, 1)
            .await?
            .into_iter()
            .find(|e| e.id == delivery.event_id);
        let sent = match event {
            Some(event) => {
                let at = std::time::UNIX_EPOCH + Duration::from_secs(event.at);
                let body = json!({
                    "type": event.event.kind(),
                    "timestamp": humantime::format_rfc3339_seconds(at).to_string(),
                    "data": event,
                })
                .to_string();
                self.send(&endpoint, &delivery, body).await
            }
            None => Err((None, "the event is no longer in the log".to_string())),
        };
        let t = now();
        let attempt = match sent {
            Ok(()) => {
                self.metrics.webhooks.with_label_values(&["delivered"]).inc();
                Attempt::Delivered { at: t }
            }
            Err((status, error)) => {
                let retry_for = self.config.retry_for.as_secs();
                let next = retry::next_attempt(
                    delivery.first_at,
                    delivery.attempts + 1,
                    t,
                    retry_for,
                    retry::jitter(),
                );
                let outcome = if next.is_some() { "failed" } else { "dead" };
                self.metrics.webhooks.with_label_values(&[outcome]).inc();
                tracing::info!(endpoint = %endpoint.id, event = delivery.event_id, status, %error, outcome, "webhook not delivered");
                let failure = Failure {
                    at: t,
                    event_id: delivery.event_id,
                    status,
                    error,
                };
                Attempt::Failed { failure, next }
            }
        };
        self.repos.webhooks.record_attempt(&delivery, attempt).await
    }

    /// One POST; `Err` with the receiver's status (if it answered) and what went wrong.
    async fn send(
        &self,
        endpoint: &super::records::Endpoint,
        delivery: &Delivery,
        body: String,
    ) -> Result<(), (Option<u16>, String)> {
        // Again at each attempt: an address literal is not seen by the resolver.
        let url =
            target::check_url(&endpoint.url, self.config.allow_private_targets).map_err(|r| (None, r.0))?;
        let id = message_id(&delivery.account_id, delivery.event_id);
        let timestamp = now();
        let signature = sign::signature_header(
            endpoint.signing_secrets(timestamp),
            &id,
            timestamp,
            body.as_bytes(),
        );
        let answer = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match answer {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let why = if resp.status().is_redirection() {
                    "the receiver answered a redirect, which is not followed".to_string()
                } else {
                    format!("the receiver answered {status}")
                };
                Err((Some(status), why))
            }
            Err(e) => Err((None, describe(&e))),
        }
    }
}

/// What went wrong, without the URL (it may carry a secret in its query).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    let mut text = if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    };
    text.truncate(300);
    text
}
