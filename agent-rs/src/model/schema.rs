//! Tool schemas every server accepts.
//!
//! OpenAI, vLLM and most others take any JSON Schema as a function's `parameters`. Strict
//! validators do not: Gemini's OpenAI-compatible endpoint answers 400 to keywords outside
//! its OpenAPI 3.0 subset (`$schema`, `additionalProperties`, `const`, `propertyNames`,
//! `$ref`...), to `type` given as an array, to formats such as `uint64`, and to `required`
//! names that are not among the properties. MCP servers bring schemas of any shape, so
//! the client sends the full schema where it is accepted and this portable rewrite where
//! it is not (see [`SchemaDialect`]).
//!
//! The rewrite keeps the meaning where the subset can say it (`const` becomes a one-value
//! `enum`, `["string", "null"]` becomes `nullable`, `oneOf` becomes `anyOf`, local `$ref`s
//! are inlined) and drops what it cannot (the tool still validates its own arguments).

use serde::Deserialize;
use serde_json::{Map, Value};

/// Which schemas an endpoint is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaDialect {
    /// Portable for endpoints known to be strict (Gemini), full elsewhere; switched to
    /// portable for the rest of the run when a server rejects the full schemas.
    #[default]
    Auto,
    /// The schemas exactly as the tools declare them.
    Full,
    /// The rewrite in this module.
    Portable,
}

/// Hosts whose OpenAI-compatible endpoint validates schemas strictly.
const STRICT_HOSTS: &[&str] = &[
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
];

/// Whether `base_url` points at an endpoint known to refuse full JSON Schema.
pub(super) fn is_strict_endpoint(base_url: &str) -> bool {
    reqwest::Url::parse(base_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| {
            STRICT_HOSTS
                .iter()
                // Regional Vertex hosts read `us-central1-aiplatform.googleapis.com`.
                .any(|strict| {
                    host == *strict
                        || host.ends_with(&format!(".{strict}"))
                        || host.ends_with(&format!("-{strict}"))
                })
        })
}

/// Keywords of the portable subset; everything else is dropped.
const KEPT: &[&str] = &[
    "type",
    "description",
    "title",
    "enum",
    "properties",
    "required",
    "items",
    "anyOf",
    "nullable",
    "format",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
];

/// Formats the subset knows, per type.
fn format_allowed(kind: Option<&str>, format: &str) -> bool {
    match kind {
        Some("string") => matches!(format, "date-time" | "enum"),
        Some("integer") => matches!(format, "int32" | "int64"),
        Some("number") => matches!(format, "float" | "double"),
        _ => false,
    }
}

/// How deep `$ref`s are followed; recursive schemas stop there as a plain object.
const MAX_REF_DEPTH: usize = 8;

/// The portable form of a tool's `parameters` schema.
pub fn portable_schema(schema: &Value) -> Value {
    let definitions = Definitions::of(schema);
    let mut portable = rewrite(schema, &definitions, 0);
    if let Value::Object(map) = &mut portable
        && !map.contains_key("type")
    {
        map.insert("type".into(), Value::from("object"));
    }
    portable
}

/// `$defs` / `definitions` of the root schema, for inlining `$ref`s.
struct Definitions<'a> {
    root: &'a Value,
}

impl<'a> Definitions<'a> {
    fn of(root: &'a Value) -> Self {
        Self { root }
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }
}

fn rewrite(schema: &Value, definitions: &Definitions<'_>, depth: usize) -> Value {
    let Value::Object(map) = schema else {
        // `true` / `false` schemas, or garbage: anything goes.
        return Value::Object(Map::new());
    };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        return match definitions.resolve(reference) {
            Some(target) if depth < MAX_REF_DEPTH => {
                let mut inlined = rewrite(target, definitions, depth + 1);
                if let (Value::Object(inlined), Some(description)) =
                    (&mut inlined, map.get("description"))
                {
                    inlined.insert("description".into(), description.clone());
                }
                inlined
            }
            _ => object_schema(map.get("description")),
        };
    }
    let mut out = Map::new();
    let mut any_of: Vec<Value> = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "type" => rewrite_type(value, &mut out, &mut any_of),
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            "oneOf" | "anyOf" => {
                if let Value::Array(options) = value {
                    any_of.extend(options.iter().map(|o| rewrite(o, definitions, depth)));
                }
            }
            "allOf" => {
                if let Value::Array(parts) = value {
                    for part in parts {
                        merge_into(&mut out, rewrite(part, definitions, depth));
                    }
                }
            }
            "properties" => {
                if let Value::Object(properties) = value {
                    let properties = properties
                        .iter()
                        .map(|(name, property)| {
                            (name.clone(), rewrite(property, definitions, depth))
                        })
                        .collect();
                    out.insert("properties".into(), Value::Object(properties));
                }
            }
            "items" => {
                let items = match value {
                    // Tuple form: the first item's schema is the best single answer.
                    Value::Array(tuple) => tuple.first().cloned().unwrap_or(Value::Bool(true)),
                    other => other.clone(),
                };
                out.insert("items".into(), rewrite(&items, definitions, depth));
            }
            "exclusiveMinimum" if value.is_number() => {
                out.entry("minimum").or_insert_with(|| value.clone());
            }
            "exclusiveMaximum" if value.is_number() => {
                out.entry("maximum").or_insert_with(|| value.clone());
            }
            other if KEPT.contains(&other) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    finish_object(&mut out, any_of);
    Value::Object(out)
}

