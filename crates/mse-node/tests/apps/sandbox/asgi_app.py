"""FastAPI (ASGI) front of probes.py: sync probes run in FastAPI's thread pool, `/aprobe` runs
them on the event loop's thread itself."""

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

import probes

app = FastAPI()


@app.get("/ping", response_class=PlainTextResponse)
async def ping():
    return "pong"


@app.post("/probe")
def probe(body: dict):
    return probes.dispatch(body["op"], body.get("args", {}))


@app.post("/aprobe")
async def aprobe(request: Request):
    body = await request.json()
    if body["op"] == "forbidden" and body["args"]["name"] == "asyncio_subprocess":
        # On the running loop, as an async app would.
        async def spawn():
            proc = await asyncio.create_subprocess_exec("/bin/true")
            return await proc.wait()

        try:
            return {"ok": True, "value": await spawn()}
        except BaseException as e:  # noqa: BLE001
            return {
                "ok": False,
                "type": type(e).__name__,
                "permission_error": isinstance(e, PermissionError),
                "errno": getattr(e, "errno", None),
                "message": str(e),
            }
    return probes.dispatch(body["op"], body.get("args", {}))
