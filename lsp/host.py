"""The engine host: where completions come from (the in-process engine, loaded in the
background, or a remote `codeswift serve` with `serverUrl`, both a `CompletionEngine`), plus
the live repository index and the facts `codeswift/status` shows.

Every method here blocks; the server calls them from its background thread.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import replace
from pathlib import Path

from codeswift.types import CompletionEngine, CompletionRequest, EngineInfo

from .options import Options

log = logging.getLogger(__name__)

INDEX_MODULES = ("datastore.repo_index", "codeswift.retrieval_sources")


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


class Host:
    """Holds the engine (a `CompletionEngine`: in process, or remote) once it is loaded, and
    what the server shows and indexes around it."""

    def __init__(self, options: Options, root: str | None):
        self.options, self.root = options, root
        self.engine: CompletionEngine | None = None
        self.info = EngineInfo(model=options.server_url or options.model,
                               backend="remote" if options.server_url else options.backend)

    @property
    def ready(self) -> bool:
        return self.engine is not None

    @property
    def repo_index(self):
        return None if self.engine is None else self.engine.repo_index

    def load(self) -> str:
        """Load the engine (or reach the server); returns a note for the log. Raises on failure."""
        if self.options.server_url:
            self.engine = self._connect()
            return f"using {self.options.server_url}"
        self.engine = self._load_local()
        why = self.index_skipped()
        return f"model {self.options.model} loaded" + (f"; no repository index: {why}" if why else "")

    def _load_local(self) -> CompletionEngine:
        from codeswift.engine import Engine, EngineConfig
        o = self.options
        from codeswift.std_corpus import parse_setting
        engine = Engine.load(EngineConfig(model=o.model, device=o.device, dtype=o.dtype,
                                          backend=o.backend, max_tokens=o.max_tokens,
                                          corpus_dir=parse_setting(o.corpus)))
        _warm_up(engine)
        # The name the user configured, not the resolved path, is what the status bar shows.
        self.info = replace(engine.info, model=Path(o.model).name if Path(o.model).exists() else o.model)
        return engine

    def _connect(self) -> CompletionEngine:
        from .remote import RemoteEngine
        engine = RemoteEngine(self.options.server_url, self.options.server_token)
        engine.health()
        self.info = engine.info
        return engine

    def index_skipped(self) -> str | None:
        """Why the workspace will not be indexed (None when it will)."""
        if self.options.server_url:
            return "serverUrl mode (the server indexes its own repositories)"
        return index_unavailable(self.root) if self.options.index else "index is off"

    @property
    def needs_indexing(self) -> bool:
        """True when the engine is loaded and the workspace still has to be indexed."""
        return self.ready and self.repo_index is None and self.index_skipped() is None

    def index(self) -> str:
        """Index the workspace and give it to the engine as a draft source (completions go on
        meanwhile, without repository drafts)."""
        self.engine.attach_repo(self.root)
        return f"indexed {self.root}" + _file_count(self.repo_index)

    # -- general corpus ------------------------------------------------------------------
    @property
    def needs_corpus(self) -> bool:
        """True when the automatic corpus should be built or brought up to date here."""
        return (self.ready and not self.options.server_url and self.options.corpus.strip() == "auto"
                and hasattr(self.engine, "attach_corpus"))

    def corpus_plan(self):
        from codeswift.std_corpus import corpus_plan
        return corpus_plan(self.root if index_unavailable(self.root) is None else None,
                           self.options.corpus_max_mb)

    def build_corpus(self, plan, listener=None) -> str:
        """Build or update the automatic corpus (`plan`) and give it to the engine."""
        from codeswift.std_corpus import update_engine
        return f"corpus of {plan.describe()}: {update_engine(self.engine, plan, listener)}"

    # -- live index ----------------------------------------------------------------------
    def update_file(self, path: str, text: str | None) -> bool:
        """Give the index a file's current text (None: the file is gone). True when indexed."""
        index = self.repo_index
        if index is None or not self.inside(path):
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

    def inside(self, path: str) -> bool:
        """True when `path` (symlinks followed) is in the workspace folder."""
        if not self.root:
            return False
        try:
            Path(path).resolve().relative_to(Path(self.root).resolve())
            return True
        except ValueError:
            return False


def _warm_up(engine: CompletionEngine) -> None:
    """One tiny completion while still `loading`: the first forward passes pay one-time costs
    (allocation, kernel selection) that would otherwise land on the user's first suggestion."""
    try:
        engine.complete(CompletionRequest(prefix="import os\n\n\ndef main():\n    ", max_tokens=4,
                                          stop="line", doc_id="codeswift:warm-up"))
    except Exception:
        log.exception("warm-up completion failed (ignored)")


def _file_count(index) -> str:
    return "" if index is None else f" ({index.stats()['files']} files)"
