"""Language registry, read from data: `queries/languages.json` plus one `queries/NAME.scm` each.

Adding a language means adding a grammar wheel, a JSON entry and a query file; no Python
changes. Query captures follow aider's repomap convention:

- `@name.definition.KIND` / `@name.reference.KIND` — a symbol's name node;
- `@chunk.KIND` — a node stored as a chunk (function, method, class, ...).
"""
from __future__ import annotations

import importlib
import json
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

QUERY_DIR = Path(__file__).resolve().parent / "queries"


@dataclass(frozen=True)
class LanguageSpec:
    """One parseable language: grammar wheel, language function and query file stem."""
    name: str
    module: str
    function: str
    extensions: tuple[str, ...]
    query: str


@dataclass(frozen=True)
class Registry:
    """Everything languages.json says: parseable languages and token-only extensions."""
    languages: dict[str, LanguageSpec]
    by_extension: dict[str, str]
    plain_extensions: frozenset[str]
    skip_names: frozenset[str]

    def language_for(self, path: str) -> str | None:
        """Name of the parseable language for `path`, or None."""
        return self.by_extension.get(os.path.splitext(path)[1].lower())

    def is_indexable(self, path: str) -> bool:
        """True when the file is parsed or token-indexed (by extension, lock files excluded)."""
        if os.path.basename(path) in self.skip_names:
            return False
        ext = os.path.splitext(path)[1].lower()
        return ext in self.by_extension or ext in self.plain_extensions


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The registry loaded once from queries/languages.json."""
    data = json.loads((QUERY_DIR / "languages.json").read_text())
    langs, by_ext = {}, {}
    for name, entry in data["languages"].items():
        spec = LanguageSpec(name, entry["module"], entry["function"],
                            tuple(entry["extensions"]), entry.get("query", name))
        langs[name] = spec
        for ext in spec.extensions:
            by_ext[ext] = name
    return Registry(langs, by_ext, frozenset(data.get("plain_extensions", ())),
                    frozenset(data.get("skip_names", ())))


_local = threading.local()       # tree-sitter parsers are not thread-safe; one set per thread


@lru_cache(maxsize=None)
def _language_and_query(name: str):
    import tree_sitter as ts
    spec = registry().languages[name]
    lang = ts.Language(getattr(importlib.import_module(spec.module), spec.function)())
    query = ts.Query(lang, (QUERY_DIR / f"{spec.query}.scm").read_text())
    return lang, query


def parser_and_query(name: str):
    """(tree_sitter.Parser, tree_sitter.Query) for language `name`; parser is per thread."""
    import tree_sitter as ts
    lang, query = _language_and_query(name)
    parsers = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if name not in parsers:
        parsers[name] = ts.Parser(lang)
    return parsers[name], query
