use super::plain_text;

#[test]
fn tags_are_stripped_and_entities_decoded() {
    assert_eq!(
        plain_text("Use <strong>serde</strong> &amp; <em>serde_json</em> &quot;derive&quot;"),
        "Use serde & serde_json \"derive\""
    );
}

#[test]
fn escaped_markup_stays_visible_as_text() {
    assert_eq!(plain_text("write &lt;div&gt; here"), "write <div> here");
}

#[test]
fn numeric_entities_are_decoded() {
    assert_eq!(plain_text("it&#39;s &#x27;ok&#X27;"), "it's 'ok'");
}

#[test]
fn unknown_entities_and_bare_ampersands_are_kept() {
    assert_eq!(plain_text("a & b &bogus; c&"), "a & b &bogus; c&");
}

#[test]
fn whitespace_is_collapsed() {
    assert_eq!(plain_text("  one\n\n two\tthree "), "one two three");
}

#[test]
fn long_snippets_are_cut_with_an_ellipsis() {
    let long = "x".repeat(2_000);
    let cut = plain_text(&long);
    assert_eq!(cut.chars().count(), 601);
    assert!(cut.ends_with('…'));
}

#[test]
fn entities_next_to_multibyte_text_are_decoded() {
    assert_eq!(plain_text("&amp;ééééééééééé"), "&ééééééééééé");
}
