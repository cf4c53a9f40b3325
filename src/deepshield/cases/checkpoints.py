"""Signed checkpoints of the audit chain's head, kept outside the database (issue 31 point 12).

The hash chain catches an edited, deleted or reordered event, but not a chain rewritten whole: whoever can write
the database can edit an event and recompute every later hash, or delete the newest events and set the head row
back, and the chain verifies. A checkpoint is the head (seq, hash, number of events, time, key id) signed with an
Ed25519 key that is not in the database, appended to a JSON Lines file (and optionally posted to the cases webhook)
that the operator keeps where the database's users cannot rewrite it. `verify_against` checks the chain against
such a file: every checkpointed event must still be there with the hash that was signed, so a rewrite at or before
the last exported checkpoint is found; events after it are covered by the chain alone. Verifying needs only the
public key; signing refuses a chain that does not extend the last checkpoint, so the service never signs a
rewrite.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from deepshield.cases import audit, webhooks
from deepshield.cases.models import AuditEvent, AuditHead
from deepshield.cases.policy import WebhookConfig
from deepshield.config import Settings, make_private_dir
from deepshield.errors import DeepshieldError
from deepshield.labels.aigc import key_id
from deepshield.labels.keys import generate_ed25519_key, read_ed25519_private_key, read_ed25519_public_key
from deepshield.store.db import session_scope
from deepshield.store.timeutil import utcnow
from deepshield.workers import PeriodicThread

log = logging.getLogger("deepshield.cases.checkpoints")

FORMAT = "deepshield-audit-checkpoint/1"
#: Prefixed to what is signed, so a checkpoint signature can never pass for a label code or anything else.
SIGNING_CONTEXT = b"deepshield audit checkpoint\n"
#: How much of the file's end is read to find the last checkpoint (a line is about 300 bytes).
TAIL_BYTES = 64 * 1024
WEBHOOK_EVENT = "audit.checkpoint"


class CheckpointError(DeepshieldError):
    code = "audit_checkpoint_error"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    count: int
    at: str
    key_id: str
    sig: str = ""

    def signed_bytes(self) -> bytes:
        body = {k: v for k, v in self.to_json().items() if k != "sig"}
        return SIGNING_CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def signed_with(self, key: Ed25519PrivateKey) -> Checkpoint:
        return replace(self, sig=_b64(key.sign(self.signed_bytes())))

    def verifies(self, pub: Ed25519PublicKey) -> bool:
        try:
            pub.verify(_unb64(self.sig), self.signed_bytes())
        except (InvalidSignature, ValueError, binascii.Error):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    def to_line(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, line: str) -> Checkpoint:
        """One line of a checkpoint file; ValueError says what is wrong with it."""
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ValueError(f'not a checkpoint (no "format": "{FORMAT}")')
        missing = [k for k in ("seq", "hash", "count", "at", "key_id", "sig") if k not in obj]
        if missing:
            raise ValueError(f"field(s) missing: {', '.join(missing)}")
        ints, texts = ("seq", "count"), ("hash", "at", "key_id", "sig")
        if any(type(obj[k]) is not int or obj[k] < 0 for k in ints) or any(not isinstance(obj[k], str) for k in texts):
            raise ValueError("seq and count must be whole numbers, hash, at, key_id and sig text")
        return cls(obj["seq"], obj["hash"], obj["count"], obj["at"], obj["key_id"], obj["sig"])


@dataclass(frozen=True)
class Entry:
    """A line of a checkpoint file: its checkpoint, or why it is not one."""

    line: int
    checkpoint: Checkpoint | None
    error: str = ""


def _entries(data: bytes) -> list[Entry]:
    out = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            out.append(Entry(n, Checkpoint.parse(raw.decode("utf-8"))))
        except UnicodeDecodeError:
            out.append(Entry(n, None, "not UTF-8 text"))
        except ValueError as e:
            out.append(Entry(n, None, str(e)))
    return out


def read_checkpoints(path: Path) -> list[Entry]:
    """Every line of the file, parsed; a missing, unreadable or empty file is a `CheckpointError`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint file ({e.strerror or e})") from None
    entries = _entries(data)
    if not entries:
        raise CheckpointError(f"{path}: holds no checkpoints")
    return entries


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The checkpoint key at `settings.audit_key_path`, created on first use (0600, in a 0700 folder)."""
    path = settings.audit_key_path
    try:
        return read_ed25519_private_key(path)
    except FileNotFoundError:
        pass
    make_private_dir(path.parent)
    try:
        key = generate_ed25519_key(path)
    except FileExistsError:  # another process made it first
        return read_ed25519_private_key(path)
    log.warning(
        "created the audit checkpoint key %s: keep it away from the database (another volume or host) and give "
        "verifiers its public key (`deepshield audit public-key`)",
        path,
    )
    return key


def verifying_keys(settings: Settings, public_keys: Sequence[Path] = ()) -> dict[str, Ed25519PublicKey]:
    """The given public keys by key id; with none, the public half of this host's checkpoint key."""
    paths = list(public_keys)
    if not paths:
        own = settings.audit_key_path
        if not own.exists():
            raise CheckpointError(
                f"no key to check the checkpoints with: pass --public-key (the checkpoint key {own} is not here)"
            )
        paths = [own]
    keys = [read_ed25519_public_key(p) for p in paths]
    return {key_id(k): k for k in keys}


