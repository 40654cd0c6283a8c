"""The smallest app of each interface, for the serving benchmark (bench/serve): with nothing to
do in the app, what a request costs is the server's own work (TLS, HTTP, the kernel's TCP, the
handoff to Python and back)."""

BODY = b"hello"


def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "5")])
    return [BODY]


START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"5")],
}
END = {"type": "http.response.body", "body": BODY}


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(START)
    await send(END)
