"""Concrete HashBank / Screener implementations. Match, Labels and Detect are imported lazily, so cases works
(with in-process fallbacks) before those packages are merged."""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepshield.cases.policy import ScreeningPolicy
from deepshield.cases.ports import BankMatch, Finding, HashBank, Screener, ScreenerError
from deepshield.config import Settings
from deepshield.errors import DeepshieldError
from deepshield.media import open_media

log = logging.getLogger("deepshield.cases")

HEX_LEN = {"sha256": 64, "md5": 32, "pdq": 64}


def hamming_hex(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


class MemoryHashBank:
    """In-process bank used only when deepshield.matching is not installed (and in tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def add(self, value: str, signal: str, case_id: str, metadata: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._rows.setdefault((signal, value.lower()), {})[case_id] = dict(metadata or {})

    def remove_case(self, case_id: str) -> int:
        n = 0
        with self._lock:
            for key in list(self._rows):
                if self._rows[key].pop(case_id, None) is not None:
                    n += 1
                if not self._rows[key]:
                    del self._rows[key]
        return n

    def lookup(self, value: str, signal: str, max_distance: int = 0) -> list[BankMatch]:
        value = value.lower()
        out: list[BankMatch] = []
        with self._lock:
            if signal == "pdq" and max_distance > 0:
                items = [(k, v) for k, v in self._rows.items() if k[0] == "pdq"]
            else:
                items = [((signal, value), self._rows.get((signal, value), {}))]
            for (sig, val), cases in items:
                d = hamming_hex(val, value) if sig == "pdq" else 0
                if d <= max_distance:
                    out.extend(BankMatch(sig, val, cid, d, metadata=meta) for cid, meta in cases.items())
        return out

    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._rows.values())


class MatchingHashBank:
    """Adapter over Match's bank service (`deepshield.matching.service`): case hashes live in one bank
    (`CASES`); every match from any bank counts, with the case id Match keeps in each entry's metadata."""

    def __init__(self, settings: Settings, bank: str = "CASES") -> None:
        self.ms: Any = importlib.import_module("deepshield.matching.service")
        self.settings, self.bank = settings, bank
        from deepshield.store.db import session_scope

        with session_scope(settings) as s:
            try:
                self.ms.get_bank(s, bank)
            except self.ms.BankNotFound:
                self.ms.create_bank(s, bank, description="hashes banked by case decisions and victims")

    def add(self, value: str, signal: str, case_id: str, metadata: dict[str, Any] | None = None) -> None:
        from deepshield.store.db import session_scope

        md = metadata or {}
        meta = self.ms.EntryMeta(
            source=str(md.get("source", "case")), case_id=case_id, added_by=md.get("actor"), note="deepshield cases"
        )
        with session_scope(self.settings) as s:
            self.ms.add_hash(s, self.bank, signal, value, meta)

    def remove_case(self, case_id: str) -> int:
        from deepshield.store.db import session_scope

        with session_scope(self.settings) as s:
            return int(self.ms.remove_case(s, case_id))

    def lookup(self, value: str, signal: str, max_distance: int = 0) -> list[BankMatch]:
        from deepshield.store.db import session_scope

        with session_scope(self.settings) as s:
            matches, _suppressed = self.ms.lookup_signal(s, signal, value, settings=self.settings)
        out = []
        for m in matches:
            if signal == "pdq" and m.distance > max_distance and not m.needs_review:
                continue
            out.append(
                BankMatch(
                    signal,
                    value,
                    m.entry.get("case_id"),
                    int(m.distance),
                    m.bank,
                    {**m.entry, "needs_review": bool(m.needs_review)},
                )
            )
        return out


def matching_available() -> bool:
    try:
        mod = importlib.import_module("deepshield.matching.service")
    except ImportError:
        return False
    return all(hasattr(mod, f) for f in ("add_hash", "remove_case", "lookup_signal", "create_bank"))


_default_bank: HashBank | None = None
_bank_lock = threading.Lock()


def default_hash_bank(settings: Settings) -> HashBank:
    """Match's banks when deepshield.matching is installed, else one process-wide in-memory bank."""
    global _default_bank
    if matching_available():
        return MatchingHashBank(settings)
    with _bank_lock:
        if _default_bank is None:
            log.info("deepshield.matching not installed: using the in-process hash bank")
            _default_bank = MemoryHashBank()
        return _default_bank


def set_default_hash_bank(bank: HashBank | None) -> None:
    global _default_bank
    with _bank_lock:
        _default_bank = bank


@dataclass
class FileHashes:
    """The hashes of a file, and why they may not cover it: no perceptual hash could be made, or only the
    part of a truncated file that decodes was hashed. Screening treats a `problem` as a failed check."""

    hashes: dict[str, str]
    problem: str | None = None


def file_hashes(path: Path) -> FileHashes:
    """Exact hashes always; Match's perceptual ones (PDQ for photos, vPDQ for videos) when it is installed,
    of what decodes (a truncated JPEG is hashed as a browser shows it)."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
    out = FileHashes({"sha256": sha.hexdigest(), "md5": md5.hexdigest()})
    if not matching_available():
        return out
    ms = importlib.import_module("deepshield.matching.service")
    try:
        media = open_media(path, sha256=out.hashes["sha256"])
        try:
            for name, h in ms.hash_media(media).items():
                out.hashes.setdefault(name, str(h.value))
            if media.info.extra.get("truncated"):
                out.problem = "the file is truncated: only the part that decodes (what a browser shows) was checked"
        finally:
            media.close()
    except DeepshieldError as e:
        out.problem = f"no perceptual hash could be made: {e.message}"
    except Exception as e:  # noqa: BLE001 - an unexpected failure is a failed check, never a pass
        log.exception("perceptual hashing failed for %s", path.name)
        out.problem = f"no perceptual hash could be made ({type(e).__name__})"
    return out


class BankScreener:
    """Block exact or close copies of banked media; near-threshold PDQ matches go to a human."""

    name = "match"

    def __init__(self, bank: HashBank, policy: ScreeningPolicy) -> None:
        self.bank, self.policy = bank, policy

    def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
        for sig in ("sha256", "md5"):
            if sig in hashes:
                hits = self.bank.lookup(hashes[sig], sig)
                if hits:
                    return Finding(
                        self.name,
                        "block",
                        f"exact {sig} match with banked media of case {hits[0].case_id}",
                        {"case_id": hits[0].case_id, "signal": sig, "distance": 0},
                    )
        if "vpdq" in hashes:
            vhits = sorted(self.bank.lookup(hashes["vpdq"], "vpdq"), key=lambda m: m.distance)
            if vhits:
                m = vhits[0]
                near = bool(m.metadata.get("needs_review"))
                return Finding(
                    self.name,
                    "review" if near else "block",
                    f"video matches banked media of case {m.case_id} (vPDQ)"
                    + (" near the threshold: a person decides" if near else ""),
                    {"case_id": m.case_id, "signal": "vpdq", "distance": m.distance},
                )
        if "pdq" in hashes:
            hits = sorted(
                self.bank.lookup(hashes["pdq"], "pdq", self.policy.pdq_review_distance),
                key=lambda m: m.distance,
            )
            if hits:
                m = hits[0]
                near = m.distance > self.policy.pdq_block_distance or bool(m.metadata.get("needs_review"))
                return Finding(
                    self.name,
                    "review" if near else "block",
                    f"PDQ distance {m.distance} to banked media of case {m.case_id}"
                    + (" (near the threshold: a person decides)" if near else ""),
                    {"case_id": m.case_id, "signal": "pdq", "distance": m.distance},
                )
        return None


class LabelScreener:
    """AI-content labels (GB 45438 metadata, C2PA, watermark) read by Label's
    `deepshield.labels.service.verify_file`, when that package is installed."""

    name = "labels"

    def __init__(self, home: Path | None = None) -> None:
        self.home = home

    def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
        try:
            verify = importlib.import_module("deepshield.labels.service").verify_file
        except (ImportError, AttributeError):
            return None
        try:
            rep = verify(path, home=self.home)
        except DeepshieldError:
            raise
        except Exception as e:  # the screening flow turns this into its on-error decision (fail closed)
            raise ScreenerError(f"label check failed: {e}") from e
        decision = getattr(rep, "decision", None)
        if not decision:
            return None
        reasons = [str(r) for r in getattr(rep, "reasons", [])][:5]
        return Finding(
            self.name,
            "label",
            f"{decision}: " + ("; ".join(reasons) or "label found"),
            {"decision_label": decision, "reasons": reasons},
        )


class DetectorScreener:
    """The face-manipulation detector (deepshield.detect.pipeline.Scanner); one Scanner, used under a lock."""

    name = "detector"

    def __init__(self, policy: ScreeningPolicy, frames: int = 8) -> None:
        self.policy = policy
        self.frames = frames
        self._scanner: Any = None
        self._lock = threading.Lock()

    def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
        from deepshield.detect.pipeline import Scanner, ScanOptions

        with self._lock:
            if self._scanner is None:
                self._scanner = Scanner(ScanOptions(frames=self.frames))
            result = self._scanner.scan(path).result
        if not result.get("ok"):
            raise ScreenerError(f"not scanned: {result['error']['message']}")
        score = (result.get("scores") or {}).get("video_score")
        summary = {
            "verdict": result.get("verdict"),
            "score": score,
            "faces": result.get("face_count"),
            "detector": result.get("detector"),
            "detector_status": result.get("detector_status"),
            # Tracks at or over the detector's own threshold (a swap of one person or one stretch of a video).
            "tracks_over_threshold": result.get("tracks_over_threshold") or [],
        }
        if score is not None and score >= self.policy.detector_review_threshold:
            return Finding(
                self.name,
                "review",
                f"detector score {score:.2f} >= {self.policy.detector_review_threshold}"
                " (manipulated face likely): a person decides",
                summary,
            )
        if score is None:
            return Finding(
                self.name,
                "allow",
                f"no detector score ({result.get('detector_status')}; {result.get('face_count', 0)} face(s))",
                summary,
            )
        return Finding(self.name, "allow", f"detector score {score:.2f} below the review threshold", summary)

    def close(self) -> None:
        if self._scanner is not None:
            self._scanner.close()


def default_screeners(
    bank: HashBank, policy: ScreeningPolicy, detector: bool = True, home: Path | None = None
) -> list[Screener]:
    out: list[Screener] = [BankScreener(bank, policy), LabelScreener(home)]
    if detector:
        out.append(DetectorScreener(policy))
    return out
