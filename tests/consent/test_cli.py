"""`deepshield consent ...` as a user runs it: offline verification with the public key alone, the checks of a
consent video against source media, and clear errors with non-zero exits."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deepshield.labels.consent import ConsentClaims, sign_credential
from tests.cli import run_cli
from tests.consent.conftest import avatar_clip


def test_verify_offline_with_the_public_key(keys_home: Path, tmp_path: Path) -> None:
    from deepshield.labels.keys import load_keys, public_key_pem

    key = load_keys(keys_home).aigc_key
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = ConsentClaims("cli1", "Avatar Studio", "avatar", now, now + 60, "a" * 64, "b" * 64, [], "f", "v")
    (tmp_path / "token.txt").write_text(sign_credential(claims, key))
    (tmp_path / "pub.pem").write_text(public_key_pem(key.public_key()))
    ok = run_cli("consent", "verify", f"@{tmp_path / 'token.txt'}", "--public-key", str(tmp_path / "pub.pem"))
    assert ok.returncode == 0 and ok.stdout.startswith("valid"), ok.stdout + ok.stderr
    expired = sign_credential(ConsentClaims("cli2", "A", "b", now - 9, now - 1, "a", "b", [], "f", "v"), key)
    bad = run_cli("consent", "verify", expired, "--public-key", str(tmp_path / "pub.pem"), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["state"] == "expired"
    missing = run_cli("consent", "verify", "@/no/such/file")
    assert missing.returncode != 0 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr


def test_check_a_consent_video_against_source_media(shared_faces: Path, tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg absent (scripts/apt-packages.txt)")
    src = shared_faces / "real_videos" / "vr_face2.mp4"
    source, consent = tmp_path / "source.mp4", tmp_path / "consent.mp4"
    ff = ["ffmpeg", "-v", "error", "-y"]
    subprocess.run([*ff, "-i", str(src), "-t", "2.5", "-c:v", "libx264", "-c:a", "aac", str(source)], check=True)
    subprocess.run([*ff, "-ss", "2.5", "-i", str(src), "-c:v", "libx264", "-c:a", "aac", str(consent)], check=True)
    r = run_cli("consent", "check", "--source", str(source), str(consent), "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    checks = {c["name"]: c for c in out["checks"]}
    assert checks["face"]["verdict"] == "pass" and checks["voice"]["verdict"] == "pass", checks
    assert out["outcome"] == "review"  # no liveness session offline: never issued from the command line
    photo = shared_faces / "real_photos" / "df_img1.jpg"
    no_voice = run_cli("consent", "check", "--source", str(photo), str(consent))
    assert no_voice.returncode != 0 and "no speech found in the source media" in no_voice.stderr


def test_label_and_verify_commands_carry_the_consent(keys_home: Path, shared_faces: Path, tmp_path: Path) -> None:
    """`deepshield label --consent @FILE` then `deepshield verify`: the consent line says the state; a revoked
    credential (in this data directory's store) reads revoked on the next run."""
    from deepshield.consent.models import ConsentCredential, ConsentRequest
    from deepshield.labels.keys import load_keys
    from deepshield.store.db import session_scope, upgrade_schema
    from deepshield.store.timeutil import utcnow

    clip = avatar_clip(shared_faces, "vr_face4.mp4", tmp_path / "avatar.mp4")
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = ConsentClaims("cli3", "Avatar Studio", "avatar", now, now + 600, "a" * 64, "b" * 64, [], "f", "v")
    token = sign_credential(claims, load_keys(keys_home).aigc_key)
    (tmp_path / "consent.txt").write_text(token)
    out = tmp_path / "labelled.mp4"
    r = run_cli("label", str(clip), "-o", str(out), "--no-watermark", "--consent", f"@{tmp_path / 'consent.txt'}")
    assert r.returncode == 0, r.stderr
    upgrade_schema()
    with session_scope() as db:
        later = utcnow() + dt.timedelta(days=1)
        db.add(
            ConsentRequest(
                id="r",
                capture_expires_at=later,
                provider="Avatar Studio",
                purpose="avatar",
                consent_expires_at=later,
                token_hash="0",
                source_json="[]",
                sentence="",
            )
        )
        db.flush()
        db.add(ConsentCredential(id="cli3", request_id="r", provider="Avatar Studio", token=token, expires_at=later,
                                 face_template_sha256="a", voice_template_sha256="b"))  # fmt: skip
    v = run_cli("verify", str(out), "--no-watermark")
    assert v.returncode == 0 and "consent: valid cli3" in v.stdout, v.stdout + v.stderr
    with session_scope() as db:
        cred = db.get(ConsentCredential, "cli3")
        assert cred is not None
        cred.revoked_at, cred.revoked_by = utcnow(), "person"
    v = run_cli("verify", str(out), "--no-watermark")
    assert "consent: revoked cli3" in v.stdout, v.stdout
    bad = run_cli("label", str(clip), "-o", str(tmp_path / "x.mp4"), "--consent", "hello")
    assert bad.returncode != 0 and "--consent: not a consent credential" in bad.stderr
