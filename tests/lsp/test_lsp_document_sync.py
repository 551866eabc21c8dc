"""Incremental document sync: the server's mirror, LSP positions, and completions that use
unsaved text."""
import pytest
from lsprotocol import types

from lsp.documents import ALIGN_LINES, MAX_PREFIX_CHARS, BadPosition, Document
from lsp_testkit import end_of, expected_text

on_shared_loop = pytest.mark.asyncio(loop_scope="session")

P = types.Position


def change(start, end, text):
    return types.TextDocumentContentChangePartial(range=types.Range(start=P(*start), end=P(*end)), text=text)


# -- the mirror (pure) --------------------------------------------------------------------

def test_incremental_edits_apply_in_order():
    doc = Document("file:///a.py", "def f():\n    pass\n")
    doc.apply(change((1, 4), (1, 8), "return 1"))
    doc.apply(change((0, 4), (0, 5), "g"))
    doc.apply(change((2, 0), (2, 0), "x = g()\n"))
    assert doc.text == "def g():\n    return 1\nx = g()\n"
    doc.apply(types.TextDocumentContentChangeWholeDocument(text="new"))
    assert doc.text == "new"


def test_positions_count_utf16_units_and_all_line_breaks():
    doc = Document("file:///a.py", "a😀b\r\nc\rd\u2028e\n")
    assert doc.line_starts() == [0, 5, 7, 11]              # \u2028 is not an LSP line break
    assert doc.offset_at(P(0, 3)) == 2                     # 😀 is two UTF-16 units
    assert doc.offset_at(P(0, 4)) == 3
    assert doc.position_at(3) == P(0, 4)
    assert doc.offset_at(P(2, 3)) == 10
    assert doc.offset_at(P(0, 99)) == 3                    # past the end of a line: its end (LSP)
    with pytest.raises(BadPosition):
        doc.offset_at(P(4, 0))
    doc8 = Document("file:///a.py", "é=1", encoding=types.PositionEncodingKind.Utf8)
    assert doc8.offset_at(P(0, 2)) == 1


def test_edit_ranges_past_the_end_are_clamped():
    doc = Document("file:///a.py", "x\n")
    doc.apply(change((9, 0), (9, 0), "y"))
    assert doc.text == "x\ny"


def test_cursor_window_start_is_aligned_and_stable_while_typing():
    text = "".join(f"line_{i:05d} = {i}\n" for i in range(3000))
    doc = Document("file:///big.py", text)
    prefix, suffix = doc.cursor_window(len(text) - 100)
    assert len(prefix) <= MAX_PREFIX_CHARS
    first_line = int(prefix.split("\n", 1)[0][5:10])
    assert first_line % ALIGN_LINES == 0
    prefix2, _ = doc.cursor_window(len(text) - 99)
    assert prefix2.startswith(prefix)                      # one more typed char: same start
    assert suffix == text[len(text) - 100:]


def test_unusable_documents():
    assert Document("file:///b.bin", "a\x00b").unusable_reason().startswith("binary")
    assert "too large" in Document("file:///c.py", "x" * 3_000_000).unusable_reason()
    assert Document("file:///d.py", "x = 1").unusable_reason() is None


# -- end to end ---------------------------------------------------------------------------

@on_shared_loop
async def test_completion_uses_unsaved_incremental_edits(docs, engine):
    uri = docs.open("sync_edit.py", "def area(w, h):\n    pass\n")
    docs.edit(uri, (1, 4), (1, 8), "return w *")                      # replace 'pass'
    docs.edit(uri, (0, 4), (0, 8), "rect_area")                       # rename the function
    docs.edit(uri, (2, 0), (2, 0), "\n# 😀 unicode\n")                 # insert lines after
    text = "def rect_area(w, h):\n    return w *\n\n# 😀 unicode\n"
    result = await docs.inline(uri, 1, 14)
    offset = text.index(" *\n") + 2
    want = expected_text(engine, text[:offset], text[offset:], uri)
    assert [i.insert_text for i in result.items] == ([want] if want else [])


@on_shared_loop
async def test_multiple_changes_in_one_notification(docs, engine, shared):
    uri = docs.open("sync_multi.py", "a = 1\nb = 2\n")
    docs.versions[uri] += 1
    shared.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=docs.versions[uri]),
        content_changes=[change((0, 4), (0, 5), "10"), change((1, 5), (1, 5), " + a"),
                         change((2, 0), (2, 0), "c = a +")]))
    text = "a = 10\nb = 2 + a\nc = a +"
    result = await docs.inline(uri, *end_of(text))
    want = expected_text(engine, text, "", uri)
    assert [i.insert_text for i in result.items] == ([want] if want else [])


@on_shared_loop
async def test_closed_document_is_forgotten(docs, shared):
    uri = docs.open("sync_closed.py", "x = 1\n")
    shared.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    with pytest.raises(Exception, match="unknown document"):
        await docs.inline(uri, 0, 5)
