"""Engine end to end on tiny models: FIM prompt, speculation == plain greedy, KV reuse."""
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codeswift.engine import Engine, EngineConfig
from codeswift.errors import BadInputError, CancelledError
from codeswift.testing import SAMPLE_CODE
from codeswift.types import CompletionRequest

CODE = SAMPLE_CODE + "\n"


@pytest.fixture(scope="module")
def engine(tiny_qwen):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    return Engine.from_hf(model, tok, EngineConfig(measure_cost=False))


def reference(engine, req):
    """Plain greedy via model.generate on the same prompt, cut like the engine cuts."""
    from codeswift.loop import finalize
    from codeswift.ending import make_stop
    prompt = engine.prompts.build(req)
    line, healed = engine.prompts.cursor_line(req.prefix)
    first = engine.prompts.first_tokens(healed)          # token healing: the first token's rule
    everything = list(range(engine.backend.model.config.vocab_size))
    allowed = (lambda _b, ids: first.tolist() if len(ids) == len(prompt) else everything) \
        if first is not None else None
    out = engine.backend.model.generate(torch.tensor([prompt]), max_new_tokens=req.max_tokens,
                                do_sample=False, eos_token_id=None, pad_token_id=0,
                                prefix_allowed_tokens_fn=allowed)[0, len(prompt):].tolist()
    stop = make_stop(engine.tokenizer, req.stop, line)
    return finalize(out, req.max_tokens, engine.prompts.stop_ids, stop)[0]


def test_fim_prompt_uses_qwen_tokens(engine):
    assert engine.prompts.family.name == "qwen2.5-coder"
    p = engine.prompts.build(CompletionRequest(prefix="x = 1\n", suffix="y = 2\n"))
    tok = engine.tokenizer
    assert p[0] == tok.convert_tokens_to_ids("<|fim_prefix|>")
    assert p[-1] == tok.convert_tokens_to_ids("<|fim_middle|>")
    assert tok.convert_tokens_to_ids("<|fim_suffix|>") in p


def test_trailing_whitespace_is_written_by_the_model(engine, tiny_qwen):
    """Whitespace healing: indentation typed at the cursor is not in the prompt (a lone run of
    spaces is an unusual last token); the completion text leaves out what is already typed."""
    from codeswift.prompt import drop_typed
    p = engine.prompts
    assert p.cursor_line("def f():\n    x = ") == ("    x =", " ")
    assert p.cursor_line("def f():\n\t\t") == ("", "\t\t")
    assert p.build(CompletionRequest(prefix="x = 1\n    ")) == p.build(CompletionRequest(prefix="x = 1\n"))
    assert drop_typed("        return x", "    ") == "    return x"
    assert drop_typed("  y", "    ") == "y" and drop_typed("z", "") == "z"
    req = CompletionRequest(prefix="def f(a):\n    ", suffix="\n", max_tokens=12, stop="line")
    got = engine.complete(req)
    full = engine.tokenizer.decode(got.tokens, skip_special_tokens=True).split("\n")[0]
    assert got.text == drop_typed(full, "    ")
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    raw = Engine.from_hf(model, engine.tokenizer, EngineConfig(measure_cost=False, heal_whitespace=False))
    assert raw.prompts.build(req) != p.build(req) and raw.prompts.cursor_line(req.prefix) == ("    ", "")


