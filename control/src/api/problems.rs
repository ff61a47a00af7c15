//! The one place a [`ServiceError`] becomes a problem document: its status, stable code
//! and the sentence the client reads. The control API and the operator CLI both use it.

use http::StatusCode;

use crate::problem::Problem;
use crate::service::{
    AccountError, AssistantError, CallError, FileError, IdempotencyError, LinkError, OperatorError,
    ServiceError, TokenError, WebhookError,
};
use crate::settings;

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Problem {
        use ServiceError as E;
        match e {
            E::Store(e) => Problem::from(e),
            E::NotFound(what) => Problem::not_found(what),
            E::NoRandomness => {
                Problem::unavailable("no_randomness", "The system random generator failed; try again.")
            }
            E::Internal(detail) => {
                tracing::error!(%detail, "internal failure");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something failed on our side.",
                )
            }
            E::Account(e) => account(e),
            E::Assistant(e) => assistant(e),
            E::Call(e) => call(e),
            E::Token(e) => token(e),
            E::Link(e) => link(e),
            E::Idempotency(e) => idempotency(e),
            E::File(e) => file(e),
            E::Operator(e) => operator(e),
            E::Webhook(e) => webhook(e),
            E::User(e) => user(e),
        }
    }
}

fn webhook(e: WebhookError) -> Problem {
    match e {
        WebhookError::InvalidUrl(why) => unprocessable("invalid_webhook_url", why),
        WebhookError::UnknownEventType(kind) => unprocessable(
            "unknown_event_type",
            format!("{kind:?} is not an event type; see the event streams' kinds."),
        ),
        WebhookError::InvalidOverlap => {
            Problem::bad_request("invalid_overlap", "overlap_seconds is from 0 to 604800 (a week).")
        }
        WebhookError::TooMany => Problem::conflict(
            "too_many_webhooks",
            "An account has at most 20 webhook endpoints; delete one first.",
        ),
    }
}

fn account(e: AccountError) -> Problem {
    match e {
        AccountError::InvalidName => Problem::bad_request(
            "invalid_name",
            "Give the account a name of 1-200 characters, without control, format or invisible characters.",
        ),
        AccountError::UnknownPlan { plan, known } => Problem::bad_request(
            "unknown_plan",
            format!("No plan {plan:?}; the config defines: {}.", known.join(", ")),
        ),
    }
}

fn assistant(e: AssistantError) -> Problem {
    let AssistantError::Settings(errors) = e;
    let Some(first) = errors.first() else {
        return unprocessable("invalid_settings", "The settings are not valid.");
    };
    let status = if first.code == "plan_lacks_sms" {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut p = Problem::new(status, first.code, first.detail.clone());
    p.extra = Some(serde_json::json!({ "errors": errors }));
    p
}

fn call(e: CallError) -> Problem {
    match e {
        CallError::InvalidPhoneNumber => unprocessable(
            "invalid_phone_number",
            "caller_number must be in E.164 form, e.g. +14155550123.",
        ),
        CallError::InvalidId(field) => {
            Problem::bad_request("invalid_id", format!("{field} uses 1-128 of A-Z a-z 0-9 . _ : -"))
        }
        CallError::UnknownAssistant => {
            unprocessable("unknown_assistant", "No assistant with that id in this account.")
        }
    }
}

fn token(e: TokenError) -> Problem {
    match e {
        TokenError::InvalidName { detail } => Problem::bad_request("invalid_name", detail),
        TokenError::InvalidExpiry { detail } => Problem::bad_request("invalid_expiry", detail),
    }
}

fn link(e: LinkError) -> Problem {
    match e {
        LinkError::NotActive(state) => {
            Problem::conflict("link_not_active", format!("The link is {}.", state.as_str()))
        }
        LinkError::KeyRetired => Problem::conflict(
            "link_key_retired",
            "This link's signing key was retired; issue a new link.",
        ),
        LinkError::PlanLacksSms => Problem::conflict(
            "plan_lacks_sms",
            settings::unavailable_reason(false).unwrap_or_default(),
        ),
        LinkError::FileUploadDisabled => Problem::conflict(
            "file_upload_disabled",
            "File upload is not enabled for this call's assistant; enable it in the assistant's settings.",
        ),
        LinkError::SmsRateLimited { wait } => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "sms_rate_limited",
                format!("Too many texts to this number or from this account in the last hour; try again in {wait} s."),
            );
            p.extra = Some(serde_json::json!({ "retry_after_seconds": wait }));
            p.with_retry_after(wait)
        }
    }
}

fn idempotency(e: IdempotencyError) -> Problem {
    match e {
        IdempotencyError::InvalidKey => Problem::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key is 1-255 visible ASCII characters.",
        ),
        IdempotencyError::KeyReused => unprocessable(
            "idempotency_key_reused",
            "This Idempotency-Key was used for another request.",
        ),
        IdempotencyError::KeyInUse => Problem::conflict(
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; retry in a moment.",
        ),
    }
}

fn file(e: FileError) -> Problem {
    match e {
        FileError::StorageUnavailable(detail) => {
            tracing::error!(%detail, "storage failure");
            Problem::unavailable("storage_unavailable", "Storage is unavailable; try again.")
        }
        FileError::Integrity => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "file_integrity_failed",
            "The stored file failed its integrity check.",
        ),
        FileError::Shredded => Problem::new(
            StatusCode::GONE,
            "file_shredded",
            "The file's key was destroyed when its account's data was deleted; it can never be read again.",
        ),
    }
}

fn operator(e: OperatorError) -> Problem {
    match e {
        OperatorError::InvalidGatewayName => Problem::bad_request(
            "invalid_name",
            "a gateway name is 1-64 letters, digits, '.', '_' or '-', e.g. gw1",
        ),
        OperatorError::KeyChangeRefused { detail } => Problem::conflict("key_change_refused", detail),
    }
}

fn unprocessable(code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

fn user(e: crate::service::UserError) -> Problem {
    use crate::service::UserError as U;
    let detail = e.to_string();
    match e {
        U::InvalidEmail => {
            Problem::bad_request("invalid_email", "The email address is not one we can send to.")
        }
        U::EmailTaken => Problem::conflict("email_taken", "A user with this email address exists."),
        U::UnknownRole => Problem::bad_request(
            "unknown_role",
            "role is one of admin, integration, reviewer, viewer",
        ),
        U::ReviewerByOperator => Problem::new(
            StatusCode::FORBIDDEN,
            "reviewer_by_operator",
            "Reviewers are granted by the operator (upgate user create).",
        ),
        U::WeakPassword(why) => Problem::bad_request("weak_password", why),
        U::SigninLinkInvalid => Problem::bad_request(
            "signin_link_invalid",
            "The sign-in link is unknown, used or expired.",
        ),
        U::SignInRefused | U::CodeNeeded | U::CodeWrong => {
            Problem::new(StatusCode::UNAUTHORIZED, "sign_in_refused", detail)
        }
        U::RateLimited { wait } => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "sign_in_rate_limited",
            format!("Too many failed sign-ins. Try again in {wait} seconds."),
        ),
    }
}
