//! upgate-gateway: the internet-facing data plane (link pages, streamed uploads, scanning,
//! sealing, storage) and the formats both planes agree on (link token, sealed files, keys).

pub mod body;
pub mod clamd;
pub mod control_link;
pub mod disk;
pub mod fd_budget;
pub mod hidden_chars;
pub mod i18n;
pub mod keys;
pub mod metrics;
pub mod monitor;
pub mod names;
pub mod page;
pub mod ratelimit;
pub mod record_meter;
pub mod request_id;
pub mod respond;
pub mod routes;
pub mod run;
pub mod scanner;
pub mod seal;
pub mod server;
pub mod service_manager;
pub mod state;
pub mod storage;
pub mod sys;
pub mod tls;
pub mod token;
pub mod tus;
pub mod upload;

pub use state::Gateway;
