//! Console users: created by the operator or an admin with a one-time sign-in link, signed
//! in with a password (Argon2id) and, where set, a TOTP code; each sign-in a session that
//! ends when idle, at an absolute time, or when revoked. Every sign-in, failure and sign-out
//! is in the account's audit log with the user's id.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;
use upgate_gateway::ratelimit::FailureLimiter;
use upgate_gateway::sys::now;

use super::{token_hash, Actor, Service, ServiceError, UserError};
use crate::ids::{is_own_id, new_id};
use crate::model::{Role, Session, SigninLink, User, UserChange};
use crate::repo::lists::Page;
use crate::repo::AuditNote;
use crate::users::{password, totp};

/// A session ends after this long without use.
pub const SESSION_IDLE_SECONDS: u64 = 30 * 60;
/// And this long after sign-in, whatever the use.
pub const SESSION_MAX_SECONDS: u64 = 12 * 3600;
/// `last_seen_at` is written at most this often per session.
const SESSION_TOUCH_EVERY: u64 = 60;
/// A sign-in link is good for this long, once.
pub const SIGNIN_LINK_SECONDS: u64 = 24 * 3600;
/// Argon2id runs at once (hashes and checks together).
pub(super) const ARGON_AT_ONCE: usize = 2;
/// Failed sign-ins allowed per user, and per address, in each window.
const FAILURES_PER_USER: u32 = 5;
const FAILURES_PER_ADDRESS: u32 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Sign-in failures, counted by the user tried and by the address trying.
pub struct SigninLimits {
    by_user: FailureLimiter<String>,
    by_address: FailureLimiter<IpAddr>,
}

impl Default for SigninLimits {
    fn default() -> Self {
        SigninLimits {
            by_user: FailureLimiter::with_alert(
                FAILURES_PER_USER,
                FAILURE_WINDOW,
                "ALERT: many failed console sign-ins across users: someone may be guessing passwords",
            ),
            by_address: FailureLimiter::with_alert(
                FAILURES_PER_ADDRESS,
                FAILURE_WINDOW,
                "ALERT: many failed console sign-ins across addresses: someone may be guessing passwords",
            ),
        }
    }
}

/// A new user and the link that lets them choose a password (shown once).
pub struct NewUser {
    pub user: User,
    pub signin_url: String,
}

/// What a browser holds after signing in: the cookie's secret (shown once) and the session.
pub struct SignedIn {
    pub secret: String,
    pub session: Session,
    pub user: User,
}

/// Someone trying to sign in.
pub struct SignInAttempt<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub code: &'a str,
    pub address: IpAddr,
    pub agent: &'a str,
}

/// Lowercased and checked: one `@`, a dot in the domain, no spaces or control characters.
pub fn normalize_email(email: &str) -> Result<String, UserError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && email.split('@').count() == 2
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || crate::hidden_chars::is_hidden(c));
    ok.then_some(email).ok_or(UserError::InvalidEmail)
}

fn secret() -> Result<String, ServiceError> {
    let bytes: [u8; 32] = upgate_gateway::sys::random().map_err(|_| ServiceError::NoRandomness)?;
    Ok(hex::encode(bytes))
}

fn shorten(agent: &str) -> String {
    agent.chars().filter(|c| !c.is_control()).take(120).collect()
}

/// The actor a signed-in user acts as: the user's id is what the audit log records.
pub fn actor_for(user: &User, session: &Session) -> Actor {
    Actor {
        account_id: user.account_id.clone(),
        role: user.role,
        token_id: user.id.clone(),
        expires_at: Some(session.expires_at),
    }
}

impl Service {
    /// Where staff open the console (`control.console_url`).
    pub fn set_console_url(&self, url: String) {
        let _ = self.console_url.set(url);
    }

    pub fn console_url(&self) -> &str {
        self.console_url
            .get()
            .map_or("http://127.0.0.1:8080", String::as_str)
    }

