//! Test support: write an app to a temp dir, load it, serve it with hyper on 127.0.0.1, and talk
//! to it with a hyper client.
#![allow(dead_code)] // each test binary uses a part of this

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mse_python::{ConnInfo, PyApp, PythonConfig, Scheme};
use tokio::net::{TcpListener, TcpStream};

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("mse_python=debug")
        .try_init();
}

/// The test venv's site-packages (`$MSE_TEST_PYTHON`, a venv directory or its python, defaulting
/// to the repository's `.venv-test`). `None` means skip; with `MSE_TEST_REQUIRE_ALL=1`, panic.
pub fn site_packages(test: &str) -> Option<Vec<PathBuf>> {
    let venv = match std::env::var_os("MSE_TEST_PYTHON") {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_file() {
                p.parent().and_then(Path::parent).map(Path::to_path_buf)
            } else {
                Some(p)
            }
        }
        None => Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test")),
    };
    let found = venv.and_then(|v| {
        let lib = std::fs::read_dir(v.join("lib")).ok()?;
        lib.filter_map(Result::ok)
            .map(|e| e.path().join("site-packages"))
            .find(|p| p.join("flask").is_dir())
    });
    match found {
        Some(site) => Some(vec![site]),
        None if std::env::var("MSE_TEST_REQUIRE_ALL").as_deref() == Ok("1") => {
            panic!(
                "{test}: the Python test environment is missing (run scripts/setup-test-env or set MSE_TEST_PYTHON)"
            )
        }
        None => {
            println!(
                "SKIPPED: {test}: no Python test environment (run scripts/setup-test-env or set MSE_TEST_PYTHON)"
            );
            None
        }
    }
}

/// A temp dir holding the app's code (and whatever else the test puts there).
pub struct AppDir {
    pub dir: tempfile::TempDir,
}

impl AppDir {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join("code").join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("code")).unwrap();
        Self { dir }
    }

    pub fn code(&self) -> PathBuf {
        self.dir.path().join("code")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config(&self, app: &str, site: &[PathBuf]) -> PythonConfig {
        let mut cfg = PythonConfig::new(self.code(), app);
        cfg.site_packages = site.to_vec();
        cfg
    }
}

/// Serve `app` on 127.0.0.1 (HTTP/1.1, plain) until the test ends.
pub async fn serve(app: PyApp) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, remote)) = listener.accept().await else {
                return;
            };
            let app = app.clone();
            tokio::spawn(async move {
                let conn = ConnInfo {
                    remote,
                    local,
                    scheme: Scheme::Http,
                    http_version: http::Version::HTTP_11,
                };
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(req, conn).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    local
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send one request on a fresh connection and read the whole response.
pub async fn send<B>(addr: SocketAddr, req: Request<B>) -> Reply
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let resp = open(addr, req).await;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Send one request on a fresh connection; the body is left to the caller.
pub async fn open<B>(addr: SocketAddr, req: Request<B>) -> http::Response<hyper::body::Incoming>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender.send_request(req).await.unwrap()
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "test.local")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

pub fn post(path: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "test.local")
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

/// Wait until a file exists (the apps use files to tell the test where they are).
pub async fn wait_for_file(path: &Path) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A request body fed chunk by chunk from the test (sent chunked: its size is unknown).
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|c| c.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

pub fn channel_body() -> (tokio::sync::mpsc::Sender<Bytes>, ChannelBody) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    (tx, ChannelBody(rx))
}
