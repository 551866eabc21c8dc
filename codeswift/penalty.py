"""Contextual (repetition) penalty for long generations, the same in plain and speculative decoding.

Long greedy generations fall into loops; TokenSwift (Wu et al., 2025) counters them with a
penalty on tokens already in the context. Here it is the CTRL/Hugging Face rule: the logit of
every token that occurs in the last `window` tokens of prompt + output (0 = all of them) is
divided by `theta` when positive and multiplied by it when negative. With window 0 it equals
transformers' `repetition_penalty`, so plain `model.generate(repetition_penalty=theta)` is an
independent reference (tests/test_penalty.py).

It changes what "greedy" means, so the loop applies it at every node of a draft tree with that
node's own history (context + the tree path to it): speculative decoding then equals *penalised*
plain decoding token for token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Penalty:
    theta: float = 1.0            # 1.0: off
    window: int = 0               # tokens of history penalised (0: the whole prompt + output)

    @property
    def active(self) -> bool:
        return self.theta != 1.0

    def history(self, tokens: Sequence[int], extra: int = 0) -> np.ndarray:
        """The distinct tokens that penalise the next one after `tokens` + `extra` more tokens
        (those `extra` are added by the caller): the last window - extra of `tokens`."""
        if self.window <= 0:
            return np.unique(np.asarray(tokens, np.int64))
        keep = self.window - extra
        return (np.unique(np.asarray(tokens[-keep:], np.int64)) if keep > 0
                else np.zeros(0, np.int64))

    def apply(self, logits, seen: np.ndarray):
        """Penalise row `logits` [V] (torch, in place) at token ids `seen`."""
        import torch
        if not len(seen):
            return logits
        idx = torch.as_tensor(seen, dtype=torch.long)
        idx = idx[idx < logits.shape[-1]]
        s = logits[idx]
        logits[idx] = torch.where(s < 0, s * self.theta, s / self.theta)
        return logits

    def tree_logits(self, logits, context: Sequence[int], tokens: np.ndarray, parents: np.ndarray,
                    depth: np.ndarray):
        """Penalised logits [n, V] of a verified tree: node i continues `context` (which ends
        with the root, node 0) along its path, so its history is context + path tokens."""
        out = logits.float().clone()            # a backend may keep its logits tensor
        base: dict[int, np.ndarray] = {}
        for i in range(len(tokens)):
            d = int(depth[i])
            if d not in base:
                base[d] = self.history(context, d)
            path, j = [], i
            while j > 0:                        # the path after the root (node 0 is in context)
                path.append(int(tokens[j]))
                j = int(parents[j])
            if self.window > 0:
                path = path[:self.window]       # nearest first: the last `window` of them
            seen = np.union1d(base[d], np.asarray(path, np.int64)) if path else base[d]
            self.apply(out[i], seen)
        return out