/// `type` as a string stays; `["T", "null"]` becomes `T` + `nullable`; several real types
/// become `anyOf` alternatives.
fn rewrite_type(value: &Value, out: &mut Map<String, Value>, any_of: &mut Vec<Value>) {
    let Value::Array(kinds) = value else {
        out.insert("type".into(), value.clone());
        return;
    };
    let real: Vec<&Value> = kinds
        .iter()
        .filter(|k| k.as_str() != Some("null"))
        .collect();
    if real.len() < kinds.len() {
        out.insert("nullable".into(), Value::Bool(true));
    }
    match real.as_slice() {
        [] => {}
        [one] => {
            out.insert("type".into(), (*one).clone());
        }
        many => any_of.extend(many.iter().map(|kind| {
            let mut alternative = Map::new();
            alternative.insert("type".into(), (*kind).clone());
            Value::Object(alternative)
        })),
    }
}

/// Final checks the strict validators make.
fn finish_object(out: &mut Map<String, Value>, any_of: Vec<Value>) {
    if !any_of.is_empty() {
        // `null` alternatives become `nullable` on the schema itself.
        let (nulls, real): (Vec<Value>, Vec<Value>) = any_of
            .into_iter()
            .partition(|option| option.get("type").and_then(Value::as_str) == Some("null"));
        if !nulls.is_empty() {
            out.insert("nullable".into(), Value::Bool(true));
        }
        match <[Value; 1]>::try_from(real) {
            Ok([single]) => merge_into(out, single),
            Err(real) if !real.is_empty() => {
                out.insert("anyOf".into(), Value::Array(real));
            }
            Err(_) => {}
        }
    }
    let kind = out.get("type").and_then(Value::as_str).map(str::to_owned);
    if let Some(format) = out.get("format").and_then(Value::as_str)
        && !format_allowed(kind.as_deref(), format)
    {
        out.remove("format");
    }
    // Only string enums are accepted: others are dropped, the type stays.
    if let Some(Value::Array(values)) = out.get("enum") {
        let all_strings = values.iter().all(Value::is_string);
        let inferred = values.first().and_then(json_type);
        if !all_strings {
            out.remove("enum");
        }
        if kind.is_none()
            && let Some(inferred) = if all_strings {
                Some("string")
            } else {
                inferred
            }
        {
            out.insert("type".into(), Value::from(inferred));
        }
    }
    // `required` may only name declared properties.
    let declared: Option<Vec<String>> = out
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect());
    if let Some(Value::Array(required)) = out.get_mut("required") {
        required.retain(|name| {
            name.as_str().is_some_and(|name| {
                declared
                    .as_ref()
                    .is_some_and(|d| d.iter().any(|p| p == name))
            })
        });
        if required.is_empty() {
            out.remove("required");
        }
    }
}

/// Merges `part` into `out`: properties and required lists are joined, other keys kept
/// from whichever came first.
fn merge_into(out: &mut Map<String, Value>, part: Value) {
    let Value::Object(part) = part else { return };
    for (key, value) in part {
        match (key.as_str(), out.get_mut(&key), value) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                mine.extend(theirs);
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                mine.extend(theirs);
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                out.insert(key, value);
            }
        }
    }
}

fn object_schema(description: Option<&Value>) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::from("object"));
    if let Some(description) = description {
        map.insert("description".into(), description.clone());
    }
    Value::Object(map)
}

fn json_type(value: &Value) -> Option<&'static str> {
    match value {
        Value::Bool(_) => Some("boolean"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
        Value::Number(_) => Some("number"),
        Value::String(_) => Some("string"),
        Value::Array(_) => Some("array"),
        Value::Object(_) => Some("object"),
        Value::Null => None,
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
