"""codeswift's language server (`codeswift lsp`): inline completion and completion for any editor.

Modules: server (LSP glue), options (initializationOptions), documents (document mirror),
context (single- vs multi-line), postprocess, completion_cache, completer (debounce, cancel,
cache), backend (local engine or remote `codeswift serve`), remote, stats, progress, protocol,
worker, cli.
"""
