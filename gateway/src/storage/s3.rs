//! S3-compatible backend (Garage, MinIO, Ceph, AWS S3) through the `object_store` crate.
//! An object is written only after the scan, in one PUT or, when large, a multipart upload
//! that is aborted on any failure; readers see the whole object or none (S3 makes an object
//! visible only when its PUT or CompleteMultipartUpload succeeds). Reads are ranged GETs,
//! streamed. Multipart uploads that a crash leaves unfinished are removed by a bucket
//! lifecycle rule that `ensure_lifecycle` installs at start (docs/decisions.md).

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::path::Path as StorePath;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore as _, PutPayload, RetryConfig};
use tokio::io::AsyncReadExt;
use zeroize::Zeroizing;

use super::{ByteStream, Listed, ObjectKey, ObjectStore, StorageError};

mod lifecycle;

/// Objects up to this size go up in one PUT; larger ones in parts of this size (S3's
/// minimum part is 5 MiB).
pub const PART_BYTES: usize = 8 << 20;

/// How long one request may take before the caller hears "try again".
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

pub struct S3Store {
    store: AmazonS3,
    settings: S3Settings,
    http: reqwest::Client,
    /// When a readiness probe last found the bucket working (see `check`).
    checked: std::sync::Mutex<Option<std::time::Instant>>,
}

/// A load balancer may probe `/readyz` every second on every gateway: while the bucket works,
/// one request per this period is enough to know. A failing bucket is asked every time, so
/// readiness returns the moment it is back.
const CHECK_EVERY: Duration = Duration::from_secs(2);

fn failed(e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound,
        other => StorageError::Io(std::io::Error::other(other.to_string())),
    }
}

fn location(key: &ObjectKey) -> StorePath {
    StorePath::from(key.as_str())
}

impl S3Store {
    pub fn open(settings: S3Settings) -> Result<S3Store, String> {
        let options = ClientOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(Duration::from_secs(5))
            .with_allow_http(settings.endpoint.starts_with("http://"));
        // A few quick retries for a blip; a longer outage is the caller's 503, not a hang.
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&settings.endpoint)
            .with_region(&settings.region)
            .with_bucket_name(&settings.bucket)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key.as_str())
            .with_virtual_hosted_style_request(!settings.path_style)
            .with_allow_http(settings.endpoint.starts_with("http://"))
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(S3Store {
            store,
            settings,
            http,
            checked: std::sync::Mutex::new(None),
        })
    }

    async fn put_multipart(&self, key: &ObjectKey, file: &mut tokio::fs::File) -> Result<(), StorageError> {
        let mut upload = self.store.put_multipart(&location(key)).await.map_err(failed)?;
        let result = async {
            loop {
                let part = read_part(file).await?;
                if part.is_empty() {
                    break;
                }
                upload.put_part(PutPayload::from(part)).await.map_err(failed)?;
            }
            upload.complete().await.map_err(failed)
        }
        .await;
        if let Err(e) = result {
            // Best effort: if the abort fails too, the lifecycle rule removes the parts.
            if let Err(abort) = upload.abort().await {
                tracing::warn!(error = %abort, "could not abort a multipart upload; the bucket's lifecycle rule will");
            }
            return Err(e);
        }
        Ok(())
    }

    fn bucket_url(&self, query: &str) -> String {
        let endpoint = self.settings.endpoint.trim_end_matches('/');
        if self.settings.path_style {
            format!("{endpoint}/{}?{query}", self.settings.bucket)
        } else {
            let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", endpoint));
            format!("{scheme}://{}.{host}/?{query}", self.settings.bucket)
        }
    }

    /// Sends a bucket-level request (`?lifecycle`), signed with SigV4 by object_store's own
    /// signer: object_store has no call for bucket configuration.
    async fn bucket_request(
        &self,
        method: http::Method,
        query: &str,
        body: Bytes,
    ) -> Result<(u16, String), String> {
        let credential = AwsCredential {
            key_id: self.settings.access_key_id.clone(),
            secret_key: self.settings.secret_access_key.to_string(),
            token: None,
        };
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(self.bucket_url(query))
            .header(http::header::CONTENT_TYPE, "application/xml");
        if !body.is_empty() {
            use base64::Engine;
            let md5 = <md5::Md5 as md5::Digest>::digest(&body);
            request = request.header(
                "content-md5",
                base64::engine::general_purpose::STANDARD.encode(md5),
            );
        }
        let mut request = request
            .body(object_store::client::HttpRequestBody::from(body.clone()))
            .map_err(|e| e.to_string())?;
        AwsAuthorizer::new(&credential, "s3", &self.settings.region).authorize(&mut request, None);
        let mut out = self.http.request(method, request.uri().to_string()).body(body);
        for (name, value) in request.headers() {
            out = out.header(name, value);
        }
        let resp = out.send().await.map_err(|e| e.without_url().to_string())?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, text))
    }

    /// Makes sure the bucket aborts multipart uploads left unfinished for a day (a gateway
    /// that died mid-upload). Installed if absent; an existing configuration that already
    /// has such a rule is left alone, one without it is refused loudly rather than
    /// overwritten (it is the operator's).
    pub async fn ensure_lifecycle(&self) -> Result<LifecycleState, String> {
        let (status, text) = self
            .bucket_request(http::Method::GET, "lifecycle", Bytes::new())
            .await?;
        match status {
            200 if lifecycle::aborts_unfinished_uploads(&text)? => Ok(LifecycleState::Present),
            200 => Err(
                "the bucket has a lifecycle configuration without an AbortIncompleteMultipartUpload rule; \
                 add one (upgate's is in docs/deployment.md) so that unfinished uploads are removed"
                    .into(),
            ),
            404 => {
                let (status, text) = self
                    .bucket_request(
                        http::Method::PUT,
                        "lifecycle",
                        Bytes::from_static(lifecycle::RULE.as_bytes()),
                    )
                    .await?;
                if (200..300).contains(&status) {
                    Ok(LifecycleState::Installed)
                } else {
                    Err(format!(
                        "installing the lifecycle rule failed: {status} {}",
                        first_line(&text)
                    ))
                }
            }
            other => Err(format!(
                "reading the bucket's lifecycle failed: {other} {}",
                first_line(&text)
            )),
        }
    }
}

