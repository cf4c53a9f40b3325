"""Exact, incrementally updated Hamming range search over 256-bit codes (PDQ and vPDQ frame hashes).

Why not FAISS: HMA rebuilds a FAISS index in full and ships it to its matchers, which its maintainers name as
the bottleneck; approximate indexes miss near-threshold matches, which is unacceptable for blocking.

How: multi-index hashing. The 256 bits are cut into `m` chunks (11 by default: three of 24 bits, eight of 23).
If two codes are within distance t, by pigeonhole at least one chunk differs in at most floor(t / m) bits
(2 for t <= 32). So the candidates are the codes sharing, in some chunk, a value within that many bits of the
query's chunk (277-301 probes per chunk), and each candidate is then checked on all 256 bits. Nothing within
the threshold can be missed; every reported match is verified, so the search is exact.

Incremental: rows are appended, never moved. New rows sit in a small tail that is scanned in full, so a hash
is visible to the very next lookup; a full tail is sealed into an immutable segment (cost proportional to the
tail), and small neighbouring segments are merged log-structured style, never beyond `merge_cap` rows, so no
add ever rebuilds the whole index. Removal clears an `alive` flag, visible at once. Large segments (a bulk
load from the store at start-up) use direct-addressed bucket tables; small ones a sorted key array.
"""

from __future__ import annotations

import functools
import itertools
import threading
from dataclasses import dataclass

import numpy as np

from deepshield.matching.bits import WORDS, popcount_rows

_CHUNK_WIDTHS_11 = (24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23)


def _chunk_layout(widths: tuple[int, ...]) -> list[tuple[int, int]]:
    offs = list(itertools.accumulate((0, *widths[:-1])))
    assert sum(widths) == 256
    return list(zip(offs, widths, strict=True))


def chunk_values(codes: np.ndarray, offset: int, width: int) -> np.ndarray:
    """Bits [offset, offset + width) of each (n, 4) big-endian-word code, as uint32."""
    k, s = divmod(offset, 64)
    mask = np.uint64((1 << width) - 1)
    if s + width <= 64:
        v = (codes[:, k] >> np.uint64(64 - s - width)) & mask
    else:
        hi_bits = 64 - s
        lo_bits = width - hi_bits
        hi = codes[:, k] & np.uint64((1 << hi_bits) - 1)
        v = (hi << np.uint64(lo_bits)) | (codes[:, k + 1] >> np.uint64(64 - lo_bits))
    return v.astype(np.uint32)


@functools.lru_cache(maxsize=64)
def _masks(width: int, radius: int) -> np.ndarray:
    """Every `width`-bit XOR mask with at most `radius` bits set."""
    out = [0]
    for r in range(1, radius + 1):
        for combo in itertools.combinations(range(width), r):
            m = 0
            for b in combo:
                m |= 1 << b
            out.append(m)
    return np.array(out, dtype=np.uint32)


@functools.lru_cache(maxsize=256)
def _prefix_masks(width: int, shift: int, radius: int) -> np.ndarray:
    """The distinct top-(width - shift)-bit parts of those masks: each prefix bucket is probed once."""
    return np.unique(_masks(width, radius) >> np.uint32(shift))


