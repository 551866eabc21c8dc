"""Where a completion ends: engine stop rules, editor post-processing, HTTP client rules."""
import pytest

from codeswift.ending import (PostRules, apply_rules, cut_block, cut_text, cut_unmatched_closer,
                              drop_suffix_repeat, make_stop, opens_block, postprocess, stop_offset)
from codeswift.types import CompletionResult


class PieceTokenizer:
    """Token i decodes to PIECES[i]: multi-character tokens, as a real BPE vocabulary has."""
    PIECES = ["\n", "    ", "  ", "x", " = 1", "return", " x", "\n\n", "def", " g():", "1\n", "    y"]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.PIECES[i] for i in ids)


# -- token-level stop rules ---------------------------------------------------------------

def test_line_stop():
    assert stop_offset("a + b", "line") is None
    assert cut_text("a + b\n    c", "line") == "a + b"


def test_block_stop_at_dedent():
    text = "    x = 1\n    return x\n\ndef g():\n"
    assert cut_text(text, "block") == "    x = 1\n    return x\n"
    # The cursor line's typed text sets the indentation of the block.
    assert cut_text("1\n    return x\nprint(1)", "block", line_prefix="    x = ") == "1\n    return x"


def test_block_waits_for_content_before_deciding():
    assert stop_offset("    x = 1\n  ", "block") is None
    assert stop_offset("    x = 1\n", "block") is None


def test_none_never_stops():
    assert stop_offset("a\n\nb", "none") is None
    assert make_stop(PieceTokenizer(), "none") is None


@pytest.mark.parametrize("mode, line_prefix, keep", [
    ("line", "", 4),                     # through the token holding the newline
    ("block", "", 8),                    # through "\n\n", before "def" at indent 0
    ("block", "        ", 4),            # typed indentation deepens the block: "    return" ends it
])
def test_stop_cuts_alike_per_token_and_per_step(mode, line_prefix, keep):
    """Checked after every token (plain decoding) or once after each multi-token step
    (speculation), the rule keeps the same tokens."""
    tok = PieceTokenizer()
    out = [1, 3, 4, 0, 1, 5, 6, 7, 8, 9, 0, 11, 10, 2, 3]
    stop = make_stop(tok, mode, line_prefix)
    for step in range(1, len(out) + 1):
        ends = list(range(step, len(out), step)) + [len(out)]
        fired = next(out[:k] for k in ends if stop(out[:k]) is not None)
        assert stop(fired) == keep
    off = stop_offset(tok.decode(out), mode, line_prefix)
    assert len(tok.decode(out[:keep - 1])) <= off < len(tok.decode(out[:keep]))


# -- block openers --------------------------------------------------------------------------

def test_opens_block():
    assert opens_block("    if x:  ", "python") and not opens_block("x = 1", "python")


# -- editor post-processing -----------------------------------------------------------------

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


# -- HTTP client rules ----------------------------------------------------------------------

def test_n_indent_ends_at_a_less_indented_line():
    res = CompletionResult("x = 1\n        y = 2\n    z = 3\n", [1], "length")
    assert apply_rules(res, PostRules(n_indent=8)).text == "x = 1\n        y = 2\n    "
    assert apply_rules(res, PostRules(n_indent=4)).text == res.text
