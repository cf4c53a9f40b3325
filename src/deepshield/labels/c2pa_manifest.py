"""Signed C2PA manifests (c2pa-python 0.38): sign with the project's CA-issued certificate, verify with words.

Write order matters: the AIGC metadata goes into the file first, the manifest is signed last, because
any byte changed after signing breaks the manifest's data hash. A platform that adds its fields makes
a new manifest whose parent ingredient is the producer's file as received (its manifest still valid).
"""

from __future__ import annotations

import enum
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepshield import __version__ as ds_version
from deepshield.labels.errors import LabelError
from deepshield.labels.keys import KeySet, trust_anchors_pem
from deepshield.media.sniff import sniff_file

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
AIGC_ASSERTION = "cn.tc260.aigc"
#: The consent credential of the person a digital human shows: {"credential_id": ..., "credential": token}.
CONSENT_ASSERTION = "org.deepshield.consent"

# Plain words for the validation codes people actually meet.
_PLAIN = {
    "assertion.dataHash.mismatch": "the content was changed after it was signed (data hash does not match)",
    "assertion.bmffHash.mismatch": "the video/audio data was changed after it was signed (BMFF hash mismatch)",
    "assertion.boxesHash.mismatch": "the file's structure was changed after it was signed (box hash mismatch)",
    "assertion.hashedURI.mismatch": "an assertion in the manifest was altered after signing",
    "assertion.missing": "an assertion the claim refers to is missing",
    "claimSignature.mismatch": "the manifest's signature does not match its claim (manifest tampered)",
    "claimSignature.missing": "the manifest has no signature",
    "claimSignature.outsideValidity": "the certificate was not valid at signing time",
    "signingCredential.untrusted": "the signer's certificate does not chain to a trusted CA",
    "signingCredential.invalid": "the signer's certificate is malformed or not allowed for signing",
    "signingCredential.revoked": "the signer's certificate has been revoked",
    "signingCredential.expired": "the signer's certificate has expired",
    "manifest.inaccessible": "the manifest could not be read",
    "ingredient.manifest.mismatch": "an ingredient's manifest does not match the ingredient",
}


class C2paState(enum.StrEnum):
    TRUSTED = "Trusted"
    VALID_UNTRUSTED = "Valid-untrusted"
    INVALID = "Invalid"
    ABSENT = "absent"


@dataclass
class C2paCheck:
    code: str
    explanation: str
    plain: str


@dataclass
class C2paReport:
    state: C2paState
    failures: list[C2paCheck] = field(default_factory=list)
    signer: str | None = None
    digital_source_type: str | None = None
    actions: list[str] = field(default_factory=list)
    aigc: dict[str, Any] | None = None  # the AIGC object the manifest asserts, if any
    consent: dict[str, Any] | None = None  # the consent assertion, if any
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise LabelError("c2pa-python is not installed") from e
    return c2pa


def _mime(path: Path) -> str:
    s = sniff_file(path)
    if s is None:
        raise LabelError("unknown file type: cannot sign a C2PA manifest")
    return {"m4a": "audio/mp4", "mov": "video/quicktime"}.get(s.format, s.mime)


def _context(c2pa: Any, anchors: str | None, sign: bool = False) -> Any:
    conf: dict[str, Any] = {"builder": {"thumbnail": {"enabled": False}}} if sign else {}
    if anchors:
        conf["trust"] = {"trust_anchors": anchors}
        conf["verify"] = {"verify_trust": True}
    return c2pa.Context(settings=c2pa.Settings.from_dict(conf)) if conf else None