/// What `ensure_lifecycle` found.
#[derive(Debug, PartialEq, Eq)]
pub enum LifecycleState {
    Present,
    Installed,
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| l.contains("<Code>") || l.contains("<Message>"))
        .unwrap_or("")
        .trim()
}

/// Up to `PART_BYTES` from the file; fewer only at its end.
async fn read_part(file: &mut tokio::fs::File) -> Result<Vec<u8>, StorageError> {
    let mut part = Vec::with_capacity(PART_BYTES);
    while part.len() < PART_BYTES {
        let n = (&mut *file)
            .take((PART_BYTES - part.len()) as u64)
            .read_to_end(&mut part)
            .await?;
        if n == 0 {
            break;
        }
    }
    Ok(part)
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn commit(&self, key: &ObjectKey, spool: &Path) -> Result<(), StorageError> {
        let mut file = tokio::fs::File::open(spool).await?;
        let size = file.metadata().await?.len();
        let written = if size as usize <= PART_BYTES {
            let bytes = read_part(&mut file).await?;
            self.store
                .put(&location(key), PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(failed)
        } else {
            self.put_multipart(key, &mut file).await
        };
        if written.is_err() {
            // Readiness asks the bucket again rather than repeat an answer from before this.
            *self.checked.lock().expect("check lock") = None;
        }
        written?;
        // The object is whole in the bucket: the spool copy goes, as the trait says. Failing
        // that is not the upload's failure (the spool sweep removes it at the next start).
        if let Err(e) = tokio::fs::remove_file(spool).await {
            tracing::warn!(error = %e, "could not remove a committed upload's spool file");
        }
        Ok(())
    }

    async fn len(&self, key: &ObjectKey) -> Result<u64, StorageError> {
        Ok(self.store.head(&location(key)).await.map_err(failed)?.size)
    }

    async fn read_range(&self, key: &ObjectKey, offset: u64, len: u64) -> Result<ByteStream, StorageError> {
        if len == 0 {
            return Ok(futures_util::stream::empty().boxed());
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + len)),
            ..Default::default()
        };
        let result = match self.store.get_opts(&location(key), options).await {
            Ok(result) => result,
            // A range that starts at or past the end: nothing to read, as a file would say.
            Err(object_store::Error::Generic { .. }) | Err(object_store::Error::NotSupported { .. })
                if self.len(key).await? <= offset =>
            {
                return Ok(futures_util::stream::empty().boxed())
            }
            Err(e) => return Err(failed(e)),
        };
        Ok(result.into_stream().map_err(failed).boxed())
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match self.store.delete(&location(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn list(&self) -> Result<Vec<Listed>, StorageError> {
        let mut listed = Vec::new();
        let mut objects = self.store.list(None);
        while let Some(meta) = objects.next().await {
            let meta = meta.map_err(failed)?;
            if let Some(key) = ObjectKey::parse_any(meta.location.as_ref()) {
                listed.push(Listed {
                    key,
                    modified: meta.last_modified.timestamp().max(0) as u64,
                });
            }
        }
        Ok(listed)
    }

    async fn check(&self) -> Result<(), StorageError> {
        let recent = *self.checked.lock().expect("check lock");
        if recent.is_some_and(|at| at.elapsed() < CHECK_EVERY) {
            return Ok(());
        }
        // A listing of at most one key past any object key: it reaches the bucket with our
        // credentials and writes nothing.
        let mut one = self.store.list_with_offset(None, &StorePath::from("~"));
        let answer = match one.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(failed(e)),
        };
        *self.checked.lock().expect("check lock") = answer.is_ok().then(std::time::Instant::now);
        answer
    }
}
