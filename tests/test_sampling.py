"""Sampling mode stays distribution-exact with retrieved (one-hot) drafts."""
import numpy as np
import torch
from transformers import AutoModelForCausalLM

from codeswift.backends.hf import HFBackend
from codeswift.drafting import Drafter
from codeswift.loop import Sampler, generate
from codeswift.sampling import chain_probs_exact, probs_from_logits, sample_accept
from codeswift.sources import ContextSource
from codeswift.tree import build_tree


def test_first_token_distribution_is_exact_with_several_drafted_children():
    # Root with three drafted children; the model's distribution over a 6-token vocabulary.
    tree = build_tree(0, [([2], 3.0, "a", 1.0), ([4], 2.0, "a", 1.0), ([5], 1.0, "a", 1.0)], 10)
    p = np.array([0.05, 0.10, 0.40, 0.05, 0.25, 0.15])
    probs = torch.tensor(np.tile(p, (len(tree), 1)))
    exact = chain_probs_exact(tree, probs.numpy())
    assert np.allclose([exact[(x,)] for x in range(6)], p)      # the rule itself is exact
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros(6)
    n = 20000
    for _ in range(n):
        path, bonus = sample_accept(tree, probs, gen)
        first = int(tree.tokens[path[1]]) if len(path) > 1 else bonus
        counts[first] += 1
    assert np.abs(counts / n - p).max() < 0.012                  # ~3.5 sigma at n = 20000


def test_top_p_keeps_nucleus():
    probs = probs_from_logits(torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])), 1.0, top_p=0.7)
    assert torch.allclose(probs, torch.tensor([[0.625, 0.375, 0.0, 0.0]], dtype=torch.float64))


def test_sampling_loop_runs_and_is_seed_deterministic(tiny_qwen):
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    prompt = list(range(5, 25)) * 3
    eos = {model.config.eos_token_id}
    runs = [generate(HFBackend(model), prompt, 24, eos, drafter=Drafter([ContextSource()]),
                     sampler=Sampler(0.8, seed=7))[0] for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) > 0
