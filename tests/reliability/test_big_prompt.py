"""A huge prefix costs what its tail does: the prompt cut tokenises only the lines that can fit,
and gives exactly the tokens of the plain rule (drop whole blocks of lines from the top,
re-tokenise, until the rest fits)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from codeswift.prompt import PromptBudget, PromptBuilder
from codeswift.testing import SAMPLE_CODE


def plain_cut(builder: PromptBuilder, prefix: str) -> list[int]:
    """The rule as first written (quadratic in the number of lines): the oracle."""
    lines = prefix.splitlines(keepends=True)
    start, ids = 0, builder.encode_lines(prefix)
    while len(ids) > builder.budget.prefix and start < len(lines) - 1:
        start = min(start + builder.budget.align_lines, len(lines) - 1)
        ids = builder.encode_lines("".join(lines[start:]))
    return ids[-builder.budget.prefix:]


lines = st.one_of(st.sampled_from(SAMPLE_CODE.splitlines(keepends=True)), st.text(max_size=30),
                  st.just("x" * 400 + "\n"), st.sampled_from(["\n", "\r\n", "\r", "\x0c", "\u2028"]))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(parts=st.lists(lines, max_size=60), prefix_budget=st.integers(1, 200), align=st.integers(1, 9))
def test_tail_cut_equals_the_plain_rule(tiny_qwen, parts, prefix_budget, align):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    builder = PromptBuilder(tok, PromptBudget(prefix=prefix_budget, align_lines=align))
    prefix = "".join(parts)
    assert builder.cut_prefix(prefix) == plain_cut(builder, prefix)


def test_a_megabyte_prefix_tokenises_only_its_tail(tiny_qwen):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_qwen)
    builder = PromptBuilder(tok)
    calls = []
    encode = builder._encode_cached
    builder._encode_cached = lambda line: calls.append(line) or encode(line)
    prefix = "".join(f"value_{i} = {i} * 2\n" for i in range(60_000))
    ids = builder.cut_prefix(prefix)
    assert 0 < len(ids) <= builder.budget.prefix
    assert len(calls) < 4 * (builder.budget.prefix + builder.budget.align_lines)
