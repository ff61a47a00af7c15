//! API tokens: created with a role and, if wanted, a name and an expiry; listed and revoked
//! by id within their account. Every request reads the token's record, so a revocation or an
//! expiry holds at once, in every process that shares the store.

use serde_json::json;

use super::{Actor, Service, ServiceError, TokenError};
use crate::hidden_chars::{code_point, first_hidden};
use crate::ids::{is_own_id, new_id};
use crate::model::{ApiToken, Role, TokenStatus};
use crate::repo::lists::Page;
use crate::repo::AuditNote;
use upgate_gateway::sys::now;

/// `last_used_at` is written at most this often per token (seconds): a busy integration
/// costs one store write a minute, not one per request.
pub const LAST_USED_EVERY: u64 = 60;
/// The longest expiry a token can be given: ten years.
pub const EXPIRES_IN_MAX: u64 = 10 * 365 * 24 * 3600;
pub const NAME_MAX_CHARS: usize = 100;

/// What a new token gets besides its role.
#[derive(Debug, Default, Clone)]
pub struct NewToken {
    pub name: Option<String>,
    /// Seconds from now; `None` never expires (or expires at `not_after`).
    pub expires_in: Option<u64>,
    /// The creating token's own expiry: a token made through the API cannot outlive the
    /// token that made it, or a short-lived admin token could mint a permanent one.
    pub not_after: Option<u64>,
}

/// Why a bearer token was refused. Every reason gets the same 401; the request log tells
/// them apart, so a revoked token still in use somewhere shows up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not `upg_` and a plausible length: no lookup was made.
    Malformed,
    /// No token with this hash.
    Unknown,
    Revoked {
        token_id: String,
        account_id: String,
    },
    Expired {
        token_id: String,
        account_id: String,
    },
}

impl Refused {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refused::Malformed => "malformed",
            Refused::Unknown => "unknown",
            Refused::Revoked { .. } => "revoked",
            Refused::Expired { .. } => "expired",
        }
    }
}

/// Is a `last_used_at` of `last` stale enough at `now` to be written again?
pub fn last_used_due(last: Option<u64>, now: u64) -> bool {
    last.is_none_or(|t| now >= t.saturating_add(LAST_USED_EVERY))
}

fn check_name(name: Option<String>) -> Result<Option<String>, ServiceError> {
    let Some(name) = name else { return Ok(None) };
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > NAME_MAX_CHARS {
        return Err(TokenError::InvalidName {
            detail: format!("A token name is 1-{NAME_MAX_CHARS} characters."),
        }
        .into());
    }
    if let Some(c) = first_hidden(trimmed) {
        return Err(TokenError::InvalidName {
            detail: format!(
                "A token name cannot hold control, format or invisible characters ({}).",
                code_point(c)
            ),
        }
        .into());
    }
    Ok(Some(trimmed.to_string()))
}