def _last_signed(data: bytes, pub: Ed25519PublicKey) -> Checkpoint | None:
    """The newest checkpoint in `data` (a file's tail) that `pub` signed."""
    kid = key_id(pub)
    for e in reversed(_entries(data)):
        cp = e.checkpoint
        if cp is not None and cp.key_id == kid and cp.verifies(pub):
            return cp
    return None


def _tail(f: IO[bytes]) -> bytes:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - TAIL_BYTES))
    return f.read()


def last_checkpoint(settings: Settings) -> Checkpoint | None:
    """The newest checkpoint this host's key signed in the configured file (None: no file, key or checkpoint)."""
    path, key_path = settings.audit_checkpoints_path, settings.audit_key_path
    if not path.exists() or not key_path.exists():
        return None
    with path.open("rb") as f:
        return _last_signed(_tail(f), read_ed25519_public_key(key_path))


def _head(session: Session) -> tuple[int, str]:
    row = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one_or_none()
    return (int(row.seq), str(row.hash)) if row is not None else (0, audit.GENESIS)


def _count_extending(session: Session, last: Checkpoint | None, head: tuple[int, str], path: Path) -> int:
    """How many events the chain up to `head` holds, after checking that it extends `last` (or, with no
    checkpoint yet, that it is intact); a `CheckpointError` otherwise, since signing it would vouch for a
    rewrite."""
    seq, head_hash = head
    hint = f"not signing it; run `deepshield audit verify --checkpoints {path}`"
    base, start = 0, (0, audit.GENESIS)
    if last is not None:
        ev = session.get(AuditEvent, last.seq)
        if last.seq > seq or ev is None:
            raise CheckpointError(
                f"event {last.seq} of the last checkpoint ({last.at}) is gone: the chain ends at {seq}; {hint}"
            )
        if audit.event_hash(ev) != last.hash or ev.hash != last.hash:
            raise CheckpointError(f"event {last.seq} no longer matches the last checkpoint ({last.at}); {hint}")
        base, start = last.count, (last.seq, last.hash)
    r = audit.verify(session, start=start, upto=seq)
    if r.problems:
        raise CheckpointError(f"the audit chain is broken ({r.problems[0]}); {hint}")
    if r.last_seq != seq or r.head_hash != head_hash:
        raise CheckpointError(f"the head row does not name the last event {r.last_seq}; {hint}")
    return base + r.events


def write_checkpoint(settings: Settings, webhook: WebhookConfig | None = None) -> Checkpoint | None:
    """Sign the current head and append it to the checkpoint file (and enqueue it for the webhook when
    `audit_checkpoint_webhook` is on and `webhook` has a URL). None when there is no event yet or the head has not
    moved since the file's last checkpoint. The file is locked while the last checkpoint is read and the new one
    appended, so the service's processes and a cron job never interleave."""
    key = signing_key(settings)
    path = settings.audit_checkpoints_path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        last = _last_signed(_tail(f), key.public_key())
        with session_scope(settings) as s:
            head = _head(s)
            if head[0] == 0 or (last is not None and (last.seq, last.hash) == head):
                return None
            count = _count_extending(s, last, head, path)
        at = utcnow().isoformat(timespec="seconds")
        cp = Checkpoint(head[0], head[1], count, at, key_id(key.public_key())).signed_with(key)
        f.write((cp.to_line() + "\n").encode())
        f.flush()
        os.fsync(f.fileno())
    if settings.audit_checkpoint_webhook and webhook is not None and webhook.url:
        with session_scope(settings) as s:
            webhooks.enqueue(s, WEBHOOK_EVENT, {"checkpoint": cp.to_json()})
    return cp


