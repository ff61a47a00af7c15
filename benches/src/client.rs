//! A small HTTP/1.1 client over TLS or plain TCP, written for the load generator: no
//! pooling, no buffering we do not need, so that the client's own CPU stays far below the
//! servers' (it is measured and reported). Requests are written as given; responses are
//! read by Content-Length (both servers send one).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How to reach a TLS server: its address, and a client that trusts its one certificate.
#[derive(Clone)]
pub struct Tls {
    pub addr: SocketAddr,
    connector: TlsConnector,
}

impl Tls {
    /// `resume`: keep TLS 1.3 session tickets and offer them again (as browsers do).
    pub fn new(addr: SocketAddr, cert: &CertificateDer<'static>, resume: bool) -> Tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.clone()).expect("the bench certificate parses");
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3 is supported")
                .with_root_certificates(roots)
                .with_no_client_auth();
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        Tls {
            addr,
            connector: TlsConnector::from(Arc::new(config)),
        }
    }

    pub async fn connect(&self) -> anyhow::Result<Conn<TlsStream<TcpStream>>> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = self.connector.connect(name, tcp).await.context("TLS handshake")?;
        Ok(Conn::new(tls))
    }
}

pub async fn connect_plain(addr: SocketAddr) -> anyhow::Result<Conn<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(Conn::new(tcp))
}

/// One keep-alive connection.
pub struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub close: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Writes bytes as they are (a request head, a piece of a body).
    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.stream.flush().await?;
        Ok(())
    }

    /// A whole request: head and body pieces, then the response.
    pub async fn request(&mut self, head: &[u8], body: &[&[u8]]) -> anyhow::Result<Response> {
        self.send(head).await?;
        for piece in body {
            self.send(piece).await?;
        }
        self.flush().await?;
        self.response().await
    }

    /// Reads one response.
    pub async fn response(&mut self) -> anyhow::Result<Response> {
        let end = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..end]).context("response head is not text")?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        let mut length = 0usize;
        let mut close = false;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse()?;
                } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                    close = true;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("chunked responses are not expected here");
                }
            }
        }
        while self.buf.len() < end + length {
            self.fill().await?;
        }
        let body = self.buf[end..end + length].to_vec();
        self.buf.drain(..end + length);
        Ok(Response { status, body, close })
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the response ended");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request head. `length` is the body's Content-Length.
pub fn head(method: &str, path: &str, headers: &[(&str, &str)], length: usize) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}
