"""DSA Art. 17 statements of reasons and the Transparency Database export (no personal data in it)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from deepshield.cases.models import Case, StatementOfReasons

#: category -> (Transparency Database statement category, legal ground by jurisdiction, terms clause)
TDB_CATEGORY = {
    "ncii": "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "impersonation_fraud": "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "political_deepfake": "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "csam": "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "harassment": "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "other": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
}
LEGAL_GROUND = {
    ("ncii", "US"): "47 U.S.C. 223a (TAKE IT DOWN Act): non-consensual intimate visual depiction",
    ("ncii", "UK"): "Online Safety Act 2023: intimate image abuse (priority illegal content)",
    ("ncii", "*"): "Law on non-consensual sharing of intimate images, including synthetic ones",
    ("impersonation_fraud", "*"): "Law on fraud and identity misuse",
    ("political_deepfake", "*"): "Law on deceptive manipulation of elections and public opinion",
    ("csam", "*"): "Law on child sexual abuse material",
    ("harassment", "*"): "Law on harassment and defamation",
    ("other", "*"): "Applicable law",
}
TERMS_CLAUSE = {
    "ncii": "Terms of service: intimate imagery shared without consent, including synthetic",
    "impersonation_fraud": "Terms of service: impersonation and deceptive synthetic media",
    "political_deepfake": "Terms of service: manipulated media about elections",
    "csam": "Terms of service: child safety",
    "harassment": "Terms of service: harassment",
    "other": "Terms of service: synthetic and manipulated media",
}
VISIBILITY = {
    "remove": "DECISION_VISIBILITY_CONTENT_REMOVED",
    "restrict": "DECISION_VISIBILITY_CONTENT_DISABLED",
}
REDRESS = (
    "Internal complaint (DSA Art. 20) free of charge within 6 months of this decision, through the case "
    "status page or our appeals address; out-of-court dispute settlement (Art. 21); judicial redress."
)


def legal_ground(category: str, jurisdiction: str) -> str:
    return (
        LEGAL_GROUND.get((category, jurisdiction)) or LEGAL_GROUND.get((category, "*")) or LEGAL_GROUND[("other", "*")]
    )


def make_statement(
    session: Session,
    case: Case,
    kinds: list[str],
    *,
    facts: str,
    automated_detection: bool,
    automated_decision: bool,
    territorial_scope: str = "",
    duration: str = "indefinite",
) -> StatementOfReasons:
    """One statement per restricting decision (remove or restrict, with or without banking)."""
    main = "remove" if "remove" in kinds else "restrict"
    sor = StatementOfReasons(
        id=str(uuid.uuid4()),
        case_id=case.id,
        decision="+".join(k for k in kinds if k != "no_action"),
        visibility=VISIBILITY[main],
        territorial_scope=territorial_scope or ("worldwide" if main == "remove" else case.jurisdiction or "worldwide"),
        duration=duration,
        facts=facts,
        notice_triggered=case.source in ("api", "form"),
        automated_detection=automated_detection,
        automated_decision=automated_decision,
        ground="DECISION_GROUND_ILLEGAL_CONTENT",
        legal_ground=legal_ground(case.category, case.jurisdiction),
        terms_clause=TERMS_CLAUSE.get(case.category, TERMS_CLAUSE["other"]),
        category=TDB_CATEGORY.get(case.category, TDB_CATEGORY["other"]),
        content_type="CONTENT_TYPE_SYNTHETIC_MEDIA",
        redress=REDRESS,
    )
    session.add(sor)
    session.flush()
    return sor


def statement_dict(sor: StatementOfReasons) -> dict[str, Any]:
    """The statement as shown to the affected user and the notifier."""
    return {
        "id": sor.id,
        "case_id": sor.case_id,
        "decision": sor.decision,
        "visibility": sor.visibility,
        "territorial_scope": sor.territorial_scope,
        "duration": sor.duration,
        "facts_and_circumstances": sor.facts,
        "notice_triggered": sor.notice_triggered,
        "automated_detection": sor.automated_detection,
        "automated_decision": sor.automated_decision,
        "decision_ground": sor.ground,
        "illegal_content_legal_ground": sor.legal_ground,
        "incompatible_content_ground": sor.terms_clause,
        "category": sor.category,
        "content_type": sor.content_type,
        "redress": sor.redress,
        "created_at": sor.created_at.isoformat(),
        "revoked": sor.revoked_at is not None,
    }


def transparency_record(sor: StatementOfReasons) -> dict[str, Any]:
    """Transparency Database fields only: no case number, names, emails, URLs or free-text facts."""
    return {
        "puid": sor.id,
        "decision_visibility": [sor.visibility],
        "decision_ground": sor.ground,
        "illegal_content_legal_ground": sor.legal_ground,
        "incompatible_content_ground": sor.terms_clause,
        "category": sor.category,
        "content_type": [sor.content_type],
        "territorial_scope": sor.territorial_scope,
        "end_date": None if sor.duration == "indefinite" else sor.duration,
        "source_type": "SOURCE_ARTICLE_16" if sor.notice_triggered else "SOURCE_VOLUNTARY",
        "automated_detection": "Yes" if sor.automated_detection else "No",
        "automated_decision": "AUTOMATED_DECISION_FULLY"
        if sor.automated_decision
        else "AUTOMATED_DECISION_NOT_AUTOMATED",
        "application_date": sor.created_at.date().isoformat(),
        "decision_facts": ("Synthetic media reported by notice and reviewed against the legal ground and terms cited."),
        "revoked": sor.revoked_at is not None,
    }


def export_transparency(session: Session, limit: int = 10000) -> list[dict[str, Any]]:
    rows = session.scalars(select(StatementOfReasons).order_by(StatementOfReasons.created_at).limit(limit))
    return [transparency_record(r) for r in rows]


def statements_for(session: Session, case_id: str) -> list[StatementOfReasons]:
    return list(
        session.scalars(
            select(StatementOfReasons)
            .where(StatementOfReasons.case_id == case_id)
            .order_by(StatementOfReasons.created_at)
        )
    )
