"""Real llama-server peers: greedy tokens equal the llama.cpp binding's, each ngram speculative
mode equals plain decoding, stop rules cut like `loop.finalize`, cold requests really start
cold, and a bad request fails clearly without taking the server down.

Needs a llama-server binary (`codeswift setup llamacpp --server`, or CODESWIFT_LLAMA_SERVER);
the model is a tiny random fp32 GGUF written here. Method parsing runs without a binary.
"""
from pathlib import Path

import numpy as np
import pytest

from codeswift.bench.methods import is_llamacpp, parse_methods, reference
from codeswift.bench.server import SERVER_METHODS, require_server
from codeswift.errors import BadInputError
from codeswift.llama_server import SPEC_TYPES, LlamaServer, ServerError, find_server, server_build_dir
from codeswift.native import cmake_args, cpu_info
from codeswift.loop import finalize

EOS = 0
BUILD = "codeswift setup llamacpp --server (or python -m codeswift.llama_server)"
HOME_CACHE = Path.home() / ".cache" / "codeswift"            # conftest points CODESWIFT_CACHE elsewhere


def _server_binary() -> Path | None:
    """$CODESWIFT_LLAMA_SERVER, the test cache's build, or the user cache's build for this CPU."""
    found = find_server()
    if found is not None:
        return found
    home = HOME_CACHE / "llama.cpp" / server_build_dir(cmake_args(cpu_info())).name / "bin" / "llama-server"
    return home if home.is_file() else None


BINARY = _server_binary()
needs_server = pytest.mark.skipif(BINARY is None, reason=f"no llama-server binary; build it with {BUILD}")


# -- without a binary ------------------------------------------------------------------------
def test_server_methods_join_the_llamacpp_family():
    for m in SERVER_METHODS:
        assert is_llamacpp(m) and reference(m) == "llamacpp-ar" and reference(m, "pld") == "llamacpp-pld"
    assert parse_methods("llama-server,llama-server-ngram-mod") == ["llamacpp-ar", "llama-server",
                                                                   "llama-server-ngram-mod"]
    assert parse_methods("ar,llama-server-ngram-simple") == ["llamacpp-ar", "ar", "llama-server-ngram-simple"]
    with pytest.raises(BadInputError):
        parse_methods("llama-server-ngram-cache")
    assert require_server(["llamacpp-ar", "codeswift-llamacpp"]) is None


def test_missing_binary_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setenv("CODESWIFT_LLAMA_SERVER", str(tmp_path / "nope"))
    assert find_server() is None
    with pytest.raises(BadInputError, match="codeswift setup llamacpp --server"):
        require_server(["llamacpp-ar", "llama-server"])
    with pytest.raises(ServerError, match="codeswift setup llamacpp --server"):
        LlamaServer(tmp_path / "x.gguf")


# -- with a real server ----------------------------------------------------------------------
def _ascii_tokens() -> list[str]:
    """256 printable-ASCII tokens: every token is whole UTF-8, so llama-server streams every id."""
    chars = [chr(c) for c in range(ord("!"), ord("~") + 1)]
    return (chars + [a + b for a in chars for b in chars])[:256]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    """The tiny random qwen2 GGUF of codeswift.testing, with an ASCII vocabulary."""
    pytest.importorskip("gguf")
    import codeswift.testing as testing
    mp = pytest.MonkeyPatch()
    mp.setattr(testing, "_byte_tokens", _ascii_tokens)
    try:
        return testing.write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-ascii.gguf", "qwen2")
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def byte_gguf(tmp_path_factory):
    """The byte-level vocabulary: random output is full of split UTF-8 sequences."""
    pytest.importorskip("gguf")
    from codeswift.testing import write_tiny_gguf
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-bytes.gguf", "qwen2")


@pytest.fixture(scope="module")
def binding():
    pytest.importorskip("llama_cpp")
    from codeswift.backends.llamacpp import LlamaCppBackend
    return lambda path: LlamaCppBackend(path, n_ctx=4096, n_threads=2)


@pytest.fixture(scope="module")
def plain(tiny_gguf):
    if BINARY is None:
        pytest.skip(f"no llama-server binary; build it with {BUILD}")
    with LlamaServer(tiny_gguf, threads=2, binary=BINARY) as s:
        yield s


def prompts(n, seed, vocab=257):
    """Random prompts with long repeats, so n-gram lookups find drafts."""
    rng = np.random.default_rng(seed)
    return [rng.integers(1, vocab, rng.integers(4, 14)).tolist() * int(rng.integers(3, 6))
            + rng.integers(1, vocab, 3).tolist() for _ in range(n)]


@needs_server
def test_plain_server_equals_binding_greedy(tiny_gguf, plain, binding):
    from codeswift.bench.llamacpp import run_llamacpp_ar
    backend = binding(tiny_gguf)
    for cache in (False, True):
        for prompt in prompts(5, seed=1):
            want = run_llamacpp_ar(backend, prompt, 40, {EOS})["tokens"]
            got = plain.complete(prompt, 40, {EOS}, cache_prompt=cache)
            assert got["tokens"] == want and not got["stream_gap"]
            assert got["server_predicted_n"] == len(want) and got["server_stop_type"] in ("limit", "eos")


