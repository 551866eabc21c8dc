"""A set of source files as documents: tokens, chunks, symbols, and one suffix index over them.

Shared by the repository index and the general corpus. `build_docstore` walks folders, reuses
every file whose content hash is unchanged from a previous store (no parsing, no tokenizing),
parses and tokenizes the rest, and rebuilds the suffix array only when a document changed.
"""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from datastore.chunker import Chunk, ParsedFile, Symbol, parse_source
from datastore.languages import registry
from datastore.progress import Progress
from datastore.storage import CorruptIndex
from datastore.suffix_index import SENTINEL, SuffixIndex, concat_documents
from datastore.tokens import byte_to_char, encode_texts, token_range
from datastore.walker import MAX_FILE_BYTES, decode_source, walk_files

TOKENIZE_BATCH = 64


@dataclass
class FileRecord:
    """One indexed file. `chunks` rows: [kind, name, start_line, end_line, start_byte,
    end_byte, tok_start, tok_end]; `symbols` rows: [name, kind, role, line]."""
    rel: str
    sha: str
    language: str | None
    n_tokens: int
    chunks: list[list] = field(default_factory=list)
    symbols: list[list] = field(default_factory=list)

    def to_json(self) -> list:
        return [self.rel, self.sha, self.language, self.n_tokens, self.chunks, self.symbols]

    @classmethod
    def from_json(cls, row: list) -> "FileRecord":
        return cls(*row)

    def chunk_objects(self) -> list[Chunk]:
        return [Chunk(*row[:6]) for row in self.chunks]

    def symbol_objects(self) -> list[Symbol]:
        return [Symbol(*row) for row in self.symbols]


@dataclass
class BuildReport:
    """What a build did; printed by the CLI as the final summary."""
    files: int = 0
    processed: int = 0         # parsed + tokenized this time
    reused: int = 0            # unchanged content hash: taken from the previous index
    skipped: int = 0           # binary, huge, minified or not UTF-8
    removed: int = 0
    chunks: int = 0
    symbols: int = 0
    tokens: int = 0
    lines: int = 0
    seconds: float = 0.0
    reason: str = "fresh"      # fresh | incremental | unchanged | rebuilt (why)


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def analyse_file(rel: str, data: bytes, text: str, ids: np.ndarray,
                 char_starts: np.ndarray | None, parsed: ParsedFile | None = None) -> FileRecord:
    """Parse (when the language is known, unless `parsed` is given) and attach token ranges
    to the chunks."""
    lang = registry().language_for(rel)
    if parsed is None:
        parsed = parse_source(data, lang) if lang else ParsedFile([], [])
    to_char = byte_to_char(text, data)
    chunks = []
    for c in parsed.chunks:
        cs, ce = (c.start_byte, c.end_byte) if to_char is None else (
            int(to_char[c.start_byte]), int(to_char[c.end_byte]))
        lo, hi = token_range(char_starts, len(ids), len(text), cs, ce)
        chunks.append([c.kind, c.name, c.start_line, c.end_line, c.start_byte, c.end_byte, lo, hi])
    symbols = [[s.name, s.kind, s.role, s.line] for s in parsed.symbols]
    return FileRecord(rel, content_hash(data), lang, len(ids), chunks, symbols)


