//! Debian's nginx as the yardstick: TLS 1.3 with the same certificate, PUT (WebDAV module)
//! writing the body to a file, two workers for the two cores, the access log on (as upgate
//! logs every request too). nginx writes without fsync; upgate fsyncs before it answers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use super::{free_port, is_root, loopback, stop, wait_listening, Cert};

pub struct Nginx {
    child: Child,
    pub port: u16,
    /// Where PUT bodies land.
    pub root: PathBuf,
}

fn binary() -> anyhow::Result<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .context("nginx is not installed: apt-get install nginx")
}

impl Nginx {
    /// nginx with its files under `dir` (its PUT root there too).
    pub fn start(dir: &Path, cert: &Cert) -> anyhow::Result<Nginx> {
        let port = free_port();
        let root = dir.join("root");
        let temp = dir.join("client_body_temp");
        std::fs::create_dir_all(root.join("put"))?;
        std::fs::create_dir_all(&temp)?;
        let user = if is_root() { "user root;\n" } else { "" };
        let conf = format!(
            "{user}worker_processes 2;\ndaemon off;\npid {pid};\nerror_log {dir}/error.log warn;\n\
events {{ worker_connections 8192; }}\n\
worker_rlimit_nofile 20000;\n\
http {{\n  access_log {dir}/access.log;\n  client_body_temp_path {temp};\n\
  client_max_body_size 100m;\n  client_body_buffer_size 16k;\n  keepalive_requests 100000;\n\
  ssl_protocols TLSv1.3;\n  ssl_session_cache shared:SSL:10m;\n  ssl_session_tickets on;\n\
  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
    location = /healthz {{ return 200 \"ok\\n\"; }}\n\
    location /put/ {{ root {root}; dav_methods PUT; create_full_put_path on; dav_access user:rw; }}\n  }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            dir = dir.display(),
            temp = temp.display(),
            cert = cert.cert_file.display(),
            key = cert.key_file.display(),
            root = root.display(),
        );
        let conf_file = dir.join("nginx.conf");
        std::fs::write(&conf_file, conf)?;
        let child = Command::new(binary()?)
            .arg("-c")
            .arg(&conf_file)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start nginx")?;
        wait_listening(loopback(port), "nginx")?;
        Ok(Nginx { child, port, root })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Removes what earlier rounds PUT, so memory (tmpfs) does not fill.
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(self.root.join("put"));
        let _ = std::fs::create_dir_all(self.root.join("put"));
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
