"""Plain words for every code a person reads: case states, decisions, actions, the statement-of-reasons codes,
and what comes next after each state. One table, used by the console, the reporter's status page and the
human-readable statement (the machine-readable statement and the Transparency export keep the DSA codes)."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

STATES = {
    "received": "Received",
    "needs_info": "Needs more information",
    "valid": "Waiting for review",
    "in_review": "In review",
    "actioned": "Action taken",
    "no_action": "No action taken",
    "appealed": "Appealed",
    "upheld": "Decision upheld on appeal",
    "reversed": "Decision reversed on appeal",
    "closed": "Closed",
}

ACTIONS = {
    "remove": "Removed",
    "restrict": "Visibility restricted",
    "bank": "Hashed (re-uploads blocked)",
    "no_action": "No action",
}

#: Whole decisions whose words are not just the actions' words joined.
DECISIONS = {
    "remove,bank": "Removed and hashed",
    "restrict,bank": "Restricted and hashed",
    "bank": "Hashed (re-uploads blocked)",
    "no_action": "No action",
}

#: The DSA Art. 17 and Transparency Database codes a statement carries.
STATEMENT_CODES = {
    "DECISION_VISIBILITY_CONTENT_REMOVED": "Content removed",
    "DECISION_VISIBILITY_CONTENT_DISABLED": "Access to the content disabled",
    "DECISION_VISIBILITY_CONTENT_DEMOTED": "Content demoted",
    "DECISION_GROUND_ILLEGAL_CONTENT": "Illegal content",
    "DECISION_GROUND_INCOMPATIBLE_CONTENT": "Against the terms of service",
    "CONTENT_TYPE_SYNTHETIC_MEDIA": "Synthetic media",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE": "Cyber violence",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD": "Scams and fraud",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS": "Harm to civic discourse or elections",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS": "Protection of minors",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC": "Other violation of the terms of service",
}

#: What happens next, for the reviewer, after a case entered each state.
NEXT_STEP = {
    "received": "The notice is being checked for completeness.",
    "needs_info": "Waiting for the reporter to add what is missing; the clock starts once the notice is complete.",
    "valid": "Claim the case and decide.",
    "in_review": "Decide: remove, restrict, hash, or no action.",
    "actioned": "Done unless someone appeals (open for 6 months).",
    "no_action": "Done unless someone appeals (open for 6 months).",
    "appealed": "Decide the appeal: uphold or reverse.",
    "upheld": "Done: the decision stands.",
    "reversed": "The earlier actions were undone. If it was 'no action', start a new review to apply a "
    "restriction; otherwise nothing more is needed.",
    "closed": "Nothing more to do.",
}

#: Audit actions that people read in the console.
AUDIT_ACTIONS = {
    "report_received": "Report received",
    "info_supplied": "Information added",
    "media_attached": "Media attached",
    "media_revealed": "Media revealed",
    "claimed": "Claimed",
    "assigned": "Assigned",
    "released": "Released",
    "banked": "Hashes banked",
    "copy_found": "Copy found",
    "bank_entry_removed": "Removed from a bank",
}


def state_label(code: str | None) -> str:
    return STATES.get(code or "", code or "—")


def action_label(code: str | None) -> str:
    return ACTIONS.get(code or "", code or "—")


def decision_label(code: str | None) -> str:
    """`remove,bank` -> "Removed and hashed"; also accepts the statement's `remove+bank`."""
    if not code:
        return "—"
    norm = code.replace("+", ",")
    if norm in DECISIONS:
        return DECISIONS[norm]
    return " and ".join(ACTIONS.get(k, k).lower() for k in norm.split(",")).capitalize()


def code_label(code: str | None) -> str:
    return STATEMENT_CODES.get(code or "", code or "—")


def audit_label(code: str) -> str:
    """`state:in_review` -> "Moved to: In review", `action:remove` -> "Action: Removed"."""
    kind, _, rest = code.partition(":")
    if rest and kind == "state":
        return f"Moved to: {state_label(rest)}"
    if rest and kind == "action":
        return f"Action: {action_label(rest)}"
    if rest and kind == "reversed":
        return f"Undone: {action_label(rest)}"
    return AUDIT_ACTIONS.get(code, code.replace("_", " ").capitalize())


def next_step(state: str) -> str:
    return NEXT_STEP.get(state, "")


def iso_utc(value: dt.datetime | str | None) -> str:
    """A time as ISO 8601 in UTC to the second (no microseconds), for a `<time datetime>` the browser shows in
    the viewer's zone; naive times are UTC (SQLite drops the zone)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        when = value
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def utc_text(value: dt.datetime | str | None) -> str:
    """The same time as text a person reads without script: `2026-12-07 14:05 UTC`."""
    iso = iso_utc(value)
    return f"{iso[:10]} {iso[11:16]} UTC" if len(iso) >= 16 else iso


def safe_link(url: str) -> str | None:
    """The URL if a browser may follow it (http or https with a host), else None (shown as text)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def screening_reasons(reasons_json: str) -> str:
    """An upload's stored screening findings (JSON) as one line a person reads."""
    try:
        items = json.loads(reasons_json)
    except ValueError:
        return reasons_json
    if not isinstance(items, list):
        return reasons_json
    return "; ".join(f"{r.get('screener', '?')}: {r.get('reason', '')}" for r in items if isinstance(r, dict))


def evidence_line(kind: str, decision: str | None, summary: str, category: str) -> str:
    """A screener's finding worded so it never reads as a verdict on the report. On an intimate-image report
    the detector's "allow" only means it found no manipulation in the image; the report stands on its own."""
    if kind == "detector":
        if decision in (None, "", "allow"):
            words = "detector: no manipulation found in the image"
        else:
            words = "detector: signs of manipulation found in the image"
        return f"{words} (does not judge the report) · {summary}"
    if kind == "match":
        return f"hash match: {summary}"
    if kind == "labels":
        return f"AI-content label: {summary}"
    return f"{kind}: {summary}"
