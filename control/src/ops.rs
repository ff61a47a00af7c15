//! Operator commands (`upgate account create`, `upgate token create|list|revoke`,
//! `upgate gateway-credential create|list|revoke`). sled lets one process
//! open the store, so while `upgate serve` runs the CLI asks it over a Unix socket in the
//! data directory (mode 0600: the operator's account only); when nothing runs, the CLI opens
//! the store itself. Both paths run the same code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::{UnixListener, UnixStream};

use crate::api::views::{gateway_credential_json, token_json};
use crate::api::{json_response, problem_response, ApiResponse};
use crate::model::Role;
use crate::problem::Problem;
use crate::service::{NewToken, Service};
use upgate_gateway::sys::now;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// A request the operator makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpRequest {
    CreateAccount {
        name: String,
        plan: String,
    },
    CreateToken {
        account: String,
        role: String,
        #[serde(default)]
        name: Option<String>,
        /// A duration in human units (`30d`, `12h`), parsed where the store is.
        #[serde(default)]
        expires_in: Option<String>,
    },
    ListTokens {
        account: String,
    },
    RevokeToken {
        token: String,
    },
    CreateGatewayCredential {
        name: String,
    },
    ListGatewayCredentials,
    ListKeys,
    RotateKey {
        kind: String,
    },
    RetireKey {
        kind: String,
        id: u32,
    },
    RevokeGatewayCredential {
        id: String,
    },
    /// A console user with a one-time sign-in link (printed once).
    CreateUser {
        account: String,
        email: String,
        role: String,
    },
    /// Deletes an account with everything it holds, its keys first (crypto-shredding).
    DeleteAccount {
        account: String,
    },
    /// Writes an encrypted backup to `to` (an absolute path, written by the server).
    Backup {
        to: std::path::PathBuf,
        passphrase: String,
    },
}

impl OpRequest {
    /// Whether the request deletes or reads stored objects: run offline, it needs the
    /// object store opened beside the metadata store.
    pub fn needs_objects(&self) -> bool {
        matches!(self, OpRequest::DeleteAccount { .. } | OpRequest::Backup { .. })
    }
}

fn key_kind(text: &str) -> Result<crate::keys::KeyKind, Problem> {
    crate::keys::KeyKind::parse(text).ok_or_else(|| {
        Problem::bad_request("unknown_key_kind", "the key kind is link, storage or attestation")
    })
}

fn parse_expiry(text: &str) -> Result<u64, Problem> {
    humantime::parse_duration(text.trim())
        .map(|d| d.as_secs())
        .map_err(|e| {
            Problem::bad_request(
                "invalid_expiry",
                format!("--expires-in {text:?}: {e}; write it like 90d, 12h or 30m"),
            )
        })
}

