"""Editor stop rules on generated text: end of line, end of block.

Each rule is a function of the generated tokens alone (decoded from the start), so applying
it after every token (plain decoding) or after a multi-token step (speculation) cuts at the
same place. `cut_text` applies the same rule to the decoded text.
"""
from __future__ import annotations

from typing import Callable

from .types import StopMode


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


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
    off = stop_offset(text, mode, line_prefix)
    return text if off is None else text[:off]
