"""Tree-sitter chunking and symbol extraction, driven only by the per-language query files.

`parse_source(source, language)` returns the file's chunks (functions, methods, classes, ...
captured as `@chunk.KIND`, plus `block` chunks grouping top-level code no other chunk covers)
and its symbols (`@name.definition.KIND` / `@name.reference.KIND`). Lines are 1-based and
inclusive; byte offsets index the UTF-8 source.

Rules when patterns overlap (kept generic so the query files decide everything):
- chunks naming the same definition node are one chunk: the outermost node gives the range
  (a decorated function includes its decorators), the earliest pattern gives the kind;
- a definition node captured by several patterns takes the earliest pattern's kind;
- a node captured as a definition is not also a reference.
"""
from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

import numpy as np

from datastore.languages import parser_and_query

BLOCK_MAX_LINES = 40           # top-level code is grouped into blocks of at most this many lines


@dataclass(frozen=True)
class Chunk:
    """A span of a file worth retrieving on its own."""
    kind: str                  # "function" | "method" | "class" | ... | "block"
    name: str
    start_line: int            # 1-based, inclusive
    end_line: int
    start_byte: int
    end_byte: int


@dataclass(frozen=True)
class Symbol:
    """A definition or reference of a name."""
    name: str
    kind: str                  # "function", "class", "call", ...
    role: str                  # "def" | "ref"
    line: int                  # 1-based


@dataclass
class ParsedFile:
    chunks: list[Chunk]
    symbols: list[Symbol]


def _end_line(node) -> int:
    row, col = node.end_point
    return row if col == 0 and row > node.start_point[0] else row + 1


def parse_source(source: bytes, language: str) -> ParsedFile:
    """Chunks and symbols of one file in a registered language."""
    return extract(parse_tree(source, language), source, language)


def parse_tree(source: bytes, language: str, old: tuple | None = None):
    """tree-sitter tree of `source`; `old` = (previous tree, previous source) of the same file
    makes the parse incremental (only the edited region is re-parsed)."""
    parser, _ = parser_and_query(language)
    if old is None:
        return parser.parse(source)
    old_tree, old_source = old
    old_tree = old_tree.copy()
    start, old_end, new_end = _edit_span(old_source, source)
    old_tree.edit(start_byte=start, old_end_byte=old_end, new_end_byte=new_end,
                  start_point=_point(source, start), old_end_point=_point(old_source, old_end),
                  new_end_point=_point(source, new_end))
    return parser.parse(source, old_tree)


def _edit_span(old: bytes, new: bytes) -> tuple[int, int, int]:
    """(start, old end, new end) of the single edit turning `old` into `new`."""
    a, b = np.frombuffer(old, np.uint8), np.frombuffer(new, np.uint8)
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    start = int(diff[0]) if len(diff) else n
    m = min(len(a), len(b)) - start
    tail = np.flatnonzero(a[len(a) - m:][::-1] != b[len(b) - m:][::-1])
    common = int(tail[0]) if len(tail) else m
    return start, len(a) - common, len(b) - common


def _point(source: bytes, offset: int) -> tuple[int, int]:
    row = source.count(b"\n", 0, offset)
    return row, offset - (source.rfind(b"\n", 0, offset) + 1)


def extract(tree, source: bytes, language: str) -> ParsedFile:
    """Chunks and symbols from a parsed tree."""
    import tree_sitter as ts
    _, query = parser_and_query(language)
    root = tree.root_node
    chunks: dict[tuple, list] = {}     # key -> [pattern, kind, name, start, end, node]
    names: dict[tuple, list] = {}      # (start_byte, role) -> [pattern, name, kind, line]
    for pattern, caps in ts.QueryCursor(query).matches(root):
        first_def = first_any = None
        for cap, nodes in caps.items():
            if not cap.startswith("name."):
                continue
            _, role, kind = cap.split(".", 2)
            role = "def" if role == "definition" else "ref"
            for node in nodes:
                text = source[node.start_byte:node.end_byte].decode("utf-8", "replace")
                key = (node.start_byte, role)
                if key not in names or names[key][0] > pattern:
                    names[key] = [pattern, text, kind, node.start_point[0] + 1]
                first_any = first_any or (node, text)
                if role == "def":
                    first_def = first_def or (node, text)
        for cap, nodes in caps.items():
            if cap.startswith("chunk."):
                for node in nodes:
                    _add_chunk(chunks, pattern, cap[6:], node, first_def, first_any)
    out = [Chunk(kind, name, node.start_point[0] + 1, _end_line(node), node.start_byte, node.end_byte)
           for _, kind, name, node in chunks.values()]
    out += _top_level_blocks(root, out)
    out.sort(key=lambda c: (c.start_byte, -c.end_byte))
    return ParsedFile(out, _symbols(names))


def _add_chunk(chunks, pattern, kind, node, first_def, first_any) -> None:
    named = first_def or first_any
    key = ("name", first_def[0].start_byte) if first_def else ("node", node.start_byte, node.end_byte)
    name = named[1] if named else ""
    old = chunks.get(key)
    if old is None:
        chunks[key] = [pattern, kind, name, node]
        return
    if node.end_byte - node.start_byte > old[3].end_byte - old[3].start_byte:
        old[3] = node                  # outermost node wins the range
    if pattern < old[0]:
        old[0], old[1] = pattern, kind  # earliest pattern wins the kind


def _symbols(names: dict) -> list[Symbol]:
    defs = {start for start, role in names if role == "def"}
    syms = [Symbol(name, kind, role, line)
            for (start, role), (_, name, kind, line) in sorted(names.items())
            if role == "def" or start not in defs]
    return syms


def _top_level_blocks(root, chunks: list[Chunk]) -> list[Chunk]:
    """Group runs of top-level nodes that no chunk overlaps into `block` chunks."""
    spans = sorted((c.start_byte, c.end_byte) for c in chunks)
    starts = [s for s, _ in spans]
    reach = list(itertools.accumulate((e for _, e in spans), max))   # max end among spans[:i+1]
    blocks, group = [], []

    def overlaps(node) -> bool:
        i = bisect.bisect_left(starts, node.end_byte)          # spans[:i] start before node ends
        return i > 0 and reach[i - 1] > node.start_byte

    def flush():
        if group:
            first, last = group[0], group[-1]
            blocks.append(Chunk("block", "", first.start_point[0] + 1, _end_line(last),
                                first.start_byte, last.end_byte))
            group.clear()

    for child in root.named_children:
        if overlaps(child):
            flush()
            continue
        if group and _end_line(child) - group[0].start_point[0] > BLOCK_MAX_LINES:
            flush()
        group.append(child)
    flush()
    return blocks
