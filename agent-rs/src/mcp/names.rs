//! Tool names as the model sees them: `server__tool`.
//!
//! Model APIs restrict function names (OpenAI: `^[a-zA-Z0-9_-]{1,64}$`; Gemini also
//! wants a letter or `_` first), while MCP tool names may hold dots, slashes, spaces or
//! anything else. The server name (already checked to start with a letter) leads, other
//! characters become `_`, and a name that would pass 64 characters, or that two tools
//! would share after that rewrite, ends in a short hash of the original instead.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

/// Longest function name every model API accepts.
pub const MAX_TOOL_NAME: usize = 64;

/// Hands out unique model-facing names.
#[derive(Debug, Default)]
pub struct ToolNamer {
    taken: BTreeSet<String>,
}

impl ToolNamer {
    /// Builtin tool names are taken from the start.
    pub fn new<'a>(taken: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            taken: taken.into_iter().map(str::to_string).collect(),
        }
    }

    /// The model-facing name of `tool` on `server`.
    pub fn name(&mut self, server: &str, tool: &str) -> String {
        let cleaned: String = tool
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let plain = format!("{server}__{cleaned}");
        let name = if plain.len() <= MAX_TOOL_NAME && !self.taken.contains(&plain) {
            plain
        } else {
            let hash = short_hash(&format!("{server}\0{tool}"));
            let room = MAX_TOOL_NAME - hash.len() - 1;
            let mut head = plain;
            head.truncate(room);
            format!("{head}_{hash}")
        };
        self.taken.insert(name.clone());
        name
    }
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        name.len() <= MAX_TOOL_NAME
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn plain_names_are_prefixed_with_the_server() {
        let mut namer = ToolNamer::default();
        assert_eq!(namer.name("docs", "search"), "docs__search");
        assert_eq!(namer.name("gh", "list-issues"), "gh__list-issues");
    }

    #[test]
    fn names_any_api_would_refuse_are_rewritten_and_stay_unique() {
        let mut namer = ToolNamer::default();
        let dotted = namer.name("fs", "files.read");
        let spaced = namer.name("fs", "files read");
        assert_eq!(dotted, "fs__files_read");
        assert_ne!(dotted, spaced);
        let long = namer.name("server", &"x".repeat(200));
        let unicode = namer.name("s", "résumé/写");
        for name in [&dotted, &spaced, &long, &unicode] {
            assert!(valid(name), "{name}");
        }
        assert_eq!(long.len(), MAX_TOOL_NAME);
    }

    #[test]
    fn a_taken_name_is_not_handed_out_again() {
        let mut namer = ToolNamer::new(["a__b"]);
        let name = namer.name("a", "b");
        assert_ne!(name, "a__b");
        assert!(name.starts_with("a__b_"), "{name}");
    }
}
