"""Flask app of the serving benchmark (bench/serve): the same file for every server."""

from flask import Flask, Response, request

app = Flask(__name__)

KIB64 = b"x" * 65536
CHUNK = b"y" * 65536
DOWNLOAD_CHUNKS = 160  # 160 x 64 KiB = 10 MiB


@app.get("/")
def hello():
    return "hello"


@app.get("/64k")
def kib64():
    return Response(KIB64, mimetype="application/octet-stream")


@app.post("/upload")
def upload():
    stream = request.stream
    n = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        n += len(chunk)
    return str(n)


@app.get("/download")
def download():
    def chunks():
        for _ in range(DOWNLOAD_CHUNKS):
            yield CHUNK

    return Response(chunks(), mimetype="application/octet-stream")
