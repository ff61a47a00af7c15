//! Console users, their sessions and sign-in links. Every write that says who did what
//! carries its audit entry into the same transaction. Durable when they return, except
//! `touch_session`.

use async_trait::async_trait;

use super::{AuditNote, RepoError};
use crate::model::{Session, SigninLink, User, UserChange};

/// How long an ended session stays listed: 30 days.
pub const SESSIONS_KEPT_FOR: u64 = 30 * 24 * 3600;

#[async_trait]
pub trait UserRepo: Send + Sync + 'static {
    /// Stores a new user, and a sign-in link for them; `false` (nothing written) when the
    /// email is taken.
    async fn create_user(
        &self,
        user: &User,
        link_hash: &str,
        link: &SigninLink,
        audit: AuditNote,
    ) -> Result<bool, RepoError>;

    async fn user(&self, account_id: &str, user_id: &str) -> Result<Option<User>, RepoError>;

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, RepoError>;

    /// The account's users, oldest first.
    async fn users(&self, account_id: &str) -> Result<Vec<User>, RepoError>;

    /// Applies `change` to the user as stored now, with its audit entry, in one step; the
    /// user after it, or `None` when there is no such user or the change's check refused it.
    async fn update_user(
        &self,
        account_id: &str,
        user_id: &str,
        change: UserChange,
        audit: Option<AuditNote>,
    ) -> Result<Option<User>, RepoError>;

    /// The link, left in place (to check it before the slow work of using it).
    async fn signin_link(&self, hash: &str) -> Result<Option<SigninLink>, RepoError>;

    /// Takes the link: returns it and deletes it in one step, so it works once.
    async fn take_signin_link(&self, hash: &str) -> Result<Option<SigninLink>, RepoError>;

    /// Stores a new session (fresh id and hash) with its audit entry, and forgets the
    /// user's sessions that ended more than [`SESSIONS_KEPT_FOR`] seconds before (the audit
    /// log keeps their story).
    async fn create_session(&self, hash: &str, session: &Session, audit: AuditNote) -> Result<(), RepoError>;

    async fn session(&self, hash: &str) -> Result<Option<Session>, RepoError>;

    /// Records use at `t` (unless revoked). A hint: need not be durable when it returns.
    async fn touch_session(&self, hash: &str, t: u64) -> Result<(), RepoError>;

    /// Revokes the user's session at `t`; one already revoked is returned unchanged.
    async fn revoke_session(
        &self,
        account_id: &str,
        user_id: &str,
        session_id: &str,
        t: u64,
        audit: AuditNote,
    ) -> Result<Option<Session>, RepoError>;
}
