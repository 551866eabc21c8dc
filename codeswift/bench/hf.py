"""Plain transformers baselines for `codeswift bench` (methods ar, pld): `model.generate`
greedy, and transformers' prompt lookup, on the model the codeswift engines verify with.

Both return {"tokens", "prefill_ms", "decode_ms", "steps", "per_source"} with tokens cut by
`loop.finalize`, the rule codeswift's own loop uses, so outputs compare token for token.
"""
from __future__ import annotations

import time

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from ..loop import StopCheck, finalize


class _FirstCall(LogitsProcessor):
    """Records when the first logits arrive (= prefill done) and counts verification calls."""

    def __init__(self):
        self.first: float | None = None

    def __call__(self, input_ids, scores):
        if self.first is None:
            self.first = time.perf_counter()
        return scores


class _Stop(StoppingCriteria):
    def __init__(self, check, prompt_len):
        self.check, self.prompt_len = check, prompt_len

    def __call__(self, input_ids, scores, **kw):
        done = self.check(input_ids[0, self.prompt_len:].tolist()) is not None
        return torch.tensor([done], device=input_ids.device)


def run_generate(model, prompt: list[int], max_new: int, eos_ids: set[int], stop: StopCheck | None,
                 pld: bool, repetition_penalty: float = 1.0) -> dict:
    """`ar` (plain greedy) or `pld` (transformers prompt lookup) on a transformers causal LM;
    `repetition_penalty` is transformers' own (codeswift's penalty with window 0)."""
    timer = _FirstCall()
    kwargs = dict(max_new_tokens=max_new, do_sample=False, eos_token_id=sorted(eos_ids),
                  pad_token_id=sorted(eos_ids)[0], logits_processor=LogitsProcessorList([timer]))
    if repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = repetition_penalty
    if stop is not None:
        kwargs["stopping_criteria"] = StoppingCriteriaList([_Stop(stop, len(prompt))])
    if pld:
        kwargs["prompt_lookup_num_tokens"] = 10
    ids = torch.tensor([prompt], device=model.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, **kwargs)[0, len(prompt):].tolist()
    t1 = time.perf_counter()
    tokens, _ = finalize(out, max_new, eos_ids, stop)
    prefill = ((timer.first or t1) - t0) * 1000
    return {"tokens": tokens, "prefill_ms": prefill, "decode_ms": (t1 - t0) * 1000 - prefill,
            "steps": None, "per_source": {}}


def top2_gap(model, prompt: list[int], out: list[int], j: int) -> float:
    """Top-2 logit gap of the model before token j of the reference output."""
    ids = torch.tensor([prompt + out[:j]], device=model.device)
    with torch.inference_mode():
        logits = model(ids, logits_to_keep=1).logits[0, -1].float()      # [V]
    top = torch.topk(logits, 2).values
    return float(top[0] - top[1])
