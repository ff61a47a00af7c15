//! TLS for the gateway: the operator's PEM files, or on first start a self-signed
//! certificate for localhost kept in the data directory so it survives restarts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use upgate_config::TlsFiles;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    /// rustls refused the certificate/key pair.
    #[error("invalid certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

/// Where the self-signed pair lives in the data directory.
pub fn self_signed_paths(data_dir: &Path) -> TlsFiles {
    let dir = data_dir.join("tls");
    TlsFiles {
        cert_file: dir.join("localhost.crt"),
        key_file: dir.join("localhost.key"),
    }
}

/// Creates the self-signed localhost pair unless it exists.
pub fn ensure_self_signed(data_dir: &Path) -> Result<TlsFiles, TlsError> {
    ensure_self_signed_for(data_dir, &[])
}

/// Like `ensure_self_signed`, valid also for `extra` names (host names or IP addresses).
pub fn ensure_self_signed_for(data_dir: &Path, extra: &[String]) -> Result<TlsFiles, TlsError> {
    let files = self_signed_paths(data_dir);
    if files.cert_file.exists() && files.key_file.exists() {
        return Ok(files);
    }
    // Half a pair (a crash between the two writes) is made again whole.
    let _ = std::fs::remove_file(&files.cert_file);
    let _ = std::fs::remove_file(&files.key_file);
    let gen = |e: &dyn std::fmt::Display| TlsError::Generate(e.to_string());
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let cert = rcgen::generate_simple_self_signed(names).map_err(|e| gen(&e))?;
    let dir = files.cert_file.parent().expect("has a parent");
    std::fs::create_dir_all(dir).map_err(|e| gen(&e))?;
    write_private(&files.key_file, cert.key_pair.serialize_pem().as_bytes()).map_err(|e| gen(&e))?;
    write_new(&files.cert_file, cert.cert.pem().as_bytes(), 0o644).map_err(|e| gen(&e))?;
    Ok(files)
}

/// Writes a new file only its owner can read, whole or not at all (see `write_new`).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_new(path, bytes, 0o600)
}

/// Writes a new file with `mode`, whole or not at all: the bytes go to a temporary name,
/// are synced, and are then linked under `path` (which fails if `path` exists, so nothing
/// is overwritten), and the directory is synced. A crash or a full disk leaves no short
/// key file under the real name for the next start to trip over.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    // A temporary left by a crash holds nothing anyone relies on.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written?;
    std::fs::File::open(dir)?.sync_all()
}

/// When the first certificate in `cert_file` (the one served) expires, in Unix seconds;
/// `None` when it cannot be read (the server config's own load says why).
pub fn expires_at(cert_file: &Path) -> Option<i64> {
    let pem = std::fs::read(cert_file).ok()?;
    let first = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&first).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The certificate a listener serves, replaceable while it runs (`reload`, on SIGHUP): each
/// new handshake takes the pair loaded last, connections already open keep the one they
/// began with, so a renewal drops nothing in flight.
#[derive(Debug)]
pub struct Certificate {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    pub fn load(files: &TlsFiles) -> Result<Arc<Certificate>, TlsError> {
        Ok(Arc::new(Certificate {
            current: RwLock::new(Arc::new(certified_key(files)?)),
            files: files.clone(),
        }))
    }

    /// Reads the files again; on any error the pair served so far stays. Returns when the
    /// new certificate expires (Unix seconds), when that can be read.
    pub fn reload(&self) -> Result<Option<i64>, TlsError> {
        let fresh = Arc::new(certified_key(&self.files)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(expires_at(&self.files.cert_file))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

impl rustls::server::ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The pair in `files`, its key checked against the certificate.
fn certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let err = |path: &Path, problem: String| TlsError::File {
        path: path.to_path_buf(),
        problem,
    };
    let cert_pem = std::fs::read(&files.cert_file).map_err(|e| err(&files.cert_file, e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err(&files.cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(err(&files.cert_file, "no certificate in the file".into()));
    }
    let key_pem = std::fs::read(&files.key_file).map_err(|e| err(&files.key_file, e.to_string()))?;
    let key: PrivateKeyDer<'static> = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => err(&files.key_file, "no private key in the file".into()),
        other => err(&files.key_file, other.to_string()),
    })?;
    CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
        .map_err(|e| err(&files.key_file, format!("does not go with the certificate: {e}")))
}

/// A rustls server config offering TLS 1.3 and 1.2, HTTP/1.1 only (see docs/decisions.md),
/// serving the pair in `files` (see `reloadable_config` for one that can be renewed).
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Ok(reloadable_config(files)?.0)
}

/// Like `server_config`, with the certificate it serves, to `reload`.
pub fn reloadable_config(
    files: &TlsFiles,
) -> Result<(Arc<rustls::ServerConfig>, Arc<Certificate>), TlsError> {
    let cert = Certificate::load(files)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(cert.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), cert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_written_whole_once_and_never_over_another() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("link-2.key");
        // A temporary left by a crash does not stand in the way.
        std::fs::write(dir.path().join(".link-2.key.tmp"), b"half").unwrap();
        write_private(&path, &[7u8; 32]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [7u8; 32]);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = write_private(&path, &[8u8; 32]).unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), [7u8; 32], "never overwritten");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["link-2.key"], "no temporary is left");
    }

    #[test]
    fn half_a_self_signed_pair_is_made_again_whole() {
        let dir = tempfile::tempdir().unwrap();
        let files = ensure_self_signed(dir.path()).unwrap();
        std::fs::remove_file(&files.cert_file).unwrap();
        let files = ensure_self_signed(dir.path()).unwrap();
        server_config(&files).expect("the key and the certificate belong together");
    }
}
