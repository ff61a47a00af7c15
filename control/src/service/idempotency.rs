//! `Idempotency-Key` on the requests that text a caller: a voice platform that retries after
//! a timeout gets the first answer again instead of a second SMS and a superseded link.
//! What a key is remembered for, and how long, is the repository's contract
//! (`repo::idempotency`).

use super::{IdempotencyError, Service, ServiceError};
use crate::repo::Begun;
use upgate_gateway::sys::now;

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

impl Service {
    /// Claims the key, or says to replay or refuse.
    pub async fn idempotency_begin(
        &self,
        account_id: &str,
        key: &str,
        request: &str,
    ) -> Result<Begun, ServiceError> {
        if !valid_key(key) {
            return Err(IdempotencyError::InvalidKey.into());
        }
        Ok(self
            .repos
            .idempotency
            .begin(account_id, key, request, now())
            .await?)
    }
}
