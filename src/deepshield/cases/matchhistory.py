"""Which hashes of a case matched what, and when: read back from what screening already stored (the `match`
findings on uploads and on other cases' media), so the history needs no table of its own.

A match record points two ways: `banked_case` is the case whose banked hash was hit, `found_in` is where the
hit came from (an upload, or another case's media)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from deepshield.cases.models import CaseEvidence, CaseMedia, UploadScreening
from deepshield.matching.bits import hamming


@dataclass(frozen=True)
class MatchRecord:
    at: dt.datetime
    signal: str
    value: str  # the hash of the matching upload or media
    banked_case: str | None
    found_in: str  # "upload <ref>" or "case <id>"
    found_case: str | None  # the case the hit sits in, if any (a screening case or a report)
    distance: int
    decision: str


def _same(signal: str, a: str, b: str, radius: int) -> bool:
    if signal in ("pdq",) and len(a) == len(b):
        try:
            return hamming(a, b) <= radius
        except ValueError:
            return False
    return a == b


def _from_uploads(session: Session, banked_case: str) -> list[MatchRecord]:
    out = []
    rows = session.scalars(select(UploadScreening).where(UploadScreening.reasons.like(f'%"{banked_case}"%')))
    for up in rows:
        hashes = json.loads(up.hashes)
        for r in json.loads(up.reasons):
            data = r.get("data") or {}
            if r.get("screener") != "match" or data.get("case_id") != banked_case:
                continue
            sig = str(data.get("signal", ""))
            out.append(
                MatchRecord(
                    up.at,
                    sig,
                    str(hashes.get(sig, "")),
                    banked_case,
                    f"upload {up.content_ref or up.id}",
                    None,
                    int(data.get("distance") or 0),
                    str(r.get("decision", "")),
                )
            )
    return out


def _evidence(session: Session, rows: list[CaseEvidence]) -> list[MatchRecord]:
    media = {m.id: m for m in session.scalars(select(CaseMedia).where(CaseMedia.id.in_({e.media_id for e in rows})))}
    out = []
    for e in rows:
        data = json.loads(e.data)
        sig = str(data.get("signal", ""))
        m = media.get(e.media_id) if e.media_id else None
        value = str(json.loads(m.hashes).get(sig, "")) if m else ""
        out.append(
            MatchRecord(
                e.at,
                sig,
                value,
                data.get("case_id"),
                f"case {e.case_id}",
                e.case_id,
                int(data.get("distance") or 0),
                str(data.get("decision", "")),
            )
        )
    return out


def history(session: Session, case_id: str) -> list[MatchRecord]:
    """Every match involving the case: its media hitting banked hashes, and uploads or other cases hitting its
    banked hashes; newest first."""
    own = list(
        session.scalars(select(CaseEvidence).where(CaseEvidence.case_id == case_id, CaseEvidence.kind == "match"))
    )
    others = [
        e
        for e in session.scalars(
            select(CaseEvidence).where(
                CaseEvidence.kind == "match", CaseEvidence.case_id != case_id, CaseEvidence.data.like(f'%"{case_id}"%')
            )
        )
        if json.loads(e.data).get("case_id") == case_id
    ]
    recs = _evidence(session, own + others) + _from_uploads(session, case_id)
    return sorted(recs, key=lambda r: r.at, reverse=True)


def matches_of_hash(
    session: Session, signal: str, value: str, banked_case: str | None, radius: int
) -> list[MatchRecord]:
    """The matches one banked hash produced (those of its case's matches on its signal that are close to it)."""
    if not banked_case:
        return []
    return [
        r
        for r in history(session, banked_case)
        if r.banked_case == banked_case and r.signal == signal and r.value and _same(signal, r.value, value, radius)
    ]
