use serde_json::{Value, json};

use super::*;

/// Every keyword in a portable schema, at every depth.
fn keywords(schema: &Value, out: &mut Vec<String>) {
    let Value::Object(map) = schema else { return };
    for (key, value) in map {
        out.push(key.clone());
        match key.as_str() {
            "properties" => {
                for property in value.as_object().unwrap().values() {
                    keywords(property, out);
                }
            }
            "items" => keywords(value, out),
            "anyOf" => {
                for option in value.as_array().unwrap() {
                    keywords(option, out);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn what_strict_validators_reject_is_rewritten_or_dropped() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Args",
        "type": "object",
        "additionalProperties": false,
        "propertyNames": {"pattern": "^[a-z]+$"},
        "properties": {
            "mode": {"const": "fast"},
            "count": {"type": "integer", "format": "uint64", "minimum": 0},
            "label": {"type": ["string", "null"]},
            "value": {"type": ["string", "integer"]},
            "when": {"type": "string", "format": "date-time"},
            "level": {"enum": [1, 2, 3]},
        },
        "required": ["mode", "ghost"],
    });
    let portable = portable_schema(&schema);
    let mut seen = Vec::new();
    keywords(&portable, &mut seen);
    for bad in ["$schema", "additionalProperties", "propertyNames", "const"] {
        assert!(!seen.iter().any(|k| k == bad), "{bad} left in {portable}");
    }
    let properties = &portable["properties"];
    assert_eq!(
        properties["mode"],
        json!({"enum": ["fast"], "type": "string"})
    );
    assert_eq!(
        properties["count"],
        json!({"type": "integer", "minimum": 0})
    );
    assert_eq!(
        properties["label"],
        json!({"type": "string", "nullable": true})
    );
    assert_eq!(
        properties["value"],
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    );
    assert_eq!(properties["when"]["format"], "date-time");
    assert_eq!(properties["level"], json!({"type": "integer"}));
    assert_eq!(portable["required"], json!(["mode"]));
}

#[test]
fn local_references_are_inlined_and_recursion_stops() {
    let schema = json!({
        "type": "object",
        "properties": {
            "point": {"$ref": "#/$defs/Point", "description": "where"},
            "tree": {"$ref": "#/definitions/Node"},
        },
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "definitions": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/Node"}}}},
    });
    let portable = portable_schema(&schema);
    assert_eq!(
        portable["properties"]["point"],
        json!({"type": "object", "properties": {"x": {"type": "number"}}, "description": "where"})
    );
    assert!(portable.get("$defs").is_none() && portable.get("definitions").is_none());
    let mut depth = 0;
    let mut node = &portable["properties"]["tree"];
    while let Some(child) = node.pointer("/properties/child") {
        node = child;
        depth += 1;
    }
    assert!(depth <= MAX_REF_DEPTH + 1, "{depth}");
    assert_eq!(node["type"], "object");
}

#[test]
fn one_of_and_all_of_become_any_of_and_a_merge() {
    let schema = json!({
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"oneOf": [{"type": "string"}, {"type": "null"}]}}},
        ]
    });
    let portable = portable_schema(&schema);
    assert_eq!(portable["type"], "object");
    assert_eq!(portable["properties"]["a"], json!({"type": "string"}));
    assert_eq!(
        portable["properties"]["b"],
        json!({"type": "string", "nullable": true})
    );
    assert_eq!(portable["required"], json!(["a"]));
}

#[test]
fn a_schema_that_is_not_an_object_becomes_an_open_object() {
    assert_eq!(portable_schema(&json!(true)), json!({"type": "object"}));
    assert_eq!(portable_schema(&json!({})), json!({"type": "object"}));
}

#[test]
fn only_known_strict_hosts_are_strict() {
    assert!(is_strict_endpoint(
        "https://generativelanguage.googleapis.com/v1beta/openai"
    ));
    assert!(is_strict_endpoint(
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/l/endpoints/openapi"
    ));
    assert!(!is_strict_endpoint("https://api.openai.com/v1"));
    assert!(!is_strict_endpoint(
        "http://evilgenerativelanguage.googleapis.com.example/v1"
    ));
    assert!(!is_strict_endpoint("not a url"));
}
