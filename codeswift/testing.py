"""Tiny random models with a real (small, trained) BPE tokenizer, for tests and demos.

No model hub is needed: the tokenizer is trained in-process on a few KB of code, the
weights are random. Outputs are deterministic for a given seed, which is all tests need.
"""
from __future__ import annotations

import json
from pathlib import Path

FIM_TOKENS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
              "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>"]

_CORPUS = '''
def add(a, b):
    return a + b

def fibonacci(n):
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)

class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()

for i in range(10):
    print(i, i * i)

import os, sys, json
with open(path) as f:
    data = json.load(f)
function greet(name) { return "hello " + name; }
const xs = [1, 2, 3].map((x) => x * 2);
'''


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=FIM_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    return tok


def make_tiny_model(path: str | Path, arch: str = "qwen2", seed: int = 0,
                    vocab_size: int = 400, hidden: int = 64, layers: int = 2) -> Path:
    """Write a tiny random causal LM + tokenizer to `path` and return it.

    `arch`: "qwen2", "llama" or "gpt2". The folder loads with `from_pretrained(path)`.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer(vocab_size)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   pad_token="<|fim_pad|>",
                                   additional_special_tokens=FIM_TOKENS[1:])
    fast.save_pretrained(path)
    vocab = len(fast)
    common = dict(vocab_size=vocab, eos_token_id=fast.eos_token_id,
                  bos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    if arch == "gpt2":
        cfg = AutoConfig.for_model("gpt2", n_embd=hidden, n_layer=layers, n_head=4,
                                   n_positions=4096, **common)
    elif arch in ("qwen2", "llama"):
        cfg = AutoConfig.for_model(arch, hidden_size=hidden, intermediate_size=hidden * 2,
                                   num_hidden_layers=layers, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=4096,
                                   tie_word_embeddings=False, **common)
    else:
        raise ValueError(f"unknown tiny arch {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    # Random init is nearly uniform; scale the head so argmax is decisive (no near-ties)
    # and outputs are varied (repeats appear naturally, so drafts get accepted).
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(8.0)
    model.save_pretrained(path)
    (path / "codeswift-tiny.json").write_text(json.dumps({"arch": arch, "seed": seed}))
    return path


class RandomSource:
    """Adversarial draft source for lossless tests: random branches, many wrong tokens.

    Token ids are drawn from [low, vocab) (low > 0 keeps e.g. padding or EOS ids out)."""
    name = "random"

    def __init__(self, vocab: int, seed: int, low: int = 0):
        import numpy as np
        self.rng = np.random.default_rng(seed)
        self.vocab, self.low = vocab, low

    def reset(self, ctx) -> None:
        pass

    def observe(self, ctx, accepted) -> None:
        pass

    def propose(self, ctx, max_len: int, max_drafts: int):
        from .sources import Draft
        return [Draft(self.rng.integers(self.low, self.vocab, self.rng.integers(1, max_len + 1)).tolist(),
                      score=float(self.rng.random()) * 4) for _ in range(max_drafts)]
