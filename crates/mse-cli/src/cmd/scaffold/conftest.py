"""Where the app under test runs: `mse localtest` sets these variables."""

import json
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def url() -> str:
    """Base URL of the app, without a trailing slash."""
    return os.getenv("TEST_REMOTE_URL", "http://127.0.0.1:5000").rstrip("/")


@pytest.fixture(scope="session")
def verify():
    """What requests should trust: a CA bundle for a deployed app, True otherwise."""
    return os.getenv("TEST_CA_BUNDLE") or True


@pytest.fixture(scope="session")
def secrets() -> dict:
    """The secrets the app was given (the file of `code.secrets`)."""
    path = os.getenv("TEST_SECRET_JSON")
    return json.loads(Path(path).read_text()) if path else {}
