"""Single- vs multi-line decision and completion post-processing (pure functions)."""
import pytest

from lsp.context import decide_stop, in_comment_or_string, language_of, opens_block
from lsp.postprocess import cut_block, cut_unmatched_closer, drop_suffix_repeat, postprocess


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
    assert opens_block("    if x:  ", "python") and not opens_block("x = 1", "python")


def test_block_opened_on_the_cursor_line_ends_at_dedent():
    text = "\n    return 1\n\ndef g():\n    pass"
    assert cut_block(text, "def f():", "python") == "\n    return 1"


def test_block_keeps_the_closing_brace_line():
    text = "\n  return 1;\n}\nfunction g() {}"
    assert cut_block(text, "function f() {", "javascript") == "\n  return 1;\n}"


def test_block_untouched_when_cursor_line_opens_nothing():
    assert cut_block("a\nb", "    ", "python") == "a\nb"


def test_suffix_repeat_at_end_of_line_is_dropped():
    assert drop_suffix_repeat("a, b)", ")\n") == "a, b"
    assert drop_suffix_repeat("x])", "]):\n") == "x"
    assert drop_suffix_repeat("value", "value\n") == ""                 # the model repeated the rest
    assert drop_suffix_repeat("max", "x + 1\n") == "max"                # a shared letter is not a repeat


def test_suffix_repeat_of_following_line_is_dropped():
    text = "y = x * 2\n    return y"
    assert drop_suffix_repeat(text, "\n    return y\n") == "y = x * 2"


def test_unmatched_closers_are_cut():
    assert cut_unmatched_closer("1)) + 2", "x = (", "python") == "1)"
    assert cut_unmatched_closer("a]", "f(", "python") == "a"                     # wrong kind
    assert cut_unmatched_closer("x)", "foo(\n    a,\n    ", "python") == "x)"     # opened lines above
    assert cut_unmatched_closer('bar")', 'print("foo', "python") == 'bar")'       # quote opened before
    assert cut_unmatched_closer('")" + x', "s = ", "python") == '")" + x'         # closer in a string


def test_postprocess_combines_rules_and_trims():
    assert postprocess("a, b)   ", "foo(", ")\n", "line", "python") == "a, b"
    assert postprocess("\n    return 1\n\ndef g():", "def f():", "", "block", "python") == "\n    return 1"
    assert postprocess("   \n  ", "x = 1\n", "", "block", "python") == ""
