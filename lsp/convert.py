"""Pure conversions between LSP/JSON values and the server's own (suggestions, params)."""
from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from .completer import Suggestion

log = logging.getLogger(__name__)

ACCEPTED_COMMAND = "codeswift.accepted"


def inline_item(s: Suggestion, uri: str, pos: types.Position) -> types.InlineCompletionItem:
    return types.InlineCompletionItem(
        insert_text=s.text, range=types.Range(start=pos, end=pos),
        command=types.Command(title="codeswift accepted", command=ACCEPTED_COMMAND, arguments=[uri, s.id]))


def completion_item(s: Suggestion, pos: types.Position) -> types.CompletionItem:
    lines = [l for l in s.text.split("\n") if l.strip()]
    label = lines[0].strip() if lines else s.text
    if len(label) > 60 or len(lines) > 1:
        label = label[:60] + "…"
    return types.CompletionItem(
        label=label, kind=types.CompletionItemKind.Text, detail="codeswift",
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{s.text}\n```"),
        insert_text_format=types.InsertTextFormat.PlainText, sort_text="0", preselect=True,
        text_edit=types.TextEdit(range=types.Range(start=pos, end=pos), new_text=s.text),
        data={"id": s.id})


def plain(obj: Any) -> Any:
    """Custom-method params as plain JSON values (pygls hands them over as namedtuples)."""
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def telemetry_id(params: Any) -> str | None:
    """The item id of a shown/accepted notification, or None when it is malformed."""
    if isinstance(params, dict) and isinstance(params.get("uri"), str) and \
            isinstance(params.get("id"), (str, int)) and not isinstance(params.get("id"), bool):
        return str(params["id"])
    log.warning("ignoring malformed telemetry: %r", params)
    return None


def workspace_root(params: types.InitializeParams) -> str | None:
    """The first workspace folder (or the deprecated rootUri/rootPath) as a local path."""
    for uri in [f.uri for f in params.workspace_folders or []] + [params.root_uri]:
        if uri and uri.startswith("file:"):
            return to_fs_path(uri)
    return params.root_path
