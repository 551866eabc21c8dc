"""initialize: typed options with defaults and warnings, background loading with progress,
empty results (never errors, never blocking) before the model is ready."""
from pathlib import Path

import pytest
from lsprotocol import types

from lsp.host import index_unavailable
from lsp.options import Options, parse_options
from lsp_testkit import (CONFIGURED_DEBOUNCE_MS, CONFIGURED_MAX_TOKENS, EARLY_TEXT, end_of, expected_text, lsp_client,
                         server_command, wait_for_state)

on_shared_loop = pytest.mark.asyncio(loop_scope="session")


def test_options_parse_with_defaults_and_warnings():
    opts, warnings = parse_options({"maxTokens": 32, "debounceMs": 0, "serverUrl": "http://h:8080/",
                                    "device": "cuda:1", "index": False, "future": 1})
    assert opts == Options(max_tokens=32, debounce_ms=0, server_url="http://h:8080", device="cuda:1", index=False)
    assert warnings == []
    opts, warnings = parse_options({"maxTokens": True, "dtype": "fp8", "serverUrl": "ftp://x", "model": ""},
                                   Options(model="m"))
    assert opts == Options(model="m")
    assert [w.split(" ")[1] for w in warnings] == ["initializationOptions.maxTokens", "initializationOptions.dtype",
                                                   "initializationOptions.serverUrl", "initializationOptions.model"]
    opts, warnings = parse_options({"temperature": 0.7, "topP": 0.9, "seed": 3})
    assert (opts.temperature, opts.top_p, opts.seed, warnings) == (0.7, 0.9, 3, [])
    opts, warnings = parse_options({"temperature": -1, "topP": 0, "seed": "x"})
    assert (opts.temperature, opts.top_p, opts.seed) == (0.0, 1.0, None) and len(warnings) == 3
    assert "0..5" in warnings[0] and "(0, 1]" in warnings[1]
    assert parse_options(None) == (Options(), [])
    assert parse_options([1, 2])[1][0].startswith("codeswift: initializationOptions must be an object")


def test_index_is_skipped_with_a_reason(tmp_path):
    assert index_unavailable(None) == "no workspace folder"
    assert "does not exist" in index_unavailable(str(tmp_path / "missing"))
    assert "home" in index_unavailable(str(Path.home()))


@on_shared_loop
async def test_bad_option_values_warn_and_fall_back_to_defaults(configured):
    warned = [m.message for m in configured.messages if m.type == types.MessageType.Warning]
    assert len(warned) == 3, warned                         # the unknown key "colour" is only logged
    for key, default in (("maxTokens", CONFIGURED_MAX_TOKENS), ("debounceMs", CONFIGURED_DEBOUNCE_MS),
                         ("speculative", True)):
        assert any(f"initializationOptions.{key}" in w and w.endswith(f"using {default!r}") for w in warned), key


@on_shared_loop
async def test_requests_before_the_model_is_ready_get_an_empty_result(configured):
    assert configured.early["status"]["state"] == "loading", "the model loaded before the first request"
    assert len(configured.early["result"].items) == 0


@on_shared_loop
async def test_loading_reports_progress_and_status(configured):
    reports = [r for r in configured.progress_reports.values() if r]
    assert reports and isinstance(reports[0][0], types.WorkDoneProgressBegin)
    assert reports[0][0].title == "codeswift: loading model"
    assert isinstance(reports[0][-1], types.WorkDoneProgressEnd) and reports[0][-1].message == "ready"
    states = [n["state"] for n in configured.status_notifications]
    assert states[0] == "loading" and "ready" in states
    assert configured.status_notifications[-1]["model"] == "qwen2"          # initializationOptions won


@on_shared_loop
async def test_completes_once_ready_with_the_fallback_max_tokens(configured, engine):
    uri = configured.early["uri"]
    result = await configured.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(*end_of(EARLY_TEXT)),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    want = expected_text(engine, EARLY_TEXT, "", uri, max_tokens=CONFIGURED_MAX_TOKENS)
    assert [i.insert_text for i in result.items] == ([want] if want else [])


@on_shared_loop
async def test_model_that_cannot_load_is_an_error_state_not_a_crash(workspace):
    async with lsp_client(server_command("/nonexistent/model", "--no-index"), root=workspace) as client:
        st = await wait_for_state(client, "error", "ready")
        assert st["state"] == "error" and "unknown model '/nonexistent/model'" in st["message"]
        assert any(m.type == types.MessageType.Error and "/nonexistent/model" in m.message
                   for m in client.messages)
        uri = (workspace / "init_error.py").as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text="x = ")))
        result = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(0, 4)))
        assert len(result.items) == 0
