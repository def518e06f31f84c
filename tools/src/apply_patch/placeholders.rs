//! Secret placeholders in a patch: a model that read `[REDACTED:DB_PASSWORD]` in a file
//! copies it into the patch's context and `-` lines. Each is put back to the secret's
//! value in an update of a file that holds that value, so the hunk matches the file; a
//! new file, or a file without the value, is refused before anything is written (see
//! [`crate::redact`]).

use crate::error::ToolError;
use crate::redact::{PlaceholderNotInFile, SecretRedactor};

use super::apply::ResolvedOp;
use super::parser::FileOp;

/// `ops` with every placeholder restored, or the refusal of the first op that cannot be.
pub(super) fn restore(
    ops: Vec<ResolvedOp>,
    secrets: &SecretRedactor,
) -> Result<Vec<ResolvedOp>, ToolError> {
    if secrets.is_empty() {
        return Ok(ops);
    }
    ops.into_iter()
        .map(|mut resolved| {
            let (header, line) = (resolved.op.header(), resolved.op.line());
            let refused = |err: PlaceholderNotInFile| {
                ToolError::rejected(format!(
                    "Refused `{header}` (patch line {line}): {err}. Nothing was changed."
                ))
            };
            match &mut resolved.op {
                FileOp::Add { contents, .. } => {
                    if secrets.has_placeholder(contents) {
                        *contents = secrets.restore_within(contents, "").map_err(refused)?;
                    }
                }
                FileOp::Update { chunks, .. } => {
                    let texts = chunks.iter_mut().flat_map(|chunk| {
                        chunk
                            .contexts
                            .iter_mut()
                            .chain(chunk.old_lines.iter_mut())
                            .chain(chunk.new_lines.iter_mut())
                    });
                    let mut with_placeholders: Vec<&mut String> =
                        texts.filter(|text| secrets.has_placeholder(text)).collect();
                    if !with_placeholders.is_empty() {
                        // Unreadable or not text: the update itself reports that.
                        let file = std::fs::read_to_string(&resolved.target).unwrap_or_default();
                        for text in &mut with_placeholders {
                            **text = secrets.restore_within(text, &file).map_err(refused)?;
                        }
                    }
                }
                FileOp::Delete { .. } => {}
            }
            Ok(resolved)
        })
        .collect()
}
