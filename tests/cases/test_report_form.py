"""The public report form without a browser: a complete notice with media, a resubmitted form (one case), a
bad upload or a missing CSRF token (the form comes back with what was typed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from deepshield.cases.models import Case, CaseMedia
from deepshield.store.db import session_scope
from tests.conftest import report_action

from .conftest import make_image


def _form(client: Any) -> tuple[str, dict[str, str]]:
    """The form's action URL (with its CSRF token) and a complete notice."""
    page = client.get("/report").text
    found = re.search(r'name="submission_id" value="([^"]+)"', page)
    assert found
    return report_action(page), {
        "submission_id": found.group(1),
        "category": "ncii",
        "jurisdiction": "US",
        "content_locations": "https://social.example/p/42 https://social.example/p/43",
        "explanation": "A sexual deepfake of me, posted without my consent.",
        "good_faith": "yes",
        "signature": "Jane Roe",
        "reporter_name": "Jane Roe",
        "reporter_email": "jane@example.org",
        "reporter_role": "depicted_person",
    }


def test_form_files_a_case_with_its_media_once(api: Any, tmp_path: Path) -> None:
    client, ctx, _ = api
    url, form = _form(client)
    img = make_image(tmp_path / "evidence.png", seed=3)
    with open(img, "rb") as f:
        r = client.post(url, data=form, files={"file": ("evidence.png", f, "image/png")})
    assert r.status_code == 201, r.text
    found = re.search(r'id="case-id">([^<]+)<', r.text)
    assert found and "decision is due" in r.text
    case_id = found.group(1)
    with open(img, "rb") as f:  # the same form sent twice: the receipt again, no second case or media
        again = client.post(url, data=form, files={"file": ("evidence.png", f, "image/png")})
    assert again.status_code == 200 and f'id="case-id">{case_id}<' in again.text
    with session_scope(ctx.settings) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.source == "form" and case.state == "valid"
        assert len(list(s.scalars(select(Case.id)))) == 1
        media = list(s.scalars(select(CaseMedia).where(CaseMedia.case_id == case_id)))
        assert [m.filename for m in media] == ["evidence.png"]


def test_form_comes_back_with_the_error_and_the_values(api: Any) -> None:
    client, ctx, _ = api
    url, form = _form(client)
    r = client.post(url, data=form, files={"file": ("x.png", b"not an image at all", "image/png")})
    assert 400 <= r.status_code < 500
    assert 'name="submission_id"' in r.text and "https://social.example/p/42 https://social.example/p/43" in r.text
    assert client.post("/report?csrf=forged", data=form).status_code == 403
    assert client.post("/report", data={**form, "csrf": url.split("=", 1)[1]}).status_code == 403  # in the URL
    with session_scope(ctx.settings) as s:
        assert list(s.scalars(select(Case.id))) == []
