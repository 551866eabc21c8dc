"""Single-line or multi-line? Decided from the text around the cursor (and its syntax node).

Multi-line (`stop="block"`) where a block is about to be written: the cursor ends a line that
opens a block, sits on an empty line right after such a line, or on an empty line at the end
of the file. Everywhere else — in the middle of a line, inside a comment or string, on an empty
line between statements — one line (`stop="line"`).
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
from functools import lru_cache

from codeswift.types import StopMode

log = logging.getLogger(__name__)

# Line endings that open a block, per language family; "*" applies to every language.
OPENERS: dict[str, tuple[str, ...]] = {
    "*": ("{", "(", "[", "=>", "->"),
    "python": (":",),
    "ruby": (" do", " then", "|"),
    "lua": (" do", " then"),
    "shellscript": (" do", " then"),
    "elixir": (" do", "->"),
}

# LSP languageId -> (grammar module, function returning the language pointer)
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
}

EXTENSIONS = {".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
              ".cjs": "javascript", ".jsx": "javascriptreact", ".ts": "typescript",
              ".tsx": "typescriptreact", ".go": "go", ".rs": "rust", ".java": "java",
              ".rb": "ruby", ".lua": "lua", ".sh": "shellscript", ".ex": "elixir"}


def language_of(language_id: str, path: str) -> str:
    """The LSP languageId, or one guessed from the file extension when the client sent none."""
    return language_id or EXTENSIONS.get(os.path.splitext(path)[1].lower(), "")


# -- syntax -----------------------------------------------------------------------------

_local = threading.local()          # tree-sitter parsers are not thread-safe


@lru_cache(maxsize=None)
def _language(name: str):
    import tree_sitter as ts
    module, function = GRAMMARS[name]
    return ts.Language(getattr(importlib.import_module(module), function)())


def _parser(name: str):
    parsers = _local.__dict__.setdefault("parsers", {})
    if name not in parsers:
        import tree_sitter as ts
        try:
            parsers[name] = ts.Parser(_language(name))
        except Exception as e:                    # grammar wheel missing or incompatible
            log.info("no tree-sitter grammar for %s (%s); using text rules only", name, e)
            parsers[name] = None
    return parsers[name]


def in_comment_or_string(prefix: str, suffix: str, language: str) -> bool:
    """True when the cursor (between prefix and suffix) is inside a comment or a string."""
    if language not in GRAMMARS or not prefix:
        return False
    parser = _parser(language)
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

def opens_block(line: str, language: str) -> bool:
    """True when `line` (without its line break) ends with a block opener."""
    stripped = line.rstrip()
    return bool(stripped) and stripped.endswith(OPENERS["*"] + OPENERS.get(language, ()))


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
