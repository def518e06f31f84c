use super::*;

fn draft(input: DraftInput) -> TaskDraft {
    TaskDraft {
        input,
        description: "fix it".into(),
        target_file: None,
        model: None,
        limits: TaskLimits::default(),
        pull_request: None,
        attempts: None,
        check: None,
        setup: None,
    }
}

fn git(url: &str) -> DraftInput {
    DraftInput::Git {
        url: url.into(),
        git_ref: None,
    }
}

/// The smallest valid zip: an empty archive's end record.
const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

#[tokio::test]
async fn blank_description_is_refused() {
    let mut d = draft(git("https://140.82.112.3/r.git"));
    d.description = "  \n".into();
    assert!(
        check_draft(&DraftRules::default(), &d)
            .await
            .unwrap_err()
            .message
            .contains("description")
    );
}

#[tokio::test]
async fn target_file_escaping_the_repository_is_refused() {
    for target in ["../etc/passwd", "/etc/passwd", "a/../../b"] {
        let mut d = draft(git("https://140.82.112.3/r.git"));
        d.target_file = Some(target.into());
        let err = check_draft(&DraftRules::default(), &d).await.unwrap_err();
        assert_eq!(err.field, "target_file", "{target}: {err:?}");
        assert!(err.message.contains("target_file"), "{target}: {err:?}");
    }
}

#[tokio::test]
async fn git_refs_that_look_like_options_are_refused() {
    for git_ref in ["--upload-pack=x", "a b", "main..dev"] {
        let d = draft(DraftInput::Git {
            url: "https://140.82.112.3/r.git".into(),
            git_ref: Some(git_ref.into()),
        });
        assert!(
            check_draft(&DraftRules::default(), &d).await.is_err(),
            "{git_ref}"
        );
    }
}

#[tokio::test]
async fn out_of_range_limits_are_refused() {
    for limits in [
        TaskLimits {
            max_turns: Some(0),
            ..Default::default()
        },
        TaskLimits {
            max_tokens: Some(0),
            ..Default::default()
        },
        TaskLimits {
            timeout_secs: Some(0),
            ..Default::default()
        },
    ] {
        let mut d = draft(git("https://140.82.112.3/r.git"));
        d.limits = limits.clone();
        assert!(
            check_draft(&DraftRules::default(), &d).await.is_err(),
            "{limits:?}"
        );
    }
}

#[test]
fn an_empty_archive_is_a_zip() {
    assert_eq!(check_zip(EMPTY_ZIP, &ExtractOptions::default()), Ok(()));
}

#[test]
fn text_and_truncated_archives_are_not_zips() {
    assert!(
        check_zip(
            b"hello, this is not a zip file at all",
            &ExtractOptions::default()
        )
        .is_err()
    );
    let mut truncated = b"PK\x03\x04".to_vec();
    truncated.extend_from_slice(&[0u8; 64]);
    assert!(
        check_zip(&truncated, &ExtractOptions::default())
            .unwrap_err()
            .contains("truncated")
    );
}

/// A zip of `(name, contents)` entries, names written as given (`../x` included).
fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, contents) in entries {
        writer
            .start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(contents.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn an_entry_escaping_the_root_is_refused_with_the_extractions_message() {
    let bytes = zip_of(&[("ok.txt", "fine"), ("../../x", "escape")]);
    let err = check_zip(&bytes, &ExtractOptions::default()).unwrap_err();
    let extraction = orchestrator::WorkspaceError::ZipEntryEscapes {
        entry: "../../x".into(),
    }
    .to_string();
    assert!(err.ends_with(&extraction), "{err}");
}

#[test]
fn an_archive_over_the_workers_entry_cap_is_refused() {
    let bytes = zip_of(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let rules = ExtractOptions {
        max_entries: 2,
        ..ExtractOptions::default()
    };
    assert!(
        check_zip(&bytes, &rules)
            .unwrap_err()
            .contains("more than 2 entries")
    );
    assert_eq!(check_zip(&bytes, &ExtractOptions::default()), Ok(()));
}

/// The OpenAPI document states lengths as JSON Schema's `maxLength`, which counts
/// characters; the check counts the same, so a schema-valid text is accepted.
#[tokio::test]
async fn lengths_count_characters_not_bytes() {
    let mut d = draft(git("https://140.82.112.3/r.git"));
    d.description = "é".repeat(MAX_DESCRIPTION);
    d.model = Some("é".repeat(MAX_SHORT_FIELD));
    check_draft(&DraftRules::default(), &d).await.unwrap();
    d.description.push('é');
    let err = check_draft(&DraftRules::default(), &d).await.unwrap_err();
    assert_eq!(err.field, "description", "{err:?}");
}

#[test]
fn attempts_are_bounded_by_the_server_and_a_check_is_a_command_line() {
    assert!(check_best_of(Some(3), Some("python -m pytest -q"), 5).is_ok());
    assert!(check_best_of(None, None, 5).is_ok());
    for attempts in [0, 6] {
        let err = check_best_of(Some(attempts), None, 5).unwrap_err();
        assert_eq!(err.field, "attempts");
        assert!(err.message.contains("between 1 and 5"), "{}", err.message);
    }
    for check in ["", "   ", "make\u{7}test"] {
        assert_eq!(
            check_best_of(None, Some(check), 5).unwrap_err().field,
            "check"
        );
    }
    let long = "x".repeat(MAX_CHECK + 1);
    assert_eq!(
        check_best_of(None, Some(&long), 5).unwrap_err().field,
        "check"
    );
    assert!(check_best_of(None, Some("cd tests &&\n\tpytest"), 5).is_ok());
}
