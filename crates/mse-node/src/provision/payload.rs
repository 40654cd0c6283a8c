//! The configuration payload (protocol §2.2), parsed into a typed value before anything else
//! happens. Both parsers here take untrusted bytes, never panic, and are fuzzed.
//!
//! Secrets are kept as the exact JSON text received: the original wrote `json.dumps(json.loads(x))`,
//! which for what its clients send (Python's `json.dumps`) is `x` itself; keeping the text also
//! keeps big integers and key order that a round trip through a typed value would change.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Raw 32-byte code key, wiped on drop.
pub type KeyBytes = Zeroizing<[u8; 32]>;

/// Overhead of a libsodium sealed box: ephemeral public key and tag.
const SEALED_BOX_OVERHEAD: usize = 48;

/// Why a payload was refused. The text goes back to the client: it names the field, never a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the payload is not a JSON object with the expected fields: {0}")]
    Json(String),
    #[error("`uuid` is missing")]
    MissingUuid,
    #[error("`uuid` is not a UUID")]
    BadUuid,
    #[error("`{0}` must be the hex encoding of 32 bytes (64 hex digits)")]
    BadKey(&'static str),
    #[error("`app_sealed_secrets` is not base64url")]
    SealedNotBase64,
    #[error("`app_sealed_secrets` is too short to be a sealed box")]
    SealedTooShort,
    #[error("the opened `app_sealed_secrets` is not a JSON object")]
    SealedNotObject,
}

/// A configuration payload, well-formed but not yet checked against this node.
#[derive(Debug)]
pub struct Configuration<'a> {
    pub uuid: Uuid,
    /// Top-level `code_secret_key`; overrides the one inside the sealed secrets.
    pub code_secret_key: Option<KeyBytes>,
    /// `app_secrets` as received, when truthy in Python's sense (the original skipped falsy ones).
    pub app_secrets: Option<&'a RawValue>,
    /// `app_sealed_secrets`, decoded from base64url: a sealed box for the enclave key.
    pub app_sealed_secrets: Option<Vec<u8>>,
    /// `ssl_private_key` (PEM), used in custom-certificate mode only.
    pub ssl_private_key: Option<Zeroizing<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(default, borrow)]
    uuid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    code_secret_key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    app_secrets: Option<&'a RawValue>,
    #[serde(default, borrow)]
    app_sealed_secrets: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    ssl_private_key: Option<Cow<'a, str>>,
}

/// Parses a configuration payload. Never panics.
///
/// Unknown fields are refused: a misspelt `app_secret` silently dropped would start the app
/// without its secrets.
pub fn parse_configuration(bytes: &[u8]) -> Result<Configuration<'_>, PayloadError> {
    // serde would also fill a struct from a JSON array, positionally: only an object is a payload.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(PayloadError::Json("expected a JSON object".into()));
    }
    let wire: Wire<'_> =
        serde_json::from_slice(bytes).map_err(|e| PayloadError::Json(describe(&e)))?;
    let uuid = wire.uuid.ok_or(PayloadError::MissingUuid)?;
    let uuid = Uuid::try_parse(&uuid).map_err(|_| PayloadError::BadUuid)?;
    let code_secret_key = non_empty(wire.code_secret_key)
        .map(|k| parse_key(&k, "code_secret_key"))
        .transpose()?;
    let app_secrets = wire.app_secrets.filter(|raw| is_truthy(raw.get()));
    let app_sealed_secrets = non_empty(wire.app_sealed_secrets)
        .map(|s| {
            let sealed = BASE64URL
                .decode(s.as_bytes())
                .map_err(|_| PayloadError::SealedNotBase64)?;
            if sealed.len() < SEALED_BOX_OVERHEAD {
                return Err(PayloadError::SealedTooShort);
            }
            Ok(sealed)
        })
        .transpose()?;
    let ssl_private_key = non_empty(wire.ssl_private_key).map(|k| Zeroizing::new(k.into_owned()));
    Ok(Configuration {
        uuid,
        code_secret_key,
        app_secrets,
        app_sealed_secrets,
        ssl_private_key,
    })
}

/// The opened `app_sealed_secrets`: any JSON object; an optional `code_secret_key` in it is used.
#[derive(Debug)]
pub struct SealedSecrets {
    pub code_secret_key: Option<KeyBytes>,
}

