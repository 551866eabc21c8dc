"""Fixtures for the LSP tests: one tiny model, an in-process engine for expected texts, and
real `codeswift lsp` processes driven by pytest-lsp's client.

Servers are expensive to start here (importing torch takes seconds on a loaded 2-core box),
so one ready server is shared by the whole session; tests that need other options start their
own. Every test uses its own document URI, so the shared server's state never leaks between
tests (only its counters, which tests compare before/after).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from lsprotocol import types

from lsp_testkit import (CONFIGURED_DEBOUNCE_MS, CONFIGURED_MAX_TOKENS, EARLY_TEXT, SHARED_MAX_TOKENS, Docs, end_of,
                         lsp_client, server_command, status, wait_for_state)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Qwen2 model with FIM tokens (deterministic gibberish)."""
    from codeswift.testing import make_tiny_model
    return make_tiny_model(tmp_path_factory.mktemp("lsp-models") / "qwen2", "qwen2")


@pytest.fixture(scope="session")
def engine(tiny_model):
    """The same model in this process: what the server must answer, computed directly."""
    from codeswift.engine import Engine, EngineConfig
    return Engine.load(EngineConfig(model=str(tiny_model), device="cpu", dtype="float32", measure_cost=False))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workspace")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared(tiny_model, workspace):
    """A ready server: tiny model, no debounce, 16 tokens, no repository index."""
    cmd = server_command(tiny_model, "--debounce-ms", "0", "--max-tokens", str(SHARED_MAX_TOKENS), "--no-index")
    async with lsp_client(cmd, root=workspace) as client:
        st = await wait_for_state(client, "ready", "error")
        assert st["state"] == "ready", st
        yield client


@pytest.fixture
def docs(shared, workspace) -> Docs:
    return Docs(shared, workspace)


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A small repository on disk for the configured server to index."""
    root = tmp_path_factory.mktemp("project")
    (root / "geometry").mkdir()
    (root / "geometry" / "__init__.py").write_text("from .shapes import area, perimeter\n")
    (root / "geometry" / "shapes.py").write_text(
        "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n")
    (root / "README.md").write_text("# geometry\n")
    return root


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def configured(tiny_model, workspace, project):
    """A server configured through initializationOptions, some of them bad; 300 ms debounce,
    64 tokens, verbose tracing, indexing `project`. `client.early` records what it answered
    while still loading."""
    options = {"model": str(tiny_model), "device": "cpu", "dtype": "float32",   # override the CLI's model
               "maxTokens": "lots", "debounceMs": -5, "speculative": "yes", "colour": "blue"}
    cmd = server_command("/nonexistent/model", "--debounce-ms", str(CONFIGURED_DEBOUNCE_MS),
                         "--max-tokens", str(CONFIGURED_MAX_TOKENS))
    async with lsp_client(cmd, init_options=options, root=project, trace=types.TraceValue.Verbose) as client:
        docs = Docs(client, workspace)
        uri = docs.open("init_early.py", EARLY_TEXT)
        early = await docs.inline(uri, *end_of(EARLY_TEXT))
        client.early = {"uri": uri, "result": early, "status": await status(client)}
        assert (await wait_for_state(client, "ready", "error"))["state"] == "ready"
        yield client
