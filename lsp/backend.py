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
        """Load the engine (or reach the server); returns a note for the log. Raises on failure."""
        if self.options.server_url:
            return self._connect()
        from codeswift.engine import Engine, EngineConfig
        o = self.options
        skip = index_unavailable(self.root) if o.index else "index: false"
        cfg = EngineConfig(model=o.model, device=o.device, dtype=o.dtype, backend=o.backend,
                           max_tokens=o.max_tokens, repo_root=None if skip else self.root)
        try:
            engine = Engine.load(cfg)
        except ModelLoadError:
            raise
        except Exception as e:
            if cfg.repo_root is None:
                raise
            skip = f"indexing {self.root} failed ({type(e).__name__}: {e})"
            log.exception("engine with repository index failed; loading without it")
            engine = Engine.load(replace(cfg, repo_root=None))
        b = engine.backend
        self.info = EngineInfo(model=Path(o.model).name if Path(o.model).exists() else o.model,
                               device=getattr(b, "device", ""), dtype=getattr(b, "dtype", ""),
                               backend=getattr(b, "name", o.backend))
        self.engine = engine
        return f"model {o.model} loaded" + (f"; repository index skipped: {skip}" if skip
                                            else f"; indexed {self.root}")

    def _connect(self) -> str:
        from .remote import RemoteEngine
        engine = RemoteEngine(self.options.server_url, self.options.server_token)
        health = engine.health()
        self.info = EngineInfo(model=str(health.get("model", "")) if isinstance(health, dict) else "",
                               backend="remote")
        self.engine = engine
        return f"using {self.options.server_url}"

    # -- live index ----------------------------------------------------------------------
    def update_file(self, path: str, text: str) -> None:
        index = self.repo_index
        if index is not None and self._inside(path):
            index.update_file(path, text)

    def refresh_index(self) -> str:
        index = self.repo_index
        if index is None:
            return "no repository index"
        report = index.refresh(progress=False)
        return f"re-indexed {self.root} ({getattr(report, 'reason', 'done')})"

    def _inside(self, path: str) -> bool:
        if not self.root:
            return False
        try:
            Path(path).resolve().relative_to(Path(self.root).resolve())
            return True
        except ValueError:
            return False
