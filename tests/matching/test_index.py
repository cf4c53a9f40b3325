"""The exact index: everything within the threshold is found, nothing else, across adds and removes."""

from __future__ import annotations

import numpy as np

from deepshield.matching.bits import bits_to_hex, hamming, hex_to_words, popcount_rows, words_to_hex
from deepshield.matching.index import HammingIndex


def _flip(code: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    out = code.copy()
    for b in rng.choice(256, n, replace=False):
        out[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return out


def _random(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, np.iinfo(np.uint64).max, size=(n, 4), dtype=np.uint64, endpoint=True)


def test_hex_word_round_trip_and_distance() -> None:
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 256)
    h = bits_to_hex(bits)
    assert len(h) == 64 and h == words_to_hex(hex_to_words(h))
    # The first hex digit holds the first four bits of the vector (python-threatexchange's order).
    assert int(h[0], 16) == int("".join(str(b) for b in bits[:4]), 2)
    other = bits.copy()
    other[[0, 100, 255]] ^= 1
    assert hamming(h, bits_to_hex(other)) == 3
    assert popcount_rows(hex_to_words(h)[None, :] ^ hex_to_words(bits_to_hex(other))[None, :])[0] == 3


def test_planted_near_duplicates_found_exactly() -> None:
    rng = np.random.default_rng(2)
    codes = _random(60_000, rng)
    idx = HammingIndex()
    idx.add_many(codes, np.arange(len(codes)))
    for _i, d in enumerate(range(25, 32)):
        for rep in range(4):
            t = int(rng.integers(len(codes)))
            q = _flip(codes[t], d, rng)
            got = idx.search_rows(q, 31)
            want = np.flatnonzero(popcount_rows(codes ^ q[None, :]) <= 31)
            assert t in got.tolist(), (d, rep)
            assert np.array_equal(got, want)
    # Distance 32 is outside the threshold.
    q = _flip(codes[5], 32, rng)
    assert 5 not in idx.search_rows(q, 31).tolist()


def test_incremental_adds_and_removes_visible_at_once() -> None:
    rng = np.random.default_rng(3)
    idx = HammingIndex(tail_limit=64, merge_cap=1024)
    base = _random(3000, rng)
    idx.add_many(base[:1000], np.arange(1000))
    # One at a time: crosses many tail seals and segment merges.
    for i in range(1000, 3000):
        idx.add(base[i], i, group=i % 3)
        q = _flip(base[i], 31, rng)
        assert i in [h.key for h in idx.search(q, 31)]
    assert len(idx.stats()) and idx.stats()["segments"] >= 2
    for k in (5, 1500, 2999):
        q = _flip(base[k], 20, rng)
        assert idx.remove(k) == 1
        assert k not in [h.key for h in idx.search(q, 31)]
    assert len(idx) == 2997
    # Everything still exact after the churn.
    q = _flip(base[2000], 28, rng)
    want = {int(r) for r in np.flatnonzero(popcount_rows(base ^ q[None, :]) <= 31)} - {5, 1500, 2999}
    assert {h.key for h in idx.search(q, 31)} == want


def test_group_thresholds() -> None:
    rng = np.random.default_rng(4)
    c = _random(1, rng)[0]
    idx = HammingIndex()
    idx.add(c, 1, group=1)
    idx.add(c, 2, group=2)
    idx.add(c, 3, group=3)
    q = _flip(c, 20, rng)
    gt = np.array([-1, 31, 10, -1], dtype=np.int32)  # group 2 is strict, group 3 is excluded
    assert [h.key for h in idx.search(q, 31, gt)] == [1]
    assert {h.key for h in idx.search(q, 31)} == {1, 2, 3}


def test_wide_threshold_falls_back_to_scan() -> None:
    rng = np.random.default_rng(5)
    codes = _random(5000, rng)
    idx = HammingIndex()
    idx.add_many(codes, np.arange(5000))
    q = _flip(codes[7], 60, rng)
    got = idx.search_rows(q, 64)
    assert np.array_equal(got, np.flatnonzero(popcount_rows(codes ^ q[None, :]) <= 64))
