//! API tokens, found by their hash (every request) and by id within their account (staff
//! listing and revoking them). Writes are durable when they return, except `touch`.

use async_trait::async_trait;

use super::{AuditNote, RepoError};
use crate::model::ApiToken;

#[async_trait]
pub trait TokenRepo: Send + Sync + 'static {
    /// Stores a new token (fresh id and hash).
    async fn create_token(&self, token: &ApiToken, audit: AuditNote) -> Result<(), RepoError>;

    /// The token whose hash this is.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, RepoError>;

    /// Records `t` as the token's last use, unless it is revoked or a use at `t` or later
    /// is recorded. A hint: it need not be durable when this returns.
    async fn touch(&self, hash: &str, t: u64) -> Result<(), RepoError>;

    /// The account's tokens, oldest first, revoked and expired ones included.
    async fn tokens(&self, account_id: &str) -> Result<Vec<ApiToken>, RepoError>;

    /// The account's token by id; another account's is `None`.
    async fn token(&self, account_id: &str, token_id: &str) -> Result<Option<ApiToken>, RepoError>;

    /// Revokes the account's token at `t` and writes `audit` with it; a token already
    /// revoked is returned unchanged and nothing is written.
    async fn revoke_token(
        &self,
        account_id: &str,
        token_id: &str,
        t: u64,
        audit: AuditNote,
    ) -> Result<Option<ApiToken>, RepoError>;

    /// The account a token id belongs to (the operator names tokens by id alone).
    async fn token_account(&self, token_id: &str) -> Result<Option<String>, RepoError>;
}
