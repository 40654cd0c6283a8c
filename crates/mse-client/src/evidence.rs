//! The node's fresh-evidence answer.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Deserialize;

use crate::{Error, Result};

/// `GET /.well-known/mse/evidence?nonce=<hex>` decoded. Not verified: pass `quote` to the
/// attestation verifier with the expected report data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreshEvidence {
    /// TEE kind as the node names it: `sgx`, `tdx`, `sev-snp` or `sim`.
    pub tee: String,
    /// Raw evidence bytes (quote or report).
    pub quote: Vec<u8>,
    /// The nonce, as echoed by the node (equal to the one sent).
    pub nonce: Vec<u8>,
}

#[derive(Deserialize)]
struct Wire {
    tee: String,
    quote: String,
    nonce: String,
}

impl FreshEvidence {
    /// Decode the JSON answer and check it echoes `sent_nonce`. Never panics.
    pub fn from_json(body: &[u8], sent_nonce: &[u8]) -> Result<Self> {
        let wire: Wire = serde_json::from_slice(body).map_err(|_| Error::MalformedEvidence {
            reason: "not a JSON object with string fields tee, quote and nonce",
        })?;
        let quote = if wire.quote.ends_with('=') {
            STANDARD.decode(&wire.quote)
        } else {
            STANDARD_NO_PAD.decode(&wire.quote)
        }
        .map_err(|_| Error::MalformedEvidence {
            reason: "quote is not standard base64",
        })?;
        let nonce = hex::decode(&wire.nonce).map_err(|_| Error::MalformedEvidence {
            reason: "nonce is not hex",
        })?;
        if nonce != sent_nonce {
            return Err(Error::MalformedEvidence {
                reason: "the node echoed another nonce than the one sent",
            });
        }
        if quote.is_empty() {
            return Err(Error::MalformedEvidence {
                reason: "empty quote",
            });
        }
        Ok(FreshEvidence {
            tee: wire.tee,
            quote,
            nonce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_checks_the_nonce() {
        let body = br#"{"tee": "sim", "quote": "AQID", "nonce": "0a0b"}"#;
        let ev = FreshEvidence::from_json(body, &[0x0a, 0x0b]).unwrap();
        assert_eq!(
            ev,
            FreshEvidence {
                tee: "sim".into(),
                quote: vec![1, 2, 3],
                nonce: vec![10, 11]
            }
        );
        assert!(FreshEvidence::from_json(body, &[0x0a, 0x0c]).is_err());
        for bad in [
            &b"{}"[..],
            b"[]",
            b"",
            br#"{"tee": "sim", "quote": "!!", "nonce": "0a0b"}"#,
            br#"{"tee": "sim", "quote": "AQID", "nonce": "zz"}"#,
            br#"{"tee": "sim", "quote": "", "nonce": "0a0b"}"#,
            br#"{"tee": 1, "quote": "AQID", "nonce": "0a0b"}"#,
        ] {
            assert!(FreshEvidence::from_json(bad, &[0x0a, 0x0b]).is_err());
        }
    }
}
