"""FastAPI app served by the node in tests/asgi.rs: routes, lifespan, and the sandbox seen from
an ASGI app (the event loop thread and the framework's worker threads)."""

import asyncio
import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

RELEASE = None  # asyncio.Event, created on the loop at startup


@asynccontextmanager
async def lifespan(app):
    global RELEASE
    RELEASE = asyncio.Event()
    secrets = json.loads(Path(os.environ["SECRETS_PATH"]).read_text())
    print("asgi-test: lifespan startup", flush=True)
    yield {"login": secrets["login"], "pid": os.getpid()}
    # Seen by the test after SIGTERM: HOME is private storage that vanishes with the node.
    print("asgi-test: lifespan shutdown complete", flush=True)


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None, limit: int = 10):
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/echo")
async def echo(item: Item):
    return {"echo": item.model_dump(), "total": item.price * 2}


@app.post("/raw")
async def raw(request: Request):
    body = await request.body()
    return {"bytes": len(body), "first": body[:1].hex(), "last": body[-1:].hex()}


@app.get("/stream")
async def stream():
    async def chunks():
        yield b"first chunk\n"
        # Held until /release is called: the client must already hold the first chunk.
        await asyncio.wait_for(RELEASE.wait(), timeout=30)
        for i in range(100):
            yield f"line {i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


@app.post("/release")
async def release():
    RELEASE.set()
    return {"released": True}


@app.get("/state")
async def state(request: Request):
    return {"login": request.state.login}


@app.get("/boom")
async def boom():
    raise RuntimeError("boom (deliberate)")


@app.get("/boom-sync")
def boom_sync():
    raise ValueError("boom in the thread pool (deliberate)")


def _attempts(host_file):
    out = {}

    def attempt(name, fn):
        try:
            fn()
            out[name] = "allowed"
        except PermissionError:
            out[name] = "PermissionError"
        except OSError as e:
            out[name] = f"OSError {e.errno}"

    attempt("subprocess", lambda: subprocess.run(["/bin/true"], check=False))

    def fork():
        if os.fork() == 0:  # only if the filter failed: never let a child run the app
            os._exit(0)

    attempt("fork", fork)
    attempt("popen", lambda: os.popen("true").read())
    attempt("read_key", lambda: open(os.path.join(os.environ["KEY_PATH"], "enclave.key"), "rb").read())
    attempt("write_home", lambda: Path(os.environ["HOME"], "note.txt").write_text("ok"))
    attempt("write_tmp", lambda: Path(os.environ["TMP_PATH"], "note.txt").write_text("ok"))
    attempt("write_code", lambda: Path(os.environ["MODULE_PATH"], "evil.py").write_text("x"))
    attempt("write_etc", lambda: open("/etc/mse-asgi-test", "w").write("x"))
    attempt("read_host_file", lambda: open(host_file, "rb").read())
    return out


@app.get("/sandbox")
async def sandbox_on_the_loop(host_file: str):
    return _attempts(host_file)


@app.get("/sandbox-sync")
def sandbox_in_a_worker_thread(host_file: str):
    return _attempts(host_file)


@app.get("/slow")
async def slow(seconds: float = 1.0):
    await asyncio.sleep(seconds)
    return {"slept": seconds}
