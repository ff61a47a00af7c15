//! Moves calls stored in the first layout to the current one, at start. The first layout kept
//! on the call record the ids of its links, messages and files and its events, so every link,
//! message, file or refused upload rewrote a record that only grew. The current one keeps them
//! under the call's prefix in their own trees (`CallLinks`, `CallSms`, `CallFiles`,
//! `CallEvents`), in the same order, and the call record only its own fields.
//!
//! Each call moves in one batch (its record rewritten and its entries added together), so a
//! crash leaves every call wholly in one layout; a call in the current layout is never touched
//! again, and once every call has moved a marker in `Meta` skips the scan on later starts.

use serde::Deserialize;

use super::sled_keys::{call_prefix, decode, numbered, put};
use super::{RepoError, SledStore};
use crate::db::{Op, Tree};
use crate::model::{Call, CallEvent};

const LAYOUT_KEY: &[u8] = b"calls_layout";
const LAYOUT: &[u8] = b"2";

/// A call record as either layout stores it.
#[derive(Deserialize)]
struct Stored {
    account_id: String,
    id: String,
    assistant_id: String,
    caller_number: String,
    created_at: u64,
    /// Only the current layout has it.
    #[serde(default)]
    events_next: Option<u64>,
    #[serde(default)]
    link_ids: Vec<String>,
    #[serde(default)]
    sms_ids: Vec<String>,
    #[serde(default)]
    file_ids: Vec<String>,
    #[serde(default)]
    events: Vec<CallEvent>,
    #[serde(default)]
    events_dropped: u64,
}

