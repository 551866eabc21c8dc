from codeswift.stops import cut_text, stop_offset


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
