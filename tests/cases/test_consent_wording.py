"""The consent words of the one wording table: a label finding's consent state in words on the upload list and
the case page, and every state a verifier can report has its words."""

from __future__ import annotations

import json

from deepshield.cases import wording
from deepshield.labels.consent import ConsentState


def test_every_consent_state_has_words() -> None:
    missing = [s.value for s in ConsentState if s.value not in wording.CONSENT_STATES]
    assert missing == []
    assert wording.consent_state_label("signature_invalid") != "signature_invalid"


def test_an_uploads_label_finding_reads_its_consent_state() -> None:
    reasons = [
        {"screener": "match", "decision": "allow", "reason": "no match", "data": {}},
        {
            "screener": "labels",
            "decision": "review",
            "reason": "review: C2PA manifest found; consent signature_invalid",
            "data": {"consent": {"state": "signature_invalid", "reason": "bytes changed", "credential_id": "ab12"}},
        },
    ]
    line = wording.screening_reasons(json.dumps(reasons))
    assert line == (
        "match: no match; labels: review: C2PA manifest found · Consent credential altered (signature does not "
        "match) (credential ab12): bytes changed"
    )
    valid = {"consent": {"state": "valid", "reason": "signature and expiry ok", "credential_id": "cd34"}}
    assert wording.evidence_line("labels", "allow", "allow: label found; consent valid", "ncii", valid) == (
        "AI-content label: allow: label found · Consent valid (credential cd34)"
    )
    # without consent evidence the finding is unchanged
    assert (
        wording.evidence_line("labels", "allow", "allow: label found", "ncii", {})
        == "AI-content label: allow: label found"
    )


def test_check_lines_name_the_thresholds() -> None:
    policy = {"voice_match_similarity": 0.8, "voice_reject_similarity": 0.7}
    check = {"name": "voice", "verdict": "review", "reasons": [], "evidence": {"similarity": 0.75, "speech_s": 4.2}}
    assert wording.consent_check_line(check, policy) == (
        "Voice similarity 0.75 to the source recordings: pass at or above 0.8, refused below 0.7 (4.2 s of speech)"
    )
    replay = {"name": "replay", "verdict": "fail", "reasons": ["replay: the consent video is one of the sources"]}
    assert wording.consent_check_line(replay, policy) == "Replay: the consent video is one of the sources"
