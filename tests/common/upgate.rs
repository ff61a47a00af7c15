//! The real `upgate` binary as a process: its config, its CLI, and clients for its APIs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_upgate");

/// A port free right now on 127.0.0.1.
/// A loopback port nothing listens on now, and never handed out before in this test
/// process: the kernel may give a just-closed ephemeral port again at once, and two of one
/// server's listeners on one port is a configuration error, not a test of anything.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct Upgate {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub gateway_port: u16,
    pub control: String,
    pub monitor: String,
    pub log: PathBuf,
}

impl Upgate {
    /// Writes a config (extra TOML appended) and a data dir; does not start anything.
    pub fn configure(extra: &str) -> Upgate {
        Upgate::configure_gateway("body_idle_timeout = \"5s\"\n", extra)
    }

    /// Like `configure`, with the `[gateway]` table's extra keys given.
    pub fn configure_gateway(gateway: &str, extra: &str) -> Upgate {
        let dir = tempfile::tempdir().unwrap();
        let (g, c, m) = (free_port(), free_port(), free_port());
        let config = dir.path().join("upgate.toml");
        let text = format!(
            "data_dir = {data:?}\n[gateway]\nlisten = \"127.0.0.1:{g}\"\npublic_url = \"https://127.0.0.1:{g}\"\n\
{gateway}[control]\nlisten = \"127.0.0.1:{c}\"\n[metrics]\nlisten = \"127.0.0.1:{m}\"\n{extra}",
            data = dir.path().join("data").display().to_string(),
        );
        std::fs::write(&config, text).unwrap();
        // As an operator would before using the CLI: only `serve` creates a data dir.
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir.path().join("data"))
                .unwrap();
        }
        let log = dir.path().join("upgate.log");
        Upgate {
            child: None,
            dir,
            config,
            gateway_port: g,
            control: format!("http://127.0.0.1:{c}"),
            monitor: format!("http://127.0.0.1:{m}"),
            log,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes a secret file with mode 0600 and returns its path.
    pub fn secret(&self, name: &str, value: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(name);
        std::fs::write(&p, value).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    pub fn rewrite_config(&self, extra: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, format!("{text}{extra}")).unwrap();
    }

    /// Starts `upgate serve` and waits until the control API answers.
    pub async fn start(&mut self) {
        self.start_logging("info").await
    }

    /// Like `start`, with this log filter (`trace` for everything); stdout and stderr both
    /// go to the log file.
    pub async fn start_logging(&mut self, filter: &str) {
        self.start_wrapped(filter, &[]).await
    }

    /// Like `start_logging`, run through `wrapper` (a command that execs the rest, such as
    /// `prlimit --nofile=256:1024`).
    pub async fn start_wrapped(&mut self, filter: &str, wrapper: &[&str]) {
        self.launch("serve", filter, wrapper).await
    }

    /// Starts `upgate control` (the control plane alone) or `upgate gateway` (one gateway
    /// apart) and waits until it answers.
    pub async fn start_as(&mut self, command: &str) {
        self.launch(command, "info", &[]).await
    }

    async fn launch(&mut self, command_name: &str, filter: &str, wrapper: &[&str]) {
        self.spawn(command_name, filter, wrapper);
        self.wait_until_up(command_name).await;
    }

    /// Starts `upgate <command>` and returns at once, without waiting for it to answer.
    pub fn spawn_as(&mut self, command: &str) {
        self.spawn(command, "info", &[]);
    }

    fn spawn(&mut self, command_name: &str, filter: &str, wrapper: &[&str]) {
        let log = std::fs::File::create(&self.log).unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .args([command_name, "--config"])
            .arg(&self.config)
            .env("UPGATE_LOG", filter)
            .env("RUST_LOG", filter)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Waits until `upgate <command>` answers on its health endpoint (30 s at most).
    pub async fn wait_until_up(&self, command_name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = Client::new();
        // A gateway run apart has no control API; its monitoring listener says it is up.
        let probe = if command_name == "gateway" {
            &self.monitor
        } else {
            &self.control
        };
        while Instant::now() < deadline {
            if client.get(format!("{probe}/healthz")).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "upgate did not start: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// The server's process id, for reading its memory from /proc.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    /// Sends SIGTERM and returns at once: the server drains while the test goes on.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
    }

    /// Kills the process without warning, as a power cut would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs the CLI with this config; returns (exit ok, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `upgate account create`, returning the id printed alone on stdout.
    pub fn create_account(&self, name: &str, plan: &str) -> String {
        let (ok, out, err) = self.cli(&["account", "create", "--name", name, "--plan", plan]);
        assert!(ok, "account create failed: {err}");
        let id = out.trim().to_string();
        assert!(id.starts_with("acc_") && !id.contains('\n'), "{out:?}");
        id
    }

    pub fn create_token(&self, account: &str, role: &str) -> String {
        let (ok, out, err) = self.cli(&["token", "create", "--account", account, "--role", role]);
        assert!(ok, "token create failed: {err}");
        let token = out.trim().to_string();
        assert!(token.starts_with("upg_"), "{out:?}");
        token
    }

    /// A client that trusts the gateway's self-signed certificate, and nothing else.
    pub fn gateway_client(&self) -> Client {
        let pem = std::fs::read(self.data_dir().join("tls/localhost.crt")).unwrap();
        Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// The monitoring listener's `/readyz` answer.
    pub async fn readyz(&self) -> Value {
        reqwest::get(format!("{}/readyz", self.monitor))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The monitoring listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.monitor))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Upgate {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A control-API client holding one bearer token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.into(),
            token: token.into(),
            http: Client::new(),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The raw response, for bodies that are not JSON (downloads).
    pub async fn fetch(&self, path: &str, range: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(range) = range {
            req = req.header("range", range);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::POST, path, body).await
    }
}

/// The path of a link URL (`u/TOKEN`), for raw requests.
pub fn link_path(url: &str) -> String {
    url.split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1
        .to_string()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// Sends one file to a link as the upload page's script does: one multipart part named
/// `file`. Returns the status and the JSON answer (Null when the answer is not JSON).
/// A process's resident memory now and at its peak (`VmRSS`, `VmHWM`), in bytes.
#[allow(dead_code)]
pub fn rss_and_peak(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub async fn upload_file(
    client: &Client,
    url: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    try_upload(client, url, name, mime, bytes)
        .await
        .expect("the gateway answers")
}

/// Like `upload_file`, for a server that may die mid-request: `None` when no answer came.
pub async fn try_upload(
    client: &Client,
    url: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> Option<(StatusCode, Value)> {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let resp = client
        .post(format!("{url}/files"))
        .multipart(form)
        .send()
        .await
        .ok()?;
    let status = resp.status();
    Some((status, resp.json().await.unwrap_or(Value::Null)))
}
