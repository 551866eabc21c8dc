"""llama-server peers in `codeswift bench`: methods llama-server (plain) and
llama-server-ngram-{simple,map-k,mod} (llama-server's own model-free speculative decoding).

They are what an editor talking to a stock llama-server gets. Each method has its own server
process (own KV and prompt cache, so no method inherits another's), started once per run on
the same GGUF and thread count as the other llama.cpp methods, and sent the same token-id
prompt; their reference is `llamacpp-ar`. Session mode uses llama-server's own prompt cache
(cache_prompt true, as users get it); cold mode sends cache_prompt false.

Between tasks each server's slot is erased (and the host-RAM prompt cache is off), like the
other methods' cache resets. One thing cannot be reset short of a restart: ngram-mod's n-gram
hash pool lives for the whole process, so it keeps what earlier requests generated.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import BadInputError

SERVER_METHODS = {"llama-server": None, "llama-server-ngram-simple": "ngram-simple",
                  "llama-server-ngram-map-k": "ngram-map-k", "llama-server-ngram-mod": "ngram-mod"}
DEFAULT_DRAFT = 6


def is_server(method: str) -> bool:
    return method in SERVER_METHODS


def default_server_methods(log=print) -> list[str]:
    """The server methods to add to `--backend llamacpp`'s defaults: all of them when a
    llama-server binary is found, none (and one line saying so) otherwise."""
    from ..llama_server import BUILD_HINT, find_server
    if find_server() is not None:
        return list(SERVER_METHODS)
    log(f"llama-server methods skipped: no llama-server binary; {BUILD_HINT}")
    return []


def require_server(methods: list[str]) -> Path | None:
    """The binary for the requested server methods; a clear error when there is none."""
    if not any(is_server(m) for m in methods):
        return None
    from ..llama_server import BUILD_HINT, find_server
    binary = find_server()
    if binary is None:
        asked = ", ".join(m for m in methods if is_server(m))
        raise BadInputError(f"methods {asked} need a llama-server binary; {BUILD_HINT}")
    return binary


class ServerPeers:
    """One running LlamaServer per requested server method."""

    def __init__(self, gguf: str | Path, methods: list[str], threads: int | None = None,
                 draft: int = DEFAULT_DRAFT, n_ctx: int = 4096, lookup: int | None = 3):
        from ..llama_server import LlamaServer
        binary = require_server(methods)
        self.servers: dict = {}
        try:
            for m in methods:
                if is_server(m):
                    self.servers[m] = LlamaServer(gguf, threads=threads, spec_type=SERVER_METHODS[m],
                                                  draft=draft, lookup=lookup, n_ctx=n_ctx, binary=binary,
                                                  cache_ram_mib=0).start()
        except BaseException:
            self.close()
            raise

    def run(self, method: str, prompt: list[int], max_new: int, eos_ids: set[int], stop,
            session: bool) -> dict:
        r = self.servers[method].complete(prompt, max_new, eos_ids, stop, cache_prompt=session)
        return {**r, "steps": None, "per_source": {}}

    def reset(self) -> None:
        """Between tasks, like the other methods' cache resets: no prompt state carries over.
        (The host-RAM prompt cache is off, --cache-ram 0, for the same reason; within a task the
        slot's own prompt cache is what an editor session gets.)"""
        for s in self.servers.values():
            s.reset()

    def describe(self) -> dict[str, str]:
        return {m: " ".join(s.command()[1:]) for m, s in self.servers.items()}

    def close(self) -> None:
        for s in self.servers.values():
            s.stop()
        self.servers.clear()
