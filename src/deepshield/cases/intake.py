"""Intake with idempotency: a retried submission (same key) returns the first report instead of a new one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from deepshield.cases import pins, service, validity
from deepshield.cases.context import CasesContext
from deepshield.cases.models import Case
from deepshield.jsontypes import JsonObject
from deepshield.store.db import session_scope
from deepshield.store.timeutil import as_utc


@dataclass
class Receipt:
    case_id: str
    pin: str
    state: str
    received_at: str
    due_at: str | None
    missing: list[dict[str, str]]
    version: int
    replayed: bool

    def to_dict(self) -> JsonObject:
        msg = f"We received your report on {self.received_at} as case {self.case_id}. " + (
            "It is complete; a decision is due by " + str(self.due_at) + "."
            if self.state == "valid"
            else "Some information is still missing: "
            + "; ".join(m.get("label", m["field"]) + ": " + m["why"] for m in self.missing)
            + " Add it on the status page with your case number and PIN."
        )
        return {
            "case_id": self.case_id,
            "pin": self.pin,
            "status": self.state,
            "received_at": self.received_at,
            "due_at": self.due_at,
            "missing": self.missing,
            "valid": not self.missing,
            "receipt": msg,
            "status_url": "/case-status",
            "version": self.version,
            "replayed": self.replayed,
        }


def _receipt(ctx: CasesContext, case: Case, replayed: bool) -> Receipt:
    import json

    due = as_utc(case.due_at)
    recv = as_utc(case.received_at)
    assert recv is not None
    return Receipt(
        case.id,
        pins.derive_pin(pins.case_secret(ctx.settings), case.id),
        case.state,
        recv.isoformat(timespec="seconds"),
        due.isoformat(timespec="seconds") if due else None,
        json.loads(case.missing),
        case.version,
        replayed,
    )


def submit(
    ctx: CasesContext,
    fields: validity.ReportFields,
    *,
    source: str,
    submitted_by: str,
    actor_kind: str,
    idempotency_key: str | None,
    client: str | None = None,
) -> Receipt:
    """Commit before returning: a receipt handed out is a report stored. Idempotency keys are scoped to the
    `client` (an API key's id), so two integrations cannot collide or read each other's receipts."""
    key = f"{client or submitted_by}:{idempotency_key}"[:200] if idempotency_key else None
    digest = fields.digest()
    for _ in range(2):
        if key:
            with session_scope(ctx.settings) as s:
                old = service.find_by_idempotency(s, key)
                if old is not None:
                    if old.request_hash != digest:
                        raise service.IdempotencyMismatch(
                            "this Idempotency-Key was already used for a different report; use a new key"
                        )
                    return _receipt(ctx, old, True)
        try:
            with session_scope(ctx.settings) as s:
                case, _ = service.create_case(
                    s,
                    fields,
                    source=source,
                    submitted_by=submitted_by,
                    actor_kind=actor_kind,
                    policy=ctx.policy,
                    settings=ctx.settings,
                    idempotency_key=key,
                )
            return _receipt(ctx, case, False)
        except IntegrityError:
            if not key:
                raise
            continue  # the same key won a race in another request: answer with that report
    raise service.IdempotencyMismatch("could not store the report; retry with the same Idempotency-Key")
