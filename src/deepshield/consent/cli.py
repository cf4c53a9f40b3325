"""`deepshield consent ...`: open a request from source media, check a consent video offline, verify, list and
revoke credentials. The capture itself (liveness script + sentence) runs on the API's capture page."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from deepshield.errors import DeepshieldError
from deepshield.terminal import plain_console, styled

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from deepshield.config import Settings

console = plain_console()
consent_app = typer.Typer(
    help="Consent for a likeness: requests, checks, credentials, revocation.", no_args_is_help=True
)


def _db() -> tuple[Settings, AbstractContextManager[Session]]:
    from deepshield.config import get_settings
    from deepshield.store.db import session_scope, upgrade_schema

    settings = get_settings()
    settings.ensure_dirs()
    upgrade_schema(settings)
    return settings, session_scope(settings)


def _token_arg(value: str) -> str:
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise DeepshieldError(f"cannot read {value[1:]} ({e.strerror})") from None
    return value


@consent_app.command("request")
def request(
    sources: Annotated[
        list[Path], typer.Argument(help="source media (videos, photos, recordings)", exists=True, dir_okay=False)
    ],
    provider: Annotated[str, typer.Option(help="who will make the digital human")],
    purpose: Annotated[str, typer.Option(help="what it will be used for")],
    days: Annotated[int, typer.Option(help="how long the consent is valid")] = 365,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open a consent request: the source media's face and voice templates are computed now."""
    from deepshield.consent.service import ConsentService
    from deepshield.consent.sources import describe

    settings, scope = _db()
    svc = ConsentService(settings)
    with scope as db:
        rec, token = svc.create_request(db, provider, purpose, days, [describe(p) for p in sources], "cli")
        out = {"request_id": rec.id, "capture_token": token, "sentence": rec.sentence}
    svc.close()
    print(
        json.dumps(out)
        if as_json
        else f"request {out['request_id']}\ncapture token {token}\nsentence: {out['sentence']}"
    )


@consent_app.command("check")
def check(
    source: Annotated[list[Path], typer.Option("--source", help="source media", exists=True, dir_okay=False)],
    video: Annotated[Path, typer.Argument(help="the consent video", exists=True, dir_okay=False)],
    sentence: Annotated[str, typer.Option(help="the sentence that should be heard")] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Face, voice and sentence checks of a consent video against source media, without a liveness session
    (liveness is reported as not run, so the outcome is at best review): for evaluation and disputes."""
    from deepshield.consent.checks import evaluate_consent
    from deepshield.consent.sources import describe, source_templates
    from deepshield.faces import FaceAnalyzer
    from deepshield.liveness.decision import Decision

    with FaceAnalyzer(max_faces=4) as fa:
        tpl = source_templates([describe(p) for p in source], fa)
        not_run = Decision("review", 0.0, ["no liveness session (offline check)"])
        out = evaluate_consent(video, tpl, sentence, not_run, fa)
    if as_json:
        print(json.dumps(out.to_dict()))
        return
    for c in out.checks:
        colour = {"pass": "green", "review": "yellow", "fail": "red"}[c.verdict]
        console.print(styled(f"  {c.name}: ", (c.verdict, colour), f" {json.dumps(c.evidence)}"))
    console.print(styled("outcome: ", (out.outcome, "bold")))
    for r in out.reasons:
        console.print(f"  - {r}")


@consent_app.command("verify")
def verify(
    credential: Annotated[str, typer.Argument(help="a dsc1... credential, or @FILE holding one")],
    public_key: Annotated[
        Path | None, typer.Option(help="verify offline with this PEM public key alone (no revocation check)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The consent state: valid, expired, revoked, unknown, signature_invalid or malformed (exit 1 unless valid)."""
    from deepshield.labels.aigc import key_id
    from deepshield.labels.consent import ConsentState, verify_credential
    from deepshield.labels.keys import read_ed25519_public_key

    token = _token_arg(credential)
    if public_key is not None:
        pub = read_ed25519_public_key(public_key)
        res = verify_credential(token, {key_id(pub): pub})
    else:
        from deepshield.consent.service import ConsentService

        settings, _ = _db()
        res = ConsentService(settings).check_token(token)
    if as_json:
        print(json.dumps(res.to_dict()))
    else:
        colour = "green" if res.state is ConsentState.VALID else "red"
        console.print(styled((res.state.value, colour), f": {res.reason}"))
        if res.claims:
            c = res.claims
            console.print(
                f"  id {c.id}, provider {c.provider!r}, purpose {c.purpose!r}, sources {len(c.source_sha256)}"
            )
    if res.state is not ConsentState.VALID:
        raise typer.Exit(1)


@consent_app.command("list")
def list_credentials(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Credentials issued here, newest first."""
    from deepshield.consent.service import ConsentService

    settings, scope = _db()
    with scope as db:
        rows = [ConsentService.public_credential(c) for c in ConsentService(settings).list_credentials(db)]
    if as_json:
        print(json.dumps(rows))
        return
    for r in rows:
        console.print(f"{r['credential_id']}  {r['state']:8}  {r['provider']}  expires {r['expires_at']}")


@consent_app.command("revoke")
def revoke(
    credential_id: Annotated[str, typer.Argument(help="the credential id")],
    reason: Annotated[str, typer.Option(help="why")] = "",
) -> None:
    """Revoke a credential as the operator: every verifier sees it revoked from the next check on."""
    from deepshield.consent.service import ConsentService

    settings, scope = _db()
    with scope as db:
        cred = ConsentService(settings).revoke_by_provider(db, credential_id, None, admin=True, reason=reason)
        console.print(f"revoked {cred.id}")


@consent_app.command("withdraw")
def withdraw(
    request_id: Annotated[str, typer.Argument(help="the reference the person was given (the request id)")],
    pin: Annotated[str, typer.Option(help="the person's PIN")],
    reason: Annotated[str, typer.Option(help="why")] = "",
) -> None:
    """The person withdraws consent (reference + PIN): the credential, if any, is revoked."""
    from deepshield.consent.service import ConsentService

    settings, scope = _db()
    with scope as db:
        rec = ConsentService(settings).withdraw(db, request_id, pin, reason)
        console.print(f"withdrawn {rec.id}")


@consent_app.command("review")
def review(
    request_id: Annotated[str, typer.Argument(help="a request in review")],
    approve: Annotated[bool, typer.Option("--approve/--reject", help="issue the credential, or fail the request")],
    reviewer: Annotated[str, typer.Option(help="who decided")] = "operator",
) -> None:
    """Resolve a request that went to review (the console shows its evidence)."""
    from deepshield.consent.service import ConsentService

    settings, scope = _db()
    with scope as db:
        issued = ConsentService(settings).resolve_review(db, request_id, approve, reviewer)
        console.print(f"issued {issued.credential.id}\n{issued.token}" if issued else f"rejected {request_id}")


def register(app: typer.Typer) -> None:
    from deepshield.consent.revocation import register_revocation_source

    register_revocation_source()
    app.add_typer(consent_app, name="consent")
