"""Repositories that clients register by path, confined to the server's `--root` folders.

A path is accepted only if its fully resolved form (symlinks followed, `..` collapsed) lies
under a resolved root, and no symlink inside it points outside the roots, so indexing it
never reads a file elsewhere. When the datastore's `RepoIndex` is importable the repository
is indexed and its snippets join the prompt; otherwise the path is only validated and kept.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from codeswift.types import CompletionRequest, Snippet

log = logging.getLogger("codeswift.service")

# Folders the indexer never enters (mirrors datastore.walker.ALWAYS_IGNORED), so links in
# them cannot be followed and need no check.
_SKIPPED_DIRS = {".git", ".hg", ".svn", ".codeswift", "node_modules", "__pycache__", ".venv",
                 "venv", ".tox", ".mypy_cache", ".pytest_cache"}


class PathRejected(Exception):
    """The path is outside the allowed roots (HTTP 403)."""


class RepoPathError(ValueError):
    """The path is inside the roots but unusable: missing, not a folder (HTTP 400)."""


@dataclass
class Repo:
    repo_id: str
    path: Path
    index: Any = None
    index_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"repo_id": self.repo_id, "path": str(self.path), "indexed": self.index is not None}
        if self.index_error:
            out["index_error"] = self.index_error
        return out


class RepoRegistry:
    def __init__(self, roots: Sequence[str | os.PathLike]):
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        self._repos: dict[str, Repo] = {}
        self._lock = threading.Lock()

    def resolve(self, path: str) -> Path:
        """The real folder for `path`, or PathRejected / RepoPathError. Relative paths are
        taken relative to the first root."""
        if not self.roots:
            raise PathRejected("repository registration is disabled: the server has no --root")
        if "\0" in path:
            raise RepoPathError("path contains a NUL byte")
        real = Path(os.path.realpath(self.roots[0] / path))      # absolute `path` wins the join
        if not self._inside(real):
            raise PathRejected(f"{path} is outside the server's allowed roots")
        if not real.is_dir():
            raise RepoPathError(f"{path} is not a folder")
        link = self._escaping_link(real)
        if link is not None:
            raise PathRejected(f"{link} is a symlink to a place outside the server's allowed roots")
        return real

    def register(self, path: str, tokenizer) -> Repo:
        """Validate, index once (blocking: call from a worker thread) and remember."""
        real = self.resolve(path)
        repo_id = hashlib.sha256(str(real).encode()).hexdigest()[:16]
        with self._lock:
            if repo_id in self._repos:
                return self._repos[repo_id]
        repo = Repo(repo_id, real)
        try:
            repo.index = _open_index(real, tokenizer)
        except Exception as e:                      # a broken index must not cost the server
            log.exception("indexing %s failed", real)
            repo.index_error = f"{type(e).__name__}: {e}"
        with self._lock:
            return self._repos.setdefault(repo_id, repo)

    def get(self, repo_id: str) -> Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def all(self) -> list[Repo]:
        with self._lock:
            return list(self._repos.values())

    def _inside(self, real: Path) -> bool:
        return any(real == r or real.is_relative_to(r) for r in self.roots)

    def _escaping_link(self, top: Path) -> Path | None:
        # Walk as the indexer does (following links, each folder once) and check every link.
        seen: set[tuple[int, int]] = set()
        for folder, dirs, files in os.walk(top, followlinks=True):
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
            for name in dirs + files:
                p = os.path.join(folder, name)
                if os.path.islink(p) and not self._inside(Path(os.path.realpath(p))):
                    return Path(p)
        return None


def _open_index(path: Path, tokenizer):
    try:
        from datastore.repo_index import RepoIndex
    except ModuleNotFoundError as e:
        if e.name not in ("datastore", "datastore.repo_index"):
            raise
        return None
    return RepoIndex.open_or_build(str(path), tokenizer, progress=False)


def repo_snippets(repo: Repo, req: CompletionRequest, k: int = 4) -> list[Snippet]:
    """Chunks of the repository that define names used around the cursor ([] without an
    index); the request's own file is excluded. Blocking: call from a worker thread."""
    if repo.index is None:
        return []
    around = req.prefix.splitlines()[-40:] + req.suffix.splitlines()[:10]
    try:
        hits = repo.index.chunks_for("\n".join(around), k=k, exclude_path=req.path or None)
    except Exception:
        log.exception("repository snippets failed for %s", repo.path)
        return []
    return [Snippet(h.path, h.text) for h in hits if h.text]
