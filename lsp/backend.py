"""Where completions come from: the in-process engine, loaded in the background, or a remote
`codeswift serve` (`serverUrl`); plus the live repository index and the facts `Status` shows.

Every method here blocks; the server calls them from a worker thread.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codeswift.errors import ModelLoadError

from .options import Options

log = logging.getLogger(__name__)

INDEX_MODULES = ("datastore.repo_index", "codeswift.retrieval_sources")


@dataclass
class EngineInfo:
    model: str
    device: str = ""
    dtype: str = ""
    backend: str = ""


def index_unavailable(root: str | None) -> str | None:
    """Why the workspace cannot be indexed (None when it can)."""
    if not root:
        return "no workspace folder"
    path = Path(root)
    if not path.is_dir():
        return f"workspace folder {root} does not exist"
    if path.resolve() in (Path.home().resolve(), Path(path.anchor)):
        return f"workspace folder {root} is a home or root folder"
    for mod in INDEX_MODULES:
        try:
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed"
        except ImportError:
            return f"{mod} is not installed"
    return None


class Backend:
    """The completion engine (anything with `complete(CompletionRequest)`) and what it knows."""

    def __init__(self, options: Options, root: str | None):
        self.options, self.root = options, root
        self.engine: Any = None
        self.info = EngineInfo(model=options.server_url or options.model,
                               backend="remote" if options.server_url else options.backend)

    @property
    def ready(self) -> bool:
        return self.engine is not None

    @property
    def repo_index(self):
        return getattr(self.engine, "repo_index", None)

    def load(self) -> str:
        """Load the engine (or reach the server); returns a note for the log. Raises on failure.
        With an older engine (no `attach_repo`) the workspace is indexed here too."""
        if self.options.server_url:
            return self._connect()
        from codeswift.engine import Engine, EngineConfig
        o = self.options
        skip = self.index_skipped()
        cfg = EngineConfig(model=o.model, device=o.device, dtype=o.dtype, backend=o.backend,
                           max_tokens=o.max_tokens)
        if not skip and not hasattr(Engine, "attach_repo"):
            cfg = replace(cfg, repo_root=self.root)
        try:
            engine = Engine.load(cfg)
        except ModelLoadError:
            raise
        except Exception:
            if cfg.repo_root is None:
                raise
            log.exception("engine with repository index failed; loading without it")
            engine = Engine.load(replace(cfg, repo_root=None))
        _warm_up(engine)
        b = engine.backend
        self.info = EngineInfo(model=Path(o.model).name if Path(o.model).exists() else o.model,
                               device=getattr(b, "device", ""), dtype=getattr(b, "dtype", ""),
                               backend=getattr(b, "name", o.backend))
        self.engine = engine
        return f"model {o.model} loaded" + (f"; no repository index: {skip}" if skip else "")

    def index_skipped(self) -> str | None:
        """Why the workspace will not be indexed (None when it will)."""
        if self.options.server_url:
            return "serverUrl mode (the server indexes its own repositories)"
        return index_unavailable(self.root) if self.options.index else "index is off"

    @property
    def needs_indexing(self) -> bool:
        """True when the engine is loaded and the workspace still has to be indexed."""
        return self.ready and self.repo_index is None and hasattr(self.engine, "attach_repo") \
            and self.index_skipped() is None

    def index(self) -> str:
        """Index the workspace and give it to the engine as a draft source."""
        from datastore.repo_index import RepoIndex
        # The slow build runs outside the engine's lock, so completions go on meanwhile;
        # attach_repo then reloads the saved index (unchanged files are only hashed).
        RepoIndex.open_or_build(self.root, self.engine.tokenizer, progress=False)
        self.engine.attach_repo(self.root)
        return f"indexed {self.root}" + _file_count(self.repo_index)

    def _connect(self) -> str:
        from .remote import RemoteEngine
        engine = RemoteEngine(self.options.server_url, self.options.server_token)
        health = engine.health()
        self.info = EngineInfo(model=str(health.get("model", "")) if isinstance(health, dict) else "",
                               backend="remote")
        self.engine = engine
        return f"using {self.options.server_url}"

    # -- live index ----------------------------------------------------------------------
    def update_file(self, path: str, text: str | None) -> bool:
        """Give the index a file's current text (None: the file is gone). True when indexed."""
        index = self.repo_index
        if index is None or not self._inside(path):
            return False
        if text is None:
            index.remove_file(path)
            return True
        return bool(index.update_file(path, text))

    def refresh_index(self) -> str:
        index = self.repo_index
        if index is None:
            return "no repository index"
        index.refresh(progress=False)
        return f"re-indexed {self.root}" + _file_count(index)

    def _inside(self, path: str) -> bool:
        if not self.root:
            return False
        try:
            Path(path).resolve().relative_to(Path(self.root).resolve())
            return True
        except ValueError:
            return False


def _warm_up(engine) -> None:
    """One tiny completion while still `loading`: the first forward passes pay one-time costs
    (allocation, kernel selection) that would otherwise land on the user's first suggestion."""
    from codeswift.types import CompletionRequest
    try:
        engine.complete(CompletionRequest(prefix="import os\n\n\ndef main():\n    ", max_tokens=4,
                                          stop="line", doc_id="codeswift:warm-up"))
    except Exception:
        log.exception("warm-up completion failed (ignored)")


def _file_count(index) -> str:
    try:
        return f" ({index.stats()['files']} files)"
    except Exception:                               # the datastore's stats() is not a stable API
        return ""
