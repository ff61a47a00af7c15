//! The dispatcher: every round it hands each enabled endpoint its new events, then starts
//! the deliveries that are due, each on a task of its own, and records each outcome. A
//! round never waits for an attempt: a receiver that hangs holds its own deliveries (at
//! most `PER_ENDPOINT` at once) and no one else's. It runs beside the API on its own task;
//! nothing waits for it.

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
/// Attempts in flight at once, over all endpoints, and for one endpoint.
const IN_FLIGHT: usize = 32;
const PER_ENDPOINT: usize = 4;
/// A receiver has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Dispatcher {
    repos: Repos,
    client: reqwest::Client,
    config: WebhooksConfig,
    metrics: Metrics,
    /// Deliveries being attempted now (account, endpoint, event): not started twice.
    in_flight: std::sync::Mutex<std::collections::HashSet<(String, String, u64)>>,
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
            in_flight: Default::default(),
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
        // Due ones already in flight come first in `due`: read past them.
        let busy = self.flying().len();
        for delivery in self.repos.webhooks.due(t, IN_FLIGHT + busy).await? {
            let key = (
                delivery.account_id.clone(),
                delivery.endpoint_id.clone(),
                delivery.event_id,
            );
            {
                let mut flying = self.flying();
                let same_endpoint = flying
                    .iter()
                    .filter(|(a, e, _)| (a, e) == (&key.0, &key.1))
                    .count();
                if flying.len() >= IN_FLIGHT {
                    break;
                }
                if flying.contains(&key) || same_endpoint >= PER_ENDPOINT {
                    continue;
                }
                flying.insert(key.clone());
            }
            let flight = Flight(self.clone(), key);
            tokio::spawn(async move {
                if let Err(e) = flight.0.attempt(delivery).await {
                    tracing::warn!(error = %e, "a webhook attempt could not be recorded");
                }
            });
        }
        Ok(())
    }

    fn flying(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<(String, String, u64)>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// A delivery in flight; it lands when this drops, even if its attempt panicked.
struct Flight(Arc<Dispatcher>, (String, String, u64));

impl Drop for Flight {
    fn drop(&mut self) {
        self.0.flying().remove(&self.1);
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::service::fixture::fixture;

    /// A receiver that answers 200 and keeps the webhook-ids it got.
    async fn receiver(got: Arc<Mutex<Vec<String>>>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let got = got.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let id = req.headers()["webhook-id"].to_str().unwrap().to_string();
                            got.lock().unwrap().push(id);
                            async {
                                Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                    http_body_util::Empty::<bytes::Bytes>::new(),
                                ))
                            }
                        });
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        port
    }

    /// A receiver that accepts connections and never answers.
    async fn hanging() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        port
    }

    /// An endpoint that never answers holds its own deliveries for the 10 s timeout, and
    /// nobody else's: the other endpoint gets each new event at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_receiver_that_hangs_delays_no_other() {
        let f = fixture().await;
        let config = WebhooksConfig {
            allow_private_targets: true,
            retry_for: Duration::from_secs(60),
        };
        f.svc.set_webhooks(config);
        let got = Arc::new(Mutex::new(Vec::new()));
        let (good, bad) = (receiver(got.clone()).await, hanging().await);
        for port in [bad, good] {
            let input = serde_json::from_value(json!({"url": format!("http://127.0.0.1:{port}/")})).unwrap();
            f.svc.create_webhook(&f.actor, input).await.unwrap();
        }
        let dispatcher = Dispatcher::new(f.svc.repos(), config, f.svc.metrics.clone()).unwrap();
        tokio::spawn(dispatcher.run());

        let call =
            serde_json::from_value(json!({"assistant_id": "asst", "caller_number": "+14155550123"})).unwrap();
        f.svc.put_call(&f.actor, "c", call).await.unwrap();
        let issued = f.svc.issue_link(f.actor.clone(), "c".into(), None).await.unwrap();
        let arrived = |n: usize, within: Duration| {
            let got = got.clone();
            async move {
                let deadline = tokio::time::Instant::now() + within;
                while got.lock().unwrap().len() < n {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{:?}",
                        got.lock().unwrap()
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        arrived(2, Duration::from_secs(3)).await;
        // The hanging endpoint's two attempts are still in flight; a new event goes out at once.
        f.svc.revoke_link(&f.actor, &issued.link.id).await.unwrap();
        arrived(3, Duration::from_secs(3)).await;
    }
}
