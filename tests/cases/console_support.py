"""Helpers for the console's browser tests: a served app with reviewers, cases made through the real services,
screenshots under the test run's output folder, and the 375 px overflow measure."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from deepshield.accounts.service import create_user
from deepshield.cases import service
from deepshield.cases.context import CasesContext
from deepshield.config import Settings
from deepshield.store.db import reset_engines, session_scope

from .conftest import Server, valid_fields

if TYPE_CHECKING:
    from playwright.sync_api import Page


def output_dir(request: pytest.FixtureRequest) -> Path:
    """Where a test keeps what a reviewer looks at, beside the public pages' screenshots:
    `$DEEPSHIELD_SCREENSHOTS`, else `screenshots` under pytest's base temporary folder; then `console/<test>`."""
    base = (
        os.environ.get("DEEPSHIELD_SCREENSHOTS")
        or request.getfixturevalue("tmp_path_factory").getbasetemp() / "screenshots"
    )
    d = Path(base) / "console" / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    d.mkdir(parents=True, exist_ok=True)
    return d


def shot(page: Page, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serve(settings: Settings, users: dict[str, str]) -> Server:
    """The service on the test's database, with these users (name -> role; password `<name>-password`)."""
    with session_scope(settings) as s:
        for name, role in users.items():
            create_user(s, name, f"{name}-password", role)
    reset_engines()
    return Server(settings).start()


def login(page: Page, base: str, user: str, pw: str) -> None:
    page.goto(base + "/login?next=/console")
    page.fill("#username", user)
    page.fill("#password", pw)
    page.click("button[type=submit]")
    # Anchored on the path: the sign-in page's own URL (`/login?next=/console`) also ends in /console.
    page.wait_for_url(re.compile(r"^https?://[^/?]+/console$"))


def new_cases(ctx: CasesContext, n: int, **over: object) -> list[str]:
    """`n` complete notices (valid, on the clock), filed as the API files them."""
    ids = []
    with session_scope(ctx.settings) as s:
        for i in range(n):
            fields = valid_fields(**{"content_locations": [f"https://social.example/p/{i}"], **over})
            case, _ = service.create_case(
                s,
                fields,
                source="api",
                submitted_by="platform",
                actor_kind="automated",
                policy=ctx.policy,
                settings=ctx.settings,
            )
            ids.append(case.id)
    return ids


def overflow(page: Page) -> dict[str, int]:
    """How far the page is wider than the screen (0 when nothing overflows sideways)."""
    return page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,"
        " header: document.querySelector('header').getBoundingClientRect().height})"
    )