def test_partial_word_is_healed(engine, tiny_qwen):
    """Token healing: the last token of a word at the cursor is left out of the prompt and the
    first generated token starts with its text; the completion text goes on from the cursor."""
    from codeswift.prompt import drop_typed
    p, tok = engine.prompts, engine.tokenizer
    last = tok.decode(tok.encode("    if pr", add_special_tokens=False)[-1:])   # the word's last token
    assert p.cursor_line("def f(prefix):\n    if pr") == ("    if pr"[:-len(last)], last)
    assert p.cursor_line("x = foo(") == ("x = foo(", "")            # not a word: nothing to heal
    assert p.cursor_line("x = 1  ") == ("x = 1", "  ")               # whitespace healing as before
    assert p.cursor_line("def f(x):\n    return") == ("   ", " return")   # its tokens: "   ", " return"
    assert p.first_tokens("  ") is None and p.first_tokens("") is None
    first = p.first_tokens(" r")
    texts = tok.batch_decode([[int(i)] for i in first])
    assert all(t.startswith(" r") for t in texts) and " r" in texts and " return" in texts
    assert len(first) == sum(tok.decode([i]).startswith(" r") for i in range(len(tok))
                             if i not in tok.all_special_ids)
    for prefix in ("def f(prefix):\n    if pr", "import o", "class Abc:\n    def __ini", "x = 12"):
        req = CompletionRequest(prefix=prefix, suffix="\n", max_tokens=12, stop="line", doc_id="heal")
        got = engine.complete(req)
        healed = p.cursor_line(prefix)[1]
        full = tok.decode(got.tokens, skip_special_tokens=True)
        assert full.startswith(healed) and got.text == drop_typed(full.split("\n")[0], healed)
        assert got.tokens == reference(engine, req)
        plain = engine.complete(CompletionRequest(**{**req.__dict__, "speculative": False}))
        assert plain.tokens == got.tokens and plain.text == got.text
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    off = Engine.from_hf(model, tok, EngineConfig(measure_cost=False, heal_word=False))
    assert off.prompts.cursor_line("    if pr") == ("    if pr", "")


@pytest.mark.parametrize("stop", ["none", "line", "block"])
def test_complete_equals_plain_greedy(engine, stop):
    rng = np.random.default_rng(0)
    for i in range(6):
        cut = int(rng.integers(10, len(CODE)))
        req = CompletionRequest(prefix=CODE[:cut], suffix=CODE[cut:], max_tokens=32, stop=stop,
                                doc_id=f"doc{i}")
        got = engine.complete(req)
        assert got.tokens == reference(engine, req)
        plain = engine.complete(CompletionRequest(**{**req.__dict__, "speculative": False}))
        assert plain.tokens == got.tokens and plain.text == got.text


def test_kv_reuse_matches_cold_prefill_after_edits(engine):
    """Append, delete and edit before the cursor: reused-KV output == cold output."""
    doc = "kvdoc"
    edits = [CODE[:200], CODE[:205], CODE[:198], CODE[:50] + "z" + CODE[51:198], CODE[:198] + "\n    "]
    for prefix in edits:
        req = CompletionRequest(prefix=prefix, suffix="", max_tokens=24, doc_id=doc)
        warm = engine.complete(req)
        engine.backend.store.clear()
        cold = engine.complete(CompletionRequest(**{**req.__dict__, "doc_id": "cold"}))
        assert warm.tokens == cold.tokens
        engine.complete(req)                    # re-seed the store for the next edit
    again = engine.complete(CompletionRequest(prefix=edits[-1], suffix="", max_tokens=24, doc_id=doc))
    assert again.stats["reused_prompt_tokens"] > 0.9 * again.stats["prompt_tokens"]


def test_kv_store_memory_bound(tiny_qwen):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    eng = Engine.from_hf(model, tok, EngineConfig(measure_cost=False, kv_cache_mb=1))
    for i in range(30):
        eng.complete(CompletionRequest(prefix=CODE * 2 + f"# {i}\n", max_tokens=4, doc_id=f"d{i}"))
        assert eng.backend.store.nbytes <= 1 << 20
    assert 0 < len(eng.backend.store) < 30


def test_bad_input_raises_typed_errors(engine):
    with pytest.raises(BadInputError):
        engine.complete(CompletionRequest(prefix="x", max_tokens=0))
    with pytest.raises(BadInputError):
        engine.complete(CompletionRequest(prefix="x", stop="paragraph"))


def test_cancel_stops_generation(engine):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(CancelledError):
        engine.complete(CompletionRequest(prefix=CODE, max_tokens=40, is_cancelled=cancelled,
                                          speculative=False))      # one token a step
    assert len(calls) == 3                      # polled once per step, stopped at the first True
    # The engine is still usable afterwards and still exact.
    req = CompletionRequest(prefix=CODE, max_tokens=16, doc_id="after-cancel")
    assert engine.complete(req).tokens == reference(engine, req)


