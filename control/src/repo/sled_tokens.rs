//! [`TokenRepo`] on the embedded store: `Tokens` by the token's SHA-256, and `TokenIds`
//! (`account/token id` -> hash) to list and find them by id.

use async_trait::async_trait;

use super::sled_keys::{decode, get, put, scoped};
use super::{AuditNote, RepoError, SledStore, TokenRepo};
use crate::db::{Op, Tree};
use crate::model::ApiToken;

impl SledStore {
    fn token_at(&self, account_id: &str, token_id: &str) -> Result<Option<ApiToken>, RepoError> {
        let Some(hash) = self.db.get(Tree::TokenIds, &scoped(account_id, token_id))? else {
            return Ok(None);
        };
        Ok(get::<ApiToken>(&*self.db, Tree::Tokens, &hash)?
            .filter(|t| t.account_id == account_id && t.id == token_id))
    }

    /// Indexes tokens stored before the id index existed, so they can be listed and revoked.
    /// Does nothing once every token is indexed; returns how many it indexed.
    pub fn index_tokens(&self) -> Result<usize, RepoError> {
        let durable = {
            let _w = self.lock();
            let mut ops = Vec::new();
            for (hash, value) in self.db.scan_prefix(Tree::Tokens, b"")? {
                let record: ApiToken = decode(Tree::Tokens, &value)?;
                let key = scoped(&record.account_id, &record.id);
                if self.db.get(Tree::TokenIds, &key)?.is_none() {
                    ops.push(Op::Put(Tree::TokenIds, key, hash));
                }
            }
            let n = ops.len();
            (n > 0).then(|| self.write(ops)).transpose()?.map(|d| (d, n))
        };
        match durable {
            Some((durable, n)) => {
                durable.wait()?;
                Ok(n)
            }
            None => Ok(0),
        }
    }
}

#[async_trait]
impl TokenRepo for SledStore {
    async fn create_token(&self, token: &ApiToken, audit: AuditNote) -> Result<(), RepoError> {
        let durable = {
            let _w = self.lock();
            let ops = vec![
                put(Tree::Tokens, token.hash.as_bytes(), token),
                Op::Put(
                    Tree::TokenIds,
                    scoped(&token.account_id, &token.id),
                    token.hash.clone().into_bytes(),
                ),
                self.audit(audit)?,
            ];
            self.write(ops)?
        };
        Ok(durable.await?)
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, RepoError> {
        Ok(get(&*self.db, Tree::Tokens, hash.as_bytes())?)
    }

    async fn touch(&self, hash: &str, t: u64) -> Result<(), RepoError> {
        // Read again under the lock, so a revocation that landed meanwhile is not undone.
        let _w = self.lock();
        if let Some(mut r) = get::<ApiToken>(&*self.db, Tree::Tokens, hash.as_bytes())? {
            if r.revoked_at.is_none() && r.last_used_at.is_none_or(|last| last < t) {
                r.last_used_at = Some(t);
                self.db.write(vec![put(Tree::Tokens, hash.as_bytes(), &r)])?;
            }
        }
        Ok(())
    }

    async fn tokens(&self, account_id: &str) -> Result<Vec<ApiToken>, RepoError> {
        let mut tokens = Vec::new();
        for (_, hash) in self
            .db
            .scan_prefix(Tree::TokenIds, format!("{account_id}/").as_bytes())?
        {
            if let Some(t) = get::<ApiToken>(&*self.db, Tree::Tokens, &hash)? {
                tokens.push(t);
            }
        }
        tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tokens)
    }

    async fn token(&self, account_id: &str, token_id: &str) -> Result<Option<ApiToken>, RepoError> {
        self.token_at(account_id, token_id)
    }

    async fn revoke_token(
        &self,
        account_id: &str,
        token_id: &str,
        t: u64,
        audit: AuditNote,
    ) -> Result<Option<ApiToken>, RepoError> {
        let (token, durable) = {
            let _w = self.lock();
            let Some(mut token) = self.token_at(account_id, token_id)? else {
                return Ok(None);
            };
            if token.revoked_at.is_some() {
                return Ok(Some(token));
            }
            token.revoked_at = Some(t);
            let ops = vec![
                put(Tree::Tokens, token.hash.as_bytes(), &token),
                self.audit(audit)?,
            ];
            let durable = self.write(ops)?;
            (token, durable)
        };
        durable.await?;
        Ok(Some(token))
    }

    async fn token_account(&self, token_id: &str) -> Result<Option<String>, RepoError> {
        // The operator revokes rarely: a scan of the id index is fine.
        let suffix = format!("/{token_id}");
        self.off(move |s| {
            Ok(s.db
                .scan_prefix(Tree::TokenIds, b"")?
                .into_iter()
                .find_map(|(key, _)| {
                    let key = String::from_utf8(key).ok()?;
                    key.strip_suffix(&suffix).map(str::to_string)
                }))
        })
        .await
    }
}
