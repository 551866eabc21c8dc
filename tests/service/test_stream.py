"""Token streaming over HTTP (real uvicorn on loopback): SSE pieces as the engine accepts tokens,
in the native, llama.cpp /infill and OpenAI shapes; client rules cut the stream as it goes; a client
that leaves mid-stream cancels the generation and the server keeps serving."""
import json
import time

import httpx

from codeswift.ending import PostRules, apply_rules
from svc_testkit import CODE, sse_events


def stream(base_url, path, body):
    with httpx.stream("POST", base_url + path, json={**body, "stream": True}, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return sse_events(r.read().decode())


def test_native_stream_is_token_by_token(base_url, expected):
    events = stream(base_url, "/v1/codeswift/complete", {"prefix": CODE[:120], "max_tokens": 150, "speculative": False})
    want = expected(prefix=CODE[:120], max_tokens=150)
    chunks = [json.loads(d)["text"] for n, d in events if n == "chunk"]
    assert "".join(chunks) == want.text and json.loads(events[-1][1])["tokens"] == want.tokens
    assert len(chunks) > min(10, len(want.tokens) // 3), "the text came in a few pieces, not as tokens were accepted"


def test_infill_stream_stops_at_a_client_stop_string(base_url, expected):
    want = expected(prefix=CODE[:80], suffix=CODE[80:], max_tokens=60)
    stop = want.text[len(want.text) // 2:len(want.text) // 2 + 2]
    body = {"input_prefix": CODE[:80], "input_suffix": CODE[80:], "n_predict": 60, "stop": [stop]}
    events = [json.loads(d) for _, d in stream(base_url, "/infill", body)]
    cut = apply_rules(want, PostRules(stop_strings=[stop]))
    assert "".join(e["content"] for e in events) == cut.text
    assert events[-1]["stop"] and events[-1]["stop_type"] == "word" and events[-1]["stopping_word"] == stop
    # The generation ended at the stop string, not at n_predict.
    assert events[-1]["tokens_predicted"] <= len(want.tokens)
    plain = httpx.post(base_url + "/infill", json=body).json()
    assert plain["content"] == cut.text


def test_openai_stream_with_echo_and_stop(base_url, expected):
    want = expected(prefix=CODE[:100], max_tokens=40)
    stop = want.text[5:8]
    body = {"prompt": CODE[:100], "max_tokens": 40, "stop": stop, "echo": True}
    events = stream(base_url, "/v1/completions", body)
    assert events[-1][1] == "[DONE]"
    objs = [json.loads(d) for _, d in events[:-1]]
    text = "".join(o["choices"][0]["text"] for o in objs)
    assert text == CODE[:100] + apply_rules(want, PostRules(stop_strings=[stop])).text
    assert [o["choices"][0]["finish_reason"] for o in objs][-1] == "stop"


def test_penalty_travels_over_http(base_url, expected):
    body = {"prefix": CODE[:90], "max_tokens": 30, "repetition_penalty": 1.4, "penalty_window": 32}
    got = httpx.post(base_url + "/v1/codeswift/complete", json=body).json()
    assert got["tokens"] == expected(prefix=CODE[:90], max_tokens=30, repetition_penalty=1.4, penalty_window=32).tokens
    r = httpx.post(base_url + "/v1/codeswift/complete", json={**body, "repetition_penalty": 0.5})
    assert r.status_code == 422


def test_errors_before_the_stream_are_plain_http_errors(base_url):
    r = httpx.post(base_url + "/v1/codeswift/complete", json={"prefix": "x", "repo_id": "nope", "stream": True})
    assert r.status_code == 400 and "unknown repo_id" in r.json()["error"]["message"]


def cancelled_count(base_url):
    for line in httpx.get(base_url + "/metrics").text.splitlines():
        if line.startswith("codeswift_completions_cancelled_total"):
            return float(line.split()[-1])
    return 0.0


def test_client_leaving_mid_stream_cancels_and_the_server_keeps_serving(base_url, expected):
    before = cancelled_count(base_url)
    body = {"prefix": CODE[:60], "max_tokens": 4000, "speculative": False, "stream": True}
    with httpx.stream("POST", base_url + "/v1/codeswift/complete", json=body, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                break                                    # one piece, then hang up
    deadline = time.time() + 30
    while cancelled_count(base_url) <= before and time.time() < deadline:
        time.sleep(0.1)
    assert cancelled_count(base_url) > before, "the generation was not cancelled"
    got = httpx.post(base_url + "/v1/codeswift/complete", json={"prefix": CODE[:50], "max_tokens": 8}).json()
    assert got["tokens"] == expected(prefix=CODE[:50], max_tokens=8).tokens
