//! The configuration payload: what the client hands the node once its evidence is verified.

use std::fmt;

use mse_crypto::CodeKey;
use serde_json::Value;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::pyjson::{Counter, Sink, write_str, write_value};

/// Secrets for the node, serialized exactly like mse-cli 1.3's `ConfigurationPayload.payload()`
/// sent through requests' `json=`.
///
/// Keys, in this order: `uuid`, `app_secrets`, `app_sealed_secrets` (URL-safe base64 without
/// padding), `code_secret_key` (64 lowercase hex digits), `ssl_private_key` (PEM text). A field
/// that Python finds falsy (absent, `null`, `false`, `0`, `""`, `[]`, `{}`, empty bytes) is left out.
#[derive(Clone, Default)]
pub struct ConfigurationPayload {
    /// The app instance id the node was started with; it refuses any other.
    pub uuid: Uuid,
    /// The code key, when the code is encrypted and the key is not inside the sealed secrets.
    pub code_secret_key: Option<CodeKey>,
    /// `secrets.json`, handed to the app in clear (over the pinned RA-TLS channel).
    pub app_secrets: Option<Value>,
    /// Secrets sealed to the enclave key ([`mse_crypto::sealed::seal`]).
    pub app_sealed_secrets: Option<Vec<u8>>,
    /// The TLS private key (PEM) when the app serves its owner's certificate.
    pub ssl_private_key: Option<Zeroizing<String>>,
}

impl ConfigurationPayload {
    /// The JSON body, byte-compatible with mse-cli 1.3. Held in a buffer zeroized on drop.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        // Size first, then write into a buffer that never reallocates: no stray copies.
        let mut counter = Counter::default();
        self.write(&mut counter);
        let mut out = Zeroizing::new(Vec::with_capacity(counter.0));
        self.write(&mut *out);
        out
    }

    fn write(&self, out: &mut impl Sink) {
        out.put(b"{\"uuid\": ");
        write_str(out, &self.uuid.hyphenated().to_string());
        if let Some(secrets) = self.app_secrets.as_ref().filter(|v| is_truthy(v)) {
            out.put(b", \"app_secrets\": ");
            write_value(out, secrets);
        }
        if let Some(sealed) = self.app_sealed_secrets.as_ref().filter(|s| !s.is_empty()) {
            out.put(b", \"app_sealed_secrets\": ");
            write_str(out, &mse_crypto::sealed::to_wire(sealed));
        }
        if let Some(key) = &self.code_secret_key {
            out.put(b", \"code_secret_key\": ");
            write_str(out, &key.to_hex());
        }
        if let Some(pem) = self.ssl_private_key.as_ref().filter(|k| !k.is_empty()) {
            out.put(b", \"ssl_private_key\": ");
            write_str(out, pem);
        }
        out.put(b"}");
    }
}

impl fmt::Debug for ConfigurationPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |b: bool| if b { "[redacted]" } else { "None" };
        f.debug_struct("ConfigurationPayload")
            .field("uuid", &self.uuid)
            .field("code_secret_key", &present(self.code_secret_key.is_some()))
            .field("app_secrets", &present(self.app_secrets.is_some()))
            .field(
                "app_sealed_secrets",
                &self.app_sealed_secrets.as_ref().map(Vec::len),
            )
            .field("ssl_private_key", &present(self.ssl_private_key.is_some()))
            .finish()
    }
}

/// Python truthiness of a JSON value.
fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid() -> Uuid {
        Uuid::parse_str("63322f85-1ff8-4483-91ae-f18d7398d157").unwrap()
    }

    #[test]
    fn minimal_payload_is_only_the_uuid() {
        let p = ConfigurationPayload {
            uuid: uuid(),
            ..Default::default()
        };
        assert_eq!(
            &p.to_json()[..],
            br#"{"uuid": "63322f85-1ff8-4483-91ae-f18d7398d157"}"#
        );
    }

    #[test]
    fn falsy_fields_are_omitted() {
        for falsy in ["null", "false", "0", "0.0", "\"\"", "[]", "{}"] {
            let p = ConfigurationPayload {
                uuid: uuid(),
                app_secrets: Some(serde_json::from_str(falsy).unwrap()),
                app_sealed_secrets: Some(Vec::new()),
                ssl_private_key: Some(Zeroizing::new(String::new())),
                ..Default::default()
            };
            assert_eq!(
                &p.to_json()[..],
                br#"{"uuid": "63322f85-1ff8-4483-91ae-f18d7398d157"}"#,
                "{falsy}"
            );
        }
    }

    #[test]
    fn full_payload_order_and_encodings() {
        let p = ConfigurationPayload {
            uuid: uuid(),
            code_secret_key: Some(CodeKey::from_bytes([0xab; 32])),
            app_secrets: Some(serde_json::json!({"login": "alice", "n": 1})),
            app_sealed_secrets: Some(vec![0xfb, 0xff, 0x01]),
            ssl_private_key: Some(Zeroizing::new("-----BEGIN\nk\n".into())),
        };
        let expected = format!(
            r#"{{"uuid": "63322f85-1ff8-4483-91ae-f18d7398d157", "app_secrets": {{"login": "alice", "n": 1}}, "app_sealed_secrets": "-_8B", "code_secret_key": "{}", "ssl_private_key": "-----BEGIN\nk\n"}}"#,
            "ab".repeat(32)
        );
        let json = p.to_json();
        assert_eq!(std::str::from_utf8(&json).unwrap(), expected);
        assert!(!format!("{p:?}").contains("abab"));
    }
}
