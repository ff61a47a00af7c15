//! The operator's TLS files, checked when the configuration is: a missing, unreadable or
//! mismatched file otherwise shows up only when the gateway starts listening, as a less
//! helpful rustls error, or, with a wrong chain, only in callers' browsers.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Problem, TlsFiles};

/// Both files exist, are readable PEM (a certificate chain; one private key), the first
/// certificate parses, and the key is the certificate's. Every problem found is returned.
/// `cert_key` and `key_key` name the two settings in problems.
pub(crate) fn check(files: &TlsFiles, cert_key: &str, key_key: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let certs = read_certs(&files.cert_file).map_err(|problem| {
        problems.push(Problem {
            key: cert_key.to_string(),
            problem,
            fix: "name a PEM file holding the certificate chain, server certificate first".into(),
        })
    });
    let key = read_key(&files.key_file).map_err(|problem| {
        problems.push(Problem {
            key: key_key.to_string(),
            problem,
            fix: "name a PEM file holding the certificate's private key (PKCS#8, PKCS#1 or SEC1)".into(),
        })
    });
    if let (Ok(certs), Ok(key)) = (certs, key) {
        if let Err(problem) = pair(certs, key) {
            problems.push(Problem {
                key: key_key.to_string(),
                problem,
                fix: "use the key the certificate was issued for (the two files of one certificate)".into(),
            });
        }
    }
    problems
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("{} holds no PEM private key", path.display())
        }
        other => format!("{} is not a valid PEM private key: {other}", path.display()),
    })
}

/// rustls's own judgement, the one the gateway meets at start: the key loads, the
/// certificate parses, and the key's public half is the certificate's.
fn pair(certs: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<(), String> {
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(certs, key, &provider)
        .map(drop)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => "the private key does not belong to the certificate".into(),
            other => format!("the certificate or key is not usable: {other}"),
        })
}
