"""What every case flow needs, built once per app (or per test, or per CLI command) so the ports can be
swapped: the policy, the hash bank, the upload screeners and the webhook worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from deepshield.cases import checkpoints, webhooks
from deepshield.cases.adapters import MatchingHashBank, default_screeners
from deepshield.cases.deadlines import sweep_deadlines
from deepshield.cases.policy import CasesPolicy, load_policy
from deepshield.cases.ports import HashBank, Screener
from deepshield.config import Settings
from deepshield.detect.service import ScanService


@dataclass
class CasesContext:
    """The ports a flow calls; `close()` stops the webhook worker and the audit checkpointer and releases the
    screeners' models."""

    settings: Settings
    policy: CasesPolicy
    bank: HashBank
    screeners: list[Screener] = field(default_factory=list)
    worker: webhooks.WebhookWorker | None = None
    checkpointer: checkpoints.Checkpointer | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        bank: HashBank | None = None,
        screeners: list[Screener] | None = None,
        start_worker: bool = True,
        detector: bool = True,
        scans: ScanService | None = None,
    ) -> CasesContext:
        """`scans` is the app's scan service, which the detector screener then shares (one scan path)."""
        policy = load_policy(settings)
        bank = bank or MatchingHashBank(settings)
        ctx = cls(
            settings,
            policy,
            bank,
            screeners
            if screeners is not None
            else default_screeners(bank, policy.screening, settings, detector, scans),
        )
        if start_worker and policy.webhook.url:
            ctx.worker = webhooks.WebhookWorker(
                settings, policy.webhook, periodic=lambda: sweep_deadlines(settings, policy)
            )
            ctx.worker.start()
        if start_worker and settings.audit_checkpoint_minutes > 0:
            ctx.checkpointer = checkpoints.Checkpointer(settings, policy.webhook, on_written=ctx.kick).start()
        return ctx

    def kick(self) -> None:
        if self.worker is not None:
            self.worker.kick()

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        if self.worker is not None:
            self.worker.stop()
        for s in self.screeners:
            close = getattr(s, "close", None)
            if close:
                close()
