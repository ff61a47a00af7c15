//! What supervisors ask of the calls: which callers were sent a link and sent nothing back
//! (to call them back), and how each assistant's links convert: sent, opened, a file stored.
//! Read from the calls created in the window, by the calls' own records.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Service, ServiceError};
use crate::model::SmsStatus;

/// The longest window one report reads: 31 days.
pub const MAX_WINDOW_SECONDS: u64 = 31 * 24 * 3600;

/// One call to follow up: a link was texted, no file came.
#[derive(Debug, Clone, Serialize)]
pub struct FollowUpCall {
    pub call_id: String,
    pub caller_number: String,
    pub created_at: u64,
    pub links_sent: usize,
    /// When the last text went out.
    pub last_sent_at: u64,
    /// The newest link's status now (`active`, `expired`, ...).
    pub last_link_status: String,
    /// Whether the caller ever opened a link's page.
    pub opened: bool,
    /// What the carrier last said of the newest text, if it reports.
    pub last_delivery: Option<crate::sms::Delivery>,
}

/// The calls to follow up for one assistant on one day (UTC, of the call's creation).
#[derive(Debug, Clone, Serialize)]
pub struct FollowUpGroup {
    pub assistant_id: String,
    pub day: String,
    pub calls: Vec<FollowUpCall>,
}

/// Links sent, opened, and with a file, for one assistant; the rates are of the links sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Conversion {
    pub links_sent: u64,
    pub opened: u64,
    pub with_file: u64,
    pub opened_rate: Option<f64>,
    pub file_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FollowUpReport {
    pub from: u64,
    pub to: u64,
    pub groups: Vec<FollowUpGroup>,
    /// Per assistant, over every call of the window.
    pub conversion: BTreeMap<String, Conversion>,
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
fn day(t: u64) -> String {
    let formatted =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t));
    formatted.to_string()[..10].to_string()
}

impl Service {
    /// Calls created in `[from, to)` whose links were texted and that got no file, by
    /// assistant and day; and each assistant's conversion over the window.
    pub async fn follow_up(
        &self,
        account_id: &str,
        from: u64,
        to: u64,
    ) -> Result<FollowUpReport, ServiceError> {
        let t = upgate_gateway::sys::now();
        let mut groups: BTreeMap<(String, String), Vec<FollowUpCall>> = BTreeMap::new();
        let mut conversion: BTreeMap<String, Conversion> = BTreeMap::new();
        for call in self.repos.calls.calls_created(account_id, from, to).await? {
            let g = self.repos.calls.gathered(&call).await?;
            let sent: Vec<_> = g.sms.iter().filter(|m| m.status == SmsStatus::Sent).collect();
            let texted = |link_id: &str| sent.iter().any(|m| m.link_id == link_id);
            let c = conversion.entry(call.assistant_id.clone()).or_default();
            for link in g.links.iter().filter(|l| texted(&l.id)) {
                c.links_sent += 1;
                c.opened += u64::from(link.opened_at.is_some());
                c.with_file += u64::from(link.files_received > 0);
            }
            if sent.is_empty() || !g.files.is_empty() {
                continue;
            }
            let last = sent.last().expect("not empty");
            let newest = g.links.last();
            groups
                .entry((call.assistant_id.clone(), day(call.created_at)))
                .or_default()
                .push(FollowUpCall {
                    call_id: call.id.clone(),
                    caller_number: call.caller_number.clone(),
                    created_at: call.created_at,
                    links_sent: sent.len(),
                    last_sent_at: last.created_at,
                    last_link_status: newest.map_or("none", |l| l.state_at(t).as_str()).to_string(),
                    opened: g.links.iter().any(|l| l.opened_at.is_some()),
                    last_delivery: last.delivery,
                });
        }
        for c in conversion.values_mut() {
            let rate = |n: u64| (c.links_sent > 0).then(|| n as f64 / c.links_sent as f64);
            (c.opened_rate, c.file_rate) = (rate(c.opened), rate(c.with_file));
        }
        let groups = groups
            .into_iter()
            .map(|((assistant_id, day), mut calls)| {
                calls.sort_by_key(|c| c.created_at);
                FollowUpGroup {
                    assistant_id,
                    day,
                    calls,
                }
            })
            .collect();
        Ok(FollowUpReport {
            from,
            to,
            groups,
            conversion,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use upgate_gateway::control_link::ControlLink;

    use super::*;
    use crate::service::fixture::fixture;
    use crate::service::InProcess;

    /// Three calls: one texted and answered with a file, one texted and opened but sent
    /// nothing, one texted and never opened. The last two are to follow up; the assistant
    /// converted 3 links sent into 2 opened and 1 with a file.
    #[tokio::test]
    async fn callers_who_sent_nothing_are_listed_and_conversion_counted() {
        let f = fixture().await;
        let gw: Arc<dyn ControlLink> = Arc::new(InProcess(f.svc.clone()));
        let mut links = Vec::new();
        for (call, number) in [
            ("answered", "+14155550101"),
            ("opened", "+14155550102"),
            ("silent", "+14155550103"),
        ] {
            links.push(f.link_on_call(call, number).await);
        }
        gw.opened(&links[0]).await;
        gw.opened(&links[1]).await;
        let claim = gw.claim(&links[0]).await.unwrap().unwrap();
        gw.commit(&claim, crate::repo::links_suite::file())
            .await
            .unwrap()
            .unwrap();

        let t = upgate_gateway::sys::now();
        let report = f.svc.follow_up(&f.actor.account_id, t - 60, t + 1).await.unwrap();
        assert_eq!(report.groups.len(), 1);
        let group = &report.groups[0];
        assert_eq!(
            (group.assistant_id.as_str(), group.day.as_str()),
            ("asst", day(t).as_str())
        );
        let calls: Vec<(&str, &str, bool)> = group
            .calls
            .iter()
            .map(|c| (c.call_id.as_str(), c.caller_number.as_str(), c.opened))
            .collect();
        assert_eq!(
            calls,
            [
                ("opened", "+14155550102", true),
                ("silent", "+14155550103", false)
            ]
        );
        assert!(group
            .calls
            .iter()
            .all(|c| c.links_sent == 1 && c.last_link_status == "active"));
        let c = &report.conversion["asst"];
        assert_eq!((c.links_sent, c.opened, c.with_file), (3, 2, 1));
        assert_eq!(c.file_rate, Some(1.0 / 3.0));

        // The funnel, deployment-wide, in the metrics.
        let metrics = f.svc.metrics.render();
        for line in [
            "upgate_link_funnel_total{stage=\"sent\"} 3",
            "upgate_link_funnel_total{stage=\"opened\"} 2",
            "upgate_link_funnel_total{stage=\"file_stored\"} 1",
        ] {
            assert!(metrics.contains(line), "{line} not in {metrics}");
        }

        // Outside the window: nothing.
        let before = f
            .svc
            .follow_up(&f.actor.account_id, t - 7200, t - 3600)
            .await
            .unwrap();
        assert!(before.groups.is_empty() && before.conversion.is_empty());
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(1_765_022_400), "2025-12-06");
    }
}
