"""Speculative greedy output == plain greedy output, token for token (fp32, tiny models)."""
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from codeswift.backends.hf import HFBackend
from codeswift.drafting import DraftConfig, Drafter
from codeswift.loop import generate
from codeswift.sources import ContextSource
from codeswift.testing import RandomSource


def plain_greedy(model, prompt, max_new, eos):
    """Reference: transformers' own greedy decoding, cut at EOS."""
    out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new, do_sample=False,
                         eos_token_id=None, pad_token_id=0)[0, len(prompt):].tolist()
    for i, t in enumerate(out):
        if t in eos:
            return out[:i]
    return out


def prompts(vocab, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = rng.integers(5, vocab, rng.integers(3, 12)).tolist()
        # Long repeats make the context source's drafts correct often.
        out.append((base * rng.integers(2, 5) + rng.integers(5, vocab, 3).tolist()))
    return out


@pytest.mark.parametrize("arch", ["qwen2", "llama", "gpt2"])
def test_speculative_equals_greedy(tiny_models, arch):
    model = AutoModelForCausalLM.from_pretrained(tiny_models[arch], dtype=torch.float32)
    vocab = model.config.vocab_size
    eos = {model.config.eos_token_id}
    backend = HFBackend(model)
    accepted_total = steps_total = 0
    for i, prompt in enumerate(prompts(vocab, 12, seed=1)):
        want = plain_greedy(model, prompt, 40, eos)
        sources = [ContextSource(), RandomSource(vocab, i)]
        drafter = Drafter(sources, config=DraftConfig(max_nodes=24, tree=True))
        got, reason, st = generate(backend, prompt, 40, eos, drafter=drafter)
        assert got == want, f"prompt {i}: speculative output diverged"
        accepted_total += st.accepted_draft_tokens
        steps_total += st.steps
    assert accepted_total > 0, "drafts were never accepted: the test did not exercise trees"


def test_no_drafter_is_plain_ar(tiny_qwen):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    eos = {model.config.eos_token_id}
    for prompt in prompts(model.config.vocab_size, 4, seed=2):
        got, reason, st = generate(HFBackend(model), prompt, 20, eos)
        assert got == plain_greedy(model, prompt, 20, eos)
        # The first step (the prompt's last token as root) yields the first token, each step one.
        assert st.steps == (len(got) if reason == "length" else len(got) + 1)


def test_max_tokens_and_eos_honoured(tiny_qwen):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    backend = HFBackend(model)
    prompt = prompts(model.config.vocab_size, 1, seed=3)[0]
    ref = plain_greedy(model, prompt, 30, set())
    drafter = Drafter([ContextSource()])
    got, reason, _ = generate(backend, prompt, 7, set(), drafter=drafter)
    assert got == ref[:7] and reason == "length"
    # Declare the 5th greedy token an EOS: output must stop right before it, even though a
    # whole accepted draft may extend past it.
    fake_eos = {ref[4]}
    first = ref.index(ref[4])
    got, reason, _ = generate(backend, prompt, 30, fake_eos, drafter=Drafter([ContextSource()]))
    assert got == ref[:first] and reason == "eos"


def test_stop_rule_cuts_like_ar(tiny_qwen):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    prompt = prompts(model.config.vocab_size, 1, seed=4)[0]
    ref = plain_greedy(model, prompt, 30, set())
    stop_at = ref[6]
    stop = lambda out: (out.index(stop_at) + 1) if stop_at in out else None
    got, reason, _ = generate(HFBackend(model), prompt, 30, set(), drafter=Drafter([ContextSource()]), stop=stop)
    assert got == ref[:ref.index(stop_at) + 1] and reason == "stop"


def test_one_token_prompt_starts_from_an_empty_kv(tiny_qwen):
    """The prompt's last token is the first tree root: a one-token prompt fills no KV at all."""
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    eos = {model.config.eos_token_id}
    for tok in (7, 42):
        got, _, st = generate(HFBackend(model), [tok], 12, eos, drafter=Drafter([ContextSource()]))
        assert got == plain_greedy(model, [tok], 12, eos) and st.reused_tokens == 0