@dataclass
class CheckpointReport:
    """What a checkpoint file says about the chain."""

    checked: int = 0  # checkpoints whose signature verified
    problems: list[str] = field(default_factory=list)
    last: Checkpoint | None = None  # the newest verified checkpoint (highest seq)
    unanchored: int = 0  # events after it, covered by the chain alone
    #: Where the first event that differs from the checkpoints lies: (lo, hi), equal ends when exact. A rewrite is
    #: only bounded by the checkpoints on either side of it.
    first_bad: tuple[int, int] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _signed_checkpoints(
    entries: Sequence[Entry], keys: dict[str, Ed25519PublicKey], rep: CheckpointReport
) -> list[Checkpoint]:
    good: list[Checkpoint] = []
    for e in entries:
        cp = e.checkpoint
        where = f"checkpoint file line {e.line}"
        if cp is None:
            rep.problems.append(f"{where}: {e.error}")
        elif cp.key_id not in keys:
            rep.problems.append(f"{where} (seq {cp.seq}): signed by key {cp.key_id}, not one of the keys given")
        elif not cp.verifies(keys[cp.key_id]):
            rep.problems.append(f"{where} (seq {cp.seq}): the signature does not verify: the line was forged or edited")
        else:
            good.append(cp)
    return good


def verify_against(
    session: Session, entries: Sequence[Entry], keys: dict[str, Ed25519PublicKey]
) -> tuple[audit.VerifyResult, CheckpointReport]:
    """Walk the chain (`audit.verify`) and hold it against every checkpoint whose signature verifies: each
    checkpointed event must still exist, recompute to the signed hash and have the signed number of events up to
    it. A line that is not a checkpoint, is signed by another key or does not verify is a problem too."""
    rep = CheckpointReport()
    good = sorted(_signed_checkpoints(entries, keys, rep), key=lambda c: c.seq)
    chain = audit.verify(session, watch={c.seq for c in good})
    rep.checked = len(good)
    matched = 0  # the highest checkpointed seq that matches, below the first that does not
    for cp in good:
        got = chain.at_seq.get(cp.seq)
        hi = cp.seq
        if got is None and cp.seq > chain.last_seq:
            hi = chain.last_seq + 1
            gone = f"event {hi} is" if hi == cp.seq else f"events {hi} to {cp.seq} are"
            msg = (
                f"{gone} gone: the checkpoint of {cp.at} covers event {cp.seq} but the chain ends at "
                f"{chain.last_seq} (tail deleted and the head row rewritten, or the chain truncated)"
            )
        elif got is None:
            msg = f"event {cp.seq} is gone: the checkpoint of {cp.at} covers it"
        elif got[0] != cp.hash:
            msg = f"the chain no longer hashes to the checkpoint of {cp.at} at event {cp.seq}: rewritten up to it"
        elif got[1] != cp.count:
            msg = f"{got[1]} events up to {cp.seq} where the checkpoint of {cp.at} counted {cp.count} (deleted)"
        else:
            if rep.first_bad is None:
                matched = cp.seq
            continue
        rep.problems.append(msg)
        if rep.first_bad is None:
            rep.first_bad = (min(matched + 1, hi), hi)
    if good:
        rep.last = good[-1]
        rep.unanchored = max(0, chain.last_seq - rep.last.seq)
    return chain, rep


class Checkpointer(PeriodicThread):
    """The service's thread: signs a checkpoint every `audit_checkpoint_minutes` when the head has moved, or as
    soon as `audit_checkpoint_events` events were appended since the last one, so a rewrite can hide only in that
    window (and only from the checkpoints: the chain still catches a partial one). Polling the head row is one
    small query; appends never wait for a signature or a file write."""

    def __init__(
        self,
        settings: Settings,
        webhook: WebhookConfig | None = None,
        on_written: Callable[[], object] | None = None,
        poll_s: float = 10.0,
    ) -> None:
        super().__init__("deepshield-audit-checkpoints", poll_s, self._round)
        self.settings, self.webhook, self.on_written = settings, webhook, on_written
        self._last: tuple[int, float] | None = None  # (seq, monotonic time) of the last checkpoint; read at start

    def _round(self) -> None:
        if self._last is None:  # the first round only reads where the checkpoints stand
            try:
                last = last_checkpoint(self.settings)
            except DeepshieldError as e:
                log.error("audit checkpoints: %s", e.message)
                last = None
            self._last = (last.seq if last else 0), time.monotonic()
            return
        last_seq, last_time = self._last
        every_s = self.settings.audit_checkpoint_minutes * 60
        try:
            with session_scope(self.settings) as s:
                seq = _head(s)[0]
            due = seq - last_seq >= self.settings.audit_checkpoint_events or time.monotonic() - last_time >= every_s
            if seq == last_seq or not due:
                return
            # Whatever the outcome, wait for the next trigger before trying again.
            self._last = seq, time.monotonic()
            if write_checkpoint(self.settings, self.webhook) is not None and self.on_written is not None:
                self.on_written()
        except DeepshieldError as e:
            log.error("audit checkpoint not written: %s", e.message)
