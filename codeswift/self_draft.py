"""The `self` draft source: SWIFT self-speculation (Xia et al. 2024, arXiv 2410.06916).

The target model drafts for itself with some decoder layers skipped (backends/hf_skip.py),
one token at a time from the end of what is being verified, until its confidence (top-1
probability) drops below a threshold or the drafter's plan is reached. The draft attends to
the real KV of the layers it runs; whatever it appends is removed before verification
(HFBackend.draft_scope), which then runs every layer over the whole tree as always, so output
stays exactly the full model's.

Only transformers models can be driven layer by layer; llama.cpp has no such API, so there
the source does not exist (`unavailable_reason`). A drafted token costs time: the fraction of
the model it runs, measured once per (model, device, dtype) and cached; the drafter weighs it
against the expected gain (drafting.Drafter._self_plan). Which layers to skip is searched
while in use (layer_search.py) and kept in the cache directory.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import torch

from .backends.hf import HFBackend
from .budget import CostCurve, cache_path, device_key
from .model_drafts import ModelDraft, ModelDraftSource
from .layer_search import LayerSearch
from .sampling import probs_from_logits
from .sources import SELF, DraftContext


@dataclass
class SelfDraftConfig:
    """How the `self` source drafts and searches; EngineConfig.self_draft."""
    threshold: float = 0.6        # confidence-aware stopping: no token after one below this
    max_len: int = 8              # tokens per draft (the drafter's plan is usually shorter)
    always: bool = False          # draft every step whatever the budget says (to measure it)
    search: bool = True           # search the skip set while in use
    seed: int = 0
    window: int = 24              # generated tokens a search trial is judged on
    first_requests: int = 8       # completions during which the search tries harder
    trials_first: int = 3         # proposals judged per window during them
    trials_later: int = 1         # and afterwards (keeps adapting)
    windows_per_request: int = 2  # bounds the search's time per completion
    # Compact KV for long contexts (HFBackend.draft_scope): beyond kv_sinks + kv_recent tokens
    # the draft attends only to the first kv_sinks and the last kv_recent (0: always all)
    kv_sinks: int = 4
    kv_recent: int = 1024


@dataclass
class SelfCost:
    """A self-drafted token's time as a fraction of one full one-token forward: a fixed part
    (embedding, final norm, head, call overhead) plus a share per decoder layer run."""
    fixed: float
    per_layer: float

    def fraction(self, kept: int) -> float:
        return self.fixed + kept * self.per_layer

    @staticmethod
    def nominal(n_layers: int) -> "SelfCost":
        """Unmeasured: the head a tenth, the rest shared evenly by the layers."""
        return SelfCost(0.1, 0.9 / n_layers)


def unavailable_reason(backend) -> str | None:
    """Why a backend cannot self-draft, or None when it can (a transformers model whose
    layers hf_skip.py can drive, with at least two of them)."""
    if not isinstance(backend, HFBackend):
        return f"the {backend.name} backend has no layer-skip API"
    why = backend.layer_skip_unavailable()
    if why is None and backend.n_layers < 2:
        why = "a single decoder layer (nothing to skip)"
    return why


class SelfSource(ModelDraftSource):
    """Layer-skipping drafts from the target model (see the module docstring)."""

    name = SELF

    def __init__(self, backend: HFBackend, curve: CostCurve, model_id: str = "",
                 config: SelfDraftConfig | None = None, measure: bool = True, persist: bool = True):
        why = unavailable_reason(backend)
        if why is not None:
            raise ValueError(f"self-drafting is unavailable: {why}")
        self.backend, self.curve, self.cfg = backend, curve, config or SelfDraftConfig()
        self.always, self.max_len = self.cfg.always, self.cfg.max_len
        n = backend.n_layers
        self.search = LayerSearch(n, seed=self.cfg.seed)
        key = (model_id, device_key(backend), backend.dtype)
        self._label = " ".join(key)
        self._skip_path = cache_path(*key, kind="skip") if persist else None
        if self._skip_path is not None:
            self.search.load(self._skip_path)
        vocab = int(backend.model.config.vocab_size)
        self.cost = load_or_measure_cost(backend, key, vocab, persist) if measure else SelfCost.nominal(n)
        self.sampler = None
        self.requests = 0
        self._windows_left = 0
        self._judged_upto = 0

    # -- lifecycle ----------------------------------------------------------------------
    def reset(self, ctx: DraftContext, sampler=None) -> None:
        self.sampler = sampler
        self.requests += 1
        self._windows_left = self.cfg.windows_per_request
        self._judged_upto = ctx.prompt_len

    def draft(self, ctx: DraftContext, prefix: list[int], max_len: int) -> ModelDraft:
        skip, be = self.search.best, self.backend
        out = ModelDraft([], [])
        window = (self.cfg.kv_sinks, self.cfg.kv_recent) if self.cfg.kv_recent > 0 else None
        with be.draft_scope(window=window) as past:
            if past != len(ctx.tokens) - 1:
                raise RuntimeError(f"KV holds {past} tokens, the sequence {len(ctx.tokens)}: "
                                   "the invariant of backends/base.py is broken")
            logits = be.skip_forward(np.asarray([ctx.tokens[-1], *prefix], np.int64), past, skip,
                                     last_only=True)[0]                      # [V]
            pos = past + 1 + len(prefix)
            for i in range(min(max_len, self.max_len)):
                tok, conf, q = self._pick(logits)
                out.tokens.append(tok)
                out.confidence.append(conf)
                if q is not None:
                    out.q.append(q)
                if conf < self.cfg.threshold or i + 1 >= min(max_len, self.max_len):
                    break
                logits = be.skip_forward(np.asarray([tok], np.int64), pos, skip, last_only=True)[0]
                pos += 1
        return out

    def _pick(self, logits: torch.Tensor) -> tuple[int, float, torch.Tensor | None]:
        """(token, top-1 probability, q): the argmax when greedy; when sampling a draw from the
        draft's own distribution q (same temperature and nucleus as the target's)."""
        if self.sampler is None:
            top = int(logits.argmax())
            conf = float(torch.exp(logits[top].float() - torch.logsumexp(logits.float(), -1)))
            return top, conf, None
        q = probs_from_logits(logits[None].float().cpu(), self.sampler.temperature, self.sampler.top_p)[0]
        tok = int(torch.multinomial(q, 1, generator=self.sampler.gen))
        return tok, float(q.max()), q

    def draft_cost(self, given: int, drafted: int) -> float:
        """One pass over the `given` tokens (root + prefix), then one per further token, each
        the kept layers' share of a full pass of that size on the cost curve."""
        frac = self.cost.fraction(self.backend.n_layers - len(self.search.best))
        return frac * (self.curve(given) + max(drafted - 1, 0) * self.curve(1))

    def expected_rate(self) -> float | None:
        return self.search.match

    # -- the layer search (update stage) --------------------------------------------------
    def observe(self, ctx: DraftContext, accepted: list[int]) -> None:
        """Judge proposals for the skip set on the tokens just generated, within this
        completion's bound, where self-drafting could pay at all on this device."""
        if (not self.cfg.search or self.sampler is not None or self._windows_left <= 0
                or not (self.always or self.worth_searching())):
            return
        seq = [int(t) for t in ctx.tokens] + [int(t) for t in accepted[:-1]]   # what the KV holds
        targets = seq + [int(accepted[-1])]                 # greedy: each the full model's argmax
        end = len(targets)                                  # targets[start:end] are judged
        start = max(self._judged_upto + 1, ctx.prompt_len, end - self.cfg.window)
        if end - start < self.cfg.window:
            return
        self._judged_upto = end - 1
        self._windows_left -= 1
        trials = self.cfg.trials_first if self.requests <= self.cfg.first_requests else self.cfg.trials_later
        best_match = self._match(self.search.best, seq, targets, start)
        scored = [(s, self._match(s, seq, targets, start)) for s in self.search.proposals(trials)]
        if self.search.judge(best_match, scored, self.value) or self.search.evals % 8 == 0:
            if self._skip_path is not None:
                self.search.save(self._skip_path, self._label)

    def _match(self, skip: frozenset[int], seq: list[int], targets: list[int], start: int) -> float:
        """Teacher-forced agreement of the skip-draft with targets[start:] (one forward)."""
        with self.backend.draft_scope(keep=start - 1) as past:
            logits = self.backend.skip_forward(np.asarray(seq[start - 1:], np.int64), past, skip)
        want = torch.as_tensor(targets[start:])
        return float((logits.argmax(-1).cpu() == want).float().mean())

    def value(self, match: float, skip: frozenset[int]) -> float:
        """Expected tokens per unit of time drafting from an empty tree with a set agreeing
        `match` (chain length at its best), relative to plain decoding (1.0). Below 1 where
        drafting does not pay: still ordered, so sets compare on any curve."""
        frac = self.cost.fraction(self.backend.n_layers - len(skip))
        c1, best, gain, reach = self.curve(1), 0.0, 1.0, 1.0
        for j in range(1, self.max_len + 1):
            reach *= match
            gain += reach
            best = max(best, gain * c1 / (self.curve(1 + j) + frac * j * c1))
        return best

    def could_pay(self, rate: float = 0.95) -> bool:
        """Whether drafting with the best set could beat plain decoding here at all, were its
        tokens accepted `rate` of the time (no: a steep cost curve)."""
        return self.value(rate, self.search.best) > 1.0

    def worth_searching(self, reach: float = 0.2) -> bool:
        """Search only where a set a little better than the best one (`reach` more agreement;
        unmeasured: 0.95) would pay: on a steep curve, or where the agreement is far too low,
        the search's forward passes would only slow completions down."""
        m = self.search.match
        return self.could_pay(0.95 if m is None else min(0.95, m + reach))


