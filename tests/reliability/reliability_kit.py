"""Fuzz sizes and figures shared by the reliability tests and `scripts/fuzz_soak.py`."""
from __future__ import annotations

import json
import os


def scale(name: str, default: int) -> int:
    """A fuzz size: `CODESWIFT_SOAK_<NAME>` when set (the soak script), else the CI default."""
    return int(os.environ.get(f"CODESWIFT_SOAK_{name}", default))


def record(name: str, **figures) -> None:
    """Append figures to `$CODESWIFT_SOAK_REPORT` (JSON lines) for the soak script to print."""
    path = os.environ.get("CODESWIFT_SOAK_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": name, **figures}) + "\n")


def build_index(root: str, model: str, out: str) -> None:
    """Child process body: load the tokenizer and build (or update) the index at `out`."""
    from transformers import AutoTokenizer

    from datastore.repo_index import RepoIndex
    RepoIndex.open_or_build(root, AutoTokenizer.from_pretrained(model), out, progress=False)


def indexer():
    """A process factory for `build_index` children: forked from a clean server process (never
    from the test process, whose tokenizer and torch threads do not survive a fork)."""
    import multiprocessing
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["reliability_kit", "transformers", "datastore.repo_index"])
    return ctx
