"""Plain words for every code a person reads: case states, decisions, actions, the statement-of-reasons codes,
and what comes next after each state. One table, used by the console, the reporter's status page and the
human-readable statement (the machine-readable statement and the Transparency export keep the DSA codes)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
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
    "consent_approved": "Consent approved in review (credential issued)",
    "consent_rejected": "Consent rejected in review",
    "consent_revoked": "Consent credential revoked",
}

#: A consent credential's state, as verification reports it (`labels.consent.ConsentState`).
CONSENT_STATES = {
    "valid": "Consent valid",
    "expired": "Consent expired",
    "revoked": "Consent revoked",
    "unknown": "Consent not recognised (not issued here)",
    "signature_invalid": "Consent credential altered (signature does not match)",
    "malformed": "Consent credential unreadable",
    "absent": "No consent credential",
}

#: Where a consent request stands (`consent.models.ConsentRequest.status`).
CONSENT_REQUESTS = {
    "open": "Waiting for the person's recording",
    "processing": "Being checked",
    "issued": "Credential issued",
    "review": "Waiting for review",
    "failed": "Refused (no credential)",
    "expired": "Link expired",
}

#: One consent check's verdict.
CONSENT_VERDICTS = {"pass": "passed", "review": "uncertain", "fail": "failed"}


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


def consent_state_label(code: str | None) -> str:
    return CONSENT_STATES.get(code or "", code or "—")


def consent_request_label(code: str | None) -> str:
    return CONSENT_REQUESTS.get(code or "", code or "—")


def consent_verdict_label(code: str | None) -> str:
    return CONSENT_VERDICTS.get(code or "", code or "—")


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
    return "; ".join(
        f"{r.get('screener', '?')}: {_with_consent(str(r.get('reason', '')), r.get('data'))}"
        for r in items
        if isinstance(r, dict)
    )


def consent_note(consent: object) -> str:
    """A labelled file's consent credential in words: its state, which credential, and why when not valid."""
    if not isinstance(consent, dict) or not consent.get("state"):
        return ""
    state = str(consent["state"])
    cid, why = consent.get("credential_id"), consent.get("reason")
    return (
        consent_state_label(state)
        + (f" (credential {cid})" if cid else "")
        + (f": {why}" if why and state not in ("valid", "absent") else "")
    )


def _with_consent(summary: str, data: object) -> str:
    """A label finding whose summary ends in the consent state code (`; consent revoked`), with that code
    replaced by the plain words and the credential it names."""
    consent = data.get("consent") if isinstance(data, dict) else None
    note = consent_note(consent)
    if not note or not isinstance(consent, dict):
        return summary
    return f"{summary.removesuffix('; consent ' + str(consent.get('state')))} · {note}"


def consent_check_line(check: dict[str, Any], policy: dict[str, Any]) -> str:
    """One consent check's evidence as a reviewer reads it, with the thresholds the decision used."""
    name, ev = str(check.get("name", "?")), check.get("evidence") or {}
    why = "; ".join(str(r).split(": ", 1)[-1] for r in check.get("reasons") or [])
    if name == "liveness" and ev:
        outcome = consent_verdict_label(str(ev.get("outcome", "")))
        return f"Liveness decision: {outcome} (score {ev.get('score', '?')})" + (f"; {why}" if why else "")
    if name == "face" and "distance" in ev:
        return (
            f"Face distance {ev['distance']} to the source media: pass at or below "
            f"{policy.get('face_match_distance', '?')}, refused above {policy.get('face_reject_distance', '?')} "
            f"({ev.get('frames', '?')} frames of the recording against {ev.get('source_frames', '?')} source frames)"
        )
    if name == "voice" and "similarity" in ev:
        return (
            f"Voice similarity {ev['similarity']} to the source recordings: pass at or above "
            f"{policy.get('voice_match_similarity', '?')}, refused below {policy.get('voice_reject_similarity', '?')} "
            f"({ev.get('speech_s', '?')} s of speech)"
        )
    if name == "sentence" and "expected" in ev:
        recall = float(ev.get("recall", 0.0))
        return (
            f"Sentence shown: \u201c{ev['expected']}\u201d. Words heard: \u201c{ev.get('heard') or 'nothing'}\u201d "
            f"({recall:.0%} of the sentence in order, pass at {float(policy.get('sentence_pass_recall', 0)):.0%}; "
            f"{ev.get('session_words_heard', '?')} of its 3 session words, pass at "
            f"{policy.get('sentence_session_words', '?')})"
        )
    return f"{name.capitalize()}: {why or 'no evidence stored'}"


def evidence_line(
    kind: str, decision: str | None, summary: str, category: str, data: dict[str, Any] | None = None
) -> str:
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
        return f"AI-content label: {_with_consent(summary, data)}"
    return f"{kind}: {summary}"
