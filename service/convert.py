"""Pure conversions between the HTTP dialects and the engine's request/result types.

Each dialect has a `*_request` (body -> CompletionRequest plus post-processing rules) and a
`*_response` / `*_chunks` pair (CompletionResult -> JSON). The post-processing rules
(client stop strings, llama.cpp's `n_indent`) are applied by `codeswift.ending.apply_rules`.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from codeswift.ending import Cut, PostRules
from codeswift.prompt import FAMILIES
from codeswift.types import CompletionRequest, CompletionResult, Snippet

from .schemas import InfillCompletion, NativeCompletion, OpenAICompletion


class FieldError(ValueError):
    """A field is well-typed but unusable (the HTTP layer answers 422)."""


# Editor clients send a tiny temperature to mean "deterministic" (Continue's autocomplete: 0.01);
# below this it is served greedily, which is what they want and keeps the output lossless.
GREEDY_BELOW = 0.05


def sampling(body) -> dict[str, Any]:
    """The standard sampling fields of any dialect, as CompletionRequest arguments."""
    seed = body.seed if body.seed is not None and body.seed >= 0 else None
    t = float(body.temperature)
    theta, window = float(body.repetition_penalty), int(body.penalty_window)
    if getattr(body, "repeat_penalty", None) is not None:          # llama.cpp /infill
        n = body.repeat_last_n if body.repeat_last_n is not None else 64     # llama.cpp's default
        theta, window = (float(body.repeat_penalty), max(n, 0)) if n != 0 else (1.0, 0)
    return {"temperature": t if t >= GREEDY_BELOW else 0.0, "top_p": float(body.top_p), "seed": seed,
            "repetition_penalty": theta, "penalty_window": window}


# -- native ---------------------------------------------------------------------------------
def native_request(body: NativeCompletion, default_max: int) -> CompletionRequest:
    """The native body is CompletionRequest's own JSON (`CompletionRequest.to_json`)."""
    return CompletionRequest.from_json({**body.model_dump(), "max_tokens": body.max_tokens or default_max,
                                        **sampling(body)})


# -- llama.cpp /infill ------------------------------------------------------------------------
def infill_request(body: InfillCompletion, default_max: int) -> tuple[CompletionRequest, PostRules]:
    """llama.cpp semantics: n_predict -1 (or absent) = default, 0 = evaluate only."""
    n = body.n_predict if body.n_predict is not None else body.max_tokens
    max_tokens = default_max if n is None or n < 0 else n
    req = CompletionRequest(
        prefix=body.input_prefix + body.prompt, suffix=body.input_suffix,
        max_tokens=max_tokens, stop="none",
        snippets=[Snippet(c.filename, c.text) for c in body.input_extra], **sampling(body))
    return req, PostRules(stop_strings=list(body.stop), n_indent=body.n_indent)


_LLAMA_STOP_TYPE = {"eos": "eos", "length": "limit", "stop": "limit", "stop_string": "word",
                    "indent": "limit"}


def infill_response(result: CompletionResult, cut: Cut, model: str,
                    fields: list[str] | None = None) -> dict[str, Any]:
    """The llama.cpp /completion (and /infill) final response object."""
    st = result.stats
    prompt_n = max(st.get("prompt_tokens", 0) - st.get("reused_prompt_tokens", 0), 0)
    pred_n = len(result.tokens)
    out = {
        "index": 0, "content": cut.text, "tokens": [], "id_slot": 0, "stop": True, "model": model,
        "tokens_predicted": pred_n, "tokens_evaluated": st.get("prompt_tokens", 0),
        "generation_settings": {"n_predict": None, "temperature": st.get("temperature", 0.0),
                                "samplers": ["top_p", "temperature"] if st.get("temperature") else ["greedy"]},
        "has_new_line": "\n" in cut.text, "truncated": False,
        "stop_type": _LLAMA_STOP_TYPE.get(cut.reason, "eos"), "stopping_word": cut.word,
        "tokens_cached": st.get("reused_prompt_tokens", 0),
        "timings": _timings(prompt_n, st.get("prefill_ms", 0.0), pred_n, st.get("decode_ms", 0.0)),
        "codeswift": st,
    }
    return select_fields(out, fields) if fields else out


Event = tuple[str | None, Any]          # (SSE event name, data)


class StreamEvents:
    """A dialect's server-sent events for a stream: `start`, one or more per text `delta`
    (as the engine accepts tokens), `end` with the result and the client-cut text."""

    def start(self) -> list[Event]:
        return []

    def delta(self, text: str) -> list[Event]:
        raise NotImplementedError

    def end(self, result: CompletionResult, cut: Cut) -> list[Event]:
        raise NotImplementedError


class NativeEvents(StreamEvents):
    """`chunk` events {"text"}, then `done` with the CompletionResult JSON."""

    def delta(self, text: str) -> list[Event]:
        return [("chunk", {"text": text})]

    def end(self, result: CompletionResult, cut: Cut) -> list[Event]:
        return [("done", result.to_json())]


class InfillEvents(StreamEvents):
    """llama.cpp's stream: partial objects with `stop: false`, then the final one."""

    def __init__(self, model: str, fields: list[str] | None):
        self.model, self.fields = model, fields

    def delta(self, text: str) -> list[Event]:
        return [(None, {"index": 0, "content": text, "tokens": [], "stop": False, "id_slot": 0})]

    def end(self, result: CompletionResult, cut: Cut) -> list[Event]:
        final = infill_response(result, cut, self.model, self.fields)
        if not self.fields:
            final["content"] = ""
        return [(None, final)]


