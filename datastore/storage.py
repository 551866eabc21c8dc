"""Versioned, atomic, self-checking persistence of one index as a single file.

The file is an uncompressed numpy `.npz` holding named int arrays plus a JSON header
(`__meta__`) with the format name, format version and tokenizer fingerprint. It is written to
a temporary file in the same folder, flushed to disk, then renamed over the old one, so a
crash at any point leaves either the old index or the new one, never half of either.
Loading raises `StaleIndex` (other version or tokenizer) or `CorruptIndex` (anything unreadable);
callers rebuild on both. Writers that read, update and save one index hold `locked(path)` (an
flock on `path.lock`), so two of them (a `codeswift index` while an editor's server refreshes)
take turns instead of one overwriting the other's update.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

FORMAT_VERSION = 1


class StaleIndex(Exception):
    """The index was written by another format version or with another tokenizer."""


class CorruptIndex(Exception):
    """The index file cannot be read or fails its consistency checks."""


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Exclusive lock for a read-update-save of the index at `path` (blocks while another
    process holds it). Where no lock file can be made (read-only folder) nothing is written
    either, so there is nothing to serialise."""
    lock = Path(f"{path}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                                       # closing releases the lock


def save(path: str | Path, kind: str, fingerprint: str, meta: dict,
         arrays: dict[str, np.ndarray]) -> None:
    """Atomically write `arrays` and `meta` to `path` (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f".{path.name}.*.tmp"):   # left by a killed writer
        old.unlink(missing_ok=True)
    header = {"format": kind, "version": FORMAT_VERSION, "fingerprint": fingerprint, **meta}
    payload = dict(arrays, __meta__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)                               # mkstemp makes it owner-only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path, kind: str, fingerprint: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a valid index; FileNotFoundError, StaleIndex or CorruptIndex."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode())
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise CorruptIndex(f"{path}: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != kind:
        raise CorruptIndex(f"{path}: not a {kind} index")
    if meta.get("version") != FORMAT_VERSION:
        raise StaleIndex(f"{path}: format version {meta.get('version')} != {FORMAT_VERSION}")
    if meta.get("fingerprint") != fingerprint:
        raise StaleIndex(f"{path}: built with another tokenizer")
    return meta, arrays
