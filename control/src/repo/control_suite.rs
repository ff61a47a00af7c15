//! The contracts of the control plane's own repositories (accounts, tokens, calls, link
//! issuance, idempotency keys, audit, gateway credentials), engine-neutral: every state is
//! made and read back through the traits, and time is passed in. One function per trait;
//! `sled_keeps_every_contract` runs them on the embedded store, and a second engine would
//! run them the same way.

use std::sync::Arc;

use serde_json::json;
use upgate_gateway::control_link::LinkState;

use super::idempotency::{IN_FLIGHT_SECONDS, KEEP_SECONDS};
use super::*;
use crate::model::{Account, ApiToken, Assistant, Call, Link, Role, SmsMessage, SmsStatus};
use crate::service::GatewayCredential;

const T0: u64 = 1_000_000;

fn note(account: &str, action: &'static str, target: &str) -> AuditNote {
    AuditNote {
        account_id: account.into(),
        actor: "tok_suite".into(),
        action,
        target: target.into(),
        detail: json!({"n": 1}),
    }
}

async fn actions(audit: &dyn AuditRepo, account: &str) -> Vec<String> {
    let mut a: Vec<String> = audit
        .recent(account, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.target))
        .collect();
    a.reverse();
    a
}

fn account(n: u8) -> Account {
    Account {
        id: format!("acc_{n:016x}"),
        name: format!("Account {n}"),
        plan: "pro".into(),
        created_at: T0,
    }
}

pub async fn accounts(repo: &dyn AccountRepo, audit: &dyn AuditRepo) {
    let a = account(1);
    repo.create_account(&a, note(&a.id, "account.create", &a.id))
        .await
        .unwrap();
    let read = repo.account(&a.id).await.unwrap().unwrap();
    assert_eq!((read.name, read.plan), (a.name.clone(), a.plan.clone()));
    assert!(repo.account(&account(2).id).await.unwrap().is_none());

    let settings = |max_files: u32| {
        serde_json::from_value(json!({"enabled": true, "trigger": "photos", "max_files": max_files})).unwrap()
    };
    let asst = |max_files| Assistant {
        account_id: a.id.clone(),
        id: "asst-1".into(),
        file_upload: settings(max_files),
        updated_at: T0,
    };
    assert!(repo
        .put_assistant(&asst(2), note(&a.id, "assistant.update", "asst-1"))
        .await
        .unwrap());
    assert!(!repo
        .put_assistant(&asst(4), note(&a.id, "assistant.update", "asst-1"))
        .await
        .unwrap());
    let read = repo.assistant(&a.id, "asst-1").await.unwrap().unwrap();
    assert_eq!(read.file_upload.max_files, 4, "the second put replaces the first");
    assert!(repo.assistant(&account(2).id, "asst-1").await.unwrap().is_none());
    assert!(repo.assistant(&a.id, "asst-2").await.unwrap().is_none());
    assert_eq!(
        actions(audit, &a.id).await,
        [
            format!("account.create {}", a.id),
            "assistant.update asst-1".into(),
            "assistant.update asst-1".into()
        ]
    );
}

fn token(account: &str, n: u8, created_at: u64) -> ApiToken {
    ApiToken {
        id: format!("tok_{n:016x}"),
        account_id: account.into(),
        role: Role::Integration,
        hash: format!("{n:02x}").repeat(32),
        created_at,
        name: None,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    }
}

