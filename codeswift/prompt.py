"""Fill-in-the-middle prompts: templates per model family, token budget, stop tokens.

The family is recognised from the tokenizer's special tokens, so a fine-tune keeps working.
Prompts are assembled from token ids (special tokens are never parsed out of user text).
The prefix is cut at line boundaries aligned to blocks of lines, so that while the user types
the start of the prompt stays put and the KV cache of the prompt can be reused.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .types import CompletionRequest


@dataclass(frozen=True)
class FimFamily:
    name: str
    prefix: str
    suffix: str
    middle: str
    stops: tuple[str, ...]
    file_sep: str | None = None        # separator for repository snippets, when the family has one
    spaced: bool = False               # CodeLlama: "<PRE> prefix <SUF>suffix <MID>"


FAMILIES = (
    FimFamily("qwen2.5-coder", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
              ("<|endoftext|>", "<|file_sep|>", "<|fim_pad|>", "<|im_end|>", "<|fim_prefix|>",
               "<|repo_name|>"), file_sep="<|file_sep|>"),
    FimFamily("starcoder2", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
              ("<|endoftext|>", "<file_sep>", "<fim_prefix>"), file_sep="<file_sep>"),
    FimFamily("deepseek-coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
              ("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>")),
    FimFamily("codellama", "<PRE>", "<SUF>", "<MID>", ("<EOT>", "</s>"), spaced=True),
)


@dataclass(frozen=True)
class PromptBudget:
    """Token budget of the prompt; defaults are the CPU ones (GPU users can afford more).

    Measured on 12 repo-dev tasks, Qwen2.5-Coder-0.5B Q4_K_M on 2 CPU cores (greedy output vs
    gold, edit similarity / cold time to first token): 256+64 tokens 0.31 / 1.5 s, 512+128
    0.50 / 3.9 s, 1024+256 0.49 / 9.9 s, 1536+384 0.52 / 15.4 s. 512+128 is the knee."""
    prefix: int = 512
    suffix: int = 128
    snippets: int = 256
    align_lines: int = 32             # prefix start moves in steps of this many lines

    @classmethod
    def for_device(cls, device: str) -> "PromptBudget":
        if device.startswith("cuda"):
            return cls(prefix=4096, suffix=1024, snippets=2048)
        return cls()


def _vocab_id(tokenizer, tok: str) -> int | None:
    i = tokenizer.convert_tokens_to_ids(tok)
    unk = getattr(tokenizer, "unk_token_id", None)
    return None if i is None or (unk is not None and i == unk and tok != tokenizer.unk_token) else int(i)


def detect_family(tokenizer) -> FimFamily | None:
    """The FIM family whose three special tokens all exist in this tokenizer, else None."""
    for fam in FAMILIES:
        if all(_vocab_id(tokenizer, t) is not None for t in (fam.prefix, fam.suffix, fam.middle)):
            return fam
    return None


def stop_token_ids(tokenizer, family: FimFamily | None) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for t in family.stops if family else ():
        i = _vocab_id(tokenizer, t)
        if i is not None:
            ids.add(i)
    return ids


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


class PromptBuilder:
    def __init__(self, tokenizer, budget: PromptBudget | None = None, heal_whitespace: bool = True,
                 heal_word: bool = True):
        self.tok = tokenizer
        self.heal_whitespace = heal_whitespace
        self.heal_word = heal_word
        self._vocab: tuple[list[str], np.ndarray] | None = None     # token texts sorted, their ids
        self.family = detect_family(tokenizer)
        self.budget = budget or PromptBudget()
        self.stop_ids = stop_token_ids(tokenizer, self.family)
        self._encode_cached = lru_cache(maxsize=4096)(self._encode_raw)

    def cursor_line(self, prefix: str) -> tuple[str, str]:
        """(the cursor line as the prompt ends it, the text the model writes itself).

        Whitespace healing: BPE tokenizers keep the last space of a run with the following word
        (" expr"), so a prompt ending in whitespace ends in a token the model has rarely seen
        there: after an indentation it typically adds one more space. Trailing spaces and tabs
        are left out of the prompt; the model writes them as it would.

        Token healing: a cursor line ending in a word (`if pr`) ends in a token that, in the
        training data, is followed by a new word (`if pr is None:`), not by the rest of the one
        being typed (`if prefix is None:`). The word's last token (" pr") is left out of the
        prompt and the first generated token must start with its text (`first_tokens`).

        `drop_typed` removes the healed text from the completion text (the tokens, compared
        with plain decoding of the same prompt and first-token rule, are untouched)."""
        line = prefix.rpartition("\n")[2]
        if not self.heal_whitespace:
            return line, ""
        kept = line.rstrip(" \t")
        if kept != line or not self.heal_word or not kept or not _word_char(kept[-1]):
            return kept, line[len(kept):]
        ids = self._encode_cached(kept)
        last = self.tok.decode(ids[-1:]) if ids else ""
        if not last or not kept.endswith(last) or not any(map(_word_char, last)):
            return kept, ""                    # a token that is not plain text of the line
        return kept[:len(kept) - len(last)], last

    def first_tokens(self, healed: str) -> np.ndarray | None:
        """The token ids the first generated token may be after token healing (their text starts
        with `healed`; it includes the token left out of the prompt), or None: no rule."""
        if not healed or not any(map(_word_char, healed)):
            return None                        # whitespace healing: the model writes it as it would
        texts, ids = self._vocab_index()
        lo = bisect.bisect_left(texts, healed)
        hi = bisect.bisect_left(texts, healed + "\U0010ffff", lo)
        return np.sort(ids[lo:hi]) if hi > lo else None     # by id: argmax ties go to the lowest

    def prepare(self) -> None:
        """Build what token healing looks up (~1.5 s for a 150k vocabulary: call it in idle time,
        e.g. before a warm-up, so no completion waits for it)."""
        if self.heal_word and self.heal_whitespace:
            self._vocab_index()

    def _vocab_index(self) -> tuple[list[str], np.ndarray]:
        """Every token's text, sorted, with its id (built once)."""
        if self._vocab is None:
            n = len(self.tok)
            texts = self.tok.batch_decode([[i] for i in range(n)])
            special = set(getattr(self.tok, "all_special_ids", ()) or ()) | self.stop_ids
            order = sorted((i for i in range(n) if i not in special), key=texts.__getitem__)
            self._vocab = [texts[i] for i in order], np.asarray(order, dtype=np.int64)
        return self._vocab

    def _encode_raw(self, text: str) -> tuple[int, ...]:
        # split_special_tokens: user text that looks like "<|fim_middle|>" stays plain text.
        return tuple(self.tok.encode(text, add_special_tokens=False, split_special_tokens=True))

    def encode_lines(self, text: str) -> list[int]:
        """Tokenise line by line (cached), so editing one line never retokenises the others."""
        out: list[int] = []
        for line in text.splitlines(keepends=True):
            out.extend(self._encode_cached(line))
        return out

    def _special(self, tok: str) -> list[int]:
        return [_vocab_id(self.tok, tok)]

    def cut_prefix(self, prefix: str) -> list[int]:
        """Prefix tokens within budget, dropping whole blocks of `align_lines` lines from the top.

        Only the tail that can fit is tokenised (a megabyte prefix costs what its last lines do):
        the start is the first block boundary at or after the first line from which the rest
        fits, or the last line when none does."""
        lines = prefix.splitlines(keepends=True)
        fits, used = len(lines), 0
        while fits > 0 and used + len(self._encode_cached(lines[fits - 1])) <= self.budget.prefix:
            fits -= 1
            used += len(self._encode_cached(lines[fits]))
        align = self.budget.align_lines
        start = min(-(-fits // align) * align, max(len(lines) - 1, 0))
        ids = [t for line in lines[start:] for t in self._encode_cached(line)]
        return ids[-self.budget.prefix:]

    def cut_suffix(self, suffix: str) -> list[int]:
        ids: list[int] = []
        for line in suffix.splitlines(keepends=True):
            line_ids = self._encode_cached(line)
            if len(ids) + len(line_ids) > self.budget.suffix:
                break
            ids.extend(line_ids)
        return ids

    def snippet_ids(self, req: CompletionRequest) -> list[int]:
        if not req.snippets or not self.family or not self.family.file_sep:
            return []
        ids: list[int] = []
        sep = self._special(self.family.file_sep)
        for sn in req.snippets:
            part = sep + list(self._encode_cached(f"{sn.path}\n")) + self.encode_lines(sn.text)
            if len(ids) + len(part) > self.budget.snippets:
                break
            ids.extend(part)
        if ids and req.path:
            ids += sep + list(self._encode_cached(f"{req.path}\n"))
        return ids

    def build(self, req: CompletionRequest) -> list[int]:
        """Prompt token ids for a request; plain prefix if the model has no FIM tokens.

        Layout: [snippets] PRE prefix-up-to-the-cursor-line SUF suffix MID text-typed-on-the-line.
        The text typed on the cursor line goes after MID, as the start of the middle (as
        llama.vscode does), so keystrokes within a line change only the last few prompt tokens
        and the KV of everything before them is reused.
        """
        fam = self.family
        healed = self.cursor_line(req.prefix)[1]
        prefix = req.prefix[:len(req.prefix) - len(healed)]
        if fam is None:
            return self.cut_prefix(prefix) or [self.tok.eos_token_id or 0]
        head, sep, line = prefix.rpartition("\n")
        pre = self.cut_prefix(head + sep)
        suf = self.cut_suffix(req.suffix)
        typed = list(self._encode_cached(line)) if line else []
        if fam.spaced:
            sp = list(self._encode_cached(" "))
            return (self._special(fam.prefix) + sp + pre + sp + self._special(fam.suffix) + suf + sp +
                    self._special(fam.middle) + typed)
        return (self.snippet_ids(req) + self._special(fam.prefix) + pre +
                self._special(fam.suffix) + suf + self._special(fam.middle) + typed)


def drop_typed(text: str, typed: str) -> str:
    """`text` written from before `typed` (healed whitespace), without what is already typed."""
    n = 0
    while n < min(len(text), len(typed)) and text[n] == typed[n]:
        n += 1
    return text[n:]
