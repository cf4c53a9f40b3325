"""Cases' ports implemented by the other domains: the hash bank is Match's, the screeners ask Match, Labels and
Detect."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

from deepshield.cases.policy import ScreeningPolicy
from deepshield.cases.ports import BankMatch, Finding, HashBank, Screener, ScreenerError
from deepshield.config import Settings
from deepshield.detect.service import ScanService
from deepshield.errors import DeepshieldError
from deepshield.jsontypes import JsonObject
from deepshield.labels.service import verify_file
from deepshield.matching import service as match
from deepshield.media import open_media
from deepshield.store.db import session_scope

log = logging.getLogger("deepshield.cases")


class MatchingHashBank:
    """Adapter over Match's bank service (`deepshield.matching.service`): case hashes live in one bank
    (`CASES`); every match from any bank counts, with the case id Match keeps in each entry's metadata.

    The bank is created with the first hash banked, not when the app starts: an app whose cases never bank
    anything lists no `CASES` bank."""

    def __init__(self, settings: Settings, bank: str = "CASES") -> None:
        self.settings, self.bank = settings, bank
        self._lock = threading.Lock()
        self._bank_ready = False

    def _ensure_bank(self) -> None:
        with self._lock:
            if self._bank_ready:
                return
            with session_scope(self.settings) as s:
                try:
                    match.get_bank(s, self.bank)
                except match.BankNotFound:
                    match.create_bank(s, self.bank, description="hashes banked by case decisions and victims")
            self._bank_ready = True

    def add(self, value: str, signal: str, case_id: str, metadata: JsonObject | None = None) -> None:
        self._ensure_bank()
        md = metadata or {}
        actor = md.get("actor")
        meta = match.EntryMeta(
            source=str(md.get("source", "case")),
            case_id=case_id,
            added_by=None if actor is None else str(actor),
            note="deepshield cases",
        )
        with session_scope(self.settings) as s:
            match.add_hash(s, self.bank, signal, value, meta)

    def remove_case(self, case_id: str) -> int:
        with session_scope(self.settings) as s:
            return match.remove_case(s, case_id)

    def lookup(self, value: str, signal: str, max_distance: int = 0) -> list[BankMatch]:
        with session_scope(self.settings) as s:
            matches, _suppressed = match.lookup_signal(s, signal, value, settings=self.settings)
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
                    # EntryMetadata holds JSON values only (a TypedDict reads as `object` to mypy)
                    {**cast(JsonObject, m.entry), "needs_review": bool(m.needs_review)},
                )
            )
        return out


@dataclass
class FileHashes:
    """The hashes of a file, and why they may not cover it: no perceptual hash could be made, or only the
    part of a truncated file that decodes was hashed. Screening treats a `problem` as a failed check."""

    hashes: dict[str, str]
    problem: str | None = None


def file_hashes(path: Path) -> FileHashes:
    """Exact hashes always; Match's perceptual ones (PDQ for photos, vPDQ for videos) of what decodes (a
    truncated JPEG is hashed as a browser shows it)."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
    out = FileHashes({"sha256": sha.hexdigest(), "md5": md5.hexdigest()})
    try:
        media = open_media(path, sha256=out.hashes["sha256"])
        try:
            for name, h in match.hash_media(media).items():
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
                why = f"video matches banked media of case {m.case_id} (vPDQ)"
                return self._similar(m, "vpdq", near, why + (" near the threshold: a person decides" if near else ""))
        if "pdq" in hashes:
            hits = sorted(
                self.bank.lookup(hashes["pdq"], "pdq", self.policy.pdq_review_distance),
                key=lambda m: m.distance,
            )
            if hits:
                m = hits[0]
                near = m.distance > self.policy.pdq_block_distance or bool(m.metadata.get("needs_review"))
                why = f"PDQ distance {m.distance} to banked media of case {m.case_id}"
                return self._similar(m, "pdq", near, why + (" (near the threshold: a person decides)" if near else ""))
        return None

    def _similar(self, m: BankMatch, signal: str, near: bool, why: str) -> Finding:
        """A perceptual match blocks, unless it is near the threshold: then a person decides."""
        evidence: JsonObject = {"case_id": m.case_id, "signal": signal, "distance": m.distance}
        return Finding(self.name, "review" if near else "block", why, evidence)


class LabelScreener:
    """AI-content labels (GB 45438 metadata, C2PA, watermark) read by Label's `verify_file`."""

    name = "labels"

    def __init__(self, home: Path | None = None) -> None:
        self.home = home

    def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
        try:
            rep = verify_file(path, home=self.home)
        except DeepshieldError:
            raise
        except Exception as e:  # the screening flow turns this into its on-error decision (fail closed)
            raise ScreenerError(f"label check failed: {e}") from e
        decision = rep.decision
        if not decision:
            return None
        reasons = [str(r) for r in rep.reasons][:5]
        evidence: JsonObject = {"decision_label": decision, "reasons": reasons}
        consent = rep.consent.get("state", "absent")
        if consent != "absent":  # a digital human's consent credential: valid, expired, revoked, unknown, ...
            evidence["consent"] = {k: rep.consent.get(k) for k in ("state", "reason", "credential_id")}
        return Finding(
            self.name,
            "label",
            f"{decision}: "
            + ("; ".join(reasons) or "label found")
            + (f"; consent {consent}" if consent != "absent" else ""),
            evidence,
        )


class DetectorScreener:
    """The face-manipulation detector through the service's one scan path (`detect.service.ScanService`): the
    scan is recorded like `/v1/scans` with the same settings, but keeps no HTML report, whose face pictures would
    outlive an upload that is deleted unless a review case keeps it."""

    name = "detector"

    def __init__(self, policy: ScreeningPolicy, scans: ScanService, owns_scans: bool = False) -> None:
        self.policy = policy
        self.scans = scans
        self._owns_scans = owns_scans

    def screen(self, path: Path, hashes: dict[str, str]) -> Finding | None:
        result = self.scans.scan(path, path.name, hashes.get("sha256"), "screening", report=False)
        if result.error is not None:
            # A scan that did not happen is a failed check: the screening flow gives it `on_error`, never allow.
            raise ScreenerError(
                f"not scanned: {result.error.message}", {"scan_id": result.scan_id, "scan_error": result.error.code}
            )
        score = result.video_score
        summary: JsonObject = {
            "verdict": result.verdict,
            "score": score,
            "faces": result.face_count,
            "detector": None if result.detector is None else asdict(result.detector),
            "detector_status": result.detector_status,
            # Tracks at or over the detector's own threshold (a swap of one person or one stretch of a video).
            "tracks_over_threshold": list(result.tracks_over_threshold),
            "scan_id": result.scan_id,
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
                f"no detector score ({result.detector_status}; {result.face_count} face(s))",
                summary,
            )
        return Finding(self.name, "allow", f"detector score {score:.2f} below the review threshold", summary)

    def close(self) -> None:
        if self._owns_scans:
            self.scans.shutdown()


def default_screeners(
    bank: HashBank, policy: ScreeningPolicy, settings: Settings, detector: bool = True, scans: ScanService | None = None
) -> list[Screener]:
    """The bank, label and (with `detector`) detector screeners; the detector scans through `scans`, the app's
    scan service, or one of its own when none is given."""
    out: list[Screener] = [BankScreener(bank, policy), LabelScreener(settings.home)]
    if detector:
        out.append(DetectorScreener(policy, scans or ScanService(settings), owns_scans=scans is None))
    return out
