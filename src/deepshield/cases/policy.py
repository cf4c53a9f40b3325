"""Deadlines and upload-screening policy, configurable per category and jurisdiction.

Read from `$DEEPSHIELD_HOME/cases.json` (or the file named by DEEPSHIELD_CASES_CONFIG), e.g.::

    {"default_hours": 48, "warn_fraction": 0.25,
     "deadlines": [{"category": "ncii", "jurisdiction": "*", "hours": 48},
                   {"category": "political_deepfake", "jurisdiction": "EU", "hours": 24}],
     "webhook": {"url": "https://platform.example/hooks/deepshield", "secret": "...", "max_attempts": 8},
     "screening": {"detector_review_threshold": 0.5, "pdq_block_distance": 31, "pdq_review_distance": 48,
                   "on_error": "review"}}
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepshield.config import CASES_CONFIG, WEBHOOK_URL, Settings, parse_http_url
from deepshield.errors import DeepshieldError
from deepshield.textfiles import read_json_file


class PolicyError(DeepshieldError):
    code = "invalid_policy"


@dataclass(frozen=True)
class DeadlineRule:
    category: str  # "*" matches any
    jurisdiction: str  # "*" matches any
    hours: float


@dataclass
class WebhookConfig:
    url: str | None = None
    secret: str = ""
    max_attempts: int = 8
    base_delay_s: float = 2.0
    timeout_s: float = 10.0


#: What screening decides when a file cannot be hashed or checked: fail closed, one way or the other.
ON_ERROR_DECISIONS = ("review", "block")


@dataclass
class ScreeningPolicy:
    detector_review_threshold: float = 0.5
    pdq_block_distance: int = 31
    pdq_review_distance: int = 48
    #: A check that could not be made (a screener error, no perceptual hash, a truncated file of which only a
    #: part was checked) is `review` by default or `block`; never `allow`.
    on_error: str = "review"

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR_DECISIONS:
            raise PolicyError(f"screening.on_error must be one of {', '.join(ON_ERROR_DECISIONS)}")


@dataclass
class CasesPolicy:
    default_hours: float = 48.0
    warn_fraction: float = 0.25
    deadlines: list[DeadlineRule] = field(default_factory=list)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    screening: ScreeningPolicy = field(default_factory=ScreeningPolicy)
    appeal_window_days: int = 183  # "at least six months"

    def hours_for(self, category: str, jurisdiction: str) -> float:
        """Most specific rule wins: exact category and jurisdiction, then category, then jurisdiction."""
        best: tuple[int, float] | None = None
        for r in self.deadlines:
            if r.category not in ("*", category) or r.jurisdiction not in ("*", jurisdiction):
                continue
            rank = (2 if r.category != "*" else 0) + (1 if r.jurisdiction != "*" else 0)
            if best is None or rank > best[0]:
                best = (rank, r.hours)
        return best[1] if best else self.default_hours

    def due(self, valid_at: dt.datetime, category: str, jurisdiction: str) -> dt.datetime:
        return valid_at + dt.timedelta(hours=self.hours_for(category, jurisdiction))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CasesPolicy:
        try:
            rules = [
                DeadlineRule(
                    str(r.get("category", "*")),
                    str(r.get("jurisdiction", "*")).upper() if r.get("jurisdiction", "*") != "*" else "*",
                    float(r["hours"]),
                )
                for r in d.get("deadlines", [])
            ]
            if any(r.hours <= 0 for r in rules):
                raise PolicyError("deadline hours must be positive")
            wh = WebhookConfig(**d.get("webhook", {}))
            if wh.url:
                try:
                    parse_http_url(str(wh.url))
                except ValueError:
                    raise PolicyError("bad cases policy: webhook.url is not an http(s) URL") from None
            sc = ScreeningPolicy(**d.get("screening", {}))
            return cls(
                default_hours=float(d.get("default_hours", 48)),
                warn_fraction=float(d.get("warn_fraction", 0.25)),
                deadlines=rules,
                webhook=wh,
                screening=sc,
                appeal_window_days=int(d.get("appeal_window_days", 183)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise PolicyError(f"bad cases policy: {e}") from None


def policy_path(settings: Settings) -> Path:
    return CASES_CONFIG.get() or settings.home / "cases.json"


def load_policy(settings: Settings) -> CasesPolicy:
    path = policy_path(settings)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = read_json_file(path, "cases policy")
        except DeepshieldError as e:  # not UTF-8, not JSON, unreadable: the policy's own error code
            raise PolicyError(e.message) from None
        if not isinstance(data, dict):
            raise PolicyError(f"{path}: a cases policy is a JSON object (deadlines, webhook, ...)")
    pol = CasesPolicy.from_dict(data)
    # Environment wins for the secret so it need not sit in a file.
    pol.webhook.url = WEBHOOK_URL.get() or pol.webhook.url
    if os.environ.get("DEEPSHIELD_WEBHOOK_SECRET"):
        pol.webhook.secret = os.environ["DEEPSHIELD_WEBHOOK_SECRET"]
    return pol
