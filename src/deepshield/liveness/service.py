"""Liveness sessions: create (script + ID photo), receive the video once, decide, remember, lock out."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from deepshield.config import Settings
from deepshield.errors import DeepshieldError, MediaError
from deepshield.faces import FaceAnalyzer
from deepshield.liveness.analysis import SessionAnalyzer, enrich_track
from deepshield.liveness.decision import Decision, verify_track
from deepshield.liveness.embedding import FaceEmbedder, get_embedder
from deepshield.liveness.models import (
    LivenessFaceHash,
    LivenessFrameHash,
    LivenessLockout,
    LivenessSession,
    LivenessTrajectory,
)
from deepshield.liveness.policy import LivenessPolicy
from deepshield.liveness.replay import ReplayHit, ReplayIndex, best_face_match, best_match
from deepshield.liveness.reveal import CaptureState, StartView, StepReveal, reveal_step, start_view
from deepshield.liveness.script import ChallengeScript, generate_script
from deepshield.liveness.signals import SignalContext
from deepshield.liveness.trajectory import RATE_HZ, TrajectoryHit, from_bytes, match_trajectory, to_bytes, trajectory_of
from deepshield.liveness.warp import get_warp_detector
from deepshield.media import MediaKind, open_media
from deepshield.store.timeutil import utcnow

if TYPE_CHECKING:
    from deepshield.detect import Detector


class LivenessSettings(BaseSettings):
    """Environment: DEEPSHIELD_LIVENESS_TTL_S, _MAX_FAILURES, _FAILURE_WINDOW_S, _LOCKOUT_S, _MAX_OPENS,
    _OPEN_WINDOW_S."""

    model_config = SettingsConfigDict(env_prefix="DEEPSHIELD_LIVENESS_", extra="ignore")
    ttl_s: int = 180  # a session (script) is valid this long after creation; capped at 180
    max_failures: int = 5
    failure_window_s: int = 180
    lockout_s: int = 1800
    max_opens: int = 5  # sessions opened per subject and per device (client) within open_window_s
    open_window_s: int = 600


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


class NotStarted(DeepshieldError):
    code = "not_started"
    http_status = 409


class TooManySessions(DeepshieldError):
    code = "rate_limited"
    http_status = 429


class NoFaceInIdPhoto(MediaError):
    code = "no_face_in_id_photo"


#: Sessions whose script can no longer be performed: the backend may read it whole.
CLOSED = ("decided", "expired", "abandoned")


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

    def best_face_match(self, variants: list[list[str]], max_distance: int, exclude_session: str) -> ReplayHit | None:
        stored: dict[str, list[str]] = {}
        for sid, f in self.db.execute(select(LivenessFaceHash.session_id, LivenessFaceHash.pdq)):
            stored.setdefault(sid, []).append(f)
        return best_face_match(stored.items(), variants, max_distance, exclude_session)

    def best_motion_match(
        self, trajectory: NDArray[np.float16] | None, min_ncc: float, exclude_session: str
    ) -> TrajectoryHit | None:
        rows = self.db.execute(
            select(LivenessTrajectory.session_id, LivenessTrajectory.samples).where(
                LivenessTrajectory.rate_hz == RATE_HZ
            )
        )
        return match_trajectory(trajectory, ((sid, from_bytes(b)) for sid, b in rows), min_ncc, exclude_session)

    def add(
        self,
        session_id: str,
        sha256: str | None,
        hashes: list[int],
        faces: Sequence[str | None] = (),
        trajectory: NDArray[np.float16] | None = None,
    ) -> None:
        if trajectory is not None:
            self.db.add(LivenessTrajectory(session_id=session_id, rate_hz=RATE_HZ, samples=to_bytes(trajectory)))
        for i, h in enumerate(hashes):
            self.db.add(LivenessFrameHash(session_id=session_id, t=float(i), phash=f"{h:016x}"))
        self.db.add_all(
            LivenessFaceHash(session_id=session_id, t=float(i), pdq=f) for i, f in enumerate(faces) if f is not None
        )


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

    def admit(self, db: Session, subject: str | None, device: str | None) -> None:
        """May a session be opened for this subject and device? Started sessions of theirs without a video are
        abandoned first (a new one replaces them), so the lockout counts them; refusals keep what they stored."""
        self._abandon_started(db, subject, device)
        try:
            self.check_lockout(db, subject, device)
            self.check_rate(db, subject, device)
        except DeepshieldError:
            db.commit()  # the abandonments and a new lockout outlive this refused request
            raise

    def check_lockout(self, db: Session, subject: str | None, device: str | None) -> None:
        """Refuse while the subject or device is locked out. Sessions abandoned or expired without a video
        count as failures too (else opening sessions until an easy script comes costs nothing), and they end
        silently, so the lockout they earn is set here, when the next session is asked for."""
        keys = self._lock_keys(subject, device)
        if not keys:
            return
        now = utcnow()

        def locked_until() -> dt.datetime | None:
            until = db.scalar(select(func.max(LivenessLockout.until)).where(LivenessLockout.key.in_(keys)))
            return _aware(until) if until is not None and _aware(until) > now else None

        until = locked_until()
        if until is None:
            self._maybe_lock(db, subject, device, now)
            db.flush()
            until = locked_until()
        if until is not None:
            secs = int((until - now).total_seconds()) + 1
            err = LockedOut(f"too many failed liveness checks: try again in {secs // 60 + 1} minute(s)")
            err.retry_after_s = secs
            raise err

    def check_rate(self, db: Session, subject: str | None, device: str | None) -> None:
        """At most `max_opens` sessions per subject and per device in `open_window_s` (counted in the database,
        so across processes): opening sessions is how scripts would be shopped for."""
        now = utcnow()
        since = now - dt.timedelta(seconds=self.config.open_window_s)
        for col, ref, what in (
            (LivenessSession.subject_ref, subject, "subject"),
            (LivenessSession.device_ref, device, "device"),
        ):
            if not ref:
                continue
            times = db.scalars(
                select(LivenessSession.created_at)
                .where(col == ref, LivenessSession.created_at >= since)
                .order_by(LivenessSession.created_at.desc())
                .limit(self.config.max_opens)
            ).all()
            if len(times) >= self.config.max_opens:
                wait = int((_aware(times[-1]) - since).total_seconds()) + 1
                err = TooManySessions(
                    f"too many liveness sessions opened for this {what}: at most {self.config.max_opens} in "
                    f"{self.config.open_window_s} s; try again in {wait} s"
                )
                err.retry_after_s = wait
                raise err

    def create_session(
        self,
        db: Session,
        id_photo: Path | None,
        subject: str | None = None,
        device: str | None = None,
        created_by: str | None = None,
        reference: NDArray[np.float32] | None = None,
    ) -> tuple[LivenessSession, str, ChallengeScript]:
        """`reference`: an embedding to match instead of an ID photo's (the consent domain's source media face)."""
        self.admit(db, subject, device)
        embedder = get_embedder()
        if reference is not None or id_photo is None:
            emb = reference
        else:
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
            id_photo_path=str(id_photo) if id_photo is not None else None,
            id_embedding=emb.astype(np.float32).tobytes() if emb is not None else None,
            embedder=embedder.info.name if embedder is not None and emb is not None else None,
        )
        db.add(rec)
        db.flush()
        return rec, token, script

    def _abandon_started(self, db: Session, subject: str | None, device: str | None, keep: str = "") -> None:
        """Started sessions of this subject or device that have no video yet end here, as abandoned: their steps
        were seen, and a newer session replaces them. They count toward the lockout from now."""
        refs = [c == r for c, r in ((LivenessSession.subject_ref, subject), (LivenessSession.device_ref, device)) if r]
        if not refs:
            return
        now = utcnow()
        for other in db.scalars(
            select(LivenessSession).where(
                or_(*refs),
                LivenessSession.id != keep,
                LivenessSession.status == "open",
                LivenessSession.started_at.is_not(None),
            )
        ):
            other.status, other.expires_at = "abandoned", min(_aware(other.expires_at), now)

    def _usable(self, db: Session, session_id: str, token: str | None) -> LivenessSession:
        rec = self.get(db, session_id)
        self.check_token(rec, token)
        if rec.status in ("expired", "abandoned"):
            why = "expired" if rec.status == "expired" else "been replaced by a newer session"
            raise SessionExpired(f"this liveness session has {why}: start a new one")
        if rec.status != "open":
            raise SessionUsed("this liveness session already has its video")
        return rec

    def capture_state(self, db: Session, session_id: str, token: str | None) -> CaptureState:
        rec = self.get(db, session_id)
        self.check_token(rec, token)
        expires = _aware(rec.expires_at).isoformat()
        return CaptureState(
            session_id=rec.id, status=rec.status, expires_at=expires, started=rec.started_at is not None
        )

    def start(self, db: Session, session_id: str, token: str | None) -> StartView:
        """The capture page starts recording: the server's clock for the steps starts now, once."""
        rec = self._usable(db, session_id, token)
        if rec.started_at is not None:
            raise SessionUsed("this liveness session was already started: start a new one")
        rec.started_at = utcnow()
        self._abandon_started(db, rec.subject_ref, rec.device_ref, keep=rec.id)
        db.flush()
        return start_view(ChallengeScript.from_dict(json.loads(rec.script_json)), rec.id)

    def step(self, db: Session, session_id: str, token: str | None, index: int, nonce: str) -> StepReveal:
        rec = self._usable(db, session_id, token)
        if rec.started_at is None:
            raise NotStarted("this liveness session has not started: the capture page starts it")
        elapsed = (utcnow() - _aware(rec.started_at)).total_seconds()
        return reveal_step(ChallengeScript.from_dict(json.loads(rec.script_json)), rec.id, index, nonce, elapsed)

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
        rec = self._usable(db, session_id, token)
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
                self._analyzer = SessionAnalyzer(warp=get_warp_detector())
            track = self._analyzer.analyze_file(video)
            enrich_track(track, get_embedder(), self._detector_once(), get_warp_detector())
        track.drop_pixels()
        track.extra["sha256"] = sha256
        emb = np.frombuffer(rec.id_embedding, dtype=np.float32) if rec.id_embedding else None
        index = DbReplayIndex(db)
        ctx = SignalContext(track, script, session_id=rec.id, policy=self.policy, id_embedding=emb, replay_index=index)
        decision = verify_track(ctx)
        index.add(
            rec.id,
            sha256,
            [k.phash for k in track.keyframes],
            [s.face_pdq for s in track.samples],
            trajectory_of(track.samples),
        )
        now = utcnow()
        rec.video_path, rec.video_sha256 = str(video), sha256
        rec.outcome, rec.status, rec.decided_at = decision.outcome, "decided", now
        rec.reasons_json = json.dumps(decision.reasons)
        result = decision.to_dict()
        result["models"] = {k: _model_name(track.extra.get(k)) for k in ("embedder", "detector")}
        rec.result_json = json.dumps(result)
        db.flush()
        if decision.outcome == "fail":
            self._maybe_lock(db, rec.subject_ref, rec.device_ref, now)
        return decision

    def _maybe_lock(self, db: Session, subject: str | None, device: str | None, now: dt.datetime) -> None:
        """Lock the subject or device out after `max_failures` failures within the window: failed decisions and
        sessions that ended without a video (expired or abandoned, counted at their end)."""
        since = now - dt.timedelta(seconds=self.config.failure_window_s)
        failed = and_(LivenessSession.outcome == "fail", LivenessSession.decided_at >= since)
        ended = and_(
            LivenessSession.status.in_(("open", "expired", "abandoned")),
            LivenessSession.expires_at <= now,
            LivenessSession.expires_at >= since,
        )
        for col, ref, key in (
            (LivenessSession.subject_ref, subject, "subject"),
            (LivenessSession.device_ref, device, "device"),
        ):
            if not ref:
                continue
            n = db.scalar(select(func.count()).select_from(LivenessSession).where(col == ref, or_(failed, ended))) or 0
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
            "started_at": _aware(rec.started_at).isoformat() if rec.started_at else None,
            # The one script object (`ScriptDict`, with its nonce), once no step of it can still be revealed.
            "script": json.loads(rec.script_json) if rec.status in CLOSED else None,
        }
        if detail and rec.result_json:
            r = json.loads(rec.result_json)
            out.update(
                score=r.get("score"),
                signals=r.get("signals"),
                policy=r.get("policy"),
                models=r.get("models"),
            )
        return out
