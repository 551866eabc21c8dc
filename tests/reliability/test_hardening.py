"""Security: the token is compared in constant time, unsafe binds are refused, no file outside
the configured roots (HTTP) or the workspace (LSP index) is ever read, and the per-client rate
limit answers 429 with Retry-After."""
import os
import secrets
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability_kit import scale
from svc_testkit import make_app, serve

TOKEN = "t0ken-for-reliability"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, Path]:
    """roots/allowed (the --root) with repositories, some leading out; outside with a secret."""
    base = tmp_path_factory.mktemp("paths")
    root, outside, sibling = base / "allowed", base / "outside", base / "allowed-evil"
    for folder in (root / "repo" / "pkg", outside, sibling):
        folder.mkdir(parents=True)
    (root / "repo" / "pkg" / "mod.py").write_text("def inside():\n    return 1\n")
    (outside / "secret.py").write_text("def secret_key():\n    return 'hunter2'\n")
    (sibling / "x.py").write_text("x = 1\n")
    (root / "link_out").symlink_to(outside, target_is_directory=True)
    (root / "leaky").mkdir()
    (root / "leaky" / "ok.py").write_text("ok = 1\n")
    (root / "leaky" / "secret.py").symlink_to(outside / "secret.py")
    (root / "link_in").symlink_to(root / "repo", target_is_directory=True)
    return {"base": base, "root": root, "outside": outside}


def test_the_token_goes_through_compare_digest(engine, monkeypatch):
    compared = []
    real = secrets.compare_digest
    monkeypatch.setattr(secrets, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    with serve(make_app(engine, token=TOKEN)) as url:
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer guess"}).status_code == 401
        assert httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert compared == [(b"guess", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_non_loopback_bind_without_token_is_refused(host):
    import argparse

    from codeswift.errors import CodeswiftError
    from service.cli import check_args
    args = argparse.Namespace(host=host, token=None, port=8080, queue_size=16, max_tokens=64,
                              max_body_mb=2.0, rate_limit=0, root=[])
    with pytest.raises(CodeswiftError, match=f"refusing to bind {host} without --token"):
        check_args(args)
    check_args(argparse.Namespace(**{**vars(args), "token": TOKEN}))


SEGMENTS = ["..", ".", "allowed", "repo", "%2e%2e", "%2E%2E%2F", "..\\..", "..%2f", "repo", "pkg", "link_out", "link_in",
            "leaky", "outside", "allowed-evil", "", "/", "\\"]


def test_registration_never_leaves_the_roots(engine, tree):
    root, base = tree["root"], tree["base"]
    seen = set()
    with serve(make_app(engine, roots=(str(root),))) as url, httpx.Client(base_url=url, timeout=60) as http:
        @settings(max_examples=scale("PATH_EXAMPLES", 60), deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5), absolute=st.booleans())
        def run(parts, absolute):
            path = ("/".join([str(base)] + parts) if absolute else "/".join(parts)) or "."
            r = http.post("/v1/codeswift/repos", json={"path": path})
            seen.add(r.status_code)
            assert r.status_code in (200, 400, 403), (path, r.status_code, r.text)
            if r.status_code == 200:
                real = Path(r.json()["path"])
                assert real.is_relative_to(root) and real == Path(os.path.realpath(root / path))
                assert "secret" not in str(r.json())
            elif r.status_code == 403:
                assert r.json()["error"]["type"] == "forbidden"
        run()
        for path, status in [("../outside", 403), ("link_out", 403), ("leaky", 403), (str(tree["outside"]), 403),
                             ("../allowed-evil", 403), ("%2e%2e/outside", 400), ("..\\outside", 400),
                             ("link_in", 200), ("repo/../repo/pkg", 200)]:
            r = http.post("/v1/codeswift/repos", json={"path": path})
            assert r.status_code == status, (path, r.text)
    assert seen >= {200, 400, 403}


def test_the_repository_index_never_follows_links_out_of_its_root(tree, tiny_qwen):
    """What the LSP indexes for a workspace folder: the files inside, never the linked secret."""
    from transformers import AutoTokenizer

    from datastore.repo_index import RepoIndex
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    index = RepoIndex.open_or_build(tree["root"], tok, out_dir=tree["base"] / "idx", progress=False)
    files = sorted(f.rel for f in index.store.files)
    assert files == ["leaky/ok.py", "repo/pkg/mod.py"]            # link_in is the same folder, once
    assert index.definitions("secret_key") == []
    assert [h.path for h in index.chunks_for("secret_key()")] == []


def test_the_rate_limit_answers_429_with_retry_after(engine):
    per_minute = 30                                        # a burst of 30, then one every 2 s
    with serve(make_app(engine, rate_limit=per_minute)) as url, httpx.Client(base_url=url) as http:
        t0, served = time.monotonic(), 0
        while (r := http.get("/v1/models")).status_code == 200:
            served += 1
        refilled = (time.monotonic() - t0) * per_minute / 60
        assert per_minute <= served <= per_minute + refilled + 1
        assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limited"
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 2
        assert http.post("/infill", json={"input_prefix": "x", "n_predict": 2}).status_code == 429
        assert http.get("/health").status_code == 200      # liveness is never limited
        time.sleep(wait)
        assert http.post("/infill", json={"input_prefix": "x", "n_predict": 2}).status_code == 200


def test_the_rate_limit_is_per_client_and_forgets_idle_clients():
    from service.guard import RateLimit
    limit = RateLimit(2)
    assert [limit.retry_after("a", now=0.0) for _ in range(3)] == [0, 0, 30]
    assert limit.retry_after("b", now=0.0) == 0                  # another address has its own bucket
    assert limit.retry_after("a", now=30.0) == 0
    limit.MAX_CLIENTS = 2
    assert limit.retry_after("c", now=1000.0) == 0               # a and b are full again: forgotten
    assert set(limit._buckets) == {"c"}
