//! An HTTP proxy that decides, request by request, where a sandboxed process may go.
//!
//! A sandboxed process (a shell command under bubblewrap, an agent the embedded runner
//! started) has a network namespace of its own, where only a loopback exists. Its one way
//! out is a Unix socket bound into the sandbox, where this proxy listens; inside, a small
//! relay ([`relay`]) listens on a loopback TCP port and copies each connection to the
//! socket, since HTTP clients speak to proxies over TCP (`HTTP_PROXY`).
//!
//! The proxy reads each request head, asks an [`EgressCheck`] whether it may go, and
//! either relays it or answers `403` with the reason in the body, so what the process
//! prints says what happened (a host not on the list, a private address) instead of
//! timing out. `CONNECT host:port` opens a tunnel (for `https`, whose paths it cannot
//! see); a plain-HTTP request is forwarded in origin form with `Connection: close`, so
//! the next request comes on a new connection and is checked too.
//!
//! Two checks use it: the embedded runner's (the model endpoint and the run's signed
//! URLs), and the shell sandbox's allow-list of hosts ([`HostAllowList`]).
//!
//! Proxies chain: a process that itself has no network (`agent-rs job` in the embedded
//! runner's sandbox) names its own way out as the check's [`EgressCheck::upstream`], and
//! what its check allows goes there (a `CONNECT`, or the request in absolute form)
//! instead of to an address; the upstream proxy checks again, and its refusal (status
//! and reason) reaches the client as it is.

mod allow;
pub mod relay;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use url::Url;

pub use self::allow::HostAllowList;

/// The socket's name in the folder bound into the sandbox.
pub const SOCKET: &str = "proxy.sock";
/// Where that folder appears inside the sandbox.
pub const SANDBOX_EGRESS_DIR: &str = "/run/agent-egress";
/// The loopback address the relay listens on, inside the sandbox's network namespace.
pub const SANDBOX_PROXY_LISTEN: &str = "127.0.0.1:3128";
/// Largest request head read before a request is refused.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// What a sandboxed process's environment gains to go out through the relay on
/// [`SANDBOX_PROXY_LISTEN`]: both spellings of the proxy variables, and no exceptions.
pub fn proxy_env() -> Vec<(String, String)> {
    let proxy = format!("http://{SANDBOX_PROXY_LISTEN}");
    let mut env: Vec<(String, String)> = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"]
        .into_iter()
        .map(|name| (name.to_string(), proxy.clone()))
        .collect();
    env.push(("NO_PROXY".into(), String::new()));
    env.push(("no_proxy".into(), String::new()));
    env
}

/// Where a request may go. A refusal is the reason, in words the sandboxed process's
/// user (a model, often) can act on.
#[async_trait::async_trait]
pub trait EgressCheck: Send + Sync + 'static {
    /// Why a `CONNECT host:port` is refused; `None` when it is allowed.
    fn refuse_tunnel(&self, host: &str, port: u16) -> Option<String>;
    /// Why a plain-HTTP request to `url` is refused; `None` when it is allowed.
    fn refuse_request(&self, url: &Url) -> Option<String>;
    /// The addresses to connect to for an allowed `host:port`, or why none may be. By
    /// default, what the system resolver says.
    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        tokio::net::lookup_host((host, port))
            .await
            .map(Iterator::collect)
            .map_err(|err| format!("cannot resolve {host}: {err}"))
    }
    /// The proxy (a Unix socket) allowed connections go through, when this process has
    /// no network of its own; `None` to connect to the destination's addresses.
    fn upstream(&self) -> Option<&Path> {
        None
    }
}

/// Serves the proxy on `listener` until the returned task is aborted (or the listener
/// fails).
pub fn serve(listener: UnixListener, check: Arc<dyn EgressCheck>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let check = check.clone();
                    tokio::spawn(async move {
                        if let Err(err) = serve_connection(stream, check.as_ref()).await {
                            tracing::debug!(error = %err, "egress connection ended");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "egress proxy stopped accepting");
                    break;
                }
            }
        }
    })
}

