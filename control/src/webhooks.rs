//! Webhooks: the account's event log, pushed to the endpoints its admins register, signed
//! as Standard Webhooks. The log is the outbox: a dispatcher hands each endpoint the events
//! after its cursor as deliveries (one transaction), then attempts the due ones, retrying
//! with growing pauses until `webhooks.retry_for`, then keeping dead letters to replay.
//! Nothing on the upload path waits for any of it.

pub mod records;
pub mod retry;
pub mod sign;
pub mod target;
pub mod worker;
