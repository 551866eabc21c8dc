"""LSP languageIds come from the one language registry (datastore/queries/languages.json)."""
import logging
import threading

import pytest

import lsp.context as context
from datastore import languages
from datastore.languages import registry
from lsp.context import in_comment_or_string, language_of

# Every extension lsp/context.py guessed before the registry held LSP ids, plus C and C++.
GUESSED = {".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript",
           ".cjs": "javascript", ".jsx": "javascriptreact", ".ts": "typescript",
           ".tsx": "typescriptreact", ".go": "go", ".rs": "rust", ".java": "java",
           ".rb": "ruby", ".lua": "lua", ".sh": "shellscript", ".ex": "elixir",
           ".c": "c", ".h": "cpp", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".PY": "python"}


@pytest.mark.parametrize("ext, language_id", sorted(GUESSED.items()))
def test_language_id_guessed_from_the_extension(ext, language_id):
    assert language_of("", f"file:///x/a{ext}") == language_id
    assert language_of("cobol", f"file:///x/a{ext}") == "cobol"            # the client's id wins


def test_unknown_extension_has_no_language_id():
    assert language_of("", "file:///x/Makefile") == "" and language_of("", "/x/a.png") == ""


def test_lsp_ids_map_to_registry_languages():
    reg = registry()
    assert {i: reg.for_lsp_id(i) for i in ("python", "javascript", "javascriptreact", "typescript",
                                           "typescriptreact", "go", "rust", "java", "c", "cpp")} == {
        "python": "python", "javascript": "javascript", "javascriptreact": "javascript",
        "typescript": "typescript", "typescriptreact": "tsx", "go": "go", "rust": "rust", "java": "java",
        "c": "c", "cpp": "cpp"}
    assert [reg.for_lsp_id(i) for i in ("ruby", "lua", "shellscript", "elixir", "cobol", "")] == [None] * 6


def test_every_parsed_extension_has_an_lsp_id_of_its_language():
    reg = registry()
    for name, spec in reg.languages.items():
        for ext in spec.extensions:
            assert reg.for_lsp_id(reg.lsp_id_for("a" + ext)) == name, ext


@pytest.mark.parametrize("language, comment, string, code", [
    ("python", "x = 1  # note:", 's = "ab', "def f():"),
    ("javascript", "// note {", "s = 'ab", "function f() {"),
    ("javascriptreact", ("/* note {", " */\n"), 'const s = "ab', "const A = () => <div>{"),
    ("typescript", "// note {", 'let s: string = "ab', "function f(x: number) {"),
    ("typescriptreact", "// note {", 'const s = "ab', "const A = (p: P) => <div>{"),
    ("go", "// note {", 's := "ab', "func f() {"),
    ("rust", "// note {", 'let s = "ab', "fn f() {"),
    ("java", ("/** note {", " */\n"), 'String s = "ab', "void f() {"),
    ("c", ("/* note {", " */\n"), 'char *s = "ab', "int f(void) {"),
    ("cpp", "// note {", 'auto s = std::string("ab', "namespace n {"),
])
def test_comment_or_string_in_every_language_with_a_grammar(language, comment, string, code):
    prefix, suffix = comment if isinstance(comment, tuple) else (comment, "\n")
    assert in_comment_or_string(prefix, suffix, language)
    assert in_comment_or_string(string, 'cd"\n', language)
    assert not in_comment_or_string(code, "\n}\n", language)


def test_lsp_and_chunker_share_one_parser_per_thread():
    parser = context._parser("typescriptreact")
    assert parser is languages.parser("tsx") is languages.parser_and_query("tsx")[0]
    other = []
    t = threading.Thread(target=lambda: other.append(context._parser("typescriptreact")))
    t.start()
    t.join()
    assert other[0] is not None and other[0] is not parser


def test_missing_grammar_falls_back_to_text_rules_and_logs_once(monkeypatch, caplog):
    calls = []

    def missing(name):
        calls.append(name)
        raise ImportError("No module named 'tree_sitter_go'")
    monkeypatch.setattr(languages, "parser", missing)
    monkeypatch.setattr(context, "_no_grammar", set())
    with caplog.at_level(logging.INFO, logger="lsp.context"):
        assert not in_comment_or_string("// note {", "\n", "go")
        assert not in_comment_or_string("// again {", "\n", "go")
    assert calls == ["go"]
    assert [r.getMessage() for r in caplog.records] == [
        "no tree-sitter grammar for go (No module named 'tree_sitter_go'); using text rules only"]