pub async fn tokens(repo: &dyn TokenRepo, audit: &dyn AuditRepo) {
    let (a, b) = (account(3).id, account(4).id);
    // Created out of order: listed oldest first.
    for (n, at) in [(1, T0 + 5), (2, T0), (3, T0 + 1)] {
        let t = token(&a, n, at);
        repo.create_token(&t, note(&a, "token.create", &t.id))
            .await
            .unwrap();
    }
    let other = token(&b, 9, T0);
    repo.create_token(&other, note(&b, "token.create", &other.id))
        .await
        .unwrap();
    let ids: Vec<String> = repo.tokens(&a).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, [token(&a, 2, 0).id, token(&a, 3, 0).id, token(&a, 1, 0).id]);
    assert_eq!(repo.tokens(&b).await.unwrap().len(), 1);

    let one = token(&a, 1, 0);
    assert_eq!(repo.token_by_hash(&one.hash).await.unwrap().unwrap().id, one.id);
    assert!(repo.token_by_hash(&"ee".repeat(32)).await.unwrap().is_none());
    assert!(repo.token(&a, &one.id).await.unwrap().is_some());
    assert!(
        repo.token(&b, &one.id).await.unwrap().is_none(),
        "another account's token"
    );
    assert_eq!(
        repo.token_account(&one.id).await.unwrap().as_deref(),
        Some(a.as_str())
    );
    assert!(repo
        .token_account("tok_00000000000000ff")
        .await
        .unwrap()
        .is_none());

    // Last use: recorded, never moved back.
    repo.touch(&one.hash, T0 + 100).await.unwrap();
    repo.touch(&one.hash, T0 + 50).await.unwrap();
    assert_eq!(
        repo.token(&a, &one.id).await.unwrap().unwrap().last_used_at,
        Some(T0 + 100)
    );

    // Revoked once, audited once; the other account cannot revoke it.
    assert!(repo
        .revoke_token(&b, &one.id, T0 + 200, note(&b, "token.revoke", &one.id))
        .await
        .unwrap()
        .is_none());
    let revoked = repo
        .revoke_token(&a, &one.id, T0 + 200, note(&a, "token.revoke", &one.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(T0 + 200));
    let again = repo
        .revoke_token(&a, &one.id, T0 + 300, note(&a, "token.revoke", &one.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked_at, Some(T0 + 200));
    assert_eq!(
        repo.token_by_hash(&one.hash).await.unwrap().unwrap().revoked_at,
        Some(T0 + 200)
    );
    let revokes = actions(audit, &a)
        .await
        .iter()
        .filter(|x| x.starts_with("token.revoke"))
        .count();
    assert_eq!(revokes, 1);
    assert!(!actions(audit, &b)
        .await
        .iter()
        .any(|x| x.starts_with("token.revoke")));
    // A revoked token's use is not recorded.
    repo.touch(&one.hash, T0 + 400).await.unwrap();
    assert_eq!(
        repo.token(&a, &one.id).await.unwrap().unwrap().last_used_at,
        Some(T0 + 100)
    );
}

fn call(account: &str, id: &str, number: &str, at: u64) -> Call {
    Call {
        account_id: account.into(),
        id: id.into(),
        assistant_id: "asst-1".into(),
        caller_number: number.into(),
        created_at: at,
        events_next: 0,
        events_dropped: 0,
    }
}

pub async fn calls(repo: &dyn CallRepo) {
    let a = account(5).id;
    let (stored, created) = repo.put_call(call(&a, "c-1", "+14155550100", T0)).await.unwrap();
    assert!(created);
    assert_eq!(stored.created_at, T0);
    let (stored, created) = repo
        .put_call(call(&a, "c-1", "+14155550199", T0 + 9))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(
        (stored.created_at, stored.caller_number.as_str()),
        (T0, "+14155550199")
    );
    assert_eq!(
        repo.call(&a, "c-1").await.unwrap().unwrap().caller_number,
        "+14155550199"
    );
    assert!(repo.call(&account(6).id, "c-1").await.unwrap().is_none());
    // A call whose id extends another's gathers nothing of it.
    repo.put_call(call(&a, "c-10", "+14155550100", T0)).await.unwrap();
    let g = repo.gathered(&stored).await.unwrap();
    assert!(g.links.is_empty() && g.sms.is_empty() && g.files.is_empty() && g.events.is_empty());
}

/// The links suite's link `n`, moved to this account, call, time and key.
fn link(account: &str, call: &str, n: u8, at: u64, key_id: u8) -> Link {
    let (_, mut link, _) = super::links_suite::ids(n);
    link.account_id = account.into();
    link.call_id = call.into();
    link.created_at = at;
    link.expires_at = at + 600;
    link.key_id = key_id;
    link
}

fn sms(link: &Link, n: u8) -> SmsMessage {
    SmsMessage {
        id: format!("sms_{n:016x}"),
        account_id: link.account_id.clone(),
        call_id: link.call_id.clone(),
        link_id: link.id.clone(),
        to: "+14155550100".into(),
        provider: "outbox".into(),
        provider_id: None,
        status: SmsStatus::Sent,
        error: None,
        encoding: "gsm7".into(),
        segments: 1,
        created_at: link.created_at,
        delivery: None,
        carrier_error: None,
        delivery_at: None,
    }
}

pub async fn issuance(repo: &dyn IssueRepo, calls: &dyn CallRepo, audit: &dyn AuditRepo) {
    let a = account(7).id;
    let c = calls
        .put_call(call(&a, "c-1", "+14155550100", T0))
        .await
        .unwrap()
        .0;
    let first = link(&a, "c-1", 71, T0, 1);
    repo.issue(&first, note(&a, "link.issue", &first.id))
        .await
        .unwrap();
    let second = link(&a, "c-1", 72, T0 + 10, 2);
    repo.issue(&second, note(&a, "link.issue", &second.id))
        .await
        .unwrap();
    let g = calls.gathered(&c).await.unwrap();
    let states: Vec<(String, LinkState, Option<u64>)> = g
        .links
        .iter()
        .map(|l| (l.id.clone(), l.state, l.ended_at))
        .collect();
    assert_eq!(
        states,
        [
            (first.id.clone(), LinkState::Superseded, Some(T0 + 10)),
            (second.id.clone(), LinkState::Active, None)
        ]
    );
    // A link that expired on its own is not superseded: it keeps its own ending.
    let third = link(&a, "c-1", 73, T0 + 10_000, 2);
    repo.issue(&third, note(&a, "link.issue", &third.id))
        .await
        .unwrap();
    let old = repo.account_link(&a, &second.id).await.unwrap().unwrap();
    assert_eq!((old.state, old.ended_at), (LinkState::Active, None));
    assert_eq!(old.state_at(T0 + 10_000), LinkState::Expired);
    assert!(repo
        .account_link(&account(8).id, &third.id)
        .await
        .unwrap()
        .is_none());

    // Key use: links active at a time, by the key that signed them.
    assert_eq!(repo.live_links_signed_by(2, T0 + 10_001).await.unwrap(), 1);
    assert_eq!(repo.live_links_signed_by(1, T0 + 10_001).await.unwrap(), 0);

    // Revocation: once, audited once; not by another account.
    assert!(repo
        .revoke(
            &account(8).id,
            &third.id,
            T0 + 10_002,
            note(&a, "link.revoke", &third.id)
        )
        .await
        .unwrap()
        .is_none());
    let revoked = repo
        .revoke(&a, &third.id, T0 + 10_002, note(&a, "link.revoke", &third.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (revoked.state, revoked.ended_at),
        (LinkState::Revoked, Some(T0 + 10_002))
    );
    let again = repo
        .revoke(&a, &third.id, T0 + 10_003, note(&a, "link.revoke", &third.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.ended_at, Some(T0 + 10_002));
    assert_eq!(repo.live_links_signed_by(2, T0 + 10_003).await.unwrap(), 0);
    let log = actions(audit, &a).await;
    assert_eq!(log.iter().filter(|x| x.starts_with("link.issue")).count(), 3);
    assert_eq!(log.iter().filter(|x| x.starts_with("link.revoke")).count(), 1);

    // Messages: on their call, in the order sent, by account.
    for (n, l) in [(2u8, &second), (1, &first), (3, &third)] {
        repo.record_sms(&sms(l, n)).await.unwrap();
    }
    let ids: Vec<String> = calls
        .gathered(&c)
        .await
        .unwrap()
        .sms
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [sms(&second, 2).id, sms(&first, 1).id, sms(&third, 3).id]);
    assert!(repo.sms(&a, &sms(&first, 1).id).await.unwrap().is_some());
    assert!(repo
        .sms(&account(8).id, &sms(&first, 1).id)
        .await
        .unwrap()
        .is_none());
}

pub async fn idempotency(repo: Arc<dyn IdempotencyRepo>) {
    let a = account(9).id;
    let b = account(10).id;
    let req = "POST /v1/calls/c-1/upload-links";
    assert_eq!(repo.begin(&a, "k1", req, T0).await.unwrap(), Begun::Fresh);
    assert_eq!(repo.begin(&a, "k1", req, T0 + 1).await.unwrap(), Begun::InUse);
    assert_eq!(
        repo.begin(&a, "k1", "POST /v1/upload-links/x/resend", T0 + 1)
            .await
            .unwrap(),
        Begun::Reused
    );
    // Keys are per account.
    assert_eq!(repo.begin(&b, "k1", req, T0 + 1).await.unwrap(), Begun::Fresh);
    repo.done(&a, "k1", "link-1", "sms-1").await.unwrap();
    let replay = Begun::Replay {
        link_id: "link-1".into(),
        sms_id: "sms-1".into(),
    };
    assert_eq!(repo.begin(&a, "k1", req, T0 + 2).await.unwrap(), replay);
    assert_eq!(
        repo.begin(&a, "k1", req, T0 + KEEP_SECONDS - 1).await.unwrap(),
        replay
    );
    assert_eq!(
        repo.begin(&a, "k1", req, T0 + KEEP_SECONDS).await.unwrap(),
        Begun::Fresh,
        "forgotten after a day"
    );

    // A request that never finished frees its key; an aborted one at once.
    assert_eq!(repo.begin(&a, "k2", req, T0).await.unwrap(), Begun::Fresh);
    assert_eq!(
        repo.begin(&a, "k2", req, T0 + IN_FLIGHT_SECONDS).await.unwrap(),
        Begun::Fresh
    );
    repo.abort(&a, "k2").await.unwrap();
    assert_eq!(
        repo.begin(&a, "k2", req, T0 + IN_FLIGHT_SECONDS).await.unwrap(),
        Begun::Fresh
    );

    // Concurrent first uses: exactly one goes ahead.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let repo = repo.clone();
            let a = a.clone();
            tokio::spawn(async move { repo.begin(&a, "k3", req, T0).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        match t.await.unwrap() {
            Begun::Fresh => fresh += 1,
            other => assert_eq!(other, Begun::InUse),
        }
    }
    assert_eq!(fresh, 1);
}

pub async fn audit(repo: &dyn AuditRepo) {
    let (a, b) = (account(11).id, account(12).id);
    for i in 0..5 {
        repo.append(note(&a, "file.download", &format!("f{i}")))
            .await
            .unwrap();
    }
    repo.append(note(&b, "file.download", "other")).await.unwrap();
    let recent = repo.recent(&a, 3).await.unwrap();
    let targets: Vec<&str> = recent.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["f4", "f3", "f2"], "newest first, at most the limit");
    assert!(recent.windows(2).all(|w| w[0].seq > w[1].seq));
    assert!(recent
        .iter()
        .all(|e| e.account_id == a && e.actor == "tok_suite" && e.detail["n"] == 1));
    assert_eq!(repo.recent(&b, 100).await.unwrap().len(), 1);
    assert!(repo.recent(&account(13).id, 100).await.unwrap().is_empty());
}

pub async fn credentials(repo: &dyn CredentialRepo) {
    let cred = |n: u8| GatewayCredential {
        id: format!("gwc_{n:016x}"),
        name: format!("gw{n}"),
        hash: format!("{n:02x}").repeat(32),
        created_at: T0,
        revoked_at: None,
    };
    repo.create_credential(&cred(2)).await.unwrap();
    repo.create_credential(&cred(1)).await.unwrap();
    assert_eq!(repo.credential(&cred(1).id).await.unwrap().unwrap().name, "gw1");
    assert!(repo.credential(&cred(3).id).await.unwrap().is_none());
    let names: Vec<String> = repo
        .credentials()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["gw1", "gw2"]);
    assert_eq!(
        repo.revoke_credential(&cred(1).id, T0 + 5)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T0 + 5)
    );
    assert_eq!(
        repo.revoke_credential(&cred(1).id, T0 + 9)
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T0 + 5)
    );
    assert!(repo.revoke_credential(&cred(3).id, T0).await.unwrap().is_none());
    assert_eq!(
        repo.credential(&cred(1).id).await.unwrap().unwrap().revoked_at,
        Some(T0 + 5)
    );
    assert!(repo
        .credential(&cred(2).id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
}

/// The event log `issuance` left for account 7, then a call of another account: each
/// change wrote its event, numbered per account in the order written, paged by id.
pub async fn events(repo: &dyn EventRepo, issue: &dyn IssueRepo) {
    let a = account(7).id;
    let all = repo.events_after(&a, 0, 100).await.unwrap();
    let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "ids from 1, no gaps"
    );
    let kinds: Vec<String> = all.iter().map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "link_issued",
            "link_superseded",
            "link_issued",
            "link_issued",
            "link_revoked",
            "sms_sent",
            "sms_sent",
            "sms_sent"
        ]
    );
    // The supersede and the new link came in one change, at its time.
    assert_eq!((all[1].at, all[2].at), (T0 + 10, T0 + 10));
    assert!(all.iter().all(|e| e.call_id == "c-1"));
    // Resumed after an id: the rest, in order, at most `limit`.
    let page = repo.events_after(&a, 2, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4]);
    assert!(repo.events_after(&a, 8, 10).await.unwrap().is_empty());
    assert_eq!(
        repo.call_events_after(&a, "c-1", 6, 10).await.unwrap(),
        all[6..].to_vec()
    );
    assert!(repo.call_events_after(&a, "c-2", 0, 10).await.unwrap().is_empty());

    // Another account numbers its own events from 1, and sees none of these.
    let b = account(8).id;
    let theirs = link(&b, "c-1", 81, T0, 1);
    issue
        .issue(&theirs, note(&b, "link.issue", &theirs.id))
        .await
        .unwrap();
    let log = repo.events_after(&b, 0, 100).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].id, 1);
    assert_eq!(repo.events_after(&a, 0, 100).await.unwrap(), all);
}

