"""Clean a completion before the editor shows it: end of block, suffix repeats, brackets.

Pure functions of (completion text, text before and after the cursor). The engine already
stopped at the end of the line or block; what is left is what only the editor context
shows: a block opened on the cursor line, text the model repeated from after the cursor,
and closing brackets that close nothing.
"""
from __future__ import annotations

from codeswift.types import StopMode

from .context import opens_block

PAIRS = {")": "(", "]": "[", "}": "{"}
OPENING = set(PAIRS.values())
CLOSING_WORDS = ("end", "fi", "done", "esac")
BRACKET_CONTEXT_LINES = 50          # lines of prefix whose open brackets a completion may close


def postprocess(text: str, prefix: str, suffix: str, mode: StopMode, language: str = "") -> str:
    """The text to insert at the cursor ("" = nothing worth showing)."""
    line_prefix = prefix.rpartition("\n")[2]
    if mode == "block":
        text = cut_block(text, line_prefix, language)
    text = drop_suffix_repeat(text, suffix)
    text = cut_unmatched_closer(text, prefix, language)
    text = text.rstrip()
    return text if text.strip() else ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def cut_block(text: str, line_prefix: str, language: str = "") -> str:
    """End a block opened on the cursor line (`def f():|`, `if (x) {|`): stop before the first
    later line indented no deeper than the cursor line, keeping it when it closes the block."""
    if not line_prefix.strip() or not opens_block(line_prefix, language):
        return text
    base = _indent(line_prefix)
    lines = text.split("\n")
    offset = len(lines[0]) + 1
    for line in lines[1:]:
        if line.strip() and _indent(line) <= base:
            head = line.strip()
            if head[0] in PAIRS or head.split()[0] in CLOSING_WORDS:
                return text[:offset + len(line)]
            return text[:offset - 1].rstrip()
        offset += len(line) + 1
    return text


def drop_suffix_repeat(text: str, suffix: str) -> str:
    """Remove what the model repeated from after the cursor: the rest of the cursor line at the
    end of the first line, or a later line equal to the next non-blank line of the suffix."""
    rest = suffix.split("\n", 1)[0].rstrip("\r")
    first, nl, more = text.partition("\n")
    if rest.strip():
        if first.strip() == rest.strip() and not more.strip():
            return ""
        trimmed = first.rstrip()
        k = _overlap(trimmed, rest.rstrip())
        if k:
            first = trimmed[:-k]
        if not nl:
            return first
    following = next((l.strip() for l in suffix.split("\n")[1:] if l.strip()), None)
    if following is not None and nl:
        lines = more.split("\n")
        for i, line in enumerate(lines):
            if line.strip() == following:
                return first + ("\n" + "\n".join(lines[:i]) if i else "")
    return first + nl + more


def _overlap(first: str, rest: str) -> int:
    """Length of the longest end of `first` that starts `rest`, counted only when it covers all
    of `rest` or is punctuation (`)`, `]);`): typed-over closers, not a shared letter."""
    for k in range(min(len(first), len(rest)), 0, -1):
        part = rest[:k]
        if first.endswith(part) and part.strip() and (k == len(rest) or not any(c.isalnum() for c in part)):
            return k
    return 0


def _code_chars(line: str, language: str):
    """(index, char) of a line outside string literals and line comments (a cheap scan)."""
    quotes = {'"', "`"} | ({"'"} if language != "rust" else set())
    comment = "#" if language in ("python", "ruby", "shellscript", "") else "//"
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in quotes:
            quote = c
        elif line.startswith(comment, i) or (language == "" and line.startswith("//", i)):
            return
        else:
            yield i, c
        i += 1


def _scan(lines: list[str], language: str, stack: list[str]):
    """Push/pop brackets of `lines` on `stack`; yields (line index, char index) of every closer
    that closes nothing open, after the stack is left unchanged by it."""
    for n, line in enumerate(lines):
        for i, c in _code_chars(line, language):
            if c in OPENING:
                stack.append(c)
            elif c in PAIRS:
                if stack and stack[-1] == PAIRS[c]:
                    stack.pop()
                else:
                    yield n, i


def cut_unmatched_closer(text: str, prefix: str, language: str = "") -> str:
    """Cut the completion before the first closing bracket that closes nothing open in the last
    lines of the prefix or in the completion itself."""
    head, _, line_prefix = prefix.rpartition("\n")
    stack: list[str] = []
    for _ in _scan(head.split("\n")[-BRACKET_CONTEXT_LINES:], language, stack):
        pass
    lines = (line_prefix + text).split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    for n, i in _scan(lines, language, stack):
        at = starts[n] + i - len(line_prefix)
        if at >= 0:
            return text[:at]
    return text
