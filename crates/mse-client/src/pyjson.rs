//! `json.dumps(value)` with Python's defaults, byte for byte.
//!
//! The original client sends the configuration payload with requests' `json=`, i.e.
//! `json.dumps(obj, allow_nan=False)`: separators `", "` and `": "`, `ensure_ascii=True`
//! (everything outside printable ASCII as lowercase `\uXXXX`, astral characters as surrogate
//! pairs), floats as `repr(float)`, and objects in insertion order (serde_json is built with
//! `preserve_order` for this).
//!
//! Known divergence: an integer beyond the 64-bit range is read by serde_json as a float, while
//! Python keeps it exact; such values serialize differently.

use serde_json::{Map, Number, Value};

/// Where serialized bytes go: a real buffer, or a counter used to size the buffer exactly
/// first (so a buffer holding secrets never reallocates and leaves copies behind).
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts bytes instead of storing them.
#[derive(Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// `json.dumps(value)`.
#[cfg(test)]
pub(crate) fn dumps(value: &Value) -> String {
    let mut out = Vec::new();
    write_value(&mut out, value);
    String::from_utf8(out).unwrap_or_default()
}

pub(crate) fn write_value(out: &mut impl Sink, value: &Value) {
    match value {
        Value::Null => out.put(b"null"),
        Value::Bool(true) => out.put(b"true"),
        Value::Bool(false) => out.put(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.put(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(b", ");
                }
                write_value(out, item);
            }
            out.put(b"]");
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut impl Sink, map: &Map<String, Value>) {
    out.put(b"{");
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.put(b", ");
        }
        write_str(out, key);
        out.put(b": ");
        write_value(out, value);
    }
    out.put(b"}");
}

/// A JSON string with `ensure_ascii=True`.
pub(crate) fn write_str(out: &mut impl Sink, s: &str) {
    out.put(b"\"");
    let mut units = [0u16; 2];
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '\u{08}' => Some(b"\\b"),
            '\u{0c}' => Some(b"\\f"),
            ' '..='~' => continue,
            _ => None,
        };
        out.put(s.as_bytes().get(start..i).unwrap_or_default());
        start = i + c.len_utf8();
        match escape {
            Some(e) => out.put(e),
            None => {
                for unit in c.encode_utf16(&mut units).iter() {
                    out.put(format!("\\u{unit:04x}").as_bytes());
                }
            }
        }
    }
    out.put(s.as_bytes().get(start..).unwrap_or_default());
    out.put(b"\"");
}

fn write_number(out: &mut impl Sink, n: &Number) {
    if let Some(i) = n.as_i64() {
        out.put(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.put(u.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        out.put(float_repr(f).as_bytes());
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in positional notation when the
/// decimal exponent is in [-4, 16), otherwise as `d.ddde±XX`; always with a `.0` when integral.
pub(crate) fn float_repr(f: f64) -> String {
    if !f.is_finite() {
        // Unreachable from serde_json values; Python would refuse with allow_nan=False.
        return "null".to_owned();
    }
    // Rust's `{:e}` also prints the shortest round-tripping digits: split them out.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let point = exponent + 1; // value = 0.DIGITS × 10^point
    let sign = if f.is_sign_negative() { "-" } else { "" };

    if !(-4 < point && point <= 16) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{rest}e{e_sign}{:02}", exponent.unsigned_abs());
    }
    let n = digits.len() as i32;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point < n {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    } else {
        format!("{digits}{}.0", "0".repeat((point - n) as usize))
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_python_repr() {
        for (f, repr) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (123456789.125, "123456789.125"),
            (1e100, "1e+100"),
            (-2.5e-300, "-2.5e-300"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(float_repr(f), repr, "{f:?}");
        }
    }

    #[test]
    fn strings_are_ascii_escaped() {
        let v = Value::String("a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{7f}é€😀 ~".into());
        assert_eq!(
            dumps(&v),
            r#""a\"b\\c\n\r\t\b\f\u0001\u007f\u00e9\u20ac\ud83d\ude00 ~""#
        );
    }

    #[test]
    fn containers_and_separators() {
        let v: Value =
            serde_json::from_str(r#"{"z": [1, -2, 3.0, true, null, {}], "a": []}"#).unwrap();
        assert_eq!(dumps(&v), r#"{"z": [1, -2, 3.0, true, null, {}], "a": []}"#);
    }
}
