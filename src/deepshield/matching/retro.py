"""Retroactive search: every copy of a banked item already in an archive (the output of `deepshield hash --ray`).

When one viral deepfake must come down everywhere at once, the platform already holds the hashes of what it
hosts; this searches them for the banked hash instead of re-reading the media. The archive is read in shards
(`scale.shards`), one per worker, each comparing its rows with every query: PDQ by Hamming distance within the
signal's threshold, the exact hashes (md5, sha256, video md5) by equality. On a Ray cluster the shards run as
tasks spread over the nodes; without one they run one after another in this process (the baseline).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.matching.bits import hamming_words, hex_to_words, hexes_to_words, normalise_hex
from deepshield.matching.signals import get_signal
from deepshield.matching.storage import SqlMatchStore
from deepshield.matching.types import BankNotFound
from deepshield.scale.shards import read_shard
from deepshield.store.db import session_scope, upgrade_schema

#: Signals compared by distance; every other one by equality.
_NEAR = ("pdq",)


@dataclass(frozen=True)
class ArchiveQuery:
    signal_type: str
    value: str

    @classmethod
    def parse(cls, signal_type: str, value: str) -> ArchiveQuery:
        st = get_signal(signal_type)  # unknown types raise a clear error
        v = value.strip().lower()
        return cls(st.name, normalise_hex(v) if st.name in _NEAR else v)


@dataclass(frozen=True)
class ArchiveCopy:
    """A file of the archive holding a copy of a query (`distance` 0 for an exact hash)."""

    file: str
    signal_type: str
    query: str
    distance: int


@dataclass
class ArchiveSearch:
    copies: list[ArchiveCopy] = field(default_factory=list)
    rows: int = 0
    shards: int = 1
    elapsed_s: float = 0.0
    on_ray: bool = False


def bank_queries(settings: Settings, name: str) -> list[ArchiveQuery]:
    """Every hash banked in `name` that archives hold (PDQ and the exact hashes)."""
    upgrade_schema(settings)
    out: list[ArchiveQuery] = []
    with session_scope(settings) as s:
        store = SqlMatchStore(s)
        bank = store.bank(name)
        if bank is None:
            raise BankNotFound(f"no bank named {name!r}")
        after = 0
        while entries := store.entries(bank.id, after_id=after, limit=1000):
            after = entries[-1].id
            for signals in store.entry_signals([e.id for e in entries]).values():
                out.extend(ArchiveQuery.parse(t, v) for t, v in signals.items() if t in ("pdq", "md5", "sha256"))
    return out


def search_shard(
    source: str, shard: int, shards: int, queries: list[ArchiveQuery], pdq_threshold: int
) -> tuple[list[ArchiveCopy], int]:
    """The copies in one shard and how many rows it read (runs on a worker: plain arguments, plain results)."""
    types = tuple(sorted({q.signal_type for q in queries}))
    near = [(q, hex_to_words(q.value)) for q in queries if q.signal_type in _NEAR]
    exact: dict[tuple[str, str], list[ArchiveQuery]] = {}
    for q in queries:
        if q.signal_type not in _NEAR:
            exact.setdefault((q.signal_type, q.value), []).append(q)
    found: list[ArchiveCopy] = []
    rows = 0
    for batch in read_shard(Path(source), shard, shards, types):
        files = batch["file"]
        rows += len(files)
        if near:
            values = batch["pdq"]
            present = [i for i, v in enumerate(values) if v is not None and len(v) == 64]
            codes = hexes_to_words([values[i] for i in present])  # type: ignore[misc]
            for q, words in near:
                d = hamming_words(codes, words)
                for k in np.flatnonzero(d <= pdq_threshold):
                    found.append(ArchiveCopy(str(files[present[k]]), q.signal_type, q.value, int(d[k])))
        for (signal_type, value), qs in exact.items():
            column = batch[signal_type]
            for i, v in enumerate(column):
                if v is not None and v.lower() == value:
                    found.extend(ArchiveCopy(str(files[i]), signal_type, q.value, 0) for q in qs)
    return found, rows


def search_archive(
    source: Path,
    queries: Iterable[ArchiveQuery],
    *,
    shards: int = 1,
    on_ray: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ArchiveSearch:
    """Every copy of the queries in the archive at `source`, searched in `shards` shards (on the Ray cluster
    `scale.batch.connect` joined when `on_ray`); `progress(shards done, shards)` after each."""
    qs = list(queries)
    if not qs:
        raise DeepshieldError("nothing to search for: give at least one hash")
    if shards < 1:
        raise DeepshieldError("shards must be at least 1")
    if not source.exists():
        raise DeepshieldError(f"{source}: no such archive output (a JSON-lines file or a Parquet folder)")
    threshold = get_signal("pdq").default_threshold
    out = ArchiveSearch(shards=shards, on_ray=on_ray)
    t0 = time.perf_counter()

    def take(part: tuple[list[ArchiveCopy], int], done: int) -> None:
        out.copies.extend(part[0])
        out.rows += part[1]
        if progress is not None:
            progress(done, shards)

    if on_ray:
        import ray

        remote: Any = ray.remote(num_cpus=1)(search_shard)
        pending = [remote.remote(str(source), k, shards, qs, threshold) for k in range(shards)]
        done = 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done += 1
            take(ray.get(ready[0]), done)
    else:
        for k in range(shards):
            take(search_shard(str(source), k, shards, qs, threshold), k + 1)
    out.copies.sort(key=lambda c: (c.distance, c.file, c.signal_type))
    out.elapsed_s = time.perf_counter() - t0
    return out
