"""What the screeners say about a file: as evidence on a case (`attach_media`), or as the decision on an
upload before it goes live (`screen_upload`, which opens a case when a person must decide). Screening fails
closed: a check that could not be made is the policy's `screening.on_error` (review or block), never allow."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from deepshield.cases import audit, service
from deepshield.cases.adapters import FileHashes, file_hashes
from deepshield.cases.context import CasesContext
from deepshield.cases.models import CaseEvidence, CaseMedia, UploadScreening
from deepshield.cases.ports import Finding, ScreenerError, strongest
from deepshield.errors import DeepshieldError
from deepshield.jsontypes import JsonObject
from deepshield.store.db import session_scope

log = logging.getLogger("deepshield.cases")


def _public(message: str, path: Path, filename: str) -> str:
    """A message about the stored file, naming the user's file instead of the server's path or temp name."""
    return message.replace(str(path), filename).replace(path.name, filename)


def _run_screeners(ctx: CasesContext, path: Path, hashed: FileHashes, filename: str) -> list[Finding]:
    """Every screener's finding. Fails closed: a file that could not be hashed or checked, or a screener
    that failed, gives the policy's `on_error` decision (review, or block) with the reason, never `allow`;
    a single failing check still never fails the upload or the attachment itself."""
    on_error = ctx.policy.screening.on_error
    out = []
    if hashed.problem:
        out.append(Finding("hashing", on_error, _public(hashed.problem, path, filename), {"error": True}))
    for sc in ctx.screeners:
        try:
            f = sc.screen(path, hashed.hashes)
        except DeepshieldError as e:
            why = _public(e.message, path, filename)
            data = {"error": True, **(e.data if isinstance(e, ScreenerError) else {})}
            f = Finding(sc.name, on_error, f"{sc.name} could not check this file: {why}", data)
        except Exception:  # noqa: BLE001 - a crashed check is a failed check, never a pass
            log.exception("screener %s failed on %s", sc.name, path.name)
            f = Finding(
                sc.name, on_error, f"{sc.name} could not check this file (internal error, logged)", {"error": True}
            )
        if f is not None:
            out.append(f)
    return out


def attach_media(
    ctx: CasesContext,
    case_id: str,
    src: Path,
    filename: str,
    kind: str,
    actor: str,
    actor_kind: str,
    findings: list[Finding] | None = None,
) -> CaseMedia:
    """Store the reported media with the case and record what each screener finds as evidence."""
    with session_scope(ctx.settings) as s:
        service.get_case(s, case_id)
    dest = service.media_dir(ctx.settings, case_id) / f"{secrets.token_hex(8)}{src.suffix.lower()}"
    shutil.move(str(src), dest)
    hashed = file_hashes(dest)
    hashes = hashed.hashes
    if findings is None:
        findings = _run_screeners(ctx, dest, hashed, filename)
    with session_scope(ctx.settings) as s:
        m = CaseMedia(
            case_id=case_id,
            filename=filename[:500],
            path=str(dest),
            kind=kind,
            sha256=hashes["sha256"],
            hashes=json.dumps(hashes),
        )
        s.add(m)
        s.flush()
        for f in findings:
            s.add(
                CaseEvidence(
                    case_id=case_id,
                    media_id=m.id,
                    kind=f.screener,
                    summary=f.reason,
                    data=json.dumps({"decision": f.decision, **f.data}, default=str),
                    automated=True,
                )
            )
        audit.record(
            s,
            actor=actor,
            actor_kind=actor_kind,
            action="media_attached",
            case_id=case_id,
            reason=f"{kind} {filename[:80]}; " + "; ".join(f"{f.screener}: {f.reason}" for f in findings),
            evidence=[hashes["sha256"]],
        )
        s.expunge(m)
    return m


class ScreeningReason(TypedDict):
    """One screener's finding as the upload's answer and its stored record give it."""

    screener: str
    decision: str
    reason: str
    data: JsonObject


@dataclass
class ScreeningResult:
    id: str
    decision: str
    reasons: list[ScreeningReason]
    hashes: dict[str, str]
    case_id: str | None = None


def screen_upload(
    ctx: CasesContext,
    path: Path,
    filename: str,
    principal: str,
    content_ref: str = "",
    keep_media: bool = True,
    kind: str = "image",
) -> ScreeningResult:
    """Policy: a bank match blocks, a near match or a likely manipulated face queues for review, an AI label
    labels, a file that could not be fully checked gets `on_error` (review), anything else is allowed; every
    finding is stored as the reason."""
    hashed = file_hashes(path)
    hashes = hashed.hashes
    findings = _run_screeners(ctx, path, hashed, filename)
    decision = strongest(findings)
    reasons_: list[ScreeningReason] = [
        {"screener": f.screener, "decision": f.decision, "reason": f.reason, "data": f.data} for f in findings
    ]
    if not reasons_:
        reasons_ = [{"screener": "policy", "decision": "allow", "reason": "no screener found anything", "data": {}}]
    sid = secrets.token_hex(12)
    case_id = None
    with session_scope(ctx.settings) as s:
        s.add(
            UploadScreening(
                id=sid,
                principal=principal,
                filename=filename[:500],
                content_ref=content_ref[:500],
                sha256=hashes["sha256"],
                hashes=json.dumps(hashes),
                decision=decision,
                reasons=json.dumps(reasons_, default=str),
            )
        )
        if decision in ("block", "review"):
            why = "; ".join(str(r["reason"]) for r in reasons_ if r["decision"] == decision)
            audit.record(
                s,
                actor="screening",
                actor_kind="automated",
                action=f"upload:{decision}",
                reason=why,
                evidence=[hashes["sha256"]],
                details={"upload": sid, "by": principal},
            )
        if decision == "review":
            case = service.create_screening_case(
                s, upload_id=sid, content_ref=content_ref, submitted_by=principal, why=why, policy=ctx.policy
            )
            case_id = case.id
    if case_id is not None and keep_media:
        attach_media(ctx, case_id, path, filename, kind, "screening", "automated", findings=findings)
    return ScreeningResult(sid, decision, reasons_, hashes, case_id)