impl Service {
    /// Creates a token and returns `(record, token)`; the token is shown once and only its
    /// hash is kept.
    pub async fn create_token(
        &self,
        account_id: &str,
        role: Role,
        new: NewToken,
        actor: &str,
    ) -> Result<(ApiToken, String), ServiceError> {
        let name = check_name(new.name)?;
        if let Some(secs) = new.expires_in {
            if !(1..=EXPIRES_IN_MAX).contains(&secs) {
                return Err(TokenError::InvalidExpiry {
                    detail: format!("A token expires 1 to {EXPIRES_IN_MAX} seconds (ten years) from now."),
                }
                .into());
            }
        }
        let t = now();
        let expires_at = match (new.expires_in.map(|s| t + s), new.not_after) {
            (Some(asked), Some(limit)) if asked > limit => {
                return Err(TokenError::InvalidExpiry {
                    detail: format!(
                        "A token cannot outlive the token that creates it: expires_in_seconds is at most {}.",
                        limit.saturating_sub(t)
                    ),
                }
                .into());
            }
            (Some(asked), _) => Some(asked),
            (None, limit) => limit,
        };
        if self.account(account_id).await?.is_none() {
            return Err(ServiceError::NotFound("account"));
        }
        let secret: [u8; 32] = upgate_gateway::sys::random().map_err(|_| ServiceError::NoRandomness)?;
        let token = format!(
            "upg_{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret)
        );
        let record = ApiToken {
            id: new_id("tok"),
            account_id: account_id.into(),
            role,
            hash: super::token_hash(&token),
            created_at: t,
            name,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let audit = AuditNote {
            account_id: account_id.into(),
            actor: actor.into(),
            action: "token.create",
            target: record.id.clone(),
            detail: json!({"role": role.as_str(), "expires_at": record.expires_at}),
        };
        self.repos.tokens.create_token(&record, audit).await?;
        Ok((record, token))
    }

    /// The actor behind a bearer token, or why there is none.
    pub async fn authenticate(&self, token: &str) -> Result<Result<Actor, Refused>, ServiceError> {
        if !token.starts_with("upg_") || token.len() > 128 {
            return Ok(Err(Refused::Malformed));
        }
        let hash = super::token_hash(token);
        let Some(record) = self.repos.tokens.token_by_hash(&hash).await? else {
            return Ok(Err(Refused::Unknown));
        };
        // The lookup is by hash (nothing secret leaks through its timing); the compare is
        // constant time anyway, as every secret comparison here is.
        if !upgate_gateway::sys::secrets_equal(record.hash.as_bytes(), hash.as_bytes()) {
            return Ok(Err(Refused::Unknown));
        }
        let t = now();
        let ids = || (record.id.clone(), record.account_id.clone());
        match record.status_at(t) {
            TokenStatus::Revoked => {
                let (token_id, account_id) = ids();
                return Ok(Err(Refused::Revoked { token_id, account_id }));
            }
            TokenStatus::Expired => {
                let (token_id, account_id) = ids();
                return Ok(Err(Refused::Expired { token_id, account_id }));
            }
            TokenStatus::Active => {}
        }
        if last_used_due(record.last_used_at, t) {
            // A hint to the minute: not waited for durability (the next flush, any writer's
            // or the store's own, covers it), and a failure never fails the request.
            if let Err(e) = self.repos.tokens.touch(&hash, t).await {
                tracing::warn!(error = %e, "could not record when a token was last used");
            }
        }
        Ok(Ok(Actor {
            account_id: record.account_id,
            role: record.role,
            token_id: record.id,
            expires_at: record.expires_at,
        }))
    }

    /// The account's tokens, oldest first, revoked and expired ones included.
    pub async fn tokens(&self, account_id: &str) -> Result<Vec<ApiToken>, ServiceError> {
        Ok(self.repos.tokens.tokens(account_id).await?)
    }

    /// A page of the account's tokens, by id.
    pub async fn tokens_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<ApiToken>, ServiceError> {
        Ok(self.repos.lists.tokens_page(account_id, before, limit).await?)
    }

    /// A token of this account; another account's token is "not found".
    pub async fn token(&self, account_id: &str, token_id: &str) -> Result<ApiToken, ServiceError> {
        if !is_own_id(token_id, "tok") {
            return Err(ServiceError::NotFound("token"));
        }
        self.repos
            .tokens
            .token(account_id, token_id)
            .await?
            .ok_or(ServiceError::NotFound("token"))
    }

    /// Revokes a token of the account. Revoking it again changes nothing and is no error.
    pub async fn revoke_token(
        &self,
        actor: &str,
        account_id: &str,
        token_id: &str,
    ) -> Result<ApiToken, ServiceError> {
        if !is_own_id(token_id, "tok") {
            return Err(ServiceError::NotFound("token"));
        }
        let audit = AuditNote {
            account_id: account_id.into(),
            actor: actor.into(),
            action: "token.revoke",
            target: token_id.into(),
            detail: json!({}),
        };
        self.repos
            .tokens
            .revoke_token(account_id, token_id, now(), audit)
            .await?
            .ok_or(ServiceError::NotFound("token"))
    }

    /// The operator names a token by id alone; find its account first.
    pub async fn revoke_token_by_operator(&self, token_id: &str) -> Result<ApiToken, ServiceError> {
        if !is_own_id(token_id, "tok") {
            return Err(ServiceError::NotFound("token"));
        }
        let account = self
            .repos
            .tokens
            .token_account(token_id)
            .await?
            .ok_or(ServiceError::NotFound("token"))?;
        self.revoke_token("operator", &account, token_id).await
    }
}

#[cfg(test)]
mod tests;