/// One client connection: read the request head, check it, then relay both ways.
pub async fn serve_connection<S>(mut client: S, check: &dyn EgressCheck) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (head, rest) = read_head(&mut client).await?;
    let Some(request_line) = head.lines().next() else {
        return refuse(&mut client, "400 Bad Request", "empty request").await;
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return refuse(&mut client, "400 Bad Request", "malformed request line").await;
    };
    if method.eq_ignore_ascii_case("CONNECT") {
        let Some((host, port)) = target
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
        else {
            return refuse(&mut client, "400 Bad Request", "CONNECT needs host:port").await;
        };
        let host = host.trim_matches(['[', ']']);
        if let Some(reason) = check.refuse_tunnel(host, port) {
            return refuse(&mut client, "403 Forbidden", &reason).await;
        }
        if let Some(proxy) = check.upstream() {
            return tunnel_through(proxy, &mut client, host, port, &rest).await;
        }
        let mut upstream = match connect(check, host, port).await {
            Ok(upstream) => upstream,
            Err(Refusal(status, reason)) => return refuse(&mut client, status, &reason).await,
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let Ok(url) = Url::parse(target) else {
        return refuse(
            &mut client,
            "400 Bad Request",
            "a proxy request needs an absolute http:// URL",
        )
        .await;
    };
    if url.scheme() != "http" {
        return refuse(
            &mut client,
            "400 Bad Request",
            "only http:// is proxied; use CONNECT for https",
        )
        .await;
    }
    if let Some(reason) = check.refuse_request(&url) {
        return refuse(&mut client, "403 Forbidden", &reason).await;
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return refuse(&mut client, "400 Bad Request", "no host").await;
    };
    if let Some(proxy) = check.upstream() {
        // The next proxy sees the request as this one did: in absolute form.
        let mut upstream = match UnixStream::connect(proxy).await {
            Ok(upstream) => upstream,
            Err(err) => {
                return refuse(&mut client, "502 Bad Gateway", &upstream_unreachable(&err)).await;
            }
        };
        upstream
            .write_all(forwarded_head(&head, method, url.as_str(), version).as_bytes())
            .await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let mut upstream = match connect(check, host.trim_matches(['[', ']']), port).await {
        Ok(upstream) => upstream,
        Err(Refusal(status, reason)) => return refuse(&mut client, status, &reason).await,
    };
    upstream
        .write_all(forwarded_head(&head, method, &origin_form(&url), version).as_bytes())
        .await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// A tunnel to `host:port` opened by the upstream proxy: the client gets `200` once the
/// upstream said yes, or the upstream's own answer (its refusal and reason) when not.
async fn tunnel_through<S>(
    proxy: &Path,
    client: &mut S,
    host: &str,
    port: u16,
    rest: &[u8],
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut upstream = match UnixStream::connect(proxy).await {
        Ok(upstream) => upstream,
        Err(err) => return refuse(client, "502 Bad Gateway", &upstream_unreachable(&err)).await,
    };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    upstream
        .write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await?;
    let (answer, early) = read_head(&mut upstream).await?;
    let established = answer
        .split_whitespace()
        .nth(1)
        .is_some_and(|status| status.starts_with('2'));
    if !established {
        client.write_all(answer.as_bytes()).await?;
        client.write_all(b"\r\n\r\n").await?;
        client.write_all(&early).await?;
        tokio::io::copy(&mut upstream, client).await?;
        return client.shutdown().await;
    }
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    client.write_all(&early).await?;
    upstream.write_all(rest).await?;
    tokio::io::copy_bidirectional(client, &mut upstream).await?;
    Ok(())
}

fn upstream_unreachable(err: &std::io::Error) -> String {
    format!("the way out of this sandbox (the runner's egress proxy) is unreachable: {err}")
}

/// A status line and the reason the client reads.
struct Refusal(&'static str, String);

async fn connect(check: &dyn EgressCheck, host: &str, port: u16) -> Result<TcpStream, Refusal> {
    let addresses = check
        .addresses(host, port)
        .await
        .map_err(|reason| Refusal("403 Forbidden", reason))?;
    TcpStream::connect(addresses.as_slice())
        .await
        .map_err(|err| {
            Refusal(
                "502 Bad Gateway",
                format!("cannot reach {host}:{port}: {err}"),
            )
        })
}

/// The path and query of `url`: the request target an origin server expects.
fn origin_form(url: &Url) -> String {
    let mut target = url.path().to_string();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    target
}

/// The head with the request line's target replaced by `target`, hop-by-hop proxy
/// headers dropped and `Connection: close`.
fn forwarded_head(head: &str, method: &str, target: &str, version: &str) -> String {
    let mut out = format!("{method} {target} {version}\r\n");
    for line in head.lines().skip(1) {
        let name = line.split(':').next().unwrap_or("").trim();
        if line.is_empty()
            || name.eq_ignore_ascii_case("proxy-connection")
            || name.eq_ignore_ascii_case("proxy-authorization")
            || name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("keep-alive")
        {
            continue;
        }
        out.push_str(line.trim_end_matches('\r'));
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// Reads up to the end of the request head; returns it and whatever followed it.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            buf.truncate(end);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(std::io::Error::other("request head too large"));
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::other("connection closed before a request"));
        }
        buf.extend_from_slice(&chunk[..read]);
    }
}

async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    reason: &str,
) -> std::io::Result<()> {
    tracing::info!(%reason, "egress refused");
    let body = format!("{reason}\n");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
