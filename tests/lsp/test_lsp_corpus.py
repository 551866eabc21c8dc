"""The automatic general corpus: built by the server in the background once it is ready, with
`$/progress`, while completions go on (and stay exact)."""
import asyncio

import pytest
from lsprotocol import types

from lsp_testkit import Docs, end_of, expected_text, lsp_client, server_command, status, wait_for_state

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_corpus_is_built_in_the_background_with_progress(tiny_model, engine, workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("CODESWIFT_CACHE", str(tmp_path / "cache"))      # nothing built yet
    monkeypatch.setenv("CODESWIFT_CORPUS_DELAY_S", "0")
    cmd = server_command(tiny_model, "--no-index", "--debounce-ms", "0", "--max-tokens", "16",
                         "--corpus", "auto", "--corpus-max-mb", "1")
    async with lsp_client(cmd, root=workspace) as client:
        assert (await wait_for_state(client, "ready", "error"))["state"] == "ready"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while not (st := await status(client))["corpus"]:
            assert loop.time() < deadline, "no corpus after 120 s"
            await asyncio.sleep(0.2)
        assert st["state"] == "ready"
        assert "the standard library" in st["corpus"] and " files, " in st["corpus"], st["corpus"]
        corpus = [r for r in client.progress_reports.values() if r and r[0].title == "codeswift: corpus"]
        assert len(corpus) == 1
        begin, *reports, end = corpus[0]
        assert isinstance(begin, types.WorkDoneProgressBegin) and "at most 1 MiB" in begin.message
        assert isinstance(end, types.WorkDoneProgressEnd) and end.message == "done"
        assert reports and all(isinstance(r, types.WorkDoneProgressReport) for r in reports)
        assert any(r.percentage == 100 for r in reports)
        assert (tmp_path / "cache" / "corpus").is_dir()
        # completions with the corpus attached are still the model's own greedy text
        docs = Docs(client, workspace)
        text = "import os\n\n\ndef read_lines(path):\n    with open(path) as f:\n        return"
        uri = docs.open("corpus_case.py", text)
        result = await docs.inline(uri, *end_of(text))
        want = expected_text(engine, text, "", uri, max_tokens=16)
        assert [i.insert_text for i in result.items] == ([want] if want else [])
