//! The first request: what the model is told about its job and its workspace.
//!
//! The system prompt carries the standing instructions, the workspace layout and the
//! repository's own `AGENTS.md` (capped, so a huge file cannot crowd out the task); the
//! user message carries the task and the optional target file. Everything here is plain
//! text so `prompt.txt` shows exactly what the model saw.

use std::path::Path;

use crate::output_text::cap_text;

/// Most bytes of `AGENTS.md` put in the prompt.
pub const AGENTS_MD_CAP: usize = 16_000;

/// What the prompt is built from.
#[derive(Debug, Clone)]
pub struct PromptInputs {
    pub task: String,
    pub target_file: Option<String>,
    /// A tree listing of the workspace (from the `list_directory` tool).
    pub workspace_layout: String,
    /// The repository's `AGENTS.md`, when it has one.
    pub agents_md: Option<String>,
    /// The configured MCP servers and where they stand.
    pub mcp_servers: Vec<crate::mcp::ServerReport>,
}

const STANDING_INSTRUCTIONS: &str = "\
You are a careful, autonomous software engineer working in a repository on the user's behalf.
You act only through the tools you are given; every path is relative to the workspace root.

How to work:
- Explore before you change things: list directories, search the code, read the relevant files.
- Make the smallest change that fully solves the task. Keep the project's style.
- Prefer `apply_patch` or `edit_file_content` to rewriting whole files.
- Run the project's tests or the relevant command to check your change when you can.
- If a tool call fails, read the error: it says what went wrong and how to fix the call.
- Do not ask the user questions; nobody will answer. Decide and proceed.
- When the task is done, reply without calling any tool: a short summary of what you changed
  and how you checked it. That reply ends the run.";

/// The system message.
pub fn system_prompt(inputs: &PromptInputs) -> String {
    let mut prompt = String::from(STANDING_INSTRUCTIONS);
    prompt.push_str("\n\n## Workspace layout (depth 2)\n");
    prompt.push_str(inputs.workspace_layout.trim_end());
    prompt.push('\n');
    if !inputs.mcp_servers.is_empty() {
        prompt.push_str("\n## MCP servers\nTools named `SERVER__TOOL` come from these servers:\n");
        for report in &inputs.mcp_servers {
            match &report.error {
                None => prompt.push_str(&format!(
                    "- `{}`: {} tool(s)\n",
                    report.server,
                    report.tools.len()
                )),
                Some(error) => prompt.push_str(&format!(
                    "- `{}`: unavailable in this run ({error}); do not try its tools\n",
                    report.server
                )),
            }
        }
    }
    if let Some(agents_md) = &inputs.agents_md {
        prompt.push_str(
            "\n## Repository instructions (AGENTS.md)\nFollow these instructions from the repository's maintainers:\n\n",
        );
        prompt.push_str(agents_md.trim_end());
        prompt.push('\n');
    }
    prompt
}

/// The user message: the task itself.
pub fn user_prompt(inputs: &PromptInputs) -> String {
    let mut prompt = format!("Task:\n{}\n", inputs.task.trim());
    if let Some(target) = &inputs.target_file {
        prompt.push_str(&format!(
            "\nThe task is about this file in particular: `{target}`. Start there.\n"
        ));
    }
    prompt
}

/// Reads `AGENTS.md` at the workspace root, capped at [`AGENTS_MD_CAP`] bytes. A missing
/// or unreadable file is simply absent: it is optional.
pub fn read_agents_md(root: &Path) -> Option<String> {
    let text = std::fs::read(root.join("AGENTS.md")).ok()?;
    let text = String::from_utf8_lossy(&text);
    if text.trim().is_empty() {
        return None;
    }
    Some(cap_text(&text, AGENTS_MD_CAP, "AGENTS.md"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> PromptInputs {
        PromptInputs {
            task: "fix the failing test".into(),
            target_file: Some("src/lib.rs".into()),
            workspace_layout: "src/\n  lib.rs\nCargo.toml\n".into(),
            agents_md: Some("Run `make test` before finishing.".into()),
            mcp_servers: Vec::new(),
        }
    }

    #[test]
    fn system_prompt_carries_layout_and_agents_md() {
        let prompt = system_prompt(&inputs());
        assert!(prompt.contains("src/\n  lib.rs"));
        assert!(prompt.contains("Run `make test` before finishing."));
        assert!(prompt.contains("AGENTS.md"));
    }

    #[test]
    fn system_prompt_names_mcp_servers_and_says_which_are_unavailable() {
        use crate::mcp::{ServerReport, ServerStatus};
        let prompt = system_prompt(&PromptInputs {
            mcp_servers: vec![
                ServerReport {
                    server: "docs".into(),
                    status: ServerStatus::Ready,
                    tools: vec!["docs__search".into()],
                    error: None,
                },
                ServerReport {
                    server: "broken".into(),
                    status: ServerStatus::Failed,
                    tools: Vec::new(),
                    error: Some("cannot start `nope`".into()),
                },
            ],
            ..inputs()
        });
        assert!(prompt.contains("- `docs`: 1 tool(s)"), "{prompt}");
        assert!(
            prompt.contains("- `broken`: unavailable in this run (cannot start `nope`)"),
            "{prompt}"
        );
        assert!(!system_prompt(&inputs()).contains("MCP servers"));
    }

    #[test]
    fn user_prompt_carries_task_and_target_file() {
        let prompt = user_prompt(&inputs());
        assert!(prompt.contains("fix the failing test"));
        assert!(prompt.contains("`src/lib.rs`"));
        let without = user_prompt(&PromptInputs {
            target_file: None,
            ..inputs()
        });
        assert!(!without.contains("in particular"));
    }

    #[test]
    fn agents_md_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("AGENTS.md"), "x".repeat(AGENTS_MD_CAP * 3)).unwrap();
        let text = read_agents_md(dir.path()).unwrap();
        assert!(text.len() < AGENTS_MD_CAP + 200, "{}", text.len());
        assert!(text.contains("AGENTS.md truncated"));
    }

    #[test]
    fn missing_or_blank_agents_md_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_agents_md(dir.path()).is_none());
        std::fs::write(dir.path().join("AGENTS.md"), "  \n").unwrap();
        assert!(read_agents_md(dir.path()).is_none());
    }
}
