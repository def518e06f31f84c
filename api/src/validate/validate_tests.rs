use super::*;

fn draft(input: DraftInput) -> TaskDraft {
    TaskDraft {
        input,
        description: "fix it".into(),
        target_file: None,
        model: None,
        limits: TaskLimits::default(),
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
        check_draft(&GitUrlPolicy::default(), &d)
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
        let err = check_draft(&GitUrlPolicy::default(), &d).await.unwrap_err();
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
            check_draft(&GitUrlPolicy::default(), &d).await.is_err(),
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
            check_draft(&GitUrlPolicy::default(), &d).await.is_err(),
            "{limits:?}"
        );
    }
}

#[test]
fn an_empty_archive_is_a_zip() {
    assert_eq!(check_zip(EMPTY_ZIP), Ok(()));
}

#[test]
fn text_and_truncated_archives_are_not_zips() {
    assert!(check_zip(b"hello, this is not a zip file at all").is_err());
    let mut truncated = b"PK\x03\x04".to_vec();
    truncated.extend_from_slice(&[0u8; 64]);
    assert!(check_zip(&truncated).unwrap_err().contains("truncated"));
}
