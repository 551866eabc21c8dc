"""Fixtures: one tiny-model engine per session, a default server per test module."""
from __future__ import annotations

import pytest

from svc_testkit import make_app, serve


@pytest.fixture(scope="session")
def engine(tiny_qwen):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from codeswift.engine import Engine, EngineConfig
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    return Engine.from_hf(model, tok, EngineConfig(measure_cost=False), model_id=str(tiny_qwen))


@pytest.fixture(scope="session")
def expected(engine):
    """expected(**CompletionRequest fields) -> CompletionResult from the in-process engine."""
    from codeswift.types import CompletionRequest

    def run(**fields):
        return engine.complete(CompletionRequest(**fields))
    return run


@pytest.fixture(scope="module")
def base_url(engine):
    """A default server (no token, loopback) shared by a test module."""
    with serve(make_app(engine)) as url:
        yield url
