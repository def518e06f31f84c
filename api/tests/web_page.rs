//! The web page's server side: its files are served with a strict Content-Security-
//! Policy and hardening headers, cached by ETag, and hold no inline script, inline style
//! or HTML-from-string call; the API names the field a validation error is about, so the
//! page can show it there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{ALICE, Harness};

#[tokio::test]
async fn the_page_is_served_at_the_root_with_a_strict_policy_and_hardening_headers() {
    let h = Harness::start().await;
    let response = h.http.get(h.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cross-origin-opener-policy"], "same-origin");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/assets/js/main.js"></script>"#));
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_revalidates_by_etag() {
    let h = Harness::start().await;
    for asset in api::web::ASSETS.iter().skip(1) {
        let url = h.url(&format!("/assets/{}", asset.path));
        let response = h.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", asset.path);
        assert_eq!(response.headers()["content-type"], asset.content_type);
        assert!(response.headers().contains_key("content-security-policy"));
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let etag = response.headers()["etag"].clone();
        assert_eq!(response.bytes().await.unwrap().as_ref(), asset.body);

        let again = h
            .http
            .get(&url)
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{}", asset.path);
        assert!(again.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn unknown_assets_and_paths_outside_the_list_are_not_found() {
    let h = Harness::start().await;
    for path in [
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/assets/js/../../src/lib.rs",
        "/assets/index.html",
        "/assets/",
    ] {
        let response = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

/// The page's own files obey the policy they are served with: nothing inline for the
/// CSP to refuse, and no HTML parsed from strings (data reaches the DOM as text).
#[test]
fn the_page_has_no_inline_script_or_style_and_never_parses_html_from_strings() {
    for asset in api::web::ASSETS {
        let text = std::str::from_utf8(asset.body).unwrap();
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            " style=\"",
            " onclick=",
            " onload=",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} contains {forbidden}",
                asset.path
            );
        }
        if asset.path == "index.html" {
            for script in text.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap();
                assert!(tag.contains("src="), "inline script in index.html: {tag}");
            }
            assert!(!text.contains("<style"), "inline style in index.html");
        }
    }
}

/// Every module the page imports is one the server serves.
#[test]
fn every_module_import_names_a_served_asset() {
    let served: Vec<&str> = api::web::ASSETS.iter().map(|a| a.path).collect();
    for asset in api::web::ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        let text = std::str::from_utf8(asset.body).unwrap();
        for line in text.lines().filter(|l| l.starts_with("import ")) {
            let target = line.rsplit("\"./").next().unwrap().trim_end_matches("\";");
            let path = format!("js/{target}");
            assert!(served.contains(&path.as_str()), "{}: {line}", asset.path);
        }
    }
}

async fn create_error(h: &Harness, body: Value) -> Value {
    let response = h.create_json(body).await;
    assert_eq!(response.status(), 422);
    response.json::<Value>().await.unwrap()["error"].clone()
}

#[tokio::test]
async fn validation_errors_name_the_field_they_are_about() {
    let h = Harness::start().await;
    let cases = [
        (
            json!({"git_url": "https://127.0.0.1/r.git", "description": "x"}),
            "git_url",
        ),
        (
            json!({"git_url": "https://140.82.112.3/r.git", "description": "  "}),
            "description",
        ),
        (
            json!({"git_url": "https://140.82.112.3/r.git", "description": "x",
                   "target_file": "../etc/passwd"}),
            "target_file",
        ),
        (
            json!({"git_url": "https://140.82.112.3/r.git", "description": "x",
                   "git_ref": "--upload-pack=x"}),
            "git_ref",
        ),
        (
            json!({"git_url": "https://140.82.112.3/r.git", "description": "x",
                   "max_turns": 0}),
            "max_turns",
        ),
        (
            json!({"git_url": "https://140.82.112.3/r.git", "description": "x",
                   "max_turns": "many"}),
            "max_turns",
        ),
    ];
    for (body, field) in cases {
        let error = create_error(&h, body.clone()).await;
        assert_eq!(error["code"], "invalid_request", "{body}");
        assert_eq!(error["field"], field, "{body}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    // An unknown field is named; an error about the body as a whole names none.
    let error = create_error(
        &h,
        json!({"git_url": "https://140.82.112.3/r.git", "description": "x", "colour": 1}),
    )
    .await;
    assert_eq!(error["field"], "colour", "{error}");
    let error = create_error(&h, json!(["not", "an", "object"])).await;
    assert!(error.get("field").is_none(), "{error}");
    h.assert_nothing_stored().await;
}

#[tokio::test]
async fn multipart_validation_errors_name_the_field_too() {
    let h = Harness::start().await;
    let form = reqwest::multipart::Form::new()
        .part(
            "zip_file",
            reqwest::multipart::Part::bytes(b"not a zip".to_vec()).file_name("repo.zip"),
        )
        .text("description", "fix it")
        .text("timeout_secs", "soon");
    let response = h
        .http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(ALICE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "timeout_secs", "{body}");

    let form = reqwest::multipart::Form::new()
        .part(
            "zip_file",
            reqwest::multipart::Part::bytes(b"not a zip".to_vec()).file_name("repo.zip"),
        )
        .text("description", "fix it");
    let response = h
        .http
        .post(h.url("/api/v1/tasks"))
        .bearer_auth(ALICE)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "zip_file", "{body}");
    h.assert_nothing_stored().await;
}
