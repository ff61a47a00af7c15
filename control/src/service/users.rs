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
use crate::model::{Role, Session, SigninLink, User};
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

    pub async fn users(&self, account_id: &str) -> Result<Vec<User>, ServiceError> {
        Ok(self.repos.users.users(account_id).await?)
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
        let hash = self.hash_password(new_password).await?;
        let link = self
            .repos
            .users
            .take_signin_link(&token_hash(token))
            .await?
            .filter(|l| now() < l.expires_at)
            .ok_or(UserError::SigninLinkInvalid)?;
        let mut user = self.user(&link.account_id, &link.user_id).await?;
        if user.disabled_at.is_some() {
            return Err(UserError::SigninLinkInvalid.into());
        }
        user.password_hash = Some(hash);
        let audit = AuditNote {
            account_id: user.account_id.clone(),
            actor: user.id.clone(),
            action: "user.password_set",
            target: user.id.clone(),
            detail: json!({}),
        };
        self.repos.users.put_user(&user, Some(audit)).await?;
        self.start_session(user, agent, "signin_link").await
    }

    async fn hash_password(&self, password: &str) -> Result<String, ServiceError> {
        let password = password.to_string();
        tokio::task::spawn_blocking(move || password::hash(&password))
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
        let blocked = limits
            .by_user
            .retry_after(&email)
            .or_else(|| limits.by_address.retry_after(&attempt.address));
        if let Some(wait) = blocked {
            return Err(UserError::RateLimited {
                wait: wait.as_secs().max(1),
            }
            .into());
        }
        let user = match email.is_empty() {
            true => None,
            false => self.repos.users.user_by_email(&email).await?,
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let password = attempt.password.to_string();
        let matches = tokio::task::spawn_blocking(move || match stored {
            Some(phc) => password::verify(&phc, &password),
            None => {
                password::verify(password::decoy(), &password);
                false
            }
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let Some(mut user) = user.filter(|u| matches && u.disabled_at.is_none()) else {
            let user = self.repos.users.user_by_email(&email).await?;
            let err = UserError::SignInRefused;
            return Err(self
                .signin_failed(&email, attempt.address, user.as_ref(), "password", err)
                .await);
        };
        if let Some(secret) = user.totp_secret.clone() {
            if attempt.code.trim().is_empty() {
                return Err(UserError::CodeNeeded.into());
            }
            match totp::verify(&secret, attempt.code, now()) {
                Some(step) if user.totp_last_step.is_none_or(|last| step > last) => {
                    user.totp_last_step = Some(step);
                    self.repos.users.put_user(&user, None).await?;
                }
                _ => {
                    let err = UserError::CodeWrong;
                    return Err(self
                        .signin_failed(&email, attempt.address, Some(&user), "code", err)
                        .await);
                }
            }
        }
        limits.by_user.forget(&email);
        let method = if user.totp_secret.is_some() {
            "password+totp"
        } else {
            "password"
        };
        self.start_session(user, attempt.agent, method).await
    }

    async fn signin_failed(
        &self,
        email: &str,
        address: IpAddr,
        user: Option<&User>,
        why: &'static str,
        err: UserError,
    ) -> ServiceError {
        self.signin_limits.by_user.failed(email.to_string());
        self.signin_limits.by_address.failed(address);
        self.metrics.console_sign_in_failures.inc();
        if let Some(user) = user {
            let note = AuditNote {
                account_id: user.account_id.clone(),
                actor: user.id.clone(),
                action: "user.sign_in_failed",
                target: user.id.clone(),
                detail: json!({"failed": why}),
            };
            if let Err(e) = self.repos.audit.append(note).await {
                return e.into();
            }
        }
        err.into()
    }

    /// The session and its user for a cookie's secret, if it is active and the user is not
    /// disabled; its use is recorded (to the minute).
    pub async fn session(&self, secret: &str) -> Result<Option<(Session, User)>, ServiceError> {
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
        if t >= session.last_seen_at + SESSION_TOUCH_EVERY {
            self.repos.users.touch_session(&hash, t).await?;
        }
        Ok(Some((session, user)))
    }

    pub async fn sessions(&self, user: &User) -> Result<Vec<Session>, ServiceError> {
        Ok(self.repos.users.sessions(&user.account_id, &user.id).await?)
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

    /// Disables another user of the actor's account: their sessions stop working at once
    /// (every request checks the user), and they cannot sign in again.
    pub async fn disable_user(&self, actor: &Actor, user_id: &str) -> Result<User, ServiceError> {
        let mut user = self.user(&actor.account_id, user_id).await?;
        if user.disabled_at.is_none() {
            user.disabled_at = Some(now());
            let audit = actor.note("user.disable", &user.id, json!({"role": user.role.as_str()}));
            self.repos.users.put_user(&user, Some(audit)).await?;
        }
        Ok(user)
    }

    /// Offers a new TOTP secret to the user (kept pending until a code from it is shown).
    pub async fn totp_begin(&self, user: &User) -> Result<String, ServiceError> {
        let mut user = user.clone();
        let secret = totp::new_secret();
        user.totp_pending = Some(secret.clone());
        self.repos.users.put_user(&user, None).await?;
        Ok(secret)
    }

    /// Turns the pending secret on, if `code` is right for it.
    pub async fn totp_confirm(&self, user: &User, code: &str) -> Result<(), ServiceError> {
        let mut user = self.user(&user.account_id, &user.id).await?;
        let secret = user.totp_pending.clone().ok_or(UserError::CodeWrong)?;
        let step = totp::verify(&secret, code, now()).ok_or(UserError::CodeWrong)?;
        user.totp_secret = Some(secret);
        user.totp_pending = None;
        user.totp_last_step = Some(step);
        let audit = AuditNote {
            account_id: user.account_id.clone(),
            actor: user.id.clone(),
            action: "user.totp_enabled",
            target: user.id.clone(),
            detail: json!({}),
        };
        self.repos.users.put_user(&user, Some(audit)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
