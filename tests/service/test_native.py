"""POST /v1/codeswift/complete: exact engine output over HTTP, streaming, clear 4xx errors."""
import json

import httpx
import pytest

from svc_testkit import CODE, sse_events

URL = "/v1/codeswift/complete"


@pytest.mark.parametrize("stop", ["none", "line", "block"])
def test_complete_equals_in_process_engine(base_url, expected, stop):
    body = {"prefix": CODE[:60], "suffix": CODE[60:], "path": "m.py", "language": "python",
            "max_tokens": 24, "stop": stop, "doc_id": f"d-{stop}"}
    r = httpx.post(base_url + URL, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    want = expected(prefix=CODE[:60], suffix=CODE[60:], path="m.py", language="python",
                    max_tokens=24, stop=stop)
    assert got["text"] == want.text and got["tokens"] == want.tokens
    assert got["finish_reason"] == want.finish_reason
    assert {"steps", "accepted_per_step", "prompt_tokens"} <= set(got["stats"])


def test_snippets_reach_the_prompt(base_url, expected):
    from codeswift.types import Snippet
    snips = [{"path": "util.py", "text": "def fibonacci(n):\n    return n\n"}]
    r = httpx.post(base_url + URL, json={"prefix": CODE[:120], "max_tokens": 20, "snippets": snips,
                                         "path": "m.py", "unknown_field": 1})
    assert r.status_code == 200, r.text
    want = expected(prefix=CODE[:120], max_tokens=20, path="m.py", snippets=[Snippet(**snips[0])])
    plain = expected(prefix=CODE[:120], max_tokens=20, path="m.py")
    assert r.json()["tokens"] == want.tokens
    assert r.json()["stats"]["prompt_tokens"] > plain.stats["prompt_tokens"]   # snippets were used


def test_default_max_tokens_is_the_server_default(base_url, expected):
    r = httpx.post(base_url + URL, json={"prefix": "x = 1\n"})
    want = expected(prefix="x = 1\n", max_tokens=64)
    assert r.status_code == 200 and r.json()["tokens"] == want.tokens


def test_stream_sends_chunks_then_done(base_url, expected):
    prefix = CODE[:90]
    with httpx.stream("POST", base_url + URL, json={"prefix": prefix, "max_tokens": 40, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    want = expected(prefix=prefix, max_tokens=40)
    chunks = [json.loads(d)["text"] for name, d in events if name == "chunk"]
    assert events[-1][0] == "done" and [n for n, _ in events[:-1]] == ["chunk"] * len(chunks)
    assert "".join(chunks) == want.text
    assert json.loads(events[-1][1])["tokens"] == want.tokens


@pytest.mark.parametrize("body, fragment", [
    ({"suffix": "x"}, "prefix: Field required"),
    ({"prefix": 5}, "prefix: Input should be a valid string"),
    ({"prefix": "x", "max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
    ({"prefix": "x", "max_tokens": 9000}, "max_tokens: Input should be less than or equal to 8192"),
    ({"prefix": "x", "max_tokens": "many"}, "max_tokens: Input should be a valid integer"),
    ({"prefix": "x", "stop": "word"}, "stop: Input should be 'none', 'line' or 'block'"),
    ({"prefix": "x", "snippets": [{"path": "a"}]}, "snippets.0.text: Field required"),
    ([1, 2], "body: Input should be a valid dictionary"),
])
def test_bad_fields_are_422_with_a_clear_message(base_url, body, fragment):
    r = httpx.post(base_url + URL, json=body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and fragment in err["message"]


@pytest.mark.parametrize("raw", [b'{"prefix": "x",', b"not json", b'{"prefix": "\xff"}'])
def test_malformed_json_is_400(base_url, raw):
    r = httpx.post(base_url + URL, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["message"].startswith("malformed JSON body")


def test_non_json_content_type_is_415(base_url):
    r = httpx.post(base_url + URL, content=b'{"prefix": "x"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json() == {"error": {"message": "Content-Type must be application/json",
                                  "type": "unsupported_media_type"}}


def test_oversize_body_is_413_with_and_without_content_length(base_url):
    big = json.dumps({"prefix": "x" * (2 * 1024 * 1024)}).encode()
    r = httpx.post(base_url + URL, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"

    def chunked():                                    # no Content-Length: the limit still holds
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]
    r = httpx.post(base_url + URL, content=chunked(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
    assert httpx.get(base_url + "/health").status_code == 200


def test_unknown_route_and_wrong_method_are_json(base_url):
    r = httpx.get(base_url + "/nope")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    r = httpx.get(base_url + URL)
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"


def test_health(base_url):
    r = httpx.get(base_url + "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "model": "qwen2"}
