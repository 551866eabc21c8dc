"""POST /v1/completions: OpenAI's completions shape (Continue's `openai` provider)."""
import json

import httpx
import pytest

from codeswift.types import Snippet
from svc_testkit import CODE, sse_events

URL = "/v1/completions"


def test_prompt_and_suffix(base_url, expected):
    body = {"model": "anything", "prompt": CODE[:90], "suffix": CODE[90:], "max_tokens": 30,
            "temperature": 0.01, "top_p": 1, "presence_penalty": 0}
    r = httpx.post(base_url + URL, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    want = expected(prefix=CODE[:90], suffix=CODE[90:], max_tokens=30)
    assert got["object"] == "text_completion" and got["id"].startswith("cmpl-")
    assert got["model"] == "qwen2" and isinstance(got["created"], int)
    assert got["choices"] == [{"text": want.text, "index": 0, "logprobs": None,
                               "finish_reason": {"eos": "stop", "length": "length"}[want.finish_reason]}]
    assert got["usage"] == {"prompt_tokens": want.stats["prompt_tokens"], "completion_tokens": len(want.tokens),
                            "total_tokens": want.stats["prompt_tokens"] + len(want.tokens)}


@pytest.mark.parametrize("template", [
    "<|fim_prefix|>{p}<|fim_suffix|>{s}<|fim_middle|>",            # Continue, Qwen models
    "<fim_prefix>{p}<fim_suffix>{s}<fim_middle>",                  # Continue's default (StarCoder)
    "<PRE> {p} <SUF>{s} <MID>",                                    # CodeLlama
    "<｜fim▁begin｜>{p}<｜fim▁hole｜>{s}<｜fim▁end｜>",                # DeepSeek-Coder
])
def test_client_side_fim_template_is_undone(base_url, expected, template):
    pre, suf = CODE[:75], CODE[75:]
    r = httpx.post(base_url + URL, json={"prompt": template.format(p=pre, s=suf), "max_tokens": 20})
    assert r.json()["choices"][0]["text"] == expected(prefix=pre, suffix=suf, max_tokens=20).text


def test_qwen_repo_template_files_become_snippets(base_url, expected):
    pre, suf = CODE[:75], CODE[75:]
    util = "def sub(a, b):\n    return a - b\n"
    prompt = (f"<|repo_name|>demo\n<|file_sep|>util.py\n{util}<|file_sep|>m.py\n"
              f"<|fim_prefix|>{pre}<|fim_suffix|>{suf}<|fim_middle|>")
    r = httpx.post(base_url + URL, json={"prompt": prompt, "max_tokens": 20})
    want = expected(prefix=pre, suffix=suf, path="m.py", snippets=[Snippet("util.py", util)], max_tokens=20)
    assert r.json()["choices"][0]["text"] == want.text


def test_stream_ends_with_done(base_url, expected):
    body = {"prompt": [CODE[:110]], "max_tokens": 40, "stream": True, "stop": ["\x00"]}
    with httpx.stream("POST", base_url + URL, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.read().decode())
    assert events[-1] == (None, "[DONE]")
    objs = [json.loads(d) for _, d in events[:-1]]
    want = expected(prefix=CODE[:110], max_tokens=40)
    assert "".join(o["choices"][0]["text"] for o in objs) == want.text
    assert [o["choices"][0]["finish_reason"] for o in objs][:-1] == [None] * (len(objs) - 1)
    assert objs[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert len({o["id"] for o in objs}) == 1 and all(o["object"] == "text_completion" for o in objs)


def test_stop_string_echo_and_n(base_url, expected):
    full = expected(prefix=CODE[:50], max_tokens=32).text
    word = full[4:6]
    assert full.find(word) == 4
    r = httpx.post(base_url + URL, json={"prompt": CODE[:50], "max_tokens": 32, "stop": word,
                                         "echo": True, "n": 2})
    got = r.json()["choices"]
    assert [c["text"] for c in got] == [CODE[:50] + full[:4]] * 2
    assert [c["index"] for c in got] == [0, 1] and got[0]["finish_reason"] == "stop"


def test_models_list(base_url):
    r = httpx.get(base_url + "/v1/models")
    assert r.json() == {"object": "list", "data": [{"id": "qwen2", "object": "model", "owned_by": "codeswift"}]}


@pytest.mark.parametrize("body, fragment", [
    ({"prompt": ["a", "b"]}, "exactly one prompt"),
    ({"prompt": [1, 2]}, "prompt"),
    ({"prompt": "x", "max_tokens": -1}, "max_tokens"),
    ({"prompt": "x", "stop": 5}, "stop"),
    ({"prompt": "x", "n": 0}, "n: Input should be greater than or equal to 1"),
])
def test_bad_fields(base_url, body, fragment):
    r = httpx.post(base_url + URL, json=body)
    assert r.status_code == 422 and fragment in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_completions_alias_without_v1(base_url, expected):
    r = httpx.post(base_url + "/completions", json={"prompt": CODE[:33], "max_tokens": 9})
    assert r.status_code == 200
    assert r.json()["choices"][0]["text"] == expected(prefix=CODE[:33], max_tokens=9).text


def test_sampling_fields_are_honoured_and_validated(base_url, expected):
    body = {"prompt": CODE[:90], "suffix": CODE[90:], "max_tokens": 16, "temperature": 1.0, "seed": 11}
    # Without drafts the random stream is used the same way each time: same seed, same sample.
    # (With drafts a sample depends on what was drafted, e.g. the previous answer: the
    # distribution is the model's own, the path through the random stream is not fixed.)
    native = {"prefix": CODE[:90], "suffix": CODE[90:], "max_tokens": 16, "temperature": 1.0, "seed": 11,
              "speculative": False}
    a, b = (httpx.post(base_url + "/v1/codeswift/complete", json=native).json() for _ in range(2))
    assert a["tokens"] == b["tokens"] and len(a["tokens"]) > 0
    assert httpx.post(base_url + URL, json=body).status_code == 200
    greedy = expected(prefix=CODE[:90], suffix=CODE[90:], max_tokens=16).text
    r = httpx.post(base_url + URL, json={**body, "temperature": 0.01})     # "deterministic": greedy
    assert r.json()["choices"][0]["text"] == greedy
    r = httpx.post(base_url + URL, json={**body, "temperature": 9})
    assert r.status_code == 422 and "temperature" in r.text             # out of range: a clear 4xx
    r = httpx.post(base_url + URL, json={**body, "top_p": 0})
    assert r.status_code == 422 and "top_p" in r.text
