//! Calls: created by the voice platform with its own id, gathering links, messages, files and
//! events under its key prefix (see `model::Call`).

use serde::Deserialize;
use serde_json::{json, Value};

use super::ServiceError;
use super::{call_prefix, decode, get, put, scoped, Actor, Service};
use crate::db::Tree;
use crate::ids::{is_e164, is_external_id};
use crate::model::{Call, CallEvent, FileRecord, Link, SmsMessage};
use upgate_gateway::sys::now;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallInput {
    pub assistant_id: String,
    pub caller_number: String,
}

impl Service {
    /// Creates the call, or updates its assistant and number. Returns whether it was created.
    pub fn put_call(
        &self,
        actor: &Actor,
        call_id: &str,
        input: CallInput,
    ) -> Result<(Call, bool), ServiceError> {
        if !is_e164(&input.caller_number) {
            return Err(ServiceError::InvalidPhoneNumber);
        }
        if !is_external_id(&input.assistant_id) {
            return Err(ServiceError::InvalidId("assistant_id"));
        }
        self.assistant(&actor.account_id, &input.assistant_id)
            .map_err(|e| match e {
                ServiceError::NotFound(_) => ServiceError::UnknownAssistant,
                other => other,
            })?;
        let key = scoped(&actor.account_id, call_id);
        let w = self.write_lock();
        let existing: Option<Call> = get(&*self.db, Tree::Calls, &key)?;
        let created = existing.is_none();
        let call = match existing {
            Some(mut call) => {
                call.assistant_id = input.assistant_id;
                call.caller_number = input.caller_number;
                call
            }
            None => Call {
                account_id: actor.account_id.clone(),
                id: call_id.into(),
                assistant_id: input.assistant_id,
                caller_number: input.caller_number,
                created_at: now(),
                events_next: 0,
                events_dropped: 0,
            },
        };
        self.commit(w, vec![put(Tree::Calls, key, &call)])?.wait()?;
        Ok((call, created))
    }

    pub fn call(&self, account_id: &str, call_id: &str) -> Result<Call, ServiceError> {
        get(&*self.db, Tree::Calls, &scoped(account_id, call_id))?.ok_or(ServiceError::NotFound("call"))
    }

    /// Adds to each link of a call view how many uploads are in flight on it now, so staff
    /// (and the assistant on the line) can tell "uploading now" from "nothing sent yet".
    pub async fn add_uploads_in_flight(&self, view: &mut Value) -> Result<(), ServiceError> {
        let t = now();
        if let Some(links) = view.get_mut("links").and_then(Value::as_array_mut) {
            for link in links {
                let id = link["id"].as_str().unwrap_or_default().to_string();
                let n = self.uploads_in_flight(&id, t).await?;
                link["uploads_in_flight"] = n.into();
            }
        }
        Ok(())
    }

    /// The call details page's data: links with their state, messages, files, events, each
    /// in the order it came.
    pub fn call_view(&self, call: &Call) -> Result<Value, ServiceError> {
        let t = now();
        let prefix = call_prefix(&call.account_id, &call.id);
        let mut links = Vec::new();
        for (_, id) in self.db.scan_prefix(Tree::CallLinks, &prefix)? {
            if let Some(link) = get::<Link>(&*self.db, Tree::Links, &id)? {
                links.push(link_json(&link, t));
            }
        }
        let mut sms = Vec::new();
        for (_, id) in self.db.scan_prefix(Tree::CallSms, &prefix)? {
            if let Some(m) = get::<SmsMessage>(&*self.db, Tree::Sms, &id)? {
                sms.push(sms_json(&m));
            }
        }
        let mut files = Vec::new();
        for (_, id) in self.db.scan_prefix(Tree::CallFiles, &prefix)? {
            if let Some(f) = get::<FileRecord>(&*self.db, Tree::Files, &id)? {
                files.push(file_json(&f));
            }
        }
        let events = self
            .db
            .scan_prefix(Tree::CallEvents, &prefix)?
            .into_iter()
            .map(|(_, v)| decode::<CallEvent>(Tree::CallEvents, &v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({
            "id": call.id,
            "assistant_id": call.assistant_id,
            "caller_number": call.caller_number,
            "created_at": call.created_at,
            "links": links,
            "sms": sms,
            "files": files,
            "events": events,
            "events_dropped": call.events_dropped,
        }))
    }
}

pub fn link_json(link: &Link, now: u64) -> Value {
    json!({
        "id": link.id,
        "call_id": link.call_id,
        "status": link.state_at(now).as_str(),
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "files_received": link.files_received,
        "max_files": link.max_files,
        "ended_at": link.ended_at,
    })
}

pub fn sms_json(m: &SmsMessage) -> Value {
    json!({
        "id": m.id,
        "link_id": m.link_id,
        "to": m.to,
        "status": m.status,
        "provider": m.provider,
        "provider_id": m.provider_id,
        "error": m.error,
        "encoding": m.encoding,
        "segments": m.segments,
        "created_at": m.created_at,
    })
}

pub fn file_json(f: &FileRecord) -> Value {
    json!({
        "id": f.id,
        "call_id": f.call_id,
        "link_id": f.link_id,
        "contact": f.contact,
        "name": f.name,
        "type": f.kind,
        "size": f.size,
        "sha256": f.sha256,
        "scan": f.scan,
        "received_at": f.received_at,
    })
}
