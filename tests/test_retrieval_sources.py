"""RepoSource and CorpusSource return the right continuations on a tiny repository."""
import pytest

from codeswift.pref_cache import PrefCache
from codeswift.retrieval_sources import CorpusSource, RepoSource
from codeswift.sources import CursorContext, cursor_tokens
from codeswift.sources import DraftContext
from datastore.corpus import Corpus
from datastore.repo_index import RepoIndex

GEOMETRY = '''def area(width, height):
    return width * height


def volume(width, height, depth):
    return area(width, height) * depth
'''
MATRIX = '''class Matrix:
    def transpose(self):
        return Matrix([list(col) for col in zip(*self.rows)])
'''


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_qwen)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "repo" / "pkg").mkdir(parents=True)
    (tmp_path / "repo" / "pkg" / "geometry.py").write_text(GEOMETRY)
    (tmp_path / "repo" / "pkg" / "matrix.py").write_text(MATRIX)
    return tmp_path / "repo"


def fim(tokenizer, prefix, suffix=""):
    """A fill-in-the-middle prompt as the engine builds it, and its DraftContext."""
    ids = tokenizer.encode(f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>",
                           add_special_tokens=False)
    return DraftContext(tokens=ids, prompt_len=len(ids), path="pkg/new.py")


def step(ctx, tokenizer, generated):
    ids = tokenizer.encode(generated, add_special_tokens=False)
    return DraftContext(tokens=ctx.tokens + ids, prompt_len=ctx.prompt_len, path=ctx.path, step=1)


def texts(tokenizer, drafts):
    return [tokenizer.decode(d.tokens) for d in drafts]


def test_cursor_tokens_of_fim_and_plain_prompts(tokenizer):
    special = set(tokenizer.all_special_ids)
    ctx = fim(tokenizer, "a = 1\n", "b = 2\n")
    before, after = cursor_tokens(ctx.tokens, ctx.prompt_len, special)
    assert (tokenizer.decode(before), tokenizer.decode(after)) == ("a = 1\n", "b = 2\n")
    ctx = fim(tokenizer, "a = 1\n")
    assert [tokenizer.decode(p) for p in cursor_tokens(ctx.tokens, ctx.prompt_len, special)] == ["a = 1\n", ""]
    plain = tokenizer.encode("x = 1\n", add_special_tokens=False)
    assert cursor_tokens(plain, len(plain), special) == (plain, [])
    # The engine puts the text typed on the cursor line after the middle token.
    from codeswift.prompt import PromptBuilder
    from codeswift.types import CompletionRequest
    ids = PromptBuilder(tokenizer).build(CompletionRequest(prefix="a = 1\nb = ", suffix="c = 3\n"))
    before, after = cursor_tokens(ids, len(ids), special)
    # the trailing space is healed: the model writes it, so the prompt ends at "b ="
    assert (tokenizer.decode(before), tokenizer.decode(after)) == ("a = 1\nb =", "c = 3\n")
    cc = CursorContext(special)
    ctx = fim(tokenizer, "a = 1\n", "zzz")
    cc.reset(ctx)
    later = step(ctx, tokenizer, "b")
    assert tokenizer.decode(cc.tokens(later, 100)) == "a = 1\nb"


def test_repo_source_continues_the_text_before_the_cursor(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    source = RepoSource(index)
    ctx = fim(tokenizer, "from pkg import area\n\ndef area(width, height):\n", "\nprint(1)\n")
    source.reset(ctx)
    drafts = source.propose(ctx, 40, 2)
    assert texts(tokenizer, drafts)[0].startswith("    return width * height\n")
    d = drafts[0]
    assert d.source == "repo" and d.score == d.meta["match_len"] + d.meta["count"] / (d.meta["count"] + 1)
    assert d.meta["match_len"] >= 5

    later = step(ctx, tokenizer, "    return area(width, height) * ")
    assert texts(tokenizer, source.propose(later, 40, 1)) == ["depth\n"]     # the file ends there


def test_repo_source_sees_unsaved_edits_and_can_exclude_the_current_file(repo, tokenizer):
    index = RepoIndex.open_or_build(repo, tokenizer, progress=False)
    index.update_file("pkg/new.py", "def cube(side):\n    return side ** 3\n")
    source = RepoSource(index)
    ctx = fim(tokenizer, "def cube(side):\n")
    source.reset(ctx)
    assert texts(tokenizer, source.propose(ctx, 40, 1))[0].startswith("    return side ** 3")
    excluding = RepoSource(index, exclude_current=True)
    excluding.reset(ctx)
    assert all("side ** 3" not in t for t in texts(tokenizer, excluding.propose(ctx, 40, 4)))


def test_corpus_source_fetches_similar_chunks_once_and_drafts_from_them(repo, tokenizer, tmp_path):
    corpus = Corpus.build([repo], tmp_path / "corpus", tokenizer, progress=False)
    source = CorpusSource(corpus, k_chunks=1)
    ctx = fim(tokenizer, "m = Matrix(rows)\nt = m.transpose()\n\ndef transpose(self):\n")
    source.reset(ctx)
    assert [(h.path, h.name) for h in source.last_hits] == [("repo/pkg/matrix.py", "transpose")]
    drafts = source.propose(ctx, 40, 4)
    assert texts(tokenizer, drafts)[0].startswith("        return Matrix([list(col)")
    assert drafts[0].meta["origin"] == "chunks"

    only_global = CorpusSource(corpus, k_chunks=0)
    only_global.reset(ctx)
    assert only_global.last_hits == []
    drafts = only_global.propose(step(ctx, tokenizer, "    return area("), 40, 1)
    assert texts(tokenizer, drafts) == ["width, height) * depth\n"]
    assert drafts[0].meta["origin"] == "corpus"


def test_pref_cache_keys_fim_prompts_by_the_text_before_the_cursor(tokenizer):
    cache = PrefCache(ngram_sizes=(4,), special_ids=tokenizer.all_special_ids)
    ctx = fim(tokenizer, "def total(xs):\n", "\n# first suffix\n")
    cache.reset(ctx)
    out = tokenizer.encode("    return sum(xs)\n", add_special_tokens=False)
    cache.observe(ctx, out)
    again = fim(tokenizer, "def total(xs):\n", "\n# the suffix changed\n")
    cache.reset(again)
    assert texts(tokenizer, cache.propose(again, 40, 1)) == ["    return sum(xs)\n"]
