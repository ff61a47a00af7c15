//! [`UserRepo`] on the embedded store: `Users` (`account/user`), `UserEmails` (email ->
//! `account/user`), `Sessions` by the secret's SHA-256 with `UserSessions`
//! (`account/user/session` -> hash) to list and revoke them, `SigninLinks` by hash.

use async_trait::async_trait;

use super::sled_keys::{get, put, scoped};
use super::users::{UserRepo, SESSIONS_KEPT_FOR};
use super::{AuditNote, RepoError, SledStore};
use crate::db::{Op, Tree};
use crate::model::{Session, SigninLink, User, UserChange};

fn session_key(s: &Session) -> Vec<u8> {
    scoped(&s.account_id, &format!("{}/{}", s.user_id, s.id))
}

#[async_trait]
impl UserRepo for SledStore {
    async fn create_user(
        &self,
        user: &User,
        link_hash: &str,
        link: &SigninLink,
        audit: AuditNote,
    ) -> Result<bool, RepoError> {
        let durable = {
            let _w = self.lock();
            if self.db.get(Tree::UserEmails, user.email.as_bytes())?.is_some() {
                return Ok(false);
            }
            let key = scoped(&user.account_id, &user.id);
            let mut ops = vec![
                put(Tree::Users, key.clone(), user),
                Op::Put(Tree::UserEmails, user.email.clone().into_bytes(), key),
                put(Tree::SigninLinks, link_hash.as_bytes(), link),
                self.audit(audit)?,
            ];
            // Links nobody used are forgotten at the next invite: there are few (one per
            // invite), so reading them all here costs less than a sweeper.
            let t = upgate_gateway::sys::now();
            for (hash, value) in self.db.scan_prefix(Tree::SigninLinks, b"")? {
                let old: SigninLink = super::sled_keys::decode(Tree::SigninLinks, &value)?;
                if old.expires_at <= t {
                    ops.push(Op::Delete(Tree::SigninLinks, hash));
                }
            }
            self.write(ops)?
        };
        durable.await?;
        Ok(true)
    }

    async fn user(&self, account_id: &str, user_id: &str) -> Result<Option<User>, RepoError> {
        Ok(get(&*self.db, Tree::Users, &scoped(account_id, user_id))?)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, RepoError> {
        let Some(key) = self.db.get(Tree::UserEmails, email.as_bytes())? else {
            return Ok(None);
        };
        Ok(get::<User>(&*self.db, Tree::Users, &key)?.filter(|u| u.email == email))
    }

    async fn users(&self, account_id: &str) -> Result<Vec<User>, RepoError> {
        let mut users = Vec::new();
        for (_, value) in self.db.scan_prefix(Tree::Users, &scoped(account_id, ""))? {
            users.push(super::sled_keys::decode::<User>(Tree::Users, &value)?);
        }
        users.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(users)
    }

    async fn update_user(
        &self,
        account_id: &str,
        user_id: &str,
        change: UserChange,
        audit: Option<AuditNote>,
    ) -> Result<Option<User>, RepoError> {
        let (user, durable) = {
            let _w = self.lock();
            let key = scoped(account_id, user_id);
            let Some(mut user) = get::<User>(&*self.db, Tree::Users, &key)? else {
                return Ok(None);
            };
            if !change.apply(&mut user) {
                return Ok(None);
            }
            let mut ops = vec![put(Tree::Users, key, &user)];
            if let Some(audit) = audit {
                ops.push(self.audit(audit)?);
            }
            (user, self.write(ops)?)
        };
        durable.await?;
        Ok(Some(user))
    }

    async fn signin_link(&self, hash: &str) -> Result<Option<SigninLink>, RepoError> {
        Ok(get(&*self.db, Tree::SigninLinks, hash.as_bytes())?)
    }

    async fn take_signin_link(&self, hash: &str) -> Result<Option<SigninLink>, RepoError> {
        let (link, durable) = {
            let _w = self.lock();
            let Some(link) = get::<SigninLink>(&*self.db, Tree::SigninLinks, hash.as_bytes())? else {
                return Ok(None);
            };
            let durable = self.write(vec![Op::Delete(Tree::SigninLinks, hash.as_bytes().to_vec())])?;
            (link, durable)
        };
        durable.await?;
        Ok(Some(link))
    }

    async fn create_session(&self, hash: &str, session: &Session, audit: AuditNote) -> Result<(), RepoError> {
        let durable = {
            let _w = self.lock();
            let mut ops = vec![
                put(Tree::Sessions, hash.as_bytes(), session),
                Op::Put(Tree::UserSessions, session_key(session), hash.as_bytes().to_vec()),
                self.audit(audit)?,
            ];
            // A user's list stays short without a sweeper: each sign-in forgets the
            // sessions that ended long ago.
            let prefix = scoped(&session.account_id, &format!("{}/", session.user_id));
            let forget_before = session.created_at.saturating_sub(SESSIONS_KEPT_FOR);
            for (key, old_hash) in self.db.scan_prefix(Tree::UserSessions, &prefix)? {
                let Some(old) = get::<Session>(&*self.db, Tree::Sessions, &old_hash)? else {
                    continue;
                };
                if old.revoked_at.unwrap_or(old.expires_at).min(old.expires_at) < forget_before {
                    ops.push(Op::Delete(Tree::UserSessions, key));
                    ops.push(Op::Delete(Tree::Sessions, old_hash));
                }
            }
            self.write(ops)?
        };
        Ok(durable.await?)
    }

    async fn session(&self, hash: &str) -> Result<Option<Session>, RepoError> {
        Ok(get(&*self.db, Tree::Sessions, hash.as_bytes())?)
    }

    async fn touch_session(&self, hash: &str, t: u64) -> Result<(), RepoError> {
        // Read again under the lock, so a revocation that landed meanwhile is not undone.
        let _w = self.lock();
        if let Some(mut s) = get::<Session>(&*self.db, Tree::Sessions, hash.as_bytes())? {
            if s.revoked_at.is_none() && s.last_seen_at < t {
                s.last_seen_at = t;
                self.db.write(vec![put(Tree::Sessions, hash.as_bytes(), &s)])?;
            }
        }
        Ok(())
    }

    async fn revoke_session(
        &self,
        account_id: &str,
        user_id: &str,
        session_id: &str,
        t: u64,
        audit: AuditNote,
    ) -> Result<Option<Session>, RepoError> {
        let (session, durable) = {
            let _w = self.lock();
            let key = scoped(account_id, &format!("{user_id}/{session_id}"));
            let Some(hash) = self.db.get(Tree::UserSessions, &key)? else {
                return Ok(None);
            };
            let Some(mut session) = get::<Session>(&*self.db, Tree::Sessions, &hash)? else {
                return Ok(None);
            };
            if session.revoked_at.is_some() {
                return Ok(Some(session));
            }
            session.revoked_at = Some(t);
            let ops = vec![put(Tree::Sessions, hash, &session), self.audit(audit)?];
            (session, self.write(ops)?)
        };
        durable.await?;
        Ok(Some(session))
    }
}
