"""Liveness sessions: create (script + ID photo), receive the video once, decide, remember, lock out."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from deepshield.config import Settings
from deepshield.errors import DeepshieldError, MediaError
from deepshield.faces import FaceAnalyzer
from deepshield.liveness.analysis import SessionAnalyzer, enrich_track
from deepshield.liveness.decision import Decision, verify_track
from deepshield.liveness.embedding import FaceEmbedder, get_embedder
from deepshield.liveness.models import LivenessFrameHash, LivenessLockout, LivenessSession
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.replay import ReplayHit, ReplayIndex, best_match
from deepshield.liveness.script import ChallengeScript, generate_script
from deepshield.liveness.signals import SignalContext
from deepshield.media import MediaKind, open_media
from deepshield.store.timeutil import utcnow

if TYPE_CHECKING:
    from deepshield.detect import Detector


class LivenessSettings(BaseSettings):
    """Environment: DEEPSHIELD_LIVENESS_TTL_S, _MAX_FAILURES, _FAILURE_WINDOW_S, _LOCKOUT_S."""

    model_config = SettingsConfigDict(env_prefix="DEEPSHIELD_LIVENESS_", extra="ignore")
    ttl_s: int = 180  # a session (script) is valid this long after creation; capped at 180
    max_failures: int = 5
    failure_window_s: int = 180
    lockout_s: int = 1800


class SessionNotFound(DeepshieldError):
    code = "not_found"
    http_status = 404


class SessionExpired(DeepshieldError):
    code = "session_expired"
    http_status = 410


class SessionUsed(DeepshieldError):
    code = "session_used"
    http_status = 409


class InvalidToken(DeepshieldError):
    code = "invalid_token"
    http_status = 403


class LockedOut(DeepshieldError):
    code = "locked_out"
    http_status = 429


class NoFaceInIdPhoto(MediaError):
    code = "no_face_in_id_photo"


def _aware(t: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were written as UTC.
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _model_name(name: object) -> str | None:
    """A model's name as `enrich_track` records it (None when there was no model)."""
    return None if name is None else str(name)


def embed_id_photo(path: Path, analyzer: FaceAnalyzer, embedder: FaceEmbedder | None) -> NDArray[np.float32] | None:
    """Embedding of the largest face in the ID photo; None when no embedder is installed."""
    m = open_media(path)
    try:
        if m.info.kind != MediaKind.IMAGE:
            raise MediaError("the ID document photo must be an image")
        rgb = next(iter(m.frames())).rgb
    finally:
        m.close()
    faces = analyzer.analyze(rgb)
    if not faces:
        raise NoFaceInIdPhoto("no face found in the ID document photo")
    return embedder.embed(rgb, faces[0]) if embedder is not None else None


class DbReplayIndex(ReplayIndex):
    """Frame hashes of every decided session, in the database (a linear scan: fine for tens of thousands)."""

    def __init__(self, db: Session) -> None:
        self.db = db

    def seen_sha256(self, sha256: str, exclude_session: str) -> str | None:
        return self.db.scalar(
            select(LivenessSession.id)
            .where(LivenessSession.video_sha256 == sha256, LivenessSession.id != exclude_session)
            .limit(1)
        )

    def best_match(self, hashes: list[int], max_distance: int, exclude_session: str) -> ReplayHit | None:
        stored: dict[str, list[int]] = {}
        for sid, h in self.db.execute(select(LivenessFrameHash.session_id, LivenessFrameHash.phash)):
            stored.setdefault(sid, []).append(int(h, 16))
        return best_match(stored.items(), hashes, max_distance, exclude_session)

    def add(self, session_id: str, sha256: str | None, hashes: list[int]) -> None:
        for i, h in enumerate(hashes):
            self.db.add(LivenessFrameHash(session_id=session_id, t=float(i), phash=f"{h:016x}"))


