"""Prompt snippets from a repository: the chunks that define what the code at the cursor uses.

Repomap-style: identifiers in the query text are looked up in the definition symbols of every
file; each defining chunk (the smallest chunk around the definition) scores the identifier's
inverse document frequency, so `render` (used in 3 files) outweighs `get` (used in 300).
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from datastore.docstore import FileRecord

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


@dataclass(frozen=True)
class ChunkHit:
    """A chunk chosen for the prompt; `text` is read when the hit is returned."""
    path: str
    kind: str
    name: str
    start_line: int
    end_line: int
    score: float
    text: str = ""


def defining_chunks(record: FileRecord, lines: list[int]) -> list[list | None]:
    """For each line, the smallest chunk of `record` whose lines contain it (or None)."""
    if not record.chunks or not lines:
        return [None] * len(lines)
    spans = np.array([(row[2], row[3]) for row in record.chunks])          # [C, 2]
    at = np.asarray(lines)[:, None]                                          # [L, 1]
    inside = (spans[None, :, 0] <= at) & (at <= spans[None, :, 1])           # [L, C]
    size = np.where(inside, spans[None, :, 1] - spans[None, :, 0], np.iinfo(np.int64).max)
    best = size.argmin(axis=1)
    return [record.chunks[b] if inside[i, b] else None for i, b in enumerate(best)]


class DefinitionIndex:
    """name -> [(record, chunk row)] over definition symbols, plus per-name file counts."""

    def __init__(self, records: Iterable[FileRecord]):
        self.defs: dict[str, list[tuple[FileRecord, list]]] = defaultdict(list)
        self.files_with: Counter = Counter()
        self.n_files = 0
        for rec in records:
            self.add(rec)

    def add(self, rec: FileRecord) -> None:
        self.n_files += 1
        self.files_with.update({s[0] for s in rec.symbols})
        defs = [s for s in rec.symbols if s[2] == "def"]
        for sym, chunk in zip(defs, defining_chunks(rec, [s[3] for s in defs])):
            if chunk is not None:
                self.defs[sym[0]].append((rec, chunk))

    def idf(self, name: str) -> float:
        return math.log((1 + self.n_files) / (1 + self.files_with[name])) + 1.0


def rank_chunks(indexes: list[tuple[DefinitionIndex, set[str]]], idf: DefinitionIndex,
                query_text: str, k: int, exclude: str | None = None) -> list[ChunkHit]:
    """Top `k` defining chunks for the identifiers of `query_text`. Each index comes with the
    paths it must ignore (files shadowed by a newer version elsewhere); `idf` weighs names."""
    words = Counter(IDENT.findall(query_text))
    scores: dict[tuple[str, int], list] = {}
    for index, hidden in indexes:
        for word, n in words.items():
            for rec, chunk in index.defs.get(word, ()):
                if rec.rel == exclude or rec.rel in hidden:
                    continue
                key = (rec.rel, chunk[4])
                entry = scores.setdefault(key, [0.0, rec, chunk])
                entry[0] += idf.idf(word) * (1.0 + math.log(n))
    # one hit per defined name and file: overload stubs lose to the implementation (longest)
    best_of: dict[tuple[str, str], list] = {}
    for entry in scores.values():
        key, old = (entry[1].rel, entry[2][1]), best_of.get((entry[1].rel, entry[2][1]))
        if old is None or (entry[0], entry[2][3] - entry[2][2]) > (old[0], old[2][3] - old[2][2]):
            best_of[key] = entry
    best = sorted(best_of.values(), key=lambda e: (-e[0], e[1].rel, e[2][2]))[:k]
    return [ChunkHit(rec.rel, c[0], c[1], c[2], c[3], round(score, 4)) for score, rec, c in best]
