"""Typed server options: `initializationOptions` (docs/protocol.md) over command-line defaults.

Parsed once at `initialize`. A bad value never stops the server: the key falls back to its
default and the caller shows the returned warnings to the user.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable
from codeswift.types import MAX_SEED, MAX_TOKENS

DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPES = ("auto", "bfloat16", "float16", "float32")
BACKENDS = ("auto", "transformers", "llamacpp")
MAX_TOKENS_LIMIT = MAX_TOKENS             # the engine's own bound
MAX_DEBOUNCE_MS = 10_000
MAX_WARMUP_DELAY_MS = 60_000
MAX_CORPUS_MB = 1024


@dataclass(frozen=True)
class Options:
    """Everything a client may configure; the defaults are docs/protocol.md's."""
    model: str = "qwen2.5-coder-0.5b"
    device: str = "auto"
    dtype: str = "auto"
    backend: str = "auto"
    max_tokens: int = 64
    debounce_ms: int = 75
    index: bool = True
    server_url: str | None = None
    server_token: str | None = None
    speculative: bool = True
    warmup: bool = True
    warmup_delay_ms: int = 300
    temperature: float = 0.0            # 0: greedy, identical to plain greedy decoding
    top_p: float = 1.0
    seed: int | None = None
    # typing along the last suggestion: have the engine verify its rest (True: the model's exact
    # answer; the rest of the last answer is its first draft, usually one verify step), or show
    # it at once (False, the llama.vscode habit: no forward pass, but in a measured session 5 of
    # 18 such answers were text the model no longer wrote). Asking again at the same place is
    # served from the cache either way: the prompt is the same, so is the answer.
    verify_cached: bool = True
    # the general corpus: "auto" (this Python's stdlib and site-packages, built in the background
    # on first use, at most corpus_max_mb MiB of source), "off", or a folder from `codeswift corpus build`
    corpus: str = "auto"
    corpus_max_mb: int = 24


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v.strip() in choices


def _device(v: Any) -> bool:
    return _one_of(DEVICES)(v) or (isinstance(v, str) and re.fullmatch(r"cuda:\d+", v.strip()) is not None)


def _number(lo: float, hi: float, lo_open: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        return (isinstance(v, (int, float)) and not isinstance(v, bool)
                and (lo < v if lo_open else lo <= v) and v <= hi)
    return ok


def _optional_url(v: Any) -> bool:
    return v is None or (isinstance(v, str) and re.fullmatch(r"https?://[^\s/]+(/\S*)?", v) is not None)


# camelCase key -> (field name, check, what the user should have written)
_KEYS: dict[str, tuple[str, Callable[[Any], bool], str]] = {
    "model": ("model", lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "device": ("device", _device, "one of " + ", ".join(DEVICES) + " (or cuda:N)"),
    "dtype": ("dtype", _one_of(DTYPES), "one of " + ", ".join(DTYPES)),
    "backend": ("backend", _one_of(BACKENDS), "one of " + ", ".join(BACKENDS)),
    "maxTokens": ("max_tokens", lambda v: _is_int(v) and 1 <= v <= MAX_TOKENS_LIMIT,
                  f"an integer in 1..{MAX_TOKENS_LIMIT}"),
    "debounceMs": ("debounce_ms", lambda v: _is_int(v) and 0 <= v <= MAX_DEBOUNCE_MS,
                   f"an integer in 0..{MAX_DEBOUNCE_MS}"),
    "index": ("index", lambda v: isinstance(v, bool), "true or false"),
    "serverUrl": ("server_url", _optional_url, "null or an http(s):// URL"),
    "serverToken": ("server_token", lambda v: v is None or isinstance(v, str), "null or a string"),
    "speculative": ("speculative", lambda v: isinstance(v, bool), "true or false"),
    "warmup": ("warmup", lambda v: isinstance(v, bool), "true or false"),
    "temperature": ("temperature", _number(0.0, 5.0), "a number in 0..5 (0 = greedy, lossless)"),
    "topP": ("top_p", _number(0.0, 1.0, lo_open=True), "a number in (0, 1]"),
    "seed": ("seed", lambda v: v is None or _is_int(v) and -MAX_SEED - 1 <= v <= MAX_SEED,
             "null or a signed 64-bit integer"),
    "verifyCached": ("verify_cached", lambda v: isinstance(v, bool), "true or false"),
    "corpus": ("corpus", lambda v: isinstance(v, str) and v.strip() != "",
               '"auto", "off" or a corpus folder'),
    "corpusMaxMb": ("corpus_max_mb", lambda v: _is_int(v) and 1 <= v <= MAX_CORPUS_MB,
                    f"an integer in 1..{MAX_CORPUS_MB}"),
    "warmupDelayMs": ("warmup_delay_ms", lambda v: _is_int(v) and 0 <= v <= MAX_WARMUP_DELAY_MS,
                      f"an integer in 0..{MAX_WARMUP_DELAY_MS}"),
}


def parse_options(raw: Any, defaults: Options | None = None) -> tuple[Options, list[str]]:
    """Options from `initializationOptions` on top of `defaults`, and one warning per bad key."""
    defaults = defaults or Options()
    if raw is None:
        return defaults, []
    if not isinstance(raw, dict):
        return defaults, [f"codeswift: initializationOptions must be an object, got {type(raw).__name__}; "
                          "using defaults"]
    changes: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        if key not in _KEYS:
            continue                    # unknown keys: newer clients may send more
        name, ok, expected = _KEYS[key]
        if ok(value):
            changes[name] = value.strip() if isinstance(value, str) else value
        else:
            warnings.append(f"codeswift: initializationOptions.{key} should be {expected}, got {value!r}; "
                            f"using {getattr(defaults, name)!r}")
    if changes.get("server_url"):
        changes["server_url"] = changes["server_url"].rstrip("/")
    return replace(defaults, **changes), warnings


def unknown_keys(raw: Any) -> list[str]:
    """Keys of `initializationOptions` this server does not know (logged, not shown)."""
    return sorted(k for k in raw if k not in _KEYS) if isinstance(raw, dict) else []
