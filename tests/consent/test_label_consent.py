"""A consent credential carried by a label: `label --consent` writes it, `verify` reports its state (valid,
expired, revoked, signature invalid, unknown), and a revocation shows on the very next verification."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest

from deepshield.labels.consent import REVOCATION_SOURCES, ConsentClaims, sign_credential
from tests.consent.conftest import avatar_clip


def _claims(cid: str, expires_in: int) -> ConsentClaims:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return ConsentClaims(
        id=cid, provider="Avatar Studio", purpose="presenter avatar", issued_at=now, expires_at=now + expires_in,
        face_template_sha256="a" * 64, voice_template_sha256="b" * 64, source_sha256=["c" * 64],
        face_model="dlib-resnet-v1", voice_model="resemblyzer-ge2e",
    )  # fmt: skip


@pytest.fixture()
def clip(tmp_path: Path, shared_faces: Path) -> Path:
    """Two seconds of a real talking-head video (the digital human's output stands in for it)."""
    return avatar_clip(shared_faces, "vr_face1.mp4", tmp_path / "avatar.mp4")


def _label(src: Path, dst: Path, token: str | None, home: Path) -> None:
    from deepshield.labels.service import LabelOptions, label_file

    label_file(src, dst, LabelOptions(watermark=False, visible=False, consent=token), home)


def test_label_carries_the_credential_and_verify_reports_each_state(
    keys_home: Path, clip: Path, tmp_path: Path
) -> None:
    from deepshield.labels.keys import load_keys
    from deepshield.labels.service import verify_file

    key = load_keys(keys_home).aigc_key
    revoked: set[str] = set()

    def source(cid: str) -> tuple[bool, str] | None:
        return (cid in revoked, "revoked by the person") if cid.startswith("ok") else None

    REVOCATION_SOURCES.register("test", source)
    try:
        good = sign_credential(_claims("ok01", 3600), key)
        _label(clip, tmp_path / "good.mp4", good, keys_home)
        rep = verify_file(tmp_path / "good.mp4", watermark=False, home=keys_home)
        assert rep.consent["state"] == "valid", rep.consent
        assert rep.consent["credential_id"] == "ok01"
        aigc, asserted = (rep.metadata or {}).get("aigc"), rep.c2pa.get("consent")
        assert isinstance(aigc, dict) and aigc["ConsentID"] == "ok01"
        assert isinstance(asserted, dict) and asserted["credential_id"] == "ok01"

        revoked.add("ok01")  # the person withdraws: the next verification says so
        assert verify_file(tmp_path / "good.mp4", watermark=False, home=keys_home).consent["state"] == "revoked"

        expired = sign_credential(_claims("ok02", -10), key)
        _label(clip, tmp_path / "expired.mp4", expired, keys_home)
        assert verify_file(tmp_path / "expired.mp4", watermark=False, home=keys_home).consent["state"] == "expired"

        prefix, payload, sig = sign_credential(_claims("ok03", 3600), key).split(".")
        body = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b"Avatar", b"Bvatar")
        forged = ".".join([prefix, base64.urlsafe_b64encode(body).decode().rstrip("="), sig])
        _label(clip, tmp_path / "forged.mp4", forged, keys_home)
        rep = verify_file(tmp_path / "forged.mp4", watermark=False, home=keys_home)
        assert rep.consent["state"] == "signature_invalid"

        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        stranger = sign_credential(_claims("ok04", 3600), Ed25519PrivateKey.generate())
        _label(clip, tmp_path / "stranger.mp4", stranger, keys_home)
        assert verify_file(tmp_path / "stranger.mp4", watermark=False, home=keys_home).consent["state"] == "unknown"

        plain = tmp_path / "plain.mp4"
        _label(clip, plain, None, keys_home)
        assert verify_file(plain, watermark=False, home=keys_home).consent["state"] == "absent"
    finally:
        REVOCATION_SOURCES.unregister("test")


def test_label_refuses_a_token_that_is_not_a_credential(keys_home: Path, clip: Path, tmp_path: Path) -> None:
    from deepshield.labels.errors import LabelError

    with pytest.raises(LabelError, match="--consent: not a consent credential"):
        _label(clip, tmp_path / "x.mp4", "hello", keys_home)
