//! ASGI: a FastAPI app (routes, lifespan), and raw ASGI apps for what FastAPI hides
//! (disconnects, apps without lifespan, a failing startup).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::BodyExt;
use mse_python::{Error, EventLoop, Interface, PyApp};
use serde_json::{Value, json};

const FASTAPI_APP: &str = r#"
import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def lifespan(app):
    (ROOT / "startup").write_text("started")
    yield {"greeting": "hello from lifespan"}
    (ROOT / "shutdown").write_text("stopped")


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"created": item.model_dump(), "double": item.price * 2}


@app.get("/stream")
async def stream():
    async def lines():
        for i in range(50):
            yield f"line {i}\n"
            await asyncio.sleep(0)
    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/boom")
async def boom():
    raise RuntimeError("boom (deliberate)")


@app.get("/loop")
async def which_loop():
    return {"loop": type(asyncio.get_running_loop()).__module__}


@app.get("/state")
async def state(request: Request):
    return {"greeting": request.state.greeting}


@app.get("/sync")
def sync_route():
    return {"ran": "in the thread pool"}


@app.post("/upload")
async def upload(request: Request):
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
    return {"bytes": n}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fastapi_app_serves_its_routes_and_runs_its_lifespan_on_asyncio() {
    fastapi_app_on(
        EventLoop::Asyncio,
        "asyncio.unix_events",
        "a_fastapi_app_serves_its_routes_and_runs_its_lifespan_on_asyncio",
    )
    .await;
}

/// `auto` (the default) picks uvloop when the runtime has it, as the test venv does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fastapi_app_serves_its_routes_and_runs_its_lifespan_on_uvloop() {
    fastapi_app_on(
        EventLoop::Auto,
        "uvloop",
        "a_fastapi_app_serves_its_routes_and_runs_its_lifespan_on_uvloop",
    )
    .await;
}

async fn fastapi_app_on(event_loop: EventLoop, loop_module: &str, test: &str) {
    init_logs();
    let Some(site) = site_packages(test) else {
        return;
    };
    let dir = AppDir::new(&[("fast_app.py", FASTAPI_APP)]);
    let mut config = dir.config("fast_app:app", &site);
    config.event_loop = event_loop;
    let app = PyApp::load(config).unwrap();
    assert_eq!(app.interface(), Interface::Asgi);
    assert_eq!(
        std::fs::read_to_string(dir.path("startup")).unwrap(),
        "started",
        "startup ran during load"
    );
    let addr = serve(app.clone()).await;

    let r = send(addr, get("/items/42?q=caf%C3%A9")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"item_id": 42, "q": "café"})
    );

    let r = send(addr, get("/items/not-a-number")).await;
    assert_eq!(r.status, 422, "path parameter validation");

    let item = json!({"name": "lamp", "price": 12.5, "tags": ["home"]});
    let r = send(addr, post("/items", "application/json", item.to_string())).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"created": item, "double": 25.0})
    );

    let r = send(addr, post("/items", "application/json", "{not json")).await;
    assert_eq!(r.status, 422);

    let r = send(addr, get("/stream")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        (0..50).map(|i| format!("line {i}\n")).collect::<String>()
    );

    let r = send(addr, get("/boom")).await;
    assert_eq!(r.status, 500);
    let r = send(addr, get("/loop")).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"loop": loop_module})
    );
    let r = send(addr, get("/state")).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"greeting": "hello from lifespan"})
    );
    let r = send(addr, get("/sync")).await;
    assert_eq!(
        r.status, 200,
        "sync routes run in the framework's thread pool"
    );

    // A streamed (chunked) upload of 1 MiB read with request.stream().
    let (tx, body) = channel_body();
    let pending = tokio::spawn(send(
        addr,
        Request::post("/upload")
            .header("host", "t")
            .body(body)
            .unwrap(),
    ));
    for _ in 0..16 {
        tx.send(Bytes::from(vec![7u8; 65536])).await.unwrap();
    }
    drop(tx);
    let r = pending.await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"bytes": 1 << 20})
    );

    assert!(!dir.path("shutdown").exists());
    app.shutdown().await;
    assert_eq!(
        std::fs::read_to_string(dir.path("shutdown")).unwrap(),
        "stopped",
        "shutdown ran"
    );
    assert_eq!(send(addr, get("/items/1")).await.status, 503);
}

const RAW_APP: &str = r#"
import asyncio
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def app(scope, receive, send):
    assert scope["type"] == "http"  # no lifespan support: the server must cope
    path = scope["path"]
    if path == "/scope":
        body = repr({k: scope[k] for k in (
            "http_version", "method", "scheme", "path", "raw_path", "query_string", "root_path")}).encode()
        body += b"\n" + repr(sorted(dict(scope["headers"]).items())).encode()
        body += b"\n" + repr((scope["asgi"], scope["client"][0], scope["server"][0])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
    elif path == "/forever":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        except OSError as e:
            (ROOT / "send-failed").write_text(type(e).__name__)
            raise
    elif path == "/wait-for-disconnect":
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                (ROOT / "disconnected").write_text("yes")
                return
    elif path == "/no-response":
        return
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_asgi_scope_and_disconnects() {
    init_logs();
    let dir = AppDir::new(&[("raw_asgi.py", RAW_APP)]);
    let app = PyApp::load(dir.config("raw_asgi:app", &[])).unwrap();
    assert_eq!(
        app.interface(),
        Interface::Asgi,
        "a coroutine function is ASGI"
    );
    let addr = serve(app.clone()).await;

    let r = send(addr, get("/scope?a=%20b")).await;
    let text = r.text();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "{'http_version': '1.1', 'method': 'GET', 'scheme': 'http', 'path': '/scope', 'raw_path': b'/scope', \
         'query_string': b'a=%20b', 'root_path': ''}"
    );
    assert_eq!(lines.next().unwrap(), "[(b'host', b'test.local')]");
    assert_eq!(
        lines.next().unwrap(),
        "({'version': '3.0', 'spec_version': '2.4'}, '127.0.0.1', '127.0.0.1')"
    );

    let r = send(addr, get("/no-response")).await;
    assert_eq!(
        r.status, 500,
        "an app that returns without a response is a 500"
    );

    // The client leaves in the middle of a stream: the app's send() raises OSError.
    let resp = open(addr, get("/forever")).await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    wait_for_file(&dir.path("send-failed")).await;
    assert_eq!(
        std::fs::read_to_string(dir.path("send-failed")).unwrap(),
        "ConnectionResetError"
    );

    // The client leaves before any response: a waiting receive() gets http.disconnect.
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let pending =
        tokio::spawn(async move { sender.send_request(get("/wait-for-disconnect")).await });
    tokio::time::sleep(Duration::from_millis(50)).await; // let the request reach the app (not a timing assertion)
    pending.abort();
    conn.abort();
    wait_for_file(&dir.path("disconnected")).await;

    assert_eq!(send(addr, get("/other")).await.status, 404, "still serving");
    app.shutdown().await;
}

#[test]
fn a_failing_lifespan_startup_fails_the_load_with_its_message() {
    init_logs();
    let code = r#"
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
"#;
    let dir = AppDir::new(&[("failing_startup.py", code)]);
    match PyApp::load(dir.config("failing_startup:app", &[])) {
        Err(Error::Startup { message }) => assert_eq!(message, "database unreachable"),
        other => panic!("expected a startup error, got {other:?}"),
    }
}
