//! `[storage]`: where sealed files live. A tagged choice: a local directory (the embedded
//! default) or an S3-compatible bucket for gateways run apart.

use std::path::{Path, PathBuf};

use crate::raw::RawStorage;
use crate::Validator;

#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// `None`: `data_dir/objects` (see [`crate::Config::objects_dir`]).
    Local {
        path: Option<PathBuf>,
    },
    S3(S3Config),
}

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `https://HOST[:PORT]`, or `http://` to a loopback host (a test server).
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`: most self-hosted servers.
    pub path_style: bool,
    pub access_key_id: String,
    /// The file holding only the secret key (mode 0600), read at start.
    pub secret_access_key_file: PathBuf,
}

impl Validator<'_> {
    pub(crate) fn storage(&mut self, raw: RawStorage) -> StorageConfig {
        match raw.backend.as_deref() {
            None | Some("local") => StorageConfig::Local {
                path: raw.path.map(PathBuf::from),
            },
            Some("s3") => self.s3(raw),
            Some(other) => {
                self.err(
                    "storage.backend",
                    format!("{other:?} is not a storage backend"),
                    "use \"local\" (a directory) or \"s3\" (an S3-compatible bucket)",
                );
                StorageConfig::Local { path: None }
            }
        }
    }

    fn s3(&mut self, raw: RawStorage) -> StorageConfig {
        let s3 = raw.s3;
        let mut required = |key: &str, value: Option<String>, example: &str| {
            value.filter(|v| !v.trim().is_empty()).unwrap_or_else(|| {
                self.err(
                    &format!("storage.s3.{key}"),
                    "required when storage.backend is \"s3\"",
                    format!("set it, e.g. {key} = \"{example}\""),
                );
                String::new()
            })
        };
        let endpoint = required("endpoint", s3.endpoint, "https://s3.example.com");
        let region = required("region", s3.region, "us-east-1");
        let bucket = required("bucket", s3.bucket, "upgate");
        let access_key_id = required("access_key_id", s3.access_key_id, "GK31c2f218a2e44f485b94239e");
        let secret_file = required(
            "secret_access_key_file",
            s3.secret_access_key_file,
            "/etc/upgate/s3-secret",
        );
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if !endpoint.is_empty() && !crate::base_url_is_safe(&endpoint) {
            self.err(
                "storage.s3.endpoint",
                format!("{endpoint:?} is not an https URL (plain http is allowed only to a loopback host)"),
                "write the endpoint as https://HOST[:PORT]",
            );
        }
        if raw.path.is_some() {
            self.err(
                "storage.path",
                "set, but storage.backend is \"s3\"",
                "remove storage.path, or use backend = \"local\"",
            );
        }
        if !secret_file.is_empty() {
            if let Err(problem) = crate::read_secret_file(Path::new(&secret_file)) {
                self.err(
                    "storage.s3.secret_access_key_file",
                    problem,
                    "name a file holding only the secret key, readable by upgate alone (chmod 600)",
                );
            }
        }
        StorageConfig::S3(S3Config {
            endpoint,
            region,
            bucket,
            path_style: s3.path_style.unwrap_or(true),
            access_key_id,
            secret_access_key_file: secret_file.into(),
        })
    }
}
