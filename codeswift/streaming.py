"""Token streaming: the text of the tokens accepted so far, as deltas nothing later takes back.

The loop reports its tokens after every step (`loop.OnStep`). A stream turns them into text
deltas whose concatenation is, at the end, exactly the completion's final text: it holds back
what a later token could still change or cut:

- an incomplete UTF-8 character (the decoded text ends in U+FFFD);
- with stop="block", a last line that has no content yet (the block may end before it);
- the whitespace already typed at the cursor, which the final text leaves out (`drop_typed`);
- for HTTP clients, the end of the text that could start a client stop string (`RuleStream`).

Decoding is incremental (a few tokens of overlap, as vLLM's detokenizer does), so a 2K-token
generation does not decode everything again at every step.
"""
from __future__ import annotations

from typing import Callable

from .ending import PostRules, apply_rules
from .prompt import drop_typed
from .types import CompletionResult

OVERLAP = 6                # tokens decoded again before the new ones (merges, leading spaces)
REPLACEMENT = "\ufffd"


class Detok:
    """Incremental detokenisation of a growing token list."""

    def __init__(self, decode: Callable[[list[int]], str]):
        self.decode = decode
        self.text = ""                 # text of tokens[:self.n] (fixed)
        self.n = 0

    def __call__(self, tokens: list[int]) -> str:
        """The text of `tokens` (which extend the tokens of earlier calls)."""
        start = max(0, self.n - OVERLAP)
        head = self.decode(tokens[start:self.n])
        full = self.decode(tokens[start:])
        if not full.startswith(head):                  # decoding is not prefix-stable here
            return self.decode(tokens)
        tail = full[len(head):]
        # Fix the text up to a complete character, leaving a few tokens to decode again.
        if len(tokens) - self.n > 2 * OVERLAP and REPLACEMENT not in tail:
            self.text, self.n = self.text + tail, len(tokens)
            return self.text
        return self.text + tail


class TextStream:
    """The engine's side: tokens -> stable completion text -> `on_text(delta)`.

    `on_text` returning True ends the generation (an HTTP client's stop string fired)."""

    def __init__(self, decode, on_text: Callable[[str], "bool | None"], mode: str, typed: str):
        self.detok = Detok(decode)
        self.on_text, self.mode, self.typed = on_text, mode, typed
        self.emitted = ""

    def stable(self, text: str) -> str:
        text = text.rstrip(REPLACEMENT)
        if self.mode == "block":
            nl = text.rfind("\n")
            if nl >= 0 and not text[nl + 1:].strip():
                text = text[:nl]
        if len(text) <= len(self.typed) and self.typed.startswith(text):
            return ""
        return drop_typed(text, self.typed)

    def push(self, tokens: list[int]) -> bool:
        """Emit what is stable of the text of `tokens` (the loop has not stopped yet)."""
        return self._emit(self.stable(self.detok(tokens)))

    def close(self, final_text: str) -> None:
        """Emit the rest of the final text (the stop rule, EOS or max_new ended it)."""
        self._emit(final_text)

    def _emit(self, text: str) -> bool:
        if len(text) <= len(self.emitted) or not text.startswith(self.emitted):
            return False
        delta, self.emitted = text[len(self.emitted):], text
        return bool(self.on_text(delta))


class RuleStream:
    """An HTTP client's rules on a stream: the engine's deltas -> deltas the rules keep.

    Client stop strings: the text ends before the first one; the end of the text that could
    still start one is held back. llama.cpp's n_indent cuts only after a line's indentation,
    never before text already seen, so it holds nothing back."""

    def __init__(self, rules: PostRules, emit: Callable[[str], None]):
        self.rules, self.emit = rules, emit
        self.text = ""
        self.sent = 0
        self.fired = False
        self.reason, self.word = "", ""

    def push(self, delta: str) -> bool:
        """Feed an engine delta; True once a rule fired (the generation can stop)."""
        if self.fired:
            return True
        self.text += delta
        cut = apply_rules(CompletionResult(self.text, [], ""), self.rules)   # the rules on the text so far
        end = len(cut.text)
        if cut.reason:
            self.fired, self.reason, self.word = True, cut.reason, cut.word
        else:
            end -= self._held(self.text)
        if end > self.sent:
            self.emit(self.text[self.sent:end])
            self.sent = end
        return self.fired

    def _held(self, text: str) -> int:
        """Length of the longest end of `text` that is a proper start of a stop string."""
        best = 0
        for s in self.rules.stop_strings:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best

    def flush(self) -> None:
        """The generation ended: what was held back for a stop string that never came."""
        if not self.fired and len(self.text) > self.sent:
            self.emit(self.text[self.sent:])
            self.sent = len(self.text)
