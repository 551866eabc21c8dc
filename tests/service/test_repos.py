"""POST /v1/codeswift/repos: registration confined to --root; repo_id adds repository snippets."""
import importlib.util
import os

import httpx
import pytest

from svc_testkit import make_app, serve

URL = "/v1/codeswift/repos"
HAS_INDEX = importlib.util.find_spec("datastore.repo_index") is not None

UTIL = "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("repos")
    root, outside = base / "root", base / "outside"
    (root / "proj").mkdir(parents=True)
    (root / "proj" / "util.py").write_text(UTIL)
    (root / "proj" / "main.py").write_text("from util import fibonacci\n\nprint(fibonacci(10))\n")
    (root / "afile.txt").write_text("x")
    outside.mkdir()
    (outside / "secret.py").write_text("PASSWORD = 'hunter2'\n")
    os.symlink(outside, root / "link_out")                     # a folder link leaving the root
    (root / "sneaky").mkdir()
    os.symlink(outside / "secret.py", root / "sneaky" / "s.py")  # a file link leaving the root
    os.symlink(root / "proj", root / "link_in")                # a link that stays inside
    return base


@pytest.fixture(scope="module")
def url(engine, tree):
    app = make_app(engine, roots=(str(tree / "root"),))
    with serve(app) as u:
        yield u, app.state.service


def test_register_and_complete_with_repo_snippets(url, tree, expected):
    base, svc = url
    r = httpx.post(base + URL, json={"path": str(tree / "root" / "proj")})
    assert r.status_code == 200, r.text
    got = r.json()
    assert len(got["repo_id"]) == 16 and got["path"] == str((tree / "root" / "proj").resolve())
    assert got["indexed"] is HAS_INDEX
    # Same folder through a link inside the root, or relative to the root: same repository.
    assert httpx.post(base + URL, json={"path": str(tree / "root" / "link_in")}).json()["repo_id"] == got["repo_id"]
    assert httpx.post(base + URL, json={"path": "proj"}).json()["repo_id"] == got["repo_id"]

    from codeswift.types import CompletionRequest
    from service.repos import repo_snippets
    prefix = "from util import fibonacci\n\nresult = "
    req = CompletionRequest(prefix=prefix, path="main.py", max_tokens=16)
    snippets = repo_snippets(svc.repos.get(got["repo_id"]), req)
    if HAS_INDEX:
        assert [s.path for s in snippets] == ["util.py"] and "def fibonacci" in snippets[0].text
    r = httpx.post(base + "/v1/codeswift/complete",
                   json={"prefix": prefix, "path": "main.py", "max_tokens": 16, "repo_id": got["repo_id"]})
    assert r.status_code == 200, r.text
    assert r.json()["tokens"] == expected(prefix=prefix, path="main.py", max_tokens=16, snippets=snippets).tokens

    listed = httpx.get(base + URL).json()
    assert [x["repo_id"] for x in listed["repos"]] == [got["repo_id"]]


@pytest.mark.parametrize("path", [
    "/etc",
    "{root}/../outside",
    "{root}/proj/../../outside",
    "../outside",
    "{root}/link_out",
    "{root}/link_out/",
    "{root}/sneaky",            # inside, but holds a link to a file outside
    "{root}",                   # the root itself holds link_out
])
def test_paths_leaving_the_roots_are_403(url, tree, path):
    base, _ = url
    r = httpx.post(base + URL, json={"path": path.format(root=tree / "root")})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["type"] == "forbidden"
    assert "hunter2" not in r.text


@pytest.mark.parametrize("path, fragment", [
    ("{root}/missing", "is not a folder"),
    ("{root}/afile.txt", "is not a folder"),
    ("{root}/a\x00b", "NUL"),
])
def test_unusable_paths_inside_the_root_are_400(url, tree, path, fragment):
    base, _ = url
    r = httpx.post(base + URL, json={"path": path.format(root=tree / "root")})
    assert r.status_code == 400 and fragment in r.json()["error"]["message"]


def test_unknown_repo_id_and_empty_path(url):
    base, _ = url
    r = httpx.post(base + "/v1/codeswift/complete", json={"prefix": "x", "repo_id": "nope"})
    assert r.status_code == 400 and "unknown repo_id" in r.json()["error"]["message"]
    assert httpx.post(base + URL, json={"path": ""}).status_code == 422


def test_no_roots_means_no_registration(base_url, tree):
    r = httpx.post(base_url + URL, json={"path": str(tree / "root" / "proj")})
    assert r.status_code == 403 and "no --root" in r.json()["error"]["message"]
