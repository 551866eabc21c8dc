"""Single- vs multi-line decision from the text around the cursor (pure functions)."""
import pytest

from lsp.context import decide_stop, in_comment_or_string, language_of


@pytest.mark.parametrize("prefix, suffix, language, mode", [
    ("def f(x):", "", "python", "block"),                          # end of a block opener
    ("def f(x):\n    ", "\n", "python", "block"),                  # empty line after an opener
    ("function f() {\n  ", "\n}\n", "javascript", "block"),
    ("x = 1\n", "", "python", "block"),                             # empty line at end of file
    ("x = 1\n", "\ny = 2\n", "python", "line"),                    # empty line between statements
    ("x = foo(", ")\n", "python", "line"),                          # text after the cursor
    ("return a +", "\n", "python", "line"),                         # plain end of line
    ("x = 1  # note:", "\n", "python", "line"),                     # opener inside a comment
    ('s = "a:', '"\n', "python", "line"),
    ("items.each do", "\n", "ruby", "block"),
])
def test_decide_stop(prefix, suffix, language, mode):
    assert decide_stop(prefix, suffix, language) == mode


def test_comment_detection_uses_tree_sitter():
    assert in_comment_or_string("x = 1  # a comment:", "\n", "python")
    assert in_comment_or_string('s = "abc', 'def"\n', "python")
    assert not in_comment_or_string('s = "abc"', "\n", "python")
    assert not in_comment_or_string("def f():", "\n", "python")
    assert in_comment_or_string("// note {", "\n", "javascript")
    assert not in_comment_or_string("# no grammar", "\n", "cobol")     # unknown language: text rules only


def test_language_from_extension_when_client_sends_none():
    assert language_of("", "file:///x/a.py") == "python"
    assert language_of("", "file:///x/a.tsx") == "typescriptreact"
    assert language_of("rust", "file:///x/a.py") == "rust"
