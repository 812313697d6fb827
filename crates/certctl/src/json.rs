//! A small JSON document model and writer, enough for `--json` output.
//!
//! The generated proto types carry no serde derives, so the output module builds a
//! [`Value`] by hand and this module writes it as RFC 8259 JSON, pretty-printed.

use std::fmt::Write as _;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer (the API has no floating-point fields).
    Int(i128),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object; keys keep their insertion order.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    /// An integer value.
    pub fn int(n: impl Into<i128>) -> Self {
        Self::Int(n.into())
    }

    /// The value pretty-printed with two-space indentation, without a trailing newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Self::Str(s) => write_string(out, s),
            Self::Array(items) if items.is_empty() => out.push_str("[]"),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    item.write(out, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Self::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Self::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    write_string(out, key);
                    out.push_str(": ");
                    value.write(out, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
        }
    }
}

/// Builds an object from `(key, value)` pairs.
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Writes `s` as a JSON string literal, escaping quotes, backslashes and control
/// characters.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(Value::Null.to_pretty(), "null");
        assert_eq!(Value::Bool(true).to_pretty(), "true");
        assert_eq!(Value::Bool(false).to_pretty(), "false");
        assert_eq!(Value::int(-7).to_pretty(), "-7");
        assert_eq!(Value::int(u64::MAX).to_pretty(), "18446744073709551615");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            Value::str("a\"b\\c\nd\te\u{1}f\u{7f}é").to_pretty(),
            r#""a\"b\\c\nd\te\u0001f"#.to_owned() + "\u{7f}é\""
        );
        assert_eq!(Value::str("</script>").to_pretty(), "\"</script>\"");
    }

    #[test]
    fn nested_values_are_indented() {
        let value = object([
            ("id", Value::str("c1")),
            (
                "domains",
                Value::Array(vec![Value::str("a"), Value::str("b")]),
            ),
            ("empty", Value::Array(vec![])),
            ("revocation", Value::Null),
            ("nested", object([("k", Value::int(1u8))])),
        ]);
        let expected = "{\n  \"id\": \"c1\",\n  \"domains\": [\n    \"a\",\n    \"b\"\n  ],\n  \
                        \"empty\": [],\n  \"revocation\": null,\n  \"nested\": {\n    \"k\": 1\n  }\n}";
        assert_eq!(value.to_pretty(), expected);
    }
}