def infill_empty(model: str) -> dict[str, Any]:
    """`n_predict: 0` (llama.vscode's cache warm-up request): nothing to generate."""
    return {"index": 0, "content": "", "tokens": [], "id_slot": 0, "stop": True, "model": model,
            "tokens_predicted": 0, "tokens_evaluated": 0, "truncated": False, "stop_type": "limit",
            "stopping_word": "", "tokens_cached": 0, "timings": _timings(0, 0.0, 0, 0.0)}


def _timings(prompt_n: int, prompt_ms: float, pred_n: int, pred_ms: float) -> dict[str, float]:
    def per(n, ms):
        return (round(ms / n, 3) if n else 0.0), (round(1000 * n / ms, 3) if ms else 0.0)
    p_tok, p_sec = per(prompt_n, prompt_ms)
    g_tok, g_sec = per(pred_n, pred_ms)
    return {"prompt_n": prompt_n, "prompt_ms": round(prompt_ms, 3), "prompt_per_token_ms": p_tok,
            "prompt_per_second": p_sec, "predicted_n": pred_n, "predicted_ms": round(pred_ms, 3),
            "predicted_per_token_ms": g_tok, "predicted_per_second": g_sec}


def select_fields(obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """llama.cpp `response_fields`: keep only these "a/b" paths, keyed by the path itself."""
    out: dict[str, Any] = {}
    for path in paths:
        cur: Any = obj
        for key in path.split("/"):
            if not isinstance(cur, dict) or key not in cur:
                break
            cur = cur[key]
        else:
            out[path] = cur
    return out


# -- OpenAI /v1/completions ---------------------------------------------------------------------
def openai_request(body: OpenAICompletion, default_max: int) -> tuple[CompletionRequest, PostRules]:
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise FieldError("prompt: exactly one prompt per request is supported")
        prompt = prompt[0]
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stops) > 64:
        raise FieldError("stop: at most 64 stop strings")
    fim = split_fim_prompt(prompt)
    if fim is not None:
        prefix, suffix, snippets, path = fim
    else:
        prefix, suffix, snippets, path = prompt, body.suffix or "", [], ""
    req = CompletionRequest(prefix=prefix, suffix=suffix, path=path, snippets=snippets,
                            max_tokens=body.max_tokens or default_max, stop="none", **sampling(body))
    return req, PostRules(stop_strings=stops)


def split_fim_prompt(prompt: str) -> tuple[str, str, list[Snippet], str] | None:
    """Undo a client-side FIM template (Continue renders one from the model name).

    Recognises every family the engine knows, in PSM order ending with the middle marker;
    Qwen-style `<|file_sep|>path\\ntext` blocks before the prefix marker become snippets (the
    last one names the current file). Returns None for a plain prompt.
    """
    for fam in FAMILIES:
        pre, suf, mid = fam.prefix, fam.suffix, fam.middle
        body = prompt.rstrip(" ")
        i, j = body.find(pre), body.find(suf)
        if i < 0 or j < i or not body.endswith(mid):
            continue
        prefix, suffix = body[i + len(pre):j], body[j + len(suf):-len(mid)]
        if fam.spaced:                    # "<PRE> {prefix} <SUF>{suffix} <MID>"
            prefix = prefix.removeprefix(" ").removesuffix(" ")
            suffix = suffix.removesuffix(" ")
        snippets, path = _file_blocks(prompt[:i], fam.file_sep)
        return prefix, suffix, snippets, path
    return None


def _file_blocks(head: str, sep: str | None) -> tuple[list[Snippet], str]:
    if not sep or sep not in head:
        return [], ""
    blocks = [b.split("\n", 1) for b in head.split(sep)[1:]]
    snippets = [Snippet(b[0].strip(), b[1] if len(b) > 1 else "") for b in blocks]
    current = snippets.pop() if snippets and not snippets[-1].text.strip() else None
    return snippets, current.path if current else ""


_OPENAI_FINISH = {"eos": "stop", "stop": "stop", "stop_string": "stop", "length": "length",
                  "indent": "stop"}


def openai_response(result: CompletionResult, cut: Cut, body: OpenAICompletion, model: str,
                    req: CompletionRequest) -> dict[str, Any]:
    text = (req.prefix + cut.text) if body.echo else cut.text
    prompt_tokens = result.stats.get("prompt_tokens", 0)
    return {
        "id": _completion_id(), "object": "text_completion", "created": int(time.time()), "model": model,
        "choices": [{"text": text, "index": i, "logprobs": None,
                     "finish_reason": _OPENAI_FINISH.get(cut.reason, "stop")} for i in range(body.n)],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(result.tokens),
                  "total_tokens": prompt_tokens + len(result.tokens)},
    }


class OpenAIEvents(StreamEvents):
    """Streamed completion objects (the prompt first with `echo`), then `data: [DONE]`."""

    def __init__(self, body: OpenAICompletion, model: str, req: CompletionRequest):
        self.body, self.model, self.req = body, model, req
        self.cid, self.created = _completion_id(), int(time.time())

    def _obj(self, piece: str, finish: str | None) -> Event:
        return (None, {"id": self.cid, "object": "text_completion", "created": self.created, "model": self.model,
                       "choices": [{"text": piece, "index": i, "logprobs": None, "finish_reason": finish}
                                   for i in range(self.body.n)]})

    def start(self) -> list[Event]:
        return [self._obj(self.req.prefix, None)] if self.body.echo and self.req.prefix else []

    def delta(self, text: str) -> list[Event]:
        return [self._obj(text, None)]

    def end(self, result: CompletionResult, cut: Cut) -> list[Event]:
        return [self._obj("", _OPENAI_FINISH.get(cut.reason, "stop")), (None, "[DONE]")]


def _completion_id() -> str:
    return "cmpl-" + uuid.uuid4().hex[:24]
