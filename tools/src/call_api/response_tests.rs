use super::{Omitted, decode_text, render_body};

#[test]
fn json_body_is_shown_as_text() {
    let shown = render_body(
        br#"{"a":1}"#,
        Some("application/json; charset=utf-8"),
        Omitted::Nothing,
    );
    assert_eq!(shown, r#"{"a":1}"#);
}

#[test]
fn empty_body_is_named() {
    assert_eq!(
        render_body(b"", Some("text/plain"), Omitted::Nothing),
        "[empty body]"
    );
    assert_eq!(render_body(b"", None, Omitted::Nothing), "[empty body]");
}

#[test]
fn binary_type_is_summarised_with_its_size_and_type() {
    let shown = render_body(
        &[0x89, b'P', b'N', b'G'],
        Some("image/png"),
        Omitted::Nothing,
    );
    assert_eq!(shown, "[4 bytes of binary content (image/png)]");
}

#[test]
fn cut_binary_body_reports_declared_total() {
    let shown = render_body(
        &[0u8; 10],
        Some("application/octet-stream"),
        Omitted::Exactly(90),
    );
    assert_eq!(
        shown,
        "[100 bytes of binary content (application/octet-stream)]"
    );
}

#[test]
fn untyped_bytes_with_nul_are_binary() {
    let shown = render_body(b"ab\0cd", None, Omitted::Nothing);
    assert_eq!(shown, "[5 bytes of binary content (no content-type)]");
}

#[test]
fn untyped_utf8_is_text() {
    assert_eq!(
        render_body("héllo".as_bytes(), None, Omitted::Nothing),
        "héllo"
    );
}

#[test]
fn cut_text_drops_a_split_character_and_says_how_much_is_missing() {
    let body = "aé".as_bytes();
    let cut = &body[..2]; // 'a' and the first byte of 'é'
    assert_eq!(decode_text(cut, None, true).as_deref(), Some("a"));
    let shown = render_body(cut, Some("text/plain"), Omitted::Exactly(1));
    assert_eq!(shown, "a\n[body cut at 2 bytes; 1 more bytes omitted]");
}

#[test]
fn cut_text_of_unknown_length_says_at_least() {
    let shown = render_body(b"abc", Some("text/plain"), Omitted::AtLeast(7));
    assert!(shown.starts_with("abc\n[body cut at 3 bytes; more omitted: at least 7 more bytes"));
}

#[test]
fn declared_text_with_invalid_utf8_is_decoded_leniently() {
    let shown = render_body(
        b"caf\xe9",
        Some("text/plain; charset=latin1"),
        Omitted::Nothing,
    );
    assert_eq!(shown, "caf\u{fffd}");
}

#[test]
fn octet_stream_that_is_utf8_text_is_shown_as_text() {
    let shown = render_body(
        b"key = 1\n",
        Some("application/octet-stream"),
        Omitted::Nothing,
    );
    assert_eq!(shown, "key = 1\n");
}
