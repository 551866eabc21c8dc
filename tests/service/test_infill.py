"""POST /infill: llama.cpp's request and response shapes, as llama.vscode sends and reads them."""
import json

import httpx
import pytest

from codeswift.types import Snippet
from svc_testkit import CODE, sse_events

# What llama.vscode 0.0.x posts (llama-server.ts createRequestPayload), unknown fields included.
def vscode_body(prefix, suffix, prompt, extra=(), n_predict=24, **more):
    return {"input_prefix": prefix, "input_suffix": suffix, "input_extra": list(extra), "prompt": prompt,
            "n_predict": n_predict, "top_k": 40, "top_p": 0.99, "stream": False,
            "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 1000, "id_slot": 0, **more}


def test_llama_vscode_request_gets_engine_text(base_url, expected):
    pre, line, suf = CODE[:100], "    ret", CODE[100:]
    extra = [{"filename": "util.py", "text": "def sub(a, b):\n    return a - b\n", "time": 1712}]
    r = httpx.post(base_url + "/infill", json=vscode_body(pre, suf, line, extra))
    assert r.status_code == 200, r.text
    got = r.json()
    # `prompt` (the typed part of the line) is appended to the prefix; input_extra -> snippets.
    want = expected(prefix=pre + line, suffix=suf, max_tokens=24,
                    snippets=[Snippet("util.py", extra[0]["text"])])
    assert got["content"] == want.text
    assert got["tokens_predicted"] == len(want.tokens) and got["stop"] is True
    assert got["stop_type"] == {"eos": "eos", "length": "limit"}[want.finish_reason]
    assert got["tokens_evaluated"] == want.stats["prompt_tokens"]
    t = got["timings"]
    assert t["predicted_n"] == len(want.tokens) and t["prompt_n"] >= 0 and t["predicted_ms"] > 0
    assert {"prompt_ms", "prompt_per_second", "predicted_per_second"} <= set(t)
    assert isinstance(got["tokens_cached"], int) and got["truncated"] is False


def test_n_predict_zero_is_a_cheap_warm_up(base_url):
    r = httpx.post(base_url + "/infill", json=vscode_body("", "", "", n_predict=0, samplers=[]))
    assert r.status_code == 200
    assert r.json()["content"] == "" and r.json()["tokens_predicted"] == 0


def test_n_predict_minus_one_uses_server_default(base_url, expected):
    r = httpx.post(base_url + "/infill", json={"input_prefix": "x = ", "n_predict": -1})
    assert r.status_code == 200
    assert r.json()["content"] == expected(prefix="x = ", max_tokens=64).text


def test_stop_strings_cut_like_llama_cpp(base_url, expected):
    full = expected(prefix=CODE[:50], max_tokens=32).text
    word = full[5:7]
    assert word and full.find(word) == 5
    r = httpx.post(base_url + "/infill", json={"input_prefix": CODE[:50], "n_predict": 32, "stop": [word, "\x00"]})
    got = r.json()
    assert got["content"] == full[:5]
    assert got["stop_type"] == "word" and got["stopping_word"] == word


def test_response_fields_select_paths(base_url, expected):
    fields = ["content", "timings/prompt_n", "timings/predicted_n", "truncated", "no/such"]
    r = httpx.post(base_url + "/infill", json={"input_prefix": CODE[:70], "n_predict": 12,
                                               "response_fields": fields})
    got = r.json()
    assert set(got) == {"content", "timings/prompt_n", "timings/predicted_n", "truncated"}
    assert got["content"] == expected(prefix=CODE[:70], max_tokens=12).text


def test_stream_like_llama_cpp(base_url, expected):
    body = {"input_prefix": CODE[:80], "input_suffix": CODE[80:], "n_predict": 40, "stream": True}
    with httpx.stream("POST", base_url + "/infill", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(d) for _, d in sse_events(r.read().decode())]
    want = expected(prefix=CODE[:80], suffix=CODE[80:], max_tokens=40)
    assert [e["stop"] for e in events] == [False] * (len(events) - 1) + [True]
    assert "".join(e["content"] for e in events) == want.text
    assert events[-1]["content"] == "" and events[-1]["timings"]["predicted_n"] == len(want.tokens)


@pytest.mark.parametrize("body, fragment", [
    ({"input_prefix": 3}, "input_prefix: Input should be a valid string"),
    ({"input_extra": [{"filename": "a"}]}, "input_extra.0.text: Field required"),
    ({"n_predict": -5}, "n_predict: Input should be greater than or equal to -1"),
    ({"stop": "x"}, "stop: Input should be a valid list"),
])
def test_bad_fields(base_url, body, fragment):
    r = httpx.post(base_url + "/infill", json=body)
    assert r.status_code == 422 and fragment in r.json()["error"]["message"]
