"""A Flask app ready for mse: nothing in it is specific to the enclave."""

import json
import os
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

from flask import Flask, Response

app = Flask(__name__)

# $HOME is private to the app and encrypted; it is wiped when the app stops.
NOTE = Path(os.getenv("HOME", ".")) / "note.txt"


@app.get("/health")
def health():
    """The healthcheck_endpoint of mse.toml: answers once the app is up."""
    return "OK"


@app.get("/whoami")
def whoami():
    """Read a value from the secrets sent after attestation ($SECRETS_PATH)."""
    secrets = json.loads(Path(os.environ["SECRETS_PATH"]).read_text())
    return secrets["login"]


@app.post("/")
def write_note():
    """Write a file in the app's storage."""
    NOTE.write_text(str(datetime.now()))
    return Response(status=HTTPStatus.OK)


@app.get("/")
def read_note():
    """Read it back, once."""
    if not NOTE.exists():
        return Response("Nothing written yet: POST / first", status=HTTPStatus.NOT_FOUND)
    text = NOTE.read_text()
    NOTE.unlink()
    return text
