"""The speculative decoding loop: prefill, then propose -> verify -> accept -> update.

Greedy and lossless: every emitted token is the model's own argmax given the tokens before
it, so the output equals plain greedy decoding (up to floating-point reassociation, see
docs/architecture.md, Invariants). With no drafts, a step is exactly one autoregressive step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .backends.base import Backend
from .drafting import Drafter
from .errors import BadInputError, CancelledError
from .penalty import Penalty
from .sources import DraftContext
from .tree import TokenTree, greedy_accept, kv_keep_positions

# Returns how many generated tokens to keep when a stop rule fires, else None.
StopCheck = Callable[[list[int]], "int | None"]
# Called with all tokens generated so far, after the first token and after every step (they may
# run past EOS, a stop rule or max_new: `finalize` cuts them). Returning True ends the generation.
OnStep = Callable[[list[int]], "bool | None"]


@dataclass
class LoopStats:
    prefill_ms: float = 0.0          # the prompt's KV (all but its last token, see generate)
    first_ms: float = 0.0            # until the first token: prefill + the first verify step
    decode_ms: float = 0.0
    draft_ms: float = 0.0
    verify_ms: float = 0.0
    steps: int = 0
    tree_nodes: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    accepted_draft_tokens: int = 0
    per_source: dict = field(default_factory=dict)
    step_tokens: list = field(default_factory=list)     # tokens emitted by each step, in order

    def to_json(self, generated: int) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens, "reused_prompt_tokens": self.reused_tokens,
            "generated_tokens": generated, "steps": self.steps,
            "accepted_per_step": round(generated / self.steps, 3) if self.steps else 0.0,
            "mean_tree_nodes": round(self.tree_nodes / self.steps, 2) if self.steps else 0.0,
            "prefill_ms": round(self.prefill_ms, 2), "first_token_ms": round(self.first_ms, 2),
            "decode_ms": round(self.decode_ms, 2),
            "draft_ms": round(self.draft_ms, 2), "verify_ms": round(self.verify_ms, 2),
            "time_s": round((self.prefill_ms + self.decode_ms) / 1000, 4),
            "per_source": self.per_source,
            # run-length of the per-step counts, [[tokens, steps], ...]: tokens/step over the output
            "step_tokens": _runs(self.step_tokens),
        }


def _runs(xs: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for x in xs:
        if out and out[-1][0] == x:
            out[-1][1] += 1
        else:
            out.append([x, 1])
    return out


@dataclass
class Sampler:
    """temperature > 0: sample (distribution-exact, see sampling.py) instead of argmax."""
    temperature: float
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self):
        import torch
        self.gen = torch.Generator()
        self.gen.manual_seed(self.seed if self.seed is not None else int(time.time_ns() % 2**63))


def generate(backend: Backend, prompt: list[int], max_new: int, eos: set[int],
             drafter: Drafter | None = None, stop: StopCheck | None = None,
             cache_key: str | None = None, ctx_info: dict | None = None,
             is_cancelled: Callable[[], bool] | None = None,
             sampler: Sampler | None = None, on_step: OnStep | None = None,
             penalty: Penalty | None = None,
             first_tokens: np.ndarray | None = None) -> tuple[list[int], str, LoopStats]:
    """Generation of up to `max_new` tokens after `prompt`: greedy, or sampled with `sampler`;
    with an active `penalty`, of the penalised model (see penalty.py); the first token among
    `first_tokens` when given (token healing, see PromptBuilder.cursor_line).

    Returns (generated tokens without EOS, finish reason 'eos' | 'length' | 'stop', stats).
    """
    st = LoopStats(prompt_tokens=len(prompt))
    penalty = penalty if penalty is not None and penalty.active else None
    if not prompt:
        raise BadInputError("empty prompt")
    t0 = time.perf_counter()
    # The prompt's last token is the first step's tree root: its logits give the first token and
    # drafts of the first tokens are verified with it, in one forward pass (no separate prefill
    # pass for the first token). The KV holds the rest of the prompt.
    st.reused_tokens = backend.prefill(prompt[:-1], cache_key, logits=False)[1]
    st.prefill_ms = (time.perf_counter() - t0) * 1000
    tokens = list(prompt)                         # the root is not yet in the KV
    ctx = DraftContext(tokens=tokens, prompt_len=len(prompt), **(ctx_info or {}))
    if drafter is not None:
        drafter.reset(ctx, sampler)
    t1 = time.perf_counter()
    out, reason, ended = [], None, False
    try:
        while reason is None and not ended:
            if is_cancelled is not None and is_cancelled():
                raise CancelledError("completion cancelled")
            ctx.step = st.steps
            ctx.max_depth = max_new - (len(tokens) - len(prompt)) - 1
            tree = _propose(drafter, ctx, st)
            first = first_tokens if st.steps == 0 else None     # the rule of the root's next token
            if sampler is None:
                path, bonus = greedy_accept(tree, _verify(backend, tree, st, ctx.tokens, penalty, first))
            else:
                path, bonus = _verify_sample(backend, tree, sampler, st, ctx.tokens, penalty, first)
            _update(backend, drafter, ctx, tree, path, bonus, st)
            if st.steps == 1:
                st.first_ms = (time.perf_counter() - t0) * 1000
            reason = _finished(tokens, len(prompt), max_new, eos, stop)
            ended = on_step is not None and bool(on_step(tokens[len(prompt):]))
    finally:
        st.decode_ms = (time.perf_counter() - t1) * 1000
        backend.finish(tokens, cache_key)
    out, reason = finalize(tokens[len(prompt):], max_new, eos, stop)
    if ended and reason == "length" and len(out) < max_new:
        reason = "stop"                           # the caller's rule ended it (client stop string)
    if drafter is not None:
        st.per_source = {n: {"proposed": c[0], "accepted_tokens": c[1],
                             "rate": round(drafter.rate(n), 3)} for n, c in drafter.completion.items()}
    return out, reason, st


# -- stages -----------------------------------------------------------------------------
def _propose(drafter: Drafter | None, ctx: DraftContext, st: LoopStats) -> TokenTree:
    from .tree import chain_tree
    t0 = time.perf_counter()
    tree = drafter.propose(ctx) if drafter is not None else chain_tree(ctx.tokens[-1], [])
    st.draft_ms += (time.perf_counter() - t0) * 1000
    st.tree_nodes += len(tree)
    return tree


def _verify(backend: Backend, tree: TokenTree, st: LoopStats, context: list[int],
            penalty: Penalty | None, first: np.ndarray | None = None) -> np.ndarray:
    t0 = time.perf_counter()
    if penalty is None and first is None:
        argmax = backend.verify(tree.tokens, tree.parents, tree.depth)      # [n] model's next token
    else:
        logits = backend.verify_logits(tree.tokens, tree.parents, tree.depth)
        if penalty is not None:
            logits = penalty.tree_logits(logits, context, tree.tokens, tree.parents, tree.depth)
        argmax = logits.argmax(-1).numpy()
        if first is not None:                    # the root's next token among `first` only
            allowed = _in_vocab(first, logits)
            argmax[0] = allowed[int(logits[0, allowed].argmax())]
    st.verify_ms += (time.perf_counter() - t0) * 1000
    st.steps += 1
    return argmax


def _verify_sample(backend: Backend, tree: TokenTree, sampler: Sampler, st: LoopStats,
                   context: list[int], penalty: Penalty | None,
                   first: np.ndarray | None = None) -> tuple[list[int], int]:
    from .sampling import probs_from_logits, sample_accept
    t0 = time.perf_counter()
    logits = backend.verify_logits(tree.tokens, tree.parents, tree.depth)     # [n, V]
    if penalty is not None:
        logits = penalty.tree_logits(logits, context, tree.tokens, tree.parents, tree.depth)
    logits = restrict_root(logits, first)
    st.verify_ms += (time.perf_counter() - t0) * 1000
    st.steps += 1
    return sample_accept(tree, probs_from_logits(logits, sampler.temperature, sampler.top_p), sampler.gen)


def _in_vocab(allowed: np.ndarray, logits) -> np.ndarray:
    """The ids of `allowed` the model has logits for (a tokenizer may count more tokens)."""
    return allowed[allowed < logits.shape[-1]]


def restrict_root(logits, allowed: np.ndarray | None):
    """`logits` [n, V] with the root's next token limited to `allowed` (token healing)."""
    if allowed is None:
        return logits
    import torch
    allowed = torch.as_tensor(_in_vocab(allowed, logits), dtype=torch.long)
    logits = logits.clone()
    root = torch.full_like(logits[0], float("-inf"))
    root[allowed] = logits[0, allowed]
    logits[0] = root
    return logits


