"""A new signal type is one module: this one defines a toy signal and its index, registers it, and matches
through the services and the HMA API without a change anywhere else."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from deepshield.matching import service as svc
from deepshield.matching.bits import InvalidHash
from deepshield.matching.signals import ContentType, SignalHash, SignalType, all_signals, register_signal, registry
from deepshield.matching.signals.base import BankThresholds, IndexHit, SignalIndex
from deepshield.matching.storage import MemoryMatchStore
from deepshield.media import Media


class LengthIndex(SignalIndex):
    """A scan over every banked length: fine for a toy."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, key: int, group: int, value: str) -> None:
        self.rows[key] = (group, int(value))

    def remove(self, key: int) -> None:
        self.rows.pop(key, None)

    def search(self, values: Sequence[str], thresholds: BankThresholds) -> list[IndexHit]:
        q = int(ByteLength().validate(values[0]))
        return [
            IndexHit(key, group, float(abs(n - q)))
            for key, (group, n) in self.rows.items()
            if thresholds.searched(group) and abs(n - q) <= thresholds.of(group)
        ]


class ByteLength(SignalType):
    """Toy: a photo's file size in bytes; sizes within the threshold match, the far half needs a person."""

    name = "toy_length"
    content_types = (ContentType.PHOTO,)
    default_threshold = 40

    def hash_media(self, media: Media) -> SignalHash:
        return SignalHash(self.name, str(Path(media.info.path).stat().st_size))

    def validate(self, value: str) -> str:
        if not value.strip().isdigit():
            raise InvalidHash(f"{self.name} must be a decimal number of bytes")
        return str(int(value))

    def distance(self, a: str, b: str) -> float:
        return float(abs(int(a) - int(b)))

    def make_index(self) -> SignalIndex:
        return LengthIndex()

    def needs_review(self, hit: IndexHit, threshold: float) -> bool:
        return hit.distance > threshold / 2


@pytest.fixture()
def toy(monkeypatch: pytest.MonkeyPatch) -> SignalType:
    """Register the toy for one test only (the registry is restored afterwards)."""
    all_signals()  # the built-ins first
    monkeypatch.setattr(registry.SIGNAL_TYPES, "_entries", dict(registry.SIGNAL_TYPES._entries))
    return register_signal(ByteLength())


def _photo(path: Path) -> Path:
    rgb = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def test_toy_signal_through_the_services(toy: SignalType, tmp_path: Path) -> None:
    store = MemoryMatchStore()
    svc.create_bank(store, "TOYS")
    svc.create_bank(store, "NARROW", threshold=5)
    svc.add_hash(store, "TOYS", "toy_length", "1000", svc.EntryMeta(case_id="T1"))
    svc.add_hash(store, "NARROW", "toy_length", "1000")
    [m] = svc.lookup_signal(store, "toy_length", "1010")[0]
    assert (m.bank, m.signal_type, m.distance, m.threshold, m.needs_review) == ("TOYS", "toy_length", 10.0, 40.0, False)
    assert m.entry["case_id"] == "T1"
    [m] = svc.lookup_signal(store, "toy_length", "1030")[0]
    assert m.needs_review  # the toy's own review rule
    assert {m.bank for m in svc.lookup_signal(store, "toy_length", "1003")[0]} == {"TOYS", "NARROW"}
    assert svc.lookup_signal(store, "toy_length", "2000")[0] == []
    with pytest.raises(InvalidHash):
        svc.lookup_signal(store, "toy_length", "big")
    # Files: the toy hashes every photo beside the built-in signals, and a banked file is found by it.
    photo = _photo(tmp_path / "p.png")
    e = svc.add_file(store, "TOYS", photo)
    assert set(e.signals) == {"pdq", "md5", "sha256", "toy_length"}
    r = svc.lookup_file(store, photo)
    assert {m.signal_type for m in r.matches if m.entry_id == e.id} == {"pdq", "md5", "sha256", "toy_length"}
    assert svc.index_status(store)["toy_length"] == {"hashes": 3}
    assert svc.remove_case(store, "T1") == 1
    assert [m.bank for m in svc.lookup_signal(store, "toy_length", "1000")[0]] == ["NARROW"]


def test_toy_signal_through_the_hma_api(toy: SignalType, match_client: Any, match_key: Any) -> None:
    cur, m = match_key("curate"), match_key("match")
    assert match_client.post("/c/banks", json={"name": "TOYS"}, headers=cur).status_code == 201
    r = match_client.post("/c/bank/TOYS/signal", json={"toy_length": "1000"}, headers=cur)
    assert r.status_code == 200 and r.json()["signals"] == {"toy_length": "1000"}
    r = match_client.get("/m/lookup", params={"signal_type": "toy_length", "signal": "1012"}, headers=m).json()
    assert r["TOYS"][0]["distance"] == "12" and r["TOYS"][0]["signal_type"] == "toy_length"
    r = match_client.post("/m/compare", json={"toy_length": ["1000", "1100"]}, headers=m).json()
    assert r == {"toy_length": [False, {"distance": 100.0}]}
    status = match_client.get("/m/index/status", params={"signal_type": "toy_length"}, headers=m).json()
    assert status["toy_length"]["size"] == 1
