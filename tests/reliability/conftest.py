"""Fixtures for the reliability tests: the LSP and service test kits, one tiny engine, one
ready `codeswift lsp` process, and the fuzz sizes (small here; `scripts/fuzz_soak.py` raises
them through the environment and collects the figures the tests record)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_asyncio

HERE = Path(__file__).resolve().parent
for kit in ("lsp", "service"):
    if str(HERE.parent / kit) not in sys.path:
        sys.path.insert(0, str(HERE.parent / kit))

from lsp_testkit import lsp_client, server_command, wait_for_state  # noqa: E402


@pytest.fixture(scope="session")
def engine(tiny_qwen):
    """The tiny model in this process (the HTTP service's engine)."""
    from codeswift.engine import Engine, EngineConfig
    return Engine.load(EngineConfig(model=str(tiny_qwen), device="cpu", dtype="float32", measure_cost=False))


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reliability-workspace")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def lsp(tiny_qwen, workspace):
    """A ready server on the tiny model: no debounce, 8 tokens, no warm-up, no index."""
    cmd = server_command(tiny_qwen, "--debounce-ms", "0", "--max-tokens", "8", "--no-index", "--no-warmup")
    async with lsp_client(cmd, root=workspace) as client:
        st = await wait_for_state(client, "ready", "error")
        assert st["state"] == "ready", st
        yield client
