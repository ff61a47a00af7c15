//! The JSON the control API (and the operator CLI) shows for each domain value. The service
//! returns typed values; this is the one place they take their wire shape.

use serde_json::{json, Value};

use crate::model::{ApiToken, FileRecord, Link, Session, SmsMessage, User};
use crate::service::{AssistantDetails, CallDetails, GatewayCredential, IssuedLink};
use crate::settings;
use upgate_gateway::control_link::LinkState;

pub fn link_json(link: &Link, now: u64) -> Value {
    let state = link.state_at(now);
    // An expired link ended at its expiry, whether or not the sweeper has stored it so yet.
    let ended_at = link
        .ended_at
        .or((state == LinkState::Expired).then_some(link.expires_at));
    json!({
        "id": link.id,
        "call_id": link.call_id,
        "status": state.as_str(),
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "files_received": link.files_received,
        "max_files": link.max_files,
        "ended_at": ended_at,
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
        "delivery": m.delivery,
        "carrier_error": m.carrier_error,
        "delivery_at": m.delivery_at,
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
        "quarantine": f.quarantine,
    })
}

/// The token as listings show it: never the secret, never its hash.
pub fn token_json(t: &ApiToken, now: u64) -> Value {
    json!({
        "id": t.id,
        "role": t.role.as_str(),
        "name": t.name,
        "status": t.status_at(now).as_str(),
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
    })
}

/// A console user as lists show them: never the password's hash or the TOTP secret.
pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "role": u.role.as_str(),
        "status": if u.disabled_at.is_some() { "disabled" } else if u.password_hash.is_none() { "invited" } else { "active" },
        "totp": u.totp_secret.is_some(),
        "created_at": u.created_at,
        "created_by": u.created_by,
        "disabled_at": u.disabled_at,
    })
}

/// A session as lists show it: never its secret or form token.
pub fn session_json(s: &Session, now: u64) -> Value {
    let active = s.active_at(now, crate::service::users::SESSION_IDLE_SECONDS);
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "status": if active { "active" } else if s.revoked_at.is_some() { "revoked" } else { "expired" },
        "created_at": s.created_at,
        "last_seen_at": s.last_seen_at,
        "expires_at": s.expires_at,
        "revoked_at": s.revoked_at,
        "browser": s.agent,
    })
}

/// A link with its URL and the SMS that carried it (issue, resend).
pub fn issued_link_json(issued: &IssuedLink, now: u64) -> Value {
    let mut v = link_json(&issued.link, now);
    v["url"] = json!(issued.url);
    v["sms"] = sms_json(&issued.sms);
    v
}

/// The call details page's data: the call, then what it gathered, each in the order it came.
pub fn call_json(d: &CallDetails, now: u64) -> Value {
    let links: Vec<Value> = d
        .links
        .iter()
        .map(|link| {
            let mut v = link_json(link, now);
            if let Some(n) = d.uploads_in_flight.get(&link.id) {
                v["uploads_in_flight"] = json!(n);
            }
            v
        })
        .collect();
    json!({
        "id": d.call.id,
        "assistant_id": d.call.assistant_id,
        "caller_number": d.call.caller_number,
        "created_at": d.call.created_at,
        "links": links,
        "sms": d.sms.iter().map(sms_json).collect::<Vec<_>>(),
        "files": d.files.iter().map(file_json).collect::<Vec<_>>(),
        "events": d.events,
        "events_dropped": d.call.events_dropped,
    })
}

/// The assistant as the API shows it: settings, availability and the SMS preview.
pub fn assistant_json(d: &AssistantDetails, public_url: &str) -> Value {
    let a = &d.assistant;
    let mut file_upload = serde_json::to_value(&a.file_upload).unwrap_or_default();
    if let Some(obj) = file_upload.as_object_mut() {
        obj.insert("available".into(), json!(d.sms_available));
        obj.insert(
            "unavailable_reason".into(),
            json!(settings::unavailable_reason(d.sms_available)),
        );
    }
    json!({
        "id": a.id,
        "file_upload": file_upload,
        "sms_preview": settings::preview(&a.file_upload.message, public_url),
        "tool": settings::tool_definition(&a.file_upload),
        "updated_at": a.updated_at,
    })
}

/// A gateway credential as listings show it: never the secret, never its hash.
pub fn gateway_credential_json(c: &GatewayCredential) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "created_at": c.created_at,
        "revoked_at": c.revoked_at,
        "state": if c.revoked_at.is_some() { "revoked" } else { "active" },
    })
}
