"""Consent flows: a provider opens a request (scope + source media), the person records the consent video on
the capture page (a liveness session plus a sentence read aloud), the checks decide, a credential is issued,
listed and revocable by the provider and by the person (credential id + PIN)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from deepshield.cases import audit
from deepshield.config import Settings
from deepshield.consent.checks import ConsentDecision, SourceTemplates, evaluate_consent
from deepshield.consent.models import ConsentCredential, ConsentRequest
from deepshield.consent.policy import ConsentPolicy
from deepshield.consent.sentence import consent_sentence
from deepshield.consent.sources import SourceFile, source_templates
from deepshield.errors import DeepshieldError
from deepshield.faces import FaceAnalyzer
from deepshield.labels.consent import (
    ConsentClaims,
    ConsentState,
    CredentialCheck,
    check_with_revocation,
    sign_credential,
)
from deepshield.labels.keys import load_keys, trusted_aigc_keys
from deepshield.liveness.decision import Decision
from deepshield.liveness.script import ChallengeScript
from deepshield.liveness.service import LivenessService
from deepshield.store.timeutil import as_utc, utcnow

CAPTURE_TTL = dt.timedelta(days=7)
PIN_DIGITS = 10
PIN_MAX_FAILURES = 10


class ConsentNotFound(DeepshieldError):
    code = "not_found"
    http_status = 404


class ConsentConflict(DeepshieldError):
    code = "conflict"
    http_status = 409


class InvalidConsentToken(DeepshieldError):
    code = "invalid_token"
    http_status = 403


class InvalidConsentRequest(DeepshieldError):
    """Input the schema admits but the rules do not (a blank provider, a rejection without a reason): 422."""

    code = "invalid_request"
    http_status = 422


class WrongPin(DeepshieldError):
    code = "wrong_pin"
    http_status = 403


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _pin_hash(credential_id: str, pin: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.scrypt(f"{credential_id}:{pin}".encode(), salt=salt.encode(), n=2**14, r=8, p=1).hex()
    return f"scrypt${salt}${digest}"


def _pin_ok(credential_id: str, pin: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 3:
        return False
    return hmac.compare_digest(_pin_hash(credential_id, pin.strip(), parts[1]), stored)


def template_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Issued:
    credential: ConsentCredential
    token: str


@dataclass
class Received:
    """What the capture page gets back: no outcome (nothing to probe the checks with), only how to withdraw."""

    request_id: str
    pin: str  # shown once: with the request id it withdraws the consent


class ConsentService:
    """One per process; the face analyser is shared and used under a lock (MediaPipe graphs are not reentrant)."""

    def __init__(
        self, settings: Settings, liveness: LivenessService | None = None, policy: ConsentPolicy | None = None
    ) -> None:
        self.settings = settings
        self._liveness = liveness
        self.policy = policy or ConsentPolicy()
        self._lock = threading.Lock()
        self._faces: FaceAnalyzer | None = None

    def close(self) -> None:
        with self._lock:
            if self._faces is not None:
                self._faces.close()
                self._faces = None

    @property
    def liveness(self) -> LivenessService:
        if self._liveness is None:
            self._liveness = LivenessService(self.settings)
        return self._liveness

    def _analyzer(self) -> FaceAnalyzer:
        if self._faces is None:
            self._faces = FaceAnalyzer(max_faces=4)
        return self._faces

    # ------------------------------------------------------------------------------------------- requests
    def create_request(
        self,
        db: Session,
        provider: str,
        purpose: str,
        valid_days: int,
        sources: list[SourceFile],
        created_by: str | None = None,
    ) -> tuple[ConsentRequest, str]:
        """A request and its capture token (the link sent to the person). The source media's templates are
        computed now, so a source without a face or a voice is refused before anyone is asked to record."""
        provider, purpose = provider.strip(), purpose.strip()
        if not provider or not purpose:
            raise InvalidConsentRequest("provider and purpose must not be blank")
        if not 1 <= valid_days <= self.policy.max_validity_days:
            raise InvalidConsentRequest(f"valid_days must be between 1 and {self.policy.max_validity_days}")
        with self._lock:
            tpl = source_templates(sources, self._analyzer())
        token = secrets.token_urlsafe(24)
        now = utcnow()
        rec = ConsentRequest(
            id=secrets.token_hex(12),
            created_at=now,
            capture_expires_at=now + CAPTURE_TTL,
            created_by=created_by,
            provider=provider[:200],
            purpose=purpose[:2000],
            consent_expires_at=now + dt.timedelta(days=valid_days),
            status="open",
            token_hash=_hash(token),
            source_json=json.dumps([{"sha256": s.sha256, "name": s.name, "kind": s.kind} for s in sources]),
            face_template=tpl.face.astype("<f4").tobytes(),
            voice_template=tpl.voice.astype("<f4").tobytes(),
            face_model="dlib-resnet-v1",
            voice_model="resemblyzer-ge2e",
            sentence=consent_sentence(provider),
        )
        db.add(rec)
        db.flush()
        return rec, token

    def get(self, db: Session, request_id: str) -> ConsentRequest:
        rec = db.get(ConsentRequest, request_id)
        if rec is None:
            raise ConsentNotFound(f"no consent request {request_id}")
        return rec

    def _usable(self, db: Session, request_id: str, token: str | None) -> ConsentRequest:
        rec = self.get(db, request_id)
        if not token or not hmac.compare_digest(_hash(token), rec.token_hash):
            raise InvalidConsentToken("invalid capture token for this consent request")
        if rec.status != "open":
            raise ConsentConflict(f"this consent request is {rec.status}")
        if as_utc(rec.capture_expires_at) <= utcnow():
            rec.status = "expired"
            raise ConsentConflict("this consent request has expired; ask the provider for a new link")
        return rec

    @staticmethod
    def templates(rec: ConsentRequest) -> SourceTemplates:
        face = np.frombuffer(rec.face_template or b"", dtype="<f4").reshape(-1, 128)
        voice = np.frombuffer(rec.voice_template or b"", dtype="<f4")
        return SourceTemplates(face, voice, tuple(s["sha256"] for s in json.loads(rec.source_json)))

    def start_capture(
        self, db: Session, request_id: str, token: str | None, device: str | None = None
    ) -> tuple[str, str, ChallengeScript, str]:
        """Open the liveness session of this consent (the source face as its reference); returns the liveness
        session id, its token, the script, and the sentence to read aloud."""
        rec = self._usable(db, request_id, token)
        ref = self.templates(rec).face.astype(np.float64).mean(axis=0).astype(np.float32)
        live, live_token, script = self.liveness.create_session(
            db, None, subject=f"consent:{rec.id}", device=device, created_by=rec.created_by, reference=ref
        )
        rec.liveness_session_id = live.id
        db.flush()
        return live.id, live_token, script, rec.sentence

    def submit(
        self, db: Session, request_id: str, token: str | None, liveness_token: str | None, video: Path, sha256: str
    ) -> tuple[ConsentDecision, Received]:
        """The consent video, once: liveness decides on its script, then the consent checks; a credential is
        issued when every check passed. The person gets a PIN to withdraw, whatever the outcome."""
        rec = self._usable(db, request_id, token)
        if not rec.liveness_session_id:
            raise ConsentConflict("start the capture first (the liveness script is made then)")
        live = self.liveness.claim_for_upload(db, rec.liveness_session_id, liveness_token)
        rec.status = "processing"
        db.flush()
        decision = self.liveness.verify(db, live, video, sha256)
        out = self.decide(db, rec, video, sha256, decision)
        received = Received(rec.id, self.new_pin(db, rec))
        if out.outcome == "issued":
            self.issue(db, rec)
        return out, received

    def new_pin(self, db: Session, rec: ConsentRequest) -> str:
        pin = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
        rec.pin_hash, rec.pin_failures = _pin_hash(rec.id, pin), 0
        db.flush()
        return pin

    def decide(self, db: Session, rec: ConsentRequest, video: Path, sha256: str, liveness: Decision) -> ConsentDecision:
        with self._lock:
            out = evaluate_consent(
                video, self.templates(rec), rec.sentence, liveness, self._analyzer(), self.policy, sha256
            )
        rec.video_sha256 = sha256
        rec.outcome, rec.status, rec.decided_at = out.outcome, out.outcome, utcnow()
        rec.reasons_json = json.dumps(out.reasons)
        evidence = out.to_dict()
        if out.face is not None:
            evidence["face_template"] = out.face.vectors.round(5).tolist()
        if out.voice is not None:
            evidence["voice_template"] = out.voice.vector.round(6).tolist()
        rec.evidence_json = json.dumps(evidence)
        db.flush()
        return out

    # ------------------------------------------------------------------------------------------- credentials
    def issue(self, db: Session, rec: ConsentRequest) -> Issued:
        """Sign and store the credential of a request whose checks passed (or whose review was approved)."""
        if rec.status != "issued" or rec.withdrawn_at is not None:
            raise ConsentConflict(
                f"no credential for a request that is {'withdrawn' if rec.withdrawn_at else rec.status}"
            )
        if db.scalar(select(ConsentCredential).where(ConsentCredential.request_id == rec.id)) is not None:
            raise ConsentConflict("this request's credential was already issued")
        ev = json.loads(rec.evidence_json or "{}")
        face = np.asarray(ev.get("face_template", []), dtype="<f4").tobytes()
        voice = np.asarray(ev.get("voice_template", []), dtype="<f4").tobytes()
        now = utcnow()
        cid = secrets.token_hex(8)
        claims = ConsentClaims(
            id=cid,
            provider=rec.provider,
            purpose=rec.purpose,
            issued_at=int(now.timestamp()),
            expires_at=int(as_utc(rec.consent_expires_at).timestamp()),
            face_template_sha256=template_sha256(face),
            voice_template_sha256=template_sha256(voice),
            source_sha256=[s["sha256"] for s in json.loads(rec.source_json)],
            face_model=rec.face_model or "",
            voice_model=rec.voice_model or "",
        )
        token = sign_credential(claims, load_keys(self.settings.home).aigc_key)
        cred = ConsentCredential(
            id=cid,
            request_id=rec.id,
            created_by=rec.created_by,
            provider=rec.provider,
            token=token,
            issued_at=now,
            expires_at=as_utc(rec.consent_expires_at),
            face_template_sha256=claims.face_template_sha256,
            voice_template_sha256=claims.voice_template_sha256,
        )
        db.add(cred)
        db.flush()
        return Issued(cred, token)

    def review_queue(self, db: Session, limit: int = 100) -> list[ConsentRequest]:
        """Requests whose checks asked for a person (none failed, one uncertain), oldest decision first; a
        withdrawn one is left out (it never issues)."""
        q = (
            select(ConsentRequest)
            .where(ConsentRequest.status == "review", ConsentRequest.withdrawn_at.is_(None))
            .order_by(ConsentRequest.decided_at, ConsentRequest.id)
            .limit(limit)
        )
        return list(db.scalars(q))

    def resolve_review(
        self, db: Session, request_id: str, approve: bool, reviewer: str, reason: str | None = None
    ) -> Issued | None:
        """A reviewer's answer to a request in review: approved issues the credential, rejected fails it. With
        `reason` (the console asks for one on a rejection) it joins the reasons the provider reads. Audited."""
        rec = self.get(db, request_id)
        if rec.status != "review" or rec.withdrawn_at is not None:
            raise ConsentConflict(f"this request is {rec.status}, not waiting for review")
        why = (reason or "").strip()[:2000]
        if reason is not None and not approve and not why:
            raise InvalidConsentRequest("give the reason for the rejection: the provider reads it")
        rec.status = rec.outcome = "issued" if approve else "failed"
        rec.reviewed_by = reviewer
        if not approve:
            rec.reasons_json = json.dumps(
                [*json.loads(rec.reasons_json or "[]"), f"review: rejected{': ' + why if why else ''}"]
            )
        db.flush()
        issued = self.issue(db, rec) if approve else None
        audit.record(
            db,
            actor=reviewer,
            actor_kind="human",
            action="consent_approved" if approve else "consent_rejected",
            reason=why or ("credential issued" if approve else "rejected in review"),
            evidence=[rec.video_sha256] if rec.video_sha256 else [],
            details={"consent_request": rec.id, "credential_id": issued.credential.id if issued else None},
        )
        return issued

    @staticmethod
    def public_request(rec: ConsentRequest, credential_id: str | None = None) -> dict[str, Any]:
        """What the provider sees: status, reasons and each check's evidence (never the biometric templates)."""
        ev = json.loads(rec.evidence_json) if rec.evidence_json else {}
        return {
            "request_id": rec.id,
            "status": rec.status,
            "provider": rec.provider,
            "purpose": rec.purpose,
            "created_at": as_utc(rec.created_at).isoformat(),
            "capture_expires_at": as_utc(rec.capture_expires_at).isoformat(),
            "consent_expires_at": as_utc(rec.consent_expires_at).isoformat(),
            "sources": json.loads(rec.source_json),
            "reasons": json.loads(rec.reasons_json) if rec.reasons_json else [],
            "checks": ev.get("checks", []),
            "policy": ev.get("policy", {}),
            "decided_at": as_utc(rec.decided_at).isoformat() if rec.decided_at else None,
            "withdrawn_at": as_utc(rec.withdrawn_at).isoformat() if rec.withdrawn_at else None,
            "credential_id": credential_id,
        }

    def credential_of(self, db: Session, request_id: str) -> ConsentCredential | None:
        return db.scalar(select(ConsentCredential).where(ConsentCredential.request_id == request_id))

    def credential(self, db: Session, credential_id: str) -> ConsentCredential:
        cred = db.get(ConsentCredential, credential_id)
        if cred is None:
            raise ConsentNotFound(f"no consent credential {credential_id}")
        return cred

    def credential_rows(self, db: Session, limit: int = 200) -> list[dict[str, Any]]:
        """Every credential, newest first, with its state and the scope of the request it came from (the
        console's list)."""
        rows = db.execute(
            select(ConsentCredential, ConsentRequest.purpose)
            .join(ConsentRequest, ConsentRequest.id == ConsentCredential.request_id)
            .order_by(ConsentCredential.issued_at.desc())
            .limit(limit)
        )
        return [
            {**self.public_credential(c), "purpose": purpose, "revoke_reason": c.revoke_reason} for c, purpose in rows
        ]

    def list_credentials(self, db: Session, created_by: str | None = None, limit: int = 100) -> list[ConsentCredential]:
        q = select(ConsentCredential).order_by(ConsentCredential.issued_at.desc()).limit(limit)
        if created_by is not None:
            q = q.where(ConsentCredential.created_by == created_by)
        return list(db.scalars(q))

    def revoke_by_provider(
        self, db: Session, credential_id: str, principal: str | None, admin: bool = False, reason: str = ""
    ) -> ConsentCredential:
        """The provider revokes its own credential; an administrator (the CLI's operator, a console lead) any
        one, recorded as the operator's revocation. Audited."""
        cred = self.credential(db, credential_id)
        if not admin and cred.created_by != principal:
            raise ConsentNotFound(f"no consent credential {credential_id}")  # another provider's: not even its id
        by = "operator" if admin else "provider"
        if cred.revoked_at is not None:
            return cred  # the first revocation stands
        self._revoke(cred, by, reason)
        audit.record(
            db,
            actor=principal or by,
            actor_kind="human" if admin else "automated",
            action="consent_revoked",
            reason=reason or f"revoked by the {by}",
            details={"consent_request": cred.request_id, "credential_id": cred.id},
        )
        db.flush()
        return cred

    def withdraw(self, db: Session, request_id: str, pin: str, reason: str = "") -> ConsentRequest:
        """The person withdraws consent with the request id and the PIN shown when the video was received: the
        credential, if issued, is revoked; a request still in review never issues. Wrong PINs are counted; at the
        limit only the provider (or an administrator) can revoke, and the answer never says whether the id exists."""
        rec = db.get(ConsentRequest, request_id)
        ok = rec is not None and rec.pin_hash is not None and rec.pin_failures < PIN_MAX_FAILURES
        if rec is None or not ok or not _pin_ok(rec.id, pin, rec.pin_hash or ""):
            if rec is not None and rec.pin_failures < PIN_MAX_FAILURES:
                rec.pin_failures += 1
                db.flush()
            raise WrongPin("unknown reference or wrong PIN")
        first = rec.withdrawn_at is None
        rec.withdrawn_at = rec.withdrawn_at or utcnow()
        cred = db.scalar(select(ConsentCredential).where(ConsentCredential.request_id == rec.id))
        if cred is not None:
            self._revoke(cred, "person", reason)
        if first:  # the person's own act, in the trail beside the provider's and operators' revocations
            audit.record(
                db,
                actor="the person (reference and PIN)",
                actor_kind="human",
                action="consent_withdrawn",
                reason=reason[:500] or "withdrawn by the person",
                details={"consent_request": rec.id, "credential_id": cred.id if cred is not None else None},
            )
        db.flush()
        return rec

    @staticmethod
    def _revoke(cred: ConsentCredential, by: str, reason: str) -> ConsentCredential:
        if cred.revoked_at is None:
            cred.revoked_at, cred.revoked_by, cred.revoke_reason = utcnow(), by, reason[:500] or None
        return cred

    def check_token(self, token: str) -> CredentialCheck:
        """What any verifier gets: offline signature and expiry, then revocation from the registered store."""
        return check_with_revocation(token, trusted_aigc_keys(self.settings.home))

    @staticmethod
    def public_credential(cred: ConsentCredential) -> dict[str, Any]:
        now = utcnow()
        state = (
            ConsentState.REVOKED
            if cred.revoked_at is not None
            else ConsentState.EXPIRED
            if as_utc(cred.expires_at) <= now
            else ConsentState.VALID
        )
        return {
            "credential_id": cred.id,
            "request_id": cred.request_id,
            "provider": cred.provider,
            "state": state.value,
            "issued_at": as_utc(cred.issued_at).isoformat(),
            "expires_at": as_utc(cred.expires_at).isoformat(),
            "revoked_at": as_utc(cred.revoked_at).isoformat() if cred.revoked_at else None,
            "revoked_by": cred.revoked_by,
            "credential": cred.token,
        }
