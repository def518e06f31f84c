use super::*;

fn config(default_timeout_secs: u64, max_timeout_secs: u64) -> ShellConfig {
    ShellConfig {
        default_timeout_secs,
        max_timeout_secs,
        ..ShellConfig::default()
    }
}

fn secs(value: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(value)
}

#[test]
fn no_requested_timeout_uses_the_configured_default() {
    assert_eq!(
        choose_timeout(None, &config(120, 600)),
        TimeoutChoice {
            secs: 120,
            clamped_from: None
        }
    );
}

#[test]
fn requested_timeout_within_the_maximum_is_used_as_is() {
    assert_eq!(
        choose_timeout(secs(600), &config(120, 600)),
        TimeoutChoice {
            secs: 600,
            clamped_from: None
        }
    );
}

#[test]
fn requested_timeout_above_the_maximum_is_clamped_and_remembered() {
    assert_eq!(
        choose_timeout(secs(601), &config(120, 600)),
        TimeoutChoice {
            secs: 600,
            clamped_from: Some(601)
        }
    );
}

#[test]
fn default_above_the_maximum_is_lowered_silently() {
    assert_eq!(
        choose_timeout(None, &config(900, 600)),
        TimeoutChoice {
            secs: 600,
            clamped_from: None
        }
    );
}

#[test]
fn schema_requires_only_the_command_and_forbids_other_fields() {
    let schema = ShellTool.parameters();
    assert_eq!(schema["required"], serde_json::json!(["command_string"]));
    assert_eq!(schema["additionalProperties"], false);
    let properties = schema["properties"].as_object().unwrap();
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["command_string", "target_directory", "timeout_seconds"]
    );
    assert_eq!(properties["target_directory"]["default"], ".");
}
