"""Which files of a tree get indexed, and reading them safely.

`walk_files(root)` yields indexable files (sorted within each folder): it honours every `.gitignore` in the
tree (pathspec's git semantics, each file relative to its own folder), skips VCS/tool folders,
follows symlinked folders at most once (no loops), and keeps only extensions the language
registry knows. With `confine`, a symlink (to a folder or a file) whose real location is outside
the root is skipped: a repository index never reads a file elsewhere. `read_text(path)` returns None for files that are too big, binary, not UTF-8 or
minified, so callers never index those.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pathspec

from datastore.languages import registry

MAX_FILE_BYTES = 1_000_000
ALWAYS_IGNORED = [".git/", ".hg/", ".svn/", ".codeswift/", "node_modules/", "__pycache__/",
                  ".venv/", "venv/", ".tox/", ".mypy_cache/", ".pytest_cache/",
                  "*.min.js", "*.min.css", "*.bundle.js"]


@dataclass(frozen=True)
class SourceFile:
    rel: str                   # path relative to the root, "/"-separated
    path: Path
    size: int


def _load_gitignore(folder: str) -> pathspec.PathSpec | None:
    try:
        with open(os.path.join(folder, ".gitignore"), encoding="utf-8", errors="replace") as f:
            return pathspec.GitIgnoreSpec.from_lines(f)
    except OSError:
        return None


def _ignored(rel: str, specs: list[tuple[str, pathspec.PathSpec]]) -> bool:
    # Later (deeper) .gitignore files override earlier ones, as in git.
    verdict = False
    for prefix, spec in specs:
        if rel.startswith(prefix):
            result = spec.check_file(rel[len(prefix):])
            if result.include is not None:
                verdict = result.include
    return verdict


def walk_files(root: str | Path, exclude: Sequence[str] = (), confine: bool = False) -> Iterator[SourceFile]:
    """Indexable files under `root`, sorted by name within each folder; `exclude` adds
    gitignore-style patterns (e.g. "site-packages/"); `confine` skips links leading out of `root`."""
    root = os.path.abspath(root)
    real_root = os.path.realpath(root)

    def outside(path: str) -> bool:
        if not confine or not os.path.islink(path):
            return False
        real = os.path.realpath(path)
        return real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep)
    reg = registry()
    specs = [("", pathspec.GitIgnoreSpec.from_lines([*ALWAYS_IGNORED, *exclude]))]
    seen_dirs: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen_dirs:
            dirs[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        rel_dir = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel_dir == "." else rel_dir + "/"
        spec = _load_gitignore(folder)
        if spec is not None:       # top-down walk: parents' specs are already in the list
            specs.append((prefix, spec))
        # real folders before symlinked ones, so a linked folder keeps its real path
        dirs[:] = sorted((d for d in dirs if not _ignored(prefix + d + "/", specs)
                          and not outside(os.path.join(folder, d))),
                         key=lambda d: (os.path.islink(os.path.join(folder, d)), d))
        for name in sorted(files):
            rel = prefix + name
            if not reg.is_indexable(name) or _ignored(rel, specs) or outside(os.path.join(folder, name)):
                continue
            path = Path(folder) / name
            try:
                size = path.stat().st_size        # follows the link; broken links fail here
            except OSError:
                continue
            if path.is_file():
                yield SourceFile(rel, path, size)


def is_minified(text: str) -> bool:
    """Generated one-liners: long lines with almost no line breaks."""
    if len(text) < 2000:
        return False
    lines = text.count("\n") + 1
    return len(text) / lines > 300 or max(map(len, text.splitlines())) > 5000 and lines < 20


def read_text(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """The file's text, or None when it is huge, binary, not UTF-8 or minified."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError:
        return None
    return decode_source(data, max_bytes)


def decode_source(data: bytes, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Same checks as `read_text`, on bytes already read."""
    if len(data) > max_bytes or b"\0" in data[:8192]:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if is_minified(text) else text
