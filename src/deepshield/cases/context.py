"""What every case flow needs, built once per app (or per test, or per CLI command) so the ports can be
swapped: the policy, the hash bank, the upload screeners and the webhook worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from deepshield.cases import service, webhooks
from deepshield.cases.adapters import MemoryHashBank, default_hash_bank, default_screeners
from deepshield.cases.deadlines import sweep_deadlines
from deepshield.cases.models import CaseAction, VictimHash
from deepshield.cases.policy import CasesPolicy, load_policy
from deepshield.cases.ports import HashBank, Screener
from deepshield.config import Settings
from deepshield.store.db import session_scope


@dataclass
class CasesContext:
    """The ports a flow calls; `close()` stops the webhook worker and releases the screeners' models."""

    settings: Settings
    policy: CasesPolicy
    bank: HashBank
    screeners: list[Screener] = field(default_factory=list)
    worker: webhooks.WebhookWorker | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        bank: HashBank | None = None,
        screeners: list[Screener] | None = None,
        start_worker: bool = True,
        detector: bool = True,
    ) -> CasesContext:
        policy = load_policy(settings)
        bank = bank or default_hash_bank(settings)
        ctx = cls(
            settings,
            policy,
            bank,
            screeners if screeners is not None else default_screeners(bank, policy.screening, detector, settings.home),
        )
        if isinstance(ctx.bank, MemoryHashBank):
            restore_bank(ctx)
        if start_worker and policy.webhook.url:
            ctx.worker = webhooks.WebhookWorker(
                settings, policy.webhook, periodic=lambda: sweep_deadlines(settings, policy)
            )
            ctx.worker.start()
        return ctx

    def kick(self) -> None:
        if self.worker is not None:
            self.worker.kick()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        for s in self.screeners:
            close = getattr(s, "close", None)
            if close:
                close()


def restore_bank(ctx: CasesContext) -> int:
    """Re-add every live banked hash (bank actions not reversed, victim hashes not withdrawn) to the bank. The
    in-process fallback bank forgets on restart; this rebuilds it from the database, and adds are
    idempotent."""
    n = 0
    with session_scope(ctx.settings) as s:
        banked = set(
            s.scalars(select(CaseAction.case_id).where(CaseAction.kind == "bank", CaseAction.reversed_at.is_(None)))
        )
        for cid in banked:
            for sig, val in service.case_hashes(s, cid):
                ctx.bank.add(val, sig, cid, {"source": "case"})
                n += 1
        for v in s.scalars(select(VictimHash).where(VictimHash.removed_at.is_(None))):
            ctx.bank.add(v.value, v.signal, v.case_id, {"source": "victim"})
            n += 1
    return n
