"""Where earlier sessions' frames are remembered, so a replayed recording is recognised."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReplayHit:
    session_id: str
    matched: int  # keyframes of the new session that match a frame of this earlier one


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class ReplayIndex(abc.ABC):
    @abc.abstractmethod
    def seen_sha256(self, sha256: str, exclude_session: str) -> str | None:
        """The id of an earlier session whose upload had exactly these bytes."""

    @abc.abstractmethod
    def best_match(self, hashes: list[int], max_distance: int, exclude_session: str) -> ReplayHit | None:
        """The earlier session sharing the most keyframes with `hashes`."""

    @abc.abstractmethod
    def add(self, session_id: str, sha256: str | None, hashes: list[int]) -> None: ...


class MemoryReplayIndex(ReplayIndex):
    """In-process index for evaluation and tests; the service uses the database one."""

    def __init__(self) -> None:
        self._hashes: dict[str, list[int]] = {}
        self._sha: dict[str, str] = {}

    def seen_sha256(self, sha256: str, exclude_session: str) -> str | None:
        sid = self._sha.get(sha256)
        return sid if sid and sid != exclude_session else None

    def best_match(self, hashes: list[int], max_distance: int, exclude_session: str) -> ReplayHit | None:
        return best_match(self._hashes.items(), hashes, max_distance, exclude_session)

    def add(self, session_id: str, sha256: str | None, hashes: list[int]) -> None:
        self._hashes[session_id] = list(hashes)
        if sha256:
            self._sha.setdefault(sha256, session_id)


def best_match(
    stored: Iterable[tuple[str, list[int]]], hashes: list[int], max_distance: int, exclude_session: str
) -> ReplayHit | None:
    best: ReplayHit | None = None
    for sid, old in stored:
        if sid == exclude_session or not old:
            continue
        n = sum(1 for h in hashes if any(hamming(h, o) <= max_distance for o in old))
        if n and (best is None or n > best.matched):
            best = ReplayHit(sid, n)
    return best
