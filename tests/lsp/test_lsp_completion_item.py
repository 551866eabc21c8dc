"""textDocument/completion: the same suggestion as one item with a text edit at the cursor."""
import pytest
from lsprotocol import types

from lsp_testkit import expected_text

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def complete(client, uri, line, character):
    return await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character)))


async def test_completion_item_has_a_text_edit_at_the_cursor(docs, engine, shared):
    text = "import json\n\ndef load(path):\n    with open(path) as f:\n        data = json.\n    return data\n"
    uri = docs.open("item_basic.py", text)
    line, col = 4, len("        data = json.")
    result = await complete(shared, uri, line, col)
    offset = text.index("json.\n") + len("json.")
    want = expected_text(engine, text[:offset], text[offset:], uri)
    assert want, "the tiny model should suggest something here"
    assert result.is_incomplete is True                           # ask again as the user types
    assert len(result.items) == 1
    item = result.items[0]
    cursor = types.Position(line, col)
    assert item.text_edit == types.TextEdit(range=types.Range(start=cursor, end=cursor), new_text=want)
    assert item.insert_text_format == types.InsertTextFormat.PlainText
    assert item.label and item.detail == "codeswift"


async def test_completion_and_inline_completion_agree(docs, shared):
    text = "def greet(name):\n    return 'hello ' +"
    uri = docs.open("item_agree.py", text)
    inline = await docs.inline(uri, 1, len("    return 'hello ' +"))
    items = (await complete(shared, uri, 1, len("    return 'hello ' +"))).items
    assert [i.text_edit.new_text for i in items] == [i.insert_text for i in inline.items]
