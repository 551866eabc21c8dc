"""General corpus: code folders (e.g. the Python standard library) as one datastore.

    corpus = Corpus.build(["/usr/lib/python3.11"], out_dir, tokenizer, embedder="hashed")
    corpus = Corpus.open(out_dir, tokenizer)          # StaleIndex / CorruptIndex / FileNotFoundError
    corpus = Corpus.open_or_build(sources, out_dir, tokenizer)
    corpus.lookup(context_tokens, max_len, max_drafts) -> [Continuation]   # exact suffix lookup
    corpus.search(query_text, k) -> [CorpusHit]       # FAISS over retrieval units
    corpus.unit_tokens(hit.unit) -> np.ndarray

Retrieval units are the leaves of the chunk tree (functions, methods, small classes, blocks)
plus the header of each container (a class up to its first method), at most
`UNIT_MAX_TOKENS` tokens each; files without chunks are cut into windows. Unit embeddings go
into a FAISS 8-bit scalar-quantised inner-product index (a quarter of float32's memory).

Default embedder "hashed" (512 dims), chosen by measurement on the 150 repo-dev tasks
(`scripts/bench_index.py embedders`: corpus = the 4 repositories, 2,165 units; the 8 units
nearest to 128 tokens before + 21 after the cursor, task file excluded; share of the gold
completion's token 4-grams found in them; ceiling with every unit of other files: 18.4%):
hashed-512 7.7% (build 3 s, query ~1 ms), hashed-1024 7.6%, MiniLM 6.5% (build 233 s,
query 126 ms), random 0.7%.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from datastore import storage
from datastore.docstore import BuildReport, DocStore, FileRecord, build_docstore
from datastore.embedders import make_embedder
from datastore.progress import Listener, Progress
from datastore.repo_index import load_store
from datastore.suffix_index import Continuation, lookup
from datastore.tokens import fingerprint

KIND = "codeswift-corpus"
CORPUS_FILE = "corpus.npz"
UNIT_MAX_TOKENS = 512
EMBED_BATCH = 256


@dataclass(frozen=True)
class CorpusHit:
    unit: int
    path: str
    kind: str
    name: str
    score: float


def retrieval_units(record: FileRecord) -> list[tuple[int, int, int]]:
    """(tok_start, tok_end, chunk index or -1) of the file's retrieval units."""
    rows = record.chunks                           # sorted by (start, -end): children follow
    out = []
    for i, c in enumerate(rows):
        j = i + 1
        while j < len(rows) and (rows[j][4], rows[j][5]) == (c[4], c[5]):
            j += 1
        first_child = rows[j] if j < len(rows) and rows[j][4] < c[5] else None
        end = first_child[6] if first_child else c[7]
        out += [(s, min(s + UNIT_MAX_TOKENS, end), i) for s in range(c[6], end, UNIT_MAX_TOKENS)
                if min(s + UNIT_MAX_TOKENS, end) - s >= 8]
    if not rows:
        out = [(s, min(s + UNIT_MAX_TOKENS // 2, record.n_tokens), -1)
               for s in range(0, record.n_tokens, UNIT_MAX_TOKENS // 2)]
    return out


class Corpus:
    """A general code datastore: suffix index over all tokens + FAISS over unit embeddings."""

    def __init__(self, store: DocStore, units: np.ndarray, embedder, faiss_index, tokenizer,
                 path: Path, report: BuildReport | None = None):
        self.store, self.units, self.embedder = store, units, embedder   # units: [U, 4]
        self.faiss_index, self.tokenizer, self.path = faiss_index, tokenizer, path
        self.report = report or BuildReport(reason="loaded")

    # ---- building / loading ---------------------------------------------------------------

    @classmethod
    def build(cls, sources: Sequence[str | Path], out_dir: str | Path, tokenizer,
              embedder="hashed", progress: bool = True, exclude: Sequence[str] = (),
              max_bytes: int | None = None, listener: Listener | None = None) -> "Corpus":
        """Index `sources` (folders) into `out_dir/corpus.npz`, reusing unchanged files of a
        previous corpus there. `embedder`: "hashed", "minilm" or an embedder object;
        `exclude`: gitignore-style patterns, e.g. ["site-packages/", "test/"]; `max_bytes`:
        the files that fit, in source order; `listener(stage, done, total)` hears progress."""
        roots = _roots(sources)
        path = Path(out_dir).resolve() / CORPUS_FILE
        fp = fingerprint(tokenizer)
        try:
            old = cls.open(out_dir, tokenizer)
            previous, why = old.store, ""
        except (FileNotFoundError, storage.StaleIndex, storage.CorruptIndex) as e:
            old = None
            previous, why = load_store(path, fp, KIND)     # keeps the files when only FAISS broke
            why = why or f"rebuilt ({type(e).__name__})"
        with Progress(progress, listener=listener) as bar:
            store, report = build_docstore(roots, tokenizer, previous, bar, exclude, max_bytes=max_bytes)
            same = (old is not None and old.embedder.name == getattr(embedder, "name", embedder)
                    and (isinstance(embedder, str) or _dim(old.embedder) == _dim(embedder)))
            if same and report.reason == "unchanged":
                old.report = report
                return old
            t0 = time.perf_counter()
            units = np.array([(d, s, e, c) for d, rec in enumerate(store.files)
                              for s, e, c in retrieval_units(rec)], np.int64).reshape(-1, 4)
            texts = _unit_texts(tokenizer, store, units)
            emb = (make_embedder(embedder) if isinstance(embedder, str) else embedder).fit(texts)
            step = bar.stage("embedding", len(texts))
            vecs = np.zeros((len(texts), _dim(emb)), np.float32)
            for i in range(0, len(texts), EMBED_BATCH):
                vecs[i:i + EMBED_BATCH] = emb.embed(texts[i:i + EMBED_BATCH])
                step(len(texts[i:i + EMBED_BATCH]))
            index = _faiss_index(vecs)
        report.seconds += time.perf_counter() - t0
        if why:
            report.reason = why
        corpus = cls(store, units, emb, index, tokenizer, path, report)
        corpus.save(fp)
        return corpus

    @classmethod
    def open(cls, out_dir: str | Path, tokenizer) -> "Corpus":
        """Load a saved corpus built with this tokenizer (raises StaleIndex, CorruptIndex,
        FileNotFoundError)."""
        import faiss
        path = Path(out_dir).resolve() / CORPUS_FILE
        meta, arrays = storage.load(path, KIND, fingerprint(tokenizer))
        store = DocStore.from_saved(meta, arrays)
        try:
            units = arrays["units"].astype(np.int64).reshape(-1, 4)
            index = faiss.deserialize_index(arrays["faiss"])
            state = {k[4:]: v for k, v in arrays.items() if k.startswith("emb_")}
            emb = make_embedder(meta["embedder"], state)
            ok = (index.ntotal == len(units) and index.d == _dim(emb)
                  and (len(units) == 0 or (units[:, 0].min() >= 0 and units[:, 0].max() < len(store.files))))
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise storage.CorruptIndex(f"{path}: {e}") from e
        if not ok:
            raise storage.CorruptIndex(f"{path}: units and embeddings disagree")
        return cls(store, units, emb, index, tokenizer, path)

    @classmethod
    def open_or_build(cls, sources: Sequence[str | Path], out_dir: str | Path, tokenizer,
                      embedder="hashed", progress: bool = False) -> "Corpus":
        """The saved corpus when usable, else a (re)build from `sources`."""
        try:
            return cls.open(out_dir, tokenizer)
        except (FileNotFoundError, storage.StaleIndex, storage.CorruptIndex):
            return cls.build(sources, out_dir, tokenizer, embedder, progress)

    def save(self, fp: str | None = None) -> None:
        import faiss
        meta, arrays = self.store.to_saved()
        meta["embedder"] = self.embedder.name
        arrays["units"] = self.units
        arrays["faiss"] = faiss.serialize_index(self.faiss_index)
        arrays.update({f"emb_{k}": v for k, v in self.embedder.state().items()})
        storage.save(self.path, KIND, fp or fingerprint(self.tokenizer), meta, arrays)

    # ---- queries --------------------------------------------------------------------------

    def lookup(self, context: Sequence[int], max_len: int, max_drafts: int,
               min_match: int = 1, max_suffix: int = 32) -> list[Continuation]:
        """Longest suffix of `context` in the corpus and its most frequent continuations."""
        return lookup([(self.store.index, None)], context, max_len, max_drafts, max_suffix, min_match)

    def search(self, query_text: str, k: int = 8) -> list[CorpusHit]:
        """The `k` units most similar to `query_text` (e.g. the code around the cursor)."""
        if len(self.units) == 0 or k <= 0:
            return []
        import faiss
        q = self.embedder.embed([query_text]).astype(np.float32)
        # One query: OpenMP threads only contend with the model's forward passes (p95 34 ms
        # with the default threads vs 9 ms with one, on 2 loaded cores).
        faiss.omp_set_num_threads(1)
        scores, ids = self.faiss_index.search(q, min(k, len(self.units)))
        hits = []
        for score, u in zip(scores[0], ids[0]):
            if u < 0:
                continue
            doc, _, _, chunk = self.units[u]
            rec = self.store.files[doc]
            kind, name = (rec.chunks[chunk][0], rec.chunks[chunk][1]) if chunk >= 0 else ("window", "")
            hits.append(CorpusHit(int(u), rec.rel, kind, name, float(score)))
        return hits

    def unit_tokens(self, unit: int) -> np.ndarray:
        doc, start, end, _ = self.units[unit]
        return self.store.doc_tokens(int(doc))[start:end]

    def stats(self) -> dict:
        return {"path": str(self.path), "files": len(self.store.files), "units": len(self.units),
                "tokens": sum(f.n_tokens for f in self.store.files), "embedder": self.embedder.name,
                "format_version": storage.FORMAT_VERSION}


def _roots(sources: Sequence[str | Path]) -> list[tuple[str, Path]]:
    roots, used = [], set()
    for src in sources:
        path = Path(src).resolve()
        if not path.is_dir():
            raise NotADirectoryError(f"not a folder: {src}")
        name, n = path.name or "root", 1
        while name in used:
            n += 1
            name = f"{path.name}-{n}"
        used.add(name)
        roots.append((name + "/", path))
    return roots


def _unit_texts(tokenizer, store: DocStore, units: np.ndarray) -> list[str]:
    seqs = [store.doc_tokens(int(d))[s:e].tolist() for d, s, e, _ in units]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "decode_batch"):
        return backend.decode_batch(seqs)
    return [tokenizer.decode(s) for s in seqs]


def _dim(embedder) -> int:
    return int(embedder.dim)


def _faiss_index(vecs: np.ndarray):
    """8-bit scalar-quantised inner-product index (cosine on normalised vectors)."""
    import faiss
    index = faiss.IndexScalarQuantizer(vecs.shape[1], faiss.ScalarQuantizer.QT_8bit,
                                       faiss.METRIC_INNER_PRODUCT)
    if len(vecs):
        index.train(vecs)
        index.add(vecs)
    return index
