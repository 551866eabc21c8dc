"""Token on every endpoint but /health; Host check without a token; unsafe binds refused."""
import os
import socket
import subprocess
import sys

import httpx
import pytest

from svc_testkit import CODE, make_app, serve

TOKEN = "s3cret-token"
ENDPOINTS = [("POST", "/v1/codeswift/complete", {"prefix": "x", "max_tokens": 4}),
             ("POST", "/infill", {"input_prefix": "x", "n_predict": 4}),
             ("POST", "/v1/completions", {"prompt": "x", "max_tokens": 4}),
             ("POST", "/v1/codeswift/repos", {"path": "/tmp"}),
             ("GET", "/v1/codeswift/repos", None), ("GET", "/v1/models", None),
             ("GET", "/metrics", None), ("GET", "/openapi.json", None), ("GET", "/nope", None)]


@pytest.fixture(scope="module")
def secured(engine):
    with serve(make_app(engine, token=TOKEN)) as url:
        yield url


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"])
def test_every_endpoint_needs_the_token(secured, method, path, body, auth):
    headers = {"Authorization": auth} if auth else {}
    r = httpx.request(method, secured + path, json=body, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": {"message": "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                                  "type": "authentication_error"}}
    assert r.headers["www-authenticate"] == "Bearer"


def test_right_token_works_and_health_is_open(secured, expected):
    ok = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(secured + "/infill", json={"input_prefix": CODE[:40], "n_predict": 10}, headers=ok)
    assert r.status_code == 200 and r.json()["content"] == expected(prefix=CODE[:40], max_tokens=10).text
    assert httpx.get(secured + "/metrics", headers=ok).status_code == 200
    assert httpx.get(secured + "/health").status_code == 200
    # With a token, any Host is fine (the token is the protection).
    assert httpx.get(secured + "/v1/models", headers={**ok, "Host": "codeswift.example:80"}).status_code == 200


def test_token_is_checked_before_the_body_is_read(secured):
    big = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    r = httpx.post(secured + "/v1/codeswift/complete", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 401


@pytest.mark.parametrize("host, status", [("localhost:1", 200), ("127.0.0.1", 200), ("[::1]:8080", 200),
                                          ("evil.example", 403), ("evil.example:8080", 403),
                                          ("10.0.0.1:80", 403)])
def test_without_token_only_loopback_host_names(base_url, host, status):
    r = httpx.get(base_url + "/v1/models", headers={"Host": host})
    assert r.status_code == status
    if status == 403:
        assert r.json()["error"]["type"] == "forbidden"


def run_cli(capsys, *args):
    """`codeswift serve ARGS` through the CLI's main() in-process: (exit code, stderr lines)."""
    from codeswift.cli import main
    code = main(["serve", *args])
    return code, capsys.readouterr().err.strip().splitlines()


def test_refuses_non_loopback_bind_without_token_as_a_process():
    r = subprocess.run([sys.executable, "-m", "codeswift.cli", "serve", "--host", "0.0.0.0"],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "CODESWIFT_TOKEN": ""})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "codeswift: error: refusing to bind 0.0.0.0 without --token (or $CODESWIFT_TOKEN): "
        "only loopback addresses may be served without authentication"]


@pytest.mark.parametrize("host", ["::", "192.168.1.10", "example.com"])
def test_refuses_non_loopback_bind_without_token(capsys, monkeypatch, host):
    monkeypatch.delenv("CODESWIFT_TOKEN", raising=False)
    code, err = run_cli(capsys, "--host", host, "--model", "/nonexistent")
    assert code == 2 and len(err) == 1 and err[0].startswith("codeswift: error: refusing to bind")


def test_busy_port_is_a_one_line_error_before_the_model_loads(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        code, err = run_cli(capsys, "--port", str(s.getsockname()[1]), "--model", "/nonexistent")
    assert code == 2 and len(err) == 1 and err[0].startswith("codeswift: error: cannot bind 127.0.0.1:")


@pytest.mark.parametrize("args, msg", [(["--queue-size", "-1"], "--queue-size"), (["--max-tokens", "0"], "--max-tokens"),
                                       (["--root", "/nonexistent-root"], "is not a folder"), (["--port", "70000"], "--port")])
def test_bad_flags_are_one_line_errors(capsys, args, msg):
    code, err = run_cli(capsys, *args, "--model", "/nonexistent")
    assert code == 2 and len(err) == 1 and msg in err[0]
