//! 10 MiB up and down, streamed through the server without buffering: the apps and the client
//! proceed in lockstep (one side waits for proof that the other got the first MiB), so a server
//! that buffered a whole body would deadlock and fail the test, whatever the timing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::BodyExt;
use mse_python::{Interface, PyApp};
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;
const TOTAL: usize = 10 * MIB;

const WSGI_APP: &str = r#"
import hashlib
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = bytes(range(256)) * 256  # 64 KiB


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/upload":
        inp = environ["wsgi.input"]
        h = hashlib.sha256()
        total = biggest = 0
        while True:
            chunk = inp.read(65536)
            if not chunk:
                break
            h.update(chunk)
            total += len(chunk)
            biggest = max(biggest, len(chunk))
            if total >= 1 << 20 and not (ROOT / "app-got-1mib").exists():
                (ROOT / "app-got-1mib").write_text(str(total))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{total} {h.hexdigest()} {biggest}".encode()]
    if path == "/download":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        def blocks():
            for i in range(160):
                if i == 16:
                    while not (ROOT / "client-got-1mib").exists():
                        time.sleep(0.002)
                yield BLOCK
        return blocks()
    start_response("404 Not Found", [])
    return []
"#;

const ASGI_APP: &str = r#"
import asyncio
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = bytes(range(256)) * 256  # 64 KiB


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError("no lifespan here")
    if scope["path"] == "/upload":
        h = hashlib.sha256()
        total = biggest = 0
        more = True
        while more:
            message = await receive()
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            h.update(chunk)
            total += len(chunk)
            biggest = max(biggest, len(chunk))
            if total >= 1 << 20 and not (ROOT / "app-got-1mib").exists():
                (ROOT / "app-got-1mib").write_text(str(total))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"{total} {h.hexdigest()} {biggest}".encode()})
    elif scope["path"] == "/download":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(160):
            if i == 16:
                while not (ROOT / "client-got-1mib").exists():
                    await asyncio.sleep(0.002)
            await send({"type": "http.response.body", "body": BLOCK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
"#;

fn block() -> Vec<u8> {
    (0..=255u8).cycle().take(65536).collect()
}

async fn upload_in_lockstep(dir: &AppDir, addr: std::net::SocketAddr) {
    let (tx, body) = channel_body();
    let pending = tokio::spawn(send(
        addr,
        Request::post("/upload")
            .header("host", "t")
            .body(body)
            .unwrap(),
    ));
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    for (i, chunk) in data.chunks(65536).enumerate() {
        if i * 65536 == 2 * MIB {
            // Proof of streaming: the app has read 1 MiB while 8 MiB are still to come.
            wait_for_file(&dir.path("app-got-1mib")).await;
        }
        tx.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    drop(tx);
    let r = pending.await.unwrap();
    let text = r.text();
    let fields: Vec<&str> = text.split(' ').collect();
    assert_eq!(fields[0], TOTAL.to_string());
    assert_eq!(
        fields[1],
        hex::encode(Sha256::digest(&data)),
        "the bytes arrive intact"
    );
    assert!(
        fields[2].parse::<usize>().unwrap() <= 65536,
        "reads never return more than asked"
    );
}

async fn download_in_lockstep(dir: &AppDir, addr: std::net::SocketAddr) {
    let resp = open(addr, get("/download")).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut hasher = Sha256::new();
    let mut received = 0usize;
    let mut told = false;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.unwrap().into_data() else {
            continue;
        };
        received += data.len();
        hasher.update(&data);
        if !told && received >= MIB {
            // The app cannot produce more than 1 MiB before this file exists: the first MiB
            // reached us while the app was still producing, so nothing was buffered whole.
            std::fs::write(dir.path("client-got-1mib"), "go").unwrap();
            told = true;
        }
    }
    assert!(told);
    assert_eq!(received, TOTAL);
    let expected = block().repeat(160);
    assert_eq!(
        hex::encode(hasher.finalize()),
        hex::encode(Sha256::digest(&expected))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wsgi_streams_10_mib_up_and_down() {
    init_logs();
    let dir = AppDir::new(&[("stream_wsgi.py", WSGI_APP)]);
    let app = PyApp::load(dir.config("stream_wsgi:app", &[])).unwrap();
    assert_eq!(app.interface(), Interface::Wsgi);
    let addr = serve(app).await;
    upload_in_lockstep(&dir, addr).await;
    download_in_lockstep(&dir, addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asgi_streams_10_mib_up_and_down() {
    init_logs();
    let dir = AppDir::new(&[("stream_asgi.py", ASGI_APP)]);
    let app = PyApp::load(dir.config("stream_asgi:app", &[])).unwrap();
    assert_eq!(app.interface(), Interface::Asgi);
    let addr = serve(app).await;
    upload_in_lockstep(&dir, addr).await;
    download_in_lockstep(&dir, addr).await;
}