class DocStore:
    """Files in path order, their token arrays (views into one array) and the suffix index."""

    def __init__(self, files: list[FileRecord], index: SuffixIndex):
        self.files = files
        self.index = index
        self.position = {f.rel: i for i, f in enumerate(files)}

    def doc_tokens(self, i: int) -> np.ndarray:
        start = int(self.index.doc_starts[i])
        return self.index.tokens[start:start + self.files[i].n_tokens]

    def to_saved(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"files": [f.to_json() for f in self.files]}
        ix = self.index
        return meta, {"tokens": ix.tokens, "doc_starts": ix.doc_starts, "rsa": ix.rsa}

    @classmethod
    def from_saved(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "DocStore":
        """Rebuild from a loaded file; raises CorruptIndex on any inconsistency."""
        try:
            files = [FileRecord.from_json(r) for r in meta["files"]]
            tokens, starts, rsa = arrays["tokens"], arrays["doc_starts"], arrays["rsa"]
            n = len(tokens)
            lengths = np.array([f.n_tokens for f in files], np.int64)
            ok = (len(starts) == len(files) and len(rsa) == n and tokens.dtype == np.int32
                  and (n == 0 or (tokens[0] == SENTINEL and tokens[-1] == SENTINEL))
                  and (len(rsa) == 0 or (int(rsa.min()) >= 0 and int(rsa.max()) < n))
                  and np.array_equal(starts, concat_documents([np.zeros(k) for k in lengths])[1])
                  and (len(starts) == 0 or np.all(tokens[starts + lengths] == SENTINEL))
                  and int(tokens.min(initial=0)) >= SENTINEL)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CorruptIndex(str(e)) from e
        if not ok:
            raise CorruptIndex("inconsistent arrays")
        return cls(files, SuffixIndex(tokens, starts, rsa))


def list_sources(roots: Sequence[tuple[str, Path]], exclude: Sequence[str] = (),
                 confine: bool = False) -> list[tuple[str, Path, int]]:
    """(rel with the root's prefix, absolute path, size) for every indexable file."""
    return [(prefix + sf.rel, sf.path, sf.size) for prefix, root in roots
            for sf in walk_files(root, exclude, confine)]


def _within(sources: list[tuple[str, Path, int]], max_bytes: int) -> tuple[list[tuple[str, Path, int]], int]:
    """The first sources whose sizes add up to at most `max_bytes`, and how many were left."""
    total = 0
    for i, (_rel, _path, size) in enumerate(sources):
        if total + size > max_bytes:
            return sources[:i], len(sources) - i
        total += size
    return sources, 0


def build_docstore(roots: Sequence[tuple[str, Path]], tokenizer, previous: DocStore | None = None,
                   progress: Progress | None = None,
                   exclude: Sequence[str] = (), confine: bool = False,
                   max_bytes: int | None = None) -> tuple[DocStore, BuildReport]:
    """Index every file under the `(prefix, folder)` roots (minus gitignore-style `exclude`
    patterns; with `confine`, no symlink out of a root); reuse unchanged files of `previous`.
    `max_bytes` keeps the first files, in root order, whose sizes fit; the rest are skipped."""
    t0 = time.perf_counter()
    progress = progress or Progress(False)
    report = BuildReport(reason="incremental" if previous else "fresh")
    sources = list_sources(roots, exclude, confine)
    if max_bytes is not None:
        sources, over = _within(sources, max_bytes)
        report.skipped += over
    kept: dict[str, tuple[FileRecord, np.ndarray]] = {}
    todo: list[tuple[str, bytes, str]] = []
    advance = progress.stage("scanning", len(sources))
    for rel, path, size in sources:
        advance()
        data = _read_bytes(path, size)
        if data is None:
            report.skipped += 1
            continue
        i = previous.position.get(rel) if previous else None
        if i is not None and previous.files[i].sha == content_hash(data):
            kept[rel] = (previous.files[i], previous.doc_tokens(i))
            continue
        text = decode_source(data)
        if text is None:
            report.skipped += 1
            continue
        todo.append((rel, data, text))
        report.lines += text.count("\n") + 1
    for rel, record, ids in _analyse_all(todo, tokenizer, progress):
        kept[rel] = (record, ids)
    report.processed, report.reused = len(todo), len(kept) - len(todo)
    if previous:
        report.removed = sum(1 for f in previous.files if f.rel not in kept)
    rels = sorted(kept)
    files = [kept[r][0] for r in rels]
    if previous and not todo and rels == [f.rel for f in previous.files]:
        store, report.reason = DocStore(files, previous.index), "unchanged"
    else:
        done = progress.stage("suffix array", 1)
        store = DocStore(files, SuffixIndex.from_documents([kept[r][1] for r in rels]))
        done()
    report.files = len(files)
    report.chunks = sum(len(f.chunks) for f in files)
    report.symbols = sum(len(f.symbols) for f in files)
    report.tokens = sum(f.n_tokens for f in files)
    report.seconds = time.perf_counter() - t0
    return store, report


def _read_bytes(path: Path, size: int) -> bytes | None:
    if size > MAX_FILE_BYTES:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def _analyse_all(todo, tokenizer, progress: Progress):
    """Tokenize in a worker thread (the Rust tokenizer releases the GIL) while parsing here."""
    advance = progress.stage("parsing", len(todo))
    batches = [todo[i:i + TOKENIZE_BATCH] for i in range(0, len(todo), TOKENIZE_BATCH)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = [pool.submit(encode_texts, tokenizer, [t for _, _, t in b]) for b in batches]
        for batch, fut in zip(batches, futures):
            for (rel, data, text), (ids, starts) in zip(batch, fut.result()):
                yield rel, analyse_file(rel, data, text, ids, starts), ids
                advance()
