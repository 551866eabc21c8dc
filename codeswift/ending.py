"""Where a completion ends: the one module that cuts completion text, for every front end.

Three layers, applied in this order:

1. Token-level stop rules (`make_stop`, `stop_offset`, `cut_text`): the engine's editor stop
   modes, end of line and end of block. Each rule is a function of the generated tokens alone
   (decoded from the start), so applying it after every token (plain decoding) or after a
   multi-token step (speculation) cuts at the same place. `cut_text` applies the same rule to
   the decoded text.
2. Editor post-processing (`postprocess`, for the language server): pure functions of
   (completion text, text before and after the cursor). The engine already stopped at the end
   of the line or block; what is left is what only the editor context shows: a block opened on
   the cursor line, text the model repeated from after the cursor, and closing brackets that
   close nothing.
3. HTTP client rules (`apply_rules`, for the service): client stop strings and llama.cpp's
   `n_indent`, cut from the engine's text after generation, exactly where token-by-token
   decoding with the same rule would have stopped; the engine itself only knows the editor
   stop modes.

The three block rules differ on purpose: the engine's ends before a line indented less than the
block's first line; the editor's ends at a line indented no deeper than a cursor line that opens
a block, keeping a closing bracket line; llama.cpp's `n_indent` keeps the indentation of the
line that ends it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .types import CompletionResult, StopMode


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


# -- token-level stop rules (engine) ------------------------------------------------------

def stop_offset(text: str, mode: StopMode, line_prefix: str = "") -> int | None:
    """Character offset in `text` where the completion ends under `mode`, or None (not yet)."""
    if mode == "line":
        i = text.find("\n")
        return None if i < 0 else i
    if mode == "block":
        # The block's indentation is that of its first non-blank line (the cursor line counts,
        # with what is already typed on it). The block ends before the first later, complete,
        # non-blank line indented less than that.
        full = line_prefix + text
        lines = full.split("\n")
        base = None
        offset = -len(line_prefix)
        for line in lines:
            # Indentation precedes content, so it is final once the line has content.
            if line.strip():
                if base is None:
                    base = _indent(line)
                elif _indent(line) < base:
                    return max(0, offset - 1)          # cut before the newline ending the block
            offset += len(line) + 1
        return None
    return None


def make_stop(tokenizer, mode: StopMode, line_prefix: str = "") -> Callable[[list[int]], int | None] | None:
    """Token-level stop check: number of generated tokens to keep once the rule fires."""
    if mode == "none":
        return None

    def check(out: list[int]) -> int | None:
        text = tokenizer.decode(out, skip_special_tokens=True)
        off = stop_offset(text, mode, line_prefix)
        if off is None:
            return None
        # Smallest token prefix whose text reaches the stop offset.
        for n in range(1, len(out) + 1):
            if len(tokenizer.decode(out[:n], skip_special_tokens=True)) > off:
                return n
        return len(out)
    return check


def cut_text(text: str, mode: StopMode, line_prefix: str = "") -> str:
    """`text` cut where `mode` ends it (unchanged when the rule has not fired)."""
    off = stop_offset(text, mode, line_prefix)
    return text if off is None else text[:off]


# -- block openers --------------------------------------------------------------------------

# Line endings that open a block, per language family; "*" applies to every language.
OPENERS: dict[str, tuple[str, ...]] = {
    "*": ("{", "(", "[", "=>", "->"),
    "python": (":",),
    "ruby": (" do", " then", "|"),
    "lua": (" do", " then"),
    "shellscript": (" do", " then"),
    "elixir": (" do", "->"),
}


def opens_block(line: str, language: str) -> bool:
    """True when `line` (without its line break) ends with a block opener."""
    stripped = line.rstrip()
    return bool(stripped) and stripped.endswith(OPENERS["*"] + OPENERS.get(language, ()))


# -- editor post-processing (language server) ----------------------------------------------

PAIRS = {")": "(", "]": "[", "}": "{"}
OPEN_BRACKETS = set(PAIRS.values())
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
            if c in OPEN_BRACKETS:
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


# -- HTTP client rules (service) ---------------------------------------------------------------

@dataclass
class PostRules:
    """What to cut from the engine's text after it returns."""
    stop_strings: list[str] = field(default_factory=list)
    n_indent: int = 0


@dataclass
class Cut:
    text: str
    reason: str                      # engine reason, or "stop_string" / "indent"
    word: str = ""                   # the stop string that fired


def apply_rules(result: CompletionResult, rules: PostRules) -> Cut:
    """Cut at the earliest client stop string (excluded) or llama.cpp n_indent rule."""
    text, reason, word = result.text, result.finish_reason, ""
    hits = [(text.find(s), s) for s in rules.stop_strings if s and s in text]
    if hits:
        pos, word = min(hits)
        text, reason = text[:pos], "stop_string"
    if rules.n_indent > 0:
        cut = _indent_cut(text, rules.n_indent)
        if cut is not None:
            text, reason, word = text[:cut], "indent", ""
    return Cut(text, reason, word)


def _indent_cut(text: str, n_indent: int) -> int | None:
    # llama.cpp: once a new line has content and less indentation than n_indent, the text
    # ends right after that line's indentation. Unlike the rules above, only " " and "\t"
    # are blank here: a line holding just "\r" has content.
    start = text.find("\n")
    while start >= 0:
        end = text.find("\n", start + 1)
        line = text[start + 1:] if end < 0 else text[start + 1:end]
        indent = _indent(line)
        if indent < len(line) and indent < n_indent:
            return start + 1 + indent
        start = end
    return None