def _update(backend: Backend, drafter: Drafter | None, ctx: DraftContext, tree: TokenTree,
            path: list[int], bonus: int, st: LoopStats) -> None:
    # KV now holds past + all tree nodes; keep past + the accepted path (root included).
    past = len(ctx.tokens) - 1
    backend.commit(kv_keep_positions(past, path))
    accepted = [int(tree.tokens[i]) for i in path[1:]] + [bonus]
    st.accepted_draft_tokens += len(path) - 1
    st.step_tokens.append(len(accepted))
    if drafter is not None:
        drafter.update(ctx, tree, path, accepted)
    ctx.tokens.extend(accepted)                  # the bonus is the new root


def _finished(tokens: list[int], prompt_len: int, max_new: int, eos: set[int],
              stop: StopCheck | None) -> str | None:
    out = tokens[prompt_len:]
    if len(out) >= max_new or any(t in eos for t in out) or (stop is not None and stop(out) is not None):
        return "done"
    return None


def stopped(out: list[int], max_new: int, eos: set[int], stop: StopCheck | None) -> bool:
    """Whether token-by-token greedy decoding stops after `out` (`finalize` says where it ends);
    for runners that produce one token at a time."""
    return len(out) >= max_new or bool(out and out[-1] in eos) or (stop is not None and stop(out) is not None)


def finalize(out: list[int], max_new: int, eos: set[int], stop: StopCheck | None) -> tuple[list[int], str]:
    """Cut generated tokens where token-by-token greedy decoding would have stopped.

    A step may accept tokens past EOS, a stop rule or max_new; whichever comes first wins,
    exactly as if the tokens had been produced one at a time.
    """
    out, reason = list(out[:max_new]), "length"
    e = next((i for i, t in enumerate(out) if t in eos), None)
    if e is not None:
        out, reason = out[:e], "eos"
    n = stop(out) if stop is not None else None
    if n is not None:
        out, reason = out[:n], "stop"
    return out, reason
