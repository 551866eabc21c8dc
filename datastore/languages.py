"""Language registry, read from data: `queries/languages.json` plus one `queries/NAME.scm` each.

Adding a language means adding a grammar wheel, a JSON entry and a query file; no Python
changes. Query captures follow aider's repomap convention:

- `@name.definition.KIND` / `@name.reference.KIND` — a symbol's name node;
- `@chunk.KIND` — a node stored as a chunk (function, method, class, ...).

The same file lists editor language ids (LSP `languageId`, as VS Code spells them): the
language that parses each (none for ruby, lua, ...) and the extensions guessed as it, so front
ends map ids and paths to grammars here too.
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
    lsp_languages: dict[str, str | None]     # LSP languageId -> language name (None: no grammar)
    lsp_by_extension: dict[str, str]         # extension -> LSP languageId

    def language_for(self, path: str) -> str | None:
        """Name of the parseable language for `path`, or None."""
        return self.by_extension.get(os.path.splitext(path)[1].lower())

    def for_lsp_id(self, language_id: str) -> str | None:
        """Name of the parseable language for an LSP languageId, or None (no grammar)."""
        return self.lsp_languages.get(language_id)

    def lsp_id_for(self, path: str) -> str:
        """The LSP languageId guessed from the extension of `path` (a path or URI), or ""."""
        return self.lsp_by_extension.get(os.path.splitext(path)[1].lower(), "")

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
    lsp_langs, lsp_by_ext = {}, {}
    for lsp_id, entry in data["lsp_ids"].items():
        name = entry.get("language")
        if name is not None and name not in langs:
            raise ValueError(f"languages.json: LSP id {lsp_id!r} names unknown language {name!r}")
        lsp_langs[lsp_id] = name
        for ext in entry.get("extensions", langs[name].extensions if name else ()):
            lsp_by_ext[ext] = lsp_id
    return Registry(langs, by_ext, frozenset(data.get("plain_extensions", ())),
                    frozenset(data.get("skip_names", ())), lsp_langs, lsp_by_ext)


_local = threading.local()       # tree-sitter parsers are not thread-safe; one set per thread


@lru_cache(maxsize=None)
def _language(name: str):
    import tree_sitter as ts
    spec = registry().languages[name]
    return ts.Language(getattr(importlib.import_module(spec.module), spec.function)())


@lru_cache(maxsize=None)
def _query(name: str):
    import tree_sitter as ts
    return ts.Query(_language(name), (QUERY_DIR / f"{registry().languages[name].query}.scm").read_text())


def parser(name: str):
    """This thread's tree_sitter.Parser for language `name` (raises when its grammar wheel is
    missing or incompatible)."""
    parsers = _local.__dict__.setdefault("parsers", {})
    if name not in parsers:
        import tree_sitter as ts
        parsers[name] = ts.Parser(_language(name))
    return parsers[name]


def parser_and_query(name: str):
    """(tree_sitter.Parser, tree_sitter.Query) for language `name`; parser is per thread."""
    return parser(name), _query(name)
