"""The server's mirror of open documents: incremental edits, LSP positions, cursor windows.

Positions follow the LSP rules exactly: lines end at "\\n", "\\r\\n" or "\\r" (nothing else), and
`character` counts code units of the negotiated encoding (UTF-16 unless the client chose
otherwise). Request positions are checked strictly; edit ranges are clamped, as the
specification asks.
"""
from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, field

from lsprotocol import types

LINE_BREAK = re.compile(r"\r\n|\r|\n")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")   # JSON can carry them; no tokenizer takes them
MAX_DOCUMENT_CHARS = 2_000_000      # larger documents are mirrored but never completed
MAX_PREFIX_CHARS = 16_000           # far more than any prompt budget; bounds tokenizer work
MAX_SUFFIX_CHARS = 8_000
ALIGN_LINES = 64                    # the prefix window starts on a multiple of this many lines


class BadPosition(ValueError):
    """A request position outside the document."""


def _units(ch: str, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf8:
        return len(ch.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return 1
    return 2 if ord(ch) > 0xFFFF else 1


def column_to_index(line: str, character: int, encoding: str) -> int:
    """Code-point index in `line` of a column given in `encoding` code units (clamped to the end)."""
    if encoding == types.PositionEncodingKind.Utf32 or line.isascii():
        return min(character, len(line))
    units = 0
    for i, ch in enumerate(line):
        if units >= character:
            return i
        units += _units(ch, encoding)
    return len(line)


def index_to_column(line: str, index: int, encoding: str) -> int:
    if encoding == types.PositionEncodingKind.Utf32 or line.isascii():
        return index
    return sum(_units(ch, encoding) for ch in line[:index])


@dataclass
class Document:
    """One open text document as the client last described it."""
    uri: str
    text: str
    version: int = 0
    language_id: str = ""
    encoding: str = types.PositionEncodingKind.Utf16
    last_edit: int | None = None        # offset just after the last edit: where the cursor probably is
    _starts: list[int] | None = field(default=None, repr=False)

    # -- lines -------------------------------------------------------------------------
    def line_starts(self) -> list[int]:
        """Offset of the first character of every line (cached until the next edit)."""
        if self._starts is None:
            self._starts = [0] + [m.end() for m in LINE_BREAK.finditer(self.text)]
        return self._starts

    def _line(self, n: int) -> tuple[int, str]:
        starts = self.line_starts()
        start = starts[n]
        end = starts[n + 1] if n + 1 < len(starts) else len(self.text)
        return start, self.text[start:end].rstrip("\r\n")

    # -- positions ---------------------------------------------------------------------
    def offset_at(self, pos: types.Position) -> int:
        """Offset of a request position; raises BadPosition when the line does not exist.
        A character past the end of its line means the end of the line (LSP rule)."""
        if pos.line >= len(self.line_starts()):
            raise BadPosition(f"line {pos.line} is outside {self.uri} ({len(self.line_starts())} lines)")
        start, line = self._line(pos.line)
        return start + column_to_index(line, pos.character, self.encoding)

    def _clamped_offset(self, pos: types.Position) -> int:
        return len(self.text) if pos.line >= len(self.line_starts()) else self.offset_at(pos)

    def position_at(self, offset: int) -> types.Position:
        starts = self.line_starts()
        n = bisect.bisect_right(starts, offset) - 1
        start, line = self._line(n)
        return types.Position(line=n, character=index_to_column(line, offset - start, self.encoding))

    # -- edits -------------------------------------------------------------------------
    def apply(self, change: types.TextDocumentContentChangeEvent) -> None:
        if isinstance(change, types.TextDocumentContentChangePartial):
            a = self._clamped_offset(change.range.start)
            b = max(a, self._clamped_offset(change.range.end))
            self.text = self.text[:a] + change.text + self.text[b:]
            self.last_edit = a + len(change.text)
        else:
            self.last_edit = len(os.path.commonprefix([self.text, change.text]))
            self.text = change.text
        self._starts = None

    # -- completion eligibility --------------------------------------------------------
    def unusable_reason(self) -> str | None:
        """Why this document gets no completions (None when it does)."""
        if len(self.text) > MAX_DOCUMENT_CHARS:
            return f"document too large ({len(self.text)} characters > {MAX_DOCUMENT_CHARS})"
        if "\x00" in self.text:
            return "binary document (contains NUL characters)"
        if LONE_SURROGATE.search(self.text):
            return "text is not valid Unicode (a lone UTF-16 surrogate)"
        return None

    def cursor_window(self, offset: int) -> tuple[str, str]:
        """(prefix, suffix) around `offset`, bounded; the prefix is cut at aligned line blocks so
        its start stays put while the user types (keeps the engine's prompt KV reusable)."""
        start = 0
        if offset > MAX_PREFIX_CHARS:
            starts = self.line_starts()
            first = bisect.bisect_left(starts, offset - MAX_PREFIX_CHARS)
            aligned = -(-first // ALIGN_LINES) * ALIGN_LINES
            if aligned < len(starts) and starts[aligned] <= offset:
                start = starts[aligned]
            else:                                   # very long lines: no aligned start fits
                start = starts[first] if first < len(starts) and starts[first] <= offset \
                    else offset - MAX_PREFIX_CHARS
        end = min(len(self.text), offset + MAX_SUFFIX_CHARS)
        if end < len(self.text):
            cut = self.text.rfind("\n", offset, end)
            end = cut + 1 if cut >= 0 else end
        return self.text[start:offset], self.text[offset:end]


class DocumentStore:
    """Open documents by URI."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}
        self.encoding: str = types.PositionEncodingKind.Utf16

    def open(self, item: types.TextDocumentItem) -> Document:
        doc = Document(item.uri, item.text, item.version, item.language_id, self.encoding)
        self._docs[item.uri] = doc
        return doc

    def change(self, params: types.DidChangeTextDocumentParams) -> Document | None:
        doc = self._docs.get(params.text_document.uri)
        if doc is None:
            return None
        for change in params.content_changes:
            doc.apply(change)
        doc.version = params.text_document.version
        return doc

    def close(self, uri: str) -> Document | None:
        return self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def __len__(self) -> int:
        return len(self._docs)
