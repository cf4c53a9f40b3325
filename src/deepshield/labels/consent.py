"""The consent credential carried by a label (issued by `deepshield.consent`): a compact signed token
(`dsc1.<claims>.<signature>`, base64url, JWS-like) verifiable offline with the issuer's Ed25519 public key
alone. It binds the person's face and voice templates by SHA-256 (never the media), the source media hashes,
the scope and the expiry. Revocation is the one thing an offline check cannot see: a revocation source (the
consent store, registered by `deepshield.consent`) answers it, and the API serves it. It lives here, below the
consent domain, so that a label can carry a credential and `verify` can judge it without importing the domain
that issues it."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deepshield.jsontypes import JsonObject
from deepshield.labels.aigc import key_id
from deepshield.registry import Registry

PREFIX = "dsc1"
#: Longest token accepted for parsing: a real one is about 900 characters.
MAX_TOKEN = 8192


class ConsentState(enum.StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # well-formed, but no key we trust (or no credential we issued) vouches for it
    SIGNATURE_INVALID = "signature_invalid"  # one of our keys, but the bytes were changed after signing
    MALFORMED = "malformed"


@dataclass(frozen=True)
class ConsentClaims:
    """What the person agreed to and whose face and voice it was."""

    id: str
    provider: str
    purpose: str
    issued_at: int  # unix seconds
    expires_at: int
    face_template_sha256: str
    voice_template_sha256: str
    source_sha256: list[str]
    face_model: str
    voice_model: str
    issuer: str = "deepshield"
    kid: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        return asdict(self)


@dataclass
class CredentialCheck:
    state: ConsentState
    reason: str
    claims: ConsentClaims | None = None

    def to_dict(self) -> JsonObject:
        return {
            "state": self.state.value,
            "reason": self.reason,
            "claims": self.claims.to_dict() if self.claims else None,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_credential(claims: ConsentClaims, key: Ed25519PrivateKey) -> str:
    body = claims.to_dict()
    body["kid"] = key_id(key.public_key())
    payload = _b64(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    sig = key.sign(f"{PREFIX}.{payload}".encode())
    return f"{PREFIX}.{payload}.{_b64(sig)}"


def parse_credential(token: str) -> tuple[ConsentClaims, bytes, bytes]:
    """Claims, signing input and signature; ValueError with the reason when the token is not one of ours."""
    token = token.strip()
    if len(token) > MAX_TOKEN:
        raise ValueError("credential too long")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise ValueError(f"not a consent credential (expected {PREFIX}.<claims>.<signature>)")
    try:
        body = json.loads(_unb64(parts[1]))
        sig = _unb64(parts[2])
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"credential is not valid base64url JSON ({type(e).__name__})") from None
    if not isinstance(body, dict):
        raise ValueError("credential claims are not a JSON object")
    try:
        claims = ConsentClaims(**body)
    except TypeError as e:
        raise ValueError(f"credential claims do not match the format ({e})") from None
    if not isinstance(claims.expires_at, int) or not isinstance(claims.issued_at, int):
        raise ValueError("credential times are not integers")
    return claims, f"{PREFIX}.{parts[1]}".encode(), sig


def verify_credential(token: str, keys: dict[str, Ed25519PublicKey], now: dt.datetime | None = None) -> CredentialCheck:
    """Offline: signature against the trusted keys, then expiry. Revocation is checked by the service."""
    try:
        claims, signed, sig = parse_credential(token)
    except ValueError as e:
        return CredentialCheck(ConsentState.MALFORMED, str(e))
    pub = keys.get(claims.kid)
    if pub is None:
        return CredentialCheck(ConsentState.UNKNOWN, f"signed by key {claims.kid!r}, which is not trusted here", claims)
    try:
        pub.verify(sig, signed)
    except InvalidSignature:
        return CredentialCheck(ConsentState.SIGNATURE_INVALID, "the signature does not match the claims", claims)
    t = int((now or dt.datetime.now(dt.UTC)).timestamp())
    if t >= claims.expires_at:
        when = dt.datetime.fromtimestamp(claims.expires_at, dt.UTC).isoformat()
        return CredentialCheck(ConsentState.EXPIRED, f"expired at {when}", claims)
    return CredentialCheck(ConsentState.VALID, "signature valid, not expired", claims)


#: Where a credential id's revocation is known: a callable giving (revoked, reason) or None when the id is not
#: one it issued. The consent domain registers its store; with none registered, revocation is not checked.
RevocationSource = Callable[[str], tuple[bool, str] | None]
REVOCATION_SOURCES: Registry[RevocationSource] = Registry("consent revocation source")


def check_with_revocation(
    token: str, keys: dict[str, Ed25519PublicKey], now: dt.datetime | None = None
) -> CredentialCheck:
    """The offline check, then every registered revocation source; a valid credential stays valid but says
    so when no source could vouch for its revocation status."""
    check = verify_credential(token, keys, now)
    if check.claims is None or check.state in (ConsentState.SIGNATURE_INVALID, ConsentState.MALFORMED):
        return check
    sources = REVOCATION_SOURCES.values()
    for source in sources:
        answer = source(check.claims.id)
        if answer is None:
            continue
        revoked, reason = answer
        if revoked:
            return CredentialCheck(ConsentState.REVOKED, reason, check.claims)
        return check
    if check.state is ConsentState.VALID:
        check.reason += "; revocation not checked (no consent store here)" if not sources else "; not issued here"
        if sources:
            check.state = ConsentState.UNKNOWN
    return check
