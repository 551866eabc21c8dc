"""codeswift's language server (`codeswift lsp`): inline completion and completion for any editor.

Modules: server (LSP glue), options (initializationOptions), documents (document mirror),
context (single- vs multi-line), completer (debounce, cancel, the completion cache of
codeswift/completion_cache.py),
warmup (the warm-up state machine), ticket (a request's cancellation flag), host (the engine:
local, or remote `codeswift serve`), indexing (the loading/indexing state machine), remote,
stats, progress, protocol, convert, cli. Where a completion ends: codeswift/ending.py.
"""