@needs_server
def test_unstreamed_split_utf8_tokens_are_recovered(byte_gguf, binding):
    """llama-server never streams the id of a token that ends inside a UTF-8 sequence; the
    client notices from the count and fetches the exact ids."""
    from codeswift.bench.llamacpp import run_llamacpp_ar
    backend = binding(byte_gguf)
    gaps = 0
    with LlamaServer(byte_gguf, threads=2, binary=BINARY) as s:
        for prompt in prompts(3, seed=1):
            got = s.complete(prompt, 40, {EOS}, cache_prompt=False)
            assert got["tokens"] == run_llamacpp_ar(backend, prompt, 40, {EOS})["tokens"]
            gaps += got["stream_gap"]
    assert gaps > 0


@needs_server
@pytest.mark.parametrize("spec_type", SPEC_TYPES)
def test_ngram_spec_types_equal_plain(tiny_gguf, plain, spec_type):
    """Short n-gram keys (2) so the random model's output draws drafts, some rejected."""
    drafted = accepted = 0
    with LlamaServer(tiny_gguf, threads=2, spec_type=spec_type, draft=6, lookup=2, binary=BINARY) as spec:
        assert spec.command().count("--spec-type") == 1
        for prompt in prompts(6, seed=2):
            want = plain.complete(prompt, 48, {EOS}, cache_prompt=False)
            got = spec.complete(prompt, 48, {EOS}, cache_prompt=False)
            assert got["tokens"] == want["tokens"]
            assert 0 <= got["draft_n_accepted"] <= got["draft_n"]
            drafted, accepted = drafted + got["draft_n"], accepted + got["draft_n_accepted"]
    assert drafted > accepted > 0


@needs_server
def test_stop_rule_cuts_like_finalize(plain):
    prompt = prompts(1, seed=3)[0]
    full = plain.complete(prompt, 30, {EOS}, cache_prompt=False)["tokens"]
    assert len(full) >= 8
    stop = lambda out: 5 if len(out) >= 7 else None          # noqa: E731 - fires 2 tokens late, cuts at 5
    got = plain.complete(prompt, 30, {EOS}, stop, cache_prompt=False)
    assert got["tokens"] == finalize(full, 30, {EOS}, stop)[0] == full[:5]
    assert got["server_stop_type"] == "client" and got["server_predicted_n"] >= 5    # closed early
    # EOS as a client-side stop id: cut right before it, like finalize
    eos = {full[3]}
    assert plain.complete(prompt, 30, eos, cache_prompt=False)["tokens"] == finalize(full, 30, eos, None)[0]
    # after an early cut the server still serves the whole completion
    assert plain.complete(prompt, 30, {EOS}, cache_prompt=False)["tokens"] == full


@needs_server
def test_cold_requests_recompute_the_whole_prompt(plain):
    prompt = prompts(1, seed=4)[0]
    plain.complete(prompt, 8, {EOS}, cache_prompt=True)
    warm = plain.complete(prompt + [7, 8], 8, {EOS}, cache_prompt=True)
    assert warm["server_cache_n"] > 0 and warm["server_prompt_n"] < len(prompt) + 2
    plain.reset()                                             # erased: nothing to reuse
    assert plain.complete(prompt, 8, {EOS}, cache_prompt=True)["server_cache_n"] == 0
    for _ in range(2):
        cold = plain.complete(prompt + [7, 8], 8, {EOS}, cache_prompt=False)
        assert cold["server_prompt_n"] == len(prompt) + 2 and cold["server_cache_n"] == 0
        assert cold["tokens"] == warm["tokens"]


@needs_server
def test_bad_requests_fail_clearly_and_the_server_keeps_serving(plain):
    prompt = prompts(1, seed=5)[0]
    want = plain.complete(prompt, 10, {EOS}, cache_prompt=False)["tokens"]
    with pytest.raises(ServerError, match="context"):
        plain.complete([5] * 5000, 4, {EOS}, cache_prompt=False)          # longer than n_ctx 4096
    with pytest.raises(ServerError):
        plain.complete([1, 2, 100000], 4, {EOS}, cache_prompt=False)      # not a token id
    assert plain.complete(prompt, 10, {EOS}, cache_prompt=False)["tokens"] == want


@needs_server
def test_infill_without_fim_tokens_is_a_clear_error(plain):
    with pytest.raises(ServerError, match="Infill is not supported"):
        plain.infill("def add(a, b):\n    return ", "\n", max_new=4)
    assert plain.complete([1, 2, 3], 2, {EOS}, cache_prompt=False)["tokens"]


QWEN = HOME_CACHE / "gguf" / "qwen2.5-coder-0.5b.gguf"


@needs_server
@pytest.mark.skipif(not QWEN.is_file(), reason=f"{QWEN} missing: codeswift models pull qwen2.5-coder-0.5b")
def test_infill_like_llama_vscode_on_qwen():
    """/infill as llama.vscode sends it (prefix, suffix, input_extra chunks) on the real FIM model."""
    extra = [{"filename": "util.py", "text": "def sub(a, b):\n    return a - b\n"}]
    with LlamaServer(QWEN, threads=2, binary=BINARY) as s:
        r = s.infill("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n", extra, max_new=8)
    assert "a + b" in r["text"] and r["timings"]["predicted_n"] >= 1 and r["wall_ms"] > 0
