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


def _field_error(page: str, name: str) -> str:
    """The error shown beside one field of the form ('' when that field is fine)."""
    found = re.search(rf'<p class="field-error" id="err-{name}" role="alert"( hidden)?>([^<]*)</p>', page)
    assert found, f"no error slot beside {name}"
    return "" if found.group(1) else found.group(2)


def test_a_report_with_only_a_category_creates_no_case(api: Any, tmp_path: Path) -> None:
    """The server checks the notice before anything is stored (the page's script may be off or bypassed): the
    form comes back with each problem beside its field, in plain words, and no case, no upload."""
    client, ctx, _ = api
    url, form = _form(client)
    only = {"submission_id": form["submission_id"], "category": "ncii"}
    img = make_image(tmp_path / "evidence.png", seed=4)
    with open(img, "rb") as f:
        r = client.post(url, data=only, files={"file": ("evidence.png", f, "image/png")})
    assert r.status_code == 422 and 'id="case-id"' not in r.text
    for name in ("content_locations", "jurisdiction", "good_faith", "signature", "reporter_name", "explanation"):
        msg = _field_error(r.text, name)
        assert msg and "_" not in msg and "DSA" not in msg and "U.S.C." not in msg, (name, msg)
    assert _field_error(r.text, "category") == ""  # what was right is not flagged
    assert 'value="ncii" selected' in r.text and "choose your file again" in r.text
    with session_scope(ctx.settings) as s:
        assert list(s.scalars(select(Case.id))) == []
        assert list(s.scalars(select(CaseMedia.id))) == []
    assert not list(ctx.settings.uploads_dir.glob("*")) if ctx.settings.uploads_dir.exists() else True
    # The same form, complete: one case.
    r = client.post(url, data=form)
    assert r.status_code == 201 and 'id="case-id"' in r.text


def test_missing_list_is_complete_from_the_first_answer(api: Any) -> None:
    """An API notice with only a category lists everything at once (EU rules asked while no country is given),
    each item once, by its plain label; naming the country only shortens the list, it never grows."""
    client, ctx, key = api
    h = key("cases")
    rec = client.post("/v1/reports", json={"category": "ncii"}, headers=h).json()
    first = {m["field"] for m in rec["missing"]}
    assert first == {
        "content_locations",
        "explanation",
        "jurisdiction",
        "reporter_role",
        "signature",
        "reporter_name",
        "reporter_email",
        "good_faith",
    }
    assert len(rec["missing"]) == len(first)  # each once
    labels = [m["label"] for m in rec["missing"]]
    assert "Your name" in labels and all("_" not in m["why"] for m in rec["missing"])
    assert all("DSA" not in m["why"] and "U.S.C" not in m["why"] for m in rec["missing"])
    assert any(m["basis"].startswith("TAKE IT DOWN") for m in rec["missing"])  # kept for the record
    with session_scope(ctx.settings) as s:
        from deepshield.cases import service

        service.supply_info(s, rec["case_id"], {"jurisdiction": "US"}, "reporter", "human", ctx.policy)
    st = client.post("/v1/selfservice/status", json={"case_id": rec["case_id"], "pin": rec["pin"]}).json()
    after = {m["field"] for m in st["missing"]}
    assert after < first and "jurisdiction" not in after
