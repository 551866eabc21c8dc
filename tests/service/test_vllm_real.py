"""`codeswift serve --engine vllm` with the real vLLM CPU engine on a tiny random qwen2 model (fp32).

Three servers, started the way a user starts them (`codeswift serve --engine vllm`, re-executed
into the vLLM environment): plain vLLM, vLLM's `ngram` and codeswift's proposer. Greedy outputs
must be identical token for token; the native API, /infill, /v1/completions and SSE streaming
answer like the codeswift engine's service; concurrent requests run batched and give the same
tokens; bad input gets a 4xx and the server keeps serving.

Slow (each server starts vLLM: 1-2 minutes on 2 cores) and needs the vLLM environment
(`codeswift setup vllm`, or CODESWIFT_VLLM_PYTHON): `scripts/vllm-tests.sh` runs both.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

SPECS = ("none", "ngram", "codeswift")
START_TIMEOUT_S = 600


def _vllm_python() -> str | None:
    env = os.environ.get("CODESWIFT_VLLM_PYTHON")
    if env:
        return env if os.access(env, os.X_OK) else None
    from codeswift.vllm.setup import default_venv, recorded_python
    py = recorded_python()
    if py is None:
        # the tests' CODESWIFT_CACHE is not the user's: look where `codeswift setup vllm` puts it
        cand = Path.home() / ".cache" / "codeswift" / "vllm" / "venv" / "bin" / "python"
        py = str(cand) if cand.is_file() else None
        if py is None and (default_venv() / "bin" / "python").is_file():
            py = str(default_venv() / "bin" / "python")
    return py


VLLM_PYTHON = _vllm_python()
if VLLM_PYTHON is None:
    pytest.skip("no vLLM environment: run `codeswift setup vllm` (or set CODESWIFT_VLLM_PYTHON)",
                allow_module_level=True)


class Server:
    def __init__(self, spec: str, model: Path, root: Path, log: Path):
        self.spec, self.log_path = spec, log
        cmd = [sys.executable, "-m", "codeswift.cli", "serve", "--engine", "vllm", "--model", str(model),
               "--dtype", "float32", "--port", "0", "--vllm-spec", spec, "--vllm-python", VLLM_PYTHON,
               "--vllm-max-seqs", "8", "--vllm-eager", "--root", str(root), "--log-level", "warning"]
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONUNBUFFERED": "1"}
        self.log = open(log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url: str | None = None

    def wait(self, deadline: float) -> str:
        while self.url is None:
            text = self.log_path.read_text(errors="replace")
            m = re.search(r"codeswift serve: (http://\S+) \(model", text)
            if m:
                self.url = m.group(1)
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm server ({self.spec}) exited {self.proc.returncode}:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"vllm server ({self.spec}) did not start:\n{text[-3000:]}")
            time.sleep(0.5)
        return self.url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def tiny_vllm_model(tmp_path_factory):
    from codeswift.testing import make_tiny_model
    # head_dim 64 (hidden 256, 4 heads): a size vLLM's CPU attention supports
    return make_tiny_model(tmp_path_factory.mktemp("vllm-model") / "tiny", hidden=256, layers=2)


@pytest.fixture(scope="module")
def repo_root(tmp_path_factory):
    from codeswift.testing import SAMPLE_CODE
    root = tmp_path_factory.mktemp("roots")
    (root / "proj").mkdir()
    (root / "proj" / "stack.py").write_text(SAMPLE_CODE)
    return root


@pytest.fixture(scope="module")
def servers(tiny_vllm_model, repo_root, tmp_path_factory):
    logs = tmp_path_factory.mktemp("vllm-logs")
    started = {s: Server(s, tiny_vllm_model, repo_root, logs / f"{s}.log") for s in SPECS}
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        urls = {s: srv.wait(deadline) for s, srv in started.items()}
        yield urls
    finally:
        for srv in started.values():
            srv.stop()


def _post(url: str, path: str, body, **kw) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=120, **kw)


def _prompts():
    from codeswift.testing import SAMPLE_CODE
    code = SAMPLE_CODE
    return [
        {"prefix": code + code[:60], "max_tokens": 40},
        {"prefix": code[:200], "suffix": code[200:], "max_tokens": 32},
        {"prefix": "def add(a, b):\n    return a + b\n\ndef fib", "max_tokens": 24},
        {"prefix": code[:120], "suffix": code[300:], "max_tokens": 32, "stop": "line"},
        {"prefix": code[:150], "max_tokens": 32, "stop": "block", "path": "s.py", "language": "python"},
    ]


def test_greedy_outputs_identical_for_none_ngram_and_codeswift(servers):
    outs = {s: [_post(u, "/v1/codeswift/complete", p).json() for p in _prompts()] for s, u in servers.items()}
    for s in ("ngram", "codeswift"):
        for i, (a, b) in enumerate(zip(outs["none"], outs[s])):
            assert b["tokens"] == a["tokens"], f"{s}, prompt {i}"
            assert b["text"] == a["text"] and b["finish_reason"] == a["finish_reason"]
    cs = outs["codeswift"]
    assert all(o["stats"]["engine"] == "vllm" and o["stats"]["spec"] == "codeswift" for o in cs)
    assert sum(o["stats"].get("accepted_tokens", 0) for o in cs) > 0     # the drafts did get accepted
    assert all("steps" not in o["stats"] for o in outs["none"])


def test_dialects_agree_with_the_native_answer(servers):
    from codeswift.testing import SAMPLE_CODE
    url = servers["codeswift"]
    pre, suf = SAMPLE_CODE[:200], SAMPLE_CODE[200:]
    native = _post(url, "/v1/codeswift/complete", {"prefix": pre, "suffix": suf, "max_tokens": 16}).json()
    oa = _post(url, "/v1/completions", {"prompt": pre, "suffix": suf, "max_tokens": 16, "temperature": 0}).json()
    assert oa["choices"][0]["text"] == native["text"] and oa["usage"]["completion_tokens"] == len(native["tokens"])
    inf = _post(url, "/infill", {"input_prefix": pre, "input_suffix": suf, "n_predict": 16}).json()
    assert inf["content"] == native["text"] and inf["tokens_predicted"] == len(native["tokens"])
    assert _post(url, "/infill", {"input_prefix": pre, "n_predict": 0}).status_code == 200


def _sse(resp: httpx.Response) -> list[tuple[str | None, str]]:
    events, name = [], None
    for line in resp.text.splitlines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, line[5:].strip()))
            name = None
    return events


def test_streaming_native_and_openai(servers):
    url = servers["codeswift"]
    body = _prompts()[0]
    plain = _post(url, "/v1/codeswift/complete", body).json()
    ev = _sse(_post(url, "/v1/codeswift/complete", {**body, "stream": True}))
    chunks = [json.loads(d)["text"] for n, d in ev if n == "chunk"]
    done = [json.loads(d) for n, d in ev if n == "done"]
    assert len(chunks) >= 1 and done and done[0]["text"] == plain["text"] == "".join(chunks)
    assert done[0]["tokens"] == plain["tokens"]
    ev = _sse(_post(url, "/v1/completions", {"prompt": body["prefix"], "max_tokens": body["max_tokens"],
                                             "stream": True}))
    assert ev[-1][1] == "[DONE]"
    text = "".join(json.loads(d)["choices"][0]["text"] for _, d in ev[:-1])
    assert text == plain["text"]


def test_concurrent_requests_run_batched_and_equal_sequential(servers):
    url = servers["codeswift"]
    prompts = _prompts() * 2
    seq = [_post(url, "/v1/codeswift/complete", p).json()["tokens"] for p in prompts]
    with ThreadPoolExecutor(len(prompts)) as ex:
        par = list(ex.map(lambda p: _post(url, "/v1/codeswift/complete", p).json()["tokens"], prompts))
    assert par == seq
    metrics = httpx.get(url + "/metrics", timeout=30).text
    assert 'codeswift_completions_total{finish_reason="length"}' in metrics


def test_repository_requests(servers, repo_root):
    url = servers["codeswift"]
    reg = _post(url, "/v1/codeswift/repos", {"path": str(repo_root / "proj")})
    assert reg.status_code == 200, reg.text
    rid = reg.json()["repo_id"]
    body = {"prefix": "class Stack:\n    def __init__(self):\n", "max_tokens": 24, "repo_id": rid,
            "path": "other.py"}
    with_repo = _post(url, "/v1/codeswift/complete", body).json()
    ref = _post(servers["none"], "/v1/codeswift/repos", {"path": str(repo_root / "proj")}).json()["repo_id"]
    plain = _post(servers["none"], "/v1/codeswift/complete", {**body, "repo_id": ref}).json()
    assert with_repo["tokens"] == plain["tokens"]
    assert _post(url, "/v1/codeswift/complete", {**body, "repo_id": "nope"}).status_code == 400


@pytest.mark.parametrize("path, body, status", [
    ("/v1/codeswift/complete", {"prefix": "x", "max_tokens": 0}, 422),
    ("/v1/codeswift/complete", {"prefix": "x", "max_tokens": 100000}, 422),
    ("/v1/codeswift/complete", {"prefix": "x", "max_tokens": 5000}, 400),      # past the served context
    ("/v1/codeswift/complete", {"prefix": "x", "repetition_penalty": 2.0}, 400),
    ("/v1/codeswift/complete", {"prefix": 3}, 422),
    ("/v1/completions", {"prompt": "x", "max_tokens": -1}, 422),
    ("/infill", {"input_prefix": "x", "temperature": -1}, 422),
])
def test_bad_input_is_a_4xx_and_the_server_keeps_serving(servers, path, body, status):
    url = servers["codeswift"]
    r = _post(url, path, body)
    assert r.status_code == status, r.text
    assert "error" in r.json()
    ok = _post(url, "/v1/codeswift/complete", {"prefix": "def f(", "max_tokens": 4})
    assert ok.status_code == 200 and len(ok.json()["tokens"]) <= 4


def test_malformed_json_and_health(servers):
    url = servers["codeswift"]
    r = httpx.post(url + "/v1/codeswift/complete", content=b"{not json", timeout=30,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    h = httpx.get(url + "/health", timeout=30).json()
    assert h["status"] == "ok" and h["model"] == "tiny"


def test_client_gone_mid_stream_does_not_hurt_the_server(servers):
    url = servers["codeswift"]
    with httpx.stream("POST", url + "/v1/codeswift/complete", timeout=60,
                      json={"prefix": "def f(", "max_tokens": 2000, "stream": True}) as r:
        for _ in r.iter_lines():
            break                                 # read one line, then hang up
    ok = _post(url, "/v1/codeswift/complete", {"prefix": "def f(", "max_tokens": 4})
    assert ok.status_code == 200


def test_asking_again_drafts_the_previous_answer(servers):
    """The preference cache is shared across requests: the second identical request gets the
    first one's answer as drafts (fewer steps), with the same tokens."""
    url = servers["codeswift"]
    body = {"prefix": "def add(a, b):\n    return a + b\n\ndef fib", "max_tokens": 40, "doc_id": "again"}
    first = _post(url, "/v1/codeswift/complete", body).json()
    second = _post(url, "/v1/codeswift/complete", body).json()
    assert second["tokens"] == first["tokens"]
    assert second["stats"]["steps"] < first["stats"]["steps"]
    assert second["stats"]["accepted_tokens"] > first["stats"]["accepted_tokens"]
