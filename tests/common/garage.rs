//! A real Garage (S3) node on loopback: one node, one bucket, one key, as an operator sets
//! it up. Stopped and started again on the same directories and ports.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::upgate::free_port;

pub struct Garage {
    child: Option<Child>,
    dir: tempfile::TempDir,
    config: PathBuf,
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
}

/// `garage` from the PATH, or where `cargo install` puts it.
fn binary() -> PathBuf {
    let installed = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/garage"));
    match installed {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("garage"),
    }
}

fn cli(config: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("garage is installed (cargo install garage --locked; .ci/run does)");
    assert!(
        out.status.success(),
        "garage {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .to_string()
}

impl Garage {
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let secret: String = (0..32).map(|i| format!("{:02x}", (i * 37 + 11) % 256)).collect();
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = {meta:?}\ndata_dir = {data:?}\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
compression_level = \"none\"\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
rpc_secret = \"{secret}\"\n[s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
root_domain = \".s3.garage.localhost\"\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"test\"\n",
                meta = dir.path().join("meta").display().to_string(),
                data = dir.path().join("data").display().to_string(),
            ),
        )
        .unwrap();
        let mut garage = Garage {
            child: None,
            dir,
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            region: "garage".into(),
            bucket: "uploads".into(),
            key_id: String::new(),
            secret: String::new(),
        };
        garage.run();
        let id = cli(&garage.config, &["node", "id", "-q"]);
        let id = id.trim().split('@').next().unwrap().to_string();
        cli(
            &garage.config,
            &["layout", "assign", "-z", "dc1", "-c", "1G", &id],
        );
        cli(&garage.config, &["layout", "apply", "--version", "1"]);
        cli(&garage.config, &["bucket", "create", "uploads"]);
        let key = cli(&garage.config, &["key", "create", "upgate"]);
        garage.key_id = field(&key, "Key ID:");
        garage.secret = field(&key, "Secret key:");
        cli(
            &garage.config,
            &[
                "bucket", "allow", "--read", "--write", "--owner", "uploads", "--key", "upgate",
            ],
        );
        garage
    }

    /// Starts the server process and waits until its CLI reaches it.
    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("garage is installed (cargo install garage --locked; .ci/run does)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = Command::new(binary())
                .arg("-c")
                .arg(&self.config)
                .args(["status"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok && std::net::TcpStream::connect(self.endpoint.trim_start_matches("http://")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("garage did not start: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// Stops the server (SIGKILL: an outage, not a maintenance window).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same data and port.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// The `[storage]` section for an upgate config, with the secret in a 0600 file.
    pub fn storage_config(&self) -> String {
        use std::os::unix::fs::PermissionsExt;
        let secret_file = self.dir.path().join("s3-secret");
        std::fs::write(&secret_file, &self.secret).unwrap();
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            "[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = \"{}\"\nregion = \"{}\"\nbucket = \"{}\"\n\
path_style = true\naccess_key_id = \"{}\"\nsecret_access_key_file = {:?}\n",
            self.endpoint,
            self.region,
            self.bucket,
            self.key_id,
            secret_file.display().to_string()
        )
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
