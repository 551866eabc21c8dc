"""How `codeswift bench` judges an output: token for token against its family's reference, and
as text against the gold span.

Outputs that differ are reported with the top-2 logit gap of the reference model at the first
differing token: below NEAR_TIE it is numerics (bf16/fp32 reassociation, llama.cpp batching),
anything else a bug.
"""
from __future__ import annotations

import difflib

NEAR_TIE = 0.5            # top-2 logit gap below which bf16/fp32 reassociation may flip argmax


def first_difference(tokens: list[int], base: list[int]) -> int:
    """Index of the first token where `tokens` and `base` differ (the shorter length if one is a
    prefix of the other)."""
    return next((i for i, (a, b) in enumerate(zip(tokens, base)) if a != b), min(len(tokens), len(base)))


def divergence(at: int, top2_gap: float) -> dict:
    """The row fields of a divergence at token `at` where the reference's top-2 gap is `top2_gap`."""
    gap = round(top2_gap, 4)
    return {"diverge_at": at, "top2_gap": gap, "near_tie": gap < NEAR_TIE}


def quality(text: str, gold: str) -> dict:
    """Exact match and edit similarity of a completion (cut by its stop rule) against the rest
    of the gold span, ignoring surrounding whitespace."""
    a, b = text.strip(), gold.strip()
    return {"exact_match": a == b, "edit_similarity": round(difflib.SequenceMatcher(None, a, b).ratio(), 4)}


def gold_quality(text: str, typed: str, gold: str) -> dict:
    """`quality` against what is left of the gold span after `typed`; nothing once the developer
    has typed something else (following the model's suggestion)."""
    return quality(text, gold[len(typed):]) if gold.startswith(typed) else {}