class _Segment:
    """Immutable bucket tables over rows [lo, hi): per chunk, row ids ordered by chunk value, and a
    direct-addressed offset table over the chunk value's top `p` bits, p ~ log2(rows) + 1 (all bits at 10M).

    A prefix bucket holds the rows whose chunk value starts with that prefix, a superset of the exact-value
    bucket, so probing prefixes can only add candidates (all verified), never lose one.
    """

    def __init__(self, codes: np.ndarray, lo: int, hi: int, layout: list[tuple[int, int]]):
        self.lo, self.hi = lo, hi
        n = hi - lo
        block = codes[lo:hi]
        p_bits = max(8, int(np.ceil(np.log2(max(2, n)))) + 1)
        rows_parts: list[np.ndarray] = []
        off_parts: list[np.ndarray] = []
        self.shifts: list[int] = []
        key_base: list[int] = []
        base = 0
        offset_dtype = np.int64 if n * len(layout) >= 2**31 else np.int32
        for c, (off, width) in enumerate(layout):
            shift = max(0, width - p_bits)
            vals = chunk_values(block, off, width)
            order = np.argsort(vals, kind="stable")
            rows_parts.append((order + lo).astype(np.int32))
            nb = 1 << (width - shift)
            counts = np.bincount(vals >> np.uint32(shift), minlength=nb)
            offsets: np.ndarray = np.empty(nb + 1, dtype=offset_dtype)
            offsets[0] = 0
            np.cumsum(counts, out=offsets[1:])
            offsets = offsets + np.asarray(c * n, dtype=offset_dtype)
            # Chunk c's last entry equals chunk c + 1's first, so keep it only for the final chunk.
            off_parts.append(offsets[:-1] if c < len(layout) - 1 else offsets)
            self.shifts.append(shift)
            key_base.append(base)
            base += nb
            del vals, order, counts
        self.rows = np.concatenate(rows_parts)
        self.offsets = np.concatenate(off_parts)
        self.key_base = np.asarray(key_base, dtype=np.int64)
        self._layout = layout
        self._probe_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def size(self) -> int:
        return self.hi - self.lo

    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.offsets.nbytes)

    def _probes(self, radius: int) -> tuple[np.ndarray, np.ndarray]:
        cached = self._probe_cache.get(radius)
        if cached is None:
            masks = [_prefix_masks(w, s, radius) for (_, w), s in zip(self._layout, self.shifts, strict=True)]
            chunk = np.concatenate([np.full(len(m), c, dtype=np.int64) for c, m in enumerate(masks)])
            cached = (np.concatenate(masks).astype(np.int64), chunk)
            self._probe_cache[radius] = cached
        return cached

    def candidates(self, qvals: np.ndarray, radius: int) -> np.ndarray:
        """Rows sharing, in some chunk, a value prefix within `radius` bits of the query's."""
        masks, chunk = self._probes(radius)
        qpref = qvals >> np.asarray(self.shifts, dtype=np.int64)
        # np.take, not fancy indexing: with these index dtypes it is many times faster here.
        k = np.take(self.key_base, chunk) + (np.take(qpref, chunk) ^ masks)
        starts = np.take(self.offsets, k).astype(np.int64)
        lens = np.take(self.offsets, k + 1).astype(np.int64) - starts
        nz = lens > 0
        if not nz.any():
            return np.zeros(0, dtype=np.int32)
        starts, lens = starts[nz], lens[nz]
        total = int(lens.sum())
        # Expand [start, start + len) ranges without a Python loop.
        shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
        return np.take(self.rows, np.arange(total, dtype=np.int64) + shift)


@dataclass
class IndexHit:
    key: int  # caller's id for the indexed item (e.g. a stored signal id)
    group: int  # caller's group (e.g. a bank id), used for per-group thresholds
    aux: int  # caller's extra integer (e.g. a video frame time in ms)
    distance: int