impl SledStore {
    /// Moves every call of the first layout; returns how many moved.
    pub fn migrate_calls(&self) -> Result<usize, RepoError> {
        if self.db.get(Tree::Meta, LAYOUT_KEY)?.as_deref() == Some(LAYOUT) {
            return Ok(0);
        }
        let w = self.lock();
        let mut moved = 0;
        for (key, value) in self.db.scan_prefix(Tree::Calls, b"")? {
            let old: Stored = decode(Tree::Calls, &value)?;
            if old.events_next.is_some() {
                continue;
            }
            let prefix = call_prefix(&old.account_id, &old.id);
            let mut ops = Vec::new();
            // Ids from the store's counter: above every number already handed out, and below
            // every one handed out later, so entries written after the move sort after these.
            for (tree, ids) in [
                (Tree::CallLinks, &old.link_ids),
                (Tree::CallSms, &old.sms_ids),
                (Tree::CallFiles, &old.file_ids),
            ] {
                for id in ids {
                    let seq = self.db.next_id()?;
                    ops.push(Op::Put(tree, numbered(&prefix, seq), id.as_bytes().to_vec()));
                }
            }
            // Events keep their numbers: the kept ones follow the dropped ones.
            let first = old.events_dropped;
            for (i, event) in old.events.iter().enumerate() {
                ops.push(put(Tree::CallEvents, numbered(&prefix, first + i as u64), event));
            }
            let call = Call {
                account_id: old.account_id,
                id: old.id,
                assistant_id: old.assistant_id,
                caller_number: old.caller_number,
                created_at: old.created_at,
                events_next: first + old.events.len() as u64,
                events_dropped: first,
            };
            ops.push(put(Tree::Calls, key, &call));
            self.db.write(ops)?;
            moved += 1;
        }
        let durable = self.write(vec![Op::Put(Tree::Meta, LAYOUT_KEY.to_vec(), LAYOUT.to_vec())])?;
        drop(w);
        durable.wait()?;
        if moved > 0 {
            tracing::info!(calls = moved, "calls moved to the per-call layout");
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;
    use upgate_gateway::control_link::LinkState;
    use upgate_gateway::token::LinkId;

    use super::*;
    use crate::db::Kv;
    use crate::model::{FileRecord, Link, SmsMessage, SmsStatus};
    use crate::repo::sled_keys::scoped;
    use crate::service::fixture::{fixture, Fixture};

    /// The store under the fixture's service, as an older upgate left it: the fixture's
    /// open marked its (then empty) store as moved, so the marker goes first.
    fn sled(f: &Fixture) -> SledStore {
        f.db.apply(vec![Op::Delete(Tree::Meta, LAYOUT_KEY.to_vec())])
            .unwrap();
        SledStore::new(f.db.clone(), Default::default())
    }

    fn link(f: &Fixture, call: &str, state: LinkState, created_at: u64) -> Link {
        Link {
            id: LinkId::random().unwrap().to_string(),
            account_id: f.actor.account_id.clone(),
            call_id: call.into(),
            state,
            key_id: f.svc.keys.current().links.current().id(),
            created_at,
            expires_at: upgate_gateway::sys::now() + 3600,
            message: "Send it".into(),
            allowed_types: vec!["application/pdf".into()],
            max_file_bytes: 1000,
            max_files: 5,
            files_received: 0,
            ended_at: None,
            opened_at: None,
            leases: Vec::new(),
        }
    }

    /// A call as the first layout stored it, with two links (the second active), a message,
    /// two files and events of which three were already dropped.
    fn legacy_call(f: &Fixture, call: &str) -> Vec<String> {
        let old = link(f, call, LinkState::Superseded, 10);
        let active = link(f, call, LinkState::Active, 20);
        let sms = SmsMessage {
            id: format!("sms_{call}"),
            account_id: f.actor.account_id.clone(),
            call_id: call.into(),
            link_id: active.id.clone(),
            to: "+14155550123".into(),
            provider: "outbox".into(),
            provider_id: None,
            status: SmsStatus::Sent,
            error: None,
            encoding: "gsm7".into(),
            segments: 1,
            created_at: 21,
            delivery: None,
            carrier_error: None,
            delivery_at: None,
        };
        let file = |n: u8| FileRecord {
            quarantine: None,
            id: format!("f_{n:032x}"),
            account_id: f.actor.account_id.clone(),
            call_id: call.into(),
            link_id: active.id.clone(),
            contact: "+14155550123".into(),
            name: format!("doc{n}.pdf"),
            kind: upgate_gateway::upload::sniff::Kind::Pdf,
            size: 100,
            sha256: "00".repeat(32),
            scan: upgate_gateway::control_link::ScanVerdict::not_scanned(None, "off".into(), 0),
            key_id: 1,
            received_at: 30 + n as u64,
            attestation: None,
            previews: false,
        };
        // The file ids out of key order: the call's order is what counts.
        let files = [file(9), file(2)];
        let record = json!({
            "account_id": f.actor.account_id,
            "id": call,
            "assistant_id": "asst",
            "caller_number": "+14155550123",
            "created_at": 5,
            "link_ids": [old.id, active.id],
            "sms_ids": [sms.id],
            "file_ids": [files[0].id, files[1].id],
            "events": [
                {"at": 40, "kind": "upload_refused", "detail": {"code": "infected"}},
                {"at": 41, "kind": "upload_refused", "detail": {"code": "file_too_large"}},
            ],
            "events_dropped": 3,
        });
        let mut ops = vec![
            Op::Put(
                Tree::Calls,
                scoped(&f.actor.account_id, call),
                serde_json::to_vec(&record).unwrap(),
            ),
            put(Tree::Links, old.id.as_bytes(), &old),
            put(Tree::Links, active.id.as_bytes(), &active),
            put(Tree::Sms, sms.id.as_bytes(), &sms),
        ];
        for file in &files {
            ops.push(put(Tree::Files, file.id.as_bytes(), file));
        }
        f.db.apply(ops).unwrap();
        vec![old.id, active.id]
    }

    async fn view(f: &Fixture, call: &str) -> serde_json::Value {
        let details = f
            .svc
            .call_details(&f.svc.call(&f.actor.account_id, call).await.unwrap())
            .await
            .unwrap();
        crate::api::views::call_json(&details, upgate_gateway::sys::now())
    }

    fn ids(v: &serde_json::Value, what: &str) -> Vec<String> {
        v[what]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn calls_of_the_first_layout_move_once_and_read_as_before() {
        let f = fixture().await;
        let links = legacy_call(&f, "call-1");
        legacy_call(&f, "call-2");
        assert_eq!(sled(&f).migrate_calls().unwrap(), 2);
        let v = view(&f, "call-1").await;
        assert_eq!(ids(&v, "links"), links);
        assert_eq!(v["links"][0]["status"], "superseded");
        assert_eq!(v["links"][1]["status"], "active");
        assert_eq!(ids(&v, "sms"), ["sms_call-1"]);
        assert_eq!(
            ids(&v, "files"),
            [format!("f_{:032x}", 9), format!("f_{:032x}", 2)]
        );
        assert_eq!(v["events"][0]["detail"]["code"], "infected");
        assert_eq!(v["events"][1]["detail"]["code"], "file_too_large");
        assert_eq!(v["events"].as_array().unwrap().len(), 2);
        assert_eq!(v["events_dropped"], 3);
        assert_eq!(v["created_at"], 5);
        // The record holds no lists any more.
        let raw =
            f.db.get(Tree::Calls, &scoped(&f.actor.account_id, "call-1"))
                .unwrap()
                .unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert!(
            raw.get("link_ids").is_none() && raw.get("events").is_none(),
            "{raw}"
        );

        // Once: nothing moves again, with the marker or without it.
        let reopened = SledStore::new(f.db.clone(), Default::default());
        assert_eq!(reopened.migrate_calls().unwrap(), 0);
        assert_eq!(sled(&f).migrate_calls().unwrap(), 0);
        assert_eq!(view(&f, "call-1").await, v);
    }

    #[tokio::test]
    async fn a_moved_call_carries_on_where_it_was() {
        let f = fixture().await;
        let links = legacy_call(&f, "call-1");
        sled(&f).migrate_calls().unwrap();
        // A new link supersedes the active one that was on the list, and comes after it.
        let issued = f
            .svc
            .issue_link(f.actor.clone(), "call-1".into(), None)
            .await
            .unwrap();
        let v = view(&f, "call-1").await;
        let new_id = issued.link.id.as_str();
        assert_eq!(ids(&v, "links"), [&links[0], &links[1], new_id]);
        assert_eq!(v["links"][1]["status"], "superseded");
        assert_eq!(v["links"][2]["status"], "active");
        assert_eq!(ids(&v, "sms")[0], "sms_call-1");
        assert_eq!(ids(&v, "sms").len(), 2);
        // Events go on from the kept ones, and the bound still holds.
        let id: LinkId = new_id.parse().unwrap();
        let gw = crate::service::InProcess(f.svc.clone());
        for i in 0..100 {
            let refusal = upgate_gateway::control_link::Refusal {
                code: upgate_gateway::control_link::RefusalCode::TypeNotAllowed,
                display_name: format!("n{i}"),
                size: 1,
                verdict: None,
                message: String::new(),
                lang: String::new(),
            };
            upgate_gateway::control_link::ControlLink::refused(&gw, &id, refusal).await;
        }
        let v = view(&f, "call-1").await;
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 100);
        assert_eq!(v["events_dropped"], 3 + 2);
        assert_eq!(events[0]["detail"]["name"], "n0");
        assert_eq!(events[99]["detail"]["name"], "n99");
    }

    #[tokio::test]
    async fn issuing_a_link_writes_as_much_on_an_old_call_as_on_a_new_one() {
        let f = fixture().await;
        let input = || {
            serde_json::from_value(json!({"assistant_id": "asst", "caller_number": "+14155550123"})).unwrap()
        };
        f.svc.put_call(&f.actor, "call-1", input()).await.unwrap();
        let mut written = Vec::new();
        for _ in 0..60 {
            let before = f.db.bytes.load(Ordering::SeqCst);
            f.svc
                .issue_link(f.actor.clone(), "call-1".into(), None)
                .await
                .unwrap();
            written.push(f.db.bytes.load(Ordering::SeqCst) - before);
        }
        // The first link supersedes nothing; every later one supersedes exactly one. What
        // may grow is the decimal width of numbers: a few event ids (a link's three events
        // and the account's next id) went from one digit to three by link 60.
        let (second, last) = (written[1], written[59]);
        assert!(last <= second + 24, "link 2 wrote {second} bytes, link 60 {last}");
        assert_eq!(view(&f, "call-1").await["links"].as_array().unwrap().len(), 60);
    }
}
