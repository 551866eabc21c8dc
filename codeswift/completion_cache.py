"""Reuse a completion while the user types along it, or asks again at the same place.

An entry is (prefix, suffix, text) at the moment it was computed. A later cursor whose prefix
is that prefix plus the first characters of the text, with the same suffix, gets the rest
of the text without running the model (the llama.vscode habit).

This is the one notion of "the rest of the last answer": the LSP shows it (`get`), and the
engine's preference cache drafts it for verification (`lookup`, with the answer's tokens), so
both agree on what the developer accepted and typed since the answer was given.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    prefix: str
    suffix: str
    text: str
    tokens: tuple[int, ...] = ()       # the model's tokens of `text`, where the engine keeps them


class CompletionCache:
    """Recent completions per document; least recently used documents are dropped first."""

    def __init__(self, per_document: int = 8, documents: int = 32):
        self.per_document, self.documents = per_document, documents
        self._entries: "OrderedDict[str, deque[Entry]]" = OrderedDict()

    def get(self, uri: str, prefix: str, suffix: str) -> str | None:
        """The completion still valid at this cursor ("" = known to be empty), or None."""
        for e, typed in self.lookup(uri, prefix, suffix):
            return e.text[typed:]
        return None

    def lookup(self, uri: str, prefix: str, suffix: str):
        """Every entry still valid at this cursor, newest first, as (entry, characters of its
        text typed since): the prefix is the entry's prefix plus the start of its text (all of
        it typed is not valid: the answer was used up), and the suffix is the same."""
        entries = self._entries.get(uri)
        if not entries:
            return
        for e in reversed(entries):                     # newest first
            if suffix != e.suffix or not prefix.startswith(e.prefix):
                continue
            typed = len(prefix) - len(e.prefix)
            if typed == 0 or (typed < len(e.text) and e.text.startswith(prefix[len(e.prefix):])):
                self._entries.move_to_end(uri)
                yield e, typed

    def put(self, uri: str, prefix: str, suffix: str, text: str, tokens: tuple[int, ...] = ()) -> None:
        entries = self._entries.setdefault(uri, deque(maxlen=self.per_document))
        if entries and entries[-1].prefix == prefix and entries[-1].suffix == suffix:
            entries.pop()                               # asked again at the same place: newest wins
        entries.append(Entry(prefix, suffix, text, tuple(tokens)))
        self._entries.move_to_end(uri)
        while len(self._entries) > self.documents:
            self._entries.popitem(last=False)

    def forget(self, uri: str) -> None:
        self._entries.pop(uri, None)
