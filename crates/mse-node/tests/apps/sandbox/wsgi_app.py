"""Flask (WSGI) front of probes.py."""

from flask import Flask, jsonify, request

import probes

app = Flask(__name__)


@app.get("/ping")
def ping():
    return "pong"


@app.post("/probe")
def probe():
    body = request.get_json(force=True)
    return jsonify(probes.dispatch(body["op"], body.get("args", {})))
