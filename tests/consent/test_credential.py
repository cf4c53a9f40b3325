"""The consent credential on its own: offline verification with the public key alone, and each state."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deepshield.labels.aigc import key_id
from deepshield.labels.consent import (
    ConsentClaims,
    ConsentState,
    parse_credential,
    sign_credential,
    verify_credential,
)


def _claims(expires_in: int = 3600) -> ConsentClaims:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return ConsentClaims(
        id="c0ffee00c0ffee00",
        provider="Avatar Studio",
        purpose="a presenter avatar for product videos",
        issued_at=now,
        expires_at=now + expires_in,
        face_template_sha256="a" * 64,
        voice_template_sha256="b" * 64,
        source_sha256=["c" * 64],
        face_model="dlib-resnet-v1",
        voice_model="resemblyzer-ge2e",
    )


@pytest.fixture()
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _keys(key: Ed25519PrivateKey) -> dict[str, object]:
    pub = key.public_key()
    return {key_id(pub): pub}


def test_a_signed_credential_verifies_with_the_public_key_alone(key: Ed25519PrivateKey) -> None:
    token = sign_credential(_claims(), key)
    res = verify_credential(token, _keys(key))  # type: ignore[arg-type]
    assert res.state is ConsentState.VALID
    assert res.claims is not None and res.claims.provider == "Avatar Studio"
    assert res.claims.kid == key_id(key.public_key())
    assert len(token) < 1200  # compact: fits a metadata field and a QR code


def test_one_changed_byte_in_the_claims_breaks_the_signature(key: Ed25519PrivateKey) -> None:
    token = sign_credential(_claims(), key)
    prefix, payload, sig = token.split(".")
    body = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    i = body.index(b"Avatar")
    forged = body[:i] + b"B" + body[i + 1 :]  # "Bvatar Studio"
    forged_token = ".".join([prefix, base64.urlsafe_b64encode(forged).decode().rstrip("="), sig])
    res = verify_credential(forged_token, _keys(key))  # type: ignore[arg-type]
    assert res.state is ConsentState.SIGNATURE_INVALID


def test_one_changed_byte_in_the_signature_is_refused(key: Ed25519PrivateKey) -> None:
    token = sign_credential(_claims(), key)
    raw = bytearray(token.encode())
    raw[-5] = ord("A") if raw[-5] != ord("A") else ord("B")
    res = verify_credential(raw.decode(), _keys(key))  # type: ignore[arg-type]
    assert res.state is ConsentState.SIGNATURE_INVALID


def test_expired_unknown_key_and_garbage(key: Ed25519PrivateKey) -> None:
    expired = sign_credential(_claims(expires_in=-1), key)
    assert verify_credential(expired, _keys(key)).state is ConsentState.EXPIRED  # type: ignore[arg-type]
    other = Ed25519PrivateKey.generate()
    res = verify_credential(sign_credential(_claims(), other), _keys(key))  # type: ignore[arg-type]
    assert res.state is ConsentState.UNKNOWN
    for junk in ("", "dsc1.", "dsc1.!!!.???", "eyJhbGciOi.x.y", "dsc1." + "A" * 9000 + ".x"):
        assert verify_credential(junk, _keys(key)).state is ConsentState.MALFORMED  # type: ignore[arg-type]
    not_object = "dsc1." + base64.urlsafe_b64encode(json.dumps([1]).encode()).decode() + ".AA"
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_credential(not_object)