/// A link's expiry reaches the log once, from the sweeper, with the stored state; a link
/// that ended before its expiry gets no such event. Links expire earlier than any other in
/// the suite, so the sweeps here touch no other test's links.
pub async fn expiry(repo: &dyn EventRepo, issue: &dyn IssueRepo) {
    let a = account(9).id;
    let past = T0 - 10_000;
    let unused = link(&a, "c-9", 91, past, 1);
    let revoked = link(&a, "c-8", 92, past + 1, 1);
    for l in [&unused, &revoked] {
        issue.issue(l, note(&a, "link.issue", &l.id)).await.unwrap();
    }
    issue
        .revoke(&a, &revoked.id, past + 2, note(&a, "link.revoke", &revoked.id))
        .await
        .unwrap();
    let mut account_watch = repo.watch(&a, None);
    let mut call_watch = repo.watch(&a, Some("c-9"));
    let mut quiet_watch = repo.watch(&a, Some("c-8"));

    assert_eq!(
        issue.expire_due(unused.expires_at - 1, 100).await.unwrap(),
        (0, 0)
    );
    // Both handled; the revoked one had ended already.
    assert_eq!(issue.expire_due(revoked.expires_at, 100).await.unwrap(), (2, 1));
    let again = issue.expire_due(revoked.expires_at + 60, 100).await.unwrap();
    assert_eq!(again, (0, 0), "once");

    let stored = issue.account_link(&a, &unused.id).await.unwrap().unwrap();
    assert_eq!(stored.state, LinkState::Expired);
    assert_eq!(stored.ended_at, Some(unused.expires_at));
    let log = repo.call_events_after(&a, "c-9", 0, 10).await.unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        last.event,
        crate::model::Event::LinkExpired {
            link_id: unused.id.clone(),
            files_stored: 0,
            unused: true
        }
    );
    assert_eq!(last.at, unused.expires_at);
    let kinds: Vec<String> = repo
        .call_events_after(&a, "c-8", 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.kind())
        .collect();
    assert_eq!(kinds, ["link_issued", "link_revoked"]);

    // Watchers of the account and of the call were woken; another call's was not.
    let soon = std::time::Duration::from_secs(5);
    tokio::time::timeout(soon, account_watch.changed())
        .await
        .expect("account woken");
    tokio::time::timeout(soon, call_watch.changed())
        .await
        .expect("call woken");
    let quiet = std::time::Duration::from_millis(50);
    assert!(tokio::time::timeout(quiet, quiet_watch.changed()).await.is_err());
}

