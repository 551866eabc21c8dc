"""HTTP fuzzing: random bodies, wrong types, huge numbers and strings, lone surrogates, invalid
UTF-8 and broken JSON, sent over loopback to a real server on every completion endpoint.
Every request gets 2xx or a clear 4xx in the one error shape, never a 5xx or a hang, and the
server answers exactly as before afterwards."""
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability_kit import record, scale
from svc_testkit import CODE, make_app, serve

MAX_BODY = 64 * 1024                 # small, so the fuzzer's big strings reach the limit
EXAMPLES = scale("HTTP_EXAMPLES", 40)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
CLEAR_4XX = {400, 403, 404, 405, 413, 415, 422}
SENT: dict[int, int] = {}                 # status -> requests

# -- values ------------------------------------------------------------------------------------
lone_surrogate = st.characters(categories=["Cs"])
texts = st.one_of(
    st.text(max_size=40),
    st.text(st.sampled_from("def x():\n\t\r😀é{}[]\"\\"), max_size=80),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=8), lone_surrogate, st.text(max_size=8)),
    st.integers(100, MAX_BODY * 2).map(lambda n: "x" * n),            # huge: most get 413
)
numbers = st.one_of(st.integers(-3, 8), st.sampled_from([0, -1, 4097, 8193, 2**31, 2**63, 2**64, 10**30, -10**30]),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e400, 3.0, 2.5]))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
anything = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                        max_leaves=8)
text_lists = st.one_of(st.lists(texts, max_size=3), st.lists(st.just(""), min_size=60, max_size=70), anything)
snippets = st.one_of(st.lists(st.fixed_dictionaries({"path": texts, "text": texts}), max_size=3),
                     st.lists(st.fixed_dictionaries({"filename": texts, "text": texts}), max_size=3), anything)
sampling = {"temperature": st.one_of(st.sampled_from([0, 0.01, 0.7, 5, 5.1, -1]), numbers, anything),
            "top_p": st.one_of(st.sampled_from([1, 0.5, 0, 1.5]), numbers),
            "seed": st.one_of(st.none(), st.sampled_from([-1, 0, 7, 2**63 - 1, 2**63, 2**64, -2**70]), anything)}
value = st.one_of(texts, numbers, anything)

FIELDS = {
    "/v1/codeswift/complete": {"prefix": texts, "suffix": texts, "path": texts, "language": texts,
                               "max_tokens": numbers, "stop": st.one_of(st.sampled_from(["none", "line", "block"]), value),
                               "speculative": st.one_of(st.booleans(), value), "doc_id": st.one_of(st.none(), texts),
                               "repo_id": st.one_of(st.none(), texts), "snippets": snippets,
                               "stream": st.one_of(st.booleans(), value), **sampling},
    "/infill": {"input_prefix": texts, "input_suffix": texts, "prompt": texts, "input_extra": snippets,
                "n_predict": numbers, "max_tokens": numbers, "n_indent": numbers, "stop": text_lists,
                "stream": st.one_of(st.booleans(), value), "response_fields": st.one_of(st.none(), text_lists),
                "t_max_predict_ms": value, "samplers": value, **sampling},
    "/v1/completions": {"model": st.one_of(st.none(), texts),
                        "prompt": st.one_of(texts, st.lists(texts, max_size=2),
                                            st.builds(lambda a, b: f"<|fim_prefix|>{a}<|fim_suffix|>{b}<|fim_middle|>",
                                                      texts, texts)),
                        "suffix": st.one_of(st.none(), texts), "max_tokens": numbers,
                        "stop": st.one_of(st.none(), texts, text_lists), "n": numbers,
                        "echo": st.one_of(st.booleans(), value), "stream": st.one_of(st.booleans(), value), **sampling},
    "/v1/codeswift/repos": {"path": st.one_of(texts, st.sampled_from(["..", "/", "%2e%2e", "..\\..", "/etc"]))},
}


VALID = {"/v1/codeswift/complete": {"prefix": "def f(", "max_tokens": 3}, "/infill": {"input_prefix": "x = "},
         "/v1/completions": {"prompt": "import "}, "/v1/codeswift/repos": {"path": "."}}


def bodies(path: str):
    """JSON bodies for `path`: a valid body or none, overlaid with its known fields (each present
    or not, good or bad) and noise."""
    known = st.fixed_dictionaries({}, optional=FIELDS[path])
    noise = st.dictionaries(st.text(max_size=10), value, max_size=3)
    base = st.sampled_from([{}, VALID[path]])
    return st.one_of(st.builds(lambda b, k, n: {**b, **n, **k}, base, known, noise), anything)


def encode(obj) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


