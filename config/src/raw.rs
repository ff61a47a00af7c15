//! The configuration file as written: every value optional and textual, so that
//! validation can report every bad key at once instead of stopping at the first.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    pub data_dir: Option<String>,
    #[serde(default)]
    pub gateway: RawGateway,
    #[serde(default)]
    pub control: RawControl,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub scanner: RawScanner,
    #[serde(default)]
    pub sms: RawSms,
    pub plans: Option<BTreeMap<String, RawPlan>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGateway {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub handshake_timeout: Option<String>,
    pub header_timeout: Option<String>,
    pub body_idle_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub link_failures_per_minute: Option<usize>,
    pub min_upload_rate: Option<String>,
    pub upload_rate_grace: Option<String>,
    pub min_free_disk: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawControl {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawMetrics {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawScanner {
    pub clamd: Option<String>,
    pub timeout: Option<String>,
    pub concurrency: Option<usize>,
    pub on_unavailable: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSms {
    pub provider: Option<String>,
    pub max_per_number_per_hour: Option<usize>,
    pub max_per_account_per_hour: Option<usize>,
    #[serde(default)]
    pub twilio: RawTwilio,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTwilio {
    pub account_sid: Option<String>,
    pub auth_token_file: Option<String>,
    pub from: Option<String>,
    pub api_base: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawPlan {
    pub sms: Option<bool>,
}