/// Parses the plaintext of `app_sealed_secrets`. Never panics.
pub fn parse_sealed_secrets(bytes: &[u8]) -> Result<SealedSecrets, PayloadError> {
    #[derive(Deserialize)]
    struct Sealed<'a> {
        #[serde(default, borrow)]
        code_secret_key: Option<Cow<'a, str>>,
    }
    // Deserialising a struct from a JSON array would succeed positionally: insist on an object.
    let raw: &RawValue =
        serde_json::from_slice(bytes).map_err(|_| PayloadError::SealedNotObject)?;
    if !raw.get().starts_with('{') {
        return Err(PayloadError::SealedNotObject);
    }
    let sealed: Sealed<'_> = serde_json::from_str(raw.get()).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            PayloadError::BadKey("app_sealed_secrets.code_secret_key")
        }
        _ => PayloadError::SealedNotObject,
    })?;
    let code_secret_key = non_empty(sealed.code_secret_key)
        .map(|k| parse_key(&k, "app_sealed_secrets.code_secret_key"))
        .transpose()?;
    Ok(SealedSecrets { code_secret_key })
}

const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn non_empty(s: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    s.filter(|s| !s.is_empty())
}

fn parse_key(hex_str: &str, field: &'static str) -> Result<KeyBytes, PayloadError> {
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_str, key.as_mut_slice()).map_err(|_| PayloadError::BadKey(field))?;
    Ok(key)
}

/// Python truthiness of a JSON value, from its text: `null`, `false`, zero, `""`, `[]` and `{}`
/// are false.
fn is_truthy(raw: &str) -> bool {
    let inner_empty = |open: char, close: char| {
        raw.strip_prefix(open)
            .and_then(|r| r.strip_suffix(close))
            .is_some_and(|r| r.trim().is_empty())
    };
    match raw {
        "null" | "false" | "\"\"" => false,
        _ if inner_empty('[', ']') || inner_empty('{', '}') => false,
        _ if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
            raw.parse::<f64>() != Ok(0.0)
        }
        _ => true,
    }
}

