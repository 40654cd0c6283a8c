"""Tests of the app, run by `mse localtest` against a local instance."""

import requests


def test_health(url, verify):
    response = requests.get(f"{url}/health", timeout=10, verify=verify)
    assert response.status_code == 200


def test_whoami_reads_the_secrets(url, verify, secrets):
    response = requests.get(f"{url}/whoami", timeout=10, verify=verify)
    assert response.status_code == 200
    assert response.text == secrets["login"]


def test_write_then_read_once(url, verify):
    assert requests.post(f"{url}/", timeout=10, verify=verify).status_code == 200
    first = requests.get(f"{url}/", timeout=10, verify=verify)
    assert first.status_code == 200 and first.text
    assert requests.get(f"{url}/", timeout=10, verify=verify).status_code == 404