class HammingIndex:
    """Exact range search over 256-bit codes with O(1) visible adds and removes. Thread-safe."""

    def __init__(
        self,
        *,
        chunk_widths: tuple[int, ...] = _CHUNK_WIDTHS_11,
        tail_limit: int = 2048,
        merge_cap: int = 1 << 20,
        initial_capacity: int = 1024,
    ) -> None:
        self._layout = _chunk_layout(chunk_widths)
        self._m = len(chunk_widths)
        self._tail_limit = tail_limit
        self._merge_cap = merge_cap
        self._lock = threading.RLock()
        cap = max(16, initial_capacity)
        self._codes = np.zeros((cap, WORDS), dtype=np.uint64)
        self._keys = np.zeros(cap, dtype=np.int64)
        self._groups = np.zeros(cap, dtype=np.int32)
        self._aux = np.zeros(cap, dtype=np.int32)
        self._alive = np.zeros(cap, dtype=bool)
        self._n = 0
        self._n_alive = 0
        self._keys_sorted = True
        self._segments: list[_Segment] = []
        self._tail_lo = 0

    # ---- size and memory -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n_alive

    @property
    def rows(self) -> int:
        """Rows held, removed ones included (they are reclaimed by `compact`)."""
        return self._n

    def memory_bytes(self) -> int:
        """Bytes of the arrays behind the index at their current (over-allocated) capacity."""
        with self._lock:
            fixed = self._codes.nbytes + self._keys.nbytes + self._groups.nbytes + self._aux.nbytes + self._alive.nbytes
            return int(fixed + sum(s.nbytes() for s in self._segments))

    def bytes_per_hash(self) -> float:
        return self.memory_bytes() / max(1, self._n_alive)

    # ---- updates ----------------------------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = self._codes.shape[0]
        if need <= cap:
            return
        # Grow geometrically, but gently once large: at 10M rows a 1.5x step would strand 160 MB of codes.
        new = max(need, int(cap * (1.5 if cap < 1 << 20 else 1.125)) + 16)
        for name in ("_codes", "_keys", "_groups", "_aux", "_alive"):
            old = getattr(self, name)
            arr = np.zeros((new, *old.shape[1:]), dtype=old.dtype)
            arr[: self._n] = old[: self._n]
            setattr(self, name, arr)

    def add(self, code: np.ndarray, key: int, group: int = 0, aux: int = 0) -> None:
        self.add_many(np.asarray(code, dtype=np.uint64).reshape(1, WORDS), np.array([key]), group, aux)

    def add_many(
        self,
        codes: np.ndarray,
        keys: np.ndarray,
        groups: np.ndarray | int = 0,
        aux: np.ndarray | int = 0,
    ) -> None:
        """Append codes; they are matched by the next lookup. A large batch becomes one segment directly."""
        codes = np.asarray(codes, dtype=np.uint64).reshape(-1, WORDS)
        k = codes.shape[0]
        if k == 0:
            return
        keys = np.asarray(keys, dtype=np.int64).reshape(k)
        with self._lock:
            self._grow(self._n + k)
            lo, hi = self._n, self._n + k
            self._codes[lo:hi] = codes
            self._keys[lo:hi] = keys
            self._groups[lo:hi] = groups
            self._aux[lo:hi] = aux
            self._alive[lo:hi] = True
            if self._keys_sorted and ((lo > 0 and keys[0] < self._keys[lo - 1]) or np.any(np.diff(keys) < 0)):
                self._keys_sorted = False
            self._n = hi
            self._n_alive += k
            if self._n - self._tail_lo >= self._tail_limit:
                self._seal()

    def _seal(self) -> None:
        lo, hi = self._tail_lo, self._n
        self._segments.append(_Segment(self._codes, lo, hi, self._layout))
        self._tail_lo = hi
        # Merge the newest small segments while they are of comparable size (log-structured), bounded by cap.
        while len(self._segments) >= 2:
            a, b = self._segments[-2], self._segments[-1]
            if a.size > 4 * b.size or a.size + b.size > self._merge_cap:
                break
            merged = _Segment(self._codes, a.lo, b.hi, self._layout)
            self._segments[-2:] = [merged]

    def _rows_of_keys(self, keys: np.ndarray) -> np.ndarray:
        n = self._n
        if self._keys_sorted:
            lo = np.searchsorted(self._keys[:n], keys, side="left")
            hi = np.searchsorted(self._keys[:n], keys, side="right")
            parts = [np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.isin(self._keys[:n], keys))

    def remove(self, keys: int | list[int] | np.ndarray) -> int:
        """Remove every row with one of these keys; returns the rows removed. Visible to the next lookup."""
        arr = np.atleast_1d(np.asarray(keys, dtype=np.int64))
        with self._lock:
            rows = self._rows_of_keys(arr)
            rows = rows[self._alive[rows]]
            self._alive[rows] = False
            self._n_alive -= int(rows.size)
            return int(rows.size)

    def set_group(self, keys: list[int] | np.ndarray, group: int) -> None:
        with self._lock:
            rows = self._rows_of_keys(np.asarray(keys, dtype=np.int64))
            self._groups[rows] = group

    # ---- lookup -----------------------------------------------------------------------------------------

    def search(
        self,
        query: np.ndarray,
        threshold: int,
        group_thresholds: np.ndarray | None = None,
    ) -> list[IndexHit]:
        """Every live row within `threshold` bits of `query` (4,) uint64; exact.

        `group_thresholds[g]` (if given) tightens the threshold per group; a negative value excludes group g.
        """
        q = np.asarray(query, dtype=np.uint64).reshape(WORDS)
        rows = self.search_rows(q, threshold)
        if rows.size == 0:
            return []
        with self._lock:
            d = popcount_rows(np.take(self._codes, rows, axis=0) ^ q[None, :])
            groups = np.take(self._groups, rows)
            keep = d <= threshold
            if group_thresholds is not None:
                gt = group_thresholds[np.clip(groups, 0, len(group_thresholds) - 1)]
                keep &= (groups < len(group_thresholds)) & (d <= gt)
            rows, d, groups = rows[keep], d[keep], groups[keep]
            keys, aux = np.take(self._keys, rows), np.take(self._aux, rows)
        return [
            IndexHit(int(k), int(g), int(a), int(x))
            for k, g, a, x in zip(keys.tolist(), groups.tolist(), aux.tolist(), d.tolist(), strict=True)
        ]

    def search_rows(self, q: np.ndarray, threshold: int) -> np.ndarray:
        """Rows (sorted, unique, alive) within `threshold` of q."""
        with self._lock:
            n = self._n
            if n == 0:
                return np.zeros(0, dtype=np.int64)
            found: list[np.ndarray] = []
            radius = threshold // self._m
            if self._segments and radius <= 3:
                qint = int.from_bytes(q.astype(">u8").tobytes(), "big")
                qvals = np.array([(qint >> (256 - o - w)) & ((1 << w) - 1) for o, w in self._layout], dtype=np.int64)
                for seg in self._segments:
                    cand = seg.candidates(qvals, radius)
                    if cand.size:
                        found.append(self._verify(cand, q, threshold))
                tail_lo = self._tail_lo
            else:
                tail_lo = 0  # very wide thresholds: a full scan is cheaper than the probes
            tail = np.arange(tail_lo, n, dtype=np.int64)
            if tail.size:
                found.append(self._verify(tail, q, threshold))
            if not found:
                return np.zeros(0, dtype=np.int64)
            return np.unique(np.concatenate(found))

    def _verify(self, rows: np.ndarray, q: np.ndarray, threshold: int) -> np.ndarray:
        rows = rows[np.take(self._alive, rows)]
        if rows.size == 0:
            return rows.astype(np.int64)
        d = popcount_rows(np.take(self._codes, rows, axis=0) ^ q[None, :])
        return rows[d <= threshold].astype(np.int64)

    def keys_of_group(self, group: int) -> np.ndarray:
        with self._lock:
            n = self._n
            sel = (self._groups[:n] == group) & self._alive[:n]
            return np.unique(self._keys[:n][sel])

    def stats(self) -> dict[str, float | int]:
        with self._lock:
            return {
                "hashes": self._n_alive,
                "rows": self._n,
                "segments": len(self._segments),
                "tail": self._n - self._tail_lo,
                "memory_bytes": self.memory_bytes(),
                "bytes_per_hash": round(self.bytes_per_hash(), 1),
            }
