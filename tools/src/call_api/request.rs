//! Turning the model's arguments into a request, and following redirects by hand.
//!
//! reqwest's own redirect handling is off: each hop goes back through
//! [`HostPolicy::check_url`], so a public server cannot bounce the request to an internal
//! address, and the method/body rules of each status are applied here.

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Response, StatusCode};
use url::Url;

use super::{CallApiArgs, TOOL_NAME};
use crate::error::ToolError;
use crate::net_guard::{HostPolicy, find_guard_error};

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Headers the HTTP client must own: setting them by hand breaks framing or routing.
const RESERVED_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// Credentials that must not follow a redirect to another origin.
const CREDENTIAL_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    header::WWW_AUTHENTICATE,
];

/// One request to send: the first, or one a redirect leads to.
#[derive(Debug, Clone)]
pub struct Hop {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

/// The response that ended the redirect chain.
#[derive(Debug)]
pub struct Followed {
    pub response: Response,
    pub url: Url,
    pub redirects: usize,
}

fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::InvalidArguments {
        tool: TOOL_NAME,
        message: message.into(),
    }
}

impl Hop {
    pub fn from_args(args: CallApiArgs) -> Result<Self, ToolError> {
        let method_name = args.method.trim().to_ascii_uppercase();
        if !METHODS.contains(&method_name.as_str()) {
            return Err(invalid(format!(
                "method `{}` is not supported; use one of {}",
                args.method,
                METHODS.join(", ")
            )));
        }
        let method = Method::from_bytes(method_name.as_bytes())
            .map_err(|err| invalid(format!("method `{}`: {err}", args.method)))?;
        let url = Url::parse(args.url.trim()).map_err(|err| {
            invalid(format!(
                "`url` is not an absolute URL ({err}); give the full URL, such as \
                 https://api.example.com/v1/items"
            ))
        })?;
        let mut headers = parse_headers(args.headers.unwrap_or_default())?;
        let body = match args.body {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(text)) => Some(text.into_bytes()),
            Some(value) => {
                if !headers.contains_key(header::CONTENT_TYPE) {
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
                Some(value.to_string().into_bytes())
            }
        };
        Ok(Self {
            method,
            url,
            headers,
            body,
        })
    }

    /// "`GET example.com:443`", for messages: the host but not the path or query, which
    /// may carry tokens.
    pub fn describe(&self) -> String {
        format!("`{} {}`", self.method, authority(&self.url))
    }

    /// The request a redirect with `status` to `location` asks for.
    fn redirected(mut self, status: StatusCode, location: Url) -> Self {
        let becomes_get = status == StatusCode::SEE_OTHER
            || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                && self.method == Method::POST);
        if becomes_get {
            if self.method != Method::HEAD {
                self.method = Method::GET;
            }
            self.body = None;
            self.headers.remove(header::CONTENT_TYPE);
        }
        if self.url.origin() != location.origin() {
            for name in &CREDENTIAL_HEADERS {
                self.headers.remove(name);
            }
        }
        self.url = location;
        self
    }
}

fn parse_headers(
    headers: impl IntoIterator<Item = (String, String)>,
) -> Result<HeaderMap, ToolError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| invalid(format!("`{name}` is not a valid HTTP header name")))?;
        if RESERVED_HEADERS.contains(&header_name.as_str()) {
            return Err(invalid(format!(
                "header `{name}` is set by the HTTP client; leave it out"
            )));
        }
        // The value is never quoted back: it may be a credential.
        let mut header_value = HeaderValue::from_str(&value).map_err(|_| {
            invalid(format!(
                "the value of header `{name}` is not a valid HTTP header value (no line \
                 breaks or control characters)"
            ))
        })?;
        header_value.set_sensitive(true);
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// `host:port` of a URL, for messages.
pub fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Sends `hop`, following up to `max_redirects` redirects, each checked by `policy`.
pub async fn send(
    client: &Client,
    policy: &HostPolicy,
    mut hop: Hop,
    max_redirects: usize,
) -> Result<Followed, ToolError> {
    let mut redirects = 0;
    loop {
        policy.check_url(&hop.url).await.map_err(|err| {
            let context = if redirects > 0 {
                "following a redirect: "
            } else {
                ""
            };
            ToolError::rejected(format!("{context}{err}"))
        })?;
        let mut request = client
            .request(hop.method.clone(), hop.url.clone())
            .headers(hop.headers.clone());
        if let Some(body) = &hop.body {
            request = request.body(body.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|err| describe_send_error(&err, &hop, redirects))?;
        let Some(location) = redirect_target(&response, &hop.url)? else {
            return Ok(Followed {
                response,
                url: hop.url,
                redirects,
            });
        };
        if redirects == max_redirects {
            return Err(ToolError::rejected(format!(
                "stopped after following {max_redirects} redirects: {} answered {} and \
                 redirects again; call the final URL directly",
                hop.describe(),
                response.status()
            )));
        }
        redirects += 1;
        hop = hop.redirected(response.status(), location);
    }
}

/// Where a redirect response points, resolved against the URL that gave it; `None` when
/// the response is not a redirect to follow.
fn redirect_target(response: &Response, current: &Url) -> Result<Option<Url>, ToolError> {
    let status = response.status();
    let is_redirect = matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    );
    if !is_redirect {
        return Ok(None);
    }
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    let bad_location = || {
        ToolError::rejected(format!(
            "`{}` answered {status} with a Location header that is not a valid URL",
            authority(current)
        ))
    };
    let location = location.to_str().map_err(|_| bad_location())?;
    current.join(location).map(Some).map_err(|_| bad_location())
}

/// A failed send, told in terms of the host: a guard refusal as it is, otherwise what
/// went wrong at the bottom of the error chain.
fn describe_send_error(err: &reqwest::Error, hop: &Hop, redirects: usize) -> ToolError {
    let context = if redirects > 0 {
        "following a redirect: "
    } else {
        ""
    };
    if let Some(refusal) = find_guard_error(err) {
        return ToolError::rejected(format!("{context}{refusal}"));
    }
    let target = format!("{context}{}", hop.describe());
    let cause = root_cause(err);
    let message = if err.is_timeout() {
        format!("{target}: connecting timed out ({cause})")
    } else if err.is_connect() {
        format!("{target}: could not connect: {cause}")
    } else {
        format!("{target} failed: {cause}")
    };
    ToolError::rejected(message)
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