def test_warm_up_prefill_is_reused_and_exact(engine):
    req = CompletionRequest(prefix=CODE, suffix="x = 1\n", max_tokens=16, doc_id="warm-doc")
    engine.backend.store.clear()
    cached = engine.warm(req)
    assert cached == len(engine.prompts.build(req)) - 1
    res = engine.complete(req)
    assert res.stats["reused_prompt_tokens"] == cached
    assert res.tokens == reference(engine, req)


def test_warm_up_cancelled_keeps_partial_prefix(engine):
    req = CompletionRequest(prefix=CODE * 3, max_tokens=8, doc_id="warm-cancel")
    engine.backend.store.clear()
    polls = []
    req.is_cancelled = lambda: (polls.append(1) or len(polls) > 1)
    cached = engine.warm(req)
    assert 0 < cached < len(engine.prompts.build(req)) - 1      # stopped after one chunk
    req.is_cancelled = None
    res = engine.complete(req)
    assert res.stats["reused_prompt_tokens"] == cached and res.tokens == reference(engine, req)


def test_warm_chunk_follows_the_cost_curve(engine, monkeypatch):
    from codeswift.budget import CostCurve
    assert engine.warm_chunk() == 128                          # nothing measured: a fixed chunk
    monkeypatch.setattr(engine.cfg, "measure_cost", True)
    monkeypatch.setattr(engine, "cost", CostCurve((1, 64), (10.0, 640.0)))      # 10 ms/token (CPU)
    assert engine.warm_chunk() == 16
    monkeypatch.setattr(engine, "cost", CostCurve((1, 64), (5.0, 6.4)))         # 0.1 ms/token (GPU)
    assert engine.warm_chunk() == 512


def test_learned_acceptance_survives_a_restart(tiny_qwen, tmp_path, monkeypatch):
    """Per-kind acceptance (no content) is saved under CODESWIFT_CACHE and loaded by the next
    engine for the same model and device, so a new editor session starts calibrated."""
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path))
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    first = Engine.from_hf(model, tok, EngineConfig(), model_id="tiny")
    for i in range(3):
        first.complete(CompletionRequest(prefix=CODE[:60 + 40 * i], max_tokens=16, doc_id=f"d{i}"))
    learned = first.drafter.export_stats()
    assert learned
    first.save_stats()
    again = Engine.from_hf(model, tok, EngineConfig(), model_id="tiny")
    assert again.drafter.export_stats() == learned
    other = Engine.from_hf(model, tok, EngineConfig(persist_stats=False), model_id="tiny")
    assert other.drafter.export_stats() == []
    (tmp_path / "acceptance").joinpath(first._stats_path.name).write_text("not json")
    assert Engine.from_hf(model, tok, EngineConfig(), model_id="tiny").drafter.export_stats() == []


def test_warm_pacer_sizes_passes_by_their_measured_time():
    from codeswift.backends.base import WarmPacer
    p = WarmPacer(16, target_ms=300)
    p.took(16, 0.100)                      # under half the target: double
    assert p.size == 32
    p.took(10, 0.001)                      # a partial (last) pass says nothing
    assert p.size == 32
    p.took(32, 0.200)                      # within the band: keep
    assert p.size == 32
    p.took(32, 0.700)                      # over twice the target: halve
    assert p.size == 16
    p.took(16, 2.0)                        # never below lo
    assert p.size == 16
    big = WarmPacer(512, target_ms=300)
    big.took(512, 0.001)
    assert big.size == 512                 # never above hi
    fixed = WarmPacer.of(64)
    fixed.took(64, 0.0)
    assert fixed.size == 64 and WarmPacer.of(big) is big


def test_paced_warm_up_grows_its_passes_and_stays_exact(engine):
    from codeswift.backends.base import WarmPacer
    req = CompletionRequest(prefix=CODE * 6, max_tokens=16, doc_id="warm-paced")
    engine.backend.store.clear()
    pacer = WarmPacer(16, target_ms=1e6)   # every pass is "fast": sizes double up to 512
    prompt = engine.prompts.build(req)[:-1]
    cached = engine.backend.warm(prompt, "warm-paced", None, chunk=pacer)
    assert cached == len(prompt) and pacer.size > 16
    res = engine.complete(req)
    assert res.stats["reused_prompt_tokens"] == cached and res.tokens == reference(engine, req)
