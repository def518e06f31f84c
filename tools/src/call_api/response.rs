//! Reading a response within the byte cap and presenting it to the model.
//!
//! The body is read chunk by chunk and reading stops at `max_response_bytes`, so a huge
//! or endless response costs no more memory than the cap. Text is shown as text; other
//! bodies are summarised, since raw bytes are of no use to a model.

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::json;

use super::request::{Followed, authority};
use crate::error::ToolError;
use crate::tool::ToolOutput;

/// Response headers worth showing; others (cookies above all) are left out.
const SHOWN_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "content-encoding",
    "location",
    "retry-after",
    "www-authenticate",
    "etag",
    "last-modified",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

/// How much of the body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Omitted {
    Nothing,
    /// The server declared the length.
    Exactly(u64),
    /// The length is unknown: at least this many bytes were received past the cap.
    AtLeast(u64),
}

/// A response read within the cap.
#[derive(Debug)]
pub struct CapturedResponse {
    status: StatusCode,
    version: reqwest::Version,
    headers: HeaderMap,
    body: Vec<u8>,
    omitted: Omitted,
    url: url::Url,
    redirects: usize,
}

/// Reads the body of `followed` up to `cap` bytes.
pub async fn capture(followed: Followed, cap: usize) -> Result<CapturedResponse, ToolError> {
    let Followed {
        mut response,
        url,
        redirects,
    } = followed;
    let declared_length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let mut body = Vec::new();
    let mut past_cap = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|err| {
        ToolError::rejected(format!(
            "reading the response body from `{}` failed after {} bytes: {err}",
            authority(&url),
            body.len()
        ))
    })? {
        let room = cap - body.len();
        if chunk.len() <= room {
            body.extend_from_slice(&chunk);
        } else {
            body.extend_from_slice(&chunk[..room]);
            past_cap = (chunk.len() - room) as u64;
            break;
        }
    }
    let omitted = match (past_cap, declared_length) {
        (0, _) => Omitted::Nothing,
        (_, Some(length)) if length > body.len() as u64 => {
            Omitted::Exactly(length - body.len() as u64)
        }
        (at_least, _) => Omitted::AtLeast(at_least),
    };
    Ok(CapturedResponse {
        status: response.status(),
        version: response.version(),
        headers: response.headers().clone(),
        body,
        omitted,
        url,
        redirects,
    })
}

impl CapturedResponse {
    /// The model's view: status line, chosen headers, a blank line, the body.
    pub fn into_output(self) -> ToolOutput {
        let mut text = format!("{:?} {}\n", self.version, self.status);
        if self.redirects > 0 {
            text.push_str(&format!(
                "(after {} redirect{}; final URL: {})\n",
                self.redirects,
                if self.redirects == 1 { "" } else { "s" },
                self.url
            ));
        }
        for name in SHOWN_HEADERS {
            for value in self.headers.get_all(name) {
                text.push_str(&format!(
                    "{name}: {}\n",
                    String::from_utf8_lossy(value.as_bytes())
                ));
            }
        }
        text.push('\n');
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        text.push_str(&render_body(
            &self.body,
            content_type.as_deref(),
            self.omitted,
        ));
        let status = self.status;
        let details = json!({
            "status": status.as_u16(),
            "url": self.url.as_str(),
            "redirects": self.redirects,
            "body_bytes": self.body.len(),
            "truncated": self.omitted != Omitted::Nothing,
        });
        let output = if status.is_success() || status.is_redirection() {
            ToolOutput::success(text)
        } else {
            ToolOutput::failure(text)
        };
        output.with_details(details)
    }
}

fn render_body(body: &[u8], content_type: Option<&str>, omitted: Omitted) -> String {
    let kept = body.len() as u64;
    let Some(text) = decode_text(body, content_type, omitted != Omitted::Nothing) else {
        let size = match omitted {
            Omitted::Nothing => format!("{kept} bytes"),
            Omitted::Exactly(rest) => format!("{} bytes", kept + rest),
            Omitted::AtLeast(rest) => format!("at least {} bytes", kept + rest),
        };
        let kind = content_type.unwrap_or("no content-type");
        return format!("[{size} of binary content ({kind})]");
    };
    match omitted {
        Omitted::Nothing if text.is_empty() => "[empty body]".into(),
        Omitted::Nothing => text,
        Omitted::Exactly(rest) => {
            format!("{text}\n[body cut at {kept} bytes; {rest} more bytes omitted]")
        }
        Omitted::AtLeast(rest) => format!(
            "{text}\n[body cut at {kept} bytes; more omitted: at least {rest} more bytes \
             (the server did not give the length)]"
        ),
    }
}

/// The body as text, or `None` when it is binary. A declared text type is decoded
/// leniently, a declared media type (image, PDF, archive...) is binary; otherwise,
/// `application/octet-stream` included (servers label unknown text files so), the bytes
/// must be UTF-8 without NULs. A body cut at the cap may end inside a character; that
/// partial character is dropped first.
fn decode_text(body: &[u8], content_type: Option<&str>, cut: bool) -> Option<String> {
    let body = if cut { trim_partial_char(body) } else { body };
    let essence = content_type.map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match essence.as_deref() {
        Some(kind) if is_text_type(kind) => Some(String::from_utf8_lossy(body).into_owned()),
        Some(kind) if is_binary_type(kind) => None,
        _ if body.contains(&0) => None,
        _ => std::str::from_utf8(body).ok().map(str::to_string),
    }
}

fn trim_partial_char(body: &[u8]) -> &[u8] {
    match std::str::from_utf8(body) {
        Err(err) if err.error_len().is_none() => &body[..err.valid_up_to()],
        _ => body,
    }
}

fn is_text_type(kind: &str) -> bool {
    kind.starts_with("text/")
        || kind.ends_with("json")
        || kind.ends_with("xml")
        || kind.ends_with("+yaml")
        || matches!(
            kind,
            "application/javascript"
                | "application/ecmascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/sql"
                | "application/x-ndjson"
                | "application/problem+json"
        )
}

fn is_binary_type(kind: &str) -> bool {
    ["image/", "audio/", "video/", "font/"]
        .iter()
        .any(|prefix| kind.starts_with(prefix))
        || matches!(
            kind,
            "application/pdf"
                | "application/zip"
                | "application/gzip"
                | "application/x-tar"
                | "application/wasm"
                | "application/protobuf"
                | "application/x-protobuf"
        )
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