def sign_file(
    src: Path,
    dst: Path,
    keys: KeySet,
    producer: str,
    aigc_json: str | None = None,
    parent: Path | None = None,
    consent: dict[str, str] | None = None,
) -> None:
    """Sign `src` into `dst`: created action with trainedAlgorithmicMedia, or, with `parent` (the file as
    received, with its own manifest), an opened action that keeps the producer's manifest as ingredient."""
    c2pa = _c2pa()
    mime = _mime(src)
    if parent is None:
        actions = [
            {
                "action": "c2pa.created",
                "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                "softwareAgent": {"name": producer},
            }
        ]
    else:
        actions = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
            {
                "action": "c2pa.published",
                "softwareAgent": {"name": producer},
                "description": "platform added ContentPropagator/PropagateID to the AIGC label",
            },
        ]
    assertions: list[dict[str, Any]] = [{"label": "c2pa.actions", "data": {"actions": actions}}]
    if aigc_json:
        assertions.append({"label": AIGC_ASSERTION, "data": json.loads(aigc_json)})
    if consent:
        assertions.append({"label": CONSENT_ASSERTION, "data": consent})
    manifest = {
        "claim_generator_info": [{"name": "deepshield", "version": ds_version}],
        "title": src.name,
        "format": mime,
        "assertions": assertions,
    }
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(alg="es256", sign_cert=keys.c2pa_chain_pem, private_key=keys.c2pa_key_pem, ta_url=None)
        )
        ctx = _context(c2pa, None, sign=True)
        builder = c2pa.Builder(manifest, ctx) if ctx is not None else c2pa.Builder(manifest)
        if parent is not None:
            with open(parent, "rb") as pf:
                builder.add_ingredient(
                    {"title": parent.name, "relationship": "parentOf", "label": "parent"}, _mime(parent), pf
                )
        buf = io.BytesIO()
        with open(src, "rb") as s:
            builder.sign(signer, mime, s, buf)
        dst.write_bytes(buf.getvalue())
    except c2pa.C2paError as e:
        raise LabelError(f"C2PA signing failed: {e}") from None


def _plain(code: str, explanation: str) -> str:
    return _PLAIN.get(code, explanation or code)


def verify_file(path: Path, anchors: str | None = None, use_project_ca: bool = True) -> C2paReport:
    """Trusted (chains to a configured anchor) / Valid-untrusted / Invalid (with the failing checks) / absent."""
    c2pa = _c2pa()
    if anchors is None and use_project_ca:
        anchors = trust_anchors_pem()
    try:
        mime = _mime(path)
        ctx = _context(c2pa, anchors)
        with open(path, "rb") as f:
            reader = c2pa.Reader(mime, f, None, ctx) if ctx is not None else c2pa.Reader(mime, f)
            data = json.loads(reader.json())
    except LabelError:
        return C2paReport(C2paState.ABSENT, summary="no C2PA manifest (file type not recognised)")
    except c2pa.C2paError as e:
        msg = str(e)
        if "ManifestNotFound" in type(e).__name__ or "ManifestNotFound" in msg or "no JUMBF" in msg:
            return C2paReport(C2paState.ABSENT, summary="no C2PA manifest")
        return C2paReport(
            C2paState.INVALID,
            [C2paCheck("manifest.unreadable", msg, "the manifest is damaged and cannot be read")],
            summary=f"Invalid: the manifest is damaged and cannot be read ({msg[:120]})",
        )
    state_raw = data.get("validation_state")
    results = (data.get("validation_results") or {}).get("activeManifest") or {}
    failures = [
        C2paCheck(f.get("code", ""), f.get("explanation", ""), _plain(f.get("code", ""), f.get("explanation", "")))
        for f in results.get("failure", [])
    ]
    active = (data.get("manifests") or {}).get(data.get("active_manifest") or "", {})
    rep = C2paReport(C2paState.INVALID)
    si = active.get("signature_info") or {}
    rep.signer = si.get("common_name") or si.get("issuer")
    for a in active.get("assertions", []):
        if a.get("label", "").startswith("c2pa.actions"):
            for act in a.get("data", {}).get("actions", []):
                rep.actions.append(act.get("action", ""))
                rep.digital_source_type = rep.digital_source_type or act.get("digitalSourceType")
        elif a.get("label") == AIGC_ASSERTION:
            rep.aigc = a.get("data")
        elif a.get("label") == CONSENT_ASSERTION:
            rep.consent = a.get("data")
    if state_raw == "Trusted":
        rep.state = C2paState.TRUSTED
        rep.summary = f"Trusted: signed by {rep.signer}"
    elif state_raw == "Valid":
        rep.state = C2paState.VALID_UNTRUSTED
        rep.summary = f"Valid-untrusted: intact, but {rep.signer} is not a trusted signer"
        rep.failures = [f for f in failures if f.code != "signingCredential.untrusted"]
    else:
        rep.state = C2paState.INVALID
        real = [f for f in failures if f.code != "signingCredential.untrusted"] or failures
        rep.failures = real
        rep.summary = "Invalid: " + "; ".join(f.plain for f in real) if real else "Invalid"
    return rep