/// Webhook deliveries from the log: each event handed to an endpoint once, in one
/// transaction with its cursor; attempts move deliveries to done, later or dead; a replay
/// brings dead letters back; deleting the endpoint leaves nothing due.
pub async fn webhooks(repo: &dyn WebhookRepo, events: &dyn EventRepo, issue: &dyn IssueRepo) {
    use crate::repo::webhooks::Attempt;
    use crate::webhooks::records::{DeliveryState, Endpoint, Failure};
    let a = account(10).id;
    let first = link(&a, "c-10", 101, T0, 1);
    issue
        .issue(&first, note(&a, "link.issue", &first.id))
        .await
        .unwrap();
    let endpoint = |id: &str, kinds: &[&str]| Endpoint {
        id: id.into(),
        account_id: a.clone(),
        url: "https://hooks.example.com/".into(),
        event_types: kinds.iter().map(|k| k.to_string()).collect(),
        enabled: true,
        secrets: vec![],
        created_at: T0,
        updated_at: T0,
        cursor: 0,
        stats: Default::default(),
    };
    // One endpoint for every kind, one for revocations only.
    repo.put_endpoint(&endpoint("whk_all", &[]), note(&a, "webhook.create", "whk_all"))
        .await
        .unwrap();
    let only = endpoint("whk_revoked", &["link_revoked"]);
    repo.put_endpoint(&only, note(&a, "webhook.create", "whk_revoked"))
        .await
        .unwrap();
    issue
        .revoke(&a, &first.id, T0 + 1, note(&a, "link.revoke", &first.id))
        .await
        .unwrap();
    let log = events.events_after(&a, 0, 100).await.unwrap();
    assert_eq!(log.len(), 2);

    for id in ["whk_all", "whk_revoked"] {
        assert_eq!(repo.hand_out(&a, id, T0 + 2, 100).await.unwrap(), 2);
        assert_eq!(repo.hand_out(&a, id, T0 + 2, 100).await.unwrap(), 0, "once");
    }
    let due = repo.due(T0 + 2, 100).await.unwrap();
    let mine: Vec<_> = due.iter().filter(|d| d.account_id == a).collect();
    assert_eq!(
        mine.len(),
        3,
        "two for one endpoint, the revocation for the other"
    );
    assert!(repo
        .due(T0 + 1, 100)
        .await
        .unwrap()
        .iter()
        .all(|d| d.account_id != a));

    let failure = |at| Failure {
        at,
        event_id: log[1].id,
        status: Some(500),
        error: "the receiver answered 500".into(),
    };
    let revoked = mine
        .iter()
        .find(|d| d.endpoint_id == "whk_revoked")
        .unwrap()
        .to_owned()
        .clone();
    let later = Attempt::Failed {
        failure: failure(T0 + 2),
        next: Some(T0 + 7),
    };
    repo.record_attempt(&revoked, later).await.unwrap();
    // Recorded against a stale copy: ignored, the stored one moved on.
    repo.record_attempt(&revoked, Attempt::Delivered { at: T0 + 3 })
        .await
        .unwrap();
    let listed = repo.deliveries(&a, "whk_revoked", 10).await.unwrap();
    assert_eq!((listed[0].attempts, listed[0].next_at), (1, T0 + 7));
    assert!(repo
        .due(T0 + 6, 100)
        .await
        .unwrap()
        .iter()
        .all(|d| d.endpoint_id != "whk_revoked"));
    let again = repo.due(T0 + 7, 100).await.unwrap();
    let again = again
        .iter()
        .find(|d| d.endpoint_id == "whk_revoked")
        .unwrap()
        .clone();
    let dead = Attempt::Failed {
        failure: failure(T0 + 7),
        next: None,
    };
    repo.record_attempt(&again, dead).await.unwrap();
    let listed = repo.deliveries(&a, "whk_revoked", 10).await.unwrap();
    assert_eq!(listed[0].state, DeliveryState::Dead);
    assert!(repo
        .due(u64::MAX, 1000)
        .await
        .unwrap()
        .iter()
        .all(|d| d.endpoint_id != "whk_revoked"));
    let stats = repo.endpoint(&a, "whk_revoked").await.unwrap().unwrap().stats;
    assert_eq!((stats.failed_attempts, stats.dead), (2, 1));

    for d in mine.iter().filter(|d| d.endpoint_id == "whk_all") {
        repo.record_attempt(d, Attempt::Delivered { at: T0 + 3 })
            .await
            .unwrap();
    }
    assert!(repo.deliveries(&a, "whk_all", 10).await.unwrap().is_empty());
    assert_eq!(
        repo.endpoint(&a, "whk_all")
            .await
            .unwrap()
            .unwrap()
            .stats
            .delivered,
        2
    );

    let n = repo
        .replay(
            &a,
            "whk_revoked",
            None,
            T0 + 9,
            note(&a, "webhook.replay", "whk_revoked"),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let back = repo.deliveries(&a, "whk_revoked", 10).await.unwrap();
    assert_eq!(
        (back[0].state, back[0].attempts, back[0].next_at),
        (DeliveryState::Pending, 0, T0 + 9)
    );
    assert_eq!(
        repo.endpoint(&a, "whk_revoked")
            .await
            .unwrap()
            .unwrap()
            .stats
            .dead,
        0
    );

    assert!(repo
        .delete_endpoint(&a, "whk_revoked", note(&a, "webhook.delete", "whk_revoked"))
        .await
        .unwrap());
    assert!(repo
        .due(u64::MAX, 1000)
        .await
        .unwrap()
        .iter()
        .all(|d| d.endpoint_id != "whk_revoked"));
    assert!(repo.deliveries(&a, "whk_revoked", 10).await.unwrap().is_empty());
    let left: Vec<String> = repo
        .endpoints(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, ["whk_all"]);
    assert_eq!(repo.enabled_endpoints().await.unwrap().len(), 1);
}

// Several threads, so the concurrent first uses of one idempotency key really race.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sled_keeps_every_contract() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(crate::db::SledKv::open(&dir.path().join("meta")).unwrap());
    let r = Repos::sled(db).unwrap();
    accounts(&*r.accounts, &*r.audit).await;
    tokens(&*r.tokens, &*r.audit).await;
    calls(&*r.calls).await;
    issuance(&*r.issue, &*r.calls, &*r.audit).await;
    events(&*r.events, &*r.issue).await;
    expiry(&*r.events, &*r.issue).await;
    webhooks(&*r.webhooks, &*r.events, &*r.issue).await;
    idempotency(r.idempotency.clone()).await;
    audit(&*r.audit).await;
    credentials(&*r.credentials).await;
}
