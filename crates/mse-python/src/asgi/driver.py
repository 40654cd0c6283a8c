"""The asyncio side of the ASGI server (mse-python, src/asgi/). Per-request work is in Rust: this
file only runs the lifespan protocol, wraps each request's coroutine, and drains at shutdown."""

import asyncio


def new_event_loop(kind):
    """(loop, name) for the node's `--loop`: "auto" takes uvloop when the runtime has it."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError as exc:
            if kind == "uvloop":
                raise RuntimeError(f"--loop uvloop: uvloop cannot be imported ({exc}); add it to the app's requirements") from exc
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


async def run_http(app, scope, proto):
    """One request: the app's coroutine; how it ended is reported to the server."""
    try:
        await app(scope, proto.receive, proto.send)
    except BaseException as exc:  # noqa: B036 - cancellation too: the response must be closed
        proto.complete(exc)
    else:
        proto.complete(None)


class Lifespan:
    """ASGI lifespan, as uvicorn's "auto" mode: an app that raises before answering startup does
    not support lifespan (it is served anyway); `lifespan.startup.failed` fails the start."""

    def __init__(self, app):
        self.app = app
        self.state = {}
        self.supported = True
        self.task = None
        self.queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.startup_done = loop.create_future()
        self.shutdown_done = loop.create_future()

    async def main(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:  # noqa: B036
            if not self.startup_done.done():
                self.supported = False
                self.startup_done.set_result(("unsupported", f"{type(exc).__name__}: {exc}"))
            elif not self.shutdown_done.done():
                self.shutdown_done.set_result(("failed", f"{type(exc).__name__}: {exc}"))
        finally:
            if not self.startup_done.done():
                self.supported = False
                self.startup_done.set_result(("unsupported", "the app returned from the lifespan scope"))
            if not self.shutdown_done.done():
                self.shutdown_done.set_result(("ok", None))

    async def receive(self):
        return await self.queue.get()

    async def send(self, message):
        kind = message["type"]
        if kind == "lifespan.startup.complete" and not self.startup_done.done():
            self.startup_done.set_result(("ok", None))
        elif kind == "lifespan.startup.failed" and not self.startup_done.done():
            self.startup_done.set_result(("failed", message.get("message") or "lifespan.startup.failed"))
        elif kind == "lifespan.shutdown.complete" and not self.shutdown_done.done():
            self.shutdown_done.set_result(("ok", None))
        elif kind == "lifespan.shutdown.failed" and not self.shutdown_done.done():
            self.shutdown_done.set_result(("failed", message.get("message") or "lifespan.shutdown.failed"))
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")


async def startup(app):
    """Returns (lifespan, outcome, detail); outcome is "ok", "unsupported" or "failed"."""
    lifespan = Lifespan(app)
    lifespan.task = asyncio.get_running_loop().create_task(lifespan.main())
    await lifespan.queue.put({"type": "lifespan.startup"})
    outcome, detail = await lifespan.startup_done
    return lifespan, outcome, detail


async def shutdown(lifespan, grace):
    """Let running requests finish (up to `grace` seconds), then run the lifespan shutdown."""
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me and t is not lifespan.task]
    if others:
        _, pending = await asyncio.wait(others, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1)
    if not lifespan.supported:
        return ("ok", None)
    await lifespan.queue.put({"type": "lifespan.shutdown"})
    return await lifespan.shutdown_done