/// Runs an operator request against the service; the answer's `result` is what the CLI prints.
pub async fn execute(svc: &Service, req: OpRequest) -> Result<serde_json::Value, Problem> {
    match req {
        OpRequest::CreateAccount { name, plan } => {
            let account = svc.create_account(&name, &plan).await?;
            Ok(json!({"result": account.id, "account": account}))
        }
        OpRequest::CreateToken {
            account,
            role,
            name,
            expires_in,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                Problem::bad_request(
                    "unknown_role",
                    "role is one of admin, integration, reviewer, viewer",
                )
            })?;
            let new = NewToken {
                name,
                expires_in: expires_in.as_deref().map(parse_expiry).transpose()?,
                not_after: None,
            };
            let (record, token) = svc.create_token(&account, role, new, "operator").await?;
            Ok(json!({"result": token, "id": record.id, "role": role.as_str()}))
        }
        OpRequest::CreateUser { account, email, role } => {
            let role = Role::parse(&role).ok_or(crate::service::ServiceError::from(
                crate::service::UserError::UnknownRole,
            ))?;
            let new = svc.create_user(&account, &email, role, None).await?;
            Ok(json!({"result": new.signin_url, "id": new.user.id, "role": role.as_str()}))
        }
        OpRequest::ListTokens { account } => {
            if svc.account(&account).await?.is_none() {
                return Err(Problem::not_found("account"));
            }
            // One JSON object per line: readable, and `jq` or `grep` take it as it is.
            let t = now();
            let lines: Vec<String> = svc
                .tokens(&account)
                .await?
                .iter()
                .map(|r| token_json(r, t).to_string())
                .collect();
            Ok(json!({"result": lines.join("\n")}))
        }
        OpRequest::RevokeToken { token } => {
            let record = svc.revoke_token_by_operator(&token).await?;
            Ok(json!({"result": token_json(&record, now()).to_string()}))
        }
        OpRequest::CreateGatewayCredential { name } => {
            let (record, credential) = svc.create_gateway_credential(&name).await?;
            Ok(json!({"result": credential, "id": record.id}))
        }
        OpRequest::ListKeys => {
            let lines: Vec<String> = svc
                .key_list()?
                .iter()
                .map(|k| serde_json::to_string(k).expect("key info serializes"))
                .collect();
            Ok(json!({"result": lines.join("\n")}))
        }
        OpRequest::RotateKey { kind } => {
            let kind = key_kind(&kind)?;
            let id = svc.rotate_key(kind).await?;
            Ok(json!({"result": format!("new current {kind:?} key: {id}").to_lowercase()}))
        }
        OpRequest::RetireKey { kind, id } => {
            svc.retire_key(key_kind(&kind)?, id).await?;
            Ok(json!({"result": format!("retired {kind} key {id}")}))
        }
        OpRequest::ListGatewayCredentials => {
            let lines: Vec<String> = svc
                .gateway_credentials()
                .await?
                .iter()
                .map(|c| gateway_credential_json(c).to_string())
                .collect();
            Ok(json!({"result": lines.join("\n")}))
        }
        OpRequest::RevokeGatewayCredential { id } => {
            let record = svc.revoke_gateway_credential(&id).await?;
            Ok(json!({"result": gateway_credential_json(&record).to_string()}))
        }
        OpRequest::DeleteAccount { account } => {
            let done = svc.delete_account(&account).await?;
            Ok(json!({"result": serde_json::to_string(&done).expect("serializes")}))
        }
        OpRequest::Backup { to, passphrase } => {
            if !to.is_absolute() {
                return Err(Problem::bad_request(
                    "invalid_path",
                    "--to must be an absolute path",
                ));
            }
            let written = crate::backup::backup(svc, &to, &passphrase)
                .await
                .map_err(|e| match e {
                    crate::backup::BackupError::Failed(detail) => {
                        tracing::error!(%detail, "backup failed");
                        Problem::unavailable("backup_failed", format!("the backup failed: {detail}"))
                    }
                    refused => Problem::bad_request("backup_refused", refused.to_string()),
                })?;
            Ok(json!({"result": serde_json::to_string(&written).expect("serializes")}))
        }
    }
}

async fn handle(svc: Arc<Service>, req: Request<Incoming>) -> ApiResponse {
    if req.method() != Method::POST || req.uri().path() != "/ops" {
        return problem_response(&Problem::not_found("operation"));
    }
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return problem_response(&Problem::bad_request("body_too_large", "too large")),
    };
    let op: OpRequest = match serde_json::from_slice(&body) {
        Ok(op) => op,
        Err(e) => return problem_response(&Problem::bad_request("invalid_json", e.to_string())),
    };
    match execute(&svc, op).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(p) => problem_response(&p),
    }
}

/// Binds the operator socket, replacing a stale one from a crash.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(listener: UnixListener, svc: Arc<Service>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let svc = svc.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let svc = svc.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(svc, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (no server running).
    #[error("no running upgate at {0}")]
    NotRunning(PathBuf),
    /// The server refused the request; its problem document says why.
    #[error("{0}")]
    Refused(String),
    /// The conversation failed halfway.
    #[error("talking to the running upgate failed: {0}")]
    Io(String),
}

/// Sends a request to a running server. `NotRunning` means: open the store directly.
pub async fn call_running(data_dir: &Path, op: &OpRequest) -> Result<serde_json::Value, ClientError> {
    let path = socket_path(data_dir);
    let stream = UnixStream::connect(&path)
        .await
        .map_err(|_| ClientError::NotRunning(path.clone()))?;
    let io = |e: &dyn std::fmt::Display| ClientError::Io(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| io(&e))?;
    tokio::spawn(conn);
    let body = serde_json::to_vec(op).expect("requests serialize");
    let req = Request::post("/ops")
        .header(http::header::HOST, "upgate")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static request");
    let resp = sender.send_request(req).await.map_err(|e| io(&e))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| io(&e))?.to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| io(&e))?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(ClientError::Refused(
            value["detail"].as_str().unwrap_or("refused").to_string(),
        ))
    }
}
