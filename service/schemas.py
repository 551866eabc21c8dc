"""Request bodies of the three completion dialects, as pydantic models.

Unknown fields are ignored everywhere: llama.cpp and OpenAI clients send many options the
engine has no use for (top_k, samplers, penalties, ...). The standard sampling fields are
honoured: temperature 0 (the default) is greedy and lossless; temperature > 0 samples with the
speculative sampling rule (top_p, seed), so the distribution is the model's own.
Fields that are known are validated strictly enough that a bad value is a clear 422.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

from codeswift.types import MAX_SEED, MAX_TOKENS

MAX_TOKENS_LIMIT = MAX_TOKENS             # the engine's own bound
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unicode(text: str) -> str:
    # JSON may escape a lone UTF-16 surrogate ("\\ud800"); no tokenizer can encode one.
    if (m := _SURROGATE.search(text)) is not None:
        raise ValueError(f"not valid Unicode: lone surrogate U+{ord(m.group()):04X} at character {m.start()}")
    return text


Text = Annotated[StrictStr, AfterValidator(_unicode)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Sampling(_Body):
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, le=MAX_SEED)   # llama.cpp sends -1 for "random": any negative is none
    # contextual penalty (codeswift/penalty.py; vLLM's name): 1 = off, window 0 = all tokens
    repetition_penalty: float = Field(1.0, ge=1.0, le=3.0)
    penalty_window: int = Field(0, ge=0, le=65536)


class SnippetIn(_Body):
    path: Text
    text: Text


class NativeCompletion(_Sampling):
    """`POST /v1/codeswift/complete`: the engine's CompletionRequest, over JSON."""
    prefix: Text
    suffix: Text = ""
    path: Text = ""
    language: Text = ""
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    stop: Literal["none", "line", "block"] = "none"
    speculative: bool = True
    doc_id: Text | None = None
    repo_id: Text | None = None
    snippets: list[SnippetIn] = Field(default_factory=list, max_length=256)
    stream: bool = False


class ExtraChunk(_Body):
    """One entry of llama.cpp's `input_extra` (llama.vscode also sends `time`)."""
    filename: Text = ""
    text: Text


class InfillCompletion(_Sampling):
    """`POST /infill`: the llama.cpp server request shape (what llama.vscode sends)."""
    input_prefix: Text = ""
    input_suffix: Text = ""
    input_extra: list[ExtraChunk] = Field(default_factory=list, max_length=256)
    prompt: Text = ""                      # typed on the current line: appended to the prefix
    n_predict: int | None = Field(None, ge=-1, le=MAX_TOKENS_LIMIT)   # -1 = server default
    max_tokens: int | None = Field(None, ge=-1, le=MAX_TOKENS_LIMIT)  # alias some clients use
    n_indent: int = Field(0, ge=0)
    repeat_penalty: float | None = Field(None, ge=1.0, le=3.0)   # llama.cpp's names for the penalty
    repeat_last_n: int | None = Field(None, ge=-1, le=65536)     # -1: the whole context, 0: off
    stop: list[Text] = Field(default_factory=list, max_length=64)
    stream: bool = False
    response_fields: list[Text] | None = None


class OpenAICompletion(_Sampling):
    """`POST /v1/completions`: OpenAI's (legacy) completions request."""
    model: Text | None = None
    prompt: Union[Text, list[Text]] = ""
    suffix: Text | None = None
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    stop: Union[Text, list[Text], None] = None
    n: int = Field(1, ge=1, le=16)
    echo: bool = False
    stream: bool = False


class RepoRegistration(_Body):
    """`POST /v1/codeswift/repos`: a repository folder on the server's machine."""
    path: Text = Field(min_length=1)
