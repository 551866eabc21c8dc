"""Typed errors raised by the engine; the CLI, LSP and HTTP layers turn them into replies."""


class CodeswiftError(Exception):
    """Base class for every error codeswift raises on purpose."""


class BadInputError(CodeswiftError):
    """The caller sent something unusable (offset out of range, missing file, bad option)."""


class ModelLoadError(CodeswiftError):
    """A model could not be resolved, downloaded, verified or loaded."""


class CancelledError(CodeswiftError):
    """A completion was cancelled by its caller before it finished."""


class RuntimeUnusableError(ModelLoadError):
    """A native runtime (llama.cpp) failed its child-process probe: it would crash the server."""