class LivenessService:
    """One per process: holds the MediaPipe graphs (analyses are serialised: they use every core anyway)."""

    def __init__(
        self, settings: Settings, config: LivenessSettings | None = None, policy: LivenessPolicy | None = None
    ) -> None:
        self.settings = settings
        self.config = config or LivenessSettings()
        self.policy = policy or LivenessPolicy()
        self._lock = threading.Lock()
        self._analyzer: SessionAnalyzer | None = None
        self._faces: FaceAnalyzer | None = None
        self._detector: Detector | None = None
        self._detector_loaded = False

    def close(self) -> None:
        """Release the MediaPipe graphs, after an analysis in progress (it holds the lock)."""
        with self._lock:
            for graph in (self._analyzer, self._faces):
                if graph is not None:
                    graph.close()
            self._analyzer, self._faces = None, None

    @property
    def ttl(self) -> dt.timedelta:
        return dt.timedelta(seconds=min(180, max(10, self.config.ttl_s)))

    def _lock_keys(self, subject: str | None, device: str | None) -> list[str]:
        return [k for k in (f"subject:{subject}" if subject else None, f"device:{device}" if device else None) if k]

    def check_lockout(self, db: Session, subject: str | None, device: str | None) -> None:
        keys = self._lock_keys(subject, device)
        if not keys:
            return
        now = utcnow()
        until = db.scalar(select(func.max(LivenessLockout.until)).where(LivenessLockout.key.in_(keys)))
        if until is not None and _aware(until) > now:
            mins = int((_aware(until) - now).total_seconds() // 60) + 1
            raise LockedOut(f"too many failed liveness checks: try again in {mins} minute(s)")

    def create_session(
        self,
        db: Session,
        id_photo: Path,
        subject: str | None = None,
        device: str | None = None,
        created_by: str | None = None,
    ) -> tuple[LivenessSession, str, ChallengeScript]:
        self.check_lockout(db, subject, device)
        embedder = get_embedder()
        with self._lock:
            if self._faces is None:
                self._faces = FaceAnalyzer(max_faces=4)
            emb = embed_id_photo(id_photo, self._faces, embedder)
        script = generate_script()
        token = secrets.token_urlsafe(24)
        now = utcnow()
        rec = LivenessSession(
            id=secrets.token_hex(12),
            created_at=now,
            expires_at=now + self.ttl,
            status="open",
            subject_ref=subject,
            device_ref=device,
            created_by=created_by,
            token_hash=_hash_token(token),
            script_json=json.dumps(script.to_dict()),
            id_photo_path=str(id_photo),
            id_embedding=emb.astype(np.float32).tobytes() if emb is not None else None,
            embedder=embedder.info.name if embedder is not None and emb is not None else None,
        )
        db.add(rec)
        db.flush()
        return rec, token, script

    def get(self, db: Session, session_id: str) -> LivenessSession:
        rec = db.get(LivenessSession, session_id)
        if rec is None:
            raise SessionNotFound("no such liveness session")
        if rec.status == "open" and _aware(rec.expires_at) <= utcnow():
            rec.status = "expired"
        return rec

    def check_token(self, rec: LivenessSession, token: str | None) -> None:
        if not token or not secrets.compare_digest(rec.token_hash, _hash_token(token)):
            raise InvalidToken("invalid session token")

    def claim_for_upload(self, db: Session, session_id: str, token: str | None) -> LivenessSession:
        """Single use: the first valid upload moves the session to `processing`; any later one is refused."""
        rec = self.get(db, session_id)
        self.check_token(rec, token)
        if rec.status == "expired":
            raise SessionExpired("this liveness session has expired: start a new one")
        if rec.status != "open":
            raise SessionUsed("this liveness session already has its video")
        rec.status = "processing"
        db.flush()
        return rec

    def release_claim(self, db: Session, session_id: str) -> None:
        """Undo `claim_for_upload` after an upload that was not a readable video."""
        rec = db.get(LivenessSession, session_id)
        if rec is not None and rec.status == "processing":
            rec.status = "open" if _aware(rec.expires_at) > utcnow() else "expired"

    def _detector_once(self) -> Detector | None:
        if not self._detector_loaded:
            from deepshield.detect import get_detector

            self._detector = get_detector("sbi")
            self._detector_loaded = True
        return self._detector

    def verify(self, db: Session, rec: LivenessSession, video: Path, sha256: str) -> Decision:
        script = ChallengeScript.from_dict(json.loads(rec.script_json))
        with self._lock:
            if self._analyzer is None:
                self._analyzer = SessionAnalyzer()
            track = self._analyzer.analyze_file(video)
            enrich_track(track, get_embedder(), self._detector_once())
        track.drop_pixels()
        track.extra["sha256"] = sha256
        emb = np.frombuffer(rec.id_embedding, dtype=np.float32) if rec.id_embedding else None
        index = DbReplayIndex(db)
        ctx = SignalContext(track, script, session_id=rec.id, policy=self.policy, id_embedding=emb, replay_index=index)
        decision = verify_track(ctx)
        index.add(rec.id, sha256, [k.phash for k in track.keyframes])
        now = utcnow()
        rec.video_path, rec.video_sha256 = str(video), sha256
        rec.outcome, rec.status, rec.decided_at = decision.outcome, "decided", now
        rec.reasons_json = json.dumps(decision.reasons)
        result = decision.to_dict()
        result["models"] = {k: _model_name(track.extra.get(k)) for k in ("embedder", "detector")}
        rec.result_json = json.dumps(result)
        db.flush()
        if decision.outcome == "fail":
            self._maybe_lock(db, rec, now)
        return decision

    def _maybe_lock(self, db: Session, rec: LivenessSession, now: dt.datetime) -> None:
        since = now - dt.timedelta(seconds=self.config.failure_window_s)
        for col, ref, key in (
            (LivenessSession.subject_ref, rec.subject_ref, "subject"),
            (LivenessSession.device_ref, rec.device_ref, "device"),
        ):
            if not ref:
                continue
            n = (
                db.scalar(
                    select(func.count())
                    .select_from(LivenessSession)
                    .where(col == ref, LivenessSession.outcome == "fail", LivenessSession.decided_at >= since)
                )
                or 0
            )
            if n >= self.config.max_failures:
                db.add(LivenessLockout(key=f"{key}:{ref}", until=now + dt.timedelta(seconds=self.config.lockout_s)))

    @staticmethod
    def public_view(rec: LivenessSession, detail: bool = False) -> dict[str, Any]:
        """What the relying party's backend sees. Signal scores only with `detail` (for audit and review). The
        detail is the stored decision read back as JSON (`Any` until the signals' evidence is typed)."""
        out: dict[str, Any] = {
            "session_id": rec.id,
            "status": rec.status,
            "created_at": _aware(rec.created_at).isoformat(),
            "expires_at": _aware(rec.expires_at).isoformat(),
            "subject": rec.subject_ref,
            "device": rec.device_ref,
            "decision": rec.outcome,
            "reasons": json.loads(rec.reasons_json) if rec.reasons_json else [],
            "decided_at": _aware(rec.decided_at).isoformat() if rec.decided_at else None,
        }
        if detail and rec.result_json:
            r = json.loads(rec.result_json)
            out.update(
                score=r.get("score"),
                signals=r.get("signals"),
                policy=r.get("policy"),
                models=r.get("models"),
                script=json.loads(rec.script_json),
            )
        return out
