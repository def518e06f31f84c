//! A git server speaking smart HTTP over TLS on loopback: `git http-backend` (CGI)
//! behind a small axum server, as a forge serves a public repository. Fetches are
//! anonymous; pushes (`git-receive-pack`) ask for HTTP basic auth and accept only
//! `x-access-token:{token}`, the form GitHub takes a token in. Every request is recorded
//! with whether it carried credentials, so a test can tell where the token travelled.
//!
//! The certificate is self-signed for `127.0.0.1` (made with `openssl`); the process
//! that pushes trusts it through `SSL_CERT_FILE`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The `Authorization` header, when sent.
    pub authorization: Option<String>,
    pub status: u16,
}

struct Backend {
    root: PathBuf,
    /// The one `Authorization` value a push is accepted with.
    expected: String,
    seen: Mutex<Vec<Seen>>,
}

/// The server; it stops with the test's runtime.
pub struct SmartHttpGit {
    /// `https://127.0.0.1:{port}`; a repository `{root}/{owner}/{name}.git` is
    /// `{base}/{owner}/{name}.git`.
    pub base: String,
    /// The certificate to trust (`SSL_CERT_FILE`).
    pub cert_file: PathBuf,
    backend: Arc<Backend>,
}

impl SmartHttpGit {
    /// Serves the bare repositories under `root`; `scratch` receives the certificate.
    pub async fn start(root: &Path, scratch: &Path, token: &str) -> Self {
        let (cert_file, key_file) = self_signed(scratch);
        let certs = vec![CertificateDer::from_pem_file(&cert_file).unwrap()];
        let key = PrivateKeyDer::from_pem_file(&key_file).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        let backend = Arc::new(Backend {
            root: root.to_path_buf(),
            expected: format!("Basic {credentials}"),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(cgi).with_state(backend.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", tcp.local_addr().unwrap());
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        };
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base,
            cert_file,
            backend,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.backend.seen.lock().unwrap().clone()
    }
}

/// A self-signed certificate for `127.0.0.1`: its PEM file and its key's.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("git-server.pem");
    let key = dir.join("git-server.key");
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {out:?}");
    (cert, key)
}

/// Accepts TCP connections and completes their TLS handshake.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Runs `git http-backend` for one request.
async fn cgi(State(backend): State<Arc<Backend>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let pushing = target.contains("git-receive-pack");
    let record = |status: StatusCode| Seen {
        method: parts.method.to_string(),
        target: target.clone(),
        authorization: authorization.clone(),
        status: status.as_u16(),
    };
    if pushing && authorization.as_deref() != Some(backend.expected.as_str()) {
        backend
            .seen
            .lock()
            .unwrap()
            .push(record(StatusCode::UNAUTHORIZED));
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")],
            "authentication required",
        )
            .into_response();
    }
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let header_text = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", &backend.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header_text(header::CONTENT_TYPE))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env(
            "HTTP_CONTENT_ENCODING",
            header_text(header::CONTENT_ENCODING),
        )
        .env("REMOTE_USER", if pushing { "x-access-token" } else { "" })
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&body).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let (status, response) = cgi_response(&output.stdout);
    backend.seen.lock().unwrap().push(record(status));
    response
}

/// Splits a CGI answer into its headers (`Status:` among them) and body.
fn cgi_response(out: &[u8]) -> (StatusCode, Response) {
    let (head, body) = match find(out, b"\r\n\r\n") {
        Some(at) => (&out[..at], &out[at + 4..]),
        None => match find(out, b"\n\n") {
            Some(at) => (&out[..at], &out[at + 2..]),
            None => (out, &[][..]),
        },
    };
    let mut status = StatusCode::OK;
    let mut builder = Response::builder();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().unwrap_or("200");
            status = StatusCode::from_bytes(code.as_bytes()).unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let Ok(value) = HeaderValue::from_str(value) {
            builder = builder.header(name, value);
        }
    }
    let response = builder
        .status(status)
        .body(Body::from(body.to_vec()))
        .unwrap();
    (status, response)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
