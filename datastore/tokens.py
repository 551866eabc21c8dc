"""Tokenizer glue: fast batch encoding with character offsets, and a tokenizer fingerprint.

Any Hugging Face tokenizer works (anything with `.encode(text, add_special_tokens=False)`);
fast tokenizers are used through their Rust backend in one parallel batch call.
"""
from __future__ import annotations

import hashlib
import re
import weakref
import json
from typing import Sequence

import numpy as np


_fingerprints: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def fingerprint(tokenizer) -> str:
    """Stable id of the tokenizer's vocabulary and rules: an index built with another
    tokenizer has different ids and must never be reused. Cached per tokenizer object."""
    try:
        return _fingerprints[tokenizer]
    except (KeyError, TypeError):
        pass
    fp = _compute_fingerprint(tokenizer)
    try:
        _fingerprints[tokenizer] = fp
    except TypeError:
        pass
    return fp


def _compute_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        data = backend.to_str()
    else:
        data = json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{type(tokenizer).__name__}\n{data}".encode()).hexdigest()[:24]


def encode_texts(tokenizer, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(ids int32 [T], char start of each token int64 [T] or None) for each text."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch"):
        out = []
        for enc in backend.encode_batch(list(texts), add_special_tokens=False):
            ids = np.asarray(enc.ids, dtype=np.int32)
            starts = np.fromiter((o[0] for o in enc.offsets), np.int64, len(ids))
            out.append((ids, starts))
        return out
    return [(np.asarray(tokenizer.encode(t, add_special_tokens=False), dtype=np.int32), None)
            for t in texts]


def encode(tokenizer, text: str) -> np.ndarray:
    """Token ids of one text, int32."""
    return encode_texts(tokenizer, [text])[0][0]


def byte_to_char(text: str, data: bytes) -> np.ndarray | None:
    """char index of each byte offset (length len(data)+1), or None when text is ASCII."""
    if len(text) == len(data):
        return None
    b = np.frombuffer(data, np.uint8)
    is_start = (b & 0xC0) != 0x80                   # UTF-8 continuation bytes start with 10
    return np.concatenate(([0], np.cumsum(is_start))).astype(np.int64)


def token_range(char_starts: np.ndarray | None, n_tokens: int, n_chars: int,
                start_char: int, end_char: int) -> tuple[int, int]:
    """Tokens covering chars [start_char, end_char): first token touching the start, up to
    the first token starting at or after the end."""
    if char_starts is None:                          # no offsets: proportional estimate
        scale = n_tokens / max(n_chars, 1)
        return int(start_char * scale), min(n_tokens, int(np.ceil(end_char * scale)))
    lo = max(int(np.searchsorted(char_starts, start_char, side="right")) - 1, 0)
    hi = int(np.searchsorted(char_starts, end_char, side="left"))
    return lo, max(hi, lo)


# Where a text can be cut so that its tokens are the pieces' tokens concatenated: then an edit
# re-tokenizes only the lines it touched. Regex pre-tokenizers never let a pre-token span
# such a cut; which cut is safe depends on the regex, so each is checked on a probe text:
# - after "\n", before a line with visible text (Qwen, Llama 3: punctuation keeps its "\n");
# - before "\n", after visible text (GPT-2: "\n" joins the next line's indentation).
# Tokenizers that pass neither (SentencePiece adds "▁" per text) are always encoded whole.
_CUTS = (re.compile(r"(?<=\n)(?=[^\S\r\n]*[^\s])"), re.compile(r"(?<=[^\s])(?=\r?\n)"))
_PROBE = ("import os\n\n\nclass A(B):\n    x = 1  \n  \t\n    def f(self, a):\r\n        return a['k']  # é 中文\n"
          "\n\tif (x) {\n\t\treturn y;\n\t}\n}\n  \n\nfunc main() {}\n#define X 1\n\"\"\"doc\"\"\"\n...\n")


class LineTokenizer:
    """Tokenizes a text line by line with a cache, when that equals tokenizing it whole."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        whole = encode(tokenizer, _PROBE)
        self.cut = next((c for c in _CUTS if np.array_equal(
            whole, np.concatenate([encode(tokenizer, p) for p in c.split(_PROBE)]))), None)
        self.exact = self.cut is not None

    def encode(self, text: str, cache: dict) -> tuple[np.ndarray, np.ndarray | None, dict]:
        """(ids, char starts, new cache) for `text`; `cache` maps line text -> (ids, starts)
        from the previous version and is not modified."""
        if not self.exact:
            ids, starts = encode_texts(self.tokenizer, [text])[0]
            return ids, starts, {}
        lines = self.cut.split(text)
        missing = list({ln for ln in lines if ln not in cache})
        new = dict(zip(missing, encode_texts(self.tokenizer, missing))) if missing else {}
        parts = [cache[ln] if ln in cache else new[ln] for ln in lines]
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
        if any(p[1] is None for p in parts):
            starts = None
        else:
            shift = np.repeat(np.cumsum([0] + [len(ln) for ln in lines[:-1]]), [len(p[0]) for p in parts])
            starts = np.concatenate([p[1] for p in parts]) + shift if parts else np.zeros(0, np.int64)
        kept = {ln: cache[ln] if ln in cache else new[ln] for ln in lines}
        return ids.astype(np.int32), starts, kept
