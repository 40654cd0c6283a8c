//! Request-side plumbing shared by WSGI and ASGI: limits, the small-body prefetch, path decoding,
//! and the responses the server makes itself.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::ResponseBody;
use crate::config::MAX_REQUEST_HEADERS;

/// Bodies up to this size with a declared length are read in the connection's own task before
/// the request is queued, so a Python thread never waits on the network for a typical form or
/// JSON body (and the read costs no thread hand-off).
pub(crate) const PREFETCH_LIMIT: u64 = 64 * 1024;

/// A request body as the Python side receives it.
pub(crate) enum RequestBody {
    Empty,
    Full(Bytes),
    /// Read on demand, as the app asks for it.
    Stream(Incoming),
}

/// Check the limits and prefetch a small body. `Err` is the response to send instead.
pub(crate) async fn prepare(
    headers: &HeaderMap,
    body: Incoming,
    max_body: u64,
) -> Result<RequestBody, Response<ResponseBody>> {
    if headers.len() > MAX_REQUEST_HEADERS {
        return Err(error_response(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
    }
    if body.is_end_stream() {
        return Ok(RequestBody::Empty);
    }
    let declared = body.size_hint().exact();
    match declared {
        Some(n) if n > max_body => Err(error_response(StatusCode::PAYLOAD_TOO_LARGE)),
        Some(n) if n <= PREFETCH_LIMIT => collect(body, n).await,
        _ => Ok(RequestBody::Stream(body)),
    }
}

async fn collect(mut body: Incoming, declared: u64) -> Result<RequestBody, Response<ResponseBody>> {
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame
            .map_err(|_| error_response(StatusCode::BAD_REQUEST))?
            .into_data()
        else {
            continue; // trailers
        };
        match (&first, &mut more) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                more = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match (first, more) {
        (_, Some(buf)) => RequestBody::Full(buf.freeze()),
        (Some(b), None) => RequestBody::Full(b),
        (None, None) => RequestBody::Empty,
    })
}

/// A response the server makes itself (the app is not involved or failed).
pub(crate) fn error_response(status: StatusCode) -> Response<ResponseBody> {
    let text = match status.canonical_reason() {
        Some(reason) => format!("{reason}\n"),
        None => format!("{}\n", status.as_u16()),
    };
    let mut resp = Response::new(ResponseBody::full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// Decode `%XX` escapes; malformed escapes are kept as they are (as CPython's `unquote` does).
pub(crate) fn percent_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'%') {
        return Cow::Borrowed(input);
    }
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// `SERVER_PROTOCOL` / ASGI `http_version` text.
pub(crate) fn version_str(v: http::Version) -> (&'static str, &'static str) {
    match v {
        http::Version::HTTP_09 => ("HTTP/0.9", "0.9"),
        http::Version::HTTP_10 => ("HTTP/1.0", "1.0"),
        http::Version::HTTP_2 => ("HTTP/2", "2"),
        http::Version::HTTP_3 => ("HTTP/3", "3"),
        _ => ("HTTP/1.1", "1.1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_decodes_escapes_and_keeps_malformed_ones() {
        assert_eq!(&*percent_decode(b"/plain"), b"/plain");
        assert_eq!(&*percent_decode(b"/a%20b/%2F%c3%a9"), b"/a b//\xc3\xa9");
        assert_eq!(&*percent_decode(b"/%zz%4"), b"/%zz%4");
        assert_eq!(&*percent_decode(b"%"), b"%");
    }

    #[test]
    fn server_errors_say_what_happened_in_plain_text() {
        let r = error_response(StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.status(), 413);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert!(
            error_response(StatusCode::SERVICE_UNAVAILABLE)
                .headers()
                .contains_key(header::RETRY_AFTER)
        );
    }
}
