"""Repository index: chunks, symbols and a token suffix index of one source tree.

    index = RepoIndex.open_or_build(root, tokenizer, out_dir=None, progress=True)
    index.update_file("pkg/mod.py", unsaved_text)      # LSP edits, milliseconds
    index.remove_file("pkg/old.py")
    index.lookup(context_tokens, max_len=16, max_drafts=4, exclude_path=None)
        -> [Continuation(tokens, count, match_len), ...]  best first
    index.chunks_for(query_text, k=4, exclude_path=None) -> [ChunkHit(path, kind, name, ...)]
    index.definitions(name) -> [(path, kind, line)]
    index.refresh(progress=False)   # re-walk the disk: re-process changed files only, save
    index.stats() -> dict

Only files inside the root are read: symlinks leading out of it are skipped (the LSP indexes
the workspace folder with this; the HTTP service refuses such repositories outright).

Persistence: one file, `ROOT/.codeswift/repo-index.npz` (or `out_dir`), written atomically
by `datastore.storage`. An index of another format version or tokenizer, or one that fails to
load or to pass its checks, is rebuilt from scratch; files whose content hash is unchanged are
reused without parsing or tokenizing.

Unsaved edits never touch the big suffix array: each edited file goes to an *overlay* (its own
small suffix index, rebuilt on every edit) and the file's stale version in the main index is
masked out. Readers take one immutable snapshot per call, so lookups may run in other threads
while the LSP thread edits.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from datastore import storage
from datastore.chunker import extract, parse_tree
from datastore.docstore import BuildReport, DocStore, FileRecord, analyse_file, build_docstore, content_hash
from datastore.languages import registry
from datastore.progress import Progress
from datastore.snippets import ChunkHit, DefinitionIndex, rank_chunks
from datastore.suffix_index import Continuation, SuffixIndex, lookup
from datastore.tokens import LineTokenizer, fingerprint
from datastore.walker import decode_source

log = logging.getLogger(__name__)

KIND = "codeswift-repo"
INDEX_FILE = "repo-index.npz"


@dataclass(frozen=True)
class _Edited:
    """One file's unsaved version: its own small suffix index and a line-token cache."""
    record: FileRecord
    text: str
    index: SuffixIndex
    line_cache: dict
    tree: object | None = None          # tree-sitter tree of `data`, for incremental re-parsing
    data: bytes = b""


@dataclass(frozen=True)
class _View:
    """One consistent state for readers: swapped whole on every edit or refresh."""
    store: DocStore
    main_alive: np.ndarray | None                  # per main doc; None = all alive
    overlay: dict[str, "_Edited"]                  # rel -> unsaved version
    overlay_defs: DefinitionIndex
    hidden: frozenset[str]                         # main docs shadowed by the overlay or removed


def load_store(path: Path, fp: str, kind: str = KIND) -> tuple[DocStore | None, str]:
    """(store, "") when the file is a valid index for this tokenizer, else (None, why)."""
    try:
        meta, arrays = storage.load(path, kind, fp)
        return DocStore.from_saved(meta, arrays), ""
    except FileNotFoundError:
        return None, "fresh"
    except storage.StaleIndex as e:
        return None, f"rebuilt (stale: {e})"
    except storage.CorruptIndex as e:
        log.warning("corrupt index, rebuilding: %s", e)
        return None, "rebuilt (corrupt)"


