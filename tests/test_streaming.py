"""Token streaming: the deltas concatenate to exactly the final text, arrive while decoding goes
on, and nothing sent is ever taken back (tiny fp32 models, a real trained BPE tokenizer)."""
import time

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from codeswift.ending import PostRules, apply_rules
from codeswift.engine import Engine, EngineConfig
from codeswift.streaming import Detok, RuleStream
from codeswift.testing import SAMPLE_CODE
from codeswift.types import CompletionRequest, CompletionResult


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def engine(request, tiny_models):
    path = tiny_models[request.param]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return Engine.from_hf(model, AutoTokenizer.from_pretrained(path), EngineConfig(measure_cost=False))


def streamed(engine, req):
    pieces, times = [], []

    def on_text(d):
        pieces.append(d)
        times.append(time.perf_counter())
    req.on_text = on_text
    t0 = time.perf_counter()
    res = engine.complete(req)
    return res, pieces, [t - t0 for t in times], time.perf_counter() - t0


def cursors(n, seed):
    rng = np.random.default_rng(seed)
    code = SAMPLE_CODE + "\n"
    for _ in range(n):
        at = int(rng.integers(1, len(code)))
        # End some prefixes in typed whitespace (the final text drops what is already typed).
        pre = code[:at] + (" " * int(rng.integers(0, 5)) if rng.random() < 0.4 else "")
        yield pre, code[at:]


@pytest.mark.parametrize("stop", ["none", "line", "block"])
def test_deltas_concatenate_to_the_final_text(engine, stop):
    for i, (pre, suf) in enumerate(cursors(8, seed=hash(stop) % 100)):
        for spec in (True, False):
            req = CompletionRequest(prefix=pre, suffix=suf, max_tokens=int(10 + 9 * i), stop=stop, speculative=spec)
            res, pieces, _, _ = streamed(engine, req)
            assert "".join(pieces) == res.text, f"cursor {i}: streamed text differs from the final text"
            assert all(pieces), "empty deltas are not sent"
            plain = engine.complete(CompletionRequest(prefix=pre, suffix=suf, max_tokens=req.max_tokens, stop=stop))
            assert plain.text == res.text and plain.tokens == res.tokens, "streaming changed the output"


def test_text_arrives_while_decoding(engine):
    runs = [streamed(engine, CompletionRequest(prefix=p, suffix=s, max_tokens=80, speculative=False))
            for p, s in cursors(6, seed=5)]
    res, pieces, times, end = max(runs, key=lambda r: len(r[0].tokens))
    assert len(res.tokens) >= 30 and len(pieces) > 10, "the text came in one piece, not as tokens were accepted"
    assert times[0] < end / 4, "the first piece came only near the end"


def test_on_text_returning_true_ends_the_generation(engine):
    fulls = [engine.complete(CompletionRequest(prefix=p, suffix=s, max_tokens=80)) for p, s in cursors(6, seed=7)]
    (pre, suf), full = max(zip(cursors(6, seed=7), fulls), key=lambda x: len(x[1].text))
    assert len(full.text) > 20
    req = CompletionRequest(prefix=pre, suffix=suf, max_tokens=80)
    seen = []

    def enough(d):
        seen.append(d)
        return sum(map(len, seen)) >= 10
    req.on_text = enough
    res = engine.complete(req)
    assert res.finish_reason == "stop" and len(res.tokens) < 80
    assert full.text.startswith(res.text) and "".join(seen) == res.text


def test_incremental_detokenisation_equals_full_decoding(tiny_qwen):
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    text = "def naïve(x):  # ünïcödé, 中文, emoji 🙂🙂 and tabs\t\n    return x ** 2 ≥ 0\n" * 6
    ids = tok.encode(text, add_special_tokens=False)
    rng = np.random.default_rng(0)
    for _ in range(20):
        d, n = Detok(lambda t: tok.decode(t, skip_special_tokens=True)), 0
        while n < len(ids):
            n = min(len(ids), n + int(rng.integers(1, 6)))
            assert d(ids[:n]) == tok.decode(ids[:n], skip_special_tokens=True)


def rule_stream(text, rules, cuts):
    out = []
    rs = RuleStream(rules, out.append)
    last = 0
    for c in list(cuts) + [len(text)]:
        if rs.push(text[last:c]):
            break
        last = c
    rs.flush()
    return "".join(out), rs


@pytest.mark.parametrize("seed", range(30))
def test_rule_stream_cuts_like_the_rules_on_the_whole_text(seed):
    rng = np.random.default_rng(seed)
    alphabet = list("ab \n\t") + ["END", "\n\n"]
    text = "".join(rng.choice(alphabet, 60))
    rules = PostRules(stop_strings=[str(rng.choice(["END", "\n\n", "ba", "b\n"]))], n_indent=int(rng.integers(0, 3)))
    cuts = sorted(rng.integers(0, len(text), 8).tolist())
    got, rs = rule_stream(text, rules, cuts)
    want = apply_rules(CompletionResult(text=text, tokens=[], finish_reason="length"), rules)
    assert got == want.text
    assert (rs.reason or "length") == want.reason


def test_rule_stream_holds_back_a_partial_stop_string():
    out = []
    rs = RuleStream(PostRules(stop_strings=["<|end|>"]), out.append)
    assert not rs.push("x = 1<|e")
    assert "".join(out) == "x = 1"
    assert rs.push("nd|> more") and "".join(out) == "x = 1" and rs.word == "<|end|>"
