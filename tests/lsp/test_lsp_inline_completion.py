"""textDocument/inlineCompletion end to end: exact text and range, the accepted command."""
import pytest
from lsprotocol import types

from lsp_testkit import end_of, expected_text, status

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_capabilities_advertise_inline_completion_and_incremental_sync(shared):
    caps = shared.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert caps.text_document_sync.open_close and caps.text_document_sync.save
    assert shared.init_result.server_info.name == "codeswift"
    st = await status(shared)
    assert (st["state"], st["model"], st["device"], st["dtype"]) == ("ready", "qwen2", "cpu", "float32")


async def test_inline_completion_at_end_of_line(docs, engine):
    text = "import os\n\ndef read(path):\n    with open(path) as f:\n        return f.re"
    uri = docs.open("inline_eol.py", text)
    line, col = end_of(text)
    result = await docs.inline(uri, line, col)
    want = expected_text(engine, text, "", uri)
    assert want, "the tiny model should suggest something here"
    assert len(result.items) == 1
    item = result.items[0]
    assert item.insert_text == want
    assert item.range == types.Range(start=types.Position(line, col), end=types.Position(line, col))
    assert item.command.command == "codeswift.accepted"
    assert item.command.arguments[0] == uri and isinstance(item.command.arguments[1], str)


async def test_inline_completion_in_the_middle_of_a_file(docs, engine):
    text = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n\nprint(add(1, 2))\n"
    uri = docs.open("inline_mid.py", text)
    offset = text.index("    \n\nprint") + 4
    result = await docs.inline(uri, 5, 4)
    want = expected_text(engine, text[:offset], text[offset:], uri)
    assert [i.insert_text for i in result.items] == ([want] if want else [])
    for item in result.items:
        assert item.range.start == item.range.end == types.Position(5, 4)
