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
