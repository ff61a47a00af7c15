//! A raw TLS connection to the gateway, for sending exactly the bytes a hostile or broken
//! client would: stalled heads, ambiguous framing, trickling bodies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::upgate::Upgate;

pub async fn connect(up: &Upgate) -> TlsStream<TcpStream> {
    let pem = std::fs::read(up.data_dir().join("tls/localhost.crt")).unwrap();
    connect_trusting(up, &pem).await.unwrap()
}

/// A TLS connection to the gateway trusting only the certificates in `pem`; the handshake's
/// error if the gateway serves another.
pub async fn connect_trusting(up: &Upgate, pem: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
    try_connect_to(up.gateway_port, pem).await
}

/// A TLS connection to a gateway on `port` trusting the certificates in `pem`, without the
/// `Upgate` (from a task of its own).
#[allow(dead_code)]
pub async fn connect_to(port: u16, pem: &[u8]) -> TlsStream<TcpStream> {
    try_connect_to(port, pem).await.unwrap()
}

async fn try_connect_to(port: u16, pem: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// Reads until the server closes (or `limit` passes); returns what arrived and how long it took.
pub async fn read_until_closed<S: AsyncReadExt + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> (String, Duration, bool) {
    let started = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut chunk)).await {
            Err(_) => {
                return (
                    String::from_utf8_lossy(&buf).into_owned(),
                    started.elapsed(),
                    false,
                )
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&buf).into_owned(),
                    started.elapsed(),
                    true,
                )
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

pub async fn send(stream: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}
