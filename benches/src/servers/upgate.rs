//! upgate's release build, configured like a production node (its default log level, a
//! real certificate file) with limits opened for load: many connections from one address,
//! SMS windows that never close (the outbox provider: nothing leaves the machine). The
//! gateway's cap (2,048) leaves the open-file limit room for S13's 10,000 event streams.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::{free_port, loopback, stop, wait_listening, Cert};
use crate::client::{self, Conn};

pub struct UpgateOptions {
    /// clamd's socket, or none to run without a scanner.
    pub clamd: Option<PathBuf>,
}

pub struct Upgate {
    child: Child,
    /// `perf record` attached once the account is ready, when UPGATE_BENCH_PERF names a
    /// directory for the profiles (docs/performance.md, "Profiling").
    perf: Option<Child>,
    pub gateway: SocketAddr,
    pub control: SocketAddr,
    config: PathBuf,
    admin: String,
    integration: String,
}

/// One upload link: the path files are POSTed to, and how many it still takes.
pub struct Link {
    pub files_path: String,
    pub left: u32,
}

/// Files per link (the settings' maximum).
pub const FILES_PER_LINK: u32 = 20;

fn binary() -> anyhow::Result<PathBuf> {
    // The load generator is built beside upgate in target/release.
    let me = std::env::current_exe()?;
    let bin = me.with_file_name("upgate");
    if !bin.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p upgate`",
            bin.display()
        );
    }
    Ok(bin)
}

impl Upgate {
    /// Starts upgate with its data in `dir` and an account ready for uploads.
    pub async fn start(dir: &Path, cert: &Cert, options: &UpgateOptions) -> anyhow::Result<Upgate> {
        let (g, c, m) = (free_port(), free_port(), free_port());
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let scanner = match &options.clamd {
            Some(socket) => format!("[scanner]\nclamd = \"unix:{}\"\n", socket.display()),
            None => String::new(),
        };
        let config = dir.join("upgate.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {data:?}\n[gateway]\nlisten = \"127.0.0.1:{g}\"\npublic_url = \"https://127.0.0.1:{g}\"\n\
tls_cert_file = {cert:?}\ntls_key_file = {key:?}\nmax_connections = 2048\nmax_connections_per_ip = 2048\n\
min_free_disk = \"256 MiB\"\n\
[control]\nlisten = \"127.0.0.1:{c}\"\n[metrics]\nlisten = \"127.0.0.1:{m}\"\n{scanner}\
[sms]\nmax_per_number_per_hour = 1000000000\nmax_per_account_per_hour = 1000000000\n",
                data = data.display().to_string(),
                cert = cert.cert_file.display().to_string(),
                key = cert.key_file.display().to_string(),
            ),
        )?;
        let log = std::fs::File::create(dir.join("upgate.log"))?;
        let child = Command::new(binary()?)
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start upgate")?;
        let mut up = Upgate {
            child,
            perf: None,
            gateway: loopback(g),
            control: loopback(c),
            config,
            admin: String::new(),
            integration: String::new(),
        };
        wait_listening(up.control, "upgate's control API")?;
        wait_listening(up.gateway, "upgate's gateway")?;
        if options.clamd.is_some() {
            up.wait_ready(loopback(m)).await?;
        }
        let account = up.cli(&["account", "create", "--name", "Bench", "--plan", "pro"])?;
        up.admin = up.cli(&["token", "create", "--account", &account, "--role", "admin"])?;
        up.integration = up.cli(&["token", "create", "--account", &account, "--role", "integration"])?;
        let settings = json!({"file_upload": {
            "enabled": true,
            "trigger": "When the caller has the documents ready",
            "message": "Please upload your documents here",
            "allowed_types": ["application/pdf", "image/jpeg"],
            "max_file_bytes": upgate_gateway::upload::MULTIPART_MAX_FILE_BYTES,
            "max_files": FILES_PER_LINK,
            "link_ttl_seconds": 3600,
        }});
        let admin = up.admin.clone();
        let (status, body) = up
            .api(&admin, "PUT", "/v1/assistants/desk", Some(settings))
            .await?;
        if !(200..300).contains(&status) {
            bail!("assistant settings refused: {status} {body}");
        }
        if let Some(profiles) = std::env::var_os("UPGATE_BENCH_PERF") {
            up.perf = Some(profile(&PathBuf::from(profiles), dir, up.pid())?);
        }
        Ok(up)
    }

    /// Waits for /readyz on the monitoring listener (the scanner proving itself).
    async fn wait_ready(&self, monitor: SocketAddr) -> anyhow::Result<()> {
        for _ in 0..600 {
            if let Ok(mut conn) = client::connect_plain(monitor).await {
                let head = client::head("GET", "/readyz", &[], 0);
                if let Ok(r) = conn.request(&head, &[]).await {
                    if r.status == 200 {
                        return Ok(());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("upgate did not become ready within 60 s")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(binary()?)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()?;
        if !out.status.success() {
            bail!("upgate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    async fn api(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut conn = client::connect_plain(self.control).await?;
        api_call(&mut conn, token, method, path, body).await
    }

    /// The integration token, for scenarios that drive the control API themselves.
    pub fn integration_token(&self) -> &str {
        &self.integration
    }

    /// Creates `count` calls (ids `{prefix}{i}`), each with a fresh link, over `parallel`
    /// connections.
    pub async fn links(&self, prefix: &str, count: usize, parallel: usize) -> anyhow::Result<Vec<Link>> {
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..parallel {
            let (control, token, prefix) = (self.control, self.integration.clone(), prefix.to_string());
            tasks.spawn(async move {
                let mut conn = client::connect_plain(control).await?;
                let mut links = Vec::new();
                for i in (worker..count).step_by(parallel) {
                    let call = format!("{prefix}{i}");
                    create_call(&mut conn, &token, &call, i).await?;
                    let (status, link) = api_call(
                        &mut conn,
                        &token,
                        "POST",
                        &format!("/v1/calls/{call}/upload-links"),
                        None,
                    )
                    .await?;
                    if status != 201 {
                        bail!("link refused: {status} {link}");
                    }
                    links.push((i, link_files_path(&link)?));
                }
                anyhow::Ok(links)
            });
        }
        let mut all = Vec::with_capacity(count);
        while let Some(done) = tasks.join_next().await {
            all.extend(done??);
        }
        all.sort_by_key(|(i, _)| *i);
        Ok(all
            .into_iter()
            .map(|(_, files_path)| Link {
                files_path,
                left: FILES_PER_LINK,
            })
            .collect())
    }
}

/// `PUT /v1/calls/{id}`, each call with its own caller number.
pub async fn create_call<S>(conn: &mut Conn<S>, token: &str, call: &str, n: usize) -> anyhow::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let number = format!("+1415{:07}", n % 10_000_000);
    let body = json!({"assistant_id": "desk", "caller_number": number});
    let (status, answer) = api_call(conn, token, "PUT", &format!("/v1/calls/{call}"), Some(body)).await?;
    if !(200..300).contains(&status) {
        bail!("call refused: {status} {answer}");
    }
    Ok(())
}

/// The `/u/TOKEN/files` path of a link the API answered.
pub fn link_files_path(link: &Value) -> anyhow::Result<String> {
    let url = link["url"].as_str().context("a link has a url")?;
    let at = url.find("/u/").context("a link's url holds /u/")?;
    Ok(format!("{}/files", &url[at..]))
}

/// One control-API request on a kept-alive connection.
pub async fn api_call<S>(
    conn: &mut Conn<S>,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = format!("Bearer {token}");
    let head = client::head(
        method,
        path,
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        body.len(),
    );
    let r = conn.request(&head, &[body.as_bytes()]).await?;
    let value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    Ok((r.status, value))
}

/// Samples upgate's stacks until it stops (DWARF unwinding: release builds keep no frame
/// pointers). One file per run, named after the run's directory.
fn profile(profiles: &Path, run: &Path, pid: u32) -> anyhow::Result<Child> {
    std::fs::create_dir_all(profiles)?;
    let name = run.file_name().and_then(|n| n.to_str()).unwrap_or("upgate");
    let out = profiles.join(format!("{name}.perf.data"));
    Command::new("perf")
        .args([
            "record",
            "-F",
            "499",
            "--call-graph",
            "dwarf,32768",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start perf (apt-get install linux-perf)")
}

impl Drop for Upgate {
    fn drop(&mut self) {
        stop(&mut self.child);
        if let Some(perf) = self.perf.as_mut() {
            // perf ends on its own once the process it follows has; this waits for its file.
            let _ = perf.wait();
        }
    }
}
