"""Reuse a completion while the user types along it, or asks again at the same place.

An entry is (prefix, suffix, text) at the moment it was computed. A later cursor whose prefix
is that prefix plus the first characters of the text, with the same suffix, gets the rest
of the text without running the model (the llama.vscode habit).
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    prefix: str
    suffix: str
    text: str


class CompletionCache:
    """Recent completions per document; least recently used documents are dropped first."""

    def __init__(self, per_document: int = 8, documents: int = 32):
        self.per_document, self.documents = per_document, documents
        self._entries: "OrderedDict[str, deque[Entry]]" = OrderedDict()

    def get(self, uri: str, prefix: str, suffix: str) -> str | None:
        """The completion still valid at this cursor ("" = known to be empty), or None."""
        entries = self._entries.get(uri)
        if not entries:
            return None
        for e in reversed(entries):                     # newest first
            if suffix != e.suffix or not prefix.startswith(e.prefix):
                continue
            typed = len(prefix) - len(e.prefix)
            if typed == 0:
                self._entries.move_to_end(uri)
                return e.text
            if typed < len(e.text) and e.text.startswith(prefix[len(e.prefix):]):
                self._entries.move_to_end(uri)
                return e.text[typed:]
        return None

    def put(self, uri: str, prefix: str, suffix: str, text: str) -> None:
        entries = self._entries.setdefault(uri, deque(maxlen=self.per_document))
        entries.append(Entry(prefix, suffix, text))
        self._entries.move_to_end(uri)
        while len(self._entries) > self.documents:
            self._entries.popitem(last=False)

    def forget(self, uri: str) -> None:
        self._entries.pop(uri, None)
