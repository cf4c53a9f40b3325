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


@dataclass(frozen=True)
class Missing:
    field: str
    why: str


def check_validity(f: ReportFields) -> list[Missing]:
    """Say exactly what a notice lacks, citing which rule asks for it."""
    f = f.normalised()
    out: list[Missing] = []
    if f.category not in CATEGORIES:
        out.append(Missing("category", f"choose one of: {', '.join(CATEGORIES)}"))
    if not f.content_locations:
        out.append(
            Missing(
                "content_locations",
                "the exact URL(s) of the content, to identify and locate it (TAKE IT DOWN Act; DSA Art. 16(2)(b))",
            )
        )
    bad = [u for u in f.content_locations if not _URL.match(u)]
    if bad:
        out.append(Missing("content_locations", f"not a http(s) URL: {', '.join(bad[:3])}"))
    if not f.good_faith:
        out.append(
            Missing(
                "good_faith",
                "a statement that the report is made in good faith and is accurate "
                "(TAKE IT DOWN Act; DSA Art. 16(2)(d))",
            )
        )
    if not f.jurisdiction:
        out.append(Missing("jurisdiction", "the country or region whose law applies (e.g. US, EU, UK, DE)"))
    if f.category == "ncii":
        if not f.signature:
            out.append(
                Missing(
                    "signature",
                    "a physical or electronic signature of the depicted person or of "
                    "someone authorised (TAKE IT DOWN Act)",
                )
            )
        if f.reporter_role not in ("depicted_person", "authorised_representative"):
            out.append(
                Missing(
                    "reporter_role",
                    "a removal request must come from the person depicted or someone "
                    "authorised to act for them (TAKE IT DOWN Act)",
                )
            )
    if not (f.reporter_email or f.reporter_contact) and f.category != "csam":
        out.append(Missing("contact", "contact information so we can confirm receipt and tell you the decision"))
    if f.reporter_email and not _EMAIL.match(f.reporter_email):
        out.append(Missing("reporter_email", "not a valid email address"))
    if f.jurisdiction in EU and f.category != "csam":
        if not f.reporter_name:
            out.append(Missing("reporter_name", "the notifier's name (DSA Art. 16(2)(c))"))
        if not f.reporter_email:
            out.append(Missing("reporter_email", "the notifier's email address (DSA Art. 16(2)(c))"))
    if f.jurisdiction in EU and len(f.explanation) < 10:
        out.append(
            Missing("explanation", "a substantiated explanation of why the content is illegal (DSA Art. 16(2)(a))")
        )
    return out
