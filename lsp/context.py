"""Single-line or multi-line? Decided from the text around the cursor (and its syntax node).

Multi-line (`stop="block"`) where a block is about to be written: the cursor ends a line that
opens a block, sits on an empty line right after such a line, or on an empty line at the end
of the file. Everywhere else — in the middle of a line, inside a comment or string, on an empty
line between statements — one line (`stop="line"`).
"""
from __future__ import annotations

import logging

from codeswift.ending import opens_block
from codeswift.types import StopMode
from datastore import languages

log = logging.getLogger(__name__)


def language_of(language_id: str, path: str) -> str:
    """The LSP languageId, or one guessed from the file extension when the client sent none."""
    return language_id or languages.registry().lsp_id_for(path)


# -- syntax -----------------------------------------------------------------------------

_no_grammar: set[str] = set()       # languages whose grammar failed to load: logged once


def _parser(language: str):
    """This thread's parser for an LSP languageId, or None (no grammar: text rules only)."""
    name = languages.registry().for_lsp_id(language)
    if name is None or name in _no_grammar:
        return None
    try:
        return languages.parser(name)
    except Exception as e:                        # grammar wheel missing or incompatible
        log.info("no tree-sitter grammar for %s (%s); using text rules only", language, e)
        _no_grammar.add(name)
        return None


def in_comment_or_string(prefix: str, suffix: str, language: str) -> bool:
    """True when the cursor (between prefix and suffix) is inside a comment or a string."""
    parser = _parser(language) if prefix else None
    if parser is None:
        return False
    cursor = len(prefix.encode("utf-8"))
    tree = parser.parse((prefix + suffix).encode("utf-8"))
    node = tree.root_node.descendant_for_byte_range(cursor - 1, cursor - 1)   # the char before
    while node is not None:
        kind = node.type
        if "comment" in kind:
            return True
        if "string" in kind and node.start_byte < cursor < node.end_byte:
            return True
        node = node.parent
    return False


# -- the decision -------------------------------------------------------------------------

def decide_stop(prefix: str, suffix: str, language: str, syntax: bool = True) -> StopMode:
    """`"line"` or `"block"` for a completion between `prefix` and `suffix`."""
    rest_of_line = suffix.split("\n", 1)[0].rstrip("\r")
    if rest_of_line.strip():
        return "line"                             # completing inside a line
    if syntax and in_comment_or_string(prefix, suffix, language):
        return "line"
    head, _, line = prefix.rpartition("\n")
    if line.strip():
        return "block" if opens_block(line, language) else "line"
    if not suffix.strip():
        return "block"                            # empty line at the end of the file
    previous = next((l for l in reversed(head.split("\n")) if l.strip()), "")
    return "block" if opens_block(previous, language) else "line"
