from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tokenizer(tiny_qwen):
    """The tiny model's real (small, trained) BPE tokenizer."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_qwen)


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create `files` (relative path -> text or bytes) under `root`."""
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


@pytest.fixture
def make_tree(tmp_path):
    return lambda files, name="repo": write_tree(tmp_path / name, files)
