"""The methods `codeswift bench` knows: names, ablations, families and their references.

Two families: transformers (`ar`, `pld`, `codeswift*`) and llama.cpp (`llamacpp-*`,
`codeswift-llamacpp*`, the llama-server peers). Each family is compared with its own plain
greedy run, so `parse_methods` adds that reference when it is not listed.
"""
from __future__ import annotations

from ..engine import EngineConfig
from ..errors import BadInputError
from ..sources import CONTEXT, CORPUS, PREF, REPO, SELF
from .server import SERVER_METHODS, is_server

BASELINES = ("ar", "pld", "llamacpp-ar", "llamacpp-pld")
ABLATIONS = {"-repo": REPO, "-corpus": CORPUS, "-cache": PREF, "-context": CONTEXT,   # method suffix -> source
             "-self": SELF}
OTHER_ABLATIONS = ("-timing", "-tree", "-kv")
KNOWN = ("ar", "pld", "codeswift", "codeswift-ar", *(f"codeswift{a}" for a in (*ABLATIONS, *OTHER_ABLATIONS)),
         "llamacpp-ar", "llamacpp-pld", "codeswift-llamacpp",
         # llama.cpp has no self-drafts (no layer-skip API): nothing for -self to ablate there
         *(f"codeswift-llamacpp{a}" for a in (*ABLATIONS, *OTHER_ABLATIONS) if a != "-self"), *SERVER_METHODS)


def is_llamacpp(method: str) -> bool:
    """llama.cpp methods (GGUF verifier, llama-server peers included) form their own family
    with their own references."""
    return "llamacpp" in method or is_server(method)


def reference(method: str, kind: str = "ar") -> str:
    """The plain-greedy (`ar`) or prompt-lookup (`pld`) baseline a method is compared with."""
    return f"llamacpp-{kind}" if is_llamacpp(method) else kind


def parse_methods(spec: str) -> list[str]:
    """The methods of a comma-separated `--methods`, each family's reference first when missing."""
    methods = [m.strip() for m in spec.split(",") if m.strip()]
    for m in methods:
        if m not in KNOWN:
            raise BadInputError(f"unknown method {m!r}; known: {', '.join(KNOWN)}")
    if len(set(methods)) != len(methods):
        raise BadInputError(f"a method is listed twice in {spec!r}")
    # Each family's plain greedy run is the reference for identical-output checks.
    for fam_ref, in_fam in (("llamacpp-ar", is_llamacpp), ("ar", lambda m: not is_llamacpp(m))):
        if any(in_fam(m) for m in methods) and fam_ref not in methods:
            methods.insert(0, fam_ref)
    return methods


def engine_config(method: str, base: EngineConfig) -> EngineConfig:
    """The engine configuration of a `codeswift*` method: `base` less what its ablation removes."""
    cfg = EngineConfig(**base.__dict__)
    suffix = method[len("codeswift"):]
    if suffix.startswith("-llamacpp"):
        cfg.backend, suffix = "llamacpp", suffix[len("-llamacpp"):]
    if suffix in ABLATIONS:
        cfg.sources = tuple(s for s in cfg.sources if s != ABLATIONS[suffix])
    elif suffix == "-timing":
        cfg.timing = False
    elif suffix == "-tree":
        cfg.tree = False
    elif suffix == "-kv":
        cfg.kv_reuse = False
    return cfg
