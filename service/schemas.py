"""Request bodies of the three completion dialects, as pydantic models.

Unknown fields are ignored everywhere: llama.cpp and OpenAI clients send many options the
engine has no use for (top_k, samplers, penalties, ...). The standard sampling fields are
honoured: temperature 0 (the default) is greedy and lossless; temperature > 0 samples with the
speculative sampling rule (top_p, seed), so the distribution is the model's own.
Fields that are known are validated strictly enough that a bad value is a clear 422.
"""
from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictStr

MAX_TOKENS_LIMIT = 4096          # the engine's own bound


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Sampling(_Body):
    temperature: float = Field(0.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None                  # llama.cpp sends -1 for "random": same as none


class SnippetIn(_Body):
    path: StrictStr
    text: StrictStr


class NativeCompletion(_Sampling):
    """`POST /v1/codeswift/complete`: the engine's CompletionRequest, over JSON."""
    prefix: StrictStr
    suffix: StrictStr = ""
    path: StrictStr = ""
    language: StrictStr = ""
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    stop: Literal["none", "line", "block"] = "none"
    speculative: bool = True
    doc_id: StrictStr | None = None
    repo_id: StrictStr | None = None
    snippets: list[SnippetIn] = Field(default_factory=list, max_length=256)
    stream: bool = False


class ExtraChunk(_Body):
    """One entry of llama.cpp's `input_extra` (llama.vscode also sends `time`)."""
    filename: StrictStr = ""
    text: StrictStr


class InfillCompletion(_Sampling):
    """`POST /infill`: the llama.cpp server request shape (what llama.vscode sends)."""
    input_prefix: StrictStr = ""
    input_suffix: StrictStr = ""
    input_extra: list[ExtraChunk] = Field(default_factory=list, max_length=256)
    prompt: StrictStr = ""                      # typed on the current line: appended to the prefix
    n_predict: int | None = Field(None, ge=-1, le=MAX_TOKENS_LIMIT)   # -1 = server default
    max_tokens: int | None = Field(None, ge=-1, le=MAX_TOKENS_LIMIT)  # alias some clients use
    n_indent: int = Field(0, ge=0)
    stop: list[StrictStr] = Field(default_factory=list, max_length=64)
    stream: bool = False
    response_fields: list[StrictStr] | None = None


class OpenAICompletion(_Sampling):
    """`POST /v1/completions`: OpenAI's (legacy) completions request."""
    model: StrictStr | None = None
    prompt: Union[StrictStr, list[StrictStr]] = ""
    suffix: StrictStr | None = None
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    stop: Union[StrictStr, list[StrictStr], None] = None
    n: int = Field(1, ge=1, le=16)
    echo: bool = False
    stream: bool = False


class RepoRegistration(_Body):
    """`POST /v1/codeswift/repos`: a repository folder on the server's machine."""
    path: StrictStr = Field(min_length=1)
