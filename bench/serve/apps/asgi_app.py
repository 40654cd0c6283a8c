"""FastAPI app of the serving benchmark (bench/serve): the same file for every server."""

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

app = FastAPI()

CHUNK = b"y" * 65536
DOWNLOAD_CHUNKS = 160  # 10 MiB


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/", response_class=PlainTextResponse)
async def hello():
    return "hello"


@app.post("/echo")
async def echo(item: Item):
    return item


@app.post("/upload", response_class=PlainTextResponse)
async def upload(request: Request):
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
    return str(n)


@app.get("/download")
async def download():
    async def chunks():
        for _ in range(DOWNLOAD_CHUNKS):
            yield CHUNK

    return StreamingResponse(chunks(), media_type="application/octet-stream")
