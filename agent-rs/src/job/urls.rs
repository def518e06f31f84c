//! Presigned URLs are credentials: whoever holds one can read the workspace or overwrite
//! an output until it expires. The signature lives in the query string (and, rarely, in
//! user info), so a URL is only ever mentioned without them, and those parts are handed
//! to the secret redactor in case something else (a tool's output, a library's error)
//! repeats them.

use url::Url;

/// `scheme://host[:port]/path`, with `?[redacted]` standing in for a query string.
pub fn redacted(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    if url.query().is_some() {
        shown.push_str("?[redacted]");
    }
    shown
}

/// The parts of `url` that must never be shown: the whole query string, each query
/// value (as written and decoded) and a password.
pub fn secret_parts(url: &Url) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some(query) = url.query() {
        secrets.push(query.to_string());
        for pair in query.split('&') {
            if let Some((_, value)) = pair.split_once('=') {
                secrets.push(value.to_string());
            }
        }
        secrets.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
    }
    if let Some(password) = url.password() {
        secrets.push(password.to_string());
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_user_info_are_left_out_of_the_shown_url() {
        let url =
            Url::parse("https://user:pw-123456@store.example:9000/b/ws.tar.gz?X-Sig=abc%2Bdef#x")
                .unwrap();
        assert_eq!(
            redacted(&url),
            "https://store.example:9000/b/ws.tar.gz?[redacted]"
        );
    }

    #[test]
    fn url_without_query_is_shown_whole() {
        let url = Url::parse("http://127.0.0.1/up/diff.patch").unwrap();
        assert_eq!(redacted(&url), "http://127.0.0.1/up/diff.patch");
    }

    #[test]
    fn signature_values_are_secrets_as_written_and_decoded() {
        let url = Url::parse("https://user:pw-123456@h/p?X-Amz-Signature=abc%2Bdef&X-Amz-Date=1")
            .unwrap();
        let secrets = secret_parts(&url);
        for expected in [
            "X-Amz-Signature=abc%2Bdef&X-Amz-Date=1",
            "abc%2Bdef",
            "abc+def",
            "pw-123456",
        ] {
            assert!(
                secrets.iter().any(|s| s == expected),
                "{expected} missing from {secrets:?}"
            );
        }
    }
}
