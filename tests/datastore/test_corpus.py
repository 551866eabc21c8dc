"""General corpus: units, FAISS retrieval, exact lookup, persistence."""
import pytest

from datastore import storage
from datastore.corpus import CORPUS_FILE, Corpus, retrieval_units
from datastore.docstore import FileRecord
from datastore.tokens import encode

STRINGS = '''def reverse_words(sentence):
    return " ".join(reversed(sentence.split()))


def capitalize_words(sentence):
    return " ".join(w.capitalize() for w in sentence.split())
'''
NUMBERS = '''class Matrix:
    """Dense matrix."""

    def transpose(self):
        return Matrix([list(col) for col in zip(*self.rows)])

    def determinant(self):
        return self.rows[0][0] * self.rows[1][1] - self.rows[0][1] * self.rows[1][0]
'''
NET = '''import socket


def open_connection(host, port):
    sock = socket.create_connection((host, port), timeout=5)
    return sock
'''


@pytest.fixture
def sources(make_tree):
    a = make_tree({"strings.py": STRINGS, "numbers.py": NUMBERS}, name="liba")
    b = make_tree({"net/conn.py": NET}, name="libb")
    return [a, b]


def test_units_are_leaves_and_container_headers():
    rec = FileRecord("m.py", "", "python", 100, chunks=[
        ["class", "A", 1, 9, 0, 200, 0, 60],
        ["method", "f", 4, 5, 40, 90, 12, 30],
        ["method", "g", 7, 9, 100, 200, 34, 60],
        ["block", "", 11, 12, 210, 230, 62, 66],       # 4 tokens: too small to retrieve
    ])
    assert retrieval_units(rec) == [(0, 12, 0), (12, 30, 1), (34, 60, 2)]
    window = FileRecord("n.md", "", None, 600)
    assert retrieval_units(window) == [(0, 256, -1), (256, 512, -1), (512, 600, -1)]


@pytest.mark.parametrize("embedder", ["hashed"])
def test_build_search_lookup_and_reopen(sources, tokenizer, tmp_path, embedder):
    out = tmp_path / "corpus"
    corpus = Corpus.build(sources, out, tokenizer, embedder=embedder, progress=False)
    assert (out / CORPUS_FILE).is_file()
    assert [f.rel for f in corpus.store.files] == ["liba/numbers.py", "liba/strings.py", "libb/net/conn.py"]
    assert corpus.stats()["units"] == len(corpus.units) == 7   # class header, 2 methods, 2 functions, import block, 1 function

    hit = corpus.search("m = Matrix(rows)\nm.transpose()", k=1)[0]
    assert (hit.path, hit.kind, hit.name) == ("liba/numbers.py", "method", "transpose")
    # the first token may carry the indentation before "def"
    assert tokenizer.decode(corpus.unit_tokens(hit.unit)).lstrip().startswith("def transpose(self):")
    assert corpus.search("sock = socket.create_connection(addr)", k=1)[0].name == "open_connection"

    got = corpus.lookup(encode(tokenizer, "def reverse_words(sentence):\n"), 30, 2)
    assert tokenizer.decode(got[0].tokens).startswith('    return " ".join(reversed(')

    again = Corpus.open(out, tokenizer)
    assert again.search("m.transpose()", k=1)[0].unit == corpus.search("m.transpose()", k=1)[0].unit
    rebuilt = Corpus.build(sources, out, tokenizer, embedder=embedder, progress=False)
    assert rebuilt.report.reason == "unchanged" and rebuilt.report.processed == 0


def test_stale_or_corrupt_corpus_is_never_trusted(sources, tokenizer, tmp_path, monkeypatch):
    out = tmp_path / "corpus"
    Corpus.build(sources, out, tokenizer, progress=False)
    monkeypatch.setattr(storage, "FORMAT_VERSION", storage.FORMAT_VERSION + 1)
    with pytest.raises(storage.StaleIndex):
        Corpus.open(out, tokenizer)
    assert Corpus.open_or_build(sources, out, tokenizer).report.reason.startswith("rebuilt")
    monkeypatch.undo()
    (out / CORPUS_FILE).write_bytes(b"\0" * 100)
    with pytest.raises(storage.CorruptIndex):
        Corpus.open(out, tokenizer)
    corpus = Corpus.open_or_build(sources, out, tokenizer)
    assert corpus.search("m.transpose()", k=1)[0].name == "transpose"


def test_incremental_corpus_build(sources, tokenizer, tmp_path):
    out = tmp_path / "corpus"
    Corpus.build(sources, out, tokenizer, progress=False)
    (sources[1] / "net" / "conn.py").write_text(NET + "\n\ndef close(sock):\n    sock.close()\n")
    corpus = Corpus.build(sources, out, tokenizer, progress=False)
    assert (corpus.report.processed, corpus.report.reused) == (1, 2)
    assert corpus.search("sock.close()", k=1)[0].name == "close"


def test_missing_source_folder(tmp_path, tokenizer):
    with pytest.raises(NotADirectoryError):
        Corpus.build([tmp_path / "nope"], tmp_path / "out", tokenizer, progress=False)


def test_hashed_embedder_features():
    from datastore.embedders import HashedEmbedder
    emb = HashedEmbedder(dim=64).fit(["parseHttpHeader(x)", "other_thing()"])
    v = emb.embed(["parseHttpHeader", "parse_http_header", "", "unrelated"])
    assert v.shape == (4, 64)
    assert abs(float(v[0] @ v[0]) - 1.0) < 1e-5 and float(v[2] @ v[2]) == 0.0
    assert float(v[0] @ v[1]) > 0.5 > float(v[0] @ v[3])       # sub-words match across styles