broken = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda b, cut: b[:cut], st.sampled_from([encode({"prefix": CODE[:50], "max_tokens": 4}),
                                                       encode({"input_prefix": "x", "n_predict": 4})]),
              st.integers(0, 40)),
    st.builds(lambda junk: b'{"prefix": "' + junk + b'", "max_tokens": 3}',
              st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\\x", b"\\u12"])),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 3000).map(lambda n: b'{"prefix": ' + b"[" * n + b"]" * n + b"}"),
    st.sampled_from([b"", b"null", b"[]", b'"text"', b"1e999999", b'{"prefix": "x", "prefix": 5}', b"\xef\xbb\xbf{}"]),
)
content_types = st.sampled_from(["application/json"] * 6 + ["application/json; charset=utf-8", "text/plain", "",
                                                            "application/vnd.api+json", "multipart/form-data"])


@pytest.fixture(scope="module")
def url(engine):
    with serve(make_app(engine, max_body_bytes=MAX_BODY, default_max_tokens=6)) as base:
        yield base


@pytest.fixture(scope="module")
def http(url):
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client


def check(r: httpx.Response) -> None:
    """2xx, or a clear 4xx in the service's one error shape."""
    SENT[r.status_code] = SENT.get(r.status_code, 0) + 1
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 300:
        assert r.status_code in CLEAR_4XX, (r.status_code, r.text[:300])
        err = r.json()["error"]
        assert set(err) == {"message", "type"} and err["message"] and err["type"], err
    elif r.headers["content-type"].startswith("text/event-stream"):
        assert r.text.rstrip().endswith(("[DONE]", "}")), r.text[-200:]
    else:
        assert isinstance(r.json(), dict)


def post(http, path: str, content: bytes, ctype: str = "application/json") -> httpx.Response:
    return http.post(path, content=content, headers={"Content-Type": ctype} if ctype else {})


@pytest.mark.parametrize("path", list(FIELDS))
def test_random_json_bodies_get_2xx_or_a_clear_4xx(http, engine, path):
    seen = set()

    @FUZZ
    @given(body=bodies(path), ctype=content_types)
    def run(body, ctype):
        r = post(http, path, encode(body), ctype)
        check(r)
        seen.add(r.status_code)
    run()
    # The fuzz reached the engine and the validation alike (no --root here: repos are 403).
    assert {200 if path != "/v1/codeswift/repos" else 403, 415, 422} <= seen, seen
    still_serving(http, engine)


@pytest.mark.parametrize("path", ["/v1/codeswift/complete", "/infill", "/completions"])
def test_broken_json_and_invalid_utf8_are_400s(http, engine, path):
    @FUZZ
    @given(raw=broken)
    def run(raw):
        check(post(http, path, raw))
    run()
    still_serving(http, engine)


def test_field_errors_name_the_field(http):
    cases = [("/v1/codeswift/complete", {"prefix": "x\ud800y"}, "prefix: Value error, not valid Unicode: "
                                                                "lone surrogate U+D800 at character 1"),
             ("/infill", {"input_extra": [{"filename": "a.py", "text": "\udfff"}]}, "input_extra.0.text: "),
             ("/v1/completions", {"prompt": "x", "seed": 2**64}, "seed: Input should be less than or equal to"),
             ("/v1/codeswift/complete", {"prefix": "x", "max_tokens": 10**30}, "max_tokens: ")]
    for path, body, message in cases:
        r = post(http, path, encode(body))
        assert r.status_code == 422 and r.json()["error"]["message"].startswith(message), r.text


def test_body_over_the_limit_is_413_even_chunked(http):
    big = encode({"prefix": "x" * MAX_BODY})
    assert post(http, "/infill", big).status_code == 413

    def chunks():
        for i in range(0, len(big), 4096):
            yield big[i:i + 4096]
    r = http.post("/v1/codeswift/complete", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
    assert post(http, "/infill", b"{}", ctype="application/json").status_code == 200


def test_a_big_prompt_under_the_default_limit_is_served(engine):
    from codeswift.types import CompletionRequest
    prefix = CODE * (1_500_000 // len(CODE))                     # 1.5 MB: under the 2 MiB default
    with serve(make_app(engine)) as base:
        r = httpx.post(base + "/v1/codeswift/complete", json={"prefix": prefix, "max_tokens": 4}, timeout=120)
    assert r.status_code == 200
    assert r.json()["text"] == engine.complete(CompletionRequest(prefix=prefix, max_tokens=4)).text


def still_serving(http, engine):
    from codeswift.types import CompletionRequest
    r = post(http, "/v1/codeswift/complete", encode({"prefix": CODE[:60], "max_tokens": 6}))
    assert r.status_code == 200
    assert r.json()["text"] == engine.complete(CompletionRequest(prefix=CODE[:60], max_tokens=6)).text
    record("http_fuzz", requests=sum(SENT.values()), by_status=dict(sorted(SENT.items())))