# -- the draft's cost, measured once per (model, device, dtype) ------------------------------
def measure_cost(backend: HFBackend, vocab: int, past_len: int = 64, reps: int = 5) -> SelfCost:
    """Time one-token drafts with no layer and with half the layers skipped; the minimum over
    repetitions (load only ever adds time), interleaved so a burst hits both alike."""
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, vocab, past_len).tolist()
    backend.prefill(prompt, None)
    n = backend.n_layers
    half = frozenset(range(n // 2, n))
    tok = np.asarray(prompt[-1:], np.int64)
    times: dict[frozenset, list[float]] = {frozenset(): [], half: []}
    for rep in range(reps + 1):
        for skip in times:
            with backend.draft_scope() as past:
                t0 = time.perf_counter()
                int(backend.skip_forward(tok, past, skip, last_only=True)[0].argmax())   # syncs
                if rep:                                                              # 0: warm-up
                    times[skip].append(time.perf_counter() - t0)
    backend.finish([], None)
    full, part = min(times[frozenset()]), min(times[half])
    per_layer = max(full - part, 0.0) / len(half) / full
    return SelfCost(max(1.0 - n * per_layer, 0.0), per_layer)


def load_or_measure_cost(backend: HFBackend, key: tuple[str, str, str], vocab: int,
                         persist: bool = True) -> SelfCost:
    path = cache_path(*key, kind="selfcost")
    if persist:
        try:
            d = json.loads(path.read_text())
            return SelfCost(float(d["fixed"]), float(d["per_layer"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    cost = measure_cost(backend, vocab)
    if cost.per_layer <= 0:                    # measured during a burst of load: once more
        cost = measure_cost(backend, vocab)
    if persist:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"fixed": cost.fixed, "per_layer": cost.per_layer,
                                       "for": " ".join(key)}))
            tmp.replace(path)
        except OSError:
            pass
    return cost
