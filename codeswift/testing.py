"""Tiny random models with a real (small, trained) BPE tokenizer, for tests and demos.

No model hub is needed: the tokenizer is trained in-process on a few KB of code, the
weights are random. Outputs are deterministic for a given seed, which is all tests need.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

FIM_TOKENS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
              "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>"]

SAMPLE_CODE = '''def add(a, b):
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
'''
"""A small Python module: the tests' and demos' document (also in the tokenizer's corpus)."""

_CORPUS = '\n' + SAMPLE_CODE + '''
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
    cheap = True

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


class NoisyOracle:
    """Draft source for lossless tests where repeats are rare (a penalty, long outputs): the
    known answer after the current tokens, one token in `1/error` corrupted, so trees hold both
    accepted and rejected branches. `answer` is the prompt + the reference output."""
    name = "oracle"
    cheap = True

    def __init__(self, answer: list[int], vocab: int, seed: int, error: float = 0.15):
        import numpy as np
        self.answer, self.vocab, self.error = list(answer), vocab, error
        self.rng = np.random.default_rng(seed)

    def reset(self, ctx) -> None:
        pass

    def observe(self, ctx, accepted) -> None:
        pass

    def propose(self, ctx, max_len: int, max_drafts: int):
        from .sources import Draft
        n = len(ctx.tokens)
        if list(ctx.tokens) != self.answer[:n]:
            return []
        cont = self.answer[n:n + max_len]
        out = []
        for _ in range(min(2, max_drafts)):
            d = list(cont)
            for i in range(len(d)):
                if self.rng.random() < self.error:
                    d[i] = int(self.rng.integers(0, self.vocab))
            if d:
                out.append(Draft(d, score=3.0))
        return out


# -- tiny GGUF (llama.cpp) ----------------------------------------------------------------
def _byte_tokens() -> list[str]:
    """GPT-2 byte-to-unicode alphabet: a valid byte-level BPE vocabulary without merges."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def write_tiny_gguf(path: Path, arch: str = "llama", seed: int = 0, hidden: int = 64,
                    layers: int = 2, heads: int = 4, kv_heads: int = 2) -> Path:
    """A random fp32 GGUF that llama.cpp loads: 257 tokens (256 bytes + EOS at id 0)."""
    import gguf
    import numpy as np
    rng = np.random.default_rng(seed)
    tokens = ["<|endoftext|>"] + _byte_tokens()
    vocab, ff, hd = len(tokens), hidden * 2, hidden // heads
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(hd)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(0)                                   # all f32
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3] + [1] * (vocab - 1))           # control, then normal
    w.add_token_merges(["Ġ Ġ"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(0)

    def t(name, *shape, scale=0.15):
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    t("token_embd.weight", vocab, hidden, scale=1.0)
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        t(f"blk.{i}.attn_q.weight", hidden, hidden)
        t(f"blk.{i}.attn_k.weight", kv_heads * hd, hidden)
        t(f"blk.{i}.attn_v.weight", kv_heads * hd, hidden)
        t(f"blk.{i}.attn_output.weight", hidden, hidden)
        t(f"blk.{i}.ffn_gate.weight", ff, hidden)
        t(f"blk.{i}.ffn_up.weight", ff, hidden)
        t(f"blk.{i}.ffn_down.weight", hidden, ff)
        if arch == "qwen2":
            t(f"blk.{i}.attn_q.bias", hidden)
            t(f"blk.{i}.attn_k.bias", kv_heads * hd)
            t(f"blk.{i}.attn_v.bias", kv_heads * hd)
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    t("output.weight", vocab, hidden, scale=1.0)         # large head: decisive argmax, no near-ties
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@contextmanager
def serve_app(app, start_timeout_s: float = 20.0):
    """Run an ASGI `app` with uvicorn on a free loopback port in a thread; yield its base URL.

    Real HTTP on loopback, for tests of the service and of its clients (the LSP's serverUrl)."""
    import socket
    import threading
    import time

    import uvicorn
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
