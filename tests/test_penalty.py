"""Contextual penalty: penalised speculative decoding == penalised plain decoding, token for token.

The reference for window 0 is transformers' own `model.generate(repetition_penalty=θ)` (the same
rule over prompt + output); for a finite window, a token-by-token loop written here with full
forward passes and no KV cache.
"""
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from codeswift.backends.hf import HFBackend
from codeswift.drafting import DraftConfig, Drafter
from codeswift.loop import generate
from codeswift.penalty import Penalty
from codeswift.sources import ContextSource
from codeswift.testing import NoisyOracle, RandomSource

THETA = 1.6


def prompts(vocab, n, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(5, vocab, rng.integers(3, 10)).tolist() * int(rng.integers(2, 5))
            + rng.integers(5, vocab, 3).tolist() for _ in range(n)]


def hf_penalised(model, prompt, max_new, theta):
    return model.generate(torch.tensor([prompt]), max_new_tokens=max_new, do_sample=False,
                          repetition_penalty=theta, eos_token_id=None, pad_token_id=0)[0, len(prompt):].tolist()


def windowed_reference(model, prompt, max_new, theta, window):
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(torch.tensor([seq])).logits[0, -1].float()
            for t in set(seq[-window:]):
                logits[t] = logits[t] * theta if logits[t] < 0 else logits[t] / theta
            seq.append(int(logits.argmax()))
    return seq[len(prompt):]


def drafter(vocab, seed, answer=()):
    return Drafter([ContextSource(), RandomSource(vocab, seed), NoisyOracle(list(answer), vocab, seed)],
                   config=DraftConfig(max_nodes=24, tree=True))


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_penalised_speculation_equals_transformers_repetition_penalty(tiny_models, arch):
    model = AutoModelForCausalLM.from_pretrained(tiny_models[arch], dtype=torch.float32)
    vocab = model.config.vocab_size
    backend, changed, accepted = HFBackend(model), 0, 0
    for i, prompt in enumerate(prompts(vocab, 6, seed=3)):
        want = hf_penalised(model, prompt, 40, THETA)
        plain, _, _ = generate(backend, prompt, 40, set(), penalty=Penalty(THETA))
        got, _, st = generate(backend, prompt, 40, set(), drafter=drafter(vocab, i, prompt + want),
                              penalty=Penalty(THETA))
        assert plain == want, f"prompt {i}: penalised plain decoding differs from transformers"
        assert got == want, f"prompt {i}: penalised speculative decoding diverged"
        changed += got != generate(backend, prompt, 40, set())[0]
        accepted += st.accepted_draft_tokens
    assert changed, "the penalty never changed an output: the test does not exercise it"
    assert accepted, "no draft was accepted: the trees were not exercised"


def test_windowed_penalty_equals_token_by_token_reference(tiny_qwen):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    vocab = model.config.vocab_size
    backend = HFBackend(model)
    for i, prompt in enumerate(prompts(vocab, 4, seed=4)):
        for window in (1, 5, 17):
            want = windowed_reference(model, prompt, 30, THETA, window)
            got, _, st = generate(backend, prompt, 30, set(), drafter=drafter(vocab, i, prompt + want),
                                  penalty=Penalty(THETA, window))
            assert got == want, f"prompt {i}, window {window}: diverged"
            assert st.accepted_draft_tokens


def test_tree_logits_penalise_each_node_with_its_own_path():
    """Node histories: context + the path to the node, nothing from sibling branches."""
    pen = Penalty(2.0)
    logits = torch.full((3, 10), 4.0)
    # tree: 0 (root, token 1) -> 1 (token 2) ; 0 -> 2 (token 3)
    out = pen.tree_logits(logits, [7, 1], np.array([1, 2, 3]), np.array([-1, 0, 0]), np.array([0, 1, 1]))
    penalised = [set(np.flatnonzero(row.numpy() == 2.0)) for row in out]
    assert penalised == [{1, 7}, {1, 2, 7}, {1, 3, 7}]
    windowed = Penalty(2.0, window=1).tree_logits(logits, [7, 1], np.array([1, 2, 3]),
                                                  np.array([-1, 0, 0]), np.array([0, 1, 1]))
    assert [set(np.flatnonzero(r.numpy() == 2.0)) for r in windowed] == [{1}, {2}, {3}]


def test_engine_penalty_lossless_and_validated(tiny_qwen):
    from transformers import AutoTokenizer
    from codeswift.engine import Engine, EngineConfig
    from codeswift.errors import BadInputError
    from codeswift.testing import SAMPLE_CODE
    from codeswift.types import CompletionRequest
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    eng = Engine.from_hf(model, AutoTokenizer.from_pretrained(tiny_qwen), EngineConfig(measure_cost=False))
    req = dict(prefix=SAMPLE_CODE[:200], suffix=SAMPLE_CODE[200:], max_tokens=48, repetition_penalty=1.3)
    spec = eng.complete(CompletionRequest(**req))
    plain = eng.complete(CompletionRequest(**req, speculative=False))
    assert spec.tokens == plain.tokens and spec.text == plain.text
    assert spec.tokens != eng.complete(CompletionRequest(**{**req, "repetition_penalty": 1.0})).tokens
    for bad in ({"repetition_penalty": 0.5}, {"repetition_penalty": "x"}, {"penalty_window": -1}):
        with pytest.raises(BadInputError):
            eng.complete(CompletionRequest(**{**req, **bad}))
