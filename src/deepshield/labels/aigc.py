"""The GB 45438-2025 implicit label: one `AIGC` JSON object, with Ed25519 integrity codes.

`ReservedCode1` is the producer's signature over the producer fields; `ReservedCode2` is the platform's
signature over every other field (producer fields and ReservedCode1 included), so a platform can add its
fields without breaking the producer's code and the producer's fields stay provably intact.
Codes are printable ASCII: `ds-ed25519:<key id>:<base64url signature>`.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass, field, fields
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deepshield.labels.errors import LabelError

PRODUCER_FIELDS = ("Label", "ContentProducer", "ProduceID")
PROPAGATOR_FIELDS = ("ContentPropagator", "PropagateID")
CODE_PREFIX = "ds-ed25519"


class LabelValue(enum.StrEnum):
    AI_GENERATED = "1"
    POSSIBLY = "2"
    SUSPECTED = "3"


DISPLAY = {"1": "AI-generated", "2": "possibly AI-generated", "3": "suspected AI-generated"}


@dataclass
class AigcLabel:
    Label: str = "1"
    ContentProducer: str = ""
    ProduceID: str = ""
    ReservedCode1: str = ""
    ContentPropagator: str = ""
    PropagateID: str = ""
    ReservedCode2: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # unknown keys, kept as found

    def to_json(self) -> str:
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        d.update(self.extra)
        s = json.dumps(d, ensure_ascii=True, separators=(",", ":"))
        return s

    @classmethod
    def from_json(cls, text: str) -> AigcLabel:
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError) as e:
            raise LabelError(f"AIGC metadata is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise LabelError("AIGC metadata is not a JSON object")
        known = {f.name for f in fields(cls)} - {"extra"}
        kw = {k: str(v) for k, v in d.items() if k in known}
        extra = {str(k): str(v) for k, v in d.items() if k not in known}
        return cls(**kw, extra=extra)

    def validate(self) -> None:
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if not all(32 <= ord(c) < 127 for c in v):
                raise LabelError(f"AIGC field {f.name} must be printable ASCII")
        if self.Label not in DISPLAY:
            raise LabelError('AIGC Label must be "1", "2" or "3"')


def _canonical(label: AigcLabel, names: tuple[str, ...]) -> bytes:
    return json.dumps({n: getattr(label, n) for n in names}, sort_keys=True, separators=(",", ":")).encode()


def key_id(pub: Ed25519PublicKey) -> str:
    import hashlib

    from cryptography.hazmat.primitives import serialization

    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _code(key: Ed25519PrivateKey, msg: bytes) -> str:
    sig = base64.urlsafe_b64encode(key.sign(msg)).decode().rstrip("=")
    return f"{CODE_PREFIX}:{key_id(key.public_key())}:{sig}"


def sign_producer(label: AigcLabel, key: Ed25519PrivateKey) -> AigcLabel:
    label.validate()
    label.ReservedCode1 = _code(key, _canonical(label, PRODUCER_FIELDS))
    return label


def sign_propagator(label: AigcLabel, key: Ed25519PrivateKey) -> AigcLabel:
    label.validate()
    label.ReservedCode2 = _code(key, _canonical(label, PRODUCER_FIELDS + ("ReservedCode1",) + PROPAGATOR_FIELDS))
    return label


class CodeStatus(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # a code of ours whose signature does not match the fields
    UNKNOWN_KEY = "unknown_key"  # our format, a key we do not hold: cannot vouch for it
    UNVERIFIABLE = "unverifiable"  # some other scheme, or garbage
    ABSENT = "absent"


def _check(code: str, msg: bytes, keys: dict[str, Ed25519PublicKey]) -> CodeStatus:
    if not code:
        return CodeStatus.ABSENT
    parts = code.split(":")
    if len(parts) != 3 or parts[0] != CODE_PREFIX:
        return CodeStatus.UNVERIFIABLE
    pub = keys.get(parts[1])
    if pub is None:
        return CodeStatus.UNKNOWN_KEY
    try:
        sig = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        pub.verify(sig, msg)
    except (InvalidSignature, ValueError):
        return CodeStatus.INVALID
    return CodeStatus.VALID


def verify_codes(label: AigcLabel, keys: dict[str, Ed25519PublicKey]) -> tuple[CodeStatus, CodeStatus]:
    """Status of ReservedCode1 and ReservedCode2 against the trusted public keys (by key id)."""
    c1 = _check(label.ReservedCode1, _canonical(label, PRODUCER_FIELDS), keys)
    c2 = _check(label.ReservedCode2, _canonical(label, PRODUCER_FIELDS + ("ReservedCode1",) + PROPAGATOR_FIELDS), keys)
    return c1, c2
