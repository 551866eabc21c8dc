"""Repository index: built in the background after the model loads, kept up to date with
unsaved edits (didChange, in memory) and saves, rebuilt on codeswift/reindex."""
import asyncio

import pytest
from lsprotocol import types

from lsp_testkit import Docs, end_of, expected_text, request, status

pytestmark = pytest.mark.asyncio(loop_scope="session")


def traces(client, needle):
    return [m.message for m in client.log_messages if needle in m.message]


async def until(predicate, timeout=30.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_workspace_is_indexed_after_loading(configured, project):
    assert (project / ".codeswift" / "repo-index.npz").is_file()
    states = [n["state"] for n in configured.status_notifications]
    assert states.index("loading") < states.index("indexing") < len(states) - 1 - states[::-1].index("ready")
    titles = [r[0].title for r in configured.progress_reports.values() if r]
    assert titles[:2] == ["codeswift: loading model", "codeswift: indexing"]
    assert any(f"indexed {project}" in m.message for m in configured.log_messages)


async def test_unsaved_edits_and_saves_reach_the_index(configured, project, engine):
    docs = Docs(configured, project)
    path = project / "geometry" / "shapes.py"
    text = path.read_text()
    uri = docs.open("geometry/shapes.py", text)
    docs.edit(uri, end_of(text), end_of(text), "\n\ndef volume(w, h, d):\n    return area(w, h) *")
    edited = text + "\n\ndef volume(w, h, d):\n    return area(w, h) *"
    await until(lambda: traces(configured, f"index: {path} updated ({len(edited)})"))

    configured.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    await until(lambda: len(traces(configured, f"index: {path} updated ({len(edited)})")) == 2)

    # Completions stay exact with repository drafts in play (lossless).
    result = await docs.inline(uri, *end_of(edited))
    want = expected_text(engine, edited, "", uri, max_tokens=64)
    assert [i.insert_text for i in result.items] == ([want] if want else [])

    configured.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))            # back to the file on disk
    await until(lambda: traces(configured, f"index: {path} updated ({len(text)})"))


async def test_reindex_request(configured):
    seen = len(configured.status_notifications)
    assert await request(configured, "codeswift/reindex") == {"ok": True}
    states = [n["state"] for n in configured.status_notifications[seen:]]
    assert states == ["indexing", "ready"]
    assert (await status(configured))["state"] == "ready"
