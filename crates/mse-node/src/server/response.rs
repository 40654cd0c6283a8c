//! The small responses the node itself gives.

use http::{HeaderValue, Response, StatusCode, header};

use super::body::NodeBody;

/// The original configuration server's GET body (53 bytes): clients key on the `Mse-Status`
/// header, and some print the body.
pub const WAITING_BODY: &str = "Waiting for code secret key and/or ssl private key...";

/// `GET` during configuration: 200 with `Mse-Status: Waiting` (protocol §2.2).
pub fn waiting() -> Response<NodeBody> {
    let mut resp = Response::new(NodeBody::full(WAITING_BODY));
    let h = resp.headers_mut();
    h.insert("mse-status", HeaderValue::from_static("Waiting"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// 503 with `Retry-After: 1`: the node is starting the app (clients read 503 as "not ready").
pub fn busy() -> Response<NodeBody> {
    let mut resp = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the app is starting; retry shortly",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// A status with a one-line plain-text reason.
pub fn text(status: StatusCode, message: &str) -> Response<NodeBody> {
    let mut resp = Response::new(NodeBody::full(format!("{message}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A status with no body (the original's 200 after a configuration).
pub fn empty(status: StatusCode) -> Response<NodeBody> {
    let mut resp = Response::new(NodeBody::empty());
    *resp.status_mut() = status;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_body_is_the_originals() {
        assert_eq!(WAITING_BODY.len(), 53);
        let r = waiting();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["mse-status"], "Waiting");
    }

    #[test]
    fn busy_says_when_to_retry() {
        let r = busy();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
