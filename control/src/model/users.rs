//! Staff who sign in to the console: users, their sessions, and one-time sign-in links.
//! Passwords are kept as Argon2id hashes; session secrets and sign-in link tokens are kept
//! as SHA-256 hashes, like API tokens: a copy of the store signs no one in.

use serde::{Deserialize, Serialize};

use super::Role;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub account_id: String,
    /// Lowercased; unique across the deployment (it is what a person signs in with).
    pub email: String,
    pub role: Role,
    /// Argon2id PHC string; `None` until the person follows their sign-in link.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// The TOTP secret (base32), once the person has confirmed a code from it.
    #[serde(default)]
    pub totp_secret: Option<String>,
    /// A secret offered at enrolment, not yet confirmed by a code.
    #[serde(default)]
    pub totp_pending: Option<String>,
    /// The last TOTP step accepted: a code is taken once.
    #[serde(default)]
    pub totp_last_step: Option<u64>,
    pub created_at: u64,
    /// "operator" or the user id of the admin who invited them.
    pub created_by: String,
    #[serde(default)]
    pub disabled_at: Option<u64>,
}

impl User {
    /// Reviewers see files and downloads: their accounts must have a second factor.
    pub fn must_enrol_totp(&self) -> bool {
        self.role == Role::Reviewer && self.totp_secret.is_none()
    }
}

/// A signed-in browser. Found by the SHA-256 of its cookie's secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub account_id: String,
    pub user_id: String,
    pub created_at: u64,
    /// Refreshed as the session is used (to the minute); idle expiry counts from it.
    pub last_seen_at: u64,
    /// The absolute end, whatever the use.
    pub expires_at: u64,
    #[serde(default)]
    pub revoked_at: Option<u64>,
    /// The form token (CSRF) every change made through this session must carry.
    pub csrf: String,
    /// The browser, as it named itself (shortened), so people can tell sessions apart.
    #[serde(default)]
    pub agent: String,
}

impl Session {
    pub fn active_at(&self, now: u64, idle_seconds: u64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && now < self.last_seen_at + idle_seconds
    }
}

/// A one-time link that lets a new user choose a password. Found by its token's SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigninLink {
    pub account_id: String,
    pub user_id: String,
    pub expires_at: u64,
}

/// One change to a user, applied by the store under its write lock to the record as it is
/// then (not as a request read it earlier), with the checks that make it safe to race.
#[derive(Debug, Clone)]
pub enum UserChange {
    /// A new password hash (refused for a disabled user).
    Password(String),
    /// A TOTP secret offered for enrolment (refused once one is on).
    TotpOffer(String),
    /// The offered secret turned on, a code at `step` having shown it works (refused unless
    /// that secret is still the one offered).
    TotpConfirm { secret: String, step: u64 },
    /// A sign-in's code at `step` (refused for a disabled user, and unless the step is past
    /// the last one taken: a code works once).
    TotpUse(u64),
    /// Disabled from this second (once).
    Disable(u64),
}

impl UserChange {
    /// Applies the change to `user`; `false` when its check refuses it (nothing changes).
    pub fn apply(&self, user: &mut User) -> bool {
        match self {
            UserChange::Password(hash) if user.disabled_at.is_none() => {
                user.password_hash = Some(hash.clone())
            }
            UserChange::TotpOffer(secret) if user.totp_secret.is_none() => {
                user.totp_pending = Some(secret.clone())
            }
            UserChange::TotpConfirm { secret, step } if user.totp_pending.as_ref() == Some(secret) => {
                user.totp_secret = Some(secret.clone());
                user.totp_pending = None;
                user.totp_last_step = Some(*step);
            }
            UserChange::TotpUse(step)
                if user.disabled_at.is_none() && user.totp_last_step.is_none_or(|last| *step > last) =>
            {
                user.totp_last_step = Some(*step)
            }
            UserChange::Disable(t) if user.disabled_at.is_none() => user.disabled_at = Some(*t),
            _ => return false,
        }
        true
    }
}
