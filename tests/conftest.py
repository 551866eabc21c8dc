import os

import pytest

os.environ.setdefault("CODESWIFT_CACHE", "/tmp/codeswift-test-cache")
# Servers started by tests build no automatic stdlib corpus unless a test asks (--corpus auto).
os.environ.setdefault("CODESWIFT_CORPUS", "off")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny random models of several architectures, built once per test session."""
    from codeswift.testing import make_tiny_model
    root = tmp_path_factory.mktemp("models")
    return {arch: make_tiny_model(root / arch, arch) for arch in ("qwen2", "llama", "gpt2")}


@pytest.fixture(scope="session")
def tiny_qwen(tiny_models):
    return tiny_models["qwen2"]