class RepoIndex:
    """Everything codeswift knows about one repository; see the module docstring."""

    def __init__(self, root: Path, tokenizer, store: DocStore, index_path: Path,
                 report: BuildReport | None = None, fp: str | None = None):
        self.root, self.tokenizer, self.store, self.index_path = root, tokenizer, store, index_path
        self.report = report or BuildReport(reason="loaded")
        self._fp = fp or fingerprint(tokenizer)
        self._lock = threading.Lock()
        self._overlay: dict[str, _Edited] = {}
        self._line_tokenizer = LineTokenizer(tokenizer)
        self._removed: set[str] = set()
        self._main_defs: DefinitionIndex | None = None   # built on first chunks_for()
        self.save_error: str | None = None               # why the last build was not saved
        self._publish()

    # ---- building -------------------------------------------------------------------------

    @classmethod
    def open_or_build(cls, root: str | Path, tokenizer, out_dir: str | Path | None = None,
                      progress: bool = True) -> "RepoIndex":
        """Load the saved index, re-process changed files, save; rebuild when unusable.
        Raises NotADirectoryError / FileNotFoundError for a bad `root`."""
        root = Path(root).resolve()
        if not root.exists():
            raise FileNotFoundError(f"no such folder: {root}")
        if not root.is_dir():
            raise NotADirectoryError(f"not a folder: {root}")
        index_path = Path(out_dir or root / ".codeswift").resolve() / INDEX_FILE
        fp = fingerprint(tokenizer)
        with storage.locked(index_path):
            previous, why = load_store(index_path, fp)
            with Progress(progress) as bar:
                store, report = build_docstore([("", root)], tokenizer, previous, bar, confine=True)
            if why:
                report.reason = why
            error = _save(store, index_path, fp) if report.reason != "unchanged" else None
        index = cls(root, tokenizer, store, index_path, report, fp)
        index.save_error = error
        return index

    def refresh(self, progress: bool = False) -> BuildReport:
        """Re-walk the disk: re-process changed files, drop deleted ones, save. Unsaved edits
        (the overlay) stay on top."""
        with storage.locked(self.index_path), Progress(progress) as bar:
            store, report = build_docstore([("", self.root)], self.tokenizer, self.store, bar, confine=True)
            if report.reason != "unchanged":
                self.save_error = _save(store, self.index_path, self._fp)
        with self._lock:
            self.store, self.report, self._main_defs = store, report, None
            self._publish()
        return report

    # ---- unsaved edits --------------------------------------------------------------------

    def rel_path(self, path: str | Path) -> str:
        """Index key of a path: relative to the root with "/" when inside it."""
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.root)
            except ValueError:
                return p.as_posix()
        return p.as_posix()

    def update_file(self, path: str | Path, text: str) -> bool:
        """Use `text` as the file's content from now on (unsaved editor buffer). Returns False
        when the text is not indexable (binary-like, huge, minified) and was ignored."""
        rel = self.rel_path(path)
        data = text.encode("utf-8")
        if decode_source(data) is None:
            return False
        i = self.store.position.get(rel)
        entry = None
        if i is None or self.store.files[i].sha != content_hash(data):
            old = self._overlay.get(rel)
            ids, starts, cache = self._line_tokenizer.encode(text, old.line_cache if old else {})
            lang = registry().language_for(rel)
            tree = parsed = None
            if lang:
                tree = parse_tree(data, lang, (old.tree, old.data) if old and old.tree else None)
                parsed = extract(tree, data, lang)
            entry = _Edited(analyse_file(rel, data, text, ids, starts, parsed), text,
                            SuffixIndex.from_documents([ids]), cache, tree, data)
        with self._lock:
            self._removed.discard(rel)
            if entry is None:
                self._overlay.pop(rel, None)       # back to what the main index holds
            else:
                self._overlay[rel] = entry
            self._publish()
        return True

    def remove_file(self, path: str | Path) -> None:
        """Forget a file (deleted or closed without saving a new file)."""
        rel = self.rel_path(path)
        with self._lock:
            self._overlay.pop(rel, None)
            self._removed.add(rel)
            self._publish()

    def _publish(self) -> None:
        overlay = dict(sorted(self._overlay.items()))
        hidden = frozenset(r for r in (*overlay, *self._removed) if r in self.store.position)
        alive = None
        if hidden:
            alive = np.ones(len(self.store.files), bool)
            alive[[self.store.position[r] for r in hidden]] = False
        self._view = _View(self.store, alive, overlay,
                           DefinitionIndex(e.record for e in overlay.values()), hidden)

    # ---- queries --------------------------------------------------------------------------

    def lookup(self, context: Sequence[int], max_len: int, max_drafts: int,
               exclude_path: str | Path | None = None, min_match: int = 1,
               max_suffix: int = 32) -> list[Continuation]:
        """Longest suffix of `context` found in the repository (unsaved edits included), and
        its most frequent continuations, best first."""
        view = self._view
        main_alive, excluded = view.main_alive, None
        if exclude_path is not None:
            excluded = self.rel_path(exclude_path)
            i = view.store.position.get(excluded)
            if i is not None:
                main_alive = np.ones(len(view.store.files), bool) if main_alive is None else main_alive.copy()
                main_alive[i] = False
        segments = [(view.store.index, main_alive)]
        segments += [(e.index, None) for rel, e in view.overlay.items() if rel != excluded]
        return lookup(segments, context, max_len, max_drafts, max_suffix, min_match)

    def chunks_for(self, query_text: str, k: int = 4, exclude_path: str | Path | None = None,
                   max_lines: int = 80) -> list[ChunkHit]:
        """Up to `k` chunks defining the names used in `query_text` (e.g. the code around the
        cursor), best first, with their current text (unsaved edits included) cut to
        `max_lines` lines."""
        view = self._view
        exclude = self.rel_path(exclude_path) if exclude_path is not None else None
        main = self._main_defs
        if main is None or main.n_files != len(view.store.files):
            main = self._main_defs = DefinitionIndex(view.store.files)
        hits = rank_chunks([(main, set(view.hidden)), (view.overlay_defs, set())],
                           main, query_text, k, exclude)
        return [ChunkHit(**{**asdict(h), "text": self._chunk_text(h, view, max_lines)}) for h in hits]

    def _chunk_text(self, hit: ChunkHit, view: _View, max_lines: int) -> str:
        if hit.path in view.overlay:
            text = view.overlay[hit.path].text
        else:
            path = (self.root / hit.path).resolve()
            if not path.is_relative_to(self.root):          # replaced by a link out since indexed
                return ""
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return ""
        end = min(hit.end_line, hit.start_line - 1 + max_lines)
        return "".join(text.splitlines(keepends=True)[hit.start_line - 1:end])

    def definitions(self, name: str) -> list[tuple[str, str, int]]:
        """(path, kind, line) of every definition of `name`, unsaved edits included."""
        view = self._view
        out = [(rec.rel, sym[1], sym[3]) for rec in view.store.files if rec.rel not in view.hidden
               for sym in rec.symbols if sym[0] == name and sym[2] == "def"]
        out += [(rel, sym[1], sym[3]) for rel, e in view.overlay.items()
                for sym in e.record.symbols if sym[0] == name and sym[2] == "def"]
        return sorted(out)

    def file_record(self, path: str | Path) -> FileRecord | None:
        """Chunks and symbols of one file as currently indexed (overlay first)."""
        rel, view = self.rel_path(path), self._view
        if rel in view.overlay:
            return view.overlay[rel].record
        i = view.store.position.get(rel)
        return None if i is None or rel in view.hidden else view.store.files[i]

    def stats(self) -> dict:
        view = self._view
        return {"root": str(self.root), "index_path": str(self.index_path),
                "format_version": storage.FORMAT_VERSION, "files": len(self.store.files),
                "chunks": sum(len(f.chunks) for f in self.store.files),
                "symbols": sum(len(f.symbols) for f in self.store.files),
                "tokens": sum(f.n_tokens for f in self.store.files),
                "overlay_files": len(view.overlay),
                "overlay_tokens": sum(e.record.n_tokens for e in view.overlay.values()),
                "hidden_files": len(view.hidden), "last_build": asdict(self.report)}


def _save(store: DocStore, path: Path, fp: str) -> str | None:
    """Persist; None, or why not (a read-only location or a full disk only costs the next
    start a rebuild)."""
    try:
        meta, arrays = store.to_saved()
        storage.save(path, KIND, fp, meta, arrays)
        gitignore = path.parent / ".gitignore"
        if path.parent.name == ".codeswift" and not gitignore.exists():
            gitignore.write_text("*\n")
    except OSError as e:
        log.warning("could not save index to %s: %s", path, e)
        return f"could not save the index to {path}: {e.strerror or e}"
    return None
