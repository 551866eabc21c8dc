"""Cancel storms through the real client: (completion, immediate cancel, new completion) cycles.
Every request is answered (a result or RequestCancelled), the answers stay right, and the
server's memory stays bounded."""
import asyncio

import psutil
import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from lsp_testkit import Docs, end_of, expected_text
from reliability_kit import record, scale

pytestmark = pytest.mark.asyncio(loop_scope="session")
CYCLES = scale("CANCEL_CYCLES", 50)
TEXT = "def storm(a, b):\n    total = a + b\n    "


def inline(client, uri, pos, msg_id):
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(*pos),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))
    return asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id))


async def test_cancel_storm_keeps_answers_right_and_memory_bounded(lsp, workspace, engine):
    docs = Docs(lsp, workspace)
    uri = docs.open("storm.py", TEXT)
    server = psutil.Process(lsp._server.pid)
    rss, cancelled, line = [], 0, "    "
    for cycle in range(CYCLES):
        new_line = f"    v{cycle} = total *"                # another prompt each cycle: the model runs
        docs.edit(uri, (2, 0), (2, len(line)), new_line)
        line, text = new_line, TEXT[:TEXT.rindex("\n") + 1] + new_line
        doomed = inline(lsp, uri, end_of(text), f"storm-{cycle}")
        await asyncio.sleep(0)
        lsp.cancel_request(types.CancelParams(id=f"storm-{cycle}"))
        fresh = await asyncio.wait_for(inline(lsp, uri, end_of(text), f"storm-{cycle}-fresh"), 60)
        try:
            await asyncio.wait_for(doomed, 60)
        except JsonRpcRequestCancelled:
            cancelled += 1
        if cycle % 10 == 0:
            want = expected_text(engine, text, "", uri, max_tokens=8)
            assert [i.insert_text for i in fresh.items] == ([want] if want else [])
        if cycle % max(1, CYCLES // 20) == 0:
            rss.append(server.memory_info().rss)
    settled = rss[len(rss) // 4:]                     # after the first completions' one-time costs
    growth = max(settled) - min(settled)
    record("cancel_storm", cycles=CYCLES, cancelled=cancelled, rss_mb=[round(r / 2**20, 1) for r in rss],
           growth_mb=round(growth / 2**20, 1))
    assert cancelled > 0
    assert growth < 64 * 2**20, [r // 2**20 for r in rss]
