//! Turning an app's status and headers into an `http::Response` head (shared by WSGI and ASGI).

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use hyper::ext::ReasonPhrase;

use crate::body::ResponseBody;

/// A validated response head.
pub(crate) struct Head {
    pub status: StatusCode,
    pub reason: Option<ReasonPhrase>,
    pub headers: HeaderMap,
    /// The app's `Content-Length`, if it declared one.
    pub content_length: Option<u64>,
}

/// Why an app's head was refused; the message is raised to the app.
#[derive(Debug)]
pub(crate) struct BadHead(pub String);

impl Head {
    pub(crate) fn new(status: StatusCode, capacity: usize) -> Self {
        Self {
            status,
            reason: None,
            headers: HeaderMap::with_capacity(capacity),
            content_length: None,
        }
    }

    /// Parse a WSGI status line such as `200 OK`.
    pub(crate) fn from_status_line(line: &str, capacity: usize) -> Result<Self, BadHead> {
        let bad = || {
            BadHead(format!(
                "invalid status {line:?}: expected three digits, a space and a reason, e.g. \"200 OK\""
            ))
        };
        let bytes = line.as_bytes();
        let code = bytes
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .ok_or_else(bad)?;
        let status = StatusCode::from_bytes(code).map_err(|_| bad())?;
        let mut head = Self::new(status, capacity);
        match bytes.get(3) {
            None => {}
            Some(b' ') => {
                let reason = &line[4..];
                if !reason.is_empty() && status.canonical_reason() != Some(reason) {
                    head.reason =
                        Some(ReasonPhrase::try_from(reason.as_bytes()).map_err(|_| bad())?);
                }
            }
            Some(_) => return Err(bad()),
        }
        Ok(head)
    }

    /// Add one header. `Transfer-Encoding` is dropped: hyper frames the body itself.
    pub(crate) fn push(&mut self, name: &[u8], value: &[u8]) -> Result<(), BadHead> {
        let name = HeaderName::from_bytes(name).map_err(|_| {
            BadHead(format!(
                "invalid header name {:?}",
                String::from_utf8_lossy(name)
            ))
        })?;
        let value = HeaderValue::from_bytes(value).map_err(|_| {
            BadHead(format!(
                "invalid value for header {name}: {:?}",
                String::from_utf8_lossy(value)
            ))
        })?;
        if name == header::TRANSFER_ENCODING {
            return Ok(());
        }
        if name == header::CONTENT_LENGTH {
            let n = value
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| BadHead(format!("invalid Content-Length {value:?}")))?;
            if self.content_length.replace(n).is_some_and(|old| old != n) {
                return Err(BadHead("two different Content-Length headers".into()));
            }
        }
        self.headers.append(name, value);
        Ok(())
    }

    pub(crate) fn into_response(self, body: ResponseBody) -> Response<ResponseBody> {
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        if let Some(reason) = self.reason {
            resp.extensions_mut().insert(reason);
        }
        resp
    }
}

/// Encode a Python `str` header value as latin-1, as PEP 3333 requires.
pub(crate) fn latin1_bytes(s: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
    if s.is_ascii() {
        return Some(std::borrow::Cow::Borrowed(s.as_bytes()));
    }
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_keep_custom_reasons_only() {
        let h = Head::from_status_line("200 OK", 0).unwrap();
        assert_eq!(h.status, 200);
        assert!(h.reason.is_none());
        let h = Head::from_status_line("299 Fine Thanks", 0).unwrap();
        assert_eq!(h.status, 299);
        assert_eq!(h.reason.unwrap().as_bytes(), b"Fine Thanks");
        assert!(Head::from_status_line("404", 0).is_ok());
        for bad in [
            "",
            "20",
            "2000 OK",
            "OK 200",
            "200-OK",
            "099 x",
            "200 bad\r\nreason",
        ] {
            assert!(Head::from_status_line(bad, 0).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn headers_are_checked_and_framing_is_left_to_hyper() {
        let mut h = Head::new(StatusCode::OK, 4);
        h.push(b"Content-Type", b"text/plain").unwrap();
        h.push(b"Content-Length", b"5").unwrap();
        h.push(b"Transfer-Encoding", b"chunked").unwrap();
        assert_eq!(h.content_length, Some(5));
        assert!(!h.headers.contains_key(header::TRANSFER_ENCODING));
        assert!(h.push(b"Bad Name", b"x").is_err());
        assert!(h.push(b"X-Injected", b"a\r\nSet-Cookie: x").is_err());
        assert!(h.push(b"Content-Length", b"6").is_err());
        assert!(h.push(b"Content-Length", b"-1").is_err());
    }

    #[test]
    fn latin1_encoding_refuses_what_latin1_cannot_hold() {
        assert_eq!(latin1_bytes("caf\u{e9}").unwrap().as_ref(), b"caf\xe9");
        assert!(latin1_bytes("\u{20ac}").is_none());
    }
}
