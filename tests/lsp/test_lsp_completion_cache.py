"""Completion cache: typing along a suggestion, or asking again at the same place, reuses it."""
import pytest

from codeswift.completion_cache import CompletionCache
from lsp_testkit import end_of, expected_text, status

on_shared_loop = pytest.mark.asyncio(loop_scope="session")


def test_cache_serves_the_rest_while_typing_along():
    c = CompletionCache()
    c.put("u", "x = ", "\n", "foo(1)")
    assert c.get("u", "x = ", "\n") == "foo(1)"                    # same place
    assert c.get("u", "x = fo", "\n") == "o(1)"                    # typed along
    assert c.get("u", "x = foo(1)", "\n") is None                  # typed all of it
    assert c.get("u", "x = fa", "\n") is None                      # typed something else
    assert c.get("u", "x = f", "\n y") is None                     # suffix changed
    assert c.get("other", "x = ", "\n") is None


def test_cache_remembers_empty_results_and_bounds_its_size():
    c = CompletionCache(per_document=2, documents=2)
    c.put("u", "a", "", "")
    assert c.get("u", "a", "") == ""
    c.put("u", "b", "", "1")
    c.put("u", "c", "", "2")                                      # pushes out "a"
    assert c.get("u", "a", "") is None and c.get("u", "b", "") == "1"
    c.put("v", "a", "", "3")
    c.put("w", "a", "", "4")                                      # pushes out "u" (least recent)
    assert c.get("u", "c", "") is None and c.get("w", "a", "") == "4"


@on_shared_loop
async def test_typing_along_a_suggestion_hits_the_cache_without_verify_cached(tiny_model, workspace, engine):
    """verifyCached false (the llama.vscode habit): the rest of the suggestion is shown at once."""
    from lsp_testkit import Docs, lsp_client, server_command, wait_for_state
    cmd = server_command(tiny_model, "--debounce-ms", "0", "--max-tokens", "16", "--no-index")
    async with lsp_client(cmd, init_options={"verifyCached": False}, root=workspace) as client:
        assert (await wait_for_state(client, "ready", "error"))["state"] == "ready"
        await _type_along_from_cache(Docs(client, workspace), engine, client)


async def _type_along_from_cache(docs, engine, shared):
    text = "def total(items):\n    s = 0\n    for it in items:\n        s +="
    uri = docs.open("cache_typing.py", text)
    first = await docs.inline(uri, *end_of(text))
    want = expected_text(engine, text, "", uri)
    assert [i.insert_text for i in first.items] == [want]
    assert len(want) >= 3, "need a few characters to type along"

    before = await status(shared)
    line, col = end_of(text)
    for n in (1, 2, 3):                                           # type the suggestion, one char at a time
        docs.edit(uri, (line, col + n - 1), (line, col + n - 1), want[n - 1])
        again = await docs.inline(uri, line, col + n)
        assert [i.insert_text for i in again.items] == ([want[n:]] if want[n:] else [])
        assert again.items[0].range.start.character == col + n
    after = await status(shared)
    assert after["stats"]["completions"] == before["stats"]["completions"] + 3
    assert after["stats"]["lastTokens"] == 0                      # no model run for the last one
    assert after["stats"]["cacheHitRate"] > (before["stats"]["cacheHitRate"] or 0)


@on_shared_loop
async def test_asking_again_at_the_same_place_hits_the_cache(docs, engine, shared):
    text = "class Point:\n    def __init__(self, x, y):\n        self.x ="
    uri = docs.open("cache_same.py", text)
    first = await docs.inline(uri, *end_of(text))
    runs = (await status(shared))["stats"]
    second = await docs.inline(uri, *end_of(text))
    assert [i.insert_text for i in second.items] == [i.insert_text for i in first.items]
    assert [i.insert_text for i in first.items] == [expected_text(engine, text, "", uri)]
    assert second.items[0].command.arguments[1] != first.items[0].command.arguments[1]   # a new item id
    stats = (await status(shared))["stats"]
    assert stats["completions"] == runs["completions"] + 1 and stats["lastTokens"] == 0


@on_shared_loop
async def test_verify_cached_answers_typing_along_with_the_model_not_the_cache(tiny_model, workspace, engine):
    """verifyCached (the default): typing along a suggestion runs the engine again (its first
    draft is the rest of the last answer), so what is shown is exactly the model's answer at the
    new cursor."""
    from lsp_testkit import Docs, lsp_client, server_command, wait_for_state
    cmd = server_command(tiny_model, "--debounce-ms", "0", "--max-tokens", "16", "--no-index")
    async with lsp_client(cmd, root=workspace) as client:
        assert (await wait_for_state(client, "ready", "error"))["state"] == "ready"
        docs = Docs(client, workspace)
        text = "def total(items):\n    s = 0\n    for it in items:\n        s +="
        uri = docs.open("cache_verify.py", text)
        first = await docs.inline(uri, *end_of(text))
        want = expected_text(engine, text, "", uri)
        assert [i.insert_text for i in first.items] == [want] and len(want) >= 2
        line, col = end_of(text)
        docs.edit(uri, (line, col), (line, col), want[0])
        before = (await status(client))["stats"]
        again = await docs.inline(uri, line, col + 1)
        after = (await status(client))["stats"]
        assert after["lastTokens"] > 0                                # the model ran, not the cache
        assert after["cacheHitRate"] <= (before["cacheHitRate"] or 0)
        fresh = expected_text(engine, text + want[0], "", uri)
        assert [i.insert_text for i in again.items] == ([fresh] if fresh else [])
