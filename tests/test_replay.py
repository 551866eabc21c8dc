"""The offline replay: the real engine and drafter against a recorded greedy continuation,
timed by a cost curve. Its output must be the recorded continuation exactly."""
from transformers import AutoTokenizer

from codeswift.budget import CostCurve
from codeswift.engine import Engine, EngineConfig
from codeswift.replay import ReplayBackend
from codeswift.types import CompletionRequest

CODE = "def add(a, b):\n    return a + b\n\ndef add(a, b):\n    return a + b\n\ndef add(a, b):\n"


def test_replay_emits_the_recorded_tokens_and_times_every_step(tiny_qwen):
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    curve = CostCurve((1, 2, 4, 8), (10.0, 11.0, 12.0, 14.0))
    be = ReplayBackend({}, curve, eos=tok.eos_token_id or 0)
    eng = Engine(be, tok, EngineConfig(measure_cost=False, persist_stats=False), model_id="replay")
    eng.cost = eng.drafter.cost = curve
    req = CompletionRequest(prefix=CODE, max_tokens=12, doc_id="d")
    prompt = eng.prompts.build(req)
    truth = tok.encode("    return a + b\n\ndef sub(a, b):\n    return a - b\n")
    be.truth = {tuple(prompt): truth}
    res = eng.complete(req)
    assert res.tokens == truth[:12]
    assert len(be.steps) == res.stats["steps"] and be.sim_ms == sum(curve(n) for n in be.steps)
    assert res.stats["accepted_per_step"] > 1          # the repeated body is drafted from context
