//! Calls: created by the voice platform with its own id, gathering links, messages, files and
//! events under its key prefix (see `model::Call`).

use serde::Deserialize;

use super::{Actor, CallError, Service, ServiceError};
use crate::ids::{is_e164, is_external_id};
use crate::model::{Call, CallEvent, FileRecord, Link, SmsMessage};
use crate::repo::Gathered;
use upgate_gateway::sys::now;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallInput {
    pub assistant_id: String,
    pub caller_number: String,
}

impl Service {
    /// Creates the call, or updates its assistant and number. Returns whether it was created.
    pub async fn put_call(
        &self,
        actor: &Actor,
        call_id: &str,
        input: CallInput,
    ) -> Result<(Call, bool), ServiceError> {
        if !is_e164(&input.caller_number) {
            return Err(CallError::InvalidPhoneNumber.into());
        }
        if !is_external_id(&input.assistant_id) {
            return Err(CallError::InvalidId("assistant_id").into());
        }
        self.assistant(&actor.account_id, &input.assistant_id)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound(_) => CallError::UnknownAssistant.into(),
                other => other,
            })?;
        let call = Call {
            account_id: actor.account_id.clone(),
            id: call_id.into(),
            assistant_id: input.assistant_id,
            caller_number: input.caller_number,
            created_at: now(),
            events_next: 0,
            events_dropped: 0,
        };
        Ok(self.repos.calls.put_call(call).await?)
    }

    pub async fn call(&self, account_id: &str, call_id: &str) -> Result<Call, ServiceError> {
        self.repos
            .calls
            .call(account_id, call_id)
            .await?
            .ok_or(ServiceError::NotFound("call"))
    }

    /// Fills in how many uploads are in flight on each of the call's links now, so staff
    /// (and the assistant on the line) can tell "uploading now" from "nothing sent yet".
    pub async fn add_uploads_in_flight(&self, details: &mut CallDetails) -> Result<(), ServiceError> {
        let t = now();
        for link in &details.links {
            let n = self.uploads_in_flight(&link.id, t).await?;
            details.uploads_in_flight.insert(link.id.clone(), n);
        }
        Ok(())
    }

    /// The call details: its links, messages, files and events, each in the order it came.
    pub async fn call_details(&self, call: &Call) -> Result<CallDetails, ServiceError> {
        let Gathered {
            links,
            sms,
            files,
            events,
        } = self.repos.calls.gathered(call).await?;
        Ok(CallDetails {
            call: call.clone(),
            links,
            sms,
            files,
            events,
            uploads_in_flight: Default::default(),
        })
    }
}

/// A call and everything it gathered.
#[derive(Debug, Clone)]
pub struct CallDetails {
    pub call: Call,
    pub links: Vec<Link>,
    pub sms: Vec<SmsMessage>,
    pub files: Vec<FileRecord>,
    pub events: Vec<CallEvent>,
    /// Uploads running now, by link id (filled by `add_uploads_in_flight`).
    pub uploads_in_flight: std::collections::HashMap<String, u32>,
}
