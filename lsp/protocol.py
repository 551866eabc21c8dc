"""pygls protocol with two changes for a server that must never hang or lose a request.

- A request whose params do not match the LSP schema gets an InvalidParams error reply
  (pygls would log it and never answer, leaving the client waiting).
- A codeswift/* request without `params` (JSON-RPC allows it) is read as params null.
- Open documents are mirrored by `lsp.documents` (exact LSP line rules, strict positions),
  so pygls' own copy of each document is not kept; the user handlers still run.
"""
from __future__ import annotations

import logging
from typing import Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

log = logging.getLogger(__name__)


@attrs.define
class InvalidRequest:
    """A request that could not be parsed into its LSP type; answered with `error`."""
    id: Any
    method: str
    error: JsonRpcException
    jsonrpc: str = "2.0"


def _user_handler_only(method: str):
    @lsp_method(method)
    def handler(self, params):
        if (user_handler := self.fm.features.get(method)) is not None:
            yield user_handler, (params,), None
    return handler


class CodeswiftProtocol(LanguageServerProtocol):
    lsp_text_document__did_open = _user_handler_only(types.TEXT_DOCUMENT_DID_OPEN)
    lsp_text_document__did_change = _user_handler_only(types.TEXT_DOCUMENT_DID_CHANGE)
    lsp_text_document__did_close = _user_handler_only(types.TEXT_DOCUMENT_DID_CLOSE)

    def structure_message(self, data: dict[str, Any]):
        if isinstance(data, dict) and str(data.get("method", "")).startswith("codeswift/") and "params" not in data:
            data = {**data, "params": None}          # JSON-RPC allows no params; pygls' converter does not
        try:
            return super().structure_message(data)
        except JsonRpcException as e:
            if isinstance(data, dict) and "id" in data and "method" in data:
                return InvalidRequest(data["id"], str(data["method"]),
                                      type(e)(message=f"{e.message}: malformed params for {data['method']}"))
            raise

    def handle_message(self, message):
        if isinstance(message, InvalidRequest):
            log.warning("malformed %s request %r", message.method, message.id)
            self._send_response(message.id, error=message.error.to_response_error())
            return
        super().handle_message(message)