    /// A new user with a one-time sign-in link. `by` is the admin inviting them, `None` for
    /// the operator; only the operator grants the reviewer role.
    pub async fn create_user(
        &self,
        account_id: &str,
        email: &str,
        role: Role,
        by: Option<&Actor>,
    ) -> Result<NewUser, ServiceError> {
        let email = normalize_email(email)?;
        if self.account(account_id).await?.is_none() {
            return Err(ServiceError::NotFound("account"));
        }
        if by.is_some() && role == Role::Reviewer {
            return Err(UserError::ReviewerByOperator.into());
        }
        let t = now();
        let user = User {
            id: new_id("usr"),
            account_id: account_id.into(),
            email,
            role,
            password_hash: None,
            totp_secret: None,
            totp_pending: None,
            totp_last_step: None,
            created_at: t,
            created_by: by.map_or_else(|| "operator".into(), |a| a.token_id.clone()),
            disabled_at: None,
        };
        let token = secret()?;
        let link = SigninLink {
            account_id: account_id.into(),
            user_id: user.id.clone(),
            expires_at: t + SIGNIN_LINK_SECONDS,
        };
        let audit = AuditNote {
            account_id: account_id.into(),
            actor: user.created_by.clone(),
            action: "user.create",
            target: user.id.clone(),
            detail: json!({"role": role.as_str()}),
        };
        if !self
            .repos
            .users
            .create_user(&user, &token_hash(&token), &link, audit)
            .await?
        {
            return Err(UserError::EmailTaken.into());
        }
        Ok(NewUser {
            signin_url: format!("{}/console/welcome?token={token}", self.console_url()),
            user,
        })
    }

    /// Every user of the account (the console names actors by their email with it).
    pub async fn users(&self, account_id: &str) -> Result<Vec<User>, ServiceError> {
        Ok(self.repos.users.users(account_id).await?)
    }

    /// A page of the account's users, disabled ones included.
    pub async fn users_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<User>, ServiceError> {
        Ok(self.repos.lists.users_page(account_id, before, limit).await?)
    }

    pub async fn user(&self, account_id: &str, user_id: &str) -> Result<User, ServiceError> {
        if !is_own_id(user_id, "usr") {
            return Err(ServiceError::NotFound("user"));
        }
        self.repos
            .users
            .user(account_id, user_id)
            .await?
            .ok_or(ServiceError::NotFound("user"))
    }

    /// Sets the password of the link's user and signs them in. The password is checked
    /// before the link is taken, so a refused password leaves the link usable.
    pub async fn redeem_signin_link(
        &self,
        token: &str,
        new_password: &str,
        agent: &str,
    ) -> Result<SignedIn, ServiceError> {
        password::check_new(new_password).map_err(UserError::WeakPassword)?;
        let link_hash = token_hash(token);
        // The link is looked at before the (slow, memory-hungry) hash: a made-up token costs
        // one read, not an Argon2id run.
        let live = |l: &SigninLink| now() < l.expires_at;
        if !self
            .repos
            .users
            .signin_link(&link_hash)
            .await?
            .is_some_and(|l| live(&l))
        {
            return Err(UserError::SigninLinkInvalid.into());
        }
        let hash = self.hash_password(new_password).await?;
        let link = self
            .repos
            .users
            .take_signin_link(&link_hash)
            .await?
            .filter(live)
            .ok_or(UserError::SigninLinkInvalid)?;
        let audit = AuditNote {
            account_id: link.account_id.clone(),
            actor: link.user_id.clone(),
            action: "user.password_set",
            target: link.user_id.clone(),
            detail: json!({}),
        };
        let user = self
            .repos
            .users
            .update_user(
                &link.account_id,
                &link.user_id,
                UserChange::Password(hash),
                Some(audit),
            )
            .await?
            .ok_or(UserError::SigninLinkInvalid)?;
        self.start_session(user, agent, "signin_link").await
    }

    async fn hash_password(&self, password: &str) -> Result<String, ServiceError> {
        let password = password.to_string();
        self.argon(move || password::hash(&password)).await
    }

    /// Runs an Argon2id hash or check on the blocking pool, at most `ARGON_AT_ONCE` at a time:
    /// each takes 19 MiB and a core for tens of milliseconds, and the pool is the uploads' too.
    async fn argon<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let _slot = self
            .argon_slots
            .acquire()
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.argon_runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    async fn start_session(&self, user: User, agent: &str, method: &str) -> Result<SignedIn, ServiceError> {
        let t = now();
        let secret = secret()?;
        let session = Session {
            id: new_id("ses"),
            account_id: user.account_id.clone(),
            user_id: user.id.clone(),
            created_at: t,
            last_seen_at: t,
            expires_at: t + SESSION_MAX_SECONDS,
            revoked_at: None,
            csrf: self::secret()?,
            agent: shorten(agent),
        };
        let audit = AuditNote {
            account_id: user.account_id.clone(),
            actor: user.id.clone(),
            action: "user.sign_in",
            target: session.id.clone(),
            detail: json!({"method": method, "role": user.role.as_str()}),
        };
        self.repos
            .users
            .create_session(&token_hash(&secret), &session, audit)
            .await?;
        Ok(SignedIn {
            secret,
            session,
            user,
        })
    }

