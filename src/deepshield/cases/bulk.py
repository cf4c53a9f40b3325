"""One decision applied to many cases at once (cases matched by the same banked hash): each case is decided
on its own (its own state change, audit events, webhooks and statement of reasons), and one more audit event
records the batch. A case that cannot be decided (claimed by someone else, already decided) is reported, not
skipped silently, and does not stop the others."""

from __future__ import annotations

from dataclasses import dataclass, field

from deepshield.cases import audit, flows
from deepshield.cases.context import CasesContext
from deepshield.errors import DeepshieldError
from deepshield.store.db import session_scope

MAX_BULK = 200


@dataclass
class BulkResult:
    decided: list[str] = field(default_factory=list)
    statements: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # case id -> why


def bulk_decide(
    ctx: CasesContext, case_ids: list[str], kinds: list[str], *, actor: str, reason: str, group: str = ""
) -> BulkResult:
    ids = list(dict.fromkeys(c.strip().upper() for c in case_ids if c.strip()))
    if not ids:
        raise flows.BadAction("select at least one case")
    if len(ids) > MAX_BULK:
        raise flows.BadAction(f"at most {MAX_BULK} cases in one bulk decision")
    if not reason.strip():
        raise flows.BadAction("a reason is required for every decision")
    out = BulkResult()
    for cid in ids:
        try:
            r = flows.decide(ctx, cid, kinds, actor=actor, actor_kind="human", reason=reason)
        except DeepshieldError as e:
            out.failed[cid] = e.message
            continue
        out.decided.append(cid)
        if r.statement_id:
            out.statements[cid] = r.statement_id
    with session_scope(ctx.settings) as s:
        audit.record(
            s,
            actor=actor,
            actor_kind="human",
            action="bulk_decision",
            reason=reason,
            details={"actions": kinds, "decided": out.decided, "failed": out.failed, "group": group},
        )
    return out
