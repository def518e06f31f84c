//! One streamed Chat Completions chunk, read leniently.
//!
//! "OpenAI-compatible" servers differ in the details of their chunks, and a strict reader
//! fails whole answers over a missing field. Recorded streams show tool calls without
//! `index`, `id: ""`, `name: null`, `tool_calls` sent as an object instead of an array, no
//! `object` field, `choices: null`, `finish_reason` keys absent, arguments sent as a JSON
//! object, usage in three places (`usage`, `x_groq.usage`, a choice's `usage`) and error
//! objects inside normal chunks. Every field here is optional and `null` reads as absent;
//! fields nobody needs are skipped unread (serde ignores unknown keys), so the reading
//! costs little even for the 20 MB argument deltas some calls carry.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The parts of a chunk the client acts on.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Chunk {
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) choices: Vec<Choice>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
    /// An error the server reports inside a normal chunk (OpenRouter) or as the data of
    /// an `event: error` (Groq).
    #[serde(default)]
    pub(super) error: Option<serde_json::Value>,
    /// Groq repeats usage here.
    #[serde(default)]
    pub(super) x_groq: Option<XGroq>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct XGroq {
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Choice {
    #[serde(default)]
    pub(super) index: Option<u32>,
    #[serde(default)]
    pub(super) delta: Option<Delta>,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Delta {
    #[serde(default)]
    pub(super) content: Option<String>,
    #[serde(default)]
    pub(super) tool_calls: Option<OneOrMany<ToolCallDelta>>,
}

/// `tool_calls` as the spec has it (an array) or as TGI sends it (one object).
#[derive(Debug)]
pub(super) struct OneOrMany<T>(pub(super) Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: no copy of the (possibly huge) content.
        struct ArrayOrObject<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ArrayOrObject<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of tool calls or one tool call")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|one| OneOrMany(vec![one]))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OneOrMany(Vec::new()))
            }
        }

        deserializer.deserialize_any(ArrayOrObject(std::marker::PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ToolCallDelta {
    #[serde(default)]
    pub(super) index: Option<u32>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct FunctionDelta {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) arguments: Option<ArgumentsText>,
}

/// A slice of a call's arguments: JSON text as the spec has it, or (from a few servers)
/// the arguments object itself, kept as its JSON text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ArgumentsText(pub(super) String);

impl<'de> Deserialize<'de> for ArgumentsText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextOrValue;

        impl<'de> Visitor<'de> for TextOrValue {
            type Value = ArgumentsText;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("argument text or a JSON value")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(ArgumentsText(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(ArgumentsText(text))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ArgumentsText::default())
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ArgumentsText::default())
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let value =
                    serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ArgumentsText(value.to_string()))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let value =
                    serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ArgumentsText(value.to_string()))
            }
        }

        deserializer.deserialize_any(TextOrValue)
    }
}

/// Token counts as servers send them; any count may be missing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub(super) struct WireUsage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) prompt_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) completion_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) total_tokens: u64,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