    /// Signs a person in, or says why not (one answer for every wrong credential). Failures
    /// count against the user tried and the address; past either budget, no password is
    /// even checked.
    pub async fn sign_in(&self, attempt: SignInAttempt<'_>) -> Result<SignedIn, ServiceError> {
        let email = normalize_email(attempt.email).unwrap_or_default();
        let limits = &self.signin_limits;
        // Counted before the check and given back on success: tries sent at once cannot all
        // pass the budget check before the first failure is counted.
        let limited = |wait: Duration| {
            ServiceError::from(UserError::RateLimited {
                wait: wait.as_secs().max(1),
            })
        };
        limits.by_user.charge(email.clone()).map_err(limited)?;
        if let Err(wait) = limits.by_address.charge(attempt.address) {
            limits.by_user.undo(&email);
            return Err(limited(wait));
        }
        let user = match email.is_empty() {
            true => None,
            false => self.repos.users.user_by_email(&email).await?,
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let password = attempt.password.to_string();
        let matches = self
            .argon(move || match stored {
                Some(phc) => password::verify(&phc, &password),
                None => {
                    password::verify(password::decoy(), &password);
                    false
                }
            })
            .await?;
        let Some(user) = user.filter(|u| matches && u.disabled_at.is_none()) else {
            let user = self.repos.users.user_by_email(&email).await?;
            self.signin_failed(user.as_ref(), "password");
            return Err(UserError::SignInRefused.into());
        };
        let user = match user.totp_secret.clone() {
            None => user,
            Some(_) if attempt.code.trim().is_empty() => {
                // The password was right: that try is not held against them.
                limits.by_user.undo(&email);
                limits.by_address.undo(&attempt.address);
                return Err(UserError::CodeNeeded.into());
            }
            Some(secret) => {
                // The step is taken in the store, under its lock: of two tries with one code,
                // one wins; a user disabled meanwhile is refused.
                let used = match totp::verify(&secret, attempt.code, now()) {
                    Some(step) => {
                        self.repos
                            .users
                            .update_user(&user.account_id, &user.id, UserChange::TotpUse(step), None)
                            .await?
                    }
                    None => None,
                };
                match used {
                    Some(user) => user,
                    None => {
                        self.signin_failed(Some(&user), "code");
                        return Err(UserError::CodeWrong.into());
                    }
                }
            }
        };
        limits.by_user.forget(&email);
        limits.by_address.undo(&attempt.address);
        let method = if user.totp_secret.is_some() {
            "password+totp"
        } else {
            "password"
        };
        self.start_session(user, attempt.agent, method).await
    }

    /// A refused sign-in: the metric, and the user's audit entry when the email is one.
    /// The entry is written beside the answer, not before it: waiting for it would make a
    /// known email slower to refuse than an unknown one.
    fn signin_failed(&self, user: Option<&User>, why: &'static str) {
        self.metrics.console_sign_in_failures.inc();
        if let Some(user) = user {
            let note = AuditNote {
                account_id: user.account_id.clone(),
                actor: user.id.clone(),
                action: "user.sign_in_failed",
                target: user.id.clone(),
                detail: json!({"failed": why}),
            };
            let audit = self.repos.audit.clone();
            tokio::spawn(async move {
                if let Err(e) = audit.append(note).await {
                    tracing::error!(error = %e, "a failed sign-in could not be audited");
                }
            });
        }
    }

    /// The session and its user for a cookie's secret, if it is active and the user is not
    /// disabled; its use is recorded (to the minute).
    pub async fn session(&self, secret: &str) -> Result<Option<(Session, User)>, ServiceError> {
        self.session_checked(secret, true).await
    }

    /// Whether the session is still active, without counting this as its use: what a live
    /// page's event stream asks at each heartbeat (an open page is not someone at it).
    pub async fn session_still_valid(&self, secret: &str) -> Result<bool, ServiceError> {
        Ok(self.session_checked(secret, false).await?.is_some())
    }

    async fn session_checked(
        &self,
        secret: &str,
        used: bool,
    ) -> Result<Option<(Session, User)>, ServiceError> {
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let hash = token_hash(secret);
        let t = now();
        let Some(session) = self.repos.users.session(&hash).await? else {
            return Ok(None);
        };
        if !session.active_at(t, SESSION_IDLE_SECONDS) {
            return Ok(None);
        }
        let Some(user) = self
            .repos
            .users
            .user(&session.account_id, &session.user_id)
            .await?
        else {
            return Ok(None);
        };
        if user.disabled_at.is_some() {
            return Ok(None);
        }
        if used && t >= session.last_seen_at + SESSION_TOUCH_EVERY {
            self.repos.users.touch_session(&hash, t).await?;
        }
        Ok(Some((session, user)))
    }

    /// A page of a user's sessions, ended ones included (for 30 days); an id that is not
    /// one of the account's users is "not found".
    pub async fn sessions(
        &self,
        account_id: &str,
        user_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<Session>, ServiceError> {
        let user = self.user(account_id, user_id).await?;
        Ok(self
            .repos
            .lists
            .sessions_page(&user.account_id, &user.id, before, limit)
            .await?)
    }

    /// Ends one of the user's own sessions; `signed_out` when it is the one in use.
    pub async fn end_session(
        &self,
        user: &User,
        session_id: &str,
        signed_out: bool,
    ) -> Result<Session, ServiceError> {
        let action = if signed_out {
            "user.sign_out"
        } else {
            "session.revoke"
        };
        let audit = AuditNote {
            account_id: user.account_id.clone(),
            actor: user.id.clone(),
            action,
            target: session_id.into(),
            detail: json!({}),
        };
        self.repos
            .users
            .revoke_session(&user.account_id, &user.id, session_id, now(), audit)
            .await?
            .ok_or(ServiceError::NotFound("session"))
    }

    /// Ends a session of one of the account's users, for whoever may end access (an admin
    /// or a reviewer, in the API). Audited with the actor, naming the user.
    pub async fn revoke_user_session(
        &self,
        actor: &Actor,
        user_id: &str,
        session_id: &str,
    ) -> Result<Session, ServiceError> {
        let user = self.user(&actor.account_id, user_id).await?;
        if !is_own_id(session_id, "ses") {
            return Err(ServiceError::NotFound("session"));
        }
        let audit = actor.note("session.revoke", session_id, json!({"user_id": user.id}));
        self.repos
            .users
            .revoke_session(&user.account_id, &user.id, session_id, now(), audit)
            .await?
            .ok_or(ServiceError::NotFound("session"))
    }

    /// Disables another user of the actor's account: their sessions stop working at once
    /// (every request checks the user), and they cannot sign in again.
    pub async fn disable_user(&self, actor: &Actor, user_id: &str) -> Result<User, ServiceError> {
        let user = self.user(&actor.account_id, user_id).await?;
        let audit = actor.note("user.disable", &user.id, json!({"role": user.role.as_str()}));
        let changed = self
            .repos
            .users
            .update_user(
                &user.account_id,
                &user.id,
                UserChange::Disable(now()),
                Some(audit),
            )
            .await?;
        // Disabled already: nothing to write, and no second entry.
        Ok(changed.unwrap_or(user))
    }

    /// Offers a new TOTP secret to the user (kept pending until a code from it is shown).
    /// Refused once one is on: a session alone must not be able to replace the second
    /// factor and lock its owner out.
    pub async fn totp_begin(&self, user: &User) -> Result<String, ServiceError> {
        let secret = totp::new_secret();
        self.repos
            .users
            .update_user(
                &user.account_id,
                &user.id,
                UserChange::TotpOffer(secret.clone()),
                None,
            )
            .await?
            .ok_or(UserError::CodeWrong)?;
        Ok(secret)
    }

    /// Turns the pending secret on, if `code` is right for it.
    pub async fn totp_confirm(&self, user: &User, code: &str) -> Result<(), ServiceError> {
        let user = self.user(&user.account_id, &user.id).await?;
        let secret = user.totp_pending.clone().ok_or(UserError::CodeWrong)?;
        let step = totp::verify(&secret, code, now()).ok_or(UserError::CodeWrong)?;
        let audit = AuditNote {
            account_id: user.account_id.clone(),
            actor: user.id.clone(),
            action: "user.totp_enabled",
            target: user.id.clone(),
            detail: json!({}),
        };
        self.repos
            .users
            .update_user(
                &user.account_id,
                &user.id,
                UserChange::TotpConfirm { secret, step },
                Some(audit),
            )
            .await?
            .ok_or(UserError::CodeWrong)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
