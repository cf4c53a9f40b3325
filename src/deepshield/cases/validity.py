"""What a notice must hold before it is a case (DSA Article 16: the content's location, an explanation, the
notifier's name and e-mail, and a statement of good faith; less for the victims of intimate images), and the
categories and roles a notice may name."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

CATEGORIES = {
    "ncii": "non-consensual intimate imagery (including sexual deepfakes)",
    "impersonation_fraud": "impersonation or fraud using a synthetic likeness",
    "political_deepfake": "deceptive political deepfake",
    "csam": "child sexual abuse material",
    "harassment": "harassment or defamation using synthetic media",
    "other": "other illegal or prohibited synthetic media",
}
ROLES = {
    "depicted_person": "the person depicted",
    "authorised_representative": "someone authorised to act for the person depicted",
    "third_party": "a third party",
}
EU = {
    "EU",
    "AT",
    "BE",
    "BG",
    "HR",
    "CY",
    "CZ",
    "DK",
    "EE",
    "FI",
    "FR",
    "DE",
    "GR",
    "HU",
    "IE",
    "IT",
    "LV",
    "LT",
    "LU",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SK",
    "SI",
    "ES",
    "SE",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I)


@dataclass
class ReportFields:
    """The union of TAKE IT DOWN Act (47 U.S.C. 223a) and DSA Art. 16 notice fields."""

    category: str = ""
    jurisdiction: str = ""
    content_locations: list[str] = field(default_factory=list)
    explanation: str = ""
    good_faith: bool = False
    signature: str = ""
    reporter_name: str = ""
    reporter_email: str = ""
    reporter_contact: str = ""
    reporter_role: str = ""

    def normalised(self) -> ReportFields:
        return ReportFields(
            category=self.category.strip().lower(),
            jurisdiction=self.jurisdiction.strip().upper(),
            content_locations=[u.strip() for u in self.content_locations if u and u.strip()],
            explanation=self.explanation.strip(),
            good_faith=bool(self.good_faith),
            signature=self.signature.strip(),
            reporter_name=self.reporter_name.strip(),
            reporter_email=self.reporter_email.strip(),
            reporter_contact=self.reporter_contact.strip(),
            reporter_role=self.reporter_role.strip().lower(),
        )

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self.normalised()), sort_keys=True).encode()).hexdigest()


#: What each field is called on the form and in a receipt, in plain words (never the internal name).
FIELD_LABELS = {
    "category": "What it is",
    "content_locations": "Where it is (web address)",
    "explanation": "Why it is illegal or abusive",
    "good_faith": "Good-faith statement",
    "jurisdiction": "Country or region",
    "signature": "Signature",
    "reporter_role": "Who you are",
    "contact": "How we can reach you",  # in notices stored before the email field carried this need
    "reporter_name": "Your name",
    "reporter_email": "Your email",
}
TAKE_IT_DOWN = "TAKE IT DOWN Act (47 U.S.C. 223a)"


@dataclass(frozen=True)
class Missing:
    """One thing a notice lacks: `why` in plain words for the reporter, `basis` the rule that asks for it (kept
    for the record and the reviewer, not the headline)."""

    field: str
    why: str
    basis: str = ""

    @property
    def label(self) -> str:
        return FIELD_LABELS.get(self.field, self.field.replace("_", " "))

    def to_dict(self) -> dict[str, str]:
        """As stored on the case and answered by the API: the plain label travels with it."""
        return {"field": self.field, "label": self.label, "why": self.why, "basis": self.basis}


def _possibly_eu(f: ReportFields) -> bool:
    """EU law asks the most (name, email, explanation): asked too while the country is not given, so the list of
    what is missing is complete from the first answer and never grows once the country is known."""
    return (f.jurisdiction in EU or not f.jurisdiction) and f.category != "csam"


def check_validity(f: ReportFields) -> list[Missing]:
    """Say exactly what a notice lacks, each item once, in plain words with the rule that asks for it."""
    f = f.normalised()
    out: list[Missing] = []
    if f.category not in CATEGORIES:
        out.append(Missing("category", "Choose what kind of content you are reporting."))
    bad = [u for u in f.content_locations if not _URL.match(u)]
    if not f.content_locations:
        out.append(
            Missing(
                "content_locations",
                "Give the exact web address (starting with https://) of each place the content is shown.",
                f"{TAKE_IT_DOWN}; DSA Art. 16(2)(b)",
            )
        )
    elif bad:
        out.append(
            Missing(
                "content_locations",
                f"This is not a web address starting with http:// or https://: {', '.join(bad[:3])}",
                f"{TAKE_IT_DOWN}; DSA Art. 16(2)(b)",
            )
        )
    if _possibly_eu(f) and len(f.explanation) < 10:
        out.append(
            Missing(
                "explanation",
                "Tell us in a sentence or two why the content is illegal or abusive.",
                "DSA Art. 16(2)(a)",
            )
        )
    if not f.jurisdiction:
        out.append(Missing("jurisdiction", "Say which country's or region's law applies (for example US, UK, DE)."))
    if f.category == "ncii":
        if f.reporter_role not in ("depicted_person", "authorised_representative"):
            out.append(
                Missing(
                    "reporter_role",
                    "A removal request for intimate images must come from the person shown or someone acting for them.",
                    TAKE_IT_DOWN,
                )
            )
        if not f.signature:
            out.append(Missing("signature", "Type your full name as your signature.", TAKE_IT_DOWN))
    if _possibly_eu(f) and not f.reporter_name:
        out.append(Missing("reporter_name", "Give your name.", "DSA Art. 16(2)(c)"))
    if f.reporter_email and not _EMAIL.match(f.reporter_email):
        out.append(Missing("reporter_email", "This is not a valid email address."))
    elif _possibly_eu(f) and not f.reporter_email:
        out.append(Missing("reporter_email", "Give your email address.", "DSA Art. 16(2)(c)"))
    elif not (f.reporter_email or f.reporter_contact) and f.category != "csam":
        out.append(
            Missing(
                "reporter_email", "Give an email address or another way to reach you, so we can tell you the decision."
            )
        )
    if not f.good_faith:
        out.append(
            Missing(
                "good_faith",
                "Tick the box to confirm that the report is accurate and made in good faith.",
                f"{TAKE_IT_DOWN}; DSA Art. 16(2)(d)",
            )
        )
    return out
