//! The security headers on every response of the page.
//!
//! The policy allows only what the page needs: its own scripts and styles (no inline
//! ones), `fetch`/`EventSource` to this origin, images from this origin and `data:`
//! (the icon). `require-trusted-types-for 'script'` with no policy defined makes the
//! browser refuse every HTML-from-string sink (`innerHTML`, `insertAdjacentHTML`,
//! `document.write`): the page builds its DOM with `textContent` only, and a mistake
//! that slips in fails loudly instead of becoming a script injection.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

/// The page's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; \
base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
trusted-types 'none'";

const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=()";

/// Adds the hardening headers to a page response.
pub async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 7] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            PERMISSIONS_POLICY,
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