/// The serde error without echoing input (it may hold secrets): what and where.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "invalid JSON",
        Category::Eof => "truncated JSON",
        Category::Data => return data_error(e),
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Data errors: unknown and duplicate fields are named; for a wrong type only the JSON kind is
/// kept, as serde quotes the offending value and that value may be a secret.
fn data_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let head = msg.split(" at line ").next().unwrap_or_default();
    let position = format!("at line {} column {}", e.line(), e.column());
    if head.starts_with("unknown field") || head.starts_with("duplicate field") {
        let field = head.split(", expected").next().unwrap_or_default();
        format!("{field} {position}")
    } else if let Some(kind) = head.strip_prefix("invalid type: ") {
        let kind = kind.split([' ', ',']).next().unwrap_or_default();
        format!(
            "wrong type ({kind}) {position}; the payload is an object whose uuid, code_secret_key, \
             app_sealed_secrets and ssl_private_key are strings"
        )
    } else {
        format!("invalid field {position}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "63322f85-1ff8-4483-91ae-f18d7398d157";
    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn the_mse_cli_payload_parses() {
        // What mse-cli 1.3 sends (requests `json=`: Python json.dumps separators).
        let body = format!(
            r#"{{"uuid": "{ID}", "app_secrets": {{"login": "alice", "n": 123456789012345678901234567890}}, "app_sealed_secrets": "D6poTtKIZ7l_Smot7l34zpdOdrcBjj8iocTPJnhXDyARryq6ekEV5fuRzbY76rBUofndH334yH4wijpfdU0lt_QiC-fWKp0ei-YpXLyK3ceO0uNt5xrE2Ly-lrIuBNNmCC15nd_4jUU70tqWwCyBYrkzQDXGcl7p8TPDkN_Q_isQg1RJK5Bf", "code_secret_key": "{KEY}"}}"#
        );
        let c = parse_configuration(body.as_bytes()).unwrap();
        assert_eq!(c.uuid.to_string(), ID);
        assert_eq!(c.code_secret_key.as_deref().map(|k| k[31]), Some(0x1f));
        // Written to SECRETS_PATH verbatim, as json.dumps would have: big integer intact.
        assert_eq!(
            c.app_secrets.unwrap().get(),
            r#"{"login": "alice", "n": 123456789012345678901234567890}"#
        );
        assert_eq!(c.app_sealed_secrets.as_ref().map(Vec::len), Some(135));
        assert!(c.ssl_private_key.is_none());
    }

    #[test]
    fn escaped_strings_and_padding() {
        let body = format!(
            r#"{{"uuid":"{}","ssl_private_key":"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n","app_sealed_secrets":"{}=="}}"#,
            ID.to_uppercase(),
            "A".repeat(66)
        );
        let c = parse_configuration(body.as_bytes()).unwrap();
        assert_eq!(c.uuid.to_string(), ID);
        assert!(c.ssl_private_key.unwrap().contains("\nabc\n"));
    }

    #[test]
    fn falsy_values_are_absent() {
        for v in [
            "null", "false", "0", "-0", "0.0", "0e10", "\"\"", "[]", "{ }", "[\n]",
        ] {
            let body = format!(
                r#"{{"uuid":"{ID}","app_secrets":{v},"code_secret_key":"","ssl_private_key":""}}"#
            );
            let c = parse_configuration(body.as_bytes()).unwrap();
            assert!(c.app_secrets.is_none(), "{v}");
            assert!(c.code_secret_key.is_none() && c.ssl_private_key.is_none());
        }
        for v in ["true", "1", "-0.5", "\"x\"", "[0]", "{\"a\":null}", "\" \""] {
            let body = format!(r#"{{"uuid":"{ID}","app_secrets":{v}}}"#);
            assert_eq!(
                parse_configuration(body.as_bytes())
                    .unwrap()
                    .app_secrets
                    .unwrap()
                    .get(),
                v
            );
        }
    }

    #[test]
    fn refusals_say_which_field() {
        let cases: &[(&str, PayloadError)] = &[
            ("{}", PayloadError::MissingUuid),
            (r#"{"uuid":"nope"}"#, PayloadError::BadUuid),
            (
                &format!(r#"{{"uuid":"{ID}","code_secret_key":"abcd"}}"#),
                PayloadError::BadKey("code_secret_key"),
            ),
            (
                &format!(
                    r#"{{"uuid":"{ID}","code_secret_key":"{}"}}"#,
                    "zz".repeat(32)
                ),
                PayloadError::BadKey("code_secret_key"),
            ),
            (
                &format!(r#"{{"uuid":"{ID}","app_sealed_secrets":"***"}}"#),
                PayloadError::SealedNotBase64,
            ),
            (
                &format!(r#"{{"uuid":"{ID}","app_sealed_secrets":"AAAA"}}"#),
                PayloadError::SealedTooShort,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse_configuration(body.as_bytes()).unwrap_err(),
                *want,
                "{body}"
            );
        }
        for (body, needle) in [
            ("", "expected a JSON object"),
            ("{", "truncated"),
            (&format!(r#"["{ID}"]"#), "expected a JSON object"),
            ("{nul", "invalid JSON"),
            (r#"{"uuid": 5}"#, "wrong type (integer)"),
            (
                r#"{"uuid":"x","app_secret":{}}"#,
                "unknown field `app_secret`",
            ),
            (r#"{"uuid":"a","uuid":"b"}"#, "duplicate field `uuid`"),
        ] {
            let err = parse_configuration(body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
        assert!(matches!(
            parse_configuration(b"{\"uuid\":\"\xff\"}"),
            Err(PayloadError::Json(_))
        ));
    }

    #[test]
    fn errors_never_echo_values() {
        let err = parse_configuration(br#"{"uuid":"x","code_secret_key":12345678}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("12345678"), "{err}");
        let err = parse_configuration(br#"{"uuid":"x","ssl_private_key":{"SECRET":1}}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn sealed_secrets() {
        let s = parse_sealed_secrets(
            format!(r#"{{"code_secret_key": "{KEY}", "result_sk": "abc"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(s.code_secret_key.unwrap()[0], 0);
        assert!(
            parse_sealed_secrets(br#"{"other": 1}"#)
                .unwrap()
                .code_secret_key
                .is_none()
        );
        assert!(
            parse_sealed_secrets(b" {} ")
                .unwrap()
                .code_secret_key
                .is_none()
        );
        for bad in [&b"[\"x\"]"[..], b"\"code_secret_key\"", b"{", b"", b"\xff"] {
            assert_eq!(
                parse_sealed_secrets(bad).unwrap_err(),
                PayloadError::SealedNotObject
            );
        }
        assert_eq!(
            parse_sealed_secrets(br#"{"code_secret_key": 7}"#).unwrap_err(),
            PayloadError::BadKey("app_sealed_secrets.code_secret_key")
        );
        assert_eq!(
            parse_sealed_secrets(br#"{"code_secret_key": "00"}"#).unwrap_err(),
            PayloadError::BadKey("app_sealed_secrets.code_secret_key")
        );
    }
}
